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

The exact twins (enumeration, float64) are in :mod:`gan_equiv.exact.q_values`. The Monte-Carlo
route (:func:`mc_q_values`) rolls out K completions of every prefix of every given sequence in one batched
pass of at most T−1 sampling steps — no Python loop over t or K — and :func:`naive_mc_q_values` is
the reference SeqGAN structure (loops over t and k, one :meth:`~SequencePolicy.complete` each), kept
for the benchmark and the equivalence tests. Under ``stream="naive"`` both consume the same
uniforms from a CPU ``torch.Generator``, so they draw identical completions.

Direction: the generator *descends* ∇J (low energy, high entropy); every gradient returned here is
∇J itself, not its negative.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from gan_equiv.checks import choice, finite_float, positive_int
from gan_equiv.models.energies import SequenceEnergy
from gan_equiv.models.policies import PRECISIONS, SequencePolicy, draw_items

Mode = Literal["full", "reward_to_go"]
MODES: tuple[str, ...] = ("full", "reward_to_go")
Stream = Literal["compact", "naive"]
SamplerPrecision = Literal["auto", "float32", "float64"]
STREAMS: tuple[str, ...] = ("compact", "naive")
#: On CPU, sampling works on chunks of about this many logits (rows × V): large enough to amortize
#: the per-call overhead, small enough for a chunk's softmax to stay in cache; see docs/benchmarks.md.
CPU_CHUNK_ELEMENTS = 2**20


# --- validation (shared with the exact twins in gan_equiv.exact) ---------------------------------------
def check_pair(policy: SequencePolicy, energy: SequenceEnergy | None) -> None:
    """Refuse a policy/energy pair that is not a SequencePolicy/SequenceEnergy over one (V, T)."""
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


def check_weight(entropy_weight: float) -> float:
    """The entropy weight w of ψ = −w·H as a finite float (1 = the paper)."""
    return finite_float(entropy_weight, "entropy_weight", hint="1 = the paper")


def check_given(policy: SequencePolicy, sequences: Tensor) -> Tensor:
    """Given sequences as (N ≥ 1, T) int64 on the policy's device; shape/dtype/range errors."""
    seqs = policy.check_sequences(sequences)
    if seqs.shape[0] == 0:
        raise ValueError("sequences is empty (shape (0, T)); give at least one sequence")
    return seqs


def past_log_probs(step: Tensor) -> Tensor:
    """Σ_{k<t} log p_G(s_k | h_k) for t = 1 … T (exclusive cumulative sum): (N, T)."""
    return torch.cumsum(step, dim=1) - step


