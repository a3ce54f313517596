import pytest
import torch

from probfusion.errors import ConfigError
from probfusion.robustness.conflict import conflict_shares, conflictive_views

F64 = torch.float64


def _data(n=200, seed=0, modalities=("a", "b", "c")):
    g = torch.Generator().manual_seed(seed)
    dims = {"a": 4, "b": 3, "c": 2}
    views = {m: torch.randn(n, dims[m], generator=g, dtype=F64) for m in modalities}
    labels = torch.arange(n) % 4
    scale = {m: torch.full((dims[m],), 2.0, dtype=F64) for m in modalities}
    return views, labels, scale


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_exactly_the_recorded_rows_and_modalities_change(severity):
    views, labels, scale = _data()
    shifted, record = conflictive_views(
        views, labels, severity=severity, noise_scale=scale, generator=torch.Generator().manual_seed(1)
    )
    n = len(labels)
    noise, swap = conflict_shares(severity, 0.1, 0.4)
    assert record.kinds.count("noise") == round(noise * n)
    assert record.kinds.count("swap") == round(swap * n)
    assert len(set(record.rows.tolist())) == len(record.rows)  # disjoint, no row twice
    changed = {(r, m) for r, mods in zip(record.rows.tolist(), record.modalities, strict=True) for m in mods}
    for m, x in views.items():
        differs = (shifted[m] != x).any(dim=1)
        assert set(torch.nonzero(differs).flatten().tolist()) == {r for r, mm in changed if mm == m}
    for r, kind, mods, donor in zip(
        record.rows.tolist(), record.kinds, record.modalities, record.donors.tolist(), strict=True
    ):
        assert mods  # at least one modality per conflictive row
        if kind == "swap":
            assert len(mods) == 1
            assert labels[donor] != labels[r]
            torch.testing.assert_close(shifted[mods[0]][r], views[mods[0]][donor])
        else:
            assert donor == -1
    assert {"row", "kind", "modalities", "donor_row", "severity"} == set(record.table(severity=severity)[0])


def test_noise_scales_with_sigma_times_the_feature_range():
    views, labels, scale = _data(n=4000, modalities=("a", "b"))
    shifted, record = conflictive_views(
        views,
        labels,
        severity=3,
        noise_scale=scale,
        sigma=0.5,
        noise_share=0.25,
        swap_share=0.0,
        generator=torch.Generator().manual_seed(2),
    )
    rows = [r for r, mods in zip(record.rows.tolist(), record.modalities, strict=True) if "a" in mods]
    step = (shifted["a"][rows] - views["a"][rows]).flatten()
    assert step.std().item() == pytest.approx(0.5 * 2.0, rel=0.05)


def test_same_generator_same_rows_and_one_modality_is_an_error():
    views, labels, scale = _data()
    a = conflictive_views(views, labels, severity=2, noise_scale=scale, generator=torch.Generator().manual_seed(3))
    b = conflictive_views(views, labels, severity=2, noise_scale=scale, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a[1].rows, b[1].rows)
    single, labels1, scale1 = _data(modalities=("a",))
    with pytest.raises(ConfigError, match="at least two modalities"):
        conflictive_views(single, labels1, severity=1, noise_scale=scale1)
    with pytest.raises(ConfigError, match="at most 100"):
        conflict_shares(5, 0.3, 0.5)
