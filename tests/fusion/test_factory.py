import pytest

from probfusion.config import FusionConfig
from probfusion.fusion import ConcatFusion, LowRankFusion, TensorFusion, build_fusion
from probfusion.options import FusionKind


@pytest.mark.parametrize(
    ("kind", "cls"), [(FusionKind.LMF, LowRankFusion), (FusionKind.TFN, TensorFusion), ("concat", ConcatFusion)]
)
def test_build_fusion_by_kind(kind, cls):
    fusion = build_fusion(FusionConfig(model=kind, rank=3, fused_dim=5), [2, 4])
    assert type(fusion) is cls
    assert fusion.output_dim == 5
    if cls is LowRankFusion:
        assert fusion.rank == 3
