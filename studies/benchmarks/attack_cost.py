"""Attack cost: PGD and EOT-PGD examples per second on av-digits, deterministic and Bayesian LMF, in one process.

The models are the CLI defaults (LMF rank 4 on the jWAE latents; the Bayesian ARD head at max rank 16 on the
frozen encoders of a rank-16 deterministic run), trained briefly: cost does not depend on how well they fit.
Each attack runs with the evaluation's defaults (L-inf, eps = 0.1 training sd, 10 steps, one start, every
modality at once) on the whole test split, and its time is the best of repeats:

* PGD on deterministic LMF (one forward and backward pass per step);
* PGD on the Bayesian head (one fresh posterior draw per step);
* EOT-PGD on the Bayesian head (8 fresh draws per step, vectorised; the evaluation's ``attack_samples``).

The EOT / PGD cost ratio on the Bayesian head shows what the vectorised draws cost: 8x if they were a loop.
Run: ``python studies/benchmarks/attack_cost.py`` (under a minute); ``--smoke`` for seconds.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, parse_args, write_results
from _timing import benchmark_output_dir, best_seconds, machine

from probfusion import fit, load_run
from probfusion.config import BayesConfig, FusionConfig, RunConfig, TrainConfig
from probfusion.inference.svi import fit_bayesian_head
from probfusion.robustness import run_attack

EPS, STEPS, ATTACK_SAMPLES = 0.1, 10, 8


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], default_seeds=1)
    out = benchmark_output_dir(__file__, args)
    epochs, svi_steps, repeats = (1, 10, 1) if args.smoke else (10, 300, 5)
    with tempfile.TemporaryDirectory() as scratch:
        train_config = TrainConfig(epochs=epochs, patience=epochs)
        lmf = load_run(fit(RunConfig(train=train_config, seed=0), Path(scratch) / "lmf").path)
        wide_config = RunConfig(fusion=FusionConfig(rank=16), train=train_config, seed=0)
        wide = load_run(fit(wide_config, Path(scratch) / "wide").path)
    train, val, test = (wide.tensors(part) for part in wide.splits())
    bayes = fit_bayesian_head(
        wide.model,
        train,
        val,
        fusion=FusionConfig(rank=16, rank_prior="ard"),
        bayes=BayesConfig(svi_steps=svi_steps),
        rank_prior="ard",
        seed=0,
    ).model.eval()
    test_lmf = lmf.tensors(lmf.splits()[2])
    modalities = list(test.views)
    cases = [
        ("LMF r=4", "pgd", lmf.model.eval(), test_lmf),
        ("LMF ARD (max rank 16)", "pgd", bayes, test),
        ("LMF ARD (max rank 16)", "eot-pgd", bayes, test),
    ]
    rows = []
    for model_name, kind, model, data in cases:
        generator = torch.Generator().manual_seed(0)

        def attack(model=model, kind=kind, data=data, generator=generator) -> None:
            run_attack(
                model,
                data.views,
                data.labels,
                kind=kind,
                eps=EPS,
                modalities=modalities,
                steps=STEPS,
                attack_samples=ATTACK_SAMPLES,
                generator=generator,
            )

        seconds = best_seconds(attack, repeats)
        rows.append(
            {
                "model": model_name,
                "attack": kind,
                "posterior_draws_per_step": ATTACK_SAMPLES if kind == "eot-pgd" else 1,
                "examples": len(data),
                "seconds": seconds,
                "examples_per_second": len(data) / seconds,
            }
        )
        print(rows[-1], flush=True)
    pgd_bayes, eot = rows[1]["seconds"], rows[2]["seconds"]
    summary = {
        "rows": rows,
        "eot_over_pgd_seconds_bayesian": eot / pgd_bayes,
        "bayesian_pgd_over_deterministic_pgd_seconds": pgd_bayes / rows[0]["seconds"],
        "settings": {"eps": EPS, "steps": STEPS, "restarts": 1, "norm": "linf", "modalities": modalities},
        "machine": machine(),
        "smoke": args.smoke,
    }
    table = markdown_table(
        ["model", "attack", "draws per step", "test examples", "seconds", "examples/s"],
        [
            [
                r["model"],
                r["attack"],
                r["posterior_draws_per_step"],
                r["examples"],
                f"{r['seconds']:.3f}",
                f"{r['examples_per_second']:.0f}",
            ]
            for r in rows
        ],
    )
    table += f"\nEOT-PGD ({ATTACK_SAMPLES} draws per step) costs {eot / pgd_bayes:.2f}x PGD (1 draw) on the same model."
    table += "\n"
    write_results(out, rows, summary, table)
    print(table)
    print(out)


if __name__ == "__main__":
    main()
