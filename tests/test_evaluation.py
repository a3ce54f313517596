import json

import pytest
import torch
from torch import nn

from probfusion.api import LoadedRun, fit, load_run
from probfusion.config import DataConfig, EvaluationConfig, RunConfig, TrainConfig
from probfusion.errors import ConfigError, RunExistsError
from probfusion.evaluation import evaluate, latest_run
from probfusion.inference.predictive import score_classifier
from probfusion.metrics import aurc, coverage_threshold
from probfusion.robustness import monotone_check, strength_check

REQUIRED = ("attack", "modality", "eps", "accuracy", "nll", "brier", "ece", "auroc_entropy", "auroc_mi")
FAST = {"steps": 2, "eps": (0.1, 0.3), "samples": 4}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    config = RunConfig(train=TrainConfig(epochs=3), device="cpu")
    return load_run(fit(config, root / "lmf").path)


@pytest.fixture(scope="module")
def speaker_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("speaker")
    config = RunConfig(data=DataConfig(split="speaker"), train=TrainConfig(epochs=1), device="cpu")
    return load_run(fit(config, root / "lmf").path)


class NoisyTemperature(nn.Module):
    """A stochastic predictor for the tests: the run's logits times a random per-class temperature per draw."""

    def __init__(self, base):
        super().__init__()
        self.base = base
        self.modalities = base.modalities

    def predictive_logits(self, views, num_samples=1, *, generator=None):
        logits = self.base(views)
        scale = 1.0 + 0.5 * torch.randn(num_samples, 1, logits.shape[-1], generator=generator)
        return logits.unsqueeze(0) * scale


