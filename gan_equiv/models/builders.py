"""Build the generator p_G and the energy D that a ``[generator]`` / ``[energy]`` table describes.

The builders take the table (:mod:`gan_equiv.models.specs`) and the sizes V (``n_items``) and
T (``horizon``) of the run, so a model can be built without a training configuration.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gan_equiv.models.energies import (
    AutoencoderEnergy,
    CNNEnergy,
    LinearEnergy,
    SequenceEnergy,
    TabularEnergy,
)
from gan_equiv.models.policies import GRUPolicy, SequencePolicy, TabularPolicy
from gan_equiv.models.sasrec import SASRecPolicy
from gan_equiv.models.specs import EnergyConfig, GeneratorConfig
from maxent_il.features import StateActionFeatures
from maxent_il.space import SequenceSpace


class ConstantEnergy(SequenceEnergy):
    """D(S) ≡ 0 in eq. (14) — the constant-reward ablation: the generator then only maximizes its entropy."""

    def __init__(self, n_items: int, horizon: int) -> None:
        super().__init__(n_items, horizon)
        self.register_buffer("zero", torch.zeros(()))

    @property
    def device(self) -> torch.device:
        return self.zero.device

    def forward(self, sequences: Tensor) -> Tensor:
        seqs = self.check_sequences(sequences)
        return torch.zeros(seqs.shape[0], dtype=self.zero.dtype, device=self.zero.device)


def build_generator(spec: GeneratorConfig, *, n_items: int, horizon: int) -> SequencePolicy:
    """p_G(s_t | h_t) of eq. (4) from ``spec``: a GRU/LSTM policy, SASRec (causal Transformer),
    or a tabular one for tiny spaces."""
    if spec.kind == "tabular":
        return TabularPolicy(n_items, horizon, dtype=torch.float32)
    if spec.kind == "sasrec":
        return SASRecPolicy(n_items, horizon, **sasrec_options(spec))
    return GRUPolicy(n_items, horizon, embed_dim=spec.embed_dim, hidden_dim=spec.hidden_dim, cell=spec.cell)


def sasrec_options(spec: GeneratorConfig) -> dict[str, int | float]:
    """The SASRecPolicy constructor options a ``[generator]`` table of kind ``sasrec`` gives."""
    return {
        "embed_dim": spec.embed_dim,
        "n_layers": spec.n_layers,
        "n_heads": spec.n_heads,
        "inner_dim": spec.inner_dim,
        "dropout": spec.dropout,
    }


def build_energy(spec: EnergyConfig, *, n_items: int, horizon: int) -> SequenceEnergy:
    """The energy D(S) of eq. (3) from ``spec``: CNN (SeqGAN preset), autoencoder, linear θ·f or tabular."""
    if spec.kind == "cnn":
        return CNNEnergy(
            n_items,
            horizon,
            embed_dim=spec.embed_dim,
            filter_sizes=spec.filter_sizes,
            num_filters=spec.num_filters,
            dropout=spec.dropout,
        )
    if spec.kind == "autoencoder":
        return AutoencoderEnergy(n_items, horizon, embed_dim=spec.embed_dim, code_dim=spec.code_dim)
    if spec.kind == "linear":
        space = SequenceSpace(n_items, horizon)
        return LinearEnergy(StateActionFeatures(space, spec.feature_state), dtype=torch.float32)
    return TabularEnergy(n_items, horizon, dtype=torch.float32)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
