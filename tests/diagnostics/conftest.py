"""Tiny runs shared by the diagnostics tests: SVI (ARD), deterministic LMF, TFN, and a NUTS-route model."""

import dataclasses

import pytest
import torch

from probfusion.api import LoadedRun, fit, load_run
from probfusion.config import BayesConfig, DataConfig, FusionConfig, JWAEConfig, RunConfig, TrainConfig
from probfusion.fusion.bayesian_classifier import BayesianFusionClassifier
from tests.helpers import write_interaction_npz


def tiny_config(data: str, *, model: str = "lmf", rank_prior: str = "none", seed: int = 0) -> RunConfig:
    return RunConfig(
        data=DataConfig(name=data),
        jwae=JWAEConfig(latent_dim=3, hidden_dim=12),
        fusion=FusionConfig(model=model, rank=3, fused_dim=6, rank_prior=rank_prior),
        train=TrainConfig(epochs=3, batch_size=64, patience=50),
        bayes=BayesConfig(svi_steps=80, realign_every=20, posterior_samples=8, batch_size=64),
        seed=seed,
        device="cpu",
    )


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("diagnostics-runs")
    data = str(write_interaction_npz(root / "d.npz", n=200))
    paths = {}
    for name, model, prior in (("svi", "lmf", "ard"), ("det", "lmf", "none"), ("tfn", "tfn", "none")):
        paths[name] = fit(tiny_config(data, model=model, rank_prior=prior), root / name).path
    paths["svi-seed1"] = fit(tiny_config(data, rank_prior="ard", seed=1), root / "svi-seed1").path
    return paths


@pytest.fixture(scope="session")
def nuts_run(runs) -> LoadedRun:
    """A NUTS-route model whose stored draws are 2 chains x 30 guide draws (no sampler run: tests stay fast)."""
    svi = load_run(runs["svi"])
    config = dataclasses.replace(
        svi.config, bayes=dataclasses.replace(svi.config.bayes, inference="nuts", num_chains=2, num_draws=30)
    )
    model = BayesianFusionClassifier(
        input_dims={m: len(v) for m, v in svi.standardizer.mean.items()},
        num_classes=2,
        jwae=config.jwae,
        fusion=config.fusion,
        bayes=config.bayes,
        rank_prior="ard",
    )
    model.jwae.load_state_dict(svi.model.jwae.state_dict())
    model.reference_latents.copy_(svi.model.reference_latents)
    with torch.no_grad():
        model.store_draws(svi.model.posterior_draws(60, torch.Generator().manual_seed(3)))
    return LoadedRun(
        path=svi.path, config=config, model=model.eval(), standardizer=svi.standardizer, metrics=svi.metrics
    )
