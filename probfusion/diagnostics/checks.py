r"""Is the posterior trustworthy? R-hat and ESS (NUTS), PSIS Pareto-k (SVI, Laplace), PSIS-LOO and LOO model comparison.

Each check returns numbers and a plain-language ``conclusion``:

* :func:`convergence_summary`: ``az.summary`` on label-invariant quantities only (sorted precisions, sorted
  variance shares, the effective rank, the class biases, class probabilities at fixed inputs and the total
  log-likelihood). Raw factors are not summarised: their labels
  swap between chains (component permutation, sign flips), which makes R-hat of raw sites meaningless. NUTS
  passes when every R-hat <= 1.01 and every bulk and tail ESS >= 100 per chain (Vehtari et al. 2021).
* :func:`divergence_check`: for NUTS, the divergent transitions after warm-up that ``fit`` recorded in
  ``metrics.json`` (``nuts_divergences``). Any divergence means the sampler met curvature its step size could
  not follow (under ARD: the funnel of ``w ~ N(0, 1/lambda)`` where lambda is large) and the draws are biased
  there; the check passes at zero.
* :func:`component_identifiability`: whether per-index component quantities (``variance_share[i]``) mean the
  same component in every chain. NUTS chains may settle in different labellings of the components (the
  posterior is invariant under permutations and sign flips), so per-index tables pooled over chains are only
  reported when the per-index R-hat of the variance shares is at most :data:`LABEL_RHAT_MAX`.
* :func:`variational_pareto_k`: for SVI and Laplace, the Pareto shape k of the importance ratios
  :math:`\log p(\theta, y) - \log q(\theta)` over draws of the approximation q (the guide; the Laplace
  Gaussian) (Yao et al. 2018, "Yes, but did it work?").
  k below :math:`\min(1 - 1/\log_{10} S, 0.7)` means q is close enough to the posterior that importance
  sampling corrects it; above 0.7 the guide misses posterior mass and its uncertainty is not to be trusted
  as posterior uncertainty. Computed on the training split the head was fitted on, full-data scale.
* :func:`loo_check`: ``az.loo`` (PSIS-LOO) on the training split, with the share of observations whose
  Pareto k is too high for the LOO estimate of that point to be reliable. On SVI draws LOO treats q as the
  posterior (the brief asks for it; the variational k above says how far that holds).
* :func:`compare_runs`: ``az.compare`` on PSIS-LOO of several Bayesian runs fitted on the same training rows.

Caveat for LOO here: the encoders were trained on the same training rows (frozen afterwards), so LOO scores
the head given latents that already saw y_j; it ranks heads on shared latents fairly, and is optimistic
across runs whose encoders differ.

References: A. Vehtari, A. Gelman, D. Simpson, B. Carpenter, P.-C. Bürkner, "Rank-normalization, folding, and
localization: an improved R-hat", Bayesian Analysis 2021; Y. Yao, A. Vehtari, D. Simpson, A. Gelman, "Yes, but
did it work?: Evaluating variational inference", ICML 2018; A. Vehtari et al., "Pareto smoothed importance
sampling", JMLR 2024.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from probfusion.api import LoadedRun
from probfusion.diagnostics._arviz import az
from probfusion.diagnostics.posterior import (
    PosteriorDraws,
    bayesian_model,
    draw_posterior,
    pointwise_log_likelihood,
    posterior,
    resolve_run,
    split_inputs,
)
from probfusion.errors import ConfigError
from probfusion.options import InferenceKind

__all__ = [
    "INVARIANT_VARIABLES",
    "compare_runs",
    "component_identifiability",
    "convergence_summary",
    "divergence_check",
    "loo_check",
    "training_fingerprint",
    "variational_pareto_k",
]

INVARIANT_VARIABLES = (
    "sorted_precision",
    "sorted_variance_share",
    "effective_rank",
    "bias",
    "probe_probability",
    "log_likelihood_total",
)
"""Posterior quantities that do not depend on the arbitrary labelling of the rank components (those present in
an ``InferenceData`` are summarised: ``log_likelihood_total`` only exists with a log-likelihood split)."""

RHAT_MAX = 1.01
ESS_PER_CHAIN_MIN = 100
LABEL_RHAT_MAX = 1.05
"""Largest per-index R-hat of the components' variance shares at which chains are taken to share one labelling
(looser than :data:`RHAT_MAX`: this tells a relabelled chain, R-hat well above 1.1, from a short one)."""


def pareto_k_threshold(num_draws: int) -> float:
    """The sample-size dependent k threshold of Vehtari et al. (2024): ``min(1 - 1 / log10(S), 0.7)``."""
    return min(1.0 - 1.0 / math.log10(num_draws), 0.7) if num_draws > 10 else 0.0


def _quiet(call: Any, *args: Any, **kwargs: Any) -> tuple[Any, list[str]]:
    """Run an ArviZ call, returning its result and the messages of the warnings it raised (kept for the report)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call(*args, **kwargs)
    return result, sorted({str(w.message).strip().splitlines()[0] for w in caught})


