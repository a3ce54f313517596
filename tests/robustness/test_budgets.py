import pytest
import torch

from probfusion.errors import ConfigError
from probfusion.robustness.budgets import NormKind, parse_budgets, project, random_start, steepest_ascent


def test_parse_budgets_sorts_and_deduplicates():
    assert parse_budgets("0.2, 0.05,0.1,0.1") == (0.05, 0.1, 0.2)
    assert parse_budgets([0, 1]) == (0.0, 1.0)


@pytest.mark.parametrize("text", ["", "-0.1", "abc", "0.1,nan", "inf"])
def test_parse_budgets_rejects_bad_input(text):
    with pytest.raises(ConfigError, match="Budget"):
        parse_budgets(text)


def test_linf_projection_clamps_each_feature():
    out = project({"a": torch.tensor([[0.5, -2.0]], dtype=torch.float64)}, 1.0, NormKind.LINF)
    assert out["a"].tolist() == [[0.5, -1.0]]


def test_l2_projection_is_joint_over_modalities_and_keeps_inner_points():
    delta = {"a": torch.tensor([[3.0], [0.3]], dtype=torch.float64), "b": torch.tensor([[4.0], [0.4]])}
    out = project(delta, 1.0, NormKind.L2)
    joint = torch.cat([out["a"], out["b"].double()], dim=1).norm(dim=1)
    assert joint[0].item() == pytest.approx(1.0)
    assert out["a"][1].item() == pytest.approx(0.3)  # inside the ball: unchanged


def test_steepest_ascent_has_unit_norm():
    grad = {"a": torch.tensor([[3.0, 0.0]], dtype=torch.float64), "b": torch.tensor([[-4.0]], dtype=torch.float64)}
    l2 = steepest_ascent(grad, NormKind.L2)
    assert torch.cat([l2["a"], l2["b"]], 1).norm().item() == pytest.approx(1.0)
    assert steepest_ascent(grad, NormKind.LINF)["a"].tolist() == [[1.0, 0.0]]


@pytest.mark.parametrize("norm", list(NormKind))
def test_random_start_lies_in_the_ball_and_is_seeded(norm):
    like = {"a": torch.zeros(500, 3, dtype=torch.float64), "b": torch.zeros(500, 2, dtype=torch.float64)}
    first = random_start(like, 0.5, norm, generator=torch.Generator().manual_seed(1))
    again = random_start(like, 0.5, norm, generator=torch.Generator().manual_seed(1))
    flat = torch.cat([first["a"], first["b"]], 1)
    size = flat.abs().amax(1) if norm is NormKind.LINF else flat.norm(dim=1)
    assert (size <= 0.5 + 1e-12).all()
    assert size.mean() > 0.3  # fills the ball rather than sitting at its centre (uniform: E|.| = 0.5 * 5/6 or more)
    assert torch.equal(flat, torch.cat([again["a"], again["b"]], 1))
