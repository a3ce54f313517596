"""probfusion's LMF fusion step against the official LMF code's, side by side, and both against GEMM speed.

The official implementation is ``LMF.forward`` in ``model.py`` of github.com/Justin1904/Low-rank-Multimodal-Fusion
(Liu et al., ACL 2018; MIT licence), the fusion step only (after the sub-networks): prepend a 1 to each latent,
``matmul`` with factors of shape ``(r, d_m + 1, h)``, multiply the M projections elementwise, mix the r components
with ``fusion_weights (1, r)`` and add ``fusion_bias (1, h)``. It is transcribed below (:class:`OfficialLMFFusion`,
``Variable``/``.cuda()`` dropped, M modalities instead of three) as the reference; nothing in ``probfusion`` uses it.
probfusion's :class:`~probfusion.fusion.lmf.LowRankFusion` appends the 1 instead, stores factors as ``(r, h, d_m
+ 1)`` and sums the components. With ``fusion_weights = 1``, ``fusion_bias = 0`` and each factor's constant row
moved from last to first and transposed, the two compute the same function: checked here (``allclose`` of the
outputs, the input gradients and the factor gradients, in float64) at every size before timing.

Sizes (n rows, latent widths d_m, rank r, output h): MOSI's training batch and test set with the paper's latents
(32, 32, 64), r = 4, h = 1; the same latents into h = 128; and two larger layers. Time: best of repeats of one
forward + backward (loss ``sum(out * g)``, gradients of the factors and the latents), float32, one thread
(``torch.set_num_threads(1)``; the machine is shared, so only ratios measured in this one process are meaningful).
Both are reported as a fraction of this machine's large-GEMM rate, a ``(2048, 2048) @ (2048, 2048)`` float32
``torch.matmul`` timed in the same process; the work counted is the GEMM part of the layer, 3 x 2 n r h
sum_m (d_m + 1) multiply-adds x 2 (forward, and the two gradient products of backward), so a layer made only of
well-shaped matmuls would approach 1. Goal: probfusion at least as fast as the official code at every size
(``official_over_probfusion >= 1``).

Run: ``python studies/benchmarks/lmf_official.py`` (about a minute); ``--smoke`` for seconds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, parse_args, write_results
from _timing import benchmark_output_dir, best_seconds, machine

from probfusion.fusion.lmf import LowRankFusion

# (name, n, latent widths d_m, rank r, output h)
SIZES = (
    ("MOSI train batch", 32, (32, 32, 64), 4, 1),
    ("MOSI test set", 686, (32, 32, 64), 4, 1),
    ("MOSI latents, h = 128", 1284, (32, 32, 64), 4, 128),
    ("large", 1024, (128, 128, 256), 16, 256),
    ("larger", 2048, (256, 256, 256), 16, 256),
)
SMOKE_SIZES = (("tiny", 8, (3, 4, 5), 2, 3), ("tiny, h = 1", 5, (2, 3), 3, 1))
GEMM_SIDE = 2048


class OfficialLMFFusion(nn.Module):
    """The fusion step of the official ``LMF.forward`` (Justin1904/Low-rank-Multimodal-Fusion, ``model.py``).

    Transcribed as the benchmark's reference, with the three hard-coded modalities generalised to a list.
    Factors ``(r, d_m + 1, h)``, ``fusion_weights (1, r)``, ``fusion_bias (1, h)``.
    """

    def __init__(self, factors: list[Tensor], fusion_weights: Tensor, fusion_bias: Tensor) -> None:
        super().__init__()
        self.factors = nn.ParameterList(nn.Parameter(f) for f in factors)
        self.fusion_weights = nn.Parameter(fusion_weights)
        self.fusion_bias = nn.Parameter(fusion_bias)
        self.output_dim = fusion_bias.shape[-1]

    def forward(self, latents: list[Tensor]) -> Tensor:
        """M `(n, d_m)` latents -> `(n, h)`, exactly as the official forward after its sub-networks."""
        batch_size = latents[0].shape[0]
        fusion_zy: Tensor | None = None
        for h, factor in zip(latents, self.factors, strict=True):
            _h = torch.cat((torch.ones(batch_size, 1, dtype=h.dtype), h), dim=1)
            fusion = torch.matmul(_h, factor)  # (r, n, h)
            fusion_zy = fusion if fusion_zy is None else fusion_zy * fusion
        output = torch.matmul(self.fusion_weights, fusion_zy.permute(1, 0, 2)).squeeze() + self.fusion_bias
        return output.view(-1, self.output_dim)


def official_from(layer: LowRankFusion) -> OfficialLMFFusion:
    """The official layer with the same function as ``layer``: constant row first, ``(r, d_m + 1, h)``, w = 1, b = 0."""
    factors = [torch.cat((f[..., -1:], f[..., :-1]), dim=-1).transpose(1, 2).detach().clone() for f in layer.factors]
    first = layer.factors[0]
    return OfficialLMFFusion(
        factors,
        torch.ones(1, layer.rank, dtype=first.dtype),
        torch.zeros(1, layer.output_dim, dtype=first.dtype),
    )


def _forward_backward(layer: nn.Module, latents: list[Tensor], probe: Tensor) -> None:
    for p in layer.parameters():
        p.grad = None
    for z in latents:
        z.grad = None
    (layer(latents) * probe).sum().backward()


def check_same_function(n: int, dims: tuple[int, ...], rank: int, h: int) -> dict[str, float]:
    """Largest relative differences (output, latent gradients, factor gradients) between the two, in float64."""
    torch.manual_seed(0)
    ours = LowRankFusion(input_dims=dims, rank=rank, output_dim=h).double()
    theirs = official_from(ours)
    generator = torch.Generator().manual_seed(1)
    latents = [torch.randn(n, d, generator=generator, dtype=torch.float64) for d in dims]
    probe = torch.randn(n, h, generator=generator, dtype=torch.float64)
    results = {}
    for name, layer in (("ours", ours), ("theirs", theirs)):
        inputs = [z.clone().requires_grad_(True) for z in latents]
        out = layer(inputs)
        (out * probe).sum().backward()
        grads = [g.grad for g in layer.factors]
        if name == "theirs":  # back to probfusion's layout: constant coordinate last, (r, h, d_m + 1)
            grads = [torch.cat((g[:, 1:], g[:, :1]), dim=1).transpose(1, 2) for g in grads]
        results[name] = (out, [z.grad for z in inputs], grads)
    (o1, z1, f1), (o2, z2, f2) = results["ours"], results["theirs"]

    def rel(a: Tensor, b: Tensor) -> float:
        return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))

    return {
        "output": rel(o1, o2),
        "latent_gradients": max(rel(a, b) for a, b in zip(z1, z2, strict=True)),
        "factor_gradients": max(rel(a, b) for a, b in zip(f1, f2, strict=True)),
    }


def gemm_flops_per_second(side: int, repeats: int) -> float:
    """FLOP/s of a ``(side, side) @ (side, side)`` float32 ``torch.matmul`` (best of ``repeats``)."""
    generator = torch.Generator().manual_seed(2)
    a, b = (torch.randn(side, side, generator=generator) for _ in range(2))
    return 2.0 * side**3 / best_seconds(lambda: torch.matmul(a, b), repeats)


def layer_flops(n: int, dims: tuple[int, ...], rank: int, h: int) -> float:
    """The layer's GEMM work per forward + backward: 3 products of 2 n (d_m + 1) r h FLOPs per modality."""
    return 3.0 * sum(2.0 * n * (d + 1) * rank * h for d in dims)


