import pytest
import torch

from probfusion.inference.data import TensorData


@pytest.mark.parametrize(("n", "min_size", "sizes"), [(65, 2, [32, 33]), (65, 1, [32, 32, 1]), (64, 2, [32, 32])])
def test_a_remainder_below_min_size_joins_the_previous_batch(n, min_size, sizes):
    data = TensorData(views={"a": torch.arange(n, dtype=torch.float32).unsqueeze(1)}, labels=torch.arange(n))
    batches = list(data.batches(32, generator=torch.Generator().manual_seed(0), min_size=min_size))
    assert [len(labels) for _, labels in batches] == sizes
    seen = torch.cat([labels for _, labels in batches])
    assert sorted(seen.tolist()) == list(range(n))  # every row exactly once
    assert all(torch.equal(views["a"][:, 0].long(), labels) for views, labels in batches)  # rows stay paired
