"""Joint Wasserstein autoencoder: per-modality encoders and decoders, prior penalties, alignment terms."""

from probfusion.encoders.alignment import cross_reconstruction, paired_distance
from probfusion.encoders.divergences import (
    IMQ_SCALES,
    mmd_imq,
    mmd_imq_to_prior,
    prior_divergence,
    sliced_wasserstein,
    sliced_wasserstein_to_prior,
)
from probfusion.encoders.jwae import JointWAE, JWAELoss
from probfusion.encoders.modality import ModalityDecoder, ModalityEncoder

__all__ = [
    "IMQ_SCALES",
    "JWAELoss",
    "JointWAE",
    "ModalityDecoder",
    "ModalityEncoder",
    "cross_reconstruction",
    "mmd_imq",
    "mmd_imq_to_prior",
    "paired_distance",
    "prior_divergence",
    "sliced_wasserstein",
    "sliced_wasserstein_to_prior",
]
