import math

import numpy as np
import pytest
import torch
from torch import nn

from probfusion.errors import ConfigError
from probfusion.options import AttackKind
from probfusion.robustness.attacks import attack_loss, fgsm, pgd, run_attack, sample_logits
from probfusion.robustness.budgets import NormKind

from .conftest import GaussianWeightNet, TanhNet, make_data


def _accuracy(model, views, labels, samples=1, generator=None):
    probs = sample_logits(model, views, samples, generator=generator).softmax(-1).mean(0)
    return float((probs.argmax(-1) == labels).double().mean())


def test_attack_loss_is_cross_entropy_for_one_draw():
    logits = torch.randn(1, 5, 4, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 3, 0])
    expected = nn.functional.cross_entropy(logits[0], labels, reduction="none")
    assert torch.allclose(attack_loss(logits, labels), expected)


def test_attack_loss_is_predictive_nll_minus_weighted_mi():
    logits = torch.randn(6, 5, 3, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 1, 0])
    p = logits.softmax(-1).numpy()
    mean = p.mean(0)
    nll = -np.log(mean[np.arange(5), labels.numpy()])
    mi = -(mean * np.log(mean)).sum(-1) + (p * np.log(p)).sum(-1).mean(0)
    assert np.allclose(attack_loss(logits, labels).numpy(), nll)
    assert np.allclose(attack_loss(logits, labels, mi_weight=0.7).numpy(), nll - 0.7 * mi)


def test_sample_logits_passes_the_generator_only_when_accepted():
    views, _ = make_data(10)
    stochastic = GaussianWeightNet()
    one = sample_logits(stochastic, views, 3, generator=torch.Generator().manual_seed(5))
    two = sample_logits(stochastic, views, 3, generator=torch.Generator().manual_seed(5))
    assert one.shape == (3, 10, 3)
    assert torch.equal(one, two)
    assert sample_logits(TanhNet(), views, 3, generator=torch.Generator()).shape == (1, 10, 3)


@pytest.mark.parametrize("norm", list(NormKind))
@pytest.mark.parametrize("modalities", [("a",), ("a", "b")])
def test_pgd_stays_in_the_ball_and_touches_only_the_chosen_modalities(trained, norm, modalities):
    model, views, labels = trained
    result = pgd(model, views, labels, eps=0.3, modalities=modalities, norm=norm, generator=torch.Generator())
    delta = {m: result.views[m] - views[m] for m in views}
    if "b" not in modalities:
        assert torch.equal(delta["b"], torch.zeros_like(delta["b"]))
    flat = torch.cat([delta[m] for m in modalities], 1)
    size = flat.abs().amax(1) if norm is NormKind.LINF else flat.norm(dim=1)
    assert (size <= 0.3 + 1e-9).all()


def test_pgd_returns_the_strongest_iterate_with_its_exact_loss(trained):
    model, views, labels = trained
    result = pgd(model, views, labels, eps=0.3, modalities=("a", "b"), generator=torch.Generator().manual_seed(0))
    recomputed = attack_loss(model.predictive_logits(result.views), labels)
    assert torch.allclose(result.loss, recomputed, atol=1e-10)
    assert (result.loss >= attack_loss(model.predictive_logits(views), labels) - 1e-10).all()


def test_more_restarts_never_weaken_any_sample(trained):
    # Restart 0 of a 3-restart run replays the 1-restart run (same seed, deterministic model), and the best
    # restart per sample is kept: every sample is fooled at least as often and its loss is at least as high.
    model, views, labels = trained
    kwargs = {"eps": 0.2, "modalities": ("a", "b"), "steps": 5}
    one = pgd(model, views, labels, restarts=1, generator=torch.Generator().manual_seed(3), **kwargs)
    three = pgd(model, views, labels, restarts=3, generator=torch.Generator().manual_seed(3), **kwargs)
    fooled_one = model.predictive_logits(one.views)[0].argmax(-1) != labels
    fooled_three = model.predictive_logits(three.views)[0].argmax(-1) != labels
    assert (fooled_three | ~fooled_one).all()
    same = fooled_one == fooled_three
    assert (three.loss[same] >= one.loss[same] - 1e-10).all()