def test_pgd_evaluation_writes_rows_checks_and_figures(run):
    report = evaluate(run, EvaluationConfig(**FAST), name="pgd")
    rows = json.loads((report.path / "rows.json").read_text())["rows"]
    assert len(rows) == 1 + 3 * 2  # clean, then (image, audio, all) x two budgets
    assert all(key in row for row in rows for key in REQUIRED)
    assert rows[0]["attack"] == "none"
    assert rows[0]["eps"] == 0.0
    assert (report.path / "rows.csv").read_text().splitlines()[0].startswith("kind,attack,variant,modality,eps")
    checks = json.loads((report.path / "checks.json").read_text())
    assert {"monotone", "pgd_vs_fgsm", "stability", "zero_gradients", "robustness"} <= set(checks)
    assert checks["monotone"]["passed"]
    assert checks["pgd_vs_fgsm"]["passed"]
    figures = (
        "accuracy_vs_budget.png",
        "ece_vs_budget.png",
        "reliability.png",
        "entropy_hist.png",
        "risk_coverage.png",
    )
    for figure in figures:
        assert (report.path / "figures" / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "accuracy" in report.table()
    assert all(line.startswith(("PASS", "FAIL")) for line in report.check_lines())


def test_clean_row_matches_the_independent_scorer(run):
    report = evaluate(run, EvaluationConfig(attack="none"), name="clean")
    expected = score_classifier(run.model, run.tensors(run.splits()[2]))
    assert report.rows[0]["accuracy"] == pytest.approx(expected["accuracy"])
    assert report.rows[0]["nll"] == pytest.approx(expected["nll"], rel=1e-5)
    assert report.rows[0]["brier"] == pytest.approx(expected["brier"], rel=1e-5)


def test_selective_prediction_columns_agree_with_an_independent_computation(run):
    report = evaluate(run, EvaluationConfig(attack="none", coverage=0.8), name="selective")
    row = report.rows[0]
    test, val = run.tensors(run.splits()[2]), run.tensors(run.splits()[1])
    probs = run.model.predictive_logits(test.views, 1).softmax(-1).mean(0).double().detach()
    entropy = -(probs * probs.clamp_min(1e-300).log()).sum(-1)
    correct = probs.argmax(-1) == test.labels
    assert row["aurc_entropy"] == pytest.approx(aurc(entropy, correct), abs=1e-6)
    val_probs = run.model.predictive_logits(val.views, 1).softmax(-1).mean(0).double().detach()
    threshold = coverage_threshold(-(val_probs * val_probs.clamp_min(1e-300).log()).sum(-1), 0.8)
    answered = entropy <= threshold + 1e-9
    assert row["coverage"] == pytest.approx(float(answered.double().mean()), abs=2 / len(correct))
    assert row["accuracy_at_coverage"] == pytest.approx(float(correct[answered].double().mean()), abs=0.02)
    assert row["aurc_mi"] != row["aurc_mi"]  # deterministic model: no mutual information, NaN not 0


def test_never_overwrites_unless_asked_and_names_are_fresh(run):
    config = EvaluationConfig(attack="fgsm", eps=(0.1,), modality="all", samples=2)
    first = evaluate(run, config, name="keep")
    with pytest.raises(RunExistsError, match="--overwrite"):
        evaluate(run, config, name="keep")
    again = evaluate(run, config, name="keep", overwrite=True)
    assert again.path == first.path
    auto = [evaluate(run, config).path.name for _ in range(2)]
    assert auto == ["fgsm-linf", "fgsm-linf-2"]
    assert not [p for p in (run.path / "evaluations").iterdir() if p.name.startswith(".")]  # no staging left


def test_bad_modality_writes_nothing(tmp_path, run):
    before = sorted(p.name for p in (run.path / "evaluations").iterdir()) if (run.path / "evaluations").exists() else []
    with pytest.raises(ConfigError, match="no modality 'text'"):
        evaluate(run, EvaluationConfig(modality="text"), name="bad")
    after = sorted(p.name for p in (run.path / "evaluations").iterdir()) if (run.path / "evaluations").exists() else []
    assert before == after


def test_stochastic_model_gets_eot_checks_and_an_adaptive_attack(run):
    noisy = LoadedRun(
        path=run.path,
        config=run.config,
        model=NoisyTemperature(run.model),
        standardizer=run.standardizer,
        metrics=run.metrics,
    )
    config = EvaluationConfig(attack="eot-pgd", modality="all", attack_samples=4, mi_weight=1.0, **FAST)
    report = evaluate(noisy, config, name="eot")
    variants = {(r["variant"], r["eps"]) for r in report.rows[1:]}
    assert variants == {("standard", 0.1), ("standard", 0.3), ("adaptive", 0.1), ("adaptive", 0.3)}
    assert report.rows[0]["mi"] > 0  # the predictive really is stochastic
    assert "eot_vs_pgd" in report.checks
    assert "pgd_accuracy" in report.checks["eot_vs_pgd"]
    assert report.checks["stochastic_model"] is True
    assert (report.path / "figures" / "mi_hist.png").is_file()


@pytest.mark.parametrize("shift", ["noise", "dropout"])
def test_severity_shifts_give_one_row_per_modality_and_severity(run, shift):
    report = evaluate(run, EvaluationConfig(shift=shift, severities=(1, 5), samples=2), name=shift)
    assert [(r["modality"], r["eps"]) for r in report.rows[1:]] == [
        (m, s) for m in ("image", "audio", "all") for s in (1.0, 5.0)
    ]
    # Mild random noise may lift an underfit model's accuracy by a few samples; the check reports it. Severity 5
    # must hurt on every modality set.
    assert isinstance(report.checks["monotone"]["passed"], bool)
    assert all(r["accuracy"] < report.rows[0]["accuracy"] for r in report.rows[1:] if r["eps"] == 5.0)
    assert set(report.checks["robustness"]["relative"]) == {"image standard", "audio standard", "all standard"}


def test_missing_modality_rows_per_imputation(run):
    report = evaluate(run, EvaluationConfig(shift="missing", samples=2), name="missing")
    got = [(r["modality"], r["variant"]) for r in report.rows[1:]]
    assert got == [(m, v) for m in ("image", "audio") for v in ("mean", "zero", "marginal")]
    assert all(r["accuracy"] < report.rows[0]["accuracy"] for r in report.rows[1:])


def test_speaker_shift_needs_a_speaker_split(run, speaker_run):
    with pytest.raises(ConfigError, match="--split speaker"):
        evaluate(run, EvaluationConfig(shift="speaker"), name="speaker")
    report = evaluate(speaker_run, EvaluationConfig(shift="speaker", samples=2), name="speaker")
    assert [r["variant"] for r in report.rows] == ["clean", "seen-speakers", "held-out nicolas"]
    assert report.rows[-1]["accuracy"] == report.rows[0]["accuracy"]  # the test split is the held-out speaker
    assert 0.0 <= report.rows[-1]["auroc_entropy"] <= 1.0


def test_conflict_rows_are_the_recorded_ones_and_the_aurocs_positives(run):
    # Evaluate's conflict rows rebuilt outside it: the same generator gives the same record (rows, kinds,
    # modalities, donors) as conflict_rows.csv, and the row's AUROC scores exactly those rows against clean ones.
    import csv

    from probfusion.metrics import detection_auroc
    from probfusion.metrics.uncertainty import predictive_entropy
    from probfusion.robustness import conflictive_views

    report = evaluate(run, EvaluationConfig(shift="conflict", severities=(3,), samples=1), name="conflict-check")
    written = list(csv.DictReader((report.path / "conflict_rows.csv").read_text().splitlines()))
    test, train = run.tensors(run.splits()[2]), run.tensors(run.splits()[0])
    scale = {m: x.amax(dim=0) - x.amin(dim=0) for m, x in train.views.items()}
    views, record = conflictive_views(
        dict(test.views), test.labels, severity=3, noise_scale=scale, generator=torch.Generator().manual_seed(0)
    )
    assert [(int(r["row"]), r["kind"], r["modalities"], int(r["donor_row"])) for r in written] == [
        (int(r), k, ";".join(m), int(d))
        for r, k, m, d in zip(record.rows, record.kinds, record.modalities, record.donors, strict=True)
    ]
    row = report.rows[1]
    assert row["conflict_rows"] == len(written) == row["noise_rows"] + row["swap_rows"]
    with torch.no_grad():
        clean = predictive_entropy(run.model.predictive_logits(dict(test.views), 1).softmax(-1))
        shifted = predictive_entropy(run.model.predictive_logits(views, 1).softmax(-1))
    expect = detection_auroc(torch.as_tensor(clean).double(), torch.as_tensor(shifted).double()[record.rows])
    assert row["auroc_entropy"] == pytest.approx(expect, abs=1e-6)


def test_latest_run_picks_the_newest_complete_run(tmp_path, run):
    assert latest_run(tmp_path) is None
    assert latest_run(tmp_path / "absent") is None
    assert latest_run(run.path.parent) == run.path


def test_every_row_is_scored_under_the_same_posterior_draws(run, monkeypatch):
    from probfusion import evaluation

    noisy = NoisyTemperature(run.model)
    views = dict(run.tensors(run.splits()[2]).views)
    whole = evaluation._predict(noisy, views, 6, seed=3)
    monkeypatch.setattr(evaluation, "_BATCH", 7)  # many chunks: each must restart the same draws
    chunked = evaluation._predict(noisy, views, 6, seed=3)
    assert torch.allclose(whole, chunked, atol=1e-6)  # equal up to float32 batch-size rounding
    assert not torch.allclose(whole, evaluation._predict(noisy, views, 6, seed=4), rtol=1e-3)


def test_strength_check_allows_chance_but_not_a_significant_gap():
    n = 400
    weak = torch.zeros(n, dtype=torch.bool)
    weak[:200] = True

    def check(strong):
        return strength_check(
            {("all", 0.1): strong}, {("all", 0.1): weak}, strong_name="PGD", weak_name="fgsm", tol=0.005
        )

    one_way = weak.clone()
    one_way[200:206] = True  # 6 rows gained, none lost: +1.5 points, beyond 2 paired SE (1.2 points)
    assert not check(one_way)["passed"]
    noisy = weak.clone()
    noisy[200:220] = True  # 20 rows gained ...
    noisy[:14] = False  # ... and 14 lost: +1.5 points, but 34 discordant rows make that chance
    assert check(noisy)["passed"]
    tie = check(weak)
    assert tie["passed"]
    assert "allowed 0.0050" in tie["detail"]  # no discordant rows: the floor tolerance
    assert tie["fgsm_accuracy"] == {"all@0.1": 0.5}


def test_monotone_check_flags_a_rise_beyond_the_tolerance():
    assert monotone_check({"all": [0.9, 0.8, 0.7]}, tol=0.005)["passed"]
    assert monotone_check({"all": [0.9, 0.8, 0.804]}, tol=0.005)["passed"]
    failed = monotone_check({"image": [0.9, 0.8, 0.7], "all": [0.9, 0.8, 0.82]}, tol=0.005)
    assert not failed["passed"]
    assert failed["max_rise"] == pytest.approx(0.02)
