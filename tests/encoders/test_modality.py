import pytest
import torch

from probfusion.encoders import ModalityDecoder, ModalityEncoder
from probfusion.errors import ConfigError


def test_encoder_and_decoder_shapes():
    encoder = ModalityEncoder(input_dim=5, latent_dim=3, hidden_dim=8, dropout=0.1)
    decoder = ModalityDecoder(latent_dim=3, output_dim=5, hidden_dim=8)
    x = torch.randn(7, 5)
    z = encoder(x)
    assert z.shape == (7, 3)
    assert decoder(z).shape == (7, 5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"input_dim": 0, "latent_dim": 3, "hidden_dim": 8},
        {"input_dim": 5, "latent_dim": 3, "hidden_dim": 0},
        {"input_dim": 5, "latent_dim": 3, "hidden_dim": 8, "dropout": 1.0},
    ],
)
def test_encoder_rejects_bad_sizes(kwargs):
    with pytest.raises(ConfigError):
        ModalityEncoder(**kwargs)
