"""Energies D(S) of EBGAN (eqs. 3–4) — the discriminator; **low energy = realistic**.

Every energy maps a batch of sequences (N, T) of item ids to (N,) real numbers.

- :class:`TabularEnergy` — one free value per sequence (exactly enumerable spaces).
- :class:`LinearEnergy` — D(S) = θ·f(S) over a ``maxent_il`` feature map: the IL cost c(S) of
  eq. (8), so EBGAN and MaxEnt IRL can be compared parameter for parameter.
- :class:`CNNEnergy` — SeqGAN's discriminator body (multi-width convolutions over item embeddings,
  max-over-time pooling, highway layer, dropout) with a non-negative softplus head (or, with
  ``nonnegative=False``, a signed linear head: the body of SeqGAN's classifier, see
  :mod:`gan_equiv.models.discriminators`).
- :class:`AutoencoderEnergy` — EBGAN's reconstruction-error energy: a sequence is encoded to a
  code and decoded back; D(S) is the mean cross-entropy of the reconstruction, ≥ 0.

The EBGAN D-loss (3) is bounded below only for energies bounded below (errata): the two neural
energies are non-negative by construction; tabular and linear energies are not, and are meant for
the exact comparisons where the margin and the data term are analysed explicitly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_equiv.checks import check_item_tensor, finite_float, positive_int
from gan_equiv.models.policies import check_sizes
from maxent_il.features import FeatureMap
from maxent_il.space import SequenceSpace


def _dropout(value: float) -> float:
    """A dropout probability in [0, 1), checked (NaN, strings and 1 are refused)."""
    p = finite_float(value, "dropout", hint="the dropout probability")
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout={p} must lie in [0, 1); use e.g. 0.25 (SeqGAN) or 0 (exact tests)")
    return p


class SequenceEnergy(nn.Module):
    """Base class: ``forward(sequences (N, T) int64) → energies (N,)``; low = realistic."""

    n_items: int
    horizon: int

    def __init__(self, n_items: int, horizon: int) -> None:
        super().__init__()
        self.n_items, self.horizon = check_sizes(n_items, horizon)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def check_sequences(self, sequences: Tensor | np.ndarray) -> Tensor:
        """Validate shape and item range; return int64 on the energy's device."""
        return check_item_tensor(sequences, n_items=self.n_items, length=self.horizon, device=self.device)


