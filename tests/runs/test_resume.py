"""A tampered or damaged checkpoint is a one-line CheckpointError, never a resumed run on bad state."""

import json
import math
import shutil

import pytest
import torch

from probfusion.api import _build_model, fit
from probfusion.config import DataConfig, FusionConfig, JWAEConfig, RunConfig, TrainConfig
from probfusion.errors import CheckpointError
from probfusion.runs.checkpoint import read_tensors, write_tensors
from probfusion.runs.resume import load_training_state
from probfusion.runs.run_dir import RunDirectory
from tests.helpers import write_interaction_npz

EPOCHS = 6


def _config(data):
    return RunConfig(
        data=DataConfig(name=str(data)),
        jwae=JWAEConfig(latent_dim=2, hidden_dim=8),
        fusion=FusionConfig(rank=2, fused_dim=4, linear_pool=False),  # the model these tests build by hand
        train=TrainConfig(epochs=EPOCHS, batch_size=64, patience=EPOCHS),
        device="cpu",
    )


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """A run interrupted after epoch 2 of 6, and its config."""
    root = tmp_path_factory.mktemp("resume")
    config = _config(write_interaction_npz(root / "d.npz"))

    def stop(state):
        if state.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(config, root / "run", on_epoch_end=stop, checkpoint_seconds=0)  # a checkpoint every epoch
    return root / ".run.partial", config  # an interrupted fit waits in its staging folder


@pytest.fixture
def run_copy(interrupted, tmp_path):
    path, config = interrupted
    return shutil.copytree(path, tmp_path / "run"), config


def _tamper(run, change):
    path = run / "checkpoint.safetensors"
    tensors, meta = read_tensors(path)
    change(tensors, meta["counters"], meta)
    write_tensors(path, tensors, meta)


def _first(tensors, prefix):
    return next(k for k in tensors if k.startswith(prefix))


def _nan(prefix):
    def change(tensors, counters, meta):
        key = _first(tensors, prefix)
        tensors[key] = torch.full_like(tensors[key], math.nan)

    return change


def _set(**values):
    def change(tensors, counters, meta):
        counters.update(values)

    return change


def _reshape(prefix):
    def change(tensors, counters, meta):
        key = _first(tensors, prefix)
        tensors[key] = torch.zeros(*tensors[key].shape, 2)

    return change


def _add(key, value):
    def change(tensors, counters, meta):
        tensors[key] = value

    return change


def _drop_best(tensors, counters, meta):
    del tensors[_first(tensors, "best.")]


def _history_field(tensors, counters, meta):
    counters["history"][1]["val_nll"] = "low"


def _drop_counter(tensors, counters, meta):
    del counters["best_epoch"]


def _lr(tensors, counters, meta):
    counters["optimizer_param_groups"][0]["lr"] = 10.0


def _params(tensors, counters, meta):
    counters["optimizer_param_groups"][0]["params"] = [0, 1]


def _format(tensors, counters, meta):
    meta["format"] = "something-else"


CASES = {
    "NaN best weights": (_nan("best."), ["best.", "finite", "NaN or inf"]),
    "NaN model weights": (_nan("model."), ["fusion.factors.0", "NaN or inf", "re-run fit with --overwrite"]),
    "NaN Adam state": (_nan("optim."), ["optim.", "finite"]),
    "best of another shape": (_reshape("best."), ["best.", "shape"]),
    "Adam state of another shape": (_reshape("optim.0.exp_avg"), ["optim.0.exp_avg", "shape"]),
    "extra best tensor": (_add("best.extra", torch.zeros(1)), ["best.*", "unexpected ['extra']"]),
    "missing best tensor": (_drop_best, ["best.*", "missing"]),
    "stray tensor": (_add("junk.w", torch.zeros(1)), ["tensor names", "junk.w"]),
    "bad Adam key": (_add("optim.x.step", torch.zeros(())), ["optim.x.step"]),
    "negative epoch": (_set(epoch=-5), ["counters.epoch", f"from 0 to {EPOCHS}", "-5"]),
    "epoch beyond the config": (_set(epoch=99), ["counters.epoch", "99"]),
    "epoch as a bool": (_set(epoch=True), ["counters.epoch", "True"]),
    "epoch as a string": (_set(epoch="2"), ["counters.epoch", "'2'"]),
    "best epoch after epoch": (_set(best_epoch=3), ["counters.best_epoch", "from 0 to 2"]),
    "patience counter out of range": (_set(epochs_without_improvement=9), ["epochs_without_improvement", "9"]),
    "patience counter inconsistent": (_set(epochs_without_improvement=1, best_epoch=2), ["epoch - best_epoch"]),
    "history too short": (_set(history=[]), ["counters.history", "2 records", "0 records"]),
    "history value of the wrong type": (_history_field, ["history[1].val_nll", "finite number", "'low'"]),
    "NaN best NLL": (_set(best_val_nll=math.nan), ["best_val_nll", "finite"]),
    "best NLL as a string": (_set(best_val_nll="0.3"), ["best_val_nll"]),
    "best NLL off its epoch": (_set(best_val_nll=0.001), ["best_val_nll", "selection NLL of epoch"]),
    "missing counter": (_drop_counter, ["counters", "exactly the fields"]),
    "extra counter": (_set(surprise=1), ["counters", "exactly the fields"]),
    "another learning rate": (_lr, ["lr", "the config's", "10.0"]),
    "Adam groups of other parameters": (_params, ["params", "indices"]),
    "not a checkpoint": (_format, ["not a checkpoint"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_tampered_checkpoints_are_one_line_errors_naming_the_field(run_copy, case):
    run, config = run_copy
    change, fragments = CASES[case]
    _tamper(run, change)
    model = _build_model(config, {"a": 4, "b": 3}, 2)
    with pytest.raises(CheckpointError) as info:
        load_training_state(RunDirectory(run), model, train=config.train)
    message = str(info.value)
    assert "\n" not in message
    assert "checkpoint.safetensors" in message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize("case", ["NaN best weights", "negative epoch"])
def test_fit_refuses_to_resume_a_tampered_checkpoint_and_writes_no_result(run_copy, case):
    run, config = run_copy
    _tamper(run, CASES[case][0])
    with pytest.raises(CheckpointError, match="re-run fit with --overwrite"):
        fit(config, run, resume=True)  # NaN best weights were an exit 0 with nll null; epoch -5 ran 17 epochs
    assert not (run / "metrics.json").exists()


def test_an_untampered_checkpoint_still_resumes(run_copy):
    run, config = run_copy
    metrics = fit(config, run, resume=True).metrics
    assert metrics["epochs_run"] == EPOCHS
    assert json.loads((run / "metrics.json").read_text())["epochs_run"] == EPOCHS
