"""The three objectives behind one interface (gan_equiv.train.objectives) and their discriminators:
values against the losses, signs (a discriminator step lowers its loss; the generator's reward points
the right way), entropy weights, and input errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import EXACT_TOL

from gan_equiv.exact.q_values import exact_policy_gradient
from gan_equiv.losses import (
    ebgan_discriminator_loss,
    gan_gcl_discriminator_loss,
    gan_gcl_generator_loss,
    policy_gradient_surrogate,
    seqgan_discriminator_loss,
)
from gan_equiv.models.discriminators import (
    ClassifierRewardEnergy,
    GANGCLDiscriminator,
    GCLRewardEnergy,
    SeqGANClassifier,
)
from gan_equiv.models.energies import AutoencoderEnergy, CNNEnergy, TabularEnergy
from gan_equiv.models.policies import GRUPolicy, TabularPolicy
from gan_equiv.train.entropy_gradient import analytic_entropy_surrogate
from gan_equiv.train.objectives import (
    OBJECTIVES,
    EBGANObjective,
    GANGCLObjective,
    SeqGANObjective,
    make_objective,
    separation_stats,
)
from gan_equiv.train.rollouts import mc_q_values
from maxent_il.space import SequenceSpace

V, T = 3, 2


def _setup(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    policy = TabularPolicy(V, T, init_scale=1.0, generator=gen)
    energy = TabularEnergy(V, T, values=torch.randn(V**T, generator=gen, dtype=torch.float64))
    real = torch.randint(0, V, (8, T), generator=gen)
    fake = policy.sample(6, generator=gen)
    return policy, energy, real, fake


def _step_lowers_the_loss(objective, disc, real, fake, policy) -> None:
    loss, stats = objective.discriminator_loss(disc, real, fake, policy)
    assert float(stats["d_loss"]) == pytest.approx(float(loss.detach()), abs=EXACT_TOL)
    assert all(not v.requires_grad for v in stats.values())
    opt = torch.optim.SGD(disc.parameters(), lr=1e-2)
    opt.zero_grad()
    loss.backward()
    assert all(p.grad is None for p in policy.parameters())  # the generator is not trained here
    opt.step()
    after, _ = objective.discriminator_loss(disc, real, fake, policy)
    assert float(after.detach()) < float(loss.detach())


def _exact_expectation(policy, values) -> float:
    seqs = torch.as_tensor(SequenceSpace(V, T).all_sequences())
    with torch.no_grad():
        return float((policy.log_prob(seqs).exp() * values(seqs)).sum())


def _generator_step(policy, objective, disc, config_w: float, lr: float = 1e-2) -> None:
    """One exact gradient step on J = E_G[reward energy + w·log p_G] (eq. 14, Q from the objective)."""
    grad = exact_policy_gradient(
        policy, objective.reward_energy(disc), entropy_weight=objective.entropy_weight(config_w)
    )
    with torch.no_grad():
        policy.table -= lr * grad.view_as(policy.table)


def test_make_objective_names_and_errors() -> None:
    assert OBJECTIVES == ("ebgan", "seqgan", "gan_gcl")
    assert isinstance(make_objective("ebgan", margin=2.0), EBGANObjective)
    assert isinstance(make_objective("seqgan"), SeqGANObjective)
    assert isinstance(make_objective("gan_gcl"), GANGCLObjective)
    assert [make_objective(n).name for n in OBJECTIVES] == list(OBJECTIVES)
    with pytest.raises(ValueError, match="unknown objective 'wgan'; choose one of 'ebgan'"):
        make_objective("wgan")
    with pytest.raises(ValueError, match="positive finite"):
        make_objective("ebgan", margin=0.0)
    with pytest.raises(ValueError, match="init_log_z"):
        make_objective("gan_gcl", init_log_z=float("inf"))


def test_entropy_weights() -> None:
    assert make_objective("ebgan").entropy_weight(0.3) == 0.3  # the paper's w, configurable
    assert make_objective("seqgan").entropy_weight(0.3) == 0.0  # SeqGAN: no entropy term
    assert make_objective("gan_gcl").entropy_weight(0.3) == 1.0  # GAN-GCL: (4) with w = 1


def test_ebgan_objective_is_loss_3_and_steps_down() -> None:
    policy, energy, real, fake = _setup()
    objective = make_objective("ebgan", margin=1.5)
    disc = objective.make_discriminator(energy)
    assert disc is energy and objective.reward_energy(disc) is energy
    loss, stats = objective.discriminator_loss(disc, real, fake, policy)
    expected = ebgan_discriminator_loss(energy(real), energy(fake), margin=1.5)
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), abs=EXACT_TOL)
    assert set(stats) == {"d_loss", "energy_real", "energy_fake", "fake_below_margin", "d_acc", "d_gap"}
    real_e, fake_e = energy(real).detach(), energy(fake).detach()
    assert float(stats["d_gap"]) == pytest.approx(float(fake_e.mean() - real_e.mean()), abs=1e-6)
    mid = 0.5 * (real_e.mean() + fake_e.mean())  # d_acc: each side of the midpoint of the means
    acc = 0.5 * ((real_e < mid).double().mean() + (fake_e >= mid).double().mean())
    assert float(stats["d_acc"]) == pytest.approx(float(acc), abs=1e-6)
    _step_lowers_the_loss(objective, disc, real, fake, policy)


def test_seqgan_objective_is_the_log_loss_and_steps_down() -> None:
    policy, energy, real, fake = _setup(1)
    objective = make_objective("seqgan")
    disc = objective.make_discriminator(energy)
    assert isinstance(disc, SeqGANClassifier)
    loss, stats = objective.discriminator_loss(disc, real, fake, policy)
    d_real, d_fake = torch.sigmoid(-energy(real)), torch.sigmoid(-energy(fake))  # ℓ = −E
    hand = -(torch.log(d_real).mean() + torch.log1p(-d_fake).mean())
    assert float(loss.detach()) == pytest.approx(float(hand.detach()), abs=1e-12)
    assert float(stats["d_real_prob"]) == pytest.approx(float(d_real.detach().mean()), abs=EXACT_TOL)
    _step_lowers_the_loss(objective, disc, real, fake, policy)


def test_seqgan_generator_reward_direction() -> None:
    """The reward energy is −D(S); a generator step on it raises E_G D(S) (SeqGAN maximizes it)."""
    policy, energy, _, _ = _setup(2)
    objective = make_objective("seqgan")
    disc = objective.make_discriminator(energy)
    reward = objective.reward_energy(disc)
    assert isinstance(reward, ClassifierRewardEnergy)
    seqs = torch.as_tensor(SequenceSpace(V, T).all_sequences())
    assert torch.allclose(reward(seqs), -disc.prob_real(seqs).detach(), atol=EXACT_TOL)
    assert not reward(seqs).requires_grad
    before = _exact_expectation(policy, disc.prob_real)
    _generator_step(policy, objective, disc, config_w=1.0)
    assert _exact_expectation(policy, disc.prob_real) > before


def test_gan_gcl_objective_uses_log_p_g_and_steps_down() -> None:
    policy, energy, real, fake = _setup(3)
    objective = make_objective("gan_gcl", init_log_z=0.4)
    disc = objective.make_discriminator(energy)
    assert isinstance(disc, GANGCLDiscriminator) and float(disc.log_z.detach()) == pytest.approx(0.4)
    loss, stats = objective.discriminator_loss(disc, real, fake, policy)
    with torch.no_grad():
        lp_r, lp_f = policy.log_prob(real), policy.log_prob(fake)
    expected = gan_gcl_discriminator_loss(
        energy(real), energy(fake), disc.log_z, real_log_p_g=lp_r, fake_log_p_g=lp_f
    )
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), abs=EXACT_TOL)
    assert float(stats["cost_real"]) == pytest.approx(float(energy(real).detach().mean()), abs=1e-12)
    assert float(stats["log_z"]) == pytest.approx(0.4)
    (g_log_z,) = torch.autograd.grad(loss, disc.log_z, retain_graph=True)
    assert float(g_log_z) != 0.0  # log Z is learned
    _step_lowers_the_loss(objective, disc, real, fake, policy)


def test_gan_gcl_generator_reward_is_the_generator_loss() -> None:
    """Q's return c + log Z + log p_G has mean E_G[log(1 − D) − log D]; a step lowers it."""
    policy, energy, _, _ = _setup(4)
    objective = make_objective("gan_gcl", init_log_z=-0.3)
    disc = objective.make_discriminator(energy)
    reward = objective.reward_energy(disc)
    assert isinstance(reward, GCLRewardEnergy)
    seqs = torch.as_tensor(SequenceSpace(V, T).all_sequences())

    def generator_loss() -> float:
        with torch.no_grad():
            log_p = policy.log_prob(seqs)
            loss = gan_gcl_generator_loss(energy(seqs), log_p, disc.log_z, weights=log_p.exp())
            logit = disc(seqs, log_p)
            by_d = (
                log_p.exp() * (torch.nn.functional.logsigmoid(-logit) - torch.nn.functional.logsigmoid(logit))
            ).sum()
        assert float(loss) == pytest.approx(float(by_d), abs=1e-12)
        return float(loss)

    value = _exact_expectation(policy, lambda s: reward(s) + policy.log_prob(s))
    before = generator_loss()
    assert value == pytest.approx(before, abs=1e-12)
    _generator_step(policy, objective, disc, config_w=0.0)  # w is fixed at 1 whatever the config
    assert generator_loss() < before


