"""probfusion.tune on tiny problems: it improves on its first trial, shares one journal between processes
without losing or repeating trials, resumes, prunes, and leaves a best run that loads."""

import csv
import dataclasses
import json
import math

import optuna
import pytest
import torch
from optuna.trial import TrialState

from probfusion import load_run
from probfusion.config import DataConfig, FusionConfig, JWAEConfig, RunConfig, SyntheticConfig, TrainConfig
from probfusion.errors import ConfigError, InputDataError, ProbfusionError, RunExistsError
from probfusion.inference.training import TrainingState
from probfusion.options import TuneSelection
from probfusion.tuning import ChoiceDimension, FloatDimension, IntDimension, SearchSpace, TuneConfig, outputs, tune
from probfusion.tuning.selection import paired_margin, select_trial, validation_nll_rows
from probfusion.tuning.study import StudyFolder, open_study
from probfusion.tuning.worker import pruning_callback

BASE = RunConfig(
    data=DataConfig(name="synthetic", synthetic=SyntheticConfig(num_samples=300)),
    jwae=JWAEConfig(latent_dim=4, hidden_dim=16),
    fusion=FusionConfig(rank=2, fused_dim=8),
    train=TrainConfig(epochs=4),
    device="cpu",
)
# av-digits (10 classes): a few epochs separate good learning rates and widths from bad ones.
# Without the logistic-regression pool: these tests are about the search, which the pool would flatten.
AV_DIGITS = RunConfig(
    jwae=JWAEConfig(latent_dim=4, hidden_dim=16),
    fusion=FusionConfig(rank=2, fused_dim=8, linear_pool=False),
    device="cpu",
)
# One fusion kind (model=None): these tests are about the search within a kind (the kinds' own test below).
SPACE = SearchSpace(
    latent_dim=IntDimension(2, 8), hidden_dim=IntDimension(8, 32, log=True), epochs=IntDimension(3, 8), model=None
)
KINDS = dataclasses.replace(SPACE, model=ChoiceDimension(("lmf", "concat")))


def settings(trials, **overrides):
    # baseline_trial off: these tests are about the drawn trials (the baseline has its own test below).
    values = {"space": SPACE, "trials": trials, "startup_trials": 4, "prune_startup_trials": 3, "baseline_trial": False}
    values.update(overrides)
    return TuneConfig(**values)


def read_rows(out):
    with (out / "trials.csv").open() as handle:
        return list(csv.DictReader(handle))


def assert_folders_match_states(out, rows):
    for row in rows:
        folder = out / "trials" / f"{int(row['number']):04d}"
        assert folder.is_dir() == (row["state"] == "COMPLETE"), row


def test_tune_beats_its_first_trial_and_its_best_run_loads(tmp_path):
    out = tmp_path / "study"
    space = dataclasses.replace(SPACE, epochs=IntDimension(2, 6))
    result = tune(AV_DIGITS, out, settings(10, space=space))
    rows = read_rows(out)
    assert [int(r["number"]) for r in rows] == list(range(10))
    first = float(rows[0]["value"])
    assert rows[0]["state"] == "COMPLETE"  # nothing to prune against yet
    assert result.best_value <= first - 0.3  # seeded (measured: 1.21 -> 0.27); chance level is ln 10 = 2.30
    assert_folders_match_states(out, rows)
    # The best run is an ordinary run whose validation NLL is the study's best value.
    loaded = load_run(result.best_run)
    assert loaded.metrics["val"]["nll"] == result.best_value
    summary = json.loads((out / "study.json").read_text())
    assert summary["best_value"] == result.best_value
    assert summary["best_trial"] == result.best_trial
    assert summary["n_trials"]["COMPLETE"] + summary["n_trials"]["PRUNED"] == 10
    assert (out / "optimization_history.png").read_bytes()[:4] == b"\x89PNG"
    best_row = rows[result.best_trial]
    assert float(best_row["value"]) == result.best_value
    assert int(best_row["params_latent_dim"]) == loaded.config.jwae.latent_dim


def test_trial_zero_fits_the_base_config_as_it_is(tmp_path):
    out = tmp_path / "study"
    result = tune(BASE, out, settings(3, baseline_trial=True))
    rows = read_rows(out)
    assert rows[0]["note"].startswith("baseline")
    assert all(rows[0][f"params_{name}"] == "" for name in ("latent_dim", "hidden_dim", "epochs"))
    assert all(rows[k]["params_latent_dim"] != "" for k in (1, 2) if rows[k]["state"] == "COMPLETE")
    baseline = load_run(out / "trials" / "0000")
    drawn = dataclasses.replace(baseline.config, data=BASE.data, seed=BASE.seed)
    assert (drawn.jwae.latent_dim, drawn.jwae.hidden_dim, drawn.train.epochs) == (4, 16, 4)  # BASE's own values
    assert result.best_value <= float(rows[0]["value"])


