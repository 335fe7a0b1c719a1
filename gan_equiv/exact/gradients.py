"""The generator gradient of EB-SeqGAN, line by line: eqs. (9)–(14) and (5), exact by enumeration.

The generator minimizes eq. (4) with ψ(p_G) = −w·H(p_G) (w = 1 is the paper's choice):

    J = E_{p_G}[D(S) + w·log p_G(S)] = Σ_S p_G(S)·[D(S) + w·log p_G(S)],

with the energy D held fixed (detached) — it belongs to the discriminator. Section 3 of the paper
rewrites ∇J in five steps, (10)–(14), ending in the SeqGAN form (14) whose inner sum is the
action value Q(s_1 … s_t) = E[D + w log p_G | s_1 … s_t] of eq. (5). Every line is computed here
*as printed*, summing over all V^T sequences (or over all prefixes) in float64, so that each
equality of the derivation can be checked to rounding error (claim E9):

    (9)   ∇ Σ_S p(S) c(S)                         autograd of the enumerated objective
    (10)  Σ ∇p(S)·c(S) + w Σ p(S) ∇log p(S)       product rule
    (11)  Σ ∇p(S)·c(S) + w Σ ∇p(S)                p ∇log p = ∇p
    (12)  Σ p(S) ∇log p(S)·c(S)                   Σ ∇p = ∇1 = 0
    (13)  Σ p(S) Σ_t ∇log p(s_t | h_t)·c(S)        autoregressive factorization
    (14)  Σ_t Σ_{s_1..s_t} p(s_1..s_t) ∇log p(s_t | h_t)·Q(s_1..s_t)   grouping by prefix

where c(S) = D(S) + w·log p(S) is treated as a fixed weight inside each sum (in (10) the second
term is what the w·log p inside c contributes to the product rule). Eq. (5) is computed twice:
as printed, Σ_t E_{s_1..s_t ~ p_G} ∇p(s_t | h_t)·Q — an expectation over s_t of the *gradient of
the probability* — and corrected, Σ_t E_{s_1..s_{t−1}} Σ_{s_t} ∇p(s_t | h_t)·Q (equivalently
E_{s_1..s_t} ∇log p(s_t | h_t)·Q, SeqGAN's own form). The corrected one equals (9); the printed one
weights each term by an extra factor p(s_t | h_t) and is a different vector (docs/errata.md).

Sums Σ_S w(S)·∇g(S) are formed without a Python loop over sequences by the identity
Σ_S w(S)·∇g(S) = ∇ Σ_S w(S).detach()·g(S): one vectorized forward pass and one backward pass per
term. Gradients are returned as flat float64 vectors over all trainable policy parameters (in
``policy.parameters()`` order). The snapshot, the exact-Q engine and the flat gradient live in
:mod:`gan_equiv.exact.enumeration`; :func:`gan_equiv.exact.q_values.exact_policy_gradient` is
:func:`line9` of a fresh snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import Tensor

from gan_equiv.exact.enumeration import (
    DEFAULT_MAX_GRADIENT_SEQUENCES,
    GeneratorEnumeration,
    conditional_log_probs,
    enumerate_generator,
    exact_objective,
    flat_gradient,
    prefix_probabilities,
    prefix_q_tables,
)
from gan_equiv.models.energies import SequenceEnergy
from gan_equiv.models.policies import SequencePolicy

#: The lines that must equal line (9) exactly (up to rounding).
EQUAL_LINES: tuple[str, ...] = ("line10", "line11", "line12", "line13", "line14", "eq5_corrected")


def prefix_q_values(problem: GeneratorEnumeration) -> tuple[Tensor, ...]:
    """Q(s_1 … s_t) = E_{p_G}[D(S) + w·log p_G(S) | s_1 … s_t] for t = 1 … T (the Q of eqs. 5, 14).

    The snapshot's view of the one exact-Q engine (:func:`~gan_equiv.exact.enumeration.prefix_q_tables`,
    tower property over the prefix tree). Returns T detached float64 tensors, the t-th of shape (V^t,)
    in prefix index order; Q at t = T is c(S) itself.
    """
    return tuple(prefix_q_tables(problem.step_log_probs, problem.cost, problem.n_items)[1:])


# --- the lines ------------------------------------------------------------------------------------
def line9(problem: GeneratorEnumeration) -> Tensor:
    """Eq. (9): ∇ E_{p_G}[D(S) + w·log p_G(S)], by autograd of the enumerated objective.

    The one exact ∇J of the project (:func:`gan_equiv.exact.q_values.exact_policy_gradient` calls
    it). Direction: the generator descends this vector.
    """
    return flat_gradient(exact_objective(problem), problem.parameters())


def sum_of_probability_gradients(problem: GeneratorEnumeration) -> Tensor:
    """Σ_S ∇p_G(S) = ∇ Σ_S p_G(S) = ∇1 = 0: the step from eq. (11) to eq. (12)."""
    return flat_gradient(problem.log_prob().exp().sum(), problem.parameters())


def line10(problem: GeneratorEnumeration) -> Tensor:
    """Eq. (10): Σ_S ∇p_G(S)[D(S) + w·log p_G(S)] + w·Σ_S p_G(S) ∇log p_G(S) (product rule)."""
    params = problem.parameters()
    probs, cost = problem.probs, problem.cost
    first = flat_gradient((problem.log_prob().exp() * cost).sum(), params)  # Σ ∇p(S)·c(S)
    second = flat_gradient((probs * problem.log_prob()).sum(), params)  # Σ p(S) ∇log p(S)
    return first + problem.entropy_weight * second


def line11(problem: GeneratorEnumeration) -> Tensor:
    """Eq. (11): Σ_S ∇p_G(S)[D(S) + w·log p_G(S)] + w·Σ_S ∇p_G(S)."""
    cost = problem.cost
    first = flat_gradient((problem.log_prob().exp() * cost).sum(), problem.parameters())
    return first + problem.entropy_weight * sum_of_probability_gradients(problem)


def line12(problem: GeneratorEnumeration) -> Tensor:
    """Eq. (12): Σ_S p_G(S) ∇log p_G(S)[D(S) + w·log p_G(S)] (score-function form)."""
    probs, cost = problem.probs, problem.cost
    return flat_gradient(((probs * cost) * problem.log_prob()).sum(), problem.parameters())


def line13(problem: GeneratorEnumeration) -> Tensor:
    """Eq. (13): Σ_S p_G(S) Σ_t ∇log p_G(s_t | s_1 … s_{t−1})[D(S) + w·log p_G(S)]."""
    probs, cost = problem.probs, problem.cost
    steps = problem.policy.step_log_probs(problem.sequences)  # (V^T, T), one column per t
    return flat_gradient(((probs * cost)[:, None] * steps).sum(), problem.parameters())


def line14(problem: GeneratorEnumeration) -> Tensor:
    """Eq. (14): Σ_t Σ_{s_1..s_t} p(s_1..s_t) ∇log p(s_t | s_1..s_{t−1}) Q(s_1..s_t).

    Q(s_1..s_t) = Σ_{s_{t+1}..s_T} p(s_{t+1}..s_T | s_1..s_t)[D(S) + w·log p(S)] from the exact-Q
    engine (:func:`prefix_q_values`); the prefix marginals p(s_1..s_t) sum the sequences that share
    each prefix, and the conditionals come from the prefix tree (:func:`conditional_log_probs`), not
    from the per-sequence steps of (13).
    """
    probs = problem.probs
    q_values = prefix_q_values(problem)
    surrogate = torch.zeros((), dtype=torch.float64, device=probs.device)
    for t in range(1, problem.horizon + 1):  # loop over T steps, vectorized over prefixes
        weight = prefix_probabilities(probs, problem.n_items, t) * q_values[t - 1]
        surrogate = surrogate + (weight * conditional_log_probs(problem.policy, t)).sum()
    return flat_gradient(surrogate, problem.parameters())


def eq5_printed(problem: GeneratorEnumeration) -> Tensor:
    """Eq. (5) exactly as printed: Σ_t E_{s_1..s_t ~ p_G} ∇p_G(s_t | s_1..s_{t−1}) Q(s_1..s_t).

    = Σ_t Σ_{s_1..s_t} p(s_1..s_t) ∇p(s_t | h_t) Q(s_1..s_t): the expectation also runs over s_t,
    so each term carries an extra factor p(s_t | h_t) compared with the true gradient. Not equal to
    eq. (9) in general (docs/errata.md).
    """
    probs = problem.probs
    q_values = prefix_q_values(problem)
    surrogate = torch.zeros((), dtype=torch.float64, device=probs.device)
    for t in range(1, problem.horizon + 1):
        weight = prefix_probabilities(probs, problem.n_items, t) * q_values[t - 1]
        surrogate = surrogate + (weight * conditional_log_probs(problem.policy, t).exp()).sum()
    return flat_gradient(surrogate, problem.parameters())


def eq5_corrected(problem: GeneratorEnumeration) -> Tensor:
    """Eq. (5) corrected: Σ_t Σ_{s_1..s_{t−1}} p(s_1..s_{t−1}) Σ_{s_t} ∇p_G(s_t | h_t) Q(s_1..s_t).

    The expectation runs over the history only and s_t is summed, so Σ_{s_t} ∇p(s_t|h_t)·Q =
    E_{s_t} ∇log p(s_t|h_t)·Q: this is SeqGAN's policy gradient and equals eq. (9).
    """
    probs = problem.probs
    q_values = prefix_q_values(problem)
    V = problem.n_items
    surrogate = torch.zeros((), dtype=torch.float64, device=probs.device)
    for t in range(1, problem.horizon + 1):
        history = prefix_probabilities(probs, V, t - 1).repeat_interleave(V)  # p(s_1..s_{t−1})
        weight = history * q_values[t - 1]
        surrogate = surrogate + (weight * conditional_log_probs(problem.policy, t).exp()).sum()
    return flat_gradient(surrogate, problem.parameters())


# --- all together ---------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class GradientLines:
    """Every line of eqs. (9)–(14) and both forms of eq. (5), as flat float64 vectors.

    Attributes:
        objective: J = E_{p_G}[D + w log p_G] (eq. 4 with ψ = −w·H).
        entropy_weight: w.
        line9 … line14: the lines of the derivation in §3 (see the module docstring).
        eq5_printed: eq. (5) as printed (∇p inside an expectation over s_t) — biased.
        eq5_corrected: eq. (5) with the expectation over the history only — equals line (9).
        sum_grad_prob: Σ_S ∇p_G(S), which must vanish for (11) → (12).
    """

    objective: float
    entropy_weight: float
    line9: Tensor
    line10: Tensor
    line11: Tensor
    line12: Tensor
    line13: Tensor
    line14: Tensor
    eq5_printed: Tensor
    eq5_corrected: Tensor
    sum_grad_prob: Tensor

    def vectors(self) -> dict[str, Tensor]:
        """Name → vector for every gradient field."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if isinstance(getattr(self, f.name), Tensor)
        }

    def discrepancies(self) -> dict[str, float]:
        """‖x − line9‖_∞ for every line and both forms of eq. (5)."""
        ref = self.line9
        names = (*EQUAL_LINES, "eq5_printed")
        return {name: float((getattr(self, name) - ref).abs().max()) for name in names}

    def max_line_discrepancy(self) -> float:
        """max over lines (10)–(14) and corrected eq. (5) of ‖x − line9‖_∞ (should be rounding)."""
        disc = self.discrepancies()
        return max(disc[name] for name in EQUAL_LINES)

    def scale(self) -> float:
        """max(1, ‖line9‖_∞): the magnitude to which a tolerance is relative."""
        return max(1.0, float(self.line9.abs().max()))


