"""Splits of small or lopsided data end in a usable partition or a one-line error that says what is needed."""

import numpy as np
import pytest

from probfusion.config import DataConfig
from probfusion.data import split_indices
from probfusion.data.dataset import MultimodalDataset
from probfusion.errors import ConfigError, InputDataError


def _data(n, *, labels=None, **extra):
    labels = np.arange(n) % 2 if labels is None else np.asarray(labels)
    return MultimodalDataset(
        name="tiny", views={"a": np.arange(2 * n, dtype=float).reshape(n, 2)}, labels=labels, **extra
    )


def _one_line(info, *fragments):
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize("n", [5, 6, 7, 10])
def test_tiny_data_splits_into_three_non_empty_parts(n):
    parts = split_indices(_data(n), DataConfig(split="random"), seed=0)  # 6 rows was a scikit-learn ValueError
    assert sorted([*parts.train, *parts.val, *parts.test]) == list(range(n))
    assert min(len(parts.train), len(parts.val), len(parts.test)) >= 1


def test_too_few_rows_for_three_parts_is_one_line_saying_how_many():
    data = _data(10, groups=np.repeat([0, 1], 5))  # two groups of duplicates: a scikit-learn ValueError before
    with pytest.raises(InputDataError) as info:
        split_indices(data, DataConfig(split="random"), seed=0)
    _one_line(info, "2 rows", "needs at least 3 rows", "two per class", "predefined split")


def test_a_single_class_train_part_names_the_part_and_the_fix():
    split = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    data = _data(8, labels=["x", "x", "x", "y", "x", "y", "x", "y"], split=split)
    with pytest.raises(InputDataError) as info:
        split_indices(data, DataConfig(split="predefined"), seed=0)
    _one_line(info, "train part", "single class ('x')", "split array")


def test_a_single_class_test_part_is_allowed():
    split = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    data = _data(8, labels=[0, 1, 0, 1, 0, 1, 1, 1], split=split)
    parts = split_indices(data, DataConfig(split="predefined"), seed=0)
    assert parts.test.tolist() == [6, 7]


def test_speaker_split_without_speakers_says_which_array_is_needed():
    with pytest.raises(ConfigError) as info:
        split_indices(_data(20), DataConfig(split="speaker"), seed=0)
    _one_line(info, "no speaker metadata", "'speaker' array", "'random'")


def test_speaker_split_without_a_default_speaker_asks_for_one():
    data = _data(20, speakers=np.array(["ann", "ann", "bob", "bob"] * 5))  # was "Unknown held-out speaker None"
    with pytest.raises(ConfigError) as info:
        split_indices(data, DataConfig(split="speaker"), seed=0)
    _one_line(info, "no default held-out speaker", "--held-out-speaker", "['ann', 'bob']")
    parts = split_indices(data, DataConfig(split="speaker", held_out_speaker="bob"), seed=0)
    assert parts.test.tolist() == [k for k in range(20) if k % 4 >= 2]


def test_speaker_split_with_too_few_other_rows_is_one_line():
    data = _data(20, speakers=np.array(["ann"] * 18 + ["bob"] * 2))
    with pytest.raises(InputDataError) as info:
        split_indices(data, DataConfig(split="speaker", held_out_speaker="ann"), seed=0)
    _one_line(info, "2 rows", "beside the held-out speaker", "at least 3")