def convergence_summary(idata: az.InferenceData) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``az.summary`` of the label-invariant quantities, and whether the chains converged.

    Args:
        idata: From :func:`~probfusion.diagnostics.posterior.posterior`.

    Returns:
        The summary table (mean, sd, 94% HDI; with more than one chain also MCSE, bulk and tail ESS, R-hat)
        and ``{"chains", "draws", "max_r_hat", "min_ess_bulk", "min_ess_tail", "passed", "conclusion"}``
        (``passed`` is ``None`` for one chain: independent SVI draws have no chains to compare).
    """
    chains, draws = idata.posterior.sizes["chain"], idata.posterior.sizes["draw"]
    kind = "all" if chains > 1 else "stats"
    names = [name for name in INVARIANT_VARIABLES if name in idata.posterior]
    table, _ = _quiet(az.summary, idata, var_names=names, kind=kind)
    out: dict[str, Any] = {"chains": int(chains), "draws": int(draws)}
    if chains == 1:
        out.update(
            passed=None,
            conclusion=(
                f"{draws} independent draws of the variational posterior (one chain): R-hat and ESS do not apply; "
                "see the Pareto-k check for how well the guide matches the posterior."
            ),
        )
        return table, out
    # Constant quantities (a pruned share of exactly 0, an effective rank that never moves) have no R-hat.
    varying = table[table["sd"] > 0]
    r_hat = float(varying["r_hat"].max()) if len(varying) else float("nan")
    bulk = float(varying["ess_bulk"].min()) if len(varying) else float("nan")
    tail = float(varying["ess_tail"].min()) if len(varying) else float("nan")
    need = ESS_PER_CHAIN_MIN * chains
    passed = bool(r_hat <= RHAT_MAX and bulk >= need and tail >= need)
    verdict = "converged" if passed else "NOT converged: sample longer chains (BayesConfig.num_draws) first"
    out.update(
        max_r_hat=r_hat,
        min_ess_bulk=bulk,
        min_ess_tail=tail,
        passed=passed,
        conclusion=f"NUTS, {chains} chains x {draws} draws: max R-hat {r_hat:.3f} (want <= {RHAT_MAX}), "
        f"min bulk ESS {bulk:.0f} and tail ESS {tail:.0f} (want >= {need}): {verdict}.",
    )
    return table, out


def divergence_check(run: LoadedRun) -> dict[str, Any]:
    """NUTS divergent transitions after warm-up, as ``fit`` recorded them in the run's ``metrics.json``.

    Args:
        run: A loaded NUTS run.

    Returns:
        ``{"divergences", "per_chain", "draws", "parameterisation", "passed", "conclusion"}``; ``divergences``
        and ``passed`` are ``None`` for a run stored before divergences were recorded.

    Raises:
        ConfigError: For a run that was not sampled with NUTS.
    """
    bayes = run.config.bayes
    if bayes.inference is not InferenceKind.NUTS or not isinstance(run.metrics, Mapping):
        raise ConfigError(f"{run.path} was not sampled with NUTS; divergences apply to NUTS runs only.")
    per_chain = run.metrics.get("nuts_divergences_per_chain")
    draws = bayes.num_chains * bayes.num_draws
    parameterisation = bayes.nuts_parameterisation.value
    out: dict[str, Any] = {"draws": draws, "parameterisation": parameterisation, "per_chain": per_chain}
    if per_chain is None:
        out.update(
            divergences=None,
            passed=None,
            conclusion="NUTS divergences were not recorded for this run (fitted before they were); refit to see them.",
        )
        return out
    total = int(sum(per_chain))
    if total == 0:
        verdict = "no divergent transitions: no sign of geometry the sampler could not follow"
    else:
        verdict = (
            "the draws are biased where the posterior narrows (the ARD funnel of w ~ N(0, 1/lambda)); sample "
            "non-centred (BayesConfig.nuts_parameterisation) or with a higher target acceptance before trusting them"
        )
    out.update(
        divergences=total,
        passed=total == 0,
        conclusion=f"NUTS ({parameterisation}): {total} divergent transitions after warm-up in {draws} draws "
        f"(per chain {list(per_chain)}): {verdict}.",
    )
    return out


def component_identifiability(idata: az.InferenceData) -> dict[str, Any]:
    """Whether component ``i`` is the same component in every chain (so per-index tables can pool chains).

    Args:
        idata: From :func:`~probfusion.diagnostics.posterior.posterior`.

    Returns:
        ``{"identifiable", "max_r_hat", "conclusion"}``; with one chain (SVI's independent draws of one guide,
        which sits in one labelling) ``max_r_hat`` is ``None`` and the components are taken as identifiable.
    """
    post = idata.posterior
    if post.sizes["chain"] == 1:
        return {
            "identifiable": True,
            "max_r_hat": None,
            "conclusion": "one chain: per-index component tables use one labelling of the components.",
        }
    shares = post["variance_share"]
    varying = shares.std(("chain", "draw")) > 0
    r_hat, _ = _quiet(az.rhat, shares.where(varying, drop=True).to_dataset(name="share"))
    values = np.asarray(r_hat["share"].values, dtype=float) if varying.any() else np.array([1.0])
    worst = float(np.nanmax(values)) if np.isfinite(values).any() else float("nan")
    identifiable = bool(worst <= LABEL_RHAT_MAX)
    if identifiable:
        verdict = "the chains share one labelling; per-index component tables pool them"
    else:
        verdict = (
            "the chains label the components differently (or have not mixed): per-index component tables are "
            "left out, use the sorted, label-invariant quantities"
        )
    return {
        "identifiable": identifiable,
        "max_r_hat": worst,
        "conclusion": f"per-index variance shares: max R-hat across chains {worst:.3f} "
        f"(same labelling up to {LABEL_RHAT_MAX}): {verdict}.",
    }


def _log_joint(
    run: LoadedRun, draws: dict[str, Tensor], latents: list[Tensor], labels: Tensor, offset: Tensor | None = None
) -> Tensor:
    """``log p(theta, y)`` per draw: the head's priors plus the full-data likelihood, a `(s,)` tensor.

    ``offset``: the input skip's `(n, c)` logits, a point estimate inside the likelihood (no prior term here).
    """
    head = bayesian_model(run).head
    precision = draws["precision"]
    total = head.theta_prior(precision).log_prob(draws["theta"]) + head.bias_prior().log_prob(draws["bias"])
    for k in range(len(latents)):
        total = total + head.factor_prior(k, precision).log_prob(draws[f"factor_{k}"])
    if head.is_ard:
        total = total + head.precision_prior().log_prob(precision)
    return total + pointwise_log_likelihood(latents, labels, draws, offset).sum(-1)


def _log_guide(run: LoadedRun, draws: dict[str, Tensor]) -> Tensor:
    """``log q(theta)`` per draw, a `(s,)` tensor: q of u = (log lambda, rest) minus log|d theta / d u|."""
    guide = bayesian_model(run).guide
    if guide is None:
        raise ConfigError(f"{run.path} was fitted by {run.config.bayes.inference.value}; it has no variational guide.")
    s = draws["bias"].shape[0]
    flat = torch.cat([(draws[n].log() if n == "precision" else draws[n]).reshape(s, -1) for n in guide.shapes], dim=-1)
    log_q = guide.distribution().log_prob(flat)
    if "precision" in guide.shapes:
        log_q = log_q - draws["precision"].log().sum(-1)
    return log_q


def variational_pareto_k(
    run: LoadedRun | Path | str, *, num_draws: int | None = None, seed: int = 0, draws: PosteriorDraws | None = None
) -> dict[str, Any]:
    """PSIS diagnostic of the approximate posterior q of an SVI run (its guide) or a Laplace run (Yao et al. 2018).

    For Laplace the target is the head's exact posterior at the fitted precisions, which Laplace holds fixed:
    ``log p(y | theta) + log p(theta | lambda)`` with the head's own (not linearised) likelihood, so k says how
    well the Gaussian matches that posterior, not only the linearised model its predictive uses.

    Args:
        run: A loaded SVI or Laplace run, or its directory.
        num_draws: Draws of q (default 400).
        seed: Seed of the draws.
        draws: Guide draws already made for this run (e.g. ``draws_from_posterior(idata)``); ``num_draws`` and
            ``seed`` are then unused.

    Returns:
        ``{"k", "threshold", "num_draws", "ess", "passed", "conclusion"}``; ``ess`` is the PSIS effective sample
        size of the smoothed importance weights.

    Raises:
        ConfigError: For a run without a posterior or a NUTS run (whose draws need no importance correction).
    """
    run = resolve_run(run)
    model = bayesian_model(run)
    if model.inference is InferenceKind.NUTS:
        raise ConfigError(
            f"{run.path} was fitted by {run.config.bayes.inference.value}; the variational Pareto-k applies to SVI "
            "and Laplace runs (NUTS draws need no importance correction: read the convergence check)."
        )
    flat = (draws if draws is not None else draw_posterior(run, num_draws=num_draws, seed=seed)).flat()
    latents, labels, offset = split_inputs(run, "train")
    with torch.no_grad():
        log_q = model.laplace_log_density(flat) if model.inference is InferenceKind.LAPLACE else _log_guide(run, flat)
        log_ratio = (_log_joint(run, flat, latents, labels, offset).double() - log_q.double()).numpy()
    smoothed, k = az.psislw(log_ratio - log_ratio.max())
    k = float(k)
    weights = np.exp(smoothed)
    ess = float(1.0 / np.sum(weights**2))
    s = len(log_ratio)
    threshold = pareto_k_threshold(s)
    if k <= threshold:
        verdict = "q is close to the posterior; its uncertainty can be used as posterior uncertainty"
    elif k <= 0.7:
        verdict = "q is usable but rough; importance-reweighted estimates are more reliable than raw ones"
    else:
        verdict = (
            "q misses posterior mass: its means can still predict well, but its spread is NOT the "
            "posterior's (compare with a NUTS run, `--inference nuts`, before trusting its uncertainty)"
        )
    return {
        "k": k,
        "threshold": threshold,
        "num_draws": s,
        "ess": ess,
        "passed": bool(k <= threshold),
        "conclusion": f"variational Pareto k = {k:.2f} over {s} draws (good below {threshold:.2f}, "
        f"unreliable above 0.7): {verdict}.",
    }


def loo_check(idata: az.InferenceData) -> dict[str, Any]:
    """PSIS-LOO of a posterior with a ``log_likelihood`` group.

    Args:
        idata: From :func:`~probfusion.diagnostics.posterior.posterior` (with ``log_likelihood_split`` set).

    Returns:
        ``{"elpd_loo", "se", "p_loo", "n", "threshold", "share_k_high", "max_k", "warnings", "conclusion"}``.
    """
    result, messages = _quiet(az.loo, idata, pointwise=True)
    k = np.asarray(result.pareto_k)
    draws = idata.posterior.sizes["chain"] * idata.posterior.sizes["draw"]
    threshold = pareto_k_threshold(draws)
    high = float(np.mean(k > threshold))
    if high == 0.0:
        verdict = "every observation's LOO estimate is reliable"
    elif high <= 0.01:
        verdict = "a few observations are influential; the total is usable"
    else:
        verdict = "too many influential observations: the LOO estimate is unreliable (consider K-fold CV)"
    return {
        "elpd_loo": float(result.elpd_loo),
        "se": float(result.se),
        "p_loo": float(result.p_loo),
        "n": int(k.size),
        "threshold": threshold,
        "share_k_high": high,
        "max_k": float(k.max()),
        "warnings": messages,
        "conclusion": f"PSIS-LOO elpd {float(result.elpd_loo):.1f} (SE {float(result.se):.1f}, p_loo "
        f"{float(result.p_loo):.1f}); {100 * high:.1f}% of {k.size} observations have Pareto k above "
        f"{threshold:.2f}: {verdict}.",
    }


def training_fingerprint(run: LoadedRun) -> str:
    """A SHA-256 of a run's training rows: every modality's raw features (in order) and the labels.

    Two runs conditioned on the same data have the same fingerprint; equal labels alone are not enough (on
    av-digits the image-audio pairing of each row depends on the seed, the labels do not).
    """
    train = run.splits()[0]
    digest = hashlib.sha256()
    for name, view in train.views.items():
        array = np.ascontiguousarray(view)
        digest.update(f"{name}:{array.dtype}:{array.shape}".encode())
        digest.update(array.tobytes())
    digest.update(np.ascontiguousarray(train.labels, dtype=np.int64).tobytes())
    return digest.hexdigest()


def compare_runs(
    runs: Mapping[str, LoadedRun | Path | str],
    *,
    num_draws: int | None = None,
    seed: int = 0,
    posteriors: Mapping[str, az.InferenceData] | None = None,
) -> pd.DataFrame:
    """Rank Bayesian runs by PSIS-LOO (``az.compare``, stacking weights).

    Args:
        runs: ``{name: run}``; every run must have the same training rows (same data, split and seed).
        num_draws: SVI draws per run.
        seed: Seed of the SVI draws.
        posteriors: Posteriors already computed for some of the names (with the training log-likelihood, as
            :func:`~probfusion.diagnostics.posterior.posterior` gives by default); the others are drawn.

    Returns:
        ``az.compare``'s table: rank, elpd_loo, p_loo, elpd_diff, weight, se, dse, warning.

    Raises:
        ConfigError: For fewer than two runs, a run without a posterior, or runs on different training rows
            (checked on the rows themselves, before any posterior is drawn).
    """
    if len(runs) < 2:
        raise ConfigError(f"Comparing models needs at least two runs; got {len(runs)}.")
    loaded = {name: resolve_run(run) for name, run in runs.items()}
    for run in loaded.values():
        bayesian_model(run)
    fingerprints = {name: training_fingerprint(run) for name, run in loaded.items()}
    first_name = next(iter(loaded))
    for name, fingerprint in fingerprints.items():
        if fingerprint != fingerprints[first_name]:
            raise ConfigError(
                f"Runs {first_name!r} and {name!r} were fitted on different training rows; LOO compares models "
                "on the same data only (same dataset, split and seed)."
            )
    given = dict(posteriors or {})
    datasets = {
        name: given[name] if name in given else posterior(run, num_draws=num_draws, seed=seed)
        for name, run in loaded.items()
    }
    table, _ = _quiet(az.compare, datasets, ic="loo")
    return table
