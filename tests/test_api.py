import csv
import dataclasses
import json

import pytest
import torch

from probfusion import api
from probfusion.api import fit, load_run
from probfusion.config import BayesConfig, DataConfig, FusionConfig, GPMKLConfig, JWAEConfig, RunConfig, TrainConfig
from probfusion.errors import CheckpointError, ConfigError, InputDataError, RunExistsError, TrainingDivergedError
from probfusion.runs.checkpoint import read_tensors
from tests.helpers import small_config, write_interaction_npz


def test_fit_writes_the_documented_run(tmp_path):
    data = write_interaction_npz(tmp_path / "d.npz")
    run = fit(small_config(str(data)), tmp_path / "run")
    files = {p.name for p in run.path.iterdir()}
    assert {"config.json", "weights.safetensors", "metrics.json", "metrics.csv", "history.csv", "train.log"} <= files
    metrics = json.loads((run.path / "metrics.json").read_text())
    for split in ("train", "val", "test"):
        assert {"accuracy", "nll"} <= set(metrics[split])
    assert 0 < metrics["fusion_parameters"] < metrics["total_parameters"]
    stored = json.loads((run.path / "config.json").read_text())
    assert RunConfig.from_dict(stored["config"]) == run.config
    assert stored["provenance"]["versions"]["torch"] is not None


def test_same_seed_same_metrics_other_seed_differs(tmp_path):
    data = str(write_interaction_npz(tmp_path / "d.npz"))
    a = fit(small_config(data), tmp_path / "a").metrics
    b = fit(small_config(data), tmp_path / "b").metrics
    c = fit(small_config(data, seed=1), tmp_path / "c").metrics
    assert a["test"] == b["test"]
    assert a["val"] == b["val"]
    assert a["val"] != c["val"]


def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path):
    data = str(write_interaction_npz(tmp_path / "d.npz"))
    config = small_config(data, epochs=5)
    straight = fit(config, tmp_path / "straight").metrics

    def interrupt(state):
        if state.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(config, tmp_path / "cut", on_epoch_end=interrupt, checkpoint_seconds=0)
    assert not (tmp_path / "cut" / "metrics.json").exists()
    _, meta = read_tensors(tmp_path / ".cut.partial" / "checkpoint.safetensors")
    assert meta["counters"]["epoch"] == 2  # the resumed fit below continues from epoch 2
    with pytest.raises(CheckpointError, match="unfinished"):
        load_run(tmp_path / "cut")
    with pytest.raises(RunExistsError):
        fit(config, tmp_path / "cut")
    resumed = fit(config, tmp_path / "cut", resume=True).metrics
    assert resumed["epochs_run"] == 5
    assert resumed["test"] == straight["test"]
    assert resumed["val"] == straight["val"]


def test_checkpoints_are_written_at_most_once_per_interval_and_always_at_the_end(tmp_path, monkeypatch):
    data = str(write_interaction_npz(tmp_path / "d.npz"))
    config = small_config(data, epochs=5)
    straight = fit(config, tmp_path / "straight").metrics
    writes = []
    real = api.save_training_state
    monkeypatch.setattr(
        api, "save_training_state", lambda run, model, state: writes.append(state.epoch) or real(run, model, state)
    )

    def interrupt(state):
        if state.epoch == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # an hour's interval: nothing written by epoch 3
        fit(config, tmp_path / "cut", on_epoch_end=interrupt, checkpoint_seconds=3600)
    assert writes == []
    assert not (tmp_path / ".cut.partial" / "checkpoint.safetensors").exists()
    resumed = fit(config, tmp_path / "cut", resume=True, checkpoint_seconds=3600)  # from the start, same result
    assert writes == [5]  # the last epoch only: the finished run keeps its final training state
    assert resumed.metrics["test"] == straight["test"]
    _, meta = read_tensors(resumed.path / "checkpoint.safetensors")
    assert meta["counters"]["epoch"] == 5
    writes.clear()
    fit(config, tmp_path / "every", checkpoint_seconds=0)
    assert writes == [1, 2, 3, 4, 5]
    for bad in (-1.0, float("nan"), True, "10"):
        with pytest.raises(ConfigError, match="checkpoint_seconds must be"):
            fit(config, tmp_path / "bad", checkpoint_seconds=bad)
    assert not (tmp_path / "bad").exists()


def test_resume_with_another_config_is_refused(tmp_path):
    data = str(write_interaction_npz(tmp_path / "d.npz"))

    def interrupt(state):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(small_config(data), tmp_path / "r", on_epoch_end=interrupt)
    with pytest.raises(CheckpointError, match="differs in"):
        fit(small_config(data, seed=3), tmp_path / "r", resume=True)


def test_load_run_predicts_what_fit_measured(tmp_path):
    data = str(write_interaction_npz(tmp_path / "d.npz"))
    run = fit(small_config(data), tmp_path / "run")
    loaded = load_run(run.path)
    _, _, test = loaded.splits()
    tensors = loaded.tensors(test)
    probs = loaded.model.predictive_logits(tensors.views, 1).softmax(-1).mean(0)
    accuracy = float((probs.argmax(-1) == tensors.labels).float().mean())
    assert accuracy == pytest.approx(run.metrics["test"]["accuracy"])


