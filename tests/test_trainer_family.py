"""The trainer across the GAN ⇄ IRL family: every objective × generator estimator trains and logs how
its discriminator separates data from p_G; each D step lowers its own loss; GAN-GCL's log Z is
learned and checkpointed; the analytic-entropy generator step has the exact gradient as its mean;
SeqGAN's schedule takes the steps it should; a resumed run continues bit for bit."""

from __future__ import annotations

import math
import typing
from pathlib import Path

import pytest
import torch

from gan_equiv.cli import main as cli_main
from gan_equiv.exact.q_values import exact_policy_gradient
from gan_equiv.models.builders import ConstantEnergy
from gan_equiv.models.discriminators import GANGCLDiscriminator, SeqGANClassifier
from gan_equiv.models.energies import TabularEnergy
from gan_equiv.models.policies import TabularPolicy
from gan_equiv.train.checkpoint import load_checkpoint
from gan_equiv.train.config import (
    DSchedule,
    EstimatorName,
    ObjectiveName,
    TrainConfig,
    apply_overrides,
    tiny_exact_preset,
)
from gan_equiv.train.discriminator_schedule import run_discriminator_steps, seqgan_schedule_steps
from gan_equiv.train.experiment import prepare_run
from gan_equiv.train.objectives import OBJECTIVES
from gan_equiv.train.trainer import IMPLEMENTED, Trainer, check_trainable

ESTIMATORS = ("rollout", "analytic_entropy")
CNN = {"energy.kind": "cnn", "energy.embed_dim": 4, "energy.filter_sizes": "1,2", "energy.num_filters": "3,3"}


def family_config(tmp_path: Path, **overrides: object) -> TrainConfig:
    """V=3, T=3, small networks, a few units of each phase (well under a second on a CPU)."""
    base: dict[str, object] = {
        "n_items": 3,
        "horizon": 3,
        "n_train": 200,
        "batch_size": 16,
        "pretrain_g_epochs": 1,
        "pretrain_d_steps": 2,
        "adversarial_rounds": 3,
        "d_steps": 2,
        "n_rollouts": 3,
        "log_every": 1,
        "eval_every": 1,
        "checkpoint_every": 0,
        "out_dir": str(tmp_path / "run"),
        "generator.hidden_dim": 8,
        "generator.embed_dim": 4,
        "d_optim.lr": 1e-2,
    }
    base.update(overrides)
    return apply_overrides(tiny_exact_preset(), base)


def trainer_for(config: TrainConfig, **kwargs: object) -> Trainer:
    setup = prepare_run(config)
    return Trainer(config, setup.train_data, evaluator=setup.evaluator, **kwargs)


