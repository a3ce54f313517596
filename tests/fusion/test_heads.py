import pytest
import torch

from probfusion.errors import ConfigError
from probfusion.fusion import ClassifierHead


def test_head_shapes_and_errors():
    head = ClassifierHead(fused_dim=4, num_classes=3, dropout=0.2)
    assert head(torch.randn(5, 4)).shape == (5, 3)
    with pytest.raises(ConfigError, match="2 classes"):
        ClassifierHead(fused_dim=4, num_classes=1)
