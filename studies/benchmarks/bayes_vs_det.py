"""Cost of the Bayesian LMF head against the deterministic LMF, measured in one process on av-digits.

All at the same max rank (16):

* SVI time per epoch (ceil(N / batch) SVI steps on the frozen latents, plus the one encoder pass that
  produces them, amortised over the SVI epochs) over the deterministic stage's time per epoch (jWAE + LMF
  training, from its own history). Goal: <= 3x. The same two times per optimiser step (each stage at its own
  default batch size: 256 for SVI, 128 for the deterministic stage) give the step ratio.
* The posterior predictive with S = 1, 10 and 100 posterior draws (encoders once, the head vectorised over
  draws) over one deterministic forward pass, on the test split. Goals: <= 10x at S = 100, and sub-linear in S
  (fitted log-log exponent of time in S below 1).

Predictive timings are the best of repeats on a shared 2-core machine (noisy; the ratios are what matter).
Run: ``python studies/benchmarks/bayes_vs_det.py`` (about a minute); ``--smoke`` for seconds.
"""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, output_dir, parse_args, write_results
from _timing import best_seconds, loglog_exponent, machine

from probfusion import fit, load_run
from probfusion.config import BayesConfig, FusionConfig, RunConfig, TrainConfig
from probfusion.inference.svi import fit_bayesian_head

RANK = 16
SAMPLES = (1, 10, 100)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], default_seeds=1)
    out = output_dir(__file__, args)
    epochs, svi_steps, repeats = (2, 20, 3) if args.smoke else (20, 600, 50)
    bayes = BayesConfig(svi_steps=svi_steps, posterior_samples=100)
    with tempfile.TemporaryDirectory() as scratch:
        config = RunConfig(fusion=FusionConfig(rank=RANK), train=TrainConfig(epochs=epochs, patience=epochs), seed=0)
        run = fit(config, Path(scratch) / "det")
        loaded = load_run(run.path)
        train, val, test = (loaded.tensors(part) for part in loaded.splits())
        history = run.metrics["train_seconds"] / run.metrics["epochs_run"]
        result = fit_bayesian_head(
            loaded.model,
            train,
            val,
            fusion=FusionConfig(rank=RANK, rank_prior="ard"),
            bayes=bayes,
            rank_prior="ard",
            seed=0,
        )
    steps_per_epoch = math.ceil(len(train) / bayes.batch_size)
    epochs_of_svi = svi_steps / steps_per_epoch
    # result.seconds includes the encoder pass, the SVI loop and scoring the validation split once.
    svi_epoch = result.seconds / epochs_of_svi
    svi_step = result.seconds / svi_steps
    det_step = history / math.ceil(len(train) / config.train.batch_size)
    det_model, bayes_model = loaded.model.eval(), result.model.eval()
    with torch.no_grad():
        det_forward = best_seconds(lambda: det_model.predictive_logits(test.views), repeats)
        generator = torch.Generator().manual_seed(0)
        bayes_forward = {
            s: best_seconds(lambda s=s: bayes_model.predictive_logits(test.views, s, generator=generator), repeats)
            for s in SAMPLES
        }
    rows = [
        {
            "quantity": "time per epoch (s)",
            "deterministic": history,
            "bayesian": svi_epoch,
            "ratio": svi_epoch / history,
            "goal": 3.0,
        },
        {
            "quantity": "time per optimiser step (s)",
            "deterministic": det_step,
            "bayesian": svi_step,
            "ratio": svi_step / det_step,
            "goal": float("nan"),
        },
    ]
    rows += [
        {
            "quantity": f"predictive on the test split, S = {s} (s)",
            "deterministic": det_forward,
            "bayesian": bayes_forward[s],
            "ratio": bayes_forward[s] / det_forward,
            "goal": 10.0 if s == 100 else float("nan"),
        }
        for s in SAMPLES
    ]
    for row in rows:
        print(f"{row['quantity']}: bayesian/deterministic = {row['ratio']:.2f}x (goal <= {row['goal']:g}x)")
    exponent = loglog_exponent(list(SAMPLES), [bayes_forward[s] for s in SAMPLES])
    predictive_ratio = bayes_forward[100] / det_forward
    summary = {
        "svi_epoch_ratio": rows[0]["ratio"],
        "svi_step_ratio": rows[1]["ratio"],
        "predictive_ratio": predictive_ratio,
        "predictive_ratios": {str(s): bayes_forward[s] / det_forward for s in SAMPLES},
        "predictive_seconds": {str(s): bayes_forward[s] for s in SAMPLES},
        "deterministic_forward_seconds": det_forward,
        "predictive_exponent_in_samples": exponent,
        "rank": RANK,
        "test_size": len(test),
        "posterior_samples": 100,
        "svi_steps": svi_steps,
        "svi_batch_size": bayes.batch_size,
        "deterministic_batch_size": config.train.batch_size,
        "machine": machine(),
        "smoke": args.smoke,
        "goals": {
            "svi_epoch_at_most_3x": rows[0]["ratio"] <= 3.0,
            "predictive_100_at_most_10x": predictive_ratio <= 10.0,
            "predictive_sublinear_in_samples": exponent < 1.0,
        },
    }
    summary["goals_met"] = all(summary["goals"].values())
    table = markdown_table(
        ["quantity", "deterministic", "Bayesian (ARD, SVI)", "ratio", "goal"],
        [
            [
                r["quantity"],
                f"{r['deterministic']:.4f}",
                f"{r['bayesian']:.4f}",
                f"{r['ratio']:.2f}x",
                f"<= {r['goal']:g}x" if r["goal"] == r["goal"] else "-",
            ]
            for r in rows
        ],
    )
    table += f"\nPredictive time grows as S^{exponent:.2f} from S = 1 to 100 (least squares on log-log; goal < 1).\n"
    write_results(out, rows, summary, table)
    print(out)


if __name__ == "__main__":
    main()