def state(trainer: Trainer) -> list[torch.Tensor]:
    """Every trained tensor: the policy's and the discriminator's (GAN-GCL's log Z included)."""
    modules = [trainer.policy, trainer.discriminator]
    return [p.detach().clone() for m in modules for p in m.parameters()]


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_each_objective_and_estimator_trains_and_logs_separation(
    tmp_path: Path, objective: str, estimator: str
) -> None:
    config = family_config(tmp_path, objective=objective, generator_estimator=estimator, **CNN)
    trainer = trainer_for(config)
    trainer.run("mle")
    trainer.run("d_pretrain")
    before = state(trainer)
    rows = trainer.run("adversarial")
    assert [r["unit"] for r in rows] == [1, 2, 3]
    for row in rows:
        for key in ("g_surrogate", "q_mean", "d_loss", "d_gap", "kl_data_model"):
            assert math.isfinite(row[key]), key
        assert 0.0 <= row["d_acc"] <= 1.0
        assert row["d_steps_taken"] == config.d_steps
        if estimator == "analytic_entropy":  # mean per-step entropy of p_G(· | h_t): within [0, log V]
            assert 0.0 <= row["step_entropy"] <= math.log(config.n_items) + 1e-6
    after = state(trainer)
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    kinds = {"ebgan": type(trainer.energy), "seqgan": SeqGANClassifier, "gan_gcl": GANGCLDiscriminator}
    assert isinstance(trainer.discriminator, kinds[objective])
    if objective == "seqgan":  # the built CNN gets a signed head (a softplus caps D(S) at ½)
        assert trainer.energy.nonnegative is False


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_constant_reward_is_a_control_for_every_objective(tmp_path: Path, objective: str) -> None:
    """With constant_reward the generator's step does not read the discriminator: two runs whose
    discriminators differ take the same generator step."""
    config = family_config(tmp_path, objective=objective, constant_reward=True, **CNN)
    one, two = trainer_for(config), trainer_for(config)
    assert isinstance(one.reward_energy, ConstantEnergy)
    with torch.no_grad():
        for p in two.discriminator.parameters():
            p.add_(1.0)
    one.generator_step()
    two.generator_step()
    for a, b in zip(one.policy.parameters(), two.policy.parameters(), strict=True):
        assert torch.equal(a, b)
    plain = trainer_for(family_config(tmp_path, objective=objective, **CNN))
    assert not isinstance(plain.reward_energy, ConstantEnergy)


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_the_d_step_of_each_objective_lowers_its_own_loss(tmp_path: Path, objective: str) -> None:
    """Five steps of the trainer's D engine on one fixed (real, fake) pair lower the objective's loss
    on that pair (no dropout: the CNN's dropout is 0 here)."""
    config = family_config(tmp_path, objective=objective, **CNN, **{"energy.dropout": 0.0})
    trainer = trainer_for(config)
    gen = torch.Generator().manual_seed(1)
    real = trainer.train_data[:16]
    fake = trainer.policy.sample(16, generator=gen)

    def loss() -> float:
        with torch.no_grad():
            value, _ = trainer.objective.discriminator_loss(trainer.discriminator, real, fake, trainer.policy)
        return float(value)

    start = loss()
    stats = run_discriminator_steps(
        trainer.discriminator,
        trainer.d_opt,
        real.repeat(5, 1),
        fake.repeat(5, 1),
        loss=lambda r, f, *_: trainer.objective.discriminator_loss(
            trainer.discriminator, r, f, trainer.policy
        ),
        n_steps=5,
        batch_size=16,
        shuffle=False,
    )
    assert stats.loss[0].item() == pytest.approx(start, rel=1e-5)  # the first step saw this pair
    assert loss() < start
    assert bool((stats.loss[1:] < stats.loss[:1]).all())


def test_gan_gcl_log_z_starts_centred_is_learned_and_checkpointed(tmp_path: Path) -> None:
    """log Z starts where the logit ℓ = −c − log Z − log p_G averages 0 over fresh p_G samples
    (D ≈ ½; at 0 it would be off by ≈ T·log V nats), is in the D optimizer, moves, and is saved."""
    config = family_config(tmp_path, objective="gan_gcl", **CNN)
    trainer = trainer_for(config)
    trainer.run("mle")
    disc = trainer.discriminator
    seqs = trainer.policy.sample(256, generator=torch.Generator().manual_seed(config.seed + 3))
    with torch.no_grad():
        disc.eval()
        logits = disc(seqs, trainer.policy.log_prob(seqs))
    assert abs(float(logits.mean())) < 1e-5
    assert float(disc.log_z.detach()) > 1.0  # ≈ −log p_G of a sample (T·log 3 ≈ 3.3 nats here)
    assert isinstance(disc, GANGCLDiscriminator)
    assert any(p is disc.log_z for group in trainer.d_opt.param_groups for p in group["params"])
    start = float(disc.log_z.detach())
    rows = trainer.run("d_pretrain")
    assert float(disc.log_z.detach()) != start and rows[-1]["log_z"] != start
    path = trainer.save(tmp_path / "gcl.pt")
    saved = load_checkpoint(path).models["energy"]
    assert float(saved["log_z"]) == float(disc.log_z.detach())
    resumed = trainer_for(config)
    resumed.resume(path)
    assert torch.equal(resumed.discriminator.log_z, disc.log_z)


