"""Small differentiable predictors for attack and shift tests: a deterministic one and a Gaussian-weight one."""

from __future__ import annotations

import pytest
import torch
from torch import nn


class TanhNet(nn.Module):
    """Deterministic two-modality classifier: ``tanh`` features of each modality, multiplied, then linear."""

    modalities = ("a", "b")

    def __init__(self, dims=(4, 3), hidden=8, classes=3):
        super().__init__()
        self.fa = nn.Linear(dims[0], hidden, dtype=torch.float64)
        self.fb = nn.Linear(dims[1], hidden, dtype=torch.float64)
        self.out = nn.Linear(hidden, classes, dtype=torch.float64)

    def forward(self, views):
        return self.out(
            torch.tanh(self.fa(views["a"])) * torch.tanh(self.fb(views["b"])) + torch.tanh(self.fa(views["a"]))
        )

    def predictive_logits(self, views, num_samples=1):
        return self(views).unsqueeze(0)


class GaussianWeightNet(nn.Module):
    """Stochastic linear classifier on both modalities: ``W ~ N(mean, scale^2)`` drawn afresh per call."""

    modalities = ("a", "b")

    def __init__(self, dims=(4, 3), classes=3, scale=1.0, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.mean = nn.Parameter(torch.randn(sum(dims), classes, generator=g, dtype=torch.float64))
        self.scale = scale

    def predictive_logits(self, views, num_samples=1, *, generator=None):
        x = torch.cat([views["a"], views["b"]], dim=-1)
        noise = torch.randn(num_samples, *self.mean.shape, generator=generator, dtype=x.dtype)
        return torch.einsum("nd,sdc->snc", x, self.mean + self.scale * noise)


def make_data(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, 4, generator=g, dtype=torch.float64)
    b = torch.randn(n, 3, generator=g, dtype=torch.float64)
    y = ((a[:, 0] + b[:, 0] > 0).long() + (a[:, 1] * b[:, 1] > 0.5).long()).clamp(max=2)
    return {"a": a, "b": b}, y


def train(model, views, labels, steps=300):
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model.predictive_logits(views)[0], labels)
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    views, labels = make_data()
    return train(TanhNet(), views, labels), views, labels
