"""probfusion predict: new rows through a fitted run (issue 13)."""

import csv
import dataclasses
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from probfusion.api import fit, load_run
from probfusion.cli.main import cli
from probfusion.config import BayesConfig, EvaluationConfig, FusionConfig
from probfusion.data.features import check_features, load_features
from probfusion.errors import InputDataError
from probfusion.evaluation import evaluate
from probfusion.metrics import negative_log_likelihood
from probfusion.prediction import DONORS, PredictionConfig, _reference, predict
from tests.cli.test_cli import assert_clean_error
from tests.helpers import small_config, write_interaction_npz


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    data = write_interaction_npz(root / "d.npz")
    run = fit(small_config(str(data), epochs=20), root / "run")
    return root, load_run(run.path)


def _raw_rows(run, part):
    """The raw (unstandardised) rows of one split of the run, as a user would hand them in."""
    dataset = run.splits()[("train", "val", "test").index(part)]
    return {m: np.asarray(x, dtype=np.float64) for m, x in dataset.views.items()}, dataset.labels


def test_predicting_the_runs_own_test_rows_reproduces_its_test_accuracy(fitted):
    _, run = fitted
    views, labels = _raw_rows(run, "test")
    result = predict(run, check_features(views, run.input_dims, labels=labels, source="test"))
    assert result.summary["accuracy"] == pytest.approx(run.metrics["test"]["accuracy"])
    np.testing.assert_allclose(result.probabilities.sum(axis=1), 1.0, atol=1e-6)


def test_the_flag_answers_the_target_share_of_the_validation_rows(fitted):
    _, run = fitted
    views, labels = _raw_rows(run, "val")
    for coverage in (0.5, 0.8, 0.95):
        result = predict(run, check_features(views, run.input_dims, source="val"), PredictionConfig(coverage=coverage))
        assert np.mean(~result.flag) >= coverage
        assert np.mean(~result.flag) < coverage + 2 / len(labels) + 1e-9


def test_a_missing_modality_is_averaged_over_training_donors(fitted):
    _, run = fitted
    views, _ = _raw_rows(run, "test")
    views["b"][:5] = np.nan
    result = predict(run, check_features(views, run.input_dims, source="t"), PredictionConfig(seed=3))
    assert result.rows()[0]["missing"] == "b"
    # Brute force: each row with each donor's b, then the mean over donors.
    _, donors = _reference(run, 1, 3)
    a = torch.as_tensor((views["a"][:5] - run.standardizer.mean["a"]) / run.standardizer.std["a"], dtype=torch.float32)
    expected = torch.stack(
        [
            run.model.predictive_logits({"a": a, "b": donors["b"][k].expand(5, -1)}, 1).softmax(-1)[0]
            for k in range(DONORS)
        ]
    ).mean(0)
    np.testing.assert_allclose(result.probabilities[:5], expected.detach().numpy(), atol=1e-5)
    mean = predict(run, check_features(views, run.input_dims, source="t"), PredictionConfig(imputation="mean"))
    assert not np.allclose(mean.probabilities[:5], result.probabilities[:5])
    np.testing.assert_allclose(mean.probabilities[5:], result.probabilities[5:])  # complete rows: the same


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda v: v.update(a=v["a"][:, :3]), "'a' has 3 features; the run expects 4"),
        (lambda v: v.update(c=v["a"]), "'c', which the run does not have"),
        (lambda v: v["a"].__setitem__((0, 1), np.nan), "NaN in some features only"),
        (lambda v: v["a"].__setitem__((0, 1), np.inf), "holds inf"),
        (lambda v: [v[m].__setitem__(2, np.nan) for m in v], "row 2 has no modality"),
        (lambda v: v.update(b=v["b"][:4]), "different row counts"),
    ],
)
def test_bad_rows_are_one_line_errors(fitted, change, fragment):
    _, run = fitted
    views, _ = _raw_rows(run, "test")
    change(views)
    with pytest.raises(InputDataError, match=fragment.replace("(", r"\(")) as info:
        check_features(views, run.input_dims, source="rows")
    assert "\n" not in str(info.value)