def _chunk_rows(policy: SequencePolicy, chunk_rows: int | None) -> int:
    """Rows per sampling chunk: the given value, all rows on accelerators, ~CPU_CHUNK_ELEMENTS on CPU."""
    if chunk_rows is not None:
        return positive_int(chunk_rows, "chunk_rows", hint="rows per sampling chunk, or None for auto")
    if policy.device.type != "cpu":
        return 2**62
    return max(16, CPU_CHUNK_ELEMENTS // policy.n_items)


def _slices(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


# --- Monte-Carlo rollouts ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _RowBatch:
    """Rollout rows sorted by prefix length L ascending (= remaining length descending).

    Row r = ((L−1)·N + n)·K + k holds rollout k of prefix s_1 … s_L of given sequence n.
    """

    completions: Tensor  # (R, T) int64, R = (T−1)·N·K
    log_probs: Tensor  # (R,) float64: log p_G(completion)
    given_log_probs: Tensor  # (N, T) float64: log p_G(s_t | h_t) of the given sequences


def _resolve_precision(policy: SequencePolicy, precision: str, stream: str) -> str:
    """The draw precision; ``auto`` is float32 for a float32/16 policy under the compact stream."""
    precision = choice(precision, "precision", ("auto", *PRECISIONS))
    if precision != "auto":
        return precision
    low = next(policy.parameters()).dtype in (torch.float32, torch.float16, torch.bfloat16)
    return "float32" if low and stream == "compact" else "float64"


@torch.no_grad()
def _rollout_rows(
    policy: SequencePolicy,
    seqs: Tensor,
    n_rollouts: int,
    generator: torch.Generator | None,
    stream: str,
    chunk_rows: int,
    shard: tuple[int, int] | None = None,
    precision: str = "float64",
) -> _RowBatch:
    N, T, K = seqs.shape[0], policy.horizon, n_rollouts
    B, start = shard if shard is not None else (N, 0)  # global batch size, this shard's first row
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

    P = (T - 1) * N  # prefixes p = (L−1)·N + n, L = 1 … T−1; rollout row r = p·K + k
    prefix = states[:, 1:T].transpose(0, 1).reshape(P, *states.shape[2:])  # (P, *S), no K copies
    lengths_p = torch.arange(1, T, device=dev).repeat_interleave(N)  # (P,) L
    rows_n = torch.arange(N, device=dev).repeat_interleave(K).repeat(T - 1)  # (R,) n
    lengths = lengths_p.repeat_interleave(K)  # (R,) L, ascending
    rows_k = torch.arange(K, device=dev).repeat(P)  # (R,) k
    # This shard's rows in the global call's layout ((L−1)·B + start + n)·K + k (= arange unsharded).
    global_rows = None if shard is None else ((lengths - 1) * B + start + rows_n) * K + rows_k
    if stream == "naive":
        # The uniforms naive_mc_q_values consumes, in its order: L, k, position p, row n.
        table = torch.rand((T - 1) * K * T * N, 1, generator=generator, dtype=torch.float64, device=dev)
        base = ((lengths - 1) * K + rows_k) * T * N + rows_n  # (R,) + p·N selects position p

    def uniforms(j: int, active: int) -> Tensor:  # (active, 1): the draws of rollout step j
        if stream == "naive":
            return table[base[:active] + (lengths[:active] + j) * N]
        u = torch.rand(B * K * (T - 1 - j), 1, generator=generator, dtype=torch.float64, device=dev)
        return u if global_rows is None else u[global_rows[:active]]

    # Step 0 (position L + 1): the K continuations of a prefix share its state and one softmax.
    u0 = uniforms(0, R).view(P, K)
    first = torch.empty(P, K, dtype=torch.long, device=dev)
    log_probs = torch.cumsum(given, dim=1).T[:-1].reshape(P, 1).repeat(1, K)  # (P, K) log p_G(s_1…s_L)
    # Chunked by the default size only, so that chunk_rows cannot change a row's logits (BLAS
    # kernels for one row and for many can differ in the last bit).
    for sl in _slices(P, max(1, _chunk_rows(policy, None) // K)):
        drawn, logp = draw_items(policy.logits(prefix[sl]), u0[sl], precision=precision)
        first[sl] = drawn
        log_probs[sl] += logp
    log_probs = log_probs.view(R)
    out = seqs[rows_n]  # (R, T): prefix teacher-forced, the rest written below
    out[torch.arange(R, device=dev), lengths] = first.view(R)
    after = N * K * (T - 2)  # rows that generate again (L ≤ T−2): a leading slice
    if after:
        state = policy.advance(prefix[: after // K].repeat_interleave(K, dim=0), first.view(R)[:after])
    arange = torch.arange(R, device=dev)
    for j in range(1, T - 1):  # step j draws position L + j for every row with L ≤ T−1−j
        active, after = after, N * K * (T - 2 - j)  # leading slices, thanks to the sort
        pos = lengths[:active] + j  # (active,)
        u = uniforms(j, active)
        for sl in _slices(active, chunk_rows):
            drawn, logp = draw_items(policy.logits(state[sl]), u[sl], precision=precision)
            drawn, logp = drawn.squeeze(1), logp.squeeze(1)
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


def _check_shard(shard: tuple[int, int], n_local: int, stream: str) -> tuple[int, int]:
    try:
        n_global, start = (int(v) for v in shard)
    except (TypeError, ValueError):
        raise ValueError(f"shard must be (global batch size, start row), got {shard!r}") from None
    if not 0 <= start < start + n_local <= n_global:
        raise ValueError(
            f"shard rows [{start}, {start + n_local}) must be a non-empty part of 0..{n_global} "
            "(the global batch)"
        )
    if stream != "compact":
        raise ValueError(f"a shard needs stream='compact', got stream={stream!r}")
    return n_global, start


def _check_mc_args(policy, energy, sequences, n_rollouts, entropy_weight, mode, stream):
    check_pair(policy, energy)
    positive_int(n_rollouts, "n_rollouts", hint="K rollouts per prefix, K ≥ 1")
    mode = choice(mode, "mode", MODES)
    stream = choice(stream, "stream", STREAMS)
    return check_given(policy, sequences), check_weight(entropy_weight), mode, stream


def mc_rollouts(
    policy: SequencePolicy,
    sequences: Tensor,
    *,
    n_rollouts: int,
    generator: torch.Generator | None = None,
    stream: Stream = "compact",
    chunk_rows: int | None = None,
    precision: SamplerPrecision = "auto",
) -> Rollouts:
    """The rollouts behind :func:`mc_q_values` (eq. 14's inner expectation), in (n, t, k) layout;
    ``precision`` as there."""
    seqs, _, _, stream = _check_mc_args(policy, None, sequences, n_rollouts, 1.0, "full", stream)
    N, T, K = seqs.shape[0], policy.horizon, n_rollouts
    prec = _resolve_precision(policy, precision, stream)
    rows = _rollout_rows(policy, seqs, K, generator, stream, _chunk_rows(policy, chunk_rows), None, prec)
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
    shard: tuple[int, int] | None = None,
    precision: SamplerPrecision = "auto",
) -> Tensor:
    """Monte-Carlo Q(s_1 … s_t) of eq. (14) with K rollouts per prefix, vectorized: float64 (N, T).

    Q̂_t = (1/K) Σ_k [D(S^k) + w·log p_G(S^k)] with S^k ~ p_G(· | s_1 … s_t), unbiased for
    :func:`gan_equiv.exact.q_values.exact_q_values`; column T is exact. ``mode="reward_to_go"``
    subtracts w·Σ_{k<t} log p_G(s_k | h_k) (same mean gradient, see
    :func:`gan_equiv.exact.q_values.exact_reward_to_go`).

    One batched pass: the states after every prefix come from one ``prefix_states`` call; the
    first rollout step computes one softmax per prefix and draws its K items from it (the K
    continuations share the prefix state); after that the N·(T−1)·K rows are sorted by remaining
    length so that at rollout step j the rows still generating are a leading slice, and logits are
    computed for those rows only (teacher-forced positions need none). log p_G of each completion
    accumulates from the sampling softmax, and D runs once on all completions. On CPU the active
    slice is processed in chunks of ``chunk_rows`` rows (default ≈ CPU_CHUNK_ELEMENTS / V) so that
    a chunk's softmax stays in cache; on CUDA the whole slice is one chunk and nothing in the loop
    waits for the host.

    ``precision`` selects the draw (:func:`gan_equiv.models.policies.draw_items`): ``"float32"``
    (float32 softmax, float64 recheck near bin edges: the float64 path's items, log p_G within
    ~1e-5), ``"float64"``, or ``"auto"`` (float32 for a float32/16 policy under the compact stream,
    float64 otherwise, so ``stream="naive"`` reproduces :func:`naive_mc_q_values` exactly).

    ``stream="compact"`` draws one uniform per sampled item; ``"naive"`` draws the uniforms that
    :func:`naive_mc_q_values` would (including those it discards at teacher-forced steps), so that on
    a CPU generator both draw the same completions. Reproducible for a given ``generator`` state.
    D is evaluated as it is (call ``energy.eval()`` to switch dropout off).

    ``shard=(B, start)`` (data-parallel training): ``sequences`` are rows [start, start+N) of a
    global batch of B sequences, and the result is exactly those rows of the unsharded call on the
    global batch. The global call sorts its B·K·(T−1) rows by prefix length L and at rollout step j
    draws one uniform per active global row; a shard draws the same uniforms (so ``generator``
    advances as in the global call) and keeps those of its rows ((L−1)·B + start + n)·K + k.
    Needs ``stream="compact"``.
    """
    seqs, w, mode, stream = _check_mc_args(
        policy, energy, sequences, n_rollouts, entropy_weight, mode, stream
    )
    N, T, K = seqs.shape[0], policy.horizon, n_rollouts
    if shard is not None:
        shard = _check_shard(shard, N, stream)
    prec = _resolve_precision(policy, precision, stream)
    rows = _rollout_rows(policy, seqs, K, generator, stream, _chunk_rows(policy, chunk_rows), shard, prec)
    with torch.no_grad():
        d = energy(torch.cat([rows.completions, seqs])).double()  # (R + N,)
    returns = d[: rows.log_probs.shape[0]] + w * rows.log_probs  # (R,) D + w·log p_G per rollout
    q = torch.empty(N, T, dtype=torch.float64, device=seqs.device)
    q[:, : T - 1] = returns.view(T - 1, N, K).mean(dim=2).T
    q[:, T - 1] = d[-N:] + w * rows.given_log_probs.sum(dim=1)  # exact at t = T
    if mode == "reward_to_go":
        q = q - w * past_log_probs(rows.given_log_probs)
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
        q = q - w * past_log_probs(step)
    return q
