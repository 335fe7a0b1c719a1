"""Hypothesis strategies for tiny exact problems (V ≤ 4, T ≤ 4).

Every strategy draws problems small enough to enumerate (V^T ≤ 256) so that each test can compare
against the exact sum over the whole space.
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st

from maxent_il.features import STATE_KINDS, CustomFeatures, StateActionFeatures
from maxent_il.space import SequenceSpace


@st.composite
def spaces(draw: st.DrawFn, *, max_items: int = 4, max_horizon: int = 4) -> SequenceSpace:
    """A sequence space with 2 ≤ V ≤ max_items and 1 ≤ T ≤ max_horizon."""
    return SequenceSpace(draw(st.integers(2, max_items)), draw(st.integers(1, max_horizon)))


@st.composite
def feature_maps(
    draw: st.DrawFn, *, states: tuple[str, ...] = STATE_KINDS, max_items: int = 4, max_horizon: int = 4
) -> StateActionFeatures:
    """State-action features of a random tiny space, with state drawn from ``states``."""
    space = draw(spaces(max_items=max_items, max_horizon=max_horizon))
    return StateActionFeatures(space, draw(st.sampled_from(states)))


def thetas(dim: int, *, scale: float = 3.0) -> st.SearchStrategy[np.ndarray]:
    """A cost vector θ of length ``dim`` with entries in [−scale, scale]."""
    return st.lists(
        st.floats(-scale, scale, allow_nan=False, allow_infinity=False), min_size=dim, max_size=dim
    ).map(lambda xs: np.asarray(xs, dtype=np.float64))


def seeds() -> st.SearchStrategy[int]:
    """A seed for a numpy generator (for large random arrays that hypothesis should not shrink)."""
    return st.integers(0, 2**32 - 1)


@st.composite
def problems(
    draw: st.DrawFn, *, states: tuple[str, ...] = STATE_KINDS, scale: float = 3.0
) -> tuple[StateActionFeatures, np.ndarray]:
    """A feature map and a θ for it (θ ~ N(0, scale²/4) from a drawn seed, clipped to ±scale)."""
    features = draw(feature_maps(states=states))
    rng = np.random.default_rng(draw(seeds()))
    theta = np.clip(rng.normal(scale=scale / 2, size=features.dim), -scale, scale)
    return features, theta


@st.composite
def distributions(draw: st.DrawFn, size: int, *, full_support: bool = False) -> np.ndarray:
    """A probability vector over ``size`` outcomes (Dirichlet(0.5) from a seed; optionally sparse)."""
    rng = np.random.default_rng(draw(seeds()))
    p = rng.dirichlet(np.full(size, 0.5))
    if not full_support and draw(st.booleans()):
        p[rng.random(size) < 0.3] = 0.0
        if p.sum() == 0:
            p[0] = 1.0
        p /= p.sum()
    if full_support:
        p = np.maximum(p, 1e-6)
        p /= p.sum()
    return p


@st.composite
def demos(draw: st.DrawFn, space: SequenceSpace, *, max_n: int = 30) -> np.ndarray:
    """Between 1 and ``max_n`` uniformly random demonstration sequences, shape (N, T)."""
    rng = np.random.default_rng(draw(seeds()))
    n = draw(st.integers(1, max_n))
    return rng.integers(0, space.n_items, size=(n, space.horizon))


@st.composite
def small_problems(
    draw: st.DrawFn, *, states: tuple[str, ...] = STATE_KINDS, max_sequences: int = 64, scale: float = 3.0
) -> tuple[StateActionFeatures, np.ndarray]:
    """Like :func:`problems`, restricted to V^T ≤ ``max_sequences`` (for solver-heavy tests)."""
    n_items = draw(st.integers(2, 4))
    max_t = 1
    while n_items ** (max_t + 1) <= max_sequences and max_t < 4:
        max_t += 1
    space = SequenceSpace(n_items, draw(st.integers(1, max_t)))
    features = StateActionFeatures(space, draw(st.sampled_from(states)))
    rng = np.random.default_rng(draw(seeds()))
    theta = np.clip(rng.normal(scale=scale / 2, size=features.dim), -scale, scale)
    return features, theta


@st.composite
def custom_feature_maps(draw: st.DrawFn, *, max_items: int = 3, max_horizon: int = 3) -> CustomFeatures:
    """A non-decomposable :class:`CustomFeatures` map: a random table of small integer features.

    Each sequence S gets the row ``table[index(S)]`` with entries in {0, 1, 2} and 1 ≤ d ≤ 5, so
    no structure of the state-action maps (one feature per step) can be relied on.
    """
    space = draw(spaces(max_items=max_items, max_horizon=max_horizon))
    rng = np.random.default_rng(draw(seeds()))
    dim = draw(st.integers(1, 5))
    table = rng.integers(0, 3, size=(space.size, dim)).astype(np.float64)
    return CustomFeatures(space, lambda seqs: table[space.encode(seqs)], dim)


def unigram_features(space: SequenceSpace) -> CustomFeatures:
    """Custom map with f_v(S) = number of times item v occurs in S (d = V): a unigram cost."""
    n_items = space.n_items

    def counts(seqs: np.ndarray) -> np.ndarray:
        return (seqs[:, :, None] == np.arange(n_items)).sum(axis=1).astype(np.float64)

    return CustomFeatures(space, counts, n_items, tuple(f"count[{v}]" for v in range(n_items)))


def random_policy(kind: str, n_items: int, horizon: int, seed: int, *, scale: float = 1.0):
    """A seeded random float64 generator: ``tabular`` (logits ~ N(0, scale²)) or a small ``gru`` /
    ``lstm`` policy (weights ~ N(0, 0.5²), output head ~ N(0, scale²))."""
    from gan_equiv.models.policies import GRUPolicy, TabularPolicy

    gen = torch.Generator().manual_seed(seed)
    if kind == "tabular":
        return TabularPolicy(n_items, horizon, init_scale=scale, generator=gen)
    policy = GRUPolicy(n_items, horizon, embed_dim=3, hidden_dim=4, cell=kind, dtype=torch.float64)
    with torch.no_grad():
        for name, param in policy.named_parameters():
            std = scale if name.startswith("head") else 0.5
            param.copy_(torch.randn(param.shape, generator=gen, dtype=param.dtype) * std)
    return policy
