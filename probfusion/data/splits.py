"""Train / validation / test splits, deterministic under a seed.

Random splits are stratified by label and keep every group (exact duplicates) on one side. The speaker split
tests on one held-out speaker, a real distribution shift.
"""

from __future__ import annotations

import math
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


def _held_count(num_groups: int, fraction: float) -> int:
    """Groups scikit-learn's ``train_test_split`` holds out for a float ``test_size`` (it rounds up)."""
    return math.ceil(fraction * num_groups)


def _min_rows(config: DataConfig, *, with_test: bool) -> int:
    """The fewest groups a random split needs for non-empty test, validation and training parts."""
    g = 3
    while True:
        rest = g - _held_count(g, config.test_fraction) if with_test else g
        if rest - _held_count(rest, config.val_fraction) >= 1 and rest >= 2:
            return g
        g += 1


def _stratified_group_split(
    indices: np.ndarray, labels: np.ndarray, groups: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``indices`` into (rest, held) with ``fraction`` of the groups held, stratified by label.

    Stratification needs two groups of every class and at least one group per class on each side; with fewer
    the split is uniform over groups (still deterministic under the seed).
    """
    group_ids, first = np.unique(groups[indices], return_index=True)
    group_labels = labels[indices][first]
    counts = np.bincount(group_labels)
    held = _held_count(group_ids.size, fraction)
    classes = int((counts > 0).sum())
    can_stratify = counts[counts > 0].min() >= 2 and min(held, group_ids.size - held) >= classes
    stratify = group_labels if can_stratify else None
    _rest_groups, held_groups = train_test_split(group_ids, test_size=fraction, random_state=seed, stratify=stratify)
    held_mask = np.isin(groups[indices], held_groups)
    return np.sort(indices[~held_mask]), np.sort(indices[held_mask])


def _check_enough_rows(dataset: MultimodalDataset, config: DataConfig, groups: np.ndarray, *, with_test: bool) -> None:
    """Refuse, before scikit-learn does with a traceback, data too small for non-empty parts."""
    num_groups = int(np.unique(groups).size)
    need = _min_rows(config, with_test=with_test)
    if num_groups >= need:
        return
    parts = "train, validation and test" if with_test else "train and validation (beside the held-out speaker)"
    fractions = f"test_fraction {config.test_fraction} and " if with_test else ""
    raise InputDataError(
        f"Dataset {dataset.name!r} has {num_groups} rows (groups of duplicates count once) for a random split "
        f"into {parts}; with {fractions}val_fraction {config.val_fraction} it needs at least {need} rows, and two "
        "per class to stratify by class. Add rows or give a predefined split array."
    )


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
        _check_enough_rows(dataset, config, groups, with_test=True)
        rest, test = _stratified_group_split(everything, labels, groups, config.test_fraction, seed)
        train, val = _stratified_group_split(rest, labels, groups, config.val_fraction, seed + 1)
    elif kind is SplitKind.SPEAKER:
        if dataset.speakers is None:
            raise ConfigError(
                f"Dataset {dataset.name!r} has no speaker metadata, so split 'speaker' cannot hold one out; use split "
                "'random', or give the data speakers (in an .npz: a 'speaker' array of one name per row)."
            )
        known = sorted(set(dataset.speakers.tolist()))
        speaker = config.held_out_speaker or dataset.default_held_out_speaker
        if speaker is None:
            raise ConfigError(
                f"Dataset {dataset.name!r} has no default held-out speaker; name one with --held-out-speaker "
                f"(DataConfig.held_out_speaker), one of {known[:20]}."
            )
        if speaker not in known:
            raise ConfigError(f"Unknown held-out speaker {speaker!r}; dataset {dataset.name!r} has {known[:20]}.")
        test = np.flatnonzero(dataset.speakers == speaker)
        others = np.flatnonzero(dataset.speakers != speaker)
        _check_enough_rows(dataset, config, groups[others], with_test=False)
        train, val = _stratified_group_split(others, labels, groups, config.val_fraction, seed + 1)
    else:
        if dataset.split is None:
            raise ConfigError(f"Dataset {dataset.name!r} ships no predefined split; use split 'random'.")
        train, val, test = (np.flatnonzero(dataset.split == k) for k in (0, 1, 2))
    fix = {  # how to change what goes into a part
        SplitKind.RANDOM: "add rows (of other classes) or use another seed",
        SplitKind.SPEAKER: "hold out another speaker",
        SplitKind.PREDEFINED: "change the split array (0 train, 1 validation, 2 test)",
    }[kind]
    for part, idx in (("train", train), ("validation", val), ("test", test)):
        if idx.size == 0:
            raise InputDataError(f"The {part} part of dataset {dataset.name!r} is empty under split {kind}; {fix}.")
    train_classes = np.unique(labels[train])
    if train_classes.size < 2:
        only = (dataset.classes or ())[int(train_classes[0])] if dataset.classes else int(train_classes[0])
        raise InputDataError(
            f"The train part of dataset {dataset.name!r} under split {kind} holds a single class ({only!r}); a "
            f"classifier needs rows of at least two classes to learn from: {fix}."
        )
    return DataSplits(train=train, val=val, test=test)


def split_dataset(
    dataset: MultimodalDataset, config: DataConfig, seed: int
) -> tuple[MultimodalDataset, MultimodalDataset, MultimodalDataset]:
    """Return the (train, validation, test) datasets of :func:`split_indices`."""
    parts = split_indices(dataset, config, seed)
    return dataset.subset(parts.train), dataset.subset(parts.val), dataset.subset(parts.test)