def test_pgd_is_at_least_as_strong_as_fgsm_and_accuracy_falls_with_budget(trained):
    model, views, labels = trained
    accs = []
    for eps in (0.0, 0.1, 0.2, 0.4):
        adv = pgd(model, views, labels, eps=eps, modalities=("a", "b"), generator=torch.Generator().manual_seed(0))
        fast = fgsm(model, views, labels, eps=eps, modalities=("a", "b"))
        accs.append(_accuracy(model, adv.views, labels))
        assert accs[-1] <= _accuracy(model, fast.views, labels) + 1.0 / len(labels)
    assert accs == sorted(accs, reverse=True)
    assert accs[0] - accs[-1] > 0.2  # the budget matters on this model (margin: 20 points at eps 0.4)


def test_eps_zero_returns_the_clean_inputs(trained):
    model, views, labels = trained
    result = run_attack(model, views, labels, kind="pgd", eps=0.0, modalities=("a",), generator=torch.Generator())
    assert all(torch.equal(result.views[m], views[m]) for m in views)


def test_eot_pgd_beats_single_draw_pgd_on_a_stochastic_model():
    # Gaussian weights with a spread comparable to their mean: one draw's gradient is a noisy guess of the
    # predictive's, and averaging 32 fresh draws per step (EOT) finds stronger points. Scored on 4000
    # independent draws; margin: at least 3 points of accuracy.
    views, _ = make_data(300, seed=1)
    model = GaussianWeightNet(scale=1.0, seed=2)
    labels = (torch.cat([views["a"], views["b"]], 1) @ model.mean).argmax(-1)
    kwargs = {"eps": 0.3, "modalities": ("a", "b"), "steps": 10}
    plain = run_attack(model, views, labels, kind=AttackKind.PGD, generator=torch.Generator().manual_seed(0), **kwargs)
    eot = run_attack(
        model,
        views,
        labels,
        kind=AttackKind.EOT_PGD,
        attack_samples=32,
        generator=torch.Generator().manual_seed(0),
        **kwargs,
    )
    score = torch.Generator().manual_seed(99)
    acc_plain = _accuracy(model, plain.views, labels, 4000, score)
    acc_eot = _accuracy(model, eot.views, labels, 4000, score)
    assert acc_eot <= acc_plain - 0.03, (acc_eot, acc_plain)


def test_pgd_judges_iterates_on_fixed_draws_so_lucky_draws_do_not_stop_the_search():
    # With one fresh draw per step, an iterate that a lucky draw misclassifies used to be kept as "fooled" and
    # end the search for that row: single-draw PGD then left about 10 points more accuracy than FGSM here.
    # Judged on fixed draws, it is on average over five data seeds at least as strong as FGSM (4000-draw score).
    gaps = []
    for seed in range(5):
        views, _ = make_data(300, seed=seed)
        model = GaussianWeightNet(scale=1.0, seed=2)
        labels = (torch.cat([views["a"], views["b"]], 1) @ model.mean).argmax(-1)
        kwargs = {"eps": 0.3, "modalities": ("a", "b")}
        one_step = run_attack(
            model, views, labels, kind="fgsm", generator=torch.Generator().manual_seed(seed), **kwargs
        )
        searched = run_attack(
            model, views, labels, kind="pgd", steps=10, generator=torch.Generator().manual_seed(seed), **kwargs
        )
        score = torch.Generator().manual_seed(99)
        gaps.append(
            _accuracy(model, searched.views, labels, 4000, score)
            - _accuracy(model, one_step.views, labels, 4000, score)
        )
    assert sum(gaps) / len(gaps) <= 0.0, gaps