def test_ebgan_generator_step_lowers_eq_4() -> None:
    policy, energy, _, _ = _setup(5)
    objective = make_objective("ebgan", margin=3.0)
    w = 0.5
    before = _exact_expectation(policy, lambda s: energy(s) + w * policy.log_prob(s))
    _generator_step(policy, objective, energy, config_w=w)
    assert _exact_expectation(policy, lambda s: energy(s) + w * policy.log_prob(s)) < before


def test_discriminators_reject_wrong_bodies_and_types() -> None:
    policy, energy, real, fake = _setup()
    with pytest.raises(ValueError, match="non-negative"):
        SeqGANClassifier(CNNEnergy(V, T, embed_dim=4, filter_sizes=(1, 2), num_filters=(2, 2)))
    with pytest.raises(ValueError, match="non-negative"):
        SeqGANClassifier(AutoencoderEnergy(V, T, embed_dim=4, code_dim=3))
    SeqGANClassifier(CNNEnergy(V, T, embed_dim=4, filter_sizes=(1, 2), num_filters=(2, 2), nonnegative=False))
    with pytest.raises(ValueError, match="must be a SequenceEnergy"):
        GANGCLDiscriminator(torch.nn.Linear(2, 1))
    with pytest.raises(ValueError, match="needs a SeqGANClassifier"):
        make_objective("seqgan").discriminator_loss(energy, real, fake, policy)
    with pytest.raises(ValueError, match="needs a GANGCLDiscriminator"):
        make_objective("gan_gcl").reward_energy(energy)
    with pytest.raises(ValueError, match=r"log_p_g must have shape \(N,\)"):
        GANGCLDiscriminator(energy)(real, torch.zeros(3))


