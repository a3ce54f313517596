"""FusionConfig.input_linear: the logistic regression on the concatenated inputs inside the classifier."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from probfusion import fit, load_run
from probfusion.config import FusionConfig, JWAEConfig, RunConfig, TrainConfig
from probfusion.errors import ConfigError
from probfusion.fusion.classifier import MultimodalClassifier
from tests.helpers import small_config, write_separable_npz

DIMS = {"a": 5, "b": 3}


def _pair(model: str = "lmf") -> tuple[MultimodalClassifier, MultimodalClassifier]:
    jwae = JWAEConfig(latent_dim=2, hidden_dim=8)
    torch.manual_seed(0)
    plain = MultimodalClassifier(
        input_dims=DIMS, num_classes=3, jwae=jwae, fusion=FusionConfig(model=model, rank=2, fused_dim=4)
    )
    torch.manual_seed(0)
    skip = MultimodalClassifier(
        input_dims=DIMS,
        num_classes=3,
        jwae=jwae,
        fusion=FusionConfig(model=model, rank=2, fused_dim=4, input_linear=True),
    )
    return plain.eval(), skip.eval()  # eval: no dropout, so the two are compared draw-free


@pytest.mark.parametrize("model", ["lmf", "concat"])
def test_it_starts_as_the_model_without_it_and_adds_exactly_a_linear_map(model):
    plain, skip = _pair(model)
    views = {"a": torch.randn(6, 5), "b": torch.randn(6, 3)}
    torch.testing.assert_close(skip(views), plain(views))  # zero at the start
    assert skip.parameter_count() == plain.parameter_count() + (5 + 3 + 1) * 3
    with torch.no_grad():
        skip.input_linear.weight.normal_()
        skip.input_linear.bias.normal_()
    expected = (
        plain(views) + torch.cat([views["a"], views["b"]], -1) @ skip.input_linear.weight.T + skip.input_linear.bias
    )
    torch.testing.assert_close(skip(views), expected)
    skip(views).sum().backward()
    assert skip.input_linear.weight.grad is not None
    assert skip.input_linear.weight.grad.abs().sum() > 0


def test_it_is_refused_where_a_second_stage_would_drop_it():
    # (LMF with a rank prior takes it when its SVI head trains end to end: tests/models/test_end_to_end_route.py.)
    with pytest.raises(ConfigError, match="input_linear"):
        FusionConfig(model="gp-mkl", input_linear=True)


def test_a_run_with_it_learns_and_round_trips(tmp_path: Path):
    data = write_separable_npz(tmp_path / "sep.npz", n=300, num_classes=3)
    config = dataclasses.replace(
        small_config(str(data), epochs=30),
        fusion=FusionConfig(rank=2, fused_dim=8, input_linear=True),
        train=TrainConfig(epochs=30, batch_size=64, patience=30),
    )
    run = fit(config, tmp_path / "run")
    assert run.metrics["test"]["accuracy"] > 0.75  # three classes: chance is 1/3
    loaded = load_run(run.path)
    assert loaded.model.input_linear is not None
    assert RunConfig.from_dict(config.to_dict()).fusion.input_linear is True
    stored = config.to_dict()
    del stored["fusion"]["input_linear"]
    assert RunConfig.from_dict(stored).fusion.input_linear is False  # runs stored before the field
    assert RunConfig().fusion.input_linear is None  # new configs: resolved off (NOTES.md §28)