def test_adaptive_attack_lowers_mutual_information():
    views, _ = make_data(300, seed=1)
    model = GaussianWeightNet(scale=1.0, seed=2)
    labels = (torch.cat([views["a"], views["b"]], 1) @ model.mean).argmax(-1)
    kwargs = {"eps": 0.3, "modalities": ("a", "b"), "attack_samples": 32, "kind": "eot-pgd"}
    plain = run_attack(model, views, labels, generator=torch.Generator().manual_seed(0), **kwargs)
    adaptive = run_attack(model, views, labels, mi_weight=5.0, generator=torch.Generator().manual_seed(0), **kwargs)

    @torch.no_grad()
    def mi(v):
        p = sample_logits(model, v, 4000, generator=torch.Generator().manual_seed(7)).softmax(-1)
        mean = p.mean(0)
        return float((-(mean * mean.log()).sum(-1) + (p * p.log()).sum(-1).mean(0)).mean())

    assert mi(adaptive.views) < mi(plain.views)


def test_bad_modality_and_budget_are_config_errors(trained):
    model, views, labels = trained
    with pytest.raises(ConfigError, match="modalities"):
        pgd(model, views, labels, eps=0.1, modalities=("text",))
    with pytest.raises(ConfigError, match="eps"):
        fgsm(model, views, labels, eps=-0.1, modalities=("a",))
    with pytest.raises(ConfigError, match="eps"):
        fgsm(model, views, labels, eps=math.nan, modalities=("a",))


class _SingleInput(nn.Module):
    """The multi-input model as one flat input (a, b) for libraries that take a single tensor."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.predictive_logits({"a": x[:, :4], "b": x[:, 4:]})[0]


@pytest.mark.parametrize("norm", [NormKind.LINF, NormKind.L2])
def test_pgd_is_at_least_as_strong_as_art_at_equal_budget_and_steps(trained, norm):
    pytest.importorskip("art")
    from art.attacks.evasion import ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    model, views, labels = trained
    model = model.float()
    views32 = {m: x.float() for m, x in views.items()}
    try:
        eps, steps = (0.2, 10) if norm is NormKind.LINF else (0.5, 10)
        flat = torch.cat([views32["a"], views32["b"]], 1).numpy()
        classifier = PyTorchClassifier(
            model=_SingleInput(model), loss=nn.CrossEntropyLoss(), input_shape=(7,), nb_classes=3, device_type="cpu"
        )
        # Attack modality "a" only: ART takes per-feature budgets, zero on b's features (L-inf only).
        if norm is NormKind.LINF:
            budget = np.r_[np.full(4, eps), np.zeros(3)].astype(np.float32)
            art = ProjectedGradientDescent(
                classifier,
                norm=np.inf,
                eps=budget,
                eps_step=np.maximum(budget * 0.25, 1e-12),
                max_iter=steps,
                num_random_init=1,
                batch_size=len(flat),
                verbose=False,
            )
            modalities = ("a",)
        else:
            art = ProjectedGradientDescent(
                classifier,
                norm=2,
                eps=eps,
                eps_step=eps * 0.25,
                max_iter=steps,
                num_random_init=1,
                batch_size=len(flat),
                verbose=False,
            )
            modalities = ("a", "b")
        np.random.seed(0)  # ART draws its random start from NumPy's global generator
        x_art = torch.as_tensor(art.generate(flat))
        ours = pgd(
            model,
            views32,
            labels,
            eps=eps,
            steps=steps,
            modalities=modalities,
            norm=norm,
            generator=torch.Generator().manual_seed(0),
        )
        acc_art = _accuracy(model, {"a": x_art[:, :4], "b": x_art[:, 4:]}, labels)
        acc_ours = _accuracy(model, ours.views, labels)
        assert acc_ours <= acc_art + 0.01, (acc_ours, acc_art)  # margin: two of 200 samples
        assert acc_art < _accuracy(model, views32, labels)  # ART's attack did something
    finally:
        model.double()
