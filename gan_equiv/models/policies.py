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

Draws use the inverse CDF at given uniforms (:func:`draw_items`): in float64, or from a float32
softmax with a float64 redraw near bin edges that returns the same items (``precision="float32"``,
the fast path of the Monte-Carlo rollouts).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from gan_equiv.checks import check_item_tensor, choice, non_negative_float, positive_int
from maxent_il.space import SequenceSpace

#: Items per block of the float32 sampler: the CDF is built from float32 block sums and a float64
#: cumulative sum inside the chosen block only; the block length enters the rounding bound below.
DRAW_BLOCK = 32
#: Relative error of one float32 softmax entry, up to a factor common to its row, in units of
#: 2^-24: d·2^-24 from rounding x_i − max (d ≤ 104, beyond which p_i < 1e-45 sits in the slack), at
#: most 4 ulp of exp (library exp: 1–2 ulp on CPU and CUDA) and one rounding of the scaling.
SOFTMAX_ERROR_UNITS = 104.0 + 8.0 + 2.0
#: ρ: relative error of a float32 block-CDF term (softmax entry, then a float32 block sum).
DRAW_RHO = (SOFTMAX_ERROR_UNITS + DRAW_BLOCK - 1) * 2.0**-24
PRECISIONS: tuple[str, ...] = ("float64", "float32")
Precision = Literal["float64", "float32"]


def check_sizes(n_items: int, horizon: int) -> tuple[int, int]:
    """(V, T) of a model over V^T item sequences (the paper's S = s_1 … s_T), checked: V ≥ 2, T ≥ 1.

    Bools, floats such as 2.5 and values below the bound are refused with a ValueError naming the
    argument and the fix (the constructors of every generator and energy call this).
    """
    n_items = positive_int(n_items, "n_items", hint="V, the number of items")
    horizon = positive_int(horizon, "horizon", hint="T, the sequence length; use T >= 1")
    if n_items < 2:
        raise ValueError(
            f"n_items must be at least 2 (V, the number of items), got {n_items}; with one item every "
            "sequence is the same and there is nothing to learn: use V >= 2"
        )
    return n_items, horizon


def _first_above(cdf: Tensor, u: Tensor) -> Tensor:
    """First index j with cdf[j] > u·cdf[−1] (never a zero-mass item): (N, M) for cdf (N, V), u (N, M)."""
    total = cdf[:, -1:]
    target = torch.minimum(u * total, torch.nextafter(total, torch.zeros_like(total)))
    return torch.searchsorted(cdf, target, right=True)


