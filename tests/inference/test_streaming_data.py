import numpy as np
import pytest
import torch
from torch import nn

from probfusion.data.folder import load_folder
from probfusion.data.npz import load_npz
from probfusion.data.streaming import fit_standardizer
from probfusion.inference import predictive
from probfusion.inference.data import StreamingData, TensorData, tensor_data
from probfusion.inference.predictive import score_classifier
from tests.data.test_folder import write_folder


@pytest.fixture
def pair(tmp_path):
    """The same 3-class rows as (TensorData, StreamingData), standardised with the same statistics."""
    rng = np.random.default_rng(0)
    data = {"x_a": rng.normal(2.0, 3.0, (157, 3)), "x_b": rng.normal(size=(157, 2)), "y": rng.integers(0, 3, 157)}
    np.savez(tmp_path / "d.npz", **data)
    rows = np.sort(rng.choice(157, 131, replace=False))
    folder = load_folder(write_folder(tmp_path / "d", **data)).subset(rows)
    standardizer = fit_standardizer(folder)
    memory = TensorData.from_dataset(load_npz(tmp_path / "d.npz").subset(rows), standardizer, torch.device("cpu"))
    streamed = tensor_data(folder, standardizer, torch.device("cpu"))
    assert isinstance(streamed, StreamingData)
    return memory, streamed


@pytest.mark.parametrize(("batch_size", "min_size"), [(32, 2), (30, 2), (200, 1), (13, 1)])
def test_streamed_minibatches_equal_the_in_memory_ones_and_draw_the_same_numbers(pair, batch_size, min_size):
    memory, streamed = pair
    torch.manual_seed(3)
    global_state = torch.get_rng_state()
    results = []
    for data in (memory, streamed):
        generator = torch.Generator().manual_seed(7)
        batches = list(data.batches(batch_size, generator=generator, min_size=min_size))
        results.append((batches, torch.rand(4, generator=generator)))  # the generator's state after the epoch
    (want, want_after), (got, got_after) = results
    assert len(got) == len(want) > 0
    for (views, labels), (want_views, want_labels) in zip(got, want, strict=True):
        assert torch.equal(labels, want_labels)
        assert all(torch.equal(views[m], want_views[m]) for m in want_views)
    assert torch.equal(got_after, want_after)
    assert torch.equal(torch.get_rng_state(), global_state)  # the DataLoader leaves the global RNG alone
    unshuffled = [labels for _, labels in streamed.batches(64)]
    assert torch.equal(torch.cat(unshuffled), memory.labels)


def test_lazy_views_index_like_tensors(pair):
    memory, streamed = pair
    pick = torch.tensor([100, 0, 5, 5, 130])
    for m, rows in streamed.views.items():
        assert rows.shape == memory.views[m].shape
        assert len(rows) == len(memory)
        assert torch.equal(rows[pick], memory.views[m][pick])
        assert torch.equal(rows[10:47], memory.views[m][10:47])
        assert torch.equal(rows[np.array([3, 1])], memory.views[m][[3, 1]])


class _Linear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b = nn.Linear(3, 3), nn.Linear(2, 3)

    def predictive_logits(self, views, num_samples=1):
        return (self.a(views["a"]) + self.b(views["b"])).unsqueeze(0)


def test_streamed_scoring_equals_in_memory_scoring(pair, monkeypatch):
    memory, streamed = pair
    model = _Linear()
    assert score_classifier(model, streamed) == score_classifier(model, memory)
    monkeypatch.setattr(predictive, "EXACT_SCORING_LIMIT", 100)  # past the limit: per-batch sums
    monkeypatch.setattr(predictive, "_BATCH", 16)
    summed, exact = score_classifier(model, streamed), score_classifier(model, memory)
    assert summed["accuracy"] == exact["accuracy"]
    assert summed["n"] == exact["n"] == 131
    assert summed["nll"] == pytest.approx(exact["nll"], rel=1e-6)
    assert summed["brier"] == pytest.approx(exact["brier"], rel=1e-6)
