"""Build the generator and the energy that a :class:`TrainConfig` describes."""

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
from gan_equiv.train.config import TrainConfig
from maxent_il.features import StateActionFeatures
from maxent_il.space import SequenceSpace


class ConstantEnergy(SequenceEnergy):
    """D(S) ≡ 0 — the constant-reward ablation: the generator then only maximizes its entropy."""

    def __init__(self, n_items: int, horizon: int) -> None:
        super().__init__(n_items, horizon)
        self.register_buffer("zero", torch.zeros(()))

    @property
    def device(self) -> torch.device:
        return self.zero.device

    def forward(self, sequences: Tensor) -> Tensor:
        seqs = self.check_sequences(sequences)
        return torch.zeros(seqs.shape[0], dtype=self.zero.dtype, device=self.zero.device)


def build_generator(config: TrainConfig) -> SequencePolicy:
    """p_G from ``config.generator``: a GRU/LSTM policy, or a tabular one for tiny spaces."""
    g = config.generator
    if g.kind == "tabular":
        return TabularPolicy(config.n_items, config.horizon, dtype=torch.float32)
    return GRUPolicy(
        config.n_items, config.horizon, embed_dim=g.embed_dim, hidden_dim=g.hidden_dim, cell=g.cell
    )


def build_energy(config: TrainConfig) -> SequenceEnergy:
    """D from ``config.energy``: CNN (SeqGAN preset), autoencoder, linear θ·f or tabular."""
    e = config.energy
    if e.kind == "cnn":
        return CNNEnergy(
            config.n_items,
            config.horizon,
            embed_dim=e.embed_dim,
            filter_sizes=e.filter_sizes,
            num_filters=e.num_filters,
            dropout=e.dropout,
        )
    if e.kind == "autoencoder":
        return AutoencoderEnergy(config.n_items, config.horizon, embed_dim=e.embed_dim, code_dim=e.code_dim)
    if e.kind == "linear":
        space = SequenceSpace(config.n_items, config.horizon)
        return LinearEnergy(StateActionFeatures(space, e.feature_state), dtype=torch.float32)
    return TabularEnergy(config.n_items, config.horizon, dtype=torch.float32)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