def test_the_guarded_selection_keeps_trial_zero_unless_the_lowest_wins_by_z_paired_standard_errors(tmp_path):
    out = tmp_path / "study"
    weak = dataclasses.replace(BASE, train=TrainConfig(epochs=1))  # trial 0 trains 1 epoch, drawn ones 3 to 8
    tune(weak, out, settings(4, baseline_trial=True, selection="lowest"))
    summary = json.loads((out / "study.json").read_text())
    lowest = summary["lowest_trial"]
    assert summary["best_trial"] == lowest
    assert lowest != 0  # seeded: a drawn trial beats one epoch
    rows = {n: validation_nll_rows(StudyFolder(out).trial_dir(n)) for n in {0, lowest}}
    for n, nll in rows.items():  # the per-row NLL is what fit scored as val.nll
        assert float(nll.mean()) == pytest.approx(load_run(StudyFolder(out).trial_dir(n)).metrics["val"]["nll"])
    margin = paired_margin(rows[0], rows[lowest])
    # Rerunning a finished study only rewrites its outputs, so both guard settings read the same four trials.
    for z, kept in ((1e9, 0), (0.0, lowest if margin > 0 else 0)):
        result = tune(weak, out, settings(4, baseline_trial=True, guard_z=z))
        assert result.best_trial == kept, result.selection_reason
        assert load_run(result.best_run).metrics["val"]["nll"] == result.best_value
        stored = json.loads((out / "study.json").read_text())["selection"]
        assert stored["rule"] == "guarded"
        assert stored["margin_se"] == pytest.approx(margin)


def test_paired_margin_is_the_mean_difference_over_its_standard_error():
    base, other = torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([0.5, 1.0, 2.5, 3.0])
    d = base - other  # 0.5, 1.0, 0.5, 1.0: mean 0.75, sd 0.2887
    assert paired_margin(base, other) == pytest.approx(0.75 / (d.std().item() / 2.0))
    assert paired_margin(base, base) == 0.0
    assert paired_margin(base, base - 0.5) == math.inf  # the same gain on every row: no spread, a sure win
    assert paired_margin(base, base + 0.5) == -math.inf
    assert paired_margin(base[:1], other[:1]) == 0.0  # one row has no standard error: the guard keeps the base


def test_the_guard_reads_the_per_row_nll_stored_with_the_trials_when_their_folders_are_gone(tmp_path):
    out = tmp_path / "study"
    weak = dataclasses.replace(BASE, train=TrainConfig(epochs=1))
    tune(weak, out, settings(4, baseline_trial=True, guard_z=0.0))
    study = open_study(StudyFolder(out), settings(4, baseline_trial=True), weak, create=False)
    trials = study.get_trials(deepcopy=False)
    assert trials[0].user_attrs["baseline"] is True
    assert not any(t.user_attrs.get("baseline") for t in trials[1:])
    for t in trials:
        if t.state is TrialState.COMPLETE:  # stored rows are what the folder's run scores
            stored = torch.tensor(t.user_attrs["val_nll_rows"], dtype=torch.float64)
            assert torch.equal(stored, validation_nll_rows(StudyFolder(out).trial_dir(t.number)))
    lowest = min((t for t in trials if t.state is TrialState.COMPLETE), key=lambda t: t.value)
    selection = select_trial(trials, lowest, TuneSelection.GUARDED, 0.0, StudyFolder(tmp_path / "elsewhere"))
    assert selection.margin_se is not None, selection.reason  # compared without any trial folder
    # The same trials from an older version: no stored rows, and their folders not on this machine.
    bare = [
        optuna.trial.create_trial(
            value=t.value,
            params=t.params,
            distributions=t.distributions,
            user_attrs={k: v for k, v in t.user_attrs.items() if k != "val_nll_rows"},
        )
        for t in trials
    ]
    fallback = select_trial(bare, bare[lowest.number], TuneSelection.GUARDED, 0.0, StudyFolder(tmp_path / "none"))
    assert fallback.trial is bare[lowest.number]
    assert "no per-row" in fallback.reason


def test_a_failed_baseline_is_made_up_by_the_next_trial(tmp_path):
    out = tmp_path / "study"
    folder = StudyFolder(out)
    folder.path.mkdir()
    (out / "trials").mkdir()
    study = open_study(folder, settings(3, baseline_trial=True), BASE, create=True)
    first = study.ask()
    first.set_user_attr("baseline", True)
    study.tell(first, state=TrialState.FAIL)  # an interrupted baseline
    tune(BASE, out, settings(3, baseline_trial=True))
    trials = open_study(folder, settings(3, baseline_trial=True), BASE, create=False).get_trials(deepcopy=False)
    assert [t.state for t in trials][1:] == [TrialState.COMPLETE] * 3
    assert trials[1].user_attrs.get("baseline") is True
    assert not trials[1].params
    assert all(t.params for t in trials[2:])
    summary = json.loads((out / "study.json").read_text())
    assert summary["selection"]["reason"] != "lowest validation NLL (no complete baseline trial to guard with)"


