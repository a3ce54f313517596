"""Train / validation / test splits, deterministic under a seed.

Random splits are stratified by label and keep every group (exact duplicates) on one side. The speaker split
tests on one held-out speaker, a real distribution shift.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

from probfusion.config import DataConfig
from probfusion.data.dataset import MultimodalDataset
from probfusion.errors import ConfigError, InputDataError
from probfusion.options import SplitKind

__all__ = ["DataSplits", "split_dataset", "split_indices"]


@dataclass(frozen=True)
class DataSplits:
    """Index arrays of the three parts; together a partition of ``range(n)``."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def _stratified_group_split(
    indices: np.ndarray, labels: np.ndarray, groups: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``indices`` into (rest, held) with ``fraction`` of the groups held, stratified by label."""
    group_ids, first = np.unique(groups[indices], return_index=True)
    group_labels = labels[indices][first]
    counts = np.bincount(group_labels)
    stratify = group_labels if counts[counts > 0].min() >= 2 else None
    _rest_groups, held_groups = train_test_split(group_ids, test_size=fraction, random_state=seed, stratify=stratify)
    held_mask = np.isin(groups[indices], held_groups)
    return np.sort(indices[~held_mask]), np.sort(indices[held_mask])


def split_indices(dataset: MultimodalDataset, config: DataConfig, seed: int) -> DataSplits:
    """Split ``dataset`` as ``config.split`` asks.

    Args:
        dataset: The full dataset.
        config: Split kind, fractions and held-out speaker.
        seed: Seed of the random choices.

    Returns:
        Sorted, disjoint index arrays for train, validation and test.

    Raises:
        ConfigError: If the split kind needs metadata the dataset lacks, or the speaker is unknown.
        InputDataError: If a part would be empty.
    """
    n = dataset.num_samples
    labels = dataset.labels
    groups = dataset.groups if dataset.groups is not None else np.arange(n)
    everything = np.arange(n)
    kind = config.split
    if kind is SplitKind.AUTO:  # a shipped split (MultiBench, user npz) is the one results are compared on
        kind = SplitKind.PREDEFINED if dataset.split is not None else SplitKind.RANDOM
    if kind is SplitKind.RANDOM:
        rest, test = _stratified_group_split(everything, labels, groups, config.test_fraction, seed)
        train, val = _stratified_group_split(rest, labels, groups, config.val_fraction, seed + 1)
    elif kind is SplitKind.SPEAKER:
        if dataset.speakers is None:
            raise ConfigError(
                f"Dataset {dataset.name!r} has no speaker metadata; use split 'random' (speaker splits need "
                "av-digits or data with speakers)."
            )
        speaker = config.held_out_speaker or dataset.default_held_out_speaker
        known = sorted(set(dataset.speakers.tolist()))
        if speaker not in known:
            raise ConfigError(f"Unknown held-out speaker {speaker!r}; dataset {dataset.name!r} has {known}.")
        test = np.flatnonzero(dataset.speakers == speaker)
        train, val = _stratified_group_split(
            np.flatnonzero(dataset.speakers != speaker), labels, groups, config.val_fraction, seed + 1
        )
    else:
        if dataset.split is None:
            raise ConfigError(f"Dataset {dataset.name!r} ships no predefined split; use split 'random'.")
        train, val, test = (np.flatnonzero(dataset.split == k) for k in (0, 1, 2))
    for part, idx in (("train", train), ("validation", val), ("test", test)):
        if idx.size == 0:
            raise InputDataError(f"The {part} part of dataset {dataset.name!r} is empty under split {kind}.")
    return DataSplits(train=train, val=val, test=test)


def split_dataset(
    dataset: MultimodalDataset, config: DataConfig, seed: int
) -> tuple[MultimodalDataset, MultimodalDataset, MultimodalDataset]:
    """Return the (train, validation, test) datasets of :func:`split_indices`."""
    parts = split_indices(dataset, config, seed)
    return dataset.subset(parts.train), dataset.subset(parts.val), dataset.subset(parts.test)
