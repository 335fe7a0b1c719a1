"""The claim checks of gan_equiv.exact.claims on seeded tiny problems, and the margin's effect (E7)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gan_equiv.cli import main as cli_main
from gan_equiv.exact.claims import (
    CHECKS,
    CheckResult,
    check_e1,
    check_e7,
    check_e8,
    claim_registry,
    make_tiny_problem,
    run_all_checks,
)
from gan_equiv.exact.claims_gan import GAN_CHECKS
from gan_equiv.exact.claims_irl import IRL_CHECKS
from gan_equiv.exact.family import FAMILY_CHECKS
from gan_equiv.losses import ebgan_discriminator_loss
from gan_equiv.models.energies import LinearEnergy, TabularEnergy
from maxent_il.gibbs import GibbsModel

STATES = ("last", "time_last", "history")


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("seed", [0, 1])
def test_every_claim_check_passes(state: str, seed: int) -> None:
    problem = make_tiny_problem(3, 3, state=state, seed=seed)
    results = run_all_checks(problem)
    assert [r.name for r in results] == list(CHECKS)
    failed = [(r.name, r.error, r.tol) for r in results if not r.passed]
    assert not failed, failed


@settings(max_examples=15)
@given(
    n_items=st.integers(2, 3),
    horizon=st.integers(1, 3),
    state=st.sampled_from(STATES),
    seed=st.integers(0, 10_000),
)
def test_e7_and_e8_hold_on_random_problems(n_items: int, horizon: int, state: str, seed: int) -> None:
    problem = make_tiny_problem(n_items, horizon, state=state, seed=seed, scale=2.0)
    assert check_e7(problem).passed
    assert check_e8(problem).passed


def test_e7_margin_that_binds_removes_exactly_the_fake_sequences_above_m() -> None:
    """With a binding margin, ∇(3) = E_data f − Σ_{D(S)<m} q(S) f(S): the c-step gradient (21) loses
    exactly the fake mass at or above m."""
    problem = make_tiny_problem(3, 3, state="last", seed=3, scale=2.0)
    seqs = problem.space.all_sequences()
    q = GibbsModel(problem.features, 0.5 * problem.theta).probabilities()
    costs = problem.features.costs(problem.theta, seqs)
    # every sequence fires T features, so adding k to all of θ adds T·k to every energy: min D = 1
    shifted = problem.theta + (1.0 - costs.min()) / problem.space.horizon
    energy = LinearEnergy(problem.features, theta=shifted)
    values = energy(torch.as_tensor(seqs))
    ordered = np.sort(values.detach().numpy())
    half = ordered.size // 2
    margin = float(ordered[half - 1] + ordered[half]) / 2  # no energy sits exactly at the kink m
    loss = ebgan_discriminator_loss(
        values,
        values,
        margin=margin,
        real_weights=torch.as_tensor(problem.data_probs),
        fake_weights=torch.as_tensor(q),
    )
    (grad,) = torch.autograd.grad(loss, energy.theta)
    below = values.detach().numpy() < margin
    expected = problem.data_moments - problem.features.weighted_counts(seqs, q * below)
    np.testing.assert_allclose(grad.numpy(), expected, atol=1e-12)
    c_step = -problem.data_moments + problem.features.weighted_counts(seqs, q)
    dropped = problem.features.weighted_counts(seqs, q * ~below)
    np.testing.assert_allclose(grad.numpy(), -c_step + dropped, atol=1e-12)
    assert np.abs(dropped).max() > 1e-3  # the margin really changes the step


def test_ebgan_d_loss_is_unbounded_below_for_an_unconstrained_energy() -> None:
    """Eq. (3) with a free (tabular) energy: along D(S) = −s on {p_data > q} the loss falls linearly
    with slope Σ (p_data − q) over that set, so min_D (3) = −∞ unless q ≥ p_data everywhere."""
    problem = make_tiny_problem(2, 3, state="last", seed=0)
    q = GibbsModel(problem.features, problem.theta).probabilities()
    seqs = torch.as_tensor(problem.space.all_sequences())
    excess = problem.data_probs > q
    slope = float((problem.data_probs - q)[excess].sum())
    assert slope > 0
    losses = []
    for s in (0.0, 10.0, 100.0, 1000.0):
        energy = TabularEnergy(2, 3, values=np.where(excess, -s, 0.0))
        v = energy(seqs).detach()
        losses.append(
            float(
                ebgan_discriminator_loss(
                    v,
                    v,
                    margin=1.0,
                    real_weights=torch.as_tensor(problem.data_probs),
                    fake_weights=torch.as_tensor(q),
                )
            )
        )
    diffs = np.diff(losses) / np.diff([0.0, 10.0, 100.0, 1000.0])
    np.testing.assert_allclose(diffs, -slope, rtol=1e-10)


def test_verify_cli_prints_table_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["verify", "--seeds", "0", "--states", "last", "--checks", "E2", "E4", "E7", "E12"])
    out = capsys.readouterr().out
    assert code == 0
    assert "4 passed, 0 failed" in out
    for name in ("E2", "E4", "E7", "E12"):
        assert f" {name} " in out


def test_run_all_checks_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown check"):
        run_all_checks(make_tiny_problem(2, 2), names=["E99"])


def test_registry_orders_claims_by_number_and_grows_by_one_argument() -> None:
    """CHECKS is E1 … E19 in order, each keyed by its function name; a further family of checks
    joins as one more argument, and names that are not check_eN or repeat a claim are refused."""
    assert list(CHECKS) == [f"E{n}" for n in range(1, 20)]
    assert all(check.__name__ == f"check_e{name[1:]}" for name, check in CHECKS.items())
    assert set(CHECKS.values()) == {*IRL_CHECKS, *GAN_CHECKS, *FAMILY_CHECKS}

    def check_e20(problem) -> CheckResult:
        return CheckResult("E20", "a later claim", "-", 0.0, 0.0, 0.0, 0.0)

    grown = claim_registry(check_e20, *FAMILY_CHECKS, *GAN_CHECKS, *IRL_CHECKS)
    assert list(grown) == [*CHECKS, "E20"]
    with pytest.raises(ValueError, match="registered twice"):
        claim_registry(check_e1, check_e1)
    with pytest.raises(ValueError, match="named check_eN"):
        claim_registry(lambda problem: None)
