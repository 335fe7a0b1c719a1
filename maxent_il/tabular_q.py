"""A tabular autoregressive q for the q-step of eq. (20): softmax logits per prefix-tree node.

q(S) = Π_t π(s_t | h_t) can represent every distribution over the V^T sequences with full support.
Its objective F(q) = E_q[c + log q] (eq. 20) has an exact gradient by a soft-Q backward recursion
on the prefix tree (:meth:`TabularQ.objective_and_gradient`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import logsumexp

from maxent_il.space import SequenceSpace


def _block_offsets(space: SequenceSpace) -> np.ndarray:
    """Start of the depth-t logit block (histories of length t), t = 0 … T (last = total size)."""
    V = space.n_items
    return np.cumsum([0] + [V ** (t + 1) for t in range(space.horizon)])


@dataclass(frozen=True, eq=False)
class TabularQ:
    """A tabular autoregressive q(S) = Π_t π(s_t | h_t) with softmax logits per prefix-tree node.

    ``logits`` is flat: the block of depth t (t = 0 … T−1) holds the histories h of length t as
    rows of V logits, in base-V order, so that the entry of (h, a) sits at offset_t + index(h a) —
    the layout of the ``history`` features (d = V + V² + … + V^T). π(·|h) = softmax(logits[h]).

    Attributes:
        space: the sequence space.
        logits: float64 array of shape (V + V² + … + V^T,), finite.
    """

    space: SequenceSpace
    logits: np.ndarray

    def __post_init__(self) -> None:
        size = self.n_logits(self.space)
        arr = np.array(self.logits, dtype=np.float64)  # own copy
        if arr.shape != (size,):
            raise ValueError(
                f"logits must have shape ({size},) = V + … + V^T for V={self.space.n_items}, "
                f"T={self.space.horizon}, got {arr.shape}"
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError("logits must be finite (q must give every sequence positive mass)")
        arr.flags.writeable = False
        object.__setattr__(self, "logits", arr)

    @staticmethod
    def n_logits(space: SequenceSpace) -> int:
        """V + V² + … + V^T: one logit per (history, next item) pair."""
        return int(_block_offsets(space)[-1])

    @classmethod
    def uniform(cls, space: SequenceSpace) -> TabularQ:
        """All logits zero: q is uniform over the V^T sequences."""
        return cls(space, np.zeros(cls.n_logits(space)))

    @classmethod
    def from_log_probs(cls, space: SequenceSpace, log_probs: Any) -> TabularQ:
        """The tabular q equal to exp(log_probs) (finite, over all V^T sequences, normalized or not).

        The logits of (h, a) are the log marginals of the prefix h a, so π(a|h) = q(ha)/q(h).
        """
        lp = np.asarray(log_probs, dtype=np.float64)
        if lp.shape != (space.size,) or not np.all(np.isfinite(lp)):
            raise ValueError(f"log_probs must be finite with shape ({space.size},), got shape {lp.shape}")
        V = space.n_items
        blocks = [lp]
        for t in range(space.horizon - 1, 0, -1):  # log marginal of prefixes of length t
            blocks.append(logsumexp(blocks[-1].reshape(V**t, V), axis=1))
        return cls(space, np.concatenate(blocks[::-1]))

    def blocks(self) -> list[np.ndarray]:
        """Logits per depth t = 0 … T−1: arrays of shape (V^t, V), rows = histories of length t."""
        V, off = self.space.n_items, _block_offsets(self.space)
        return [self.logits[off[t] : off[t + 1]].reshape(V**t, V) for t in range(self.space.horizon)]

    def log_conditionals(self) -> list[np.ndarray]:
        """log π(a | h) per depth: arrays of shape (V^t, V)."""
        return [b - logsumexp(b, axis=1, keepdims=True) for b in self.blocks()]

    def log_probs(self) -> np.ndarray:
        """log q(S) = Σ_t log π(s_t | h_t) over the whole space in index order, shape (V^T,)."""
        out = np.zeros(1)
        for lp in self.log_conditionals():  # loop over T depths, vectorized over the tree level
            out = (out[:, None] + lp).ravel()
        return out

    def probabilities(self) -> np.ndarray:
        """q over the whole space in index order, shape (V^T,)."""
        return np.exp(self.log_probs())

    def objective_and_gradient(self, costs: np.ndarray) -> tuple[float, np.ndarray]:
        """F(q) = E_q[c(S) + log q(S)] of eq. (20) and its exact gradient w.r.t. the logits.

        ``costs`` are c(S) for every sequence in index order. With π = softmax per node,
        q(h) the probability of reaching history h, and the soft-Q backward recursion

            V(S) = c(S) at the leaves,   Q(h, a) = log π(a|h) + V(ha),   V(h) = Σ_b π(b|h) Q(h, b),

        V(root) = F(q) and ∂F/∂l(h, a) = q(h) π(a|h) (Q(h, a) − V(h)). Derivation:
        ∂F = Σ_S q ∂log q · (c + log q) + Σ_S q ∂log q, the last sum is ∂Σq = 0, and
        ∂log q(S)/∂l(h, a) = ``[S passes h]·(1[s_{|h|+1} = a] − π(a|h))``; the part of c + log q fixed
        by h (log q(h)) cancels in the advantage Q − V.
        """
        V, T = self.space.n_items, self.space.horizon
        log_pi = self.log_conditionals()
        pi = [np.exp(lp) for lp in log_pi]
        reach = [np.ones(1)]  # q(h) for histories of length t = 0 … T−1
        for t in range(T - 1):
            reach.append((reach[t][:, None] * pi[t]).ravel())
        value = np.asarray(costs, dtype=np.float64)
        grads: list[np.ndarray] = [np.empty(0)] * T
        for t in range(T - 1, -1, -1):  # backward over depths, vectorized over each level
            q_sa = log_pi[t] + value.reshape(V**t, V)
            value = (pi[t] * q_sa).sum(axis=1)
            grads[t] = (reach[t][:, None] * pi[t] * (q_sa - value[:, None])).ravel()
        return float(value[0]), np.concatenate(grads)
