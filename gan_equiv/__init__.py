"""EB-SeqGAN in PyTorch and the bridge that checks it against exact MaxEnt IRL (``maxent_il``)."""

from gan_equiv.energies import (
    AutoencoderEnergy,
    CNNEnergy,
    LinearEnergy,
    SequenceEnergy,
    TabularEnergy,
)
from gan_equiv.policies import GRUPolicy, SequencePolicy, TabularPolicy, sample_categorical

__all__ = [
    "AutoencoderEnergy",
    "CNNEnergy",
    "GRUPolicy",
    "LinearEnergy",
    "SequenceEnergy",
    "SequencePolicy",
    "TabularEnergy",
    "TabularPolicy",
    "sample_categorical",
]