def layers(ours: LowRankFusion) -> tuple[tuple[str, nn.Module], tuple[str, nn.Module]]:
    """The probfusion layer and the official one holding the same function."""
    return ("probfusion", ours), ("official", official_from(ours))


def op_overhead(n: int, dims: tuple[int, ...], rank: int, h: int, *, repeats: int) -> dict[str, float]:
    """Forward + backward seconds of the ops that differ between the two layers, at one size.

    probfusion's einsum projection of each modality (``"nd,rhd->nrh"`` on ``[z; 1]``) against the official
    broadcast ``matmul`` (``(n, d+1) @ (r, d+1, h)``), summed over the modalities, and the last step (sum over r
    against the ``fusion_weights`` matmul).
    """
    generator = torch.Generator().manual_seed(3)
    timing = {"einsum": 0.0, "matmul": 0.0}
    for d in dims:
        z = torch.randn(n, d + 1, generator=generator, requires_grad=True)
        ours = torch.randn(rank, h, d + 1, generator=generator, requires_grad=True)
        theirs = torch.randn(rank, d + 1, h, generator=generator, requires_grad=True)
        timing["einsum"] += best_seconds(
            lambda z=z, w=ours: torch.einsum("nd,rhd->nrh", z, w).sum().backward(), repeats
        )
        timing["matmul"] += best_seconds(lambda z=z, w=theirs: torch.matmul(z, w).sum().backward(), repeats)
    ours_fused = torch.randn(n, rank, h, generator=generator, requires_grad=True)  # probfusion's (n, r, h)
    their_fused = torch.randn(rank, n, h, generator=generator, requires_grad=True)  # the official (r, n, h)
    weights = torch.ones(1, rank, requires_grad=True)
    timing["sum_over_rank"] = best_seconds(lambda: ours_fused.sum(dim=1).sum().backward(), repeats)
    timing["fusion_weights_matmul"] = best_seconds(
        lambda: torch.matmul(weights, their_fused.permute(1, 0, 2)).sum().backward(), repeats
    )
    return timing


