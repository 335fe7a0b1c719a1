"""The models of EB-SeqGAN and its family: generators p_G (policies), energies D, discriminators,
SeqGAN's oracle, and the builders that make them from a config table. Imports no other wing.
"""

from gan_equiv.models.builders import ConstantEnergy, build_energy, build_generator, count_parameters
from gan_equiv.models.discriminators import (
    ClassifierRewardEnergy,
    GANGCLDiscriminator,
    GCLRewardEnergy,
    SeqGANClassifier,
)
from gan_equiv.models.energies import (
    AutoencoderEnergy,
    CNNEnergy,
    LinearEnergy,
    SequenceEnergy,
    TabularEnergy,
)
from gan_equiv.models.initialization import normal_init_
from gan_equiv.models.oracle import LSTMOracle, load_seqgan_oracle, make_oracle, oracle_dataset
from gan_equiv.models.policies import GRUPolicy, SequencePolicy, TabularPolicy, sample_categorical
from gan_equiv.models.sasrec import SASRecPolicy
from gan_equiv.models.specs import EnergyConfig, GeneratorConfig

__all__ = [
    "AutoencoderEnergy",
    "CNNEnergy",
    "ClassifierRewardEnergy",
    "ConstantEnergy",
    "EnergyConfig",
    "GANGCLDiscriminator",
    "GCLRewardEnergy",
    "GRUPolicy",
    "GeneratorConfig",
    "LSTMOracle",
    "LinearEnergy",
    "SASRecPolicy",
    "SeqGANClassifier",
    "SequenceEnergy",
    "SequencePolicy",
    "TabularEnergy",
    "TabularPolicy",
    "build_energy",
    "build_generator",
    "count_parameters",
    "load_seqgan_oracle",
    "make_oracle",
    "normal_init_",
    "oracle_dataset",
    "sample_categorical",
]
