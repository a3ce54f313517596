"""H4 (second half): do ARD-LMF rank components specialise, each one aligning with one planted component?

Hypothesis (H4, interpretability): on synthetic data with a planted CP interaction, every planted component
that carries a visible share of the signal is matched by one learnt component, and each surviving learnt
component matches one planted component. Stated up front: supported if the mean matched |correlation| over
visible planted components is >= 0.9 and at least 90% of surviving learnt components have one dominant
match (best |corr| >= 0.9 and second best <= 0.3).

Part A fits the ARD head (SVI, max rank 16, as in ``h4_ard_rank_recovery.py``) on the planted features of
``probfusion.data.synthetic`` (M = 2 and 3 modalities, planted rank 2, 3 and 4, several seeds). A learnt
component's activation is ``a_i(x) = prod_m w_m^(i) . [x_m; 1]`` at the guide's mean; a planted component's is
``g_j(x) = prod_m u_m^(j) . x_m`` (the generator's ``ground_truth``). They are matched one-to-one by the
Hungarian algorithm on |corr(a_i, g_j)| over the training rows (the sign of a component is not identified).
Reference line: the same matching for a head with random factors (what chance alignment looks like).
Surviving = posterior-mean variance share above the activity threshold. Why alignment is expected at all: for
M >= 3 the CP decomposition is essentially unique (Kruskal); for M = 2 a rank-r bilinear form has many
rank-one decompositions, and only the SVD ones are unique: the planted factors are orthonormal (an SVD), and
the SVI re-expression step makes the learnt ones an SVD too, so M = 2 alignment tests that step.

Part B runs the public pipeline on av-digits (``fit --rank-prior ard``, max rank 16) and asks what each
surviving component responds to: its share of the output, the image/audio split of its variance (Shapley
shares of ``probfusion.diagnostics``), the digit classes its output weights separate, and what removing it
does to test accuracy.

Run: ``python studies/h4_component_alignment.py`` (about 10 minutes on 2 cores); ``--smoke`` for seconds.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter
from scipy.optimize import linear_sum_assignment

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, mean_std, output_dir, parse_args, write_figure, write_results

from probfusion import fit, load_run
from probfusion.config import BayesConfig, DataConfig, FusionConfig, RunConfig, SyntheticConfig, TrainConfig
from probfusion.data.synthetic import make_planted_interaction
from probfusion.diagnostics import component_ablation, component_attributions, draw_posterior
from probfusion.fusion.bayesian_lmf import BayesianLowRankFusion, HeadGuide, component_activations
from probfusion.fusion.rank import variance_shares
from probfusion.inference.svi import fit_svi
from probfusion.options import SplitKind

MAX_RANK = 16
DOMINANT, SECOND = 0.9, 0.3
SINGLE = 0.75  # a real component is single-modality when one modality drives at least this share


def alignment(learnt: np.ndarray, planted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """|corr| matrix `(k, r*)` of learnt `(n, k)` and planted `(n, r*)` activations, and the matched |corr|.

    Returns:
        The matrix and, per planted component, the |corr| of the learnt component matched to it (0 if none).
    """
    a = (learnt - learnt.mean(0)) / learnt.std(0).clip(1e-12)
    g = (planted - planted.mean(0)) / planted.std(0).clip(1e-12)
    corr = np.abs(a.T @ g) / len(a)
    rows, cols = linear_sum_assignment(-corr)
    matched = np.zeros(planted.shape[1])
    matched[cols] = corr[rows, cols]
    return corr, matched


def synthetic_run(rank: int, modalities: int, seed: int, *, smoke: bool, bayes: BayesConfig) -> dict:
    """Fit the ARD head on planted features; match its surviving components to the planted ones."""
    data = make_planted_interaction(
        SyntheticConfig(num_samples=300 if smoke else 2000, num_modalities=modalities, dim=8, rank=rank), seed=seed
    )
    names = data.modality_names
    latents = [torch.as_tensor(data.views[m]) for m in names]
    head = BayesianLowRankFusion(input_dims=[8] * modalities, rank=MAX_RANK, num_classes=2)
    guide = HeadGuide(model=head, guide=bayes.guide)
    fit_svi(
        head,
        guide,
        latents,
        torch.as_tensor(data.labels),
        steps=bayes.svi_steps,
        learning_rate=bayes.learning_rate,
        batch_size=bayes.batch_size,
        seed=seed,
        realign_every=bayes.realign_every,
    )
    with torch.no_grad():
        draws = guide.sample(bayes.posterior_samples, generator=torch.Generator().manual_seed(seed))
        shares = variance_shares(component_activations(latents, draws), draws["theta"]).mean(0)
        mean = {k: v.unsqueeze(0) for k, v in guide.means().items()}
        learnt = component_activations(latents, mean)[0].double().numpy()
        random_head = HeadGuide(model=head, guide=bayes.guide)
        random_head.initialise(generator=torch.Generator().manual_seed(10_000 + seed))
        random = component_activations(latents, {k: v.unsqueeze(0) for k, v in random_head.means().items()})[0]
    planted_views = [data.views[m].astype(np.float64) for m in names]
    planted = np.prod([x @ data.ground_truth[f"u_{m}"].T for x, m in zip(planted_views, names, strict=True)], axis=0)
    theta = data.ground_truth["theta"][0]
    planted_share = theta**2 / np.sum(theta**2)
    visible = planted_share >= bayes.activity_threshold
    survivors = (shares > bayes.activity_threshold).numpy()
    corr, matched = alignment(learnt[:, survivors], planted)
    _, chance = alignment(random.double().numpy(), planted)
    ordered = np.sort(corr, axis=1)[:, ::-1]
    second = ordered[:, 1] if corr.shape[1] > 1 else np.zeros(len(corr))
    dominant = (ordered[:, 0] >= DOMINANT) & (second <= SECOND)
    return {
        "part": "synthetic",
        "modalities": modalities,
        "planted_rank": rank,
        "seed": seed,
        "survivors": int(survivors.sum()),
        "visible_planted": int(visible.sum()),
        "mean_matched_corr": float(matched[visible].mean()),
        "min_matched_corr": float(matched[visible].min()),
        "chance_matched_corr": float(chance[visible].mean()),
        "dominant_share": float(dominant.mean()) if len(dominant) else float("nan"),
        "matched_corr_by_planted": " ".join(f"{c:.3f}" for c in matched),
        "planted_shares": " ".join(f"{s:.3f}" for s in planted_share),
        "corr_matrix": corr.round(3).tolist(),
    }


def real_run(seed: int, *, smoke: bool, bayes: BayesConfig, scratch: Path) -> list[dict]:
    """ARD-LMF on av-digits through the public fit; one row per surviving component."""
    config = RunConfig(
        data=DataConfig(name="av-digits", split=SplitKind.SPEAKER),
        fusion=FusionConfig(linear_pool=False, rank=MAX_RANK, rank_prior="ard"),
        train=TrainConfig(epochs=2 if smoke else 60),
        bayes=bayes,
        seed=seed,
    )
    run = load_run(fit(config, scratch / f"av-digits-{seed}").path)
    attribution = component_attributions(run, num_draws=bayes.posterior_samples, seed=seed)
    ablation = component_ablation(run, split="test", num_draws=bayes.posterior_samples, seed=seed)
    theta = draw_posterior(run, num_draws=bayes.posterior_samples, seed=seed).flat()["theta"].mean(0)
    centred = theta - theta.mean(0, keepdim=True)  # (c, r): class contrast of each component
    share = attribution.component_share.mean(0)
    modality = attribution.modality_share.mean(0)
    rows = []
    for i in share.argsort(descending=True).tolist():
        if share[i] <= bayes.activity_threshold:
            continue
        order = centred[:, i].argsort()
        rows.append(
            {
                "part": "real",
                "seed": seed,
                "component": i,
                "share": float(share[i]),
                **{f"share_{m}": float(modality[i, k]) for k, m in enumerate(attribution.modalities)},
                "classes_up": " ".join(str(int(c)) for c in order[-2:].flip(0)),
                "classes_down": " ".join(str(int(c)) for c in order[:2]),
                "accuracy_drop": ablation.rows()[i]["accuracy_drop"],
                "flip_rate": ablation.rows()[i]["flip_rate"],
                "test_accuracy": run.metrics["test"]["accuracy"],
            }
        )
    return rows


def figure(synthetic: list[dict], real: list[dict], modalities: tuple[str, ...]) -> Figure:
    """(a) matched |corr| per setting vs random factors; (b) per planted component vs its share; (c) av-digits."""
    fig = Figure(figsize=(16, 4.2))
    left, middle, right = fig.subplots(1, 3)
    keys = sorted({(r["modalities"], r["planted_rank"]) for r in synthetic})
    for x, key in enumerate(keys):
        group = [r for r in synthetic if (r["modalities"], r["planted_rank"]) == key]
        left.scatter([x] * len(group), [r["mean_matched_corr"] for r in group], color="C0", zorder=3)
        left.scatter([x] * len(group), [r["chance_matched_corr"] for r in group], color="C7", marker="x", zorder=3)
    left.axhline(DOMINANT, color="C3", ls="--", lw=1, label=f"goal {DOMINANT}")
    left.scatter([], [], color="C0", label="learnt (ARD-LMF)")
    left.scatter([], [], color="C7", marker="x", label="random factors")
    left.set_xticks(range(len(keys)), labels=[f"M={m}\nr*={r}" for m, r in keys])
    left.set_ylabel("mean matched |corr| (visible planted components)")
    left.set_ylim(0, 1.02)
    left.legend(loc="lower left", fontsize=8)
    left.set_title("(a) synthetic: learnt vs planted components")
    for m, marker in ((2, "o"), (3, "^")):
        shares = [float(v) for r in synthetic if r["modalities"] == m for v in r["planted_shares"].split()]
        corr = [float(v) for r in synthetic if r["modalities"] == m for v in r["matched_corr_by_planted"].split()]
        middle.scatter(shares, corr, marker=marker, alpha=0.7, label=f"M={m}")
    middle.set_xscale("log")
    middle.xaxis.set_minor_formatter(NullFormatter())
    middle.set_xlabel("planted component's share of the planted signal")
    middle.set_ylabel("|corr| of its matched learnt component (0: none)")
    middle.set_ylim(-0.03, 1.03)
    middle.legend(fontsize=8)
    middle.set_title("(b) each planted component")
    if real:
        first = modalities[0]
        for seed in sorted({r["seed"] for r in real}):
            group = [r for r in real if r["seed"] == seed]
            right.scatter([r["share"] for r in group], [r[f"share_{first}"] for r in group], label=f"seed {seed}")
        right.set_xscale("log")
        right.xaxis.set_minor_formatter(NullFormatter())
        right.set_xlabel("component's share of output variance")
        right.set_ylabel(f"{first} share of the component's variance (Shapley)")
        right.set_ylim(-0.05, 1.05)
        right.legend(fontsize=8)
        right.set_title("(c) av-digits: surviving components")
    return fig


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], default_seeds=3)
    out = output_dir(__file__, args)
    seeds = 1 if args.smoke else args.seeds
    ranks, mods = ((2,), (2,)) if args.smoke else ((2, 3, 4), (2, 3))
    bayes = BayesConfig(svi_steps=60, realign_every=20, posterior_samples=20) if args.smoke else BayesConfig()
    print(f"part A: {len(ranks) * len(mods) * seeds} synthetic fits")
    synthetic = [
        synthetic_run(r, m, s, smoke=args.smoke, bayes=bayes) for m in mods for r in ranks for s in range(seeds)
    ]
    real: list[dict] = []
    if not args.smoke:  # a real fit takes minutes; the smoke run checks part A's plumbing and the writers
        print(f"part B: {seeds} av-digits fits")
        with tempfile.TemporaryDirectory() as scratch:
            for s in range(seeds):
                real += real_run(s, smoke=args.smoke, bayes=bayes, scratch=Path(scratch))
    report(synthetic, real, out=out, bayes=bayes, smoke=args.smoke)


def report(synthetic: list[dict], real: list[dict], *, out: Path, bayes: BayesConfig, smoke: bool) -> None:
    """Write results.csv, summary.json, table.md and alignment.png."""
    keys = sorted({(r["modalities"], r["planted_rank"]) for r in synthetic})

    def cell(group: list[dict], key: str) -> str:
        mean, std = mean_std([x[key] for x in group])
        return f"{mean:.3f} ± {std:.3f}"

    table_a = markdown_table(
        [
            "M",
            "planted r*",
            "runs",
            "survivors",
            "mean matched abs corr",
            "weakest match",
            "random factors",
            "one dominant match",
        ],
        [
            [
                m,
                r,
                len(g),
                " ".join(str(x["survivors"]) for x in g),
                cell(g, "mean_matched_corr"),
                cell(g, "min_matched_corr"),
                cell(g, "chance_matched_corr"),
                cell(g, "dominant_share"),
            ]
            for m, r in keys
            for g in [[x for x in synthetic if (x["modalities"], x["planted_rank"]) == (m, r)]]
        ],
    )
    matched = statistics.fmean(x["mean_matched_corr"] for x in synthetic)
    dominant_values = [x["dominant_share"] for x in synthetic if x["dominant_share"] == x["dominant_share"]]
    dominant = statistics.fmean(dominant_values) if dominant_values else float("nan")
    supported = matched >= DOMINANT and dominant >= 0.9
    modalities = tuple(k[len("share_") :] for k in (real[0] if real else {}) if k.startswith("share_"))
    table_b = (
        markdown_table(
            [
                "seed",
                "component",
                "share of output",
                *[f"{m} share" for m in modalities],
                "classes up",
                "classes down",
                "accuracy drop when removed",
                "predictions flipped",
            ],
            [
                [
                    x["seed"],
                    x["component"],
                    f"{x['share']:.3f}",
                    *[f"{x[f'share_{m}']:.2f}" for m in modalities],
                    x["classes_up"],
                    x["classes_down"],
                    f"{x['accuracy_drop']:+.3f}",
                    f"{x['flip_rate']:.3f}",
                ]
                for x in real
            ],
        )
        if real
        else "(part B skipped in smoke mode)\n"
    )
    summary = {
        "mean_matched_corr": matched,
        "dominant_share": dominant,
        "goal_matched_corr": DOMINANT,
        "goal_dominant_share": 0.9,
        "supported": bool(supported),
        "runs": len(synthetic),
        "chance_matched_corr": statistics.fmean(x["chance_matched_corr"] for x in synthetic),
        "max_rank": MAX_RANK,
        "activity_threshold": bayes.activity_threshold,
        "real_single_modality_share": (
            statistics.fmean(max(x[f"share_{m}"] for m in modalities) >= SINGLE for x in real) if real else None
        ),
        "single_modality_threshold": SINGLE,
        "real_test_accuracy": statistics.fmean(x["test_accuracy"] for x in real) if real else None,
        "real_components_per_seed": {
            str(s): sum(1 for x in real if x["seed"] == s) for s in sorted({x["seed"] for x in real})
        },
        "smoke": smoke,
    }
    header = (
        f"# H4: do ARD-LMF components align with planted ones? (max rank {MAX_RANK})\n\n"
        f"Mean matched |corr| {matched:.3f} (goal >= {DOMINANT}); share of surviving components with one dominant "
        f"planted match {dominant:.2f} (goal >= 0.9): **{'supported' if supported else 'not supported'}**.\n\n"
    )
    rows = [{k: v for k, v in x.items() if k != "corr_matrix"} for x in synthetic] + real
    write_results(out, rows, summary, header + table_a + "\n## av-digits: surviving components\n\n" + table_b)
    write_figure(out, "alignment.png", figure(synthetic, real, modalities))
    print(out)


if __name__ == "__main__":
    main()