class TabularEnergy(SequenceEnergy):
    """D(S) = table[index(S)], one free parameter per sequence (index: s_1 most significant)."""

    def __init__(
        self,
        n_items: int,
        horizon: int,
        *,
        values: Tensor | np.ndarray | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__(n_items, horizon)
        space = SequenceSpace(n_items, horizon)
        space.check_enumerable()
        size = space.size
        init = torch.zeros(size, dtype=dtype) if values is None else torch.as_tensor(values, dtype=dtype)
        if init.shape != (size,):
            raise ValueError(f"values must have shape (V^T,) = ({size},), got {tuple(init.shape)}")
        self.values = nn.Parameter(init.clone())
        self.register_buffer(
            "place", torch.tensor([n_items ** (horizon - 1 - t) for t in range(horizon)]), persistent=False
        )

    def forward(self, sequences: Tensor) -> Tensor:
        seqs = self.check_sequences(sequences)
        return self.values[(seqs * self.place).sum(dim=1)]


class LinearEnergy(SequenceEnergy):
    """D(S) = θ·f(S) for a ``maxent_il`` feature map f — the linear cost c(S) of eq. (8)."""

    def __init__(
        self,
        features: FeatureMap,
        *,
        theta: Tensor | np.ndarray | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__(features.space.n_items, features.space.horizon)
        self.features = features
        init = np.zeros(features.dim) if theta is None else features.check_theta(np.asarray(theta))
        self.theta = nn.Parameter(torch.as_tensor(init, dtype=dtype))

    def feature_counts(self, sequences: Tensor) -> Tensor:
        """f(S) for a batch: (N, d) in the energy's dtype."""
        seqs = self.check_sequences(sequences)
        counts = self.features.counts(seqs.cpu().numpy())
        return torch.as_tensor(counts, dtype=self.theta.dtype, device=self.theta.device)

    def forward(self, sequences: Tensor) -> Tensor:
        seqs = self.check_sequences(sequences)
        if self.features.is_decomposable:
            idx = self.features.step_indices(seqs.cpu().numpy())  # (N, T)
            return self.theta[torch.as_tensor(idx, device=self.theta.device)].sum(dim=1)
        return self.feature_counts(seqs) @ self.theta


class CNNEnergy(SequenceEnergy):
    """SeqGAN-style CNN over item embeddings with a softplus head: D(S) ≥ 0.

    Convolutions of several widths (each with its own number of filters) run over the (T, E)
    embedding matrix, are max-pooled over time and concatenated; a highway layer and dropout follow,
    then a linear map to one number and softplus. With ``nonnegative=False`` the softplus is
    switched off and D(S) is the signed linear output — what a classifier logit ℓ = −D needs (a
    softplus would cap the logit at 0, i.e. D(S) ≤ ½); EBGAN's loss (3) needs the default (errata 3).
    """

    def __init__(
        self,
        n_items: int,
        horizon: int,
        *,
        embed_dim: int = 64,
        filter_sizes: Sequence[int] = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20),
        num_filters: Sequence[int] = (100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160),
        dropout: float = 0.25,
        nonnegative: bool = True,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__(n_items, horizon)
        if not isinstance(nonnegative, bool):
            raise ValueError(f"nonnegative must be True or False, got {nonnegative!r}")
        self.nonnegative = nonnegative
        embed_dim = positive_int(embed_dim, "embed_dim", hint="item embedding width, e.g. 64")
        if len(filter_sizes) != len(num_filters):
            raise ValueError(
                f"filter_sizes and num_filters must have the same length, got {len(filter_sizes)} and "
                f"{len(num_filters)}; give one filter count per width"
            )
        filter_sizes = [
            positive_int(w, f"filter_sizes[{i}]", hint="a filter width") for i, w in enumerate(filter_sizes)
        ]
        num_filters = [
            positive_int(n, f"num_filters[{i}]", hint="filters of that width")
            for i, n in enumerate(num_filters)
        ]
        dropout = _dropout(dropout)
        widths = [(w, n) for w, n in zip(filter_sizes, num_filters, strict=True) if w <= horizon]
        if not widths:
            raise ValueError(
                f"every filter is wider than the horizon T={horizon} (filter_sizes={tuple(filter_sizes)}); "
                "include a width <= T"
            )
        self.embedding = nn.Embedding(n_items, embed_dim, dtype=dtype)
        self.convs = nn.ModuleList(nn.Conv1d(embed_dim, n, w, dtype=dtype) for w, n in widths)
        total = sum(n for _, n in widths)
        self.highway = nn.Linear(total, 2 * total, dtype=dtype)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(total, 1, dtype=dtype)

    def forward(self, sequences: Tensor) -> Tensor:
        seqs = self.check_sequences(sequences)
        x = self.embedding(seqs).transpose(1, 2)  # (N, E, T)
        pooled = torch.cat([F.relu(conv(x)).amax(dim=2) for conv in self.convs], dim=1)  # (N, total)
        transform, gate = self.highway(pooled).chunk(2, dim=1)
        g = torch.sigmoid(gate)
        h = g * F.relu(transform) + (1 - g) * pooled
        out = self.head(self.dropout(h)).squeeze(1)  # (N,)
        return F.softplus(out) if self.nonnegative else out


class AutoencoderEnergy(SequenceEnergy):
    """EBGAN's autoencoder energy: D(S) = mean_t CE(decoder(encoder(S))_t, s_t) ≥ 0 (nats/item)."""

    def __init__(
        self,
        n_items: int,
        horizon: int,
        *,
        embed_dim: int = 32,
        code_dim: int = 32,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__(n_items, horizon)
        embed_dim = positive_int(embed_dim, "embed_dim", hint="item embedding width, e.g. 32")
        code_dim = positive_int(code_dim, "code_dim", hint="width of the code, e.g. 32")
        self.embedding = nn.Embedding(n_items, embed_dim, dtype=dtype)
        self.encoder = nn.Sequential(nn.Linear(horizon * embed_dim, code_dim, dtype=dtype), nn.Tanh())
        self.decoder = nn.Linear(code_dim, horizon * n_items, dtype=dtype)

    def forward(self, sequences: Tensor) -> Tensor:
        seqs = self.check_sequences(sequences)
        code = self.encoder(self.embedding(seqs).flatten(1))  # (N, C)
        logits = self.decoder(code).view(-1, self.horizon, self.n_items)  # (N, T, V)
        ce = F.cross_entropy(logits.transpose(1, 2), seqs, reduction="none")  # (N, T)
        return ce.mean(dim=1)