def test_each_fusion_kind_has_a_baseline_and_the_guard_keeps_the_lower_one(tmp_path):
    out = tmp_path / "study"
    result = tune(BASE, out, settings(4, space=KINDS, baseline_trial=True, guard_z=1e9))
    rows = read_rows(out)
    assert [r["note"] for r in rows[:2]] == [
        "baseline: the base config, nothing drawn",
        "baseline: the base config with model concat, nothing drawn",
    ]
    assert [rows[0]["params_model"], rows[1]["params_model"]] == ["", "concat"]
    assert all(r["params_model"] in ("lmf", "concat") and r["params_latent_dim"] for r in rows[2:])
    kinds = [load_run(out / "trials" / f"{n:04d}").config.fusion for n in (0, 1)]
    assert [k.model.value for k in kinds] == ["lmf", "concat"]
    assert (kinds[1].rank, kinds[1].fused_dim) == (BASE.fusion.rank, BASE.fusion.fused_dim)  # nothing else moved
    values = [float(rows[n]["value"]) for n in (0, 1)]
    lower = min((0, 1), key=lambda n: values[n])
    assert result.best_trial == lower, result.selection_reason  # an unreachable margin keeps the better baseline
    assert "the lower of 2 baselines" in result.selection_reason
    summary = json.loads((out / "study.json").read_text())
    assert summary["selection"]["baseline_trials"] == [0, 1]
    # What a resumed study writes before its trials: the lowest trial so far, nothing chosen yet.
    study = open_study(StudyFolder(out), settings(4, space=KINDS, baseline_trial=True), BASE, create=False)
    early = outputs.summary(study, settings(4, space=KINDS, baseline_trial=True), BASE, None)
    assert (early["best_trial"], early["lowest_trial"]) == (None, summary["lowest_trial"])
    assert early["selection"]["reason"].startswith("not chosen yet")
    assert summary["best_params"] == ({} if lower == 0 else {"model": "concat"})
    assert load_run(result.best_run).config.fusion.model.value == ("lmf" if lower == 0 else "concat")


def test_two_workers_run_each_kind_s_baseline_once(tmp_path):
    out = tmp_path / "study"
    tune(BASE, out, settings(4, space=KINDS, baseline_trial=True, workers=2))
    study = open_study(StudyFolder(out), settings(4, space=KINDS, baseline_trial=True), BASE, create=False)
    marked = [t.user_attrs.get("baseline_params", {}) for t in study.get_trials() if t.user_attrs.get("baseline")]
    assert sorted(map(str, marked)) == sorted(map(str, [{}, {"model": "concat"}]))


def test_a_rank_prior_keeps_the_base_kind(tmp_path):
    ard = dataclasses.replace(BASE, fusion=dataclasses.replace(BASE.fusion, rank_prior="ard"))
    assert KINDS.baselines(ard) == [{}]
    assert "model" not in KINDS.active(ard)


def test_two_worker_processes_share_one_journal_without_lost_or_repeated_trials(tmp_path):
    out = tmp_path / "study"
    result = tune(BASE, out, settings(5, workers=2))
    rows = read_rows(out)
    assert sorted(int(r["number"]) for r in rows) == list(range(5))  # exactly T, each number once: no overshoot
    assert {r["state"] for r in rows} <= {"COMPLETE", "PRUNED"}
    assert sum(result.n_trials.values()) == 5
    assert_folders_match_states(out, rows)
    assert sorted(p.name for p in (out / "trials").iterdir() if not p.name.endswith(".lock")) == sorted(
        f"{int(r['number']):04d}" for r in rows if r["state"] == "COMPLETE"
    )


def test_a_rerun_continues_the_study_and_draws_what_one_run_would(tmp_path):
    tune(BASE, tmp_path / "resumed", settings(2))
    assert len(read_rows(tmp_path / "resumed")) == 2
    tune(BASE, tmp_path / "resumed", settings(4))
    tune(BASE, tmp_path / "straight", settings(4))
    resumed, straight = read_rows(tmp_path / "resumed"), read_rows(tmp_path / "straight")
    assert [int(r["number"]) for r in resumed] == [0, 1, 2, 3]  # trials 0..3, not 0..1 twice
    drop = ("seconds",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in resumed] == [
        {k: v for k, v in r.items() if k not in drop} for r in straight
    ]
    # A budget already used up runs nothing more.
    tune(BASE, tmp_path / "resumed", settings(3))
    assert len(read_rows(tmp_path / "resumed")) == 4


