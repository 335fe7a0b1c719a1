"""Q(s_1 … s_t) of eq. (14), exactly and by vectorized Monte-Carlo rollouts (claim E10).

The generator minimizes J = E_{p_G}[D(S) + w·log p_G(S)] (eq. 4 with ψ = −w·H; w = 1 is the paper,
eq. 9). Its gradient, eq. (14), is

    ∇J = Σ_t E_{s_1…s_t ~ p_G} ∇log p_G(s_t | h_t) · Q(s_1 … s_t),
    Q(s_1 … s_t) = E[D(S) + w·log p_G(S) | s_1 … s_t]             (the inner sum of eq. 14),

with h_t = s_1 … s_{t−1}. At t = T the expectation is over nothing: Q = D(S) + w·log p_G(S).

Three forms of the per-step weight, all with the same expected gradient:

- ``full``: Q_t above (the paper's; it plays the role of SeqGAN's Q in eq. 5);
- ``reward_to_go``: Q^rtg_t = Q_t − w·Σ_{k<t} log p_G(s_k | h_k). The dropped past terms depend on
  h_t only, and E[∇log p_G(s_t | h_t) · g(h_t)] = 0 for any g, so the mean is unchanged and the
  variance is usually lower;
- either of them minus a baseline b_t(h_t) (e.g. the exact value V(h_t) = E_{s_t}[Q_t]): the mean is
  unchanged for the same reason. With the exact value both modes give the same advantage
  Q_t − Q_{t−1}(h_t).

Exact routes enumerate all V^T sequences (float64; tiny spaces only). The Monte-Carlo route
(:func:`mc_q_values`) rolls out K completions of every prefix of every given sequence in one batched
pass of at most T−1 sampling steps — no Python loop over t or K — and :func:`naive_mc_q_values` is
the reference SeqGAN structure (loops over t and k, one :meth:`~SequencePolicy.complete` each), kept
for the benchmark and the equivalence tests. Under ``stream="naive"`` both consume the same
uniforms from a CPU ``torch.Generator``, so they draw identical completions.

Direction: the generator *descends* ∇J (low energy, high entropy); every gradient returned here is
∇J itself, not its negative.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from gan_equiv.losses import policy_gradient_surrogate
from gan_equiv.models.energies import SequenceEnergy
from gan_equiv.models.policies import SequencePolicy, inverse_cdf_draw
from maxent_il.space import EnumerationTooLargeError, SequenceSpace

Mode = Literal["full", "reward_to_go"]
MODES: tuple[str, ...] = ("full", "reward_to_go")
Stream = Literal["compact", "naive"]
STREAMS: tuple[str, ...] = ("compact", "naive")
#: Named baselines of :func:`mc_policy_gradient` (a callable is accepted too).
BASELINES: tuple[str, ...] = ("exact_value", "leave_one_out")

#: Largest V^T the exact routes enumerate by default (they hold all V^T sequences and their states).
EXACT_MAX_SEQUENCES = 2**20
#: On CPU, sampling works on chunks of about this many logits (rows × V): large enough to amortize
#: the per-call overhead, small enough for the float64 softmax and CDF of a chunk to stay in cache
#: (best of 13…4096 rows at V = 5000 on 2 cores: 128–256 rows); see docs/benchmarks.md.
CPU_CHUNK_ELEMENTS = 2**20


# --- validation ------------------------------------------------------------------------------------
def _check_pair(policy: SequencePolicy, energy: SequenceEnergy | None) -> None:
    if not isinstance(policy, SequencePolicy):
        raise ValueError(f"policy must be a SequencePolicy, got {type(policy).__name__}")
    if energy is None:
        return
    if not isinstance(energy, SequenceEnergy):
        raise ValueError(f"energy must be a SequenceEnergy, got {type(energy).__name__}")
    if (energy.n_items, energy.horizon) != (policy.n_items, policy.horizon):
        raise ValueError(
            f"energy is over V={energy.n_items}, T={energy.horizon} but the policy over "
            f"V={policy.n_items}, T={policy.horizon}; both must describe the same sequence space"
        )


def _check_positive_int(value: object, name: str, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer ({hint}), got {value!r}")
    return value


def _check_choice(value: object, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(map(repr, choices))}")
    return str(value)


def _check_weight(entropy_weight: float) -> float:
    w = float(entropy_weight)
    if not math.isfinite(w):
        raise ValueError(f"entropy_weight must be a finite number (1 = the paper), got {entropy_weight!r}")
    return w


def _check_given(policy: SequencePolicy, sequences: Tensor) -> Tensor:
    seqs = policy.check_sequences(sequences)  # (N, T) int64; shape / dtype / range errors
    if seqs.shape[0] == 0:
        raise ValueError("sequences is empty (shape (0, T)); give at least one sequence")
    return seqs


def _chunk_rows(policy: SequencePolicy, chunk_rows: int | None) -> int:
    """Rows per sampling chunk: the given value, all rows on accelerators, ~CPU_CHUNK_ELEMENTS on CPU."""
    if chunk_rows is not None:
        return _check_positive_int(chunk_rows, "chunk_rows", "rows per sampling chunk, or None for auto")
    if policy.device.type != "cpu":
        return 2**62
    return max(16, CPU_CHUNK_ELEMENTS // policy.n_items)


def _slices(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


# --- exact (float64, enumeration) ---------------------------------------------------------------------
@dataclass(frozen=True)
class _ExactTables:
    """Q at every prefix-tree node: ``q[t]`` is (V^t,) indexed by the prefix s_1 … s_t (q[0] = J)."""

    q: list[Tensor]
    step_log_probs: Tensor  # (V^T, T) log p_G(s_t | h_t) of every sequence, index order


@torch.no_grad()
def _exact_tables(
    policy: SequencePolicy, energy: SequenceEnergy, w: float, max_sequences: int
) -> _ExactTables:
    V, T = policy.n_items, policy.horizon
    space = SequenceSpace(V, T)
    if space.size > max_sequences:
        raise EnumerationTooLargeError(
            f"exact Q-values enumerate every continuation: V={V}, T={T} gives V^T={space.size:.3e} "
            f"sequences, above max_sequences={max_sequences:.3e}. Use mc_q_values for large spaces, "
            "or pass a larger max_sequences."
        )
    every = torch.as_tensor(space.all_sequences(max_sequences=max_sequences), device=policy.device)
    step = policy.step_log_probs(every).double()  # (V^T, T)
    q: list[Tensor] = [torch.empty(0)] * (T + 1)
    q[T] = energy(every).double() + w * step.sum(dim=1)  # (V^T,): D(S) + w·log p_G(S)
    for t in range(T - 1, -1, -1):  # backward over the T tree levels, vectorized over nodes
        # log p_G(s_{t+1} | s_1 … s_t) per node of depth t+1: first member of each index block.
        p = step[:: V ** (T - t - 1), t].exp()  # (V^{t+1},)
        q[t] = torch.where(p > 0, p * q[t + 1], 0.0).view(V**t, V).sum(dim=1)  # tower property
    return _ExactTables(q, step)


def _indices(seqs: Tensor, n_items: int) -> Tensor:
    """index(S) = Σ_t s_t V^(T−t): (N,) int64."""
    place = n_items ** torch.arange(seqs.shape[1] - 1, -1, -1, device=seqs.device)
    return (seqs * place).sum(dim=1)


def _past_log_probs(step: Tensor) -> Tensor:
    """Σ_{k<t} log p_G(s_k | h_k) for t = 1 … T (exclusive cumulative sum): (N, T)."""
    return torch.cumsum(step, dim=1) - step


def exact_q_values(
    policy: SequencePolicy,
    energy: SequenceEnergy,
    sequences: Tensor,
    *,
    entropy_weight: float = 1.0,
    max_sequences: int = EXACT_MAX_SEQUENCES,
) -> Tensor:
    """Exact Q(s_1 … s_t) of eq. (14) for every prefix of every given sequence: float64 (N, T).

    Q_t = Σ_{s_{t+1} … s_T} p_G(s_{t+1} … s_T | s_1 … s_t)[D(S) + w·log p_G(S)] (the inner sum of
    eq. 14, Q of eq. 5), computed for every prefix-tree node by the tower property
    Q_t(h) = Σ_a p_G(a | h) Q_{t+1}(h a) over the enumerated space; column T is D(S) + w·log p_G(S).
    Raises :class:`~maxent_il.space.EnumerationTooLargeError` when V^T > ``max_sequences``.
    """
    _check_pair(policy, energy)
    w = _check_weight(entropy_weight)
    seqs = _check_given(policy, sequences)
    tables = _exact_tables(policy, energy, w, max_sequences)
    V, T = policy.n_items, policy.horizon
    idx = _indices(seqs, V)  # (N,)
    return torch.stack([tables.q[t][idx // V ** (T - t)] for t in range(1, T + 1)], dim=1)


def exact_state_values(
    policy: SequencePolicy,
    energy: SequenceEnergy,
    sequences: Tensor,
    *,
    entropy_weight: float = 1.0,
    mode: Mode = "full",
    max_sequences: int = EXACT_MAX_SEQUENCES,
) -> Tensor:
    """Exact baseline V(h_t) = E_{s_t ~ p_G(·|h_t)}[Q_t] for t = 1 … T: float64 (N, T).

    For ``mode="full"`` this is Q_{t−1}(h_t) (tower property; V(h_1) = J of eq. 9); for
    ``"reward_to_go"`` it is Q_{t−1}(h_t) − w·Σ_{k<t} log p_G(s_k | h_k). It depends on h_t only, so
    subtracting it from the weights of eq. (14) keeps the expected gradient.
    """
    _check_pair(policy, energy)
    mode = _check_choice(mode, "mode", MODES)
    w = _check_weight(entropy_weight)
    seqs = _check_given(policy, sequences)
    tables = _exact_tables(policy, energy, w, max_sequences)
    V, T = policy.n_items, policy.horizon
    idx = _indices(seqs, V)
    values = torch.stack([tables.q[t - 1][idx // V ** (T - t + 1)] for t in range(1, T + 1)], dim=1)
    if mode == "reward_to_go":
        values = values - w * _past_log_probs(tables.step_log_probs[idx])
    return values


def exact_reward_to_go(
    policy: SequencePolicy,
    energy: SequenceEnergy,
    sequences: Tensor,
    *,
    entropy_weight: float = 1.0,
    subtract_value: bool = False,
    max_sequences: int = EXACT_MAX_SEQUENCES,
) -> Tensor:
    """Exact reward-to-go weights of eq. (14): float64 (N, T).

    Q^rtg_t = E[D(S) + w·Σ_{k≥t} log p_G(s_k | h_k) | s_1 … s_t] = Q_t − w·Σ_{k<t} log p_G(s_k | h_k).
    The dropped past terms depend on h_t only (zero-mean score-function contribution), so the
    expected gradient is that of eq. (14). With ``subtract_value`` the exact value
    V^rtg(h_t) = E_{s_t}[Q^rtg_t] is subtracted too, leaving the advantage Q_t − Q_{t−1}(h_t).
    """
    _check_pair(policy, energy)
    w = _check_weight(entropy_weight)
    seqs = _check_given(policy, sequences)
    tables = _exact_tables(policy, energy, w, max_sequences)
    V, T = policy.n_items, policy.horizon
    idx = _indices(seqs, V)
    q = torch.stack([tables.q[t][idx // V ** (T - t)] for t in range(0, T + 1)], dim=1)  # (N, T+1)
    if subtract_value:
        return q[:, 1:] - q[:, :-1]
    return q[:, 1:] - w * _past_log_probs(tables.step_log_probs[idx])


def _gradient_parameters(policy: SequencePolicy) -> list[Tensor]:
    return [p for p in policy.parameters() if p.requires_grad]


def _flat_gradient(objective: Tensor, params: list[Tensor]) -> Tensor:
    grads = torch.autograd.grad(objective, params, allow_unused=True)
    flat = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]
    return torch.cat([g.reshape(-1) for g in flat]).double()


def exact_policy_gradient(
    policy: SequencePolicy,
    energy: SequenceEnergy,
    *,
    entropy_weight: float = 1.0,
    max_sequences: int = EXACT_MAX_SEQUENCES,
) -> Tensor:
    """∇J of eq. (9), J = Σ_S p_G(S)[D(S) + w·log p_G(S)], by autograd over the enumerated space.

    Returns a flat float64 vector over ``[p for p in policy.parameters() if p.requires_grad]`` (in
    that order). D is held fixed (it belongs to the discriminator). Direction: the generator
    descends this gradient. Exact up to the policy's dtype (use float64 policies for exactness).
    """
    _check_pair(policy, energy)
    w = _check_weight(entropy_weight)
    space = SequenceSpace(policy.n_items, policy.horizon)
    if space.size > max_sequences:
        raise EnumerationTooLargeError(
            f"the exact gradient enumerates all V^T={space.size:.3e} sequences (V={space.n_items}, "
            f"T={space.horizon}), above max_sequences={max_sequences:.3e}; use mc_policy_gradient"
        )
    every = torch.as_tensor(space.all_sequences(max_sequences=max_sequences), device=policy.device)
    with torch.no_grad():
        d = energy(every).double()  # (V^T,)
    log_p = policy.log_prob(every).double()  # (V^T,), differentiable
    objective = (log_p.exp() * (d + w * log_p)).sum()  # J, eq. (9)
    return _flat_gradient(objective, _gradient_parameters(policy))


# --- Monte-Carlo rollouts ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _RowBatch:
    """Rollout rows sorted by prefix length L ascending (= remaining length descending).

    Row r = ((L−1)·N + n)·K + k holds rollout k of prefix s_1 … s_L of given sequence n.
    """

    completions: Tensor  # (R, T) int64, R = (T−1)·N·K
    log_probs: Tensor  # (R,) float64: log p_G(completion)
    given_log_probs: Tensor  # (N, T) float64: log p_G(s_t | h_t) of the given sequences


@torch.no_grad()
def _rollout_rows(
    policy: SequencePolicy,
    seqs: Tensor,
    n_rollouts: int,
    generator: torch.Generator | None,
    stream: str,
    chunk_rows: int,
) -> _RowBatch:
    N, T, K = seqs.shape[0], policy.horizon, n_rollouts
    dev = seqs.device
    states = policy.prefix_states(seqs)  # (N, T+1, *S): state after s_1 … s_t, t = 0 … T
    # Teacher-forced log-probs of the given sequences (no sampling there): (N, T).
    flat = states[:, :T].reshape(N * T, *states.shape[2:])
    given = torch.empty(N * T, dtype=torch.float64, device=dev)
    items = seqs.reshape(-1)
    for sl in _slices(N * T, chunk_rows):
        logp = torch.log_softmax(policy.logits(flat[sl]).double(), dim=-1)
        given[sl] = logp.gather(1, items[sl, None]).squeeze(1)
    given = given.view(N, T)
    R = (T - 1) * N * K
    if R == 0:  # T = 1: nothing to roll out
        empty = torch.empty(0, T, dtype=torch.long, device=dev)
        return _RowBatch(empty, torch.empty(0, dtype=torch.float64, device=dev), given)

    lengths = torch.arange(1, T, device=dev).repeat_interleave(N * K)  # (R,) L, ascending
    rows_n = torch.arange(N, device=dev).repeat_interleave(K).repeat(T - 1)  # (R,) n
    out = seqs[rows_n]  # (R, T): prefix teacher-forced, the rest overwritten below
    state = states[rows_n, lengths]  # (R, *S): state after the prefix (a copy)
    log_probs = torch.cumsum(given, dim=1)[rows_n, lengths - 1]  # (R,) log p_G(s_1 … s_L)
    if stream == "naive":
        # The uniforms naive_mc_q_values consumes, in its order: L, k, position p, row n.
        rows_k = torch.arange(K, device=dev).repeat(N * (T - 1))
        table = torch.rand((T - 1) * K * T * N, 1, generator=generator, dtype=torch.float64, device=dev)
        base = ((lengths - 1) * K + rows_k) * T * N + rows_n  # (R,) + p·N selects position p
    arange = torch.arange(R, device=dev)
    for j in range(T - 1):  # rollout step j draws position L + j for every row with L ≤ T−1−j
        active = N * K * (T - 1 - j)  # a leading slice, thanks to the sort
        after = N * K * (T - 2 - j)  # rows still generating at step j+1
        pos = lengths[:active] + j  # (active,)
        if stream == "naive":
            u = table[base[:active] + pos * N]  # (active, 1)
        else:
            u = torch.rand(active, 1, generator=generator, dtype=torch.float64, device=dev)
        for sl in _slices(active, chunk_rows):
            drawn, logp = inverse_cdf_draw(policy.logits(state[sl]), u[sl])
            out[arange[sl], pos[sl]] = drawn
            log_probs[sl] += logp
            keep = slice(sl.start, min(sl.stop, after))  # rows of this chunk that generate again
            if keep.stop > keep.start:
                state[keep] = policy.advance(state[keep], drawn[: keep.stop - keep.start])
    return _RowBatch(out, log_probs, given)


@dataclass(frozen=True)
class Rollouts:
    """K completions of every proper prefix of N given sequences (t = 1 … T−1)."""

    sequences: Tensor  # (N, T−1, K, T) int64: [n, t−1, k] keeps s_1 … s_t of row n, samples the rest
    log_probs: Tensor  # (N, T−1, K) float64: log p_G of each completion


def _check_mc_args(policy, energy, sequences, n_rollouts, entropy_weight, mode, stream):
    _check_pair(policy, energy)
    _check_positive_int(n_rollouts, "n_rollouts", "K rollouts per prefix, K ≥ 1")
    mode = _check_choice(mode, "mode", MODES)
    stream = _check_choice(stream, "stream", STREAMS)
    return _check_given(policy, sequences), _check_weight(entropy_weight), mode, stream


def mc_rollouts(
    policy: SequencePolicy,
    sequences: Tensor,
    *,
    n_rollouts: int,
    generator: torch.Generator | None = None,
    stream: Stream = "compact",
    chunk_rows: int | None = None,
) -> Rollouts:
    """The rollouts behind :func:`mc_q_values` (eq. 14's inner expectation), in (n, t, k) layout."""
    seqs, _, _, stream = _check_mc_args(policy, None, sequences, n_rollouts, 1.0, "full", stream)
    N, T, K = seqs.shape[0], policy.horizon, n_rollouts
    rows = _rollout_rows(policy, seqs, K, generator, stream, _chunk_rows(policy, chunk_rows))
    return Rollouts(
        rows.completions.view(T - 1, N, K, T).permute(1, 0, 2, 3),
        rows.log_probs.view(T - 1, N, K).permute(1, 0, 2),
    )


def mc_q_values(
    policy: SequencePolicy,
    energy: SequenceEnergy,
    sequences: Tensor,
    *,
    n_rollouts: int,
    entropy_weight: float = 1.0,
    mode: Mode = "full",
    generator: torch.Generator | None = None,
    stream: Stream = "compact",
    chunk_rows: int | None = None,
) -> Tensor:
    """Monte-Carlo Q(s_1 … s_t) of eq. (14) with K rollouts per prefix, vectorized: float64 (N, T).

    Q̂_t = (1/K) Σ_k [D(S^k) + w·log p_G(S^k)] with S^k ~ p_G(· | s_1 … s_t), unbiased for
    :func:`exact_q_values`; column T is exact. ``mode="reward_to_go"`` subtracts
    w·Σ_{k<t} log p_G(s_k | h_k) (same mean gradient, see :func:`exact_reward_to_go`).

    One batched pass: the states after every prefix come from one ``prefix_states`` call; the
    N·(T−1)·K rows are sorted by remaining length so that at rollout step j the rows still
    generating are a leading slice, and logits are computed for those rows only (teacher-forced
    positions need none). log p_G of each completion accumulates from the sampling softmax, and D
    runs once on all completions. On CPU the active slice is processed in chunks of ``chunk_rows``
    rows (default ≈ CPU_CHUNK_ELEMENTS / V) to keep the float64 CDFs in cache.

    ``stream="compact"`` draws one uniform per sampled item; ``"naive"`` draws the uniforms that
    :func:`naive_mc_q_values` would (including those it discards at teacher-forced steps), so that on
    a CPU generator both draw the same completions. Reproducible for a given ``generator`` state.
    D is evaluated as it is (call ``energy.eval()`` to switch dropout off).
    """
    seqs, w, mode, stream = _check_mc_args(
        policy, energy, sequences, n_rollouts, entropy_weight, mode, stream
    )
    N, T, K = seqs.shape[0], policy.horizon, n_rollouts
    rows = _rollout_rows(policy, seqs, K, generator, stream, _chunk_rows(policy, chunk_rows))
    with torch.no_grad():
        d = energy(torch.cat([rows.completions, seqs])).double()  # (R + N,)
    returns = d[: rows.log_probs.shape[0]] + w * rows.log_probs  # (R,) D + w·log p_G per rollout
    q = torch.empty(N, T, dtype=torch.float64, device=seqs.device)
    q[:, : T - 1] = returns.view(T - 1, N, K).mean(dim=2).T
    q[:, T - 1] = d[-N:] + w * rows.given_log_probs.sum(dim=1)  # exact at t = T
    if mode == "reward_to_go":
        q = q - w * _past_log_probs(rows.given_log_probs)
    return q


@torch.no_grad()
def naive_mc_q_values(
    policy: SequencePolicy,
    energy: SequenceEnergy,
    sequences: Tensor,
    *,
    n_rollouts: int,
    entropy_weight: float = 1.0,
    mode: Mode = "full",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Reference SeqGAN rollout structure for eq. (14)'s Q: float64 (N, T). Same estimator as
    :func:`mc_q_values`.

    Python loops over the prefix length t = 1 … T−1 and the rollout k = 1 … K; each iteration
    completes all N prefixes with :meth:`SequencePolicy.complete` (T steps, logits and draws at
    teacher-forced steps too) and scores them with D and a teacher-forced ``log_prob``: (T−1)·K
    sequential generations. For benchmarks and equivalence tests only.
    """
    seqs, w, mode, _ = _check_mc_args(policy, energy, sequences, n_rollouts, entropy_weight, mode, "naive")
    N, T, K = seqs.shape[0], policy.horizon, n_rollouts
    q = torch.empty(N, T, dtype=torch.float64, device=seqs.device)
    for t in range(1, T):
        lengths = torch.full((N,), t, dtype=torch.long, device=seqs.device)
        total = torch.zeros(N, dtype=torch.float64, device=seqs.device)
        for _ in range(K):
            done = policy.complete(seqs, lengths, generator=generator)  # (N, T)
            total += energy(done).double() + w * policy.log_prob(done).double()
        q[:, t - 1] = total / K
    step = policy.step_log_probs(seqs).double()  # (N, T)
    q[:, T - 1] = energy(seqs).double() + w * step.sum(dim=1)
    if mode == "reward_to_go":
        q = q - w * _past_log_probs(step)
    return q


# --- Monte-Carlo policy gradients ------------------------------------------------------------------
Baseline = Literal["exact_value", "leave_one_out"] | Callable[[Tensor], Tensor] | None


def _baseline_values(
    baseline: Baseline,
    policy: SequencePolicy,
    energy: SequenceEnergy,
    seqs: Tensor,
    q: Tensor,
    w: float,
    mode: str,
) -> Tensor | None:
    """b_t(h_t) for each sampled sequence: float64 (N, T), or None."""
    if baseline is None:
        return None
    if callable(baseline):
        b = torch.as_tensor(baseline(seqs), device=q.device).double()
        if b.shape != q.shape:
            raise ValueError(f"baseline(sequences) must return shape {tuple(q.shape)}, got {tuple(b.shape)}")
        return b
    name = _check_choice(baseline, "baseline", BASELINES)
    if name == "exact_value":
        return exact_state_values(policy, energy, seqs, entropy_weight=w, mode=mode)
    n = q.shape[0]  # leave-one-out: mean over the *other* samples, independent of sample n
    return (q.sum(dim=0, keepdim=True) - q) / (n - 1)


def mc_policy_gradient(
    policy: SequencePolicy,
    energy: SequenceEnergy,
    n_samples: int,
    *,
    n_rollouts: int,
    entropy_weight: float = 1.0,
    mode: Mode = "full",
    baseline: Baseline = None,
    generator: torch.Generator | None = None,
    chunk_rows: int | None = None,
) -> Tensor:
    """Monte-Carlo estimate of ∇J by eq. (14): flat float64 vector (as :func:`exact_policy_gradient`).

    Draws ``n_samples`` sequences from p_G, estimates their Q (or reward-to-go) with ``n_rollouts``
    rollouts per prefix, subtracts the baseline, and differentiates
    ``losses.policy_gradient_surrogate`` = mean_n Σ_t log p_G(s_t | h_t)·(Q̂_t − b_t). Unbiased for
    every mode and baseline. Baselines: ``"exact_value"`` (V(h_t) by enumeration; tiny spaces),
    ``"leave_one_out"`` (mean Q̂_t of the other samples; needs n_samples ≥ 2), or a callable
    ``sequences (N, T) → (N, T)`` whose column t may depend on s_1 … s_{t−1} only. Direction: the
    generator descends the returned vector.
    """
    _check_pair(policy, energy)
    n = _check_positive_int(n_samples, "n_samples", "sequences drawn from p_G")
    if baseline == "leave_one_out" and n < 2:
        raise ValueError("the leave_one_out baseline needs n_samples >= 2")
    seqs = policy.sample(n, generator=generator)  # (N, T)
    q = mc_q_values(
        policy,
        energy,
        seqs,
        n_rollouts=n_rollouts,
        entropy_weight=entropy_weight,
        mode=mode,
        generator=generator,
        chunk_rows=chunk_rows,
    )
    b = _baseline_values(baseline, policy, energy, seqs, q, float(entropy_weight), mode)
    weights = q if b is None else q - b  # (N, T)
    step = policy.step_log_probs(seqs)  # (N, T), differentiable
    surrogate = policy_gradient_surrogate(step, weights.to(step.dtype))
    return _flat_gradient(surrogate, _gradient_parameters(policy))


def mc_policy_gradient_eq5_as_printed(
    policy: SequencePolicy,
    energy: SequenceEnergy,
    n_samples: int,
    *,
    n_rollouts: int,
    entropy_weight: float = 1.0,
    generator: torch.Generator | None = None,
    chunk_rows: int | None = None,
) -> Tensor:
    """Eq. (5) *as printed*: Σ_t E_{s_1…s_t ~ p_G} ∇p_G(s_t | h_t)·Q(s_1 … s_t) — **biased**.

    The Monte-Carlo estimate mean_n Σ_t ∇p_G(s_t | h_t)·Q̂_t (the gradient of the *probability*,
    not of its log). Its expectation is Σ_t E[p_G(s_t | h_t)·∇log p_G(s_t | h_t)·Q_t]: every
    score term carries an extra weight p_G(s_t | h_t) ≤ 1, so it is not ∇J (eq. 14) in general.
    When every conditional p_G(· | h) is uniform it equals ∇J / V exactly (right direction, wrong
    scale); see docs/errata.md. Returned for demonstration only (flat float64, like
    :func:`mc_policy_gradient`).
    """
    _check_pair(policy, energy)
    n = _check_positive_int(n_samples, "n_samples", "sequences drawn from p_G")
    seqs = policy.sample(n, generator=generator)
    q = mc_q_values(
        policy,
        energy,
        seqs,
        n_rollouts=n_rollouts,
        entropy_weight=entropy_weight,
        generator=generator,
        chunk_rows=chunk_rows,
    )
    step = policy.step_log_probs(seqs)  # (N, T)
    surrogate = (step.exp() * q.to(step.dtype)).sum(dim=1).mean()  # ∇ of this = eq. (5) as printed
    return _flat_gradient(surrogate, _gradient_parameters(policy))