def time_row(name: str, n: int, dims: tuple[int, ...], rank: int, h: int, *, repeats: int, gemm: float) -> dict:
    """Forward + backward seconds of both layers on the same float32 weights and inputs."""
    torch.manual_seed(0)
    ours = LowRankFusion(input_dims=dims, rank=rank, output_dim=h)
    generator = torch.Generator().manual_seed(1)
    latents = [torch.randn(n, d, generator=generator).requires_grad_(True) for d in dims]
    probe = torch.randn(n, h, generator=generator)
    calls = {label: (lambda layer=layer: _forward_backward(layer, latents, probe)) for label, layer in layers(ours)}
    # Enough repeats for about 0.3 s per layer (at least ``repeats``): sub-millisecond calls need hundreds.
    single = best_seconds(calls["probfusion"], 1)
    count = max(repeats, min(500, int(0.3 / max(single, 1e-6))))
    seconds = {label: best_seconds(call, count) for label, call in calls.items()}
    flops = layer_flops(n, dims, rank, h)
    return {
        "size": name,
        "n": n,
        "d_m": list(dims),
        "rank": rank,
        "h": h,
        "probfusion_seconds": seconds["probfusion"],
        "official_seconds": seconds["official"],
        "official_over_probfusion": seconds["official"] / seconds["probfusion"],
        "gemm_flops": flops,
        "probfusion_fraction_of_gemm": flops / seconds["probfusion"] / gemm,
        "official_fraction_of_gemm": flops / seconds["official"] / gemm,
    }


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], default_seeds=1)
    out = benchmark_output_dir(__file__, args)
    torch.set_num_threads(1)
    sizes, repeats, gemm_side = (SMOKE_SIZES, 2, 256) if args.smoke else (SIZES, 10, GEMM_SIDE)
    checks = {name: check_same_function(min(n, 256), dims, r, h) for name, n, dims, r, h in sizes}
    worst = max(max(c.values()) for c in checks.values())
    if worst > 1e-10:
        raise SystemExit(f"The two LMF layers disagree (largest relative difference {worst:.1e}); not timing them.")
    gemm = gemm_flops_per_second(gemm_side, repeats)
    rows = []
    for name, n, dims, r, h in sizes:
        rows.append(time_row(name, n, dims, r, h, repeats=repeats, gemm=gemm))
        print(rows[-1], flush=True)
    # Where a size is slower than the official code, the cause is measured op by op at that size.
    slow = [r for r in rows if r["official_over_probfusion"] < 1.0]
    for row in slow:
        row["op_seconds"] = op_overhead(row["n"], tuple(row["d_m"]), row["rank"], row["h"], repeats=200)
        print(row["size"], row["op_seconds"], flush=True)
    # The GEMM rate again after the layers: how much the shared machine drifted during the run.
    gemm_after = gemm_flops_per_second(gemm_side, repeats)
    summary = {
        "rows": rows,
        "same_function_max_relative_difference": worst,
        "same_function_checks_float64": checks,
        "gemm_gflops_per_second": gemm / 1e9,
        "gemm_gflops_per_second_after": gemm_after / 1e9,
        "gemm_shape": [gemm_side, gemm_side, gemm_side],
        "min_official_over_probfusion": min(r["official_over_probfusion"] for r in rows),
        "goal_probfusion_at_least_as_fast_everywhere": all(r["official_over_probfusion"] >= 1.0 for r in rows),
        "threads": torch.get_num_threads(),
        "machine": machine(),
        "smoke": args.smoke,
    }
    table = markdown_table(
        [
            "size",
            "n",
            "d_m",
            "r",
            "h",
            "probfusion ms",
            "official ms",
            "official / probfusion",
            "probfusion / GEMM rate",
            "official / GEMM rate",
        ],
        [
            [
                r["size"],
                r["n"],
                ", ".join(map(str, r["d_m"])),
                r["rank"],
                r["h"],
                f"{1e3 * r['probfusion_seconds']:.3f}",
                f"{1e3 * r['official_seconds']:.3f}",
                f"{r['official_over_probfusion']:.2f}x",
                f"{r['probfusion_fraction_of_gemm']:.1%}",
                f"{r['official_fraction_of_gemm']:.1%}",
            ]
            for r in rows
        ],
    )
    table += (
        f"\nForward + backward, float32, {summary['threads']} thread; GEMM rate {gemm / 1e9:.1f} GFLOP/s "
        f"({gemm_after / 1e9:.1f} after the layers) on a ({gemm_side})^2 matmul in the same process. Same function: "
        f"largest relative difference {worst:.1e} (float64).\n"
    )
    for row in slow:
        ops = row["op_seconds"]
        table += (
            f"\n{row['size']}: probfusion {1e6 * row['probfusion_seconds']:.0f} us against "
            f"{1e6 * row['official_seconds']:.0f} us. Op by op (forward + backward, summed over the modalities): "
            f"einsum projections {1e6 * ops['einsum']:.0f} us against matmul {1e6 * ops['matmul']:.0f} us; sum over "
            f"r {1e6 * ops['sum_over_rank']:.0f} us against the fusion-weights matmul "
            f"{1e6 * ops['fusion_weights_matmul']:.0f} us. At this size the layer is "
            f"{row['probfusion_fraction_of_gemm']:.1%} of the GEMM rate: per-op dispatch, not arithmetic, sets "
            "the time.\n"
        )
    write_results(
        out, [{**r, "d_m": str(r["d_m"]), "op_seconds": str(r.get("op_seconds", ""))} for r in rows], summary, table
    )
    print(table)
    print(out)


if __name__ == "__main__":
    main()
