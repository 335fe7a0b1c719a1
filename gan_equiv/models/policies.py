"""Autoregressive generators p_G(S) = Π_t p_G(s_t | s_1 … s_{t−1}) (the paper's G / q).

All generators share one small interface built on an explicit *state* tensor (shape (N, *S)):

- ``initial_state(n)`` — the state before the first item;
- ``logits(state)`` — unnormalized log p_G(· | h_t), shape (N, V);
- ``advance(state, items)`` — the state after appending ``items`` (N,).

From these the base class derives per-step log-probs (teacher forcing), sampling, completion of
given prefixes (the building block of Monte-Carlo rollouts) and the states after every prefix.
Because states are plain tensors whose first axis is the batch, rollouts can slice, stack and
repeat them freely. Two generators: :class:`TabularPolicy` (one logit row per prefix; exactly
enumerable, any p_G over V^T sequences) and :class:`GRUPolicy` (embedding + GRU/LSTM + softmax).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from gan_equiv.checks import check_item_tensor
from maxent_il.space import SequenceSpace


def inverse_cdf_draw(logits: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
    """Draw from softmax(logits) at given uniforms ``u`` (N, 1) in [0, 1): (items (N,), log p(item) (N,)).

    Inverse CDF in float64: item = the first index whose cumulative probability exceeds u·total.
    Zero-probability items are never drawn (u·total can round up to the total with probability
    ~2^-53; the draw then falls back to the last item of positive mass).
    """
    probs = torch.softmax(logits.double(), dim=-1)  # (N, V)
    cdf = probs.cumsum(dim=-1)
    drawn = torch.searchsorted(cdf, u * cdf[:, -1:], right=True).squeeze(1)
    last_positive = (probs > 0).cumsum(dim=-1).argmax(dim=-1)
    items = torch.minimum(drawn, last_positive)
    return items, probs.gather(1, items[:, None]).squeeze(1).log()


def sample_categorical(logits: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """One draw per row from softmax(logits): int64 (N,), by :func:`inverse_cdf_draw` on uniforms
    from ``generator`` (one float64 uniform per row)."""
    u = torch.rand(logits.shape[0], 1, generator=generator, dtype=torch.float64, device=logits.device)
    return inverse_cdf_draw(logits, u)[0]


class SequencePolicy(nn.Module):
    """Base class of autoregressive generators over V items and horizon T.

    Subclasses implement :meth:`initial_state`, :meth:`logits` and :meth:`advance`.
    """

    n_items: int
    horizon: int

    def __init__(self, n_items: int, horizon: int) -> None:
        super().__init__()
        SequenceSpace(n_items, horizon)  # validates V, T
        self.n_items = int(n_items)
        self.horizon = int(horizon)

    # --- interface -------------------------------------------------------------------------
    def initial_state(self, n: int) -> Tensor:
        """State for the empty history, shape (n, *S)."""
        raise NotImplementedError

    def logits(self, state: Tensor) -> Tensor:
        """Unnormalized log p_G(· | h_t) for each state: (N, V)."""
        raise NotImplementedError

    def advance(self, state: Tensor, items: Tensor) -> Tensor:
        """State after appending ``items`` (N,) to each history."""
        raise NotImplementedError

    # --- derived ---------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def check_sequences(self, sequences: Tensor | np.ndarray, *, length: int | None = None) -> Tensor:
        """Validate item ids (range, shape) and return an int64 tensor on the policy's device."""
        want = self.horizon if length is None else length
        return check_item_tensor(sequences, n_items=self.n_items, length=want, device=self.device)

    def prefix_states(self, sequences: Tensor) -> Tensor:
        """States after each prefix s_1 … s_t, t = 0 … T: shape (N, T+1, *S)."""
        seqs = self.check_sequences(sequences)
        state = self.initial_state(seqs.shape[0])
        states = [state]
        for t in range(self.horizon):  # loop over T steps, vectorized over N
            state = self.advance(state, seqs[:, t])
            states.append(state)
        return torch.stack(states, dim=1)

    def step_log_probs(self, sequences: Tensor) -> Tensor:
        """log p_G(s_t | s_1 … s_{t−1}) for every step (teacher forcing): shape (N, T)."""
        seqs = self.check_sequences(sequences)
        states = self.prefix_states(seqs)[:, :-1]  # (N, T, *S)
        flat = states.reshape(seqs.shape[0] * self.horizon, *states.shape[2:])
        logp = torch.log_softmax(self.logits(flat), dim=-1)  # (N·T, V)
        return logp.gather(1, seqs.reshape(-1, 1)).reshape(seqs.shape)

    def log_prob(self, sequences: Tensor) -> Tensor:
        """log p_G(S) = Σ_t log p_G(s_t | h_t): shape (N,)."""
        return self.step_log_probs(sequences).sum(dim=1)

    def next_item_log_probs(self, prefixes: Tensor) -> Tensor:
        """log p_G(· | h) for histories of one length t−1 < T: shape (N, V)."""
        pre = torch.as_tensor(prefixes, device=self.device)
        if pre.ndim != 2 or pre.shape[1] >= self.horizon:
            raise ValueError(
                f"prefixes must have shape (N, t) with t < T={self.horizon}, got {tuple(pre.shape)}"
            )
        pre = self.check_sequences(pre, length=pre.shape[1]) if pre.numel() else pre.long()
        state = self.initial_state(pre.shape[0])
        for t in range(pre.shape[1]):
            state = self.advance(state, pre[:, t])
        return torch.log_softmax(self.logits(state), dim=-1)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """n independent sequences from p_G: int64 (n, T)."""
        if n < 1:
            raise ValueError(f"n must be a positive number of sequences, got {n}")
        empty = torch.zeros(n, self.horizon, dtype=torch.long, device=self.device)
        return self.complete(empty, torch.zeros(n, dtype=torch.long, device=self.device), generator=generator)

    @torch.no_grad()
    def complete(
        self, sequences: Tensor, prefix_lengths: Tensor, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """Keep ``sequences[i, :L_i]`` and sample the rest from p_G(· | prefix): int64 (N, T).

        One pass of T steps over the whole batch, whatever the prefix lengths: row i is teacher-
        forced for t < L_i and sampled after. This is the rollout engine of eq. (14)'s Q.
        """
        seqs = self.check_sequences(sequences)
        lengths = torch.as_tensor(prefix_lengths, device=seqs.device).long()
        if lengths.shape != (seqs.shape[0],) or (lengths < 0).any() or (lengths > self.horizon).any():
            raise ValueError(f"prefix_lengths must be (N,) integers in 0..T={self.horizon}")
        out = seqs.clone()
        state = self.initial_state(seqs.shape[0])
        for t in range(self.horizon):  # T steps, vectorized over all rows
            drawn = sample_categorical(self.logits(state), generator)
            out[:, t] = torch.where(t < lengths, seqs[:, t], drawn)
            state = self.advance(state, out[:, t])
        return out

    def all_log_probs(self) -> Tensor:
        """log p_G(S) of every sequence in base-V index order (s_1 most significant): (V^T,)."""
        space = SequenceSpace(self.n_items, self.horizon)
        return self.log_prob(torch.as_tensor(space.all_sequences(), device=self.device))


class TabularPolicy(SequencePolicy):
    """One free logit row per history: p_G(· | h) = softmax(table[h]) — any distribution on V^T.

    Histories (prefix-tree nodes) of length d are numbered offset_d + index(prefix) with
    offset_d = V^0 + … + V^{d−1}; the table has Σ_{d<T} V^d rows. The state is (depth, prefix).
    """

    def __init__(
        self,
        n_items: int,
        horizon: int,
        *,
        dtype: torch.dtype = torch.float64,
        init_scale: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(n_items, horizon)
        SequenceSpace(n_items, max(horizon - 1, 1)).check_enumerable()  # the table has ~V^(T-1) rows
        offsets = [0]
        for d in range(horizon):
            offsets.append(offsets[-1] + n_items**d)
        self.register_buffer("offsets", torch.tensor(offsets, dtype=torch.long), persistent=False)
        n_rows = offsets[horizon]
        table = torch.randn(n_rows, n_items, generator=generator, dtype=dtype) * init_scale
        self.table = nn.Parameter(table)

    def initial_state(self, n: int) -> Tensor:
        return torch.zeros(n, 2, dtype=torch.long, device=self.table.device)

    def logits(self, state: Tensor) -> Tensor:
        return self.table[self.offsets[state[:, 0]] + state[:, 1]]

    def advance(self, state: Tensor, items: Tensor) -> Tensor:
        return torch.stack([state[:, 0] + 1, state[:, 1] * self.n_items + items], dim=1)

    @torch.no_grad()
    def set_conditionals(self, log_probs_fn) -> TabularPolicy:
        """Fill every row with ``log_probs_fn(prefixes (N, d)) → (N, V)`` for each depth d < T."""
        for d in range(self.horizon):
            prefixes = SequenceSpace(self.n_items, d).all_sequences() if d else np.zeros((1, 0), np.int64)
            rows = torch.as_tensor(np.asarray(log_probs_fn(prefixes)), dtype=self.table.dtype)
            self.table[int(self.offsets[d]) : int(self.offsets[d + 1])] = rows.to(self.table.device)
        return self


class GRUPolicy(SequencePolicy):
    """Embedding + GRU (or LSTM) + linear softmax head; a start token V begins every sequence.

    The state is the recurrent state after the start token and the items so far: (N, H) for GRU,
    (N, 2H) = [h, c] for LSTM.
    """

    def __init__(
        self,
        n_items: int,
        horizon: int,
        *,
        embed_dim: int = 32,
        hidden_dim: int = 32,
        cell: Literal["gru", "lstm"] = "gru",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__(n_items, horizon)
        if cell not in ("gru", "lstm"):
            raise ValueError(f"unknown cell {cell!r}; choose 'gru' or 'lstm'")
        self.cell_type = cell
        self.hidden_dim = int(hidden_dim)
        self.embedding = nn.Embedding(n_items + 1, embed_dim, dtype=dtype)  # row V = start token
        cls = nn.GRUCell if cell == "gru" else nn.LSTMCell
        self.cell = cls(embed_dim, hidden_dim, dtype=dtype)
        self.head = nn.Linear(hidden_dim, n_items, dtype=dtype)

    def _step(self, state: Tensor, items: Tensor) -> Tensor:
        x = self.embedding(items)
        if self.cell_type == "gru":
            return self.cell(x, state)
        h, c = state.split(self.hidden_dim, dim=-1)
        h, c = self.cell(x, (h, c))
        return torch.cat([h, c], dim=-1)

    def initial_state(self, n: int) -> Tensor:
        width = self.hidden_dim * (1 if self.cell_type == "gru" else 2)
        zeros = torch.zeros(n, width, dtype=self.head.weight.dtype, device=self.head.weight.device)
        start = torch.full((n,), self.n_items, dtype=torch.long, device=zeros.device)
        return self._step(zeros, start)

    def logits(self, state: Tensor) -> Tensor:
        return self.head(state[..., : self.hidden_dim])

    def advance(self, state: Tensor, items: Tensor) -> Tensor:
        return self._step(state, items)
