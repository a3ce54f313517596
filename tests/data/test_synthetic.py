import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from probfusion.config import SyntheticConfig
from probfusion.data import make_planted_interaction
from probfusion.data.synthetic import planted_scores


@pytest.mark.parametrize(("num_modalities", "rank", "num_classes"), [(2, 2, 2), (3, 3, 4), (2, 10, 3)])
def test_shapes_and_ground_truth(num_modalities, rank, num_classes):
    config = SyntheticConfig(num_samples=300, num_modalities=num_modalities, dim=6, rank=rank, num_classes=num_classes)
    data = make_planted_interaction(config, seed=1)
    names = tuple(f"m{m}" for m in range(num_modalities))
    assert data.modality_names == names
    assert all(x.shape == (300, 6) and x.dtype == np.float32 for x in data.views.values())
    assert data.labels.shape == (300,)
    assert data.num_classes == num_classes
    truth = data.ground_truth
    assert set(truth) == {f"u_{m}" for m in names} | {"theta", "score"}
    for m in names:
        assert truth[f"u_{m}"].shape == (rank, 6)
        np.testing.assert_allclose(np.linalg.norm(truth[f"u_{m}"], axis=1), 1.0, atol=1e-12)
    assert truth["theta"].shape == (num_classes, rank)
    assert truth["score"].shape == (300, num_classes)


@pytest.mark.parametrize("num_modalities", [2, 3])
@pytest.mark.parametrize("num_classes", [2, 5])
def test_planted_score_reproduces_labels_without_noise(num_modalities, num_classes):
    config = SyntheticConfig(num_samples=500, num_modalities=num_modalities, num_classes=num_classes, noise=0.0)
    data = make_planted_interaction(config, seed=2)
    truth = data.ground_truth
    views = [data.views[m].astype(np.float64) for m in data.modality_names]
    factors = [truth[f"u_{m}"] for m in data.modality_names]
    score = planted_scores(views, factors, truth["theta"])
    np.testing.assert_allclose(score, truth["score"])
    np.testing.assert_array_equal(score.argmax(axis=1), data.labels)
    # An independent recomputation of the CP form: sum_i theta_ki prod_m (u_m^(i) . x_m).
    manual = np.zeros_like(score)
    for i in range(config.rank):
        prod = np.ones(config.num_samples)
        for x, u in zip(views, factors, strict=True):
            prod = prod * (x @ u[i])
        manual += np.outer(prod, truth["theta"][:, i])
    np.testing.assert_allclose(manual, score, atol=1e-10)


def test_same_seed_same_data_and_other_seed_other_data():
    config = SyntheticConfig(num_samples=100)
    a, b, c = (make_planted_interaction(config, seed=s) for s in (7, 7, 8))
    assert np.array_equal(a.views["m0"], b.views["m0"])
    assert np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.views["m0"], c.views["m0"])


@pytest.mark.parametrize("num_modalities", [2, 3])
def test_single_modality_is_near_chance_for_a_linear_model(num_modalities):
    # 3000 training and 3000 test rows: the standard error of a test accuracy is about 0.009, so a
    # margin of 0.04 above the majority-class rate is over four standard errors.
    config = SyntheticConfig(num_samples=6000, num_modalities=num_modalities, noise=0.1)
    data = make_planted_interaction(config, seed=0)
    y = data.labels
    train, test = np.arange(3000), np.arange(3000, 6000)
    majority = np.bincount(y[test]).max() / test.size
    for name, x in data.views.items():
        model = LogisticRegression(max_iter=1000).fit(x[train], y[train])
        assert model.score(x[test], y[test]) < majority + 0.04, name
    # Sanity check of the test itself: the planted interaction features separate the classes.
    truth = data.ground_truth
    products = np.prod([data.views[m] @ truth[f"u_{m}"].T for m in data.modality_names], axis=0)
    model = LogisticRegression(max_iter=1000).fit(products[train], y[train])
    assert model.score(products[test], y[test]) > 0.9


def test_full_redundancy_copies_modality_zero():
    data = make_planted_interaction(SyntheticConfig(num_samples=50, redundancy=1.0), seed=0)
    np.testing.assert_allclose(data.views["m1"], data.views["m0"])


@pytest.mark.parametrize("num_classes", [2, 3])
def test_softmax_labels_follow_the_planted_logits(num_classes):
    # labels="softmax": y ~ Categorical(softmax(score / T)), so the class frequencies in bins of the planted
    # probability match it (a logistic model's own likelihood), unlike argmax labels with Gaussian noise.
    temperature = 0.5
    config = SyntheticConfig(num_samples=40_000, num_classes=num_classes, labels="softmax", noise=temperature)
    data = make_planted_interaction(config, seed=3)
    logits = data.ground_truth["score"] / temperature
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(
        np.bincount(data.labels, minlength=num_classes) / len(data.labels), probs.mean(0), atol=0.01
    )
    chosen = probs[np.arange(len(probs)), data.labels]
    bins = np.digitize(probs[:, 0], [0.2, 0.4, 0.6, 0.8])
    for b in range(5):  # calibration of the draws: frequency of class 0 in each bin of its probability
        rows = bins == b
        if rows.sum() > 1000:
            assert abs((data.labels[rows] == 0).mean() - probs[rows, 0].mean()) < 0.02
    assert chosen.mean() < 0.95  # the draws are noisy, not the argmax of the scores
    # Zero temperature is the noise-free argmax.
    exact = make_planted_interaction(SyntheticConfig(num_samples=500, labels="softmax", noise=0.0), seed=3)
    np.testing.assert_array_equal(exact.labels, exact.ground_truth["score"].argmax(axis=1))
    # A tiny positive temperature is the argmax too, without overflow (score / 1e-320 is inf).
    with np.errstate(invalid="raise"):  # the old score / T - max(score / T) was inf - inf: NaN
        tiny = make_planted_interaction(SyntheticConfig(num_samples=500, labels="softmax", noise=1e-320), seed=3)
    np.testing.assert_array_equal(tiny.labels, exact.labels)
