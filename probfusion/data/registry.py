"""Dataset names -> loaders; what ``probfusion datasets`` lists and what ``DataConfig.name`` resolves.

A name is either registered (``av-digits``, ``mfeat``, ``synthetic``) or a path to user data: ``.npz``
(:mod:`probfusion.data.npz`), a multi-view MATLAB ``.mat`` (:mod:`probfusion.data.mat`) or a MultiBench pickle
``.pkl`` / ``.pickle`` (:mod:`probfusion.data.multibench`, only when the caller passes ``trust_pickle=True``; a
stored config never grants it), or a folder of ``x_<m>.npy`` files and ``y.npy`` read through memory maps
(:mod:`probfusion.data.folder`, for data larger than memory).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from probfusion.config import DataConfig
from probfusion.data.av_digits import load_av_digits
from probfusion.data.dataset import MultimodalDataset
from probfusion.data.mfeat import load_mfeat
from probfusion.data.multibench import load_multibench
from probfusion.data.npz import load_npz
from probfusion.data.synthetic import make_planted_interaction
from probfusion.errors import ConfigError, InputDataError
from probfusion.options import SplitKind

__all__ = ["DatasetInfo", "list_datasets", "load_dataset", "registered_names"]

NPZ_SUFFIXES = (".npz",)
MAT_SUFFIXES = (".mat",)
PICKLE_SUFFIXES = (".pkl", ".pickle")


@dataclass(frozen=True)
class DatasetInfo:
    """What a registered dataset holds.

    Attributes:
        name: The registered name (``DataConfig.name``).
        description: One line on what the data is.
        modalities: ``{m: d_m}`` in modality order.
        num_samples: Number of paired samples n (for ``synthetic``: with the default ``SyntheticConfig``).
        num_classes: Number of classes c.
        licence: Licence and credit of the source data.
        splits: The split kinds the dataset supports (``SplitKind`` values).
    """

    name: str
    description: str
    modalities: dict[str, int]
    num_samples: int
    num_classes: int
    licence: str
    splits: tuple[str, ...]


@dataclass(frozen=True)
class _Entry:
    load: Callable[[DataConfig, int], MultimodalDataset]
    splits: tuple[SplitKind, ...]


_REGISTRY: dict[str, _Entry] = {
    "av-digits": _Entry(lambda config, seed: load_av_digits(), (SplitKind.RANDOM, SplitKind.SPEAKER)),
    "mfeat": _Entry(lambda config, seed: load_mfeat(), (SplitKind.RANDOM,)),
    "synthetic": _Entry(lambda config, seed: make_planted_interaction(config.synthetic, seed), (SplitKind.RANDOM,)),
}


def registered_names() -> list[str]:
    """The registered dataset names, in listing order."""
    return list(_REGISTRY)


def list_datasets() -> list[DatasetInfo]:
    """Describe every registered dataset (loads the small bundled files; ``synthetic`` with default knobs).

    Example:
        >>> [info.name for info in list_datasets()]
        ['av-digits', 'mfeat', 'synthetic']
    """
    infos = []
    for name, entry in _REGISTRY.items():
        dataset = entry.load(DataConfig(name=name), 0)
        infos.append(
            DatasetInfo(
                name=name,
                description=dataset.description,
                modalities=dataset.dims,
                num_samples=dataset.num_samples,
                num_classes=int(dataset.num_classes or 0),
                licence=dataset.licence,
                splits=tuple(kind.value for kind in entry.splits),
            )
        )
    return infos


def _load_path(config: DataConfig, trust_pickle: bool) -> MultimodalDataset:
    path = Path(config.name).expanduser()
    suffix = path.suffix.lower()
    known = suffix in NPZ_SUFFIXES + MAT_SUFFIXES + PICKLE_SUFFIXES
    if not path.exists():
        if known:
            raise InputDataError(f"No file at {path}; check the path.")
        raise ConfigError(
            f"Unknown dataset {config.name!r}; expected one of {registered_names()}, or a path to an existing "
            ".npz, .mat or MultiBench .pkl file, or a folder of x_<modality>.npy files and y.npy."
        )
    if path.is_dir():
        if not any(path.glob("*.npy")):
            raise ConfigError(
                f"{path} is a directory without .npy files; expected a registered dataset name, a .npz, .mat or .pkl "
                "file, or a folder of x_<modality>.npy files and y.npy."
            )
        from probfusion.data.folder import load_folder  # x_<m>.npy per modality, memory-mapped

        return load_folder(path)  # type: ignore[return-value]  # a MultimodalDataset in all but views
    if suffix in NPZ_SUFFIXES:
        return load_npz(path)
    if suffix in MAT_SUFFIXES:
        from probfusion.data.mat import load_mat  # scipy.io: 0.2 s of start-up that only .mat files need

        return load_mat(path)
    if suffix in PICKLE_SUFFIXES:
        return load_multibench(path, trust_pickle=trust_pickle, label_scheme=config.label_scheme)
    raise ConfigError(
        f"Unsupported file extension {path.suffix!r} for {path}; expected .npz (x_<modality>, y, optional split), "
        ".mat (views in a cell array, labels) or a MultiBench .pkl/.pickle."
    )


def load_dataset(config: DataConfig, seed: int = 0, *, trust_pickle: bool = False) -> MultimodalDataset:
    """Load the dataset that ``config`` names and select its modalities.

    Args:
        config: ``name`` (registered name or path), ``modalities`` (subset and order; ``None`` keeps all),
            ``label_scheme`` for pickles, ``synthetic`` knobs.
        seed: Seed for generated data (``synthetic``); bundled and user data ignore it.
        trust_pickle: Allow opening a pickle (it can run code). Only the current caller can give this; it is
            never read from a stored file.

    Returns:
        The dataset, with views in ``config.modalities`` order when given.

    Raises:
        ConfigError: For an unknown name that is not an existing path, or an unsupported file extension.
        InputDataError: For a missing or unreadable file, invalid data, or an unknown modality.
        UntrustedFileError: For a pickle without ``trust_pickle``.

    Example:
        >>> load_dataset(DataConfig(name="mfeat", modalities=("pix", "fou"))).dims
        {'pix': 240, 'fou': 76}
    """
    entry = _REGISTRY.get(config.name.strip().lower())
    dataset = entry.load(config, seed) if entry is not None else _load_path(config, trust_pickle)
    if config.modalities is not None:
        dataset = dataset.select(config.modalities)
    return dataset