def test_weights_of_another_shape_are_refused_with_both_shapes(tmp_path):
    data = str(write_interaction_npz(tmp_path / "d.npz"))
    run = fit(small_config(data), tmp_path / "run")
    stored = json.loads((run.path / "config.json").read_text())
    stored["config"]["fusion"]["rank"] = 3
    (run.path / "config.json").write_text(json.dumps(stored))
    with pytest.raises(CheckpointError, match=r"config\.json does not match its SHA-256"):
        load_run(run.path)
    (run.path / "manifest.json").unlink()  # as a run written before manifests: the shape check still holds
    with pytest.raises(CheckpointError, match=r"expects \(3, "):
        load_run(run.path)


def test_bad_data_writes_nothing(tmp_path):
    bad = write_interaction_npz(tmp_path / "nan.npz")
    import numpy as np

    arrays = dict(np.load(bad))
    arrays["x_a"][3, 1] = np.nan
    np.savez(bad, **arrays)
    with pytest.raises(InputDataError, match="NaN"):
        fit(small_config(str(bad)), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_default_model_learns_av_digits_well_above_chance(tmp_path):
    config = RunConfig(train=TrainConfig(epochs=15), device="cpu")
    run = fit(config, tmp_path / "av")
    metrics = run.metrics
    with (run.path / "history.csv").open() as handle:
        losses = [float(row["loss"]) for row in csv.DictReader(handle)]
    assert losses[-1] < 0.7 * losses[0]
    # Ten balanced classes: chance is 0.10. A short fit must reach 0.60 on held-out pairs.
    assert metrics["test"]["accuracy"] >= 0.60
    assert metrics["test"]["nll"] < torch.log(torch.tensor(10.0)).item()


def test_a_bad_config_with_overwrite_keeps_the_old_run(tmp_path):
    data = str(write_interaction_npz(tmp_path / "d.npz"))
    run = fit(small_config(data), tmp_path / "run")
    before = (run.path / "metrics.json").read_bytes()
    too_big = RunConfig(
        data=DataConfig(name=data),
        jwae=JWAEConfig(latent_dim=64, hidden_dim=64),
        fusion=FusionConfig(model="tfn", fused_dim=65_000),
        train=TrainConfig(epochs=1),
        device="cpu",
    )  # fine for one modality, too big for this data's two: the TFN weight has 65,000 * 65^2 elements
    with pytest.raises(ConfigError, match="TFN weight"):
        fit(too_big, run.path, overwrite=True)
    assert (run.path / "metrics.json").read_bytes() == before


def test_a_diverging_loss_is_an_error_not_a_result(tmp_path):
    data = str(write_interaction_npz(tmp_path / "d.npz"))
    config = dataclasses.replace(small_config(data), train=TrainConfig(epochs=3, learning_rate=1e12))
    with pytest.raises(TrainingDivergedError, match="lower the learning rate"):
        fit(config, tmp_path / "run")
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_train_log_records_epochs_when_called_from_python(tmp_path):
    data = str(write_interaction_npz(tmp_path / "d.npz"))
    run = fit(small_config(data, epochs=2), tmp_path / "run")
    assert "epoch 1:" in (run.path / "train.log").read_text()


@pytest.mark.parametrize("stage", ["ard", "gaussian", "gp-mkl", "ard-input-linear"])
def test_second_stage_runs_load_back_and_predict_what_fit_measured(tmp_path, stage):
    data = str(write_interaction_npz(tmp_path / "d.npz"))
    base = small_config(data, epochs=3)
    if stage == "gp-mkl":
        config = dataclasses.replace(
            base,
            fusion=FusionConfig(model="gp-mkl", rank=2, fused_dim=8),
            gp=GPMKLConfig(gp_steps=10, posterior_samples=8),
        )
    else:
        prior, _, skip = stage.partition("-")  # "ard-input-linear": the SVI head with the input skip
        config = dataclasses.replace(
            base,
            fusion=FusionConfig(model="lmf", rank=3, fused_dim=8, rank_prior=prior, input_linear=bool(skip)),
            bayes=BayesConfig(svi_steps=60, posterior_samples=8),
        )
    run = fit(config, tmp_path / "run")
    loaded = load_run(run.path)
    assert type(loaded.model).__name__ != "MultimodalClassifier"
    _, _, test = loaded.splits()
    views = loaded.tensors(test).views
    logits = loaded.model.predictive_logits(views, 8)
    assert logits.shape == (8, len(test.labels), 2)
    if stage == "gp-mkl":
        assert set(run.metrics["kernel_weights"]) == {"a", "b"}
        assert sum(run.metrics["kernel_weights"].values()) == pytest.approx(1.0)
    else:
        assert len(run.metrics["components"]) == 3
    # Reloaded weights and the seeded scoring reproduce the stored test metrics.
    again = fit(config, tmp_path / "again").metrics
    assert again["test"] == run.metrics["test"]


def test_a_batch_of_one_row_is_a_config_error():
    # The jWAE's unbiased MMD and SWD are batch statistics: a one-row minibatch has none.
    with pytest.raises(ConfigError, match="batch_size must be at least 2"):
        TrainConfig(batch_size=1)


def test_a_new_run_folder_is_named_after_the_data_file(tmp_path):
    from probfusion.api import next_run_dir

    assert next_run_dir(tmp_path, RunConfig(data=DataConfig(name="../x/Scene-15.mat"))).name.startswith("Scene-15-lmf")
    assert next_run_dir(tmp_path, RunConfig()).name.startswith("av-digits-lmf")
