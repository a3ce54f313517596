"""Tensors for training and prediction: standardised modalities and labels, in memory or streamed from disk.

:class:`TensorData` holds every standardised row on the device. :class:`StreamingData` holds only the labels
and reads a folder source's rows (:mod:`probfusion.data.folder`) in minibatches through a torch ``DataLoader``;
its minibatches equal :class:`TensorData`'s row for row under the same generator (one shuffled order, the same
cut points), so training on either gives the same weights.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from probfusion.data.dataset import MultimodalDataset
from probfusion.data.folder import FolderSubset
from probfusion.data.streaming import check_standardised_range
from probfusion.data.transforms import Standardizer

__all__ = ["StandardisedRows", "StreamingData", "TensorData", "tensor_data"]


def _minibatch_indices(
    n: int, batch_size: int, generator: torch.Generator | None, min_size: int, device: torch.device
) -> Iterator[torch.Tensor]:
    """``(b,)`` row indices of each minibatch: a shuffled order when ``generator`` is given, cut every ``batch_size``.

    A final remainder smaller than ``min_size`` joins the batch before it.
    """
    order = torch.arange(n, device=device) if generator is None else torch.randperm(n, generator=generator).to(device)
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] < min_size:
        starts.pop()
    for start, stop in zip(starts, [*starts[1:], n], strict=True):
        yield order[start:stop]


@dataclass(frozen=True, eq=False)
class TensorData:
    """Standardised modalities and labels as tensors.

    Attributes:
        views: ``{m: (n, d_m) float32 tensor}``.
        labels: ``(n,)`` int64 tensor.
    """

    views: dict[str, torch.Tensor]
    labels: torch.Tensor

    @classmethod
    def from_dataset(cls, dataset: MultimodalDataset, standardizer: Standardizer, device: torch.device) -> TensorData:
        """Standardise ``dataset`` with ``standardizer`` (fitted on train) and move it to ``device``."""
        views = standardizer.transform(dataset.views, source=f"dataset {dataset.name!r}")
        return cls(
            views={m: torch.as_tensor(x, device=device) for m, x in views.items()},
            labels=torch.as_tensor(dataset.labels, device=device),
        )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def batches(
        self, batch_size: int, *, generator: torch.Generator | None = None, min_size: int = 1
    ) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor]]:
        """Yield ``({m: (b, d_m)}, (b,))`` minibatches; shuffled when a ``generator`` is given.

        A final remainder smaller than ``min_size`` joins the batch before it (batch statistics such as the
        unbiased MMD need at least two rows), so no batch is smaller than ``min(min_size, n)``.
        """
        for index in _minibatch_indices(len(self), batch_size, generator, min_size, self.labels.device):
            yield {m: x[index] for m, x in self.views.items()}, self.labels[index]


def _standardise(raw: np.ndarray, standardizer: Standardizer, m: str) -> np.ndarray:
    # Standardizer.transform's arithmetic, so both paths give the same bits; the range was checked up front.
    return standardizer.standardise(m, raw).astype(np.float32)


class StandardisedRows:
    """One modality of a :class:`StreamingData`: a lazy ``(n, d_m)`` float32 tensor read when indexed.

    Indexing with a slice or ``(k,)`` indices returns a ``(k, d_m)`` tensor on the device; nothing else is held.
    """

    def __init__(self, data: StreamingData, name: str) -> None:
        """Rows of modality ``name`` of ``data``."""
        self._data, self._name = data, name
        self.shape = torch.Size((len(data), data.source.dims[name]))
        self.device, self.dtype = data.labels.device, torch.float32

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: slice | torch.Tensor | np.ndarray) -> torch.Tensor:
        """Standardised rows ``key`` (a slice or indices) as a ``(k, d_m)`` tensor."""
        positions = key if isinstance(key, slice) else np.asarray(torch.as_tensor(key).cpu(), dtype=np.int64)
        raw = self._data.source.read(self._name, positions)
        return torch.from_numpy(_standardise(raw, self._data.standardizer, self._name)).to(self.device)


class _Rows(Dataset):
    """Map-style dataset whose items are whole minibatches: ``(b,)`` indices -> (``{m: (b, d_m)}``, indices)."""

    def __init__(self, data: StreamingData) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        positions = index.numpy()
        views = {
            m: torch.from_numpy(_standardise(self.data.source.read(m, positions), self.data.standardizer, m))
            for m in self.data.source.modality_names
        }
        return views, index


class _MinibatchSampler(Sampler):
    """Yields each minibatch's ``(b,)`` indices; the order is drawn when iteration starts, as TensorData's is."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator | None, min_size: int) -> None:
        self.n, self.batch_size, self.generator, self.min_size = n, batch_size, generator, min_size

    def __iter__(self) -> Iterator[torch.Tensor]:
        return _minibatch_indices(self.n, self.batch_size, self.generator, self.min_size, torch.device("cpu"))

    def __len__(self) -> int:
        return max(1, -(-self.n // self.batch_size))


@dataclass(frozen=True, eq=False)
class StreamingData:
    """Rows of a folder source, standardised minibatch by minibatch; in memory: labels and the current batch.

    Answers what :class:`TensorData` answers (``labels``, ``len``, :meth:`batches`, ``views`` indexable by rows),
    so ``train_classifier``, the scoring and the prediction reference take it in its place.

    Attributes:
        source: The split's rows on disk.
        standardizer: The training statistics.
        labels: ``(n,)`` int64 tensor on the device.
    """

    source: FolderSubset
    standardizer: Standardizer
    labels: torch.Tensor

    @property
    def views(self) -> dict[str, StandardisedRows]:
        """``{m: lazy (n, d_m)}``: indexing reads and standardises only the rows asked for."""
        return {m: StandardisedRows(self, m) for m in self.source.modality_names}

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def batches(
        self, batch_size: int, *, generator: torch.Generator | None = None, min_size: int = 1
    ) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor]]:
        """Yield ``({m: (b, d_m)}, (b,))`` minibatches read from disk, equal to :meth:`TensorData.batches`'s.

        Each batch's rows are read in file order (sorted) and returned in the shuffled order.
        """
        loader = DataLoader(
            _Rows(self),
            sampler=_MinibatchSampler(len(self), batch_size, generator, min_size),
            batch_size=None,  # the sampler yields whole minibatches
            # The loader draws a worker seed at every iteration; from its own generator, not the global RNG that
            # dropout draws from, so streaming leaves the training's random stream as TensorData does.
            generator=torch.Generator(),
        )
        device = self.labels.device
        for views, index in loader:
            yield {m: x.to(device) for m, x in views.items()}, self.labels[index.to(device)]


def tensor_data(
    part: MultimodalDataset | FolderSubset, standardizer: Standardizer, device: torch.device
) -> TensorData | StreamingData:
    """The training tensors of a split: :class:`StreamingData` for a folder source, else :class:`TensorData`.

    Raises:
        InputDataError: If standardised values would leave the float32 range.
    """
    if not isinstance(part, FolderSubset):
        return TensorData.from_dataset(part, standardizer, device)
    check_standardised_range(part, standardizer)
    return StreamingData(source=part, standardizer=standardizer, labels=torch.as_tensor(part.labels, device=device))