def test_the_pruner_prunes_a_trial_far_above_the_median():
    study = optuna.create_study(pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))
    good = study.ask()
    report = pruning_callback(good)
    for epoch in (1, 2, 3):
        report(TrainingState(epoch=epoch, best_val_nll=0.1))
    study.tell(good, 0.1)
    bad = study.ask()
    with pytest.raises(optuna.TrialPruned, match="epoch 1"):
        pruning_callback(bad)(TrainingState(epoch=1, best_val_nll=5.0))


def test_a_diverging_learning_rate_is_pruned_and_leaves_no_folder(tmp_path):
    out = tmp_path / "study"
    space = SearchSpace(latent_dim=None, hidden_dim=None, epochs=None, learning_rate=FloatDimension(1e4, 1e5, log=True))
    result = tune(BASE, out, TuneConfig(space=space, trials=2, baseline_trial=False))
    rows = read_rows(out)
    assert [r["state"] for r in rows] == ["PRUNED", "PRUNED"]
    assert all(r["note"].startswith("diverged") for r in rows)
    assert [p for p in (out / "trials").iterdir() if not p.name.endswith(".lock")] == []  # run locks may stay
    assert result.best_value is None
    assert result.best_run is None
    assert not (out / "best").exists()


def test_a_stale_running_trial_is_failed_and_made_up_on_rerun(tmp_path):
    out = tmp_path / "study"
    tune(BASE, out, settings(1))
    folder = StudyFolder(out)
    study = open_study(folder, settings(1), BASE, create=False)
    stale = study.ask()  # a worker that was killed mid-trial
    folder.trial_dir(stale.number).mkdir()
    tune(BASE, out, settings(2))
    states = {t.number: t.state for t in study.get_trials()}
    assert states[stale.number] is TrialState.FAIL
    assert not folder.trial_dir(stale.number).exists()
    assert sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states.values()) == 2


def test_a_rerun_with_another_base_config_is_refused(tmp_path):
    out = tmp_path / "study"
    tune(BASE, out, settings(1))
    before = (out / "trials.csv").read_text()
    with pytest.raises(ConfigError, match=r"another base config .*seed"):
        tune(RunConfig(**{**BASE.__dict__, "seed": 1}), out, settings(2))
    with pytest.raises(ConfigError, match="another search space"):
        tune(BASE, out, settings(2, space=SearchSpace()))
    assert (out / "trials.csv").read_text() == before


def test_a_study_stored_before_a_config_field_existed_resumes(tmp_path):
    # A field added later (with the default that reproduces older runs) must not orphan an older study.
    out = tmp_path / "study"
    tune(BASE, out, settings(1))
    study = open_study(StudyFolder(out), settings(1), BASE, create=False)
    stored = study.user_attrs["probfusion_base_config"]
    del stored["data"]["synthetic"]["labels"]
    stored["fusion"]["input_linear_rows_per_class"] = 10.0  # and a field retired since (NOTES.md §28)
    study.set_user_attr("probfusion_base_config", stored)
    # ... and a dimension added later: an older study's space has no key for it, so it was not drawn there.
    space = study.user_attrs["probfusion_space"]
    del space["model"]
    study.set_user_attr("probfusion_space", space)
    result = tune(BASE, out, settings(2))
    assert sum(result.n_trials.values()) == 2
    with pytest.raises(ConfigError, match=r"another search space .*model"):
        tune(BASE, out, settings(3, space=KINDS))


def test_bad_data_or_folder_writes_nothing(tmp_path):
    out = tmp_path / "study"
    missing = RunConfig(**{**BASE.__dict__, "data": DataConfig(name=str(tmp_path / "none.npz")), "device": "cpu"})
    with pytest.raises(InputDataError):
        tune(missing, out, settings(1))
    assert not out.exists()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(RunExistsError, match="holds no tuning study"):
        tune(BASE, tmp_path / "busy", settings(1))
    assert sorted(p.name for p in (tmp_path / "busy").iterdir()) == ["notes.txt"]


def test_a_trial_error_stops_the_study_with_the_library_error(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise ProbfusionError("boom")

    monkeypatch.setattr("probfusion.tuning.worker.fit", broken)
    with pytest.raises(ProbfusionError, match="boom"):
        tune(BASE, tmp_path / "study", settings(3))
    assert not (tmp_path / "study").exists()  # nothing finished: no half-made study is left


@pytest.mark.parametrize("workers", [1, 2])
def test_a_value_the_config_rejects_fails_the_trial_and_stops_every_worker(tmp_path, workers):
    space = SearchSpace(latent_dim=None, hidden_dim=None, epochs=IntDimension(0, 0))  # TrainConfig needs epochs > 0
    out = tmp_path / "study"
    with pytest.raises(ConfigError, match="epochs must be positive"):
        tune(BASE, out, settings(4, space=space, workers=workers))
    assert not out.exists()  # nothing finished, so nothing is left
