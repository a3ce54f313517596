"""The bundled ``mfeat`` dataset: UCI Multiple Features, six views of 2,000 handwritten digits.

Views, in this fixed order: ``fou`` ``(n, 76)`` Fourier coefficients of the contours, ``fac`` ``(n, 216)``
profile correlations, ``kar`` ``(n, 64)`` Karhunen-Loeve coefficients, ``pix`` ``(n, 240)`` 2x3-window pixel
averages, ``zer`` ``(n, 47)`` Zernike moments, ``mor`` ``(n, 6)`` morphological features. 10 classes, 200
each. The classic multiple-kernel-learning benchmark; it is multi-view rather than multimodal, since every
view is computed from the same image.

The data hold six pairs of exactly duplicated rows; ``groups`` gives each pair one id so that random splits
keep both rows on one side.

Made by ``scripts/prepare_mfeat.py``; credit and licence in ``_bundled/LICENSES.md``.
"""

from __future__ import annotations

from importlib import resources

from probfusion.data.dataset import MultimodalDataset
from probfusion.data.npz import read_npz

__all__ = ["MFEAT_VIEWS", "load_mfeat"]

NAME = "mfeat"
FILE = "mfeat.npz"
MFEAT_VIEWS = ("fou", "fac", "kar", "pix", "zer", "mor")
DESCRIPTION = "UCI Multiple Features: six views (Fourier, profile, Karhunen-Loeve, pixel, Zernike, morphology)"
LICENCE = "CC BY 4.0 (UCI Multiple Features, R.P.W. Duin)"


def load_mfeat() -> MultimodalDataset:
    """Load the bundled ``mfeat`` dataset.

    Returns:
        A dataset with views ``fou, fac, kar, pix, zer, mor`` (float32, ``(2000, d_m)`` with d_m = 76, 216,
        64, 240, 47, 6), ``labels`` ``(2000,)`` int64 digits 0..9 and ``groups`` ``(2000,)`` int64 duplicate
        groups.

    Example:
        >>> data = load_mfeat()
        >>> data.num_samples, data.dims["mor"], int((data.groups != range(2000)).sum())
        (2000, 6, 6)
    """
    resource = resources.files("probfusion.data") / "_bundled" / FILE
    with resource.open("rb") as handle:
        arrays = read_npz(handle, where=f"bundled {FILE}")
    return MultimodalDataset(
        name=NAME,
        views={view: arrays[f"x_{view}"] for view in MFEAT_VIEWS},
        labels=arrays["y"],
        num_classes=10,
        groups=arrays["group"],
        description=DESCRIPTION,
        licence=LICENCE,
    )
