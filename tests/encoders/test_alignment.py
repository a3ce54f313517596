import torch
from torch import nn

from probfusion.encoders import cross_reconstruction, paired_distance


def test_paired_distance_known_answer():
    z = torch.randn(10, 3, dtype=torch.float64)
    shift = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    # Pairs (z, z+s), (z, z+2s), (z+s, z+2s): squared distances |s|^2, 4|s|^2, |s|^2.
    got = paired_distance([z, z + shift, z + 2 * shift])
    expected = 2.0 * shift.pow(2).sum()
    torch.testing.assert_close(got, expected)


def test_paired_distance_of_one_modality_is_zero():
    assert paired_distance([torch.randn(4, 2)]).item() == 0.0


def test_cross_reconstruction_known_answer():
    # With identity decoders and targets equal to the latents, the term is the mean over ordered pairs of MSEs.
    latents = {m: torch.randn(6, 2, dtype=torch.float64) for m in ("a", "b", "c")}
    decoders = {m: nn.Identity() for m in latents}
    got = cross_reconstruction(latents, latents, decoders)
    pairs = [(s, t) for s in latents for t in latents if s != t]
    expected = torch.stack([(latents[s] - latents[t]).pow(2).mean() for s, t in pairs]).mean()
    torch.testing.assert_close(got, expected)


def test_cross_reconstruction_gradients_reach_every_decoder():
    decoders = nn.ModuleDict({m: nn.Linear(2, 3) for m in ("a", "b")})
    latents = {m: torch.randn(5, 2) for m in ("a", "b")}
    views = {m: torch.randn(5, 3) for m in ("a", "b")}
    cross_reconstruction(latents, views, decoders).backward()
    assert all(p.grad is not None and p.grad.norm() > 0 for p in decoders.parameters())