@pytest.mark.parametrize(
    "overrides",
    [
        {"objective": "ebgan"},
        {"objective": "seqgan", "generator_estimator": "analytic_entropy"},
        {"objective": "gan_gcl", "d_schedule": "seqgan", "d_pool": 24, "d_repeats": 2, "d_epochs": 1},
    ],
    ids=["ebgan", "seqgan", "gan_gcl"],
)
def test_resume_continues_bit_for_bit_for_each_objective(tmp_path: Path, overrides: dict) -> None:
    config = family_config(tmp_path, **CNN, **overrides)
    straight = trainer_for(config)
    straight.fit()
    first = trainer_for(config)
    first.run("mle")
    first.run("d_pretrain")
    first.run("adversarial", 1)
    ckpt = first.save(tmp_path / "mid.pt")
    resumed = trainer_for(config)
    resumed.resume(ckpt)
    assert resumed.progress.rounds == 1
    resumed.fit()
    for a, b in zip(state(straight), state(resumed), strict=True):
        assert torch.equal(a, b)
    moments = [s["exp_avg"] for s in resumed.d_opt.state.values()]
    for a, b in zip([s["exp_avg"] for s in straight.d_opt.state.values()], moments, strict=True):
        assert torch.equal(a, b)


def test_seqgan_schedule_takes_its_pools_epochs_and_steps(tmp_path: Path) -> None:
    """Per round: d_repeats × (d_pool fresh samples, d_epochs·⌈2·d_pool/B⌉ steps of B/2 real + B/2
    generated rows); a D-pretraining unit is one pool. Counted on the optimizer and the sampler."""
    pool, repeats, epochs, B = 50, 2, 3, 16
    config = family_config(
        tmp_path, d_schedule="seqgan", d_pool=pool, d_repeats=repeats, d_epochs=epochs, batch_size=B,
        pretrain_d_steps=1, adversarial_rounds=2, objective="seqgan", **CNN,
    )  # fmt: skip
    per_pool = seqgan_schedule_steps(d_pool=pool, d_epochs=epochs, batch_size=B)
    assert per_pool == epochs * math.ceil(2 * pool / B) == 21
    trainer = trainer_for(config)
    trainer.run("mle")
    steps, draws, widths = [0], [], set()
    trainer.d_opt.register_step_post_hook(lambda *_: steps.__setitem__(0, steps[0] + 1))
    sample = trainer.policy.sample
    trainer.policy.sample = lambda n, **kw: draws.append(n) or sample(n, **kw)  # type: ignore[method-assign]
    trainer.energy.register_forward_hook(lambda m, args, out: widths.add(args[0].shape[0]))
    rows = trainer.run("d_pretrain")
    assert steps[0] == per_pool and draws == [pool] and rows[-1]["d_steps_taken"] == per_pool
    draws.clear()
    rows = trainer.run("adversarial")
    assert steps[0] == per_pool * (1 + repeats * 2)
    assert draws.count(pool) == repeats * 2  # fresh pools; the other draws are the generator's batches
    assert rows[-1]["d_steps_taken"] == repeats * per_pool
    assert B in widths  # each D forward: B/2 real + B/2 generated rows, concatenated


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_analytic_entropy_step_has_the_exact_gradient_as_its_mean(tmp_path: Path, objective: str) -> None:
    """The trainer's analytic-entropy generator gradient (rollouts of the reward energy alone, the
    entropy part per step, leave-one-out baseline), averaged over R independent steps, equals the
    exact ∇E_G[E_r + w·log p_G] within 5 standard errors per coordinate, and is told apart from
    the gradient without the entropy term (float64 tabular generator and energy, V=3, T=2)."""
    V, T, R = 3, 2, 120
    gen = torch.Generator().manual_seed(4)
    policy = TabularPolicy(V, T, init_scale=1.0, generator=gen)
    energy = TabularEnergy(V, T, values=torch.randn(V**T, generator=gen, dtype=torch.float64))
    config = family_config(
        tmp_path, n_items=V, horizon=T, objective=objective, generator_estimator="analytic_entropy",
        batch_size=32, n_rollouts=16, baseline=True, entropy_weight=0.7, **{"g_optim.grad_clip": 0.0},
    )  # fmt: skip
    trainer = Trainer(config, torch.zeros(4, T, dtype=torch.long), policy=policy, energy=energy)
    trainer.g_opt.step = lambda *a, **k: None  # type: ignore[method-assign]  # the policy stays put
    grads = []
    for _ in range(R):
        trainer.generator_step()
        grads.append(policy.table.grad.detach().flatten().clone())
    draws = torch.stack(grads)  # (R, parameters)
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(R)
    w = trainer.objective.entropy_weight(config.entropy_weight)
    exact = exact_policy_gradient(policy, trainer.reward_energy, entropy_weight=w)
    assert bool(((mean - exact).abs() <= 5 * se + 1e-12).all()), (mean, exact, se)
    # the test can fail: a wrong target (no entropy term; for SeqGAN's w = 0, no gradient) is far out
    wrong = exact_policy_gradient(policy, trainer.reward_energy, entropy_weight=0.0) if w > 0 else 0 * exact
    assert bool(((mean - wrong).abs() > 5 * se).any())


