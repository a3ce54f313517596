"""LMF against TFN at the LMF paper's CMU-MOSI sizes, and the fusion layer alone at M = 3 with growing d_m.

Part 1, the paper's setting (Liu et al., ACL 2018, section 5.3 and Table 3), measured side by side in one process.
Inputs as in CMU-MOSI: audio 74 (COVAREP), video 35 (FACET), text a sequence of 20 words x 300 (GloVe; the
reference code's ``max_len`` 20). Sub-networks as in the reference code that both papers' models share
(github.com/Justin1904/Low-rank-Multimodal-Fusion, ``model.py``): audio and video each BatchNorm, dropout and three
ReLU layers of width 32; text an LSTM with 128 hidden units and a linear map to 64. So the fused latents are
d = (32, 32, 64), the paper's "d_1 = 32, d_2 = 32, d_3 = 64, r = 4, d_y = 1":

* LMF: :class:`~probfusion.fusion.lmf.LowRankFusion` with rank 4 straight to the output d_y = 1 (as in the paper's
  count and the reference code, which has no post-fusion network);
* TFN: :class:`~probfusion.fusion.tfn.TensorFusion` on the (33 x 33 x 65 = 70,785)-dim outer product into 128
  units, then the TFN paper's inference sub-network (ReLU, 128, ReLU, 1).

Parameters are counted twice: the whole model (sub-networks + fusion + post-fusion, what the paper counts) and the
fusion stage alone (LMF factors; TFN's fusion layer and its post-fusion network). Training throughput: examples
per second of Adam steps on the L1 loss (the reference code's) over MOSI's 1,284 training examples in batches of
32; inference: one no-grad pass over MOSI's 686 test examples in one batch, as the reference code scores them.
Inputs are random (throughput does not depend on the values). Goal: the paper's ratios, at least 11.4x parameters
(12.5M / 1.1M) and 3.3x training speed (1134.82 / 340.74 IPS); the paper's inference ratio is 1.9x.

Part 2: the fusion layer alone (h = 32 outputs, rank 4 for LMF) on M = 3 latents of equal width d_m, training
step (forward, backward, Adam) and inference throughput at batch 32, with the exponents of parameters and time in
d_m fitted by least squares on log-log: TFN's are O(prod_m (d_m + 1)) ~ d^3, LMF's O(r sum_m (d_m + 1)) ~ d.

Run: ``python studies/benchmarks/lmf_vs_tfn.py`` (about a minute); ``--smoke`` for seconds.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, parse_args, write_results
from _timing import benchmark_output_dir, best_seconds, loglog_exponent, machine

from probfusion.fusion.lmf import LowRankFusion
from probfusion.fusion.tfn import TensorFusion

AUDIO_IN, VIDEO_IN, TEXT_IN, SEQ_LEN = 74, 35, 300, 20
AUDIO_HIDDEN, VIDEO_HIDDEN, TEXT_HIDDEN, TEXT_OUT = 32, 32, 128, 64
RANK, OUTPUT_DIM, TFN_POST_FUSION = 4, 1, 128
MOSI_TRAIN, MOSI_TEST, BATCH = 1284, 686, 32
PAPER = {"parameter_ratio": 12.5 / 1.1, "train_ratio": 1134.82 / 340.74, "inference_ratio": 2249.90 / 1177.17}


def _feature_subnet(in_dim: int, hidden: int, dropout: float = 0.2) -> nn.Module:
    """Audio/video sub-network of the reference code: BatchNorm, dropout, three ReLU layers, `(n, in)` -> `(n, h)`."""
    return nn.Sequential(
        nn.BatchNorm1d(in_dim),
        nn.Dropout(dropout),
        nn.Linear(in_dim, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
    )


class _TextSubnet(nn.Module):
    """LSTM over the word sequence `(n, t, 300)`, last hidden state, dropout, linear map to `(n, text_out)`."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(TEXT_IN, TEXT_HIDDEN, batch_first=True)
        self.out = nn.Sequential(nn.Dropout(0.2), nn.Linear(TEXT_HIDDEN, TEXT_OUT))

    def forward(self, x: Tensor) -> Tensor:
        """`(n, t, 300)` word vectors -> `(n, text_out)`."""
        _, (h, _) = self.rnn(x)
        return self.out(h[-1])


