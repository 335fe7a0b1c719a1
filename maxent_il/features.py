"""Feature maps f(S) ∈ R^d for the linear cost c(S) = θ·f(S) of eq. (8).

The paper (§2.4) uses *state-action occurrence* features: f_i(S) counts how often the i-th
(state, action) pair occurs along S, where the action at step t is the item s_t and the state is
built from the history h_t = s_1 … s_{t−1}. Three choices of state are provided:

``history``
    the whole prefix h_t (the paper's choice). Every (h_t, s_t) pair is the prefix s_1 … s_t, so
    the features are the nodes of the prefix tree: d = V + V² + … + V^T.
``last``
    the previous item s_{t−1}, or a start token at t = 1 (a Markov energy): d = (V + 1)·V.
``time_last``
    the position t and the previous item: d = V + (T − 1)·V².

All three are *decomposable*: exactly one feature fires per step, so c(S) = Σ_t θ[idx_t(S)] and
the dynamic-programming path of :mod:`maxent_il.dynamic` applies. Any other map can be supplied as
a :class:`CustomFeatures` (enumeration only).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np

from maxent_il.checks import MAX_ABS_COST, choice, finite_vector, positive_int
from maxent_il.space import SequenceSpace

StateKind = Literal["history", "last", "time_last"]
STATE_KINDS: tuple[str, ...] = get_args(StateKind)

#: Largest feature dimension the ``history`` map will build (its size grows like V^T).
MAX_HISTORY_DIM = 2**26


class FeatureMap(ABC):
    """A map from sequences of a :class:`SequenceSpace` to feature vectors in R^d."""

    space: SequenceSpace
    dim: int

    @abstractmethod
    def counts(self, sequences: Any) -> np.ndarray:
        """Feature vectors f(S) of a batch: float64 array (N, d)."""

    @abstractmethod
    def costs(self, theta: np.ndarray, sequences: Any) -> np.ndarray:
        """Linear costs c(S) = θ·f(S) (eq. 8's exponent): float64 array (N,)."""

    @abstractmethod
    def weighted_counts(self, sequences: Any, weights: np.ndarray) -> np.ndarray:
        """Σ_n w_n f(S_n) for sequences (N, T) and weights (N,): float64 array (d,)."""

    @abstractmethod
    def name(self, index: int) -> str:
        """Human-readable name of feature ``index``."""

    def names(self) -> list[str]:
        """Names of all d features."""
        return [self.name(i) for i in range(self.dim)]

    def check_theta(self, theta: Any) -> np.ndarray:
        """θ as a validated finite float64 vector of length d."""
        return finite_vector(theta, "theta", dim=self.dim, hint="one cost per feature")

    @property
    def is_decomposable(self) -> bool:
        """True when exactly one feature fires per step (the DP path applies)."""
        return False


@dataclass(frozen=True, eq=False)
class StateActionFeatures(FeatureMap):
    """State-action occurrence features (paper §2.4) with state ``history``, ``last`` or ``time_last``.

    Attributes:
        space: the sequence space (V items, horizon T).
        state: which part of the history h_t forms the state (see the module docstring).
    """

    space: SequenceSpace
    state: StateKind = "history"
    dim: int = field(init=False)

    def __post_init__(self) -> None:
        choice(self.state, "feature state", STATE_KINDS)
        V, T = self.space.n_items, self.space.horizon
        if self.state == "last":
            dim = (V + 1) * V
        elif self.state == "time_last":
            dim = V + (T - 1) * V * V
        else:
            dim = sum(V**t for t in range(1, T + 1))
            if dim > MAX_HISTORY_DIM:
                raise ValueError(
                    f"'history' features for V={V}, T={T} would have d={dim:.3e} dimensions "
                    f"(limit {MAX_HISTORY_DIM:.3e}); use state='last' or 'time_last'"
                )
        object.__setattr__(self, "dim", int(dim))

    @property
    def is_decomposable(self) -> bool:
        return True

    def check_theta(self, theta: Any) -> np.ndarray:
        """θ as a finite float64 vector of length d whose costs stay in float64's safe range.

        One feature fires per step, so |c(S)| ≤ T·max|θ|; when that bound exceeds
        ``MAX_ABS_COST`` the log-sum-exps of eq. (8) could overflow, and θ is refused with the
        entry and the feature that set the bound.
        """
        theta = super().check_theta(theta)
        if theta.size and self.space.horizon * float(np.abs(theta).max()) > MAX_ABS_COST:
            i = int(np.abs(theta).argmax())
            raise ValueError(
                f"theta[{i}] = {float(theta[i])!r} (feature {self.name(i)!r}) lets the cost "
                f"c(S) = Σ_t θ[idx_t] "
                f"reach T·|θ[{i}]| = {self.space.horizon * abs(float(theta[i])):.3e}, beyond the "
                f"float64-safe limit {MAX_ABS_COST:.0e} of the exact routes; rescale θ (costs of a few "
                "hundred already make P_θ deterministic in float64)"
            )
        return theta

    # --- index layout -------------------------------------------------------------------------
    def history_offsets(self) -> np.ndarray:
        """For ``history``: offset_t = V + … + V^(t−1) of the depth-t block, t = 1 … T (shape (T,))."""
        V, T = self.space.n_items, self.space.horizon
        return np.array([sum(V**k for k in range(1, t)) for t in range(1, T + 1)], dtype=np.int64)

    def first_step_index(self) -> np.ndarray:
        """Feature index of the pair (start, a) at t = 1, for each item a: shape (V,)."""
        V = self.space.n_items
        items = np.arange(V, dtype=np.int64)
        if self.state == "last":
            return V * V + items  # the start token is state V
        return items  # time_last: block t=1; history: depth-1 nodes

    def transition_index(self, t: int) -> np.ndarray:
        """For ``last``/``time_last``: index of (prev, a) at step t ≥ 2, shape (V, V) [prev, a]."""
        V, T = self.space.n_items, self.space.horizon
        if self.state == "history":
            raise ValueError("'history' features have no (prev, a) table; the state is the whole prefix")
        if not 2 <= t <= T:
            raise ValueError(f"step t={t} has no transition; t must lie in 2..T={T}")
        grid = np.arange(V * V, dtype=np.int64).reshape(V, V)  # prev * V + a
        if self.state == "last":
            return grid
        return V + (t - 2) * V * V + grid

    def step_indices(self, sequences: Any) -> np.ndarray:
        """Index of the feature that fires at each step: int64 array (N, T)."""
        seqs = self.space.validate(sequences)
        V, T = self.space.n_items, self.space.horizon
        out = np.empty_like(seqs)
        if self.state == "last":
            out[:, 0] = V * V + seqs[:, 0]
            out[:, 1:] = seqs[:, :-1] * V + seqs[:, 1:]
        elif self.state == "time_last":
            out[:, 0] = seqs[:, 0]
            steps = np.arange(T - 1, dtype=np.int64) * (V * V) + V  # block start of t = 2 … T
            out[:, 1:] = steps + seqs[:, :-1] * V + seqs[:, 1:]
        else:
            prefix = np.zeros(seqs.shape[0], dtype=np.int64)
            offsets = self.history_offsets()
            for col in range(T):  # loop over T columns, vectorized over N
                prefix = prefix * V + seqs[:, col]
                out[:, col] = offsets[col] + prefix
        return out

    # --- FeatureMap interface ------------------------------------------------------------------
    def counts(self, sequences: Any) -> np.ndarray:
        idx = self.step_indices(sequences)
        out = np.zeros((idx.shape[0], self.dim))
        np.add.at(out, (np.repeat(np.arange(idx.shape[0]), idx.shape[1]), idx.ravel()), 1.0)
        return out

    def costs(self, theta: np.ndarray, sequences: Any) -> np.ndarray:
        theta = self.check_theta(theta)
        return theta[self.step_indices(sequences)].sum(axis=1)

    def weighted_counts(self, sequences: Any, weights: np.ndarray) -> np.ndarray:
        idx = self.step_indices(sequences)
        w = np.broadcast_to(np.asarray(weights, dtype=np.float64)[:, None], idx.shape)
        return np.bincount(idx.ravel(), weights=w.ravel(), minlength=self.dim)

    def name(self, index: int) -> str:
        V = self.space.n_items
        if not 0 <= index < self.dim:
            raise ValueError(f"feature index {index} is outside 0..{self.dim - 1}")
        if self.state == "last":
            prev, a = divmod(index, V)
            return f"{'start' if prev == V else prev}->{a}"
        if self.state == "time_last":
            if index < V:
                return f"t=1:start->{index}"
            t, rest = divmod(index - V, V * V)
            prev, a = divmod(rest, V)
            return f"t={t + 2}:{prev}->{a}"
        offsets = self.history_offsets()
        depth = int(np.searchsorted(offsets, index, side="right"))  # t with offset_t <= index
        prefix = self.space.__class__(V, depth).decode([index - offsets[depth - 1]])[0]
        return f"({','.join(map(str, prefix[:-1]))})->{prefix[-1]}"


@dataclass(frozen=True, eq=False)
class CustomFeatures(FeatureMap):
    """A user-supplied feature map ``fn: (N, T) int64 → (N, d) float64`` (enumeration only).

    Attributes:
        space: the sequence space.
        fn: the map; it is called on validated batches and its output is checked for shape and
            finiteness.
        dim: d.
        feature_names: optional names, one per feature.
    """

    space: SequenceSpace
    fn: Callable[[np.ndarray], Any]
    dim: int
    feature_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise ValueError(f"fn must be callable, got {self.fn!r}")
        positive_int(self.dim, "dim", hint="the number of features d")
        if self.feature_names is not None and len(self.feature_names) != self.dim:
            raise ValueError(f"feature_names has {len(self.feature_names)} entries but dim={self.dim}")

    def counts(self, sequences: Any) -> np.ndarray:
        seqs = self.space.validate(sequences)
        out = np.asarray(self.fn(seqs), dtype=np.float64)
        if out.shape != (seqs.shape[0], self.dim):
            raise ValueError(
                f"custom feature map returned shape {out.shape}; expected (N, d) = "
                f"({seqs.shape[0]}, {self.dim})"
            )
        if not np.all(np.isfinite(out)):
            raise ValueError("custom feature map returned non-finite values")
        return out

    def costs(self, theta: np.ndarray, sequences: Any) -> np.ndarray:
        theta = self.check_theta(theta)
        seqs = self.space.validate(sequences)
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported by check_costs
            costs = self.counts(seqs) @ theta
        return check_costs(costs, self, theta, seqs)

    def weighted_counts(self, sequences: Any, weights: np.ndarray) -> np.ndarray:
        return np.asarray(weights, dtype=np.float64) @ self.counts(sequences)

    def name(self, index: int) -> str:
        if not 0 <= index < self.dim:
            raise ValueError(f"feature index {index} is outside 0..{self.dim - 1}")
        return self.feature_names[index] if self.feature_names else f"f{index}"


def check_costs(costs: Any, features: FeatureMap, theta: np.ndarray, sequences: np.ndarray) -> np.ndarray:
    """Costs c(S) = θ·f(S) (eq. 8) as float64 (N,), refused when one overflows float64's safe range.

    A cost that is not finite or exceeds ``MAX_ABS_COST`` in size would turn log Z into ±inf or
    NaN; the error names the sequence, its cost, the largest |θ_i| with its feature, and the fix.
    """
    c = np.asarray(costs, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(c) <= MAX_ABS_COST)  # also catches NaN and ±inf
    if bad.any():
        n = int(np.flatnonzero(bad)[0])
        i = int(np.abs(theta).argmax()) if theta.size else 0
        biggest = f"theta[{i}] = {float(theta[i])!r} (feature {features.name(i)!r})" if theta.size else "θ"
        raise ValueError(
            f"the cost c(S) = θ·f(S) of sequence {sequences[n].tolist()} is {float(c[n])!r}, beyond the "
            f"float64-safe limit {MAX_ABS_COST:.0e} of the exact routes (largest entry: {biggest}); "
            "rescale θ or the features so that |θ·f(S)| stays finite and moderate"
        )
    return c


def state_action_features(space: SequenceSpace, *, state: StateKind = "history") -> StateActionFeatures:
    """State-action occurrence features of paper §2.4 (f_i(S) = occurrences of pair i along S)."""
    return StateActionFeatures(space, state)