def test_cli_trains_every_objective_estimator_and_schedule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", "--preset", "tiny_exact", "--n_items", "3", "--horizon", "3", "--n_train", "100"]
    args += ["--pretrain_g_epochs", "1", "--pretrain_d_steps", "1", "--adversarial_rounds", "2"]
    args += [
        "--n_rollouts",
        "2",
        "--generator.hidden_dim",
        "4",
        "--batch_size",
        "16",
        "--checkpoint_every",
        "0",
    ]
    args += ["--d_schedule", "seqgan", "--d_pool", "16", "--d_repeats", "1", "--d_epochs", "1"]
    for objective in OBJECTIVES:
        out = ["--objective", objective, "--generator-estimator", "analytic_entropy"]
        assert cli_main([*args, *out, "--out_dir", str(tmp_path / objective)]) == 0
        text = capsys.readouterr().out
        assert "d_acc=" in text and "d_gap=" in text and "kl_data_model=" in text


def test_gan_gcl_generator_step_is_eb_seqgans_at_w_1(tmp_path: Path) -> None:
    """Claim E18 through the trainer: with log Z = 0, GAN-GCL's generator return c + log Z + log p_G is
    EB-SeqGAN's D + w·log p_G at w = 1 (whatever entropy_weight says), so one generator step of each,
    on the same energy and random streams, gives the same policy bit for bit."""
    policies = []
    for objective, w in (("ebgan", 1.0), ("gan_gcl", 0.3)):
        config = family_config(tmp_path / objective, objective=objective, entropy_weight=w, **CNN)
        trainer = trainer_for(config)
        assert trainer.objective.entropy_weight(config.entropy_weight) == 1.0
        if objective == "gan_gcl":  # the trainer starts log Z centred; the identity holds at 0
            with torch.no_grad():
                trainer.discriminator.log_z.zero_()
        trainer.generator_step()
        policies.append([p.detach().clone() for p in trainer.policy.parameters()])
    for a, b in zip(*policies, strict=True):
        assert torch.equal(a, b)


def test_every_accepted_setting_is_trainable_and_others_are_refused(tmp_path: Path) -> None:
    """check_trainable (the CLI's pre-flight) accepts every value the config schema accepts and, for
    any other (a config altered past its own validation), names the implemented ones."""
    schema = {"objective": ObjectiveName, "generator_estimator": EstimatorName, "d_schedule": DSchedule}
    assert {k: typing.get_args(v) for k, v in schema.items()} == IMPLEMENTED
    for key, values in IMPLEMENTED.items():
        for value in values:
            check_trainable(family_config(tmp_path, **{key: value}))
    config = family_config(tmp_path)
    object.__setattr__(config, "objective", "wgan")  # bypasses TrainConfig's own check
    with pytest.raises(
        ValueError, match=r"objective = 'wgan' is not implemented.*'ebgan', 'seqgan', 'gan_gcl'"
    ):
        check_trainable(config)