def max_line_discrepancy(lines: GradientLines) -> float:
    """max over lines (10)–(14) and corrected eq. (5) of ‖x − line9‖_∞ (claim E9)."""
    return lines.max_line_discrepancy()


def gradient_lines(
    policy: SequencePolicy,
    energy: SequenceEnergy | Tensor | np.ndarray,
    *,
    entropy_weight: float = 1.0,
    max_sequences: int = DEFAULT_MAX_GRADIENT_SEQUENCES,
) -> GradientLines:
    """Compute every line of eqs. (9)–(14) and both forms of eq. (5) for one generator and energy.

    See :func:`enumerate_generator` for the arguments. No gradient is accumulated into any
    parameter's ``.grad``; the energy is fixed.
    """
    problem = enumerate_generator(policy, energy, entropy_weight=entropy_weight, max_sequences=max_sequences)
    with torch.no_grad():
        objective = float(exact_objective(problem))
    return GradientLines(
        objective=objective,
        entropy_weight=problem.entropy_weight,
        line9=line9(problem),
        line10=line10(problem),
        line11=line11(problem),
        line12=line12(problem),
        line13=line13(problem),
        line14=line14(problem),
        eq5_printed=eq5_printed(problem),
        eq5_corrected=eq5_corrected(problem),
        sum_grad_prob=sum_of_probability_gradients(problem),
    )
