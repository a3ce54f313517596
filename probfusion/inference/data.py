"""Tensors for training and prediction: standardised modalities and labels on one device."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from probfusion.data.dataset import MultimodalDataset
from probfusion.data.transforms import Standardizer

__all__ = ["TensorData"]


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
        n = len(self)
        if generator is None:
            order = torch.arange(n, device=self.labels.device)
        else:
            order = torch.randperm(n, generator=generator).to(self.labels.device)
        starts = list(range(0, n, batch_size))
        if len(starts) > 1 and n - starts[-1] < min_size:
            starts.pop()
        for start, stop in zip(starts, [*starts[1:], n], strict=True):
            index = order[start:stop]
            yield {m: x[index] for m, x in self.views.items()}, self.labels[index]