class MosiFusionModel(nn.Module):
    """Sub-networks, then LMF (rank 4, d_y = 1) or TFN (outer product -> 128 -> 128 -> 1)."""

    def __init__(self, fusion: str) -> None:
        super().__init__()
        self.audio = _feature_subnet(AUDIO_IN, AUDIO_HIDDEN)
        self.video = _feature_subnet(VIDEO_IN, VIDEO_HIDDEN)
        self.text = _TextSubnet()
        dims = [AUDIO_HIDDEN, VIDEO_HIDDEN, TEXT_OUT]
        if fusion == "lmf":
            self.fusion: nn.Module = LowRankFusion(input_dims=dims, rank=RANK, output_dim=OUTPUT_DIM)
        else:
            self.fusion = nn.Sequential(
                _Fuse(TensorFusion(input_dims=dims, output_dim=TFN_POST_FUSION)),
                nn.ReLU(),
                nn.Dropout(0.2),
                nn.Linear(TFN_POST_FUSION, TFN_POST_FUSION),
                nn.ReLU(),
                nn.Linear(TFN_POST_FUSION, OUTPUT_DIM),
            )

    def forward(self, audio: Tensor, video: Tensor, text: Tensor) -> Tensor:
        """`(n, 74)`, `(n, 35)`, `(n, t, 300)` -> `(n, 1)` predictions."""
        latents = [self.audio(audio), self.video(video), self.text(text)]
        return self.fusion(latents)