def _draw_float64(logits: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
    """Inverse CDF in float64: items and log p(item), both (N, M), for uniforms u (N, M)."""
    probs = torch.softmax(logits.double(), dim=-1)  # (N, V)
    items = _first_above(probs.cumsum(dim=-1), u)
    return items, probs.gather(1, items).log()


def _draw_float32(logits: Tensor, u: Tensor, *, static_recheck: bool) -> tuple[Tensor, Tensor]:
    """Float32 inverse CDF returning the float64 path's items: (items, log p) as (N, M).

    p̂ = softmax(x) in float32 (x the logits as float32); the CDF is the float64 cumulative sum of
    float32 block sums of DRAW_BLOCK items, then a float64 cumulative sum inside the chosen block.
    Every term has relative error at most ρ = DRAW_RHO up to a common factor, so each normalized
    edge F̂_j differs from the exact F_j by at most 2ρ·F_j(1 − F_j)/(1 − ρ). A draw whose target lies
    farther than that (plus float64 slack) from both edges of its item is the float64 path's draw;
    the others (about 0.7·ρ·V of the draws) are redrawn by the float64 path. ``static_recheck``
    (CUDA) redraws a fixed number of rows chosen on the device, with no host synchronisation; a row
    beyond that capacity keeps its float32 draw, whose law is within ρ of the exact one in total
    variation.
    """
    N, V = logits.shape
    p = torch.softmax(logits.float(), dim=-1)  # (N, V) float32
    full = V // DRAW_BLOCK
    sums = [p[:, : full * DRAW_BLOCK].view(N, full, DRAW_BLOCK).sum(dim=-1)] if full else []
    if V > full * DRAW_BLOCK:
        sums.append(p[:, full * DRAW_BLOCK :].sum(dim=-1, keepdim=True))
    bcdf = torch.cat(sums, dim=1).double().cumsum(dim=-1)  # (N, nb) float64
    total = bcdf[:, -1:]
    target = torch.minimum(u * total, torch.nextafter(total, torch.zeros_like(total)))  # (N, M)
    block = torch.searchsorted(bcdf, target, right=True).clamp_(max=bcdf.shape[1] - 1)  # (N, M)
    base = torch.where(block > 0, bcdf.gather(1, (block - 1).clamp(min=0)), 0.0)  # (N, M)
    idx = block[..., None] * DRAW_BLOCK + torch.arange(DRAW_BLOCK, device=p.device)  # (N, M, DB)
    vals = p.gather(1, idx.clamp(max=V - 1).flatten(1)).view(idx.shape).double() * (idx < V)
    ccdf = base[..., None] + vals.cumsum(dim=-1)  # (N, M, DB): float64 edges inside the block
    j = torch.searchsorted(ccdf, target[..., None], right=True).squeeze(-1)  # (N, M)
    j = torch.minimum(j, (V - 1 - block * DRAW_BLOCK).clamp(max=DRAW_BLOCK - 1))
    upper = ccdf.gather(2, j[..., None]).squeeze(-1)
    lower = torch.where(j > 0, ccdf.gather(2, (j - 1).clamp(min=0)[..., None]).squeeze(-1), base)
    items = block * DRAW_BLOCK + j
    slack = (4 * V + 8) * 2.0**-53

    def reach(edge: Tensor) -> Tensor:  # how far the float64 path's edge may lie from this one
        f = edge / total
        return (2.02 * DRAW_RHO * f * (1 - f) + slack) * total

    near = (target - lower <= reach(lower)) | (upper - target <= reach(upper)) | (target >= upper)
    log_p = (upper - lower).log() - total.log()  # log p̂(item), within ~ρ of the exact value
    rows = near.any(dim=1)  # (N,)
    if static_recheck:
        cap = min(N, N // 16 + 8)
        pick = torch.argsort(rows.to(torch.int8), descending=True, stable=True)[:cap]
        again, again_lp = _draw_float64(logits[pick], u[pick])
        use = rows[pick][:, None]
        items[pick] = torch.where(use, again, items[pick])
        log_p[pick] = torch.where(use, again_lp, log_p[pick])
    else:
        pick = rows.nonzero().squeeze(1)
        if pick.numel():
            items[pick], log_p[pick] = _draw_float64(logits[pick], u[pick])
    return items, log_p


def draw_items(logits: Tensor, u: Tensor, *, precision: Precision = "float64") -> tuple[Tensor, Tensor]:
    """M inverse-CDF draws per row of softmax(logits) at uniforms ``u`` (N, M) in [0, 1):
    items int64 (N, M) and log p(item) float64 (N, M) — the sampling step of p_G(s_t | h_t).

    ``precision="float64"``: item = the first index whose float64 cumulative probability exceeds
    u·total (zero-probability items are never drawn). ``"float32"``: the same items from a float32
    softmax, redrawn in float64 only where a draw lies within rounding distance of a bin edge (see
    :func:`_draw_float32`; on CUDA with a fixed recheck capacity, no host synchronisation); log p is
    then within about ρ = DRAW_RHO ≈ 8e-6 of the float64 value. No input checks (hot path).
    """
    if precision == "float64" or logits.dtype == torch.float64:
        return _draw_float64(logits, u)
    return _draw_float32(logits, u, static_recheck=logits.device.type != "cpu")


def inverse_cdf_draw(logits: Tensor, u: Tensor, *, precision: Precision = "float64") -> tuple[Tensor, Tensor]:
    """Draw from softmax(logits) (p_G(· | h_t)) at uniforms ``u`` (N, 1): (items (N,), log p(item) (N,)).

    One draw per row of :func:`draw_items`; float64 inverse CDF by default.
    """
    items, log_p = draw_items(logits, u, precision=precision)
    return items.squeeze(1), log_p.squeeze(1)


def check_logits(logits: Tensor) -> Tensor:
    """Refuse logits (N, V) that define no distribution softmax(logits) (the p_G(· | h_t) of eq. 4):
    NaN, +inf, or a row that is all −inf. The error names the first bad row."""
    if logits.ndim != 2 or logits.shape[1] == 0:
        raise ValueError(f"logits must have shape (N, V) with V >= 1, got {tuple(logits.shape)}")
    nan = torch.isnan(logits).any(dim=1)  # (N,)
    posinf = torch.isposinf(logits).any(dim=1)  # (N,)
    empty = torch.isneginf(logits).all(dim=1)  # (N,)
    bad = nan | posinf | empty
    if bad.any():  # one host sync for all three checks
        row = int(bad.nonzero()[0, 0])
        if bool(nan[row]) or bool(posinf[row]):
            what = "NaN" if bool(nan[row]) else "+inf"
            raise ValueError(
                f"logits row {row} of {logits.shape[0]} contains {what}: softmax(logits) is not a "
                "distribution; check the model for non-finite parameters or inputs"
            )
        raise ValueError(
            f"logits row {row} of {logits.shape[0]} is all -inf: no item has positive probability; "
            "leave at least one finite logit in every row"
        )
    return logits


def sample_categorical(
    logits: Tensor, generator: torch.Generator | None = None, *, precision: Precision = "float64"
) -> Tensor:
    """One draw per row from softmax(logits) (p_G(· | h_t)): int64 (N,), by :func:`inverse_cdf_draw`
    on uniforms from ``generator`` (one float64 uniform per row). NaN, +inf and all −inf rows are
    refused with a ValueError."""
    check_logits(logits)
    u = torch.rand(logits.shape[0], 1, generator=generator, dtype=torch.float64, device=logits.device)
    return inverse_cdf_draw(logits, u, precision=precision)[0]


class SequencePolicy(nn.Module):
    """Base class of autoregressive generators over V items and horizon T.

    Subclasses implement :meth:`initial_state`, :meth:`logits` and :meth:`advance`.
    """

    n_items: int
    horizon: int

    def __init__(self, n_items: int, horizon: int) -> None:
        super().__init__()
        self.n_items, self.horizon = check_sizes(n_items, horizon)

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
    def sample(
        self, n: int, *, generator: torch.Generator | None = None, precision: Precision = "float64"
    ) -> Tensor:
        """n independent sequences from p_G(S) = Π_t p_G(s_t | h_t): int64 (n, T)."""
        n = positive_int(n, "n", hint="the number of sequences to sample")
        empty = torch.zeros(n, self.horizon, dtype=torch.long, device=self.device)
        zeros = torch.zeros(n, dtype=torch.long, device=self.device)
        return self.complete(empty, zeros, generator=generator, precision=precision)

    @torch.no_grad()
    def complete(
        self,
        sequences: Tensor,
        prefix_lengths: Tensor,
        *,
        generator: torch.Generator | None = None,
        precision: Precision = "float64",
    ) -> Tensor:
        """Keep ``sequences[i, :L_i]`` and sample the rest from p_G(· | prefix): int64 (N, T).

        One pass of T steps over the whole batch, whatever the prefix lengths: row i is teacher-
        forced for t < L_i and sampled after. This is the rollout engine of eq. (14)'s Q.
        ``precision`` selects the draw of :func:`draw_items` (both give the same items).
        """
        precision = choice(precision, "precision", PRECISIONS)
        seqs = self.check_sequences(sequences)
        lengths = torch.as_tensor(prefix_lengths, device=seqs.device).long()
        if lengths.shape != (seqs.shape[0],) or (lengths < 0).any() or (lengths > self.horizon).any():
            raise ValueError(f"prefix_lengths must be (N,) integers in 0..T={self.horizon}")
        out = seqs.clone()
        state = self.initial_state(seqs.shape[0])
        for t in range(self.horizon):  # T steps, vectorized over all rows
            drawn = sample_categorical(self.logits(state), generator, precision=precision)
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
        init_scale = non_negative_float(init_scale, "init_scale", hint="std of the initial logits")
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
        embed_dim = positive_int(embed_dim, "embed_dim", hint="item embedding width")
        hidden_dim = positive_int(hidden_dim, "hidden_dim", hint="recurrent state width")
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

