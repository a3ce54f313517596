"""Tutorial: from ``fit`` to posterior plots with the Python API, one printed step at a time.

Read it top to bottom; each step prints what it does and what came out. It fits a Bayesian low-rank fusion
model with ARD priors on the bundled av-digits data (8x8 digit images paired with spoken digits), then:

1. loads the run back and draws its posterior as ArviZ ``InferenceData`` (dims: component, modality, output);
2. reads the effective rank off the posterior, with its uncertainty;
3. checks the posterior: R-hat/ESS (NUTS runs) or the variational Pareto-k (SVI runs), and PSIS-LOO;
4. asks what each surviving rank component encodes: its share of the output, each modality's share of it,
   and what removing it does to the test predictions;
5. evaluates the run under a distribution shift (Gaussian noise) and reads the results back as a table;
6. writes the whole report (``RUN/report``: markdown, CSVs, trace/forest/attribution PNGs), as
   ``probfusion report RUN`` does, and copies its figures next to this script's results.

The same steps on the command line::

    probfusion fit --rank-prior ard --max-rank 8 --out runs/tutorial
    probfusion evaluate runs/tutorial --shift noise
    probfusion report runs/tutorial

Run: ``python studies/tutorial.py`` (a few minutes on 2 cores); ``--smoke`` for a seconds-long pass.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, output_dir, parse_args, write_results

from probfusion import fit, load_run
from probfusion.config import BayesConfig, EvaluationConfig, FusionConfig, RunConfig, TrainConfig
from probfusion.diagnostics import (
    component_ablation,
    component_attributions,
    convergence_summary,
    effective_rank_posterior,
    evaluation_table,
    loo_check,
    posterior,
    variational_pareto_k,
    write_report,
)
from probfusion.evaluation import evaluate
from probfusion.options import AttackKind, ShiftKind


def step(number: int, text: str) -> None:
    print(f"\n[{number}] {text}")


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], default_seeds=1)
    out = output_dir(__file__, args)
    draws = 30 if args.smoke else 400

    step(1, "Configure: LMF with ARD priors on its rank factors (max rank 8), on the bundled av-digits data.")
    config = RunConfig(
        fusion=FusionConfig(linear_pool=False, rank=8, rank_prior="ard"),
        train=TrainConfig(epochs=1 if args.smoke else 60),
        bayes=BayesConfig(svi_steps=40, realign_every=20, posterior_samples=8) if args.smoke else BayesConfig(),
        seed=0,
    )
    print(
        f"    encoders trained first (deterministic jWAE + LMF), then the head's posterior by {config.bayes.inference}"
    )

    with tempfile.TemporaryDirectory() as scratch:
        step(2, "Fit. The run is a folder: config.json, weights.safetensors, metrics.json, train.log.")
        run_path = fit(config, Path(scratch) / "tutorial").path
        run = load_run(run_path)
        test = run.metrics["test"]
        samples = run.metrics["posterior_samples"]
        print(
            f"    test accuracy {test['accuracy']:.3f}, NLL {test['nll']:.3f} (posterior predictive, {samples} draws)"
        )

        step(3, "Draw the posterior as ArviZ InferenceData (fresh, seeded SVI draws; NUTS runs give their chains).")
        idata = posterior(run, num_draws=draws, seed=0)
        print(f"    groups: {list(idata.groups())}")
        for name in ("precision", "factor", "theta", "modality_share"):
            print(f"    {name}: dims {idata.posterior[name].dims}")

        step(4, "The effective rank: number of components holding > 0.5% of the output variance, per draw.")
        rank = effective_rank_posterior(run, num_draws=draws, seed=0)
        lo, hi = rank["effective_rank_interval"]
        print(f"    effective rank {rank['effective_rank']} (90% interval [{lo}, {hi}]) of max {config.fusion.rank}")

        step(5, "Check the posterior before trusting it.")
        _, convergence = convergence_summary(idata)
        print(f"    {convergence['conclusion']}")
        psis = variational_pareto_k(run, num_draws=draws, seed=0)
        print(f"    {psis['conclusion']}")
        loo = loo_check(idata)
        print(f"    {loo['conclusion']}")

        step(6, "What does each surviving component encode? Output share, modality shares, removal.")
        attribution = component_attributions(run, num_draws=draws, seed=0)
        ablation = component_ablation(run, split="test", num_draws=draws, seed=0).rows()
        share = attribution.component_share.mean(0)
        modality = attribution.modality_share.mean(0)
        rows = []
        for i in share.argsort(descending=True).tolist():
            if share[i] <= config.bayes.activity_threshold:
                continue
            row = {"component": i, "output_share": round(float(share[i]), 4)}
            row.update({f"{m}_share": round(float(modality[i, k]), 3) for k, m in enumerate(attribution.modalities)})
            row.update(
                accuracy_drop=round(ablation[i]["accuracy_drop"], 4), flip_rate=round(ablation[i]["flip_rate"], 4)
            )
            rows.append(row)
            print(f"    {row}")

        step(7, "Evaluate under Gaussian noise on every modality, then read all evaluations back as one table.")
        shift = EvaluationConfig(
            attack=AttackKind.NONE,
            shift=ShiftKind.NOISE,
            modality="all" if args.smoke else "each",
            severities=(1,) if args.smoke else (1, 3, 5),
            samples=8 if args.smoke else 64,
        )
        evaluate(run, shift, name="noise")
        table = evaluation_table(run)
        print(table[["evaluation", "attack", "modality", "eps", "accuracy", "ece"]].to_string(index=False))

        step(8, "Write the report folder (what `probfusion report RUN` does) and keep its figures.")
        report = write_report(run, num_draws=draws, seed=0)
        for figure in report.figures:
            shutil.copyfile(figure, out / figure.name)
            print(f"    {out / figure.name}")

    summary = {
        "test_accuracy": test["accuracy"],
        "effective_rank": rank["effective_rank"],
        "effective_rank_interval": [lo, hi],
        "variational_pareto_k": psis["k"],
        "loo": {k: loo[k] for k in ("elpd_loo", "se", "p_loo", "share_k_high")},
        "smoke": args.smoke,
    }
    columns = list(rows[0]) if rows else ["component"]
    checks = markdown_table(
        ["test accuracy", "effective rank [90%]", "variational Pareto k", "PSIS-LOO elpd (SE)"],
        [
            [
                f"{test['accuracy']:.3f}",
                f"{rank['effective_rank']} [{lo}, {hi}]",
                f"{psis['k']:.2f}",
                f"{loo['elpd_loo']:.1f} ({loo['se']:.1f})",
            ]
        ],
    )
    components = markdown_table(columns, [[r[c] for c in columns] for r in rows])
    text = "# Tutorial run\n\n" + checks + "\n## Surviving components\n\n" + components
    write_results(out, rows, summary, text)
    print(f"\nresults in {out}")


if __name__ == "__main__":
    main()