class _Fuse(nn.Module):
    """Lets a fusion layer (which takes a list of latents) sit first in an ``nn.Sequential``."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, latents: list[Tensor]) -> Tensor:
        """M `(n, d_m)` latents -> `(n, h)`."""
        return self.layer(latents)


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _mosi_inputs(n: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return (
        torch.randn(n, AUDIO_IN, generator=generator),
        torch.randn(n, VIDEO_IN, generator=generator),
        torch.randn(n, SEQ_LEN, TEXT_IN, generator=generator),
        torch.randn(n, 1, generator=generator),
    )


def _mosi_row(fusion: str, *, train_n: int, test_n: int, repeats: int) -> dict:
    torch.manual_seed(0)
    model = MosiFusionModel(fusion)
    generator = torch.Generator().manual_seed(1)
    audio, video, text, target = _mosi_inputs(train_n, generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train_epoch() -> None:
        model.train()
        for start in range(0, train_n, BATCH):
            batch = slice(start, start + BATCH)
            loss = (model(audio[batch], video[batch], text[batch]) - target[batch]).abs().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    test_audio, test_video, test_text, _ = _mosi_inputs(test_n, generator)

    @torch.no_grad()
    def infer() -> None:
        model.eval()
        model(test_audio, test_video, test_text)

    train_seconds = best_seconds(train_epoch, repeats)
    infer_seconds = best_seconds(infer, 3 * repeats)
    return {
        "part": "mosi",
        "model": fusion,
        "whole_model_parameters": _count(model),
        "fusion_parameters": _count(model.fusion),
        "train_examples_per_second": train_n / train_seconds,
        "inference_examples_per_second": test_n / infer_seconds,
    }


def _scaling_row(fusion: str, d: int, *, batch: int, repeats: int, fused_dim: int = 32) -> dict:
    torch.manual_seed(0)
    dims = [d, d, d]
    layer: nn.Module = (
        LowRankFusion(input_dims=dims, rank=RANK, output_dim=fused_dim)
        if fusion == "lmf"
        else TensorFusion(input_dims=dims, output_dim=fused_dim)
    )
    generator = torch.Generator().manual_seed(1)
    latents = [torch.randn(batch, d, generator=generator) for _ in dims]
    target = torch.randn(batch, fused_dim, generator=generator)
    optimizer = torch.optim.Adam(layer.parameters(), lr=1e-3)

    def step() -> None:
        loss = (layer(latents) - target).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    @torch.no_grad()
    def infer() -> None:
        layer(latents)

    train_seconds = best_seconds(step, repeats)
    infer_seconds = best_seconds(infer, repeats)
    return {
        "part": "scaling",
        "model": fusion,
        "d_m": d,
        "fusion_parameters": _count(layer),
        "train_step_seconds": train_seconds,
        "train_examples_per_second": batch / train_seconds,
        "inference_examples_per_second": batch / infer_seconds,
    }


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], default_seeds=1)
    out = benchmark_output_dir(__file__, args)
    if args.smoke:
        train_n, test_n, repeats, widths, scaling_repeats = 2 * BATCH, 64, 1, (4, 8, 16), 2
    else:
        train_n, test_n, repeats, widths, scaling_repeats = MOSI_TRAIN, MOSI_TEST, 3, (4, 8, 16, 32, 48, 64), 20
    mosi = {f: _mosi_row(f, train_n=train_n, test_n=test_n, repeats=repeats) for f in ("lmf", "tfn")}
    for row in mosi.values():
        print(row, flush=True)
    scaling = []
    for d in widths:
        for fusion in ("lmf", "tfn"):
            scaling.append(_scaling_row(fusion, d, batch=BATCH, repeats=scaling_repeats))
            print(scaling[-1], flush=True)
    lmf, tfn = mosi["lmf"], mosi["tfn"]
    ratios = {
        "parameter_ratio": tfn["whole_model_parameters"] / lmf["whole_model_parameters"],
        "fusion_parameter_ratio": tfn["fusion_parameters"] / lmf["fusion_parameters"],
        "train_ratio": lmf["train_examples_per_second"] / tfn["train_examples_per_second"],
        "inference_ratio": lmf["inference_examples_per_second"] / tfn["inference_examples_per_second"],
    }
    exponents = {}
    for fusion in ("lmf", "tfn"):
        rows = [r for r in scaling if r["model"] == fusion]
        large = [r for r in rows if r["d_m"] >= 16]
        exponents[fusion] = {
            "parameters": loglog_exponent([r["d_m"] + 1 for r in rows], [r["fusion_parameters"] for r in rows]),
            "train_step_seconds": loglog_exponent(
                [r["d_m"] + 1 for r in large], [r["train_step_seconds"] for r in large]
            ),
            "inference_seconds": loglog_exponent(
                [r["d_m"] + 1 for r in large], [BATCH / r["inference_examples_per_second"] for r in large]
            ),
        }
    goals = {
        "parameter_ratio_at_least_paper": ratios["parameter_ratio"] >= PAPER["parameter_ratio"],
        "train_ratio_at_least_3x": ratios["train_ratio"] >= 3.0,
    }
    summary = {
        "setting": {
            "inputs": {"audio": AUDIO_IN, "video": VIDEO_IN, "text": [SEQ_LEN, TEXT_IN]},
            "latents": [AUDIO_HIDDEN, VIDEO_HIDDEN, TEXT_OUT],
            "text_lstm_hidden": TEXT_HIDDEN,
            "rank": RANK,
            "output_dim": OUTPUT_DIM,
            "tfn_post_fusion": [TFN_POST_FUSION, TFN_POST_FUSION, OUTPUT_DIM],
            "batch_size": BATCH,
            "train_examples": train_n,
            "test_examples": test_n,
        },
        "mosi": mosi,
        "ratios": ratios,
        "paper": PAPER,
        "goals": goals,
        "scaling_exponents_in_d_plus_1": exponents,
        "exponent_fit": "least squares on log-log; time exponents over d_m >= 16 (smaller ones are overhead-bound)",
        "machine": machine(),
        "smoke": args.smoke,
    }
    mosi_table = markdown_table(
        ["model", "whole-model parameters", "fusion parameters", "train examples/s", "inference examples/s"],
        [
            [
                r["model"].upper(),
                f"{r['whole_model_parameters']:,}",
                f"{r['fusion_parameters']:,}",
                f"{r['train_examples_per_second']:.0f}",
                f"{r['inference_examples_per_second']:.0f}",
            ]
            for r in mosi.values()
        ]
        + [
            [
                "TFN / LMF (LMF / TFN for speed)",
                f"{ratios['parameter_ratio']:.1f}x (paper {PAPER['parameter_ratio']:.1f}x)",
                f"{ratios['fusion_parameter_ratio']:.0f}x",
                f"{ratios['train_ratio']:.2f}x (paper {PAPER['train_ratio']:.2f}x)",
                f"{ratios['inference_ratio']:.2f}x (paper {PAPER['inference_ratio']:.2f}x)",
            ]
        ],
    )
    scaling_table = markdown_table(
        ["d_m (M = 3)", "LMF params", "TFN params", "LMF train ex/s", "TFN train ex/s", "LMF / TFN train speed"],
        [
            [
                d,
                f"{lo['fusion_parameters']:,}",
                f"{hi['fusion_parameters']:,}",
                f"{lo['train_examples_per_second']:.0f}",
                f"{hi['train_examples_per_second']:.0f}",
                f"{lo['train_examples_per_second'] / hi['train_examples_per_second']:.1f}x",
            ]
            for d in widths
            for lo, hi in [[next(r for r in scaling if r["d_m"] == d and r["model"] == m) for m in ("lmf", "tfn")]]
        ],
    )
    exponent_line = (
        f"Fitted exponents in (d_m + 1): parameters LMF {exponents['lmf']['parameters']:.2f}, "
        f"TFN {exponents['tfn']['parameters']:.2f}; train step time (d_m >= 16) LMF "
        f"{exponents['lmf']['train_step_seconds']:.2f}, TFN {exponents['tfn']['train_step_seconds']:.2f}.\n"
    )
    rows = [{**r, "d_m": r.get("d_m", math.nan)} for r in [*mosi.values(), *scaling]]
    write_results(out, rows, summary, mosi_table + "\n" + scaling_table + "\n" + exponent_line)
    print(mosi_table + "\n" + scaling_table + "\n" + exponent_line)
    print(out)


if __name__ == "__main__":
    main()
