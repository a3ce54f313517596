"""H5 groundwork: the GP + MKL baseline (additive fusion) beside LMF on mfeat and av-digits.

For each dataset and seed: fit LMF through the public API; fit gp-mkl on the standardised inputs and on the
LMF run's frozen jWAE latents (the same latents LMF fuses). Reports test accuracy, NLL and ECE (15 equal-width
bins, top label), the MKL weights per view, and the MKL solve time.
Goal on mfeat: gp-mkl accuracy at least 97.5% (trusted multi-view papers report about 98%).

Run: ``python studies/h5_gp_mkl_table.py`` (several minutes on 2 cores); ``--smoke`` for a seconds-long check.
Writes ``studies/results/h5_gp_mkl_table/{results.csv,summary.json,table.md}``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from _common import markdown_table, mean_std, output_dir, parse_args, write_results

from probfusion import DataConfig, FusionConfig, JWAEConfig, RunConfig, TrainConfig, fit, load_run
from probfusion.baselines import fit_gp_mkl
from probfusion.config import GPMKLConfig
from probfusion.inference.predictive import predict_probabilities
from probfusion.metrics import accuracy, expected_calibration_error, negative_log_likelihood


def scores(probs: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    return {
        "accuracy": accuracy(probs, labels),
        "nll": negative_log_likelihood(probs, labels),
        "ece": expected_calibration_error(probs, labels),
    }


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], default_seeds=1)
    out = output_dir(__file__, args)
    seeds = range(1 if args.smoke else args.seeds)
    datasets = {"mfeat": 4, "av-digits": 16}  # latent widths as in studies/baselines_table.py
    if args.smoke:
        datasets = {"av-digits": 4}
    train = TrainConfig(epochs=2) if args.smoke else TrainConfig()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name, width in datasets.items():
            for seed in seeds:
                config = RunConfig(
                    data=DataConfig(name=name),
                    jwae=JWAEConfig(latent_dim=width),
                    fusion=FusionConfig(linear_pool=False, model="lmf", rank=4),
                    train=train,
                    seed=seed,
                    device="cpu",
                )
                run = load_run(fit(config, Path(scratch) / f"{name}-{seed}").path)
                train_set, _, test_set = run.splits()
                train_data, test_data = run.tensors(train_set), run.tensors(test_set)
                if args.smoke:
                    keep = torch.arange(0, len(train_data), 8)
                    train_data = type(train_data)(
                        {m: x[keep] for m, x in train_data.views.items()}, train_data.labels[keep]
                    )
                probs = predict_probabilities(run.model, test_data).mean(0)
                rows.append({"data": name, "seed": seed, "model": "LMF r=4", **scores(probs, test_data.labels)})
                for features in ("input", "latent"):
                    gp_config = GPMKLConfig(
                        features=features, gp_steps=10 if args.smoke else 100, factor_rank=8 if args.smoke else 48
                    )
                    encoder = run.model.jwae if features == "latent" else None
                    result = fit_gp_mkl(
                        train_data, encoder=encoder, config=gp_config, seed=seed, num_classes=train_set.num_classes
                    )
                    probs = predict_probabilities(
                        result.model, test_data, num_samples=gp_config.posterior_samples
                    ).mean(0)
                    weights = " ".join(f"{m}={w:.3f}" for m, w in result.kernel_weights.items())
                    rows.append(
                        {
                            "data": name,
                            "seed": seed,
                            "model": f"gp-mkl ({features})",
                            **scores(probs, test_data.labels),
                            "weights": weights,
                            "solver_status": result.solver_status,
                            "solver_seconds": result.solver_seconds,
                            "fit_seconds": result.fit_seconds,
                        }
                    )
                    print(rows[-1], flush=True)
    summary: dict = {"seeds": len(seeds), "results": {}}
    table_rows = []
    for name in datasets:
        for model in dict.fromkeys(r["model"] for r in rows if r["data"] == name):
            part = [r for r in rows if r["data"] == name and r["model"] == model]
            stats = {k: mean_std([r[k] for r in part]) for k in ("accuracy", "nll", "ece")}
            summary["results"][f"{name}/{model}"] = {k: {"mean": v[0], "std": v[1]} for k, v in stats.items()}
            summary["results"][f"{name}/{model}"]["weights_seed0"] = part[0].get("weights", "")
            table_rows.append(
                [
                    name,
                    model,
                    f"{100 * stats['accuracy'][0]:.1f} ± {100 * stats['accuracy'][1]:.1f}",
                    f"{stats['nll'][0]:.3f}",
                    f"{stats['ece'][0]:.3f}",
                    part[0].get("weights", "-"),
                    f"{part[0]['solver_seconds']:.1f}" if "solver_seconds" in part[0] else "-",
                ]
            )
    mfeat = summary["results"].get("mfeat/gp-mkl (input)")
    if mfeat is not None:
        summary["mfeat_goal_975"] = mfeat["accuracy"]["mean"] >= 0.975
    table = markdown_table(
        [
            "data",
            "model",
            "test accuracy % (mean ± std)",
            "NLL",
            "ECE (15 bins)",
            "MKL weights per view (seed 0)",
            "MKL solve s",
        ],
        table_rows,
    )
    write_results(out, rows, summary, table)
    print(table)
    print(f"results in {out}")


if __name__ == "__main__":
    main()
