import numpy as np
import pytest
from sklearn.datasets import load_digits

from probfusion.config import DataConfig
from probfusion.data import split_indices
from probfusion.data.av_digits import DEFAULT_HELD_OUT_SPEAKER, load_av_digits, load_av_digits_provenance

SPEAKERS = {"george", "jackson", "lucas", "nicolas", "theo", "yweweler"}


@pytest.fixture(scope="module")
def data():
    return load_av_digits()


def test_shapes_and_dtypes(data):
    assert data.modality_names == ("image", "audio")
    assert data.views["image"].shape == (1797, 3)
    assert data.views["audio"].shape == (1797, 8)
    assert all(x.dtype == np.float32 for x in data.views.values())
    assert data.labels.dtype == np.int64
    assert data.num_classes == 10
    assert set(np.unique(data.labels)) == set(range(10))
    assert set(data.speakers.tolist()) == SPEAKERS
    assert data.default_held_out_speaker == DEFAULT_HELD_OUT_SPEAKER in SPEAKERS
    assert "CC BY-SA 4.0" in data.licence


def test_pairs_use_each_image_and_recording_once_and_match_labels(data):
    provenance = load_av_digits_provenance()
    image_index, recording = provenance["image_index"], provenance["recording"]
    assert np.unique(image_index).size == image_index.size == data.num_samples
    assert np.unique(recording).size == recording.size
    digits = load_digits()
    np.testing.assert_array_equal(digits.target[image_index], data.labels)
    rec_digit = np.array([int(name.split("_")[0]) for name in recording])
    rec_speaker = np.array([name.split("_")[1] for name in recording])
    np.testing.assert_array_equal(rec_digit, data.labels)
    np.testing.assert_array_equal(rec_speaker, data.speakers)


@pytest.mark.parametrize("speaker", [None, "george", "theo"])
def test_speaker_split_holds_out_exactly_one_speaker(data, speaker):
    config = DataConfig(split="speaker", held_out_speaker=speaker)
    parts = split_indices(data, config, seed=0)
    held = speaker or DEFAULT_HELD_OUT_SPEAKER
    assert set(data.speakers[parts.test].tolist()) == {held}
    assert held not in set(data.speakers[parts.train].tolist()) | set(data.speakers[parts.val].tolist())
    assert np.flatnonzero(data.speakers == held).tolist() == parts.test.tolist()
    everything = np.concatenate([parts.train, parts.val, parts.test])
    assert np.array_equal(np.sort(everything), np.arange(data.num_samples))
