"""Shared fixtures: every test starts from a fixed seed and a clean Pyro parameter store."""

from __future__ import annotations

import pyro
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_and_clean_state():
    torch.manual_seed(0)
    pyro.clear_param_store()
    pyro.enable_validation(True)
    yield
    pyro.clear_param_store()