def test_seqgan_loss_is_stable_at_saturated_logits() -> None:
    logits = torch.tensor([200.0, -200.0], dtype=torch.float64)
    loss = seqgan_discriminator_loss(logits[:1], logits[1:])
    assert float(loss) == pytest.approx(0.0, abs=1e-80)
    wrong = seqgan_discriminator_loss(logits[1:], logits[:1])
    assert np.isfinite(float(wrong)) and float(wrong) == pytest.approx(400.0)


@pytest.mark.parametrize("estimator", ["rollout", "analytic_entropy"])
@pytest.mark.parametrize("name", OBJECTIVES)
def test_each_objective_trains_a_few_rounds_end_to_end(name: str, estimator: str) -> None:
    """The calls a trainer makes (float32 GRU, CNN body with dropout): finite losses, parameters move."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    n_items, horizon = 5, 4
    policy = GRUPolicy(n_items, horizon, embed_dim=8, hidden_dim=8)
    body = CNNEnergy(
        n_items,
        horizon,
        embed_dim=8,
        filter_sizes=(1, 2, 3),
        num_filters=(4, 4, 4),
        nonnegative=name == "ebgan",
    )
    objective = make_objective(name, margin=2.0)
    disc = objective.make_discriminator(body)
    g_opt = torch.optim.Adam(policy.parameters(), lr=1e-2)
    d_opt = torch.optim.Adam(disc.parameters(), lr=1e-2)
    data = torch.randint(0, n_items, (32, horizon), generator=gen)
    start = [p.detach().clone() for p in policy.parameters()]
    w = objective.entropy_weight(0.5)
    for _ in range(3):  # adversarial rounds
        seqs = policy.sample(8, generator=gen)
        reward = objective.reward_energy(disc).eval()
        if estimator == "rollout":
            q = mc_q_values(
                policy, reward, seqs, n_rollouts=2, entropy_weight=w, mode="reward_to_go", generator=gen
            )
            g_loss = policy_gradient_surrogate(policy.step_log_probs(seqs), (q - q.mean(0)).float())
        else:
            q = mc_q_values(policy, reward, seqs, n_rollouts=2, entropy_weight=0.0, generator=gen)
            g_loss = analytic_entropy_surrogate(policy, seqs, q, entropy_weight=w, baseline="leave_one_out")
        g_opt.zero_grad()
        g_loss.backward()
        g_opt.step()
        disc.train()
        d_loss, stats = objective.discriminator_loss(disc, data[:8], policy.sample(8, generator=gen), policy)
        d_opt.zero_grad()
        d_loss.backward()
        d_opt.step()
        assert torch.isfinite(g_loss) and torch.isfinite(d_loss)
        assert all(torch.isfinite(v).all() for v in stats.values())
    assert any(not torch.equal(a, b.detach()) for a, b in zip(start, policy.parameters(), strict=True))


def test_separation_stats_count_each_side_of_the_threshold() -> None:
    real, fake = torch.tensor([2.0, 0.5, -1.0, 3.0]), torch.tensor([-2.0, 0.5, 1.0])
    stats = separation_stats(real, fake, threshold=0.5)
    # real above 0.5: 2 of 4; fake at or below 0.5: 2 of 3
    assert float(stats["d_acc"]) == pytest.approx(0.5 * (2 / 4 + 2 / 3))
    assert float(stats["d_gap"]) == pytest.approx(1.125 - (-0.5 / 3))
    perfect = separation_stats(torch.tensor([1.0, 2.0]), torch.tensor([-1.0]), threshold=0.0)
    assert (float(perfect["d_acc"]), float(perfect["d_gap"])) == (1.0, 2.5)
    policy, energy, real_s, fake_s = _setup(6)
    for name in OBJECTIVES:  # every objective reports both, in [0, 1] and finite
        objective = make_objective(name, margin=1.0)
        _, st = objective.discriminator_loss(objective.make_discriminator(energy), real_s, fake_s, policy)
        assert 0.0 <= float(st["d_acc"]) <= 1.0 and np.isfinite(float(st["d_gap"]))


def test_classifier_separation_uses_d_s_above_one_half() -> None:
    policy, energy, real, fake = _setup(7)
    objective = make_objective("seqgan")
    disc = objective.make_discriminator(energy)
    _, stats = objective.discriminator_loss(disc, real, fake, policy)
    with torch.no_grad():
        d_real, d_fake = disc.prob_real(real), disc.prob_real(fake)
        acc = 0.5 * ((d_real > 0.5).double().mean() + (d_fake <= 0.5).double().mean())
        gap = disc(real).mean() - disc(fake).mean()  # in logits ℓ
    assert float(stats["d_acc"]) == pytest.approx(float(acc))
    assert float(stats["d_gap"]) == pytest.approx(float(gap), abs=1e-6)


def test_gan_gcl_takes_log_p_g_precomputed_for_a_pool() -> None:
    """The loss with log p_G handed in equals the loss that computes it; a wrong shape is refused."""
    policy, energy, real, fake = _setup(8)
    objective = make_objective("gan_gcl", init_log_z=0.2)
    disc = objective.make_discriminator(energy)
    assert objective.needs_log_p_g and not make_objective("ebgan").needs_log_p_g
    computed, _ = objective.discriminator_loss(disc, real, fake, policy)
    with torch.no_grad():
        given = (policy.log_prob(real), policy.log_prob(fake))
    handed, _ = objective.discriminator_loss(disc, real, fake, policy, log_p_g=given)
    assert float(handed.detach()) == pytest.approx(float(computed.detach()), abs=1e-12)
    shifted, _ = objective.discriminator_loss(disc, real, fake, policy, log_p_g=(given[0] + 1, given[1]))
    assert float(shifted.detach()) != pytest.approx(float(computed.detach()), abs=1e-6)  # it is read
    with pytest.raises(ValueError, match=r"log_p_g must be \(N,\), \(M,\) = \(8,\), \(6,\)"):
        objective.discriminator_loss(disc, real, fake, policy, log_p_g=(given[0][:3], given[1]))
