"""The enumerated generator problem: all V^T sequences, their fixed weights, and exact Q (eqs. 5, 9, 14).

Every exact route of the ``exact`` wing starts here:

- :func:`enumerate_generator` — a snapshot of p_G(S), log p_G(s_t | h_t) and the fixed weight
  c(S) = D(S) + w·log p_G(S) of every sequence (float64, index order, s_1 most significant);
- :func:`prefix_q_tables` — the one engine of exact Q: Q(s_1 … s_t) = E[c(S) | s_1 … s_t] at every
  prefix-tree node by the tower property Q_t(h) = Σ_a p_G(a | h)·Q_{t+1}(h a) (the Q of eqs. 5, 14);
- :func:`flat_gradient` — ∇ of a scalar over the trainable policy parameters as one float64 vector;
- :func:`exact_objective` — J = Σ_S p_G(S)[D(S) + w·log p_G(S)], the objective of eq. (9).

Direction: the generator *descends* ∇J. The energy D is held fixed (it belongs to the
discriminator). See docs/equations.md for the map from each equation to its code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from gan_equiv.checks import finite_float
from gan_equiv.models.energies import SequenceEnergy
from gan_equiv.models.policies import SequencePolicy
from maxent_il.space import EnumerationTooLargeError, SequenceSpace

#: Largest V^T the exact gradient lines enumerate by default (every forward pass keeps an autograd
#: graph over all sequences, so this is much lower than plain enumeration's limit).
DEFAULT_MAX_GRADIENT_SEQUENCES = 2**16


def gradient_parameters(policy: SequencePolicy) -> list[Tensor]:
    """The policy parameters gradients are taken over (those with requires_grad), in order."""
    return [p for p in policy.parameters() if p.requires_grad]


def flat_gradient(objective: Tensor, params: list[Tensor]) -> Tensor:
    """∇objective over ``params`` as one flat float64 vector (zeros for unused parameters).

    The route of every gradient of eqs. (5), (9)–(14): a sum Σ_S w(S)·∇g(S) is taken as
    ∇ Σ_S w(S).detach()·g(S), one backward pass. Nothing is accumulated into ``.grad``.
    """
    grads = torch.autograd.grad(objective, params, allow_unused=True)
    flat = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]
    return torch.cat([g.reshape(-1) for g in flat]).double()


@dataclass(frozen=True, eq=False)
class GeneratorEnumeration:
    """A snapshot of one exact generator problem at the policy's current parameters.

    The weights are fixed numbers (detached) taken when the snapshot is made; each gradient line
    re-runs the policy's forward pass to differentiate it. Make a new snapshot after the policy's
    parameters change.

    Attributes:
        policy: the generator p_G.
        sequences: all V^T sequences in index order (s_1 most significant), int64 (V^T, T).
        energy: D(S) for every sequence, float64 (V^T,), detached from any energy parameters.
        entropy_weight: w in ψ(p_G) = −w·H(p_G).
        step_log_probs: log p_G(s_t | h_t), detached, float64 (V^T, T).
        probs: p_G(S), detached, float64 (V^T,).
        cost: c(S) = D(S) + w·log p_G(S), detached, float64 (V^T,): the fixed weight of eqs. (10)–(14).
    """

    policy: SequencePolicy
    sequences: Tensor
    energy: Tensor
    entropy_weight: float
    step_log_probs: Tensor
    probs: Tensor
    cost: Tensor

    @property
    def n_items(self) -> int:
        return self.policy.n_items

    @property
    def horizon(self) -> int:
        return self.policy.horizon

    def parameters(self) -> list[Tensor]:
        """The trainable policy parameters, in ``policy.parameters()`` order."""
        return gradient_parameters(self.policy)

    def log_prob(self) -> Tensor:
        """log p_G(S) for every sequence (a fresh forward pass with autograd graph), float64 (V^T,)."""
        return self.policy.log_prob(self.sequences).double()


def enumerate_policy(
    policy: SequencePolicy,
    energy: SequenceEnergy | Tensor | np.ndarray,
    *,
    entropy_weight: float = 1.0,
    max_sequences: int = DEFAULT_MAX_GRADIENT_SEQUENCES,
) -> GeneratorEnumeration:
    """The snapshot of eq. (4) with ψ = −w·H for a policy of any dtype: all sequences, fixed weights.

    The exact-Q routes (:mod:`gan_equiv.exact.q_values`) use it directly; the weights are float64,
    exact up to the policy's own dtype. See :func:`enumerate_generator` for the arguments.
    """
    if not isinstance(policy, SequencePolicy):
        raise ValueError(f"policy must be a SequencePolicy, got {type(policy).__name__}")
    w = finite_float(entropy_weight, "entropy_weight", hint="1 = the paper")
    space = SequenceSpace(policy.n_items, policy.horizon)
    if space.size > max_sequences:
        raise EnumerationTooLargeError(
            f"the exact generator routes enumerate all V^T={space.size:.3e} sequences "
            f"(V={space.n_items}, T={space.horizon}), above max_sequences={max_sequences:.3e}; use the "
            "Monte-Carlo routes (mc_q_values, mc_policy_gradient) or pass a larger max_sequences"
        )
    seqs = torch.as_tensor(space.all_sequences(max_sequences=max_sequences), device=policy.device)
    values = _energy_values(energy, seqs, space).to(device=policy.device, dtype=torch.float64)
    with torch.no_grad():
        step = policy.step_log_probs(seqs).double()  # (V^T, T)
    log_p = step.sum(dim=1)  # (V^T,)
    return GeneratorEnumeration(policy, seqs, values, w, step, log_p.exp(), values + w * log_p)


def enumerate_generator(
    policy: SequencePolicy,
    energy: SequenceEnergy | Tensor | np.ndarray,
    *,
    entropy_weight: float = 1.0,
    max_sequences: int = DEFAULT_MAX_GRADIENT_SEQUENCES,
) -> GeneratorEnumeration:
    """Set up the exact problem of eq. (4) with ψ = −w·H for the gradient lines (9)–(14).

    Args:
        policy: the generator; it needs trainable float64 parameters (exact paths run in float64).
        energy: a :class:`SequenceEnergy` over the same V and T (evaluated once, in eval mode,
            without gradient), or the energies of all V^T sequences in index order.
        entropy_weight: w, any finite number; 1 is the paper's choice (0: no entropy term).
        max_sequences: refuse (``EnumerationTooLargeError``) when V^T exceeds this.
    """
    if not isinstance(policy, SequencePolicy):
        raise ValueError(f"policy must be a SequencePolicy, got {type(policy).__name__}")
    params = gradient_parameters(policy)
    if not params:
        raise ValueError("the policy has no trainable parameters; there is no gradient to compute")
    bad = [p.dtype for p in params if p.dtype != torch.float64]
    if bad:
        raise ValueError(
            f"exact gradient lines need float64 policy parameters, got {bad[0]}; build the policy "
            "with dtype=torch.float64 or call policy.double()"
        )
    return enumerate_policy(policy, energy, entropy_weight=entropy_weight, max_sequences=max_sequences)


def _energy_values(
    energy: SequenceEnergy | Tensor | np.ndarray, seqs: Tensor, space: SequenceSpace
) -> Tensor:
    """D(S) of every sequence, detached and checked: shape (V^T,)."""
    if isinstance(energy, SequenceEnergy):
        if (energy.n_items, energy.horizon) != (space.n_items, space.horizon):
            raise ValueError(
                f"energy is over V={energy.n_items}, T={energy.horizon} but the policy is over "
                f"V={space.n_items}, T={space.horizon}"
            )
        was_training = energy.training
        energy.eval()  # dropout off: D must be one fixed function
        try:
            with torch.no_grad():
                values = energy(seqs).detach()
        finally:
            energy.train(was_training)
    else:
        values = torch.as_tensor(energy).detach()
        if values.dtype.is_complex or values.dtype == torch.bool:
            raise ValueError(f"energy values must be real numbers, got dtype {values.dtype}")
    if values.shape != (space.size,):
        raise ValueError(
            f"energies must have shape (V^T,) = ({space.size},), one per sequence in index order; "
            f"got {tuple(values.shape)}"
        )
    if not torch.isfinite(values).all():
        raise ValueError("energies must be finite for every sequence")
    return values


def prefix_q_tables(step_log_probs: Tensor, returns: Tensor, n_items: int) -> list[Tensor]:
    """Exact Q at every prefix-tree node (the inner sum of eq. 14, the Q of eq. 5): T + 1 tensors.

    ``step_log_probs`` (V^T, T) holds log p_G(s_t | h_t) and ``returns`` (V^T,) the fixed weight
    c(S) = D(S) + w·log p_G(S) of every sequence in index order. Entry ``q[t]`` has shape (V^t,),
    indexed by the prefix s_1 … s_t: q[T] = c and, backward over the T tree levels (vectorized
    over the nodes of each level), the tower property

        Q_t(h) = Σ_a p_G(a | h)·Q_{t+1}(h a),   so q[0] = (J,) with J = E_{p_G}[c] (eq. 9).

    Q of a prefix the policy never reaches is still its conditional expectation. Float64, no graph.
    """
    V = n_items
    step = step_log_probs.detach().double()
    T = step.shape[1]
    q: list[Tensor] = [torch.empty(0)] * (T + 1)
    q[T] = returns.detach().double()  # (V^T,)
    for t in range(T - 1, -1, -1):  # backward over the T tree levels, vectorized over nodes
        # log p_G(s_{t+1} | s_1 … s_t) per node of depth t+1: first member of each index block.
        p = step[:: V ** (T - t - 1), t].exp()  # (V^{t+1},)
        q[t] = torch.where(p > 0, p * q[t + 1], 0.0).view(V**t, V).sum(dim=1)
    return q


def prefix_probabilities(probs: Tensor, n_items: int, t: int) -> Tensor:
    """Marginal p(s_1 … s_t) = Σ_{s_{t+1} … s_T} p(S) for every prefix of length t: (V^t,).

    ``probs`` holds p(S) of all V^T sequences in index order, where the sequences sharing a prefix
    of length t form consecutive blocks of V^{T−t}; t = 0 gives the empty prefix (total mass).
    """
    return probs.reshape(n_items**t, -1).sum(dim=1)


def conditional_log_probs(policy: SequencePolicy, t: int) -> Tensor:
    """log p_G(s_t | s_1 … s_{t−1}) for every prefix s_1 … s_t (index order), with graph: (V^t,).

    The prefix-tree view used by eq. (14) and eq. (5): one row of next-item log-probs per history
    h_t of length t − 1, flattened so that entry index(h_t)·V + s_t belongs to s_1 … s_t.
    """
    if not 1 <= t <= policy.horizon:
        raise ValueError(f"step t={t} is outside 1..T={policy.horizon}")
    if t == 1:
        histories = torch.zeros(1, 0, dtype=torch.long, device=policy.device)
    else:
        histories = torch.as_tensor(
            SequenceSpace(policy.n_items, t - 1).all_sequences(), device=policy.device
        )
    return policy.next_item_log_probs(histories).reshape(-1)


def exact_objective(problem: GeneratorEnumeration) -> Tensor:
    """J = Σ_S p_G(S)[D(S) + w·log p_G(S)]: eq. (4) with ψ = −w·H, the objective of eq. (9).

    Differentiable in the policy parameters (D is fixed); the generator descends it.
    """
    log_p = problem.log_prob()  # (V^T,), with graph
    return (log_p.exp() * (problem.energy + problem.entropy_weight * log_p)).sum()
