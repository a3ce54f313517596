r"""RCML's conflictive test rows (Xu et al., AAAI 2024), as a shift of the standardised test inputs.

A share of the test rows is made conflictive in one of two ways, on disjoint random rows:

* **noise**: Gaussian noise on a random non-empty subset of the modalities,
  :math:`x_{mj} + \sigma \, r_{mj} \, \varepsilon`, :math:`\varepsilon \sim \mathcal N(0, 1)`. RCML adds
  :math:`\sigma = 0.5` to inputs min-max scaled to [0, 1]; on the run's standardised inputs the same noise is
  :math:`\sigma` times each feature's training range :math:`r_{mj} = (\max - \min) / \mathrm{std}` (the range of
  the standardised training column), so sigma keeps its meaning "a share of the feature's range";
* **swap**: one modality, drawn uniformly, replaced by that modality of a random test row of another class.

At the reference severity 3 the shares are RCML's (10 % noise rows, 40 % swap rows); severity s scales both
shares by s / 3 (so severity 5 makes 83 % of the rows conflictive). Every changed row, how and from which
donor is returned, so uncertainties can be scored on exactly those rows. Cost: O(n sum_m d_m).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from probfusion.errors import ConfigError
from probfusion.robustness.shifts import _check_modalities, _check_severity

__all__ = ["CONFLICT_REFERENCE_SEVERITY", "ConflictRecord", "conflict_shares", "conflictive_views"]

CONFLICT_REFERENCE_SEVERITY = 3
"""The severity at which the shares are the configured ones (RCML's protocol by default)."""


@dataclass(frozen=True, eq=False)
class ConflictRecord:
    """Which rows :func:`conflictive_views` changed, and how.

    Attributes:
        rows: `(k,)` int64 indices of the conflictive rows, noise rows first.
        kinds: ``"noise"`` or ``"swap"`` per row.
        modalities: The changed modalities of each row.
        donors: `(k,)` int64 donor row of a swap (-1 for noise rows).
    """

    rows: Tensor
    kinds: tuple[str, ...]
    modalities: tuple[tuple[str, ...], ...]
    donors: Tensor

    def mask(self, n: int) -> Tensor:
        """`(n,)` booleans, true on the conflictive rows."""
        out = torch.zeros(n, dtype=torch.bool, device=self.rows.device)
        out[self.rows] = True
        return out

    def table(self, **columns: Any) -> list[dict[str, Any]]:
        """One dict per changed row (``row``, ``kind``, ``modalities`` joined by ``;``, ``donor_row``)."""
        return [
            {**columns, "row": int(r), "kind": k, "modalities": ";".join(m), "donor_row": int(d)}
            for r, k, m, d in zip(self.rows.tolist(), self.kinds, self.modalities, self.donors.tolist(), strict=True)
        ]


def conflict_shares(severity: int, noise_share: float, swap_share: float) -> tuple[float, float]:
    """The (noise, swap) shares of rows at ``severity``: the configured ones times ``severity / 3``.

    Raises:
        ConfigError: If the severity is not 1..5 or the shares add up to more than all rows.
    """
    factor = _check_severity(severity) / CONFLICT_REFERENCE_SEVERITY
    noise, swap = noise_share * factor, swap_share * factor
    if noise + swap > 1.0 + 1e-9:
        raise ConfigError(
            f"Conflict shares {noise_share} + {swap_share} at severity {severity} cover {noise + swap:.0%} of the "
            "rows; lower the shares or the severity (at most 100 %)."
        )
    return noise, swap


def conflictive_views(
    views: Mapping[str, Tensor],
    labels: Tensor,
    *,
    severity: int,
    noise_scale: Mapping[str, Tensor],
    sigma: float = 0.5,
    noise_share: float = 0.1,
    swap_share: float = 0.4,
    generator: torch.Generator | None = None,
) -> tuple[dict[str, Tensor], ConflictRecord]:
    """Make a share of the rows conflictive by noise on some modalities or a modality from another class.

    Args:
        views: ``{m: (n, d_m)}`` standardised test inputs, M >= 2.
        labels: `(n,)` labels (a swap donor is a row of another class).
        severity: 1..5; the shares are scaled by ``severity / 3``.
        noise_scale: ``{m: (d_m,)}`` each feature's training range in standardised units.
        sigma: Noise standard deviation as a share of each feature's range (RCML: 0.5).
        noise_share: Share of rows with noise at severity 3 (RCML: 0.1).
        swap_share: Share of rows with a swapped modality at severity 3 (RCML: 0.4).
        generator: Source of the rows, modalities, donors and noise.

    Returns:
        The shifted ``{m: (n, d_m)}`` views and the record of the changed rows.

    Raises:
        ConfigError: With fewer than two modalities, one class, or shares above 100 %.
    """
    names = tuple(views)
    _check_modalities(views, names)
    if len(names) < 2:
        raise ConfigError(f"Shift 'conflict' needs at least two modalities; the run has one ({names[0]!r}).")
    if labels.unique().numel() < 2:
        raise ConfigError("Shift 'conflict' needs test rows of at least two classes to swap a modality between.")
    noise, swap = conflict_shares(severity, noise_share, swap_share)
    n, device = labels.shape[0], labels.device
    n_noise, n_swap = round(noise * n), round(swap * n)
    n_swap = min(n_swap, n - n_noise)
    order = torch.randperm(n, generator=generator).to(device)
    noise_rows, swap_rows = order[:n_noise], order[n_noise : n_noise + n_swap]
    out = {m: x.clone() for m, x in views.items()}

    # Noise rows: a random non-empty subset of the modalities each.
    chosen = torch.rand(n_noise, len(names), generator=generator) < 0.5
    fallback = torch.randint(len(names), (n_noise,), generator=generator)
    empty = ~chosen.any(dim=1)
    chosen[empty, fallback[empty]] = True
    chosen = chosen.to(device)
    for j, m in enumerate(names):  # a loop over the M modalities, not over rows
        x = out[m]
        eps = torch.randn((n_noise, x.shape[1]), generator=generator, dtype=x.dtype).to(device)
        step = sigma * noise_scale[m].to(dtype=x.dtype, device=device) * eps * chosen[:, j : j + 1].to(x.dtype)
        x[noise_rows] = x[noise_rows] + step

    # Swap rows: one modality each, from a random row of another class (rejection draws, vectorised over rows).
    which = torch.randint(len(names), (n_swap,), generator=generator).to(device)
    donors = torch.randint(n, (n_swap,), generator=generator).to(device)
    for _ in range(1000):
        same = labels[donors] == labels[swap_rows]
        if not same.any():
            break
        donors[same] = torch.randint(n, (int(same.sum()),), generator=generator).to(device)
    if (labels[donors] == labels[swap_rows]).any():
        raise ConfigError("Could not find rows of another class to swap from; the test split is nearly one class.")
    for j, m in enumerate(names):
        pick = which == j
        out[m][swap_rows[pick]] = views[m][donors[pick]]

    record = ConflictRecord(
        rows=torch.cat([noise_rows, swap_rows]),
        kinds=("noise",) * n_noise + ("swap",) * n_swap,
        modalities=tuple(tuple(m for j, m in enumerate(names) if chosen[i, j]) for i in range(n_noise))
        + tuple((names[j],) for j in which.tolist()),
        donors=torch.cat([torch.full((n_noise,), -1, dtype=torch.long, device=device), donors]),
    )
    return out, record