def test_cli_writes_one_row_per_input_row_and_prints_only_the_path(fitted, tmp_path):
    _, run = fitted
    views, labels = _raw_rows(run, "test")
    np.savez(tmp_path / "new.npz", x_a=views["a"], y=labels)  # modality b left out: every row marginalises it
    out = tmp_path / "p.csv"
    result = CliRunner().invoke(cli, ["predict", str(run.path), "--data", str(tmp_path / "new.npz"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(labels)
    assert {"predicted", "p_0", "p_1", "entropy", "mutual_information", "flag", "missing", "label"} <= set(rows[0])
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["missing_rows"] == {"a": 0, "b": len(labels)}
    assert len(summary["data_sha256"]) == 64
    assert summary["run_data_sha256"] == run.data_fingerprint["sha256"]
    again = CliRunner().invoke(cli, ["predict", str(run.path), "--data", str(tmp_path / "new.npz"), "--out", str(out)])
    assert_clean_error(again, 1, "already exists")


def test_cli_wrong_width_is_a_one_line_error_and_writes_nothing(fitted, tmp_path):
    _, run = fitted
    np.savez(tmp_path / "bad.npz", x_a=np.zeros((3, 5)))
    result = CliRunner().invoke(
        cli, ["predict", str(run.path), "--data", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "p.csv")]
    )
    assert_clean_error(result, 1, "'a' has 5 features; the run expects 4")
    assert not (tmp_path / "p.csv").exists()


def test_load_features_reads_unlabelled_npz(tmp_path):
    np.savez(tmp_path / "x.npz", x_a=np.ones((2, 4)))
    batch = load_features(tmp_path / "x.npz", {"a": 4, "b": 3})
    assert batch.labels is None
    assert batch.present["a"].all()
    assert not batch.present["b"].any()


def test_the_python_api_takes_raw_arrays_and_matches_the_cli_route(fitted):
    _, run = fitted
    views, labels = _raw_rows(run, "test")
    direct = run.predict(views, labels=labels)
    routed = predict(run, check_features(views, run.input_dims, labels=labels, source="t"))
    np.testing.assert_array_equal(direct.probabilities, routed.probabilities)
    assert direct.label.shape == (len(labels),)
    assert direct.summary["accuracy"] == pytest.approx(run.metrics["test"]["accuracy"])


def test_evaluate_data_on_the_runs_own_test_rows_gives_its_clean_row_and_records_them(fitted, tmp_path):
    _, run = fitted
    views, labels = _raw_rows(run, "test")
    np.savez(tmp_path / "ext.npz", x_a=views["a"], x_b=views["b"], y=np.asarray(run.class_labels)[labels])
    own = CliRunner().invoke(cli, ["evaluate", str(run.path), "--attack", "none", "--name", "own", "-q"])
    ext = CliRunner().invoke(
        cli, ["evaluate", str(run.path), "--attack", "none", "--name", "ext", "--data", str(tmp_path / "ext.npz"), "-q"]
    )
    assert own.exit_code == 0, own.output
    assert ext.exit_code == 0, ext.output
    rows = {
        name: json.loads((run.path / "evaluations" / name / "rows.json").read_text())["rows"][0]
        for name in ("own", "ext")
    }
    for key in ("accuracy", "nll", "ece", "aurc_entropy"):
        assert rows["ext"][key] == pytest.approx(rows["own"][key], abs=1e-6)
    scored = json.loads((run.path / "evaluations" / "ext" / "data.json").read_text())
    assert scored["source"] == str(tmp_path / "ext.npz")
    assert scored["sha256"] == json.loads((run.path / "evaluations" / "own" / "data.json").read_text())["sha256"]


@pytest.mark.parametrize(
    ("arrays", "fragment"),
    [
        ({"x_a": np.zeros((3, 4)), "x_b": np.zeros((3, 2)), "y": np.zeros(3)}, "'b' has 2 features; the run expects 3"),
        ({"x_a": np.zeros((3, 4)), "y": np.zeros(3)}, "'b' is missing on 3 rows"),
        ({"x_a": np.zeros((3, 4)), "x_b": np.zeros((3, 3))}, "no labels y"),
        ({"x_a": np.zeros((3, 4)), "x_b": np.zeros((3, 3)), "y": np.array([0, 1, 7])}, "label(s) ['7']"),
    ],
)
def test_evaluate_data_refuses_rows_that_do_not_fit_the_run(fitted, tmp_path, arrays, fragment):
    _, run = fitted
    np.savez(tmp_path / "bad.npz", **arrays)
    before = sorted(p.name for p in (run.path / "evaluations").iterdir()) if (run.path / "evaluations").exists() else []
    result = CliRunner().invoke(cli, ["evaluate", str(run.path), "--data", str(tmp_path / "bad.npz"), "-q"])
    assert_clean_error(result, 1, fragment)
    after = sorted(p.name for p in (run.path / "evaluations").iterdir()) if (run.path / "evaluations").exists() else []
    assert after == before


def test_evidential_models_drop_a_missing_view_from_their_combination_and_report_vacuity(tmp_path):
    data = write_interaction_npz(tmp_path / "d.npz")
    run = load_run(fit(small_config(str(data), epochs=3, model="tmc"), tmp_path / "tmc").path)
    views, labels = _raw_rows(run, "test")
    views["b"][:4] = np.nan
    result = predict(run, check_features(views, run.input_dims, labels=labels, source="t"))
    assert result.vacuity is not None
    assert np.all((result.vacuity > 0) & (result.vacuity <= 1))
    a = torch.as_tensor((views["a"][:4] - run.standardizer.mean["a"]) / run.standardizer.std["a"], dtype=torch.float32)
    alone = run.model.opinions({"a": a}, subset=True).alpha  # the opinion of modality a alone
    np.testing.assert_allclose(
        result.probabilities[:4], (alone / alone.sum(-1, keepdim=True)).detach().numpy(), atol=1e-5
    )
    assert "vacuity" in result.rows()[0]


def test_predict_and_evaluate_score_a_bayesian_run_under_the_same_draws(tmp_path):
    data = write_interaction_npz(tmp_path / "d.npz")
    config = small_config(str(data), epochs=3)
    config = dataclasses.replace(
        config,
        fusion=FusionConfig(rank=4, fused_dim=8, rank_prior="ard"),
        bayes=BayesConfig(svi_steps=30, posterior_samples=8),
    )
    run = load_run(fit(config, tmp_path / "ard").path)
    views, labels = _raw_rows(run, "test")
    prediction = predict(run, check_features(views, run.input_dims, source="t"), PredictionConfig(samples=16, seed=5))
    row = evaluate(run, EvaluationConfig(attack="none", samples=16, seed=5)).rows[0]
    nll = negative_log_likelihood(torch.as_tensor(prediction.probabilities), torch.as_tensor(labels))
    assert nll == pytest.approx(row["nll"], abs=1e-6)
    assert prediction.mutual_information.max() > 0  # a posterior, not one draw


@pytest.mark.parametrize("model", ["tfn", "concat", "rcml", "gp-mkl"])
def test_predict_runs_on_every_model_kind_with_and_without_a_missing_modality(tmp_path, model):
    data = write_interaction_npz(tmp_path / "d.npz", n=120)
    run = load_run(fit(small_config(str(data), epochs=2, model=model), tmp_path / model).path)
    views, labels = _raw_rows(run, "test")
    complete = run.predict(views, labels=labels, num_samples=64)
    clean = evaluate(run, EvaluationConfig(attack="none", samples=64)).rows[0]  # the same rows and draws
    nll = negative_log_likelihood(torch.as_tensor(complete.probabilities), torch.as_tensor(labels))
    assert nll == pytest.approx(clean["nll"], abs=1e-6)
    views["a"][:3] = np.nan
    partial = run.predict(views, num_samples=64)
    assert partial.labels is None
    np.testing.assert_allclose(partial.probabilities.sum(axis=1), 1.0, atol=1e-6)
    # The GP draws its latent function independently per row, so a row's draws depend on the rows predicted with
    # it: complete rows agree to Monte Carlo noise there, exactly for models that draw weights.
    atol = 0.1 if model == "gp-mkl" else 1e-6
    np.testing.assert_allclose(partial.probabilities[3:], complete.probabilities[3:], atol=atol)


def test_a_run_predicts_new_rows_without_its_training_data(tmp_path):
    data = write_interaction_npz(tmp_path / "d.npz")
    run = fit(small_config(str(data), epochs=3), tmp_path / "run")
    loaded = load_run(run.path)
    views, _ = _raw_rows(loaded, "test")
    with_data = loaded.predict(views)
    data.unlink()  # a deployment machine: the run folder only
    views["b"][:5] = np.nan
    alone = load_run(run.path)
    without = alone.predict(views)
    np.testing.assert_allclose(without.probabilities[5:], with_data.probabilities[5:], atol=1e-6)
    assert without.threshold == with_data.threshold
    assert without.rows()[0]["missing"] == "b"
