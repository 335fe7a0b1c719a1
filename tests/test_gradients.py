"""Claim E9 (and E8's objective): every line of eqs. (9)–(14) equals ∇E_{p_G}[D + w log p_G].

Also: Σ_S ∇p(S) = 0 (the step (11) → (12)); eq. (5) corrected equals (9), while eq. (5) as printed
is a different vector — exactly the corrected sum with each term weighted by an extra p(s_t | h_t).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import AUTOGRAD_TOL, EXACT_TOL
from hypothesis import given
from hypothesis import strategies as st
from strategies import random_policy, seeds

from gan_equiv.exact.enumeration import (
    conditional_log_probs,
    enumerate_generator,
    exact_objective,
    prefix_probabilities,
)
from gan_equiv.exact.gradients import (
    EQUAL_LINES,
    eq5_printed,
    gradient_lines,
    line9,
    max_line_discrepancy,
    prefix_q_values,
)
from gan_equiv.exact.q_values import exact_policy_gradient, exact_q_values
from gan_equiv.losses import ebgan_generator_objective, maxent_q_step_objective
from gan_equiv.models.energies import LinearEnergy, TabularEnergy
from gan_equiv.models.policies import GRUPolicy, SequencePolicy, TabularPolicy
from maxent_il.features import STATE_KINDS, StateActionFeatures
from maxent_il.gibbs import GibbsModel
from maxent_il.space import EnumerationTooLargeError, SequenceSpace

POLICY_KINDS = ("tabular", "gru", "lstm")


# --- random tiny problems ---------------------------------------------------------------------------
def make_policy(kind: str, n_items: int, horizon: int, seed: int, *, scale: float = 1.5) -> SequencePolicy:
    """A seeded random float64 policy (see strategies.random_policy)."""
    return random_policy(kind, n_items, horizon, seed, scale=scale)


def make_energy(kind: str, space: SequenceSpace, rng: np.random.Generator) -> TabularEnergy | LinearEnergy:
    """A random tabular energy, or a linear one θ·f over random state-action features."""
    if kind == "tabular":
        return TabularEnergy(space.n_items, space.horizon, values=rng.normal(scale=2.0, size=space.size))
    features = StateActionFeatures(space, str(rng.choice(STATE_KINDS)))
    return LinearEnergy(features, theta=rng.normal(scale=1.5, size=features.dim))


@st.composite
def generator_problems(draw: st.DrawFn, kinds: tuple[str, ...] = POLICY_KINDS):
    """(policy, energy, w) with V ≤ 3, T ≤ 3, w ∈ {0, 0.5, 1}."""
    space = SequenceSpace(draw(st.integers(2, 3)), draw(st.integers(1, 3)))
    kind = draw(st.sampled_from(kinds))
    seed = draw(seeds())
    rng = np.random.default_rng(seed)
    policy = make_policy(kind, space.n_items, space.horizon, seed)
    energy = make_energy(draw(st.sampled_from(("tabular", "linear"))), space, rng)
    return policy, energy, draw(st.sampled_from((1.0, 0.5, 0.0)))


# --- E9: the lines of the derivation ------------------------------------------------------------------
@pytest.mark.parametrize("kind", POLICY_KINDS)
@given(data=st.data())
def test_each_line_equals_line_9(kind: str, data: st.DataObject) -> None:
    policy, energy, w = data.draw(generator_problems(kinds=(kind,)))
    lines = gradient_lines(policy, energy, entropy_weight=w)
    tol = AUTOGRAD_TOL * lines.scale()
    for name, gap in lines.discrepancies().items():
        if name in EQUAL_LINES:
            assert gap <= tol, f"{name} differs from line (9) by {gap:.3e} (w={w}, {kind})"
    assert max_line_discrepancy(lines) == lines.max_line_discrepancy() <= tol
    assert float(lines.line9.norm()) > 0  # a genuine, non-trivial gradient is being compared


@given(problem=generator_problems())
def test_sum_of_probability_gradients_vanishes(problem) -> None:
    """Σ_S ∇p(S) = ∇ Σ_S p(S) = ∇1 = 0: what turns (11) into (12)."""
    policy, energy, w = problem
    lines = gradient_lines(policy, energy, entropy_weight=w)
    assert float(lines.sum_grad_prob.abs().max()) <= AUTOGRAD_TOL


@given(data=st.data())
def test_line_9_tabular_closed_form(data: st.DataObject) -> None:
    """Independent of autograd: ∂J/∂z[h, a] = p(h)·p(a|h)·(Q(h a) − Q(h)) for a tabular policy."""
    policy, energy, w = data.draw(generator_problems(kinds=("tabular",)))
    problem = enumerate_generator(policy, energy, entropy_weight=w)
    V, T = policy.n_items, policy.horizon
    probs = problem.probs
    q_values = (exact_objective(problem).detach().reshape(1), *prefix_q_values(problem))  # Q(∅) = J
    blocks = []
    for d in range(T):  # rows of depth d: histories h of length d
        p_h = prefix_probabilities(probs, V, d)[:, None]  # (V^d, 1)
        cond = conditional_log_probs(policy, d + 1).detach().exp().reshape(V**d, V)  # p(a | h)
        advantage = q_values[d + 1].reshape(V**d, V) - q_values[d][:, None]
        blocks.append(p_h * cond * advantage)
    closed_form = torch.cat(blocks).reshape(-1)
    assert torch.allclose(line9(problem), closed_form, rtol=0, atol=AUTOGRAD_TOL)


@given(problem=generator_problems())
def test_exact_q_values_satisfy_the_tower_property(problem) -> None:
    """Q_T = D + w log p; Q(h) = Σ_a p(a|h) Q(h a); Σ_{s_1} p(s_1) Q(s_1) = J."""
    policy, energy, w = problem
    enum = enumerate_generator(policy, energy, entropy_weight=w)
    V, T = policy.n_items, policy.horizon
    q_values = prefix_q_values(enum)
    assert [q.shape for q in q_values] == [(V**t,) for t in range(1, T + 1)]
    assert torch.allclose(q_values[-1], enum.energy + w * enum.probs.log(), atol=EXACT_TOL)
    for t in range(1, T):
        cond = conditional_log_probs(policy, t + 1).detach().exp()
        backed_up = (cond * q_values[t]).reshape(V**t, V).sum(dim=1)
        assert torch.allclose(q_values[t - 1], backed_up, rtol=0, atol=EXACT_TOL * 10)
    first = conditional_log_probs(policy, 1).detach().exp()
    objective = float(exact_objective(enum).detach())
    assert abs(float((first * q_values[0]).sum()) - objective) <= EXACT_TOL * max(1.0, abs(objective))
    for t in range(1, T + 1):  # a second route: Q = Σ_{S ⊇ prefix} p(S) c(S) / Σ_{S ⊇ prefix} p(S)
        mass = prefix_probabilities(enum.probs, V, t)
        marginalized = prefix_probabilities(enum.probs * enum.cost, V, t) / mass
        scale = max(1.0, float(q_values[t - 1].abs().max()))
        assert torch.allclose(q_values[t - 1], marginalized, rtol=0, atol=EXACT_TOL * 10 * scale)


@given(problem=generator_problems())
def test_exact_routes_read_one_q_engine_and_one_gradient(problem) -> None:
    """q_values.exact_q_values (per sequence) reads the snapshot's Q at each prefix, and
    q_values.exact_policy_gradient is line (9) of the same problem."""
    policy, energy, w = problem
    enum = enumerate_generator(policy, energy, entropy_weight=w)
    V, T = policy.n_items, policy.horizon
    per_node = prefix_q_values(enum)
    index = torch.arange(V**T)
    expected = torch.stack([per_node[t - 1][index // V ** (T - t)] for t in range(1, T + 1)], dim=1)
    if not isinstance(energy, torch.Tensor):
        by_sequence = exact_q_values(policy, energy, enum.sequences, entropy_weight=w)
        assert torch.allclose(by_sequence, expected, rtol=0, atol=EXACT_TOL)
        assert torch.equal(exact_policy_gradient(policy, energy, entropy_weight=w), line9(enum))


def test_energy_is_held_fixed_and_its_mode_restored() -> None:
    """D is detached: no gradient reaches the energy; a training-mode energy stays in training mode."""
    space = SequenceSpace(2, 3)
    policy = make_policy("tabular", 2, 3, seed=1)
    energy = TabularEnergy(2, 3, values=np.linspace(-1, 1, space.size))
    energy.train()
    lines = gradient_lines(policy, energy)
    assert energy.values.grad is None and policy.table.grad is None
    assert energy.training
    assert lines.line9.shape == (policy.table.numel(),) and lines.line9.dtype == torch.float64
    assert set(lines.vectors()) == {*EQUAL_LINES, "line9", "eq5_printed", "sum_grad_prob"}
    by_values = gradient_lines(policy, energy.values.detach())  # energies given as a vector
    assert torch.equal(by_values.line9, lines.line9)


# --- eq. (5): corrected vs as printed ------------------------------------------------------------------
@pytest.mark.parametrize("kind", POLICY_KINDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_eq5_as_printed_differs_from_line_9(kind: str, seed: int) -> None:
    """Generic problem: eq. (5) as printed is off by far more than rounding; corrected is exact."""
    space = SequenceSpace(3, 3)
    policy = make_policy(kind, 3, 3, seed)
    energy = make_energy("tabular", space, np.random.default_rng(seed))
    lines = gradient_lines(policy, energy)
    assert lines.discrepancies()["eq5_corrected"] <= AUTOGRAD_TOL * lines.scale()
    gap = float((lines.eq5_printed - lines.line9).norm())
    assert gap >= 1e-3 * float(lines.line9.norm()) and gap >= 1e6 * AUTOGRAD_TOL
    cosine = float(lines.eq5_printed @ lines.line9 / (lines.eq5_printed.norm() * lines.line9.norm()))
    assert cosine < 1 - 1e-6  # not even parallel: no step size fixes it


@given(problem=generator_problems())
def test_eq5_as_printed_is_the_score_form_with_an_extra_conditional_factor(problem) -> None:
    """Exactly what (5) computes: Σ_t Σ p(s_1..s_t)·p(s_t|h_t)·∇log p(s_t|h_t)·Q(s_1..s_t)."""
    policy, energy, w = problem
    enum = enumerate_generator(policy, energy, entropy_weight=w)
    q_values = prefix_q_values(enum)
    surrogate = 0.0
    for t in range(1, policy.horizon + 1):
        log_cond = conditional_log_probs(policy, t)
        weight = (
            prefix_probabilities(enum.probs, policy.n_items, t) * log_cond.detach().exp() * q_values[t - 1]
        )
        surrogate = surrogate + (weight * log_cond).sum()
    params = enum.parameters()
    expected = torch.cat([g.reshape(-1) for g in torch.autograd.grad(surrogate, params)])
    assert torch.allclose(eq5_printed(enum), expected, rtol=0, atol=AUTOGRAD_TOL)


@pytest.mark.parametrize("kind", POLICY_KINDS)
def test_eq5_as_printed_moves_the_generator_on_a_flat_objective(kind: str) -> None:
    """Constant D and w = 0: J is constant, so ∇J = 0; eq. (5) as printed is not 0.

    Here Q ≡ const = k, and (5) printed = k·Σ_t E_h ∇ ½Σ_s p(s|h)² — a push no objective asked
    for, whose direction follows the sign of k (a descent step flattens the conditionals for k > 0
    and sharpens them for k < 0; docs/errata.md, entry 1).
    """
    space = SequenceSpace(3, 2)
    policy = make_policy(kind, 3, 2, seed=7)
    lines = gradient_lines(policy, torch.full((space.size,), 2.5, dtype=torch.float64), entropy_weight=0.0)
    assert float(lines.line9.abs().max()) <= AUTOGRAD_TOL
    assert lines.max_line_discrepancy() <= AUTOGRAD_TOL
    assert float(lines.eq5_printed.abs().max()) >= 1e-3


@pytest.mark.parametrize("kind", POLICY_KINDS)
@given(data=st.data())
def test_eq5_as_printed_is_line_9_over_v_for_uniform_conditionals(kind: str, data: st.DataObject) -> None:
    """With p(s_t | h_t) = 1/V everywhere, (5) printed = (9)/V exactly.

    So the printed form coincides with the true gradient only where that gradient is zero, and
    otherwise ‖(5) − (9)‖ = (1 − 1/V)·‖(9)‖. A uniform GRU/LSTM policy has a zero head.
    """
    policy, energy, w = data.draw(generator_problems(kinds=(kind,)))
    with torch.no_grad():
        if kind == "tabular":
            policy.table.zero_()
        else:
            policy.head.weight.zero_()
            policy.head.bias.zero_()
    V = policy.n_items
    lines = gradient_lines(policy, energy, entropy_weight=w)
    tol = AUTOGRAD_TOL * lines.scale()
    assert torch.allclose(lines.eq5_printed, lines.line9 / V, rtol=0, atol=tol)
    assert lines.max_line_discrepancy() <= tol
    gap = float((lines.eq5_printed - lines.line9).norm())
    assert abs(gap - (1 - 1 / V) * float(lines.line9.norm())) <= tol


def test_eq5_forms_agree_where_the_gradient_vanishes() -> None:
    """Uniform policy, w = 1, constant D: the maximum-entropy point; (9) = (5) printed = 0."""
    space = SequenceSpace(3, 3)
    policy = TabularPolicy(3, 3)  # all-zero table: uniform
    lines = gradient_lines(policy, torch.full((space.size,), -1.0, dtype=torch.float64))
    assert float(lines.line9.abs().max()) <= AUTOGRAD_TOL
    assert float(lines.eq5_printed.abs().max()) <= AUTOGRAD_TOL


# --- E8: the enumerated objective is eq. (4) with ψ = −wH and equals the q-step (20) -------------------
@pytest.mark.parametrize("kind", POLICY_KINDS)
@given(data=st.data())
def test_objective_is_eq4_and_the_q_step_objective(kind: str, data: st.DataObject) -> None:
    """J = ebgan_generator_objective with weights p_G; for w > 0, J = w·(KL(q‖P_{θ/w}) − log Z(θ/w)).

    With w = 1 this is eq. (20): E_q[c + log q] = KL(q‖P_c) − log Z (claim E8).
    """
    space = SequenceSpace(data.draw(st.integers(2, 3)), data.draw(st.integers(1, 3)))
    seed = data.draw(seeds())
    rng = np.random.default_rng(seed)
    features = StateActionFeatures(space, data.draw(st.sampled_from(STATE_KINDS)))
    theta = rng.normal(scale=1.5, size=features.dim)
    w = data.draw(st.sampled_from((1.0, 0.5, 2.0)))
    policy = make_policy(kind, space.n_items, space.horizon, seed)
    energy = LinearEnergy(features, theta=theta)
    lines = gradient_lines(policy, energy, entropy_weight=w)
    J = lines.objective
    tol = EXACT_TOL * max(1.0, abs(J))

    log_q = policy.all_log_probs().detach()
    q = log_q.exp()
    costs = energy(torch.as_tensor(space.all_sequences())).detach()
    via_loss = float(ebgan_generator_objective(costs, log_q, entropy_weight=w, weights=q))
    assert abs(via_loss - J) <= tol
    if w == 1.0:
        assert abs(float(maxent_q_step_objective(costs, log_q, weights=q)) - J) <= tol
    gibbs = GibbsModel(features, theta / w)
    assert abs(w * (gibbs.kl_from(q.numpy()) - gibbs.log_partition) - J) <= tol


# --- bad input ----------------------------------------------------------------------------------------
def test_rejects_float32_policy() -> None:
    policy = GRUPolicy(2, 2, embed_dim=2, hidden_dim=2)  # float32 by default
    with pytest.raises(ValueError, match="float64"):
        gradient_lines(policy, TabularEnergy(2, 2))


def test_rejects_mismatched_or_malformed_energies() -> None:
    policy = TabularPolicy(2, 3)
    with pytest.raises(ValueError, match=r"V=3, T=3 .* V=2, T=3"):
        gradient_lines(policy, TabularEnergy(3, 3))
    with pytest.raises(ValueError, match=r"\(V\^T,\) = \(8,\)"):
        gradient_lines(policy, torch.zeros(7, dtype=torch.float64))
    with pytest.raises(ValueError, match="finite"):
        gradient_lines(policy, torch.full((8,), float("nan"), dtype=torch.float64))
    with pytest.raises(ValueError, match="entropy_weight"):
        gradient_lines(policy, TabularEnergy(2, 3), entropy_weight=float("inf"))


def test_refuses_too_large_spaces() -> None:
    policy = GRUPolicy(10, 6, embed_dim=2, hidden_dim=2, dtype=torch.float64)
    with pytest.raises(EnumerationTooLargeError, match="V=10, T=6"):
        gradient_lines(policy, torch.zeros(1, dtype=torch.float64))
