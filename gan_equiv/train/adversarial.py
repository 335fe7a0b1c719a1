"""The trainer's adversarial steps for every member of the family (docs/family.md, "Training").

- :func:`discriminator_units`: the discriminator's share of a round (or of D pretraining) under the
  configured schedule, for any objective: it minimizes ``objective.discriminator_loss`` through
  :func:`~gan_equiv.train.discriminator_schedule.run_discriminator_steps`, on pools of real rows
  and of fresh p_G samples drawn with the float32 sampler (the float64 path's items), on the device.
- :func:`generator_step`: one policy-gradient step of eq. (14) on ``objective.reward_energy(disc)``
  with weight ``objective.entropy_weight(w)``; the generator *minimizes* E_G[reward energy + w·log p_G].
  ``generator_estimator = "rollout"``: Q̂ from K rollouts of the full return (or reward-to-go);
  ``"analytic_entropy"``: Q̂^D from rollouts of the reward energy alone (weight 0) and the entropy
  part exactly per visited prefix (:mod:`gan_equiv.train.entropy_gradient`).

Both take the :class:`~gan_equiv.train.trainer.Trainer` and use its models, optimizers, random
streams (``sample_gen`` for p_G samples and rollouts, ``data_gen`` for data rows and minibatch
order) and its :class:`~gan_equiv.train.batch_split.BatchSplit` (identity in one process).
Shapes: N sequences, T steps, V items.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gan_equiv.losses import policy_gradient_surrogate
from gan_equiv.models.policies import DRAW_BLOCK, SequencePolicy
from gan_equiv.train.discriminator_schedule import (
    DiscriminatorStepStats,
    epoch_indices,
    run_discriminator_steps,
    seqgan_schedule_steps,
)
from gan_equiv.train.entropy_gradient import analytic_entropy_returns, analytic_entropy_surrogate, step_terms
from gan_equiv.train.optim import clip_gradients, step_modes
from gan_equiv.train.rollouts import mc_q_values

#: Logit elements (rows × V) per chunk when scoring a pool's log p_G (bounds the memory of one pass).
LOG_PROB_CHUNK_ELEMENTS = 2**24


@torch.no_grad()
def pool_log_probs(policy: SequencePolicy, sequences: Tensor) -> Tensor:
    """log p_G(S) = Σ_t log p_G(s_t | h_t) of every row (N, T) → (N,), teacher-forced in chunks of
    ≈ LOG_PROB_CHUNK_ELEMENTS / (T·V) sequences (GAN-GCL's discriminator reads it; p_G is fixed
    during discriminator steps, so a pool is scored once)."""
    rows = max(1, LOG_PROB_CHUNK_ELEMENTS // (policy.horizon * policy.n_items))
    return torch.cat([policy.log_prob(chunk) for chunk in sequences.split(rows)])


#: Fresh p_G samples that set GAN-GCL's starting log Z (:func:`centered_log_z`).
LOG_Z_INIT_SAMPLES = 256


@torch.no_grad()
def centered_log_z(disc: Any, policy: SequencePolicy, *, seed: int, n: int = LOG_Z_INIT_SAMPLES) -> Tensor:
    """GAN-GCL's starting log Z: the mean over n fresh p_G samples of −c(S) − log p_G(S), 0-d.

    With it the discriminator's logit ℓ = −c − log Z − log p_G averages 0 on p_G samples (D ≈ ½,
    where the log-loss has slope); it is the log of the geometric mean of e^{−c}/p_G, a lower bound
    (Jensen) of the importance-sampling estimate of Z_c with proposal p_G. Without it, log Z = 0
    against log p_G(S) ≈ −T·log V (−126 nats on SeqGAN's oracle) saturates D at 1 and the D
    optimizer (Adam, 1e-4) would need ~10^6 steps to move log Z there. Drawn from a private stream
    seeded with ``seed`` (the trainer's own streams are untouched); the cost net runs in eval mode.
    """
    gen = torch.Generator(device=policy.device).manual_seed(seed)
    seqs = policy.sample(n, generator=gen)  # (n, T)
    was_training = disc.training
    disc.eval()
    try:
        cost = disc.cost(seqs).double()  # (n,)
    finally:
        disc.train(was_training)
    return (-cost - pool_log_probs(policy, seqs).double()).mean()


def _bound_loss(trainer: Any):
    """The objective's discriminator loss as the engine's callable (sign: minimized by D)."""
    objective, disc_entry, policy = trainer.objective, trainer.disc_entry, trainer.policy

    def loss(real: Tensor, fake: Tensor, real_lp: Tensor | None, fake_lp: Tensor | None):
        log_p = None if real_lp is None or fake_lp is None else (real_lp, fake_lp)
        return objective.discriminator_loss(disc_entry, real, fake, policy, log_p_g=log_p)

    return loss


def _run(trainer: Any, real: Tensor, fake: Tensor, *, n_steps: int, batch: int, shuffle: bool, real_lp):
    cfg = trainer.config
    fake_lp = pool_log_probs(trainer.policy, fake) if trainer.objective.needs_log_p_g else None
    return run_discriminator_steps(
        trainer.disc_entry,
        trainer.d_opt,
        real,
        fake,
        loss=_bound_loss(trainer),
        n_steps=n_steps,
        batch_size=batch,
        generator=trainer.data_gen,
        shuffle=shuffle,
        real_extra=real_lp,
        fake_extra=fake_lp,
        grad_clip=cfg.d_optim.grad_clip,
        bf16=cfg.bf16,
        split=trainer.split,
    )


def _fresh_samples(trainer: Any, n: int) -> Tensor:
    """n sequences of p_G (N, T) from ``sample_gen``: the float32 sampler once V spans more than one
    block of :data:`~gan_equiv.models.policies.DRAW_BLOCK` items (where it pays), else float64;
    both return the same items for the same uniforms."""
    policy = trainer.policy
    precision = "float32" if policy.n_items > DRAW_BLOCK else "float64"
    return policy.sample(n, generator=trainer.sample_gen, precision=precision)


def discriminator_units(trainer: Any, units: int, *, schedule: str | None = None) -> dict[str, Tensor]:
    """``units`` units of the discriminator schedule (``schedule``, default ``config.d_schedule``);
    returns the mean over all their steps of the loss (``d_loss``) and of the objective's stats
    (``d_acc``, ``d_gap``, …) as device scalars, and the number of steps (``d_steps_taken``).

    ``d_schedule = "steps"``: a unit is one step on ``batch_size`` real rows (random epochs over
    the training data, from ``data_gen``) and ``batch_size`` fresh p_G samples; all ``units`` steps
    run in one engine call. ``"seqgan"``: a unit is one pool — ``d_pool`` fresh p_G samples, then
    :func:`~gan_equiv.train.discriminator_schedule.seqgan_schedule_steps` steps of ``batch_size/2``
    real rows (random epochs over the training data, SeqGAN's positive file) and ``batch_size/2``
    generated rows (random epochs over the pool).
    """
    if units <= 0:
        return {}
    cfg, policy = trainer.config, trainer.policy
    data = trainer.train_data  # (N_train, T), on the device
    runs: list[DiscriminatorStepStats] = []
    with step_modes((policy, False), (trainer.discriminator, True)):
        if (schedule or cfg.d_schedule) == "steps":
            B = cfg.batch_size
            real = data[epoch_indices(data.shape[0], units, B, trainer.data_gen, data.device).reshape(-1)]
            real_lp = pool_log_probs(policy, real) if trainer.objective.needs_log_p_g else None
            fake = _fresh_samples(trainer, units * B)  # (units·B, T)
            runs.append(_run(trainer, real, fake, n_steps=units, batch=B, shuffle=False, real_lp=real_lp))
        else:
            steps = seqgan_schedule_steps(d_pool=cfg.d_pool, d_epochs=cfg.d_epochs, batch_size=cfg.batch_size)
            real_lp = pool_log_probs(policy, data) if trainer.objective.needs_log_p_g else None
            for _ in range(units):  # one fresh pool per unit
                fake = _fresh_samples(trainer, cfg.d_pool)  # (d_pool, T)
                half = cfg.batch_size // 2
                runs.append(
                    _run(trainer, data, fake, n_steps=steps, batch=half, shuffle=True, real_lp=real_lp)
                )
    merged = DiscriminatorStepStats(
        torch.cat([r.loss for r in runs]), {k: torch.cat([r.stats[k] for r in runs]) for k in runs[0].stats}
    )
    return merged.means() | {"d_steps_taken": torch.tensor(float(merged.loss.numel()))}


def generator_step(trainer: Any) -> dict[str, Tensor]:
    """One policy-gradient step of eq. (14) for the configured objective and estimator: the generator
    *minimizes* J = E_G[E_r(S) + w·log p_G(S)], E_r = ``objective.reward_energy(disc)`` (or 0 with
    ``constant_reward``), w = ``objective.entropy_weight(config.entropy_weight)``.

    ``rollout``: surrogate mean_n Σ_t log p_G(s_t | h_t)·(Q̂_t − b_t), Q̂ from K rollouts of the
    return (full, or reward-to-go). ``analytic_entropy``: Q̂^D from K rollouts of E_r alone, the
    entropy part per step (:func:`~gan_equiv.train.entropy_gradient.analytic_entropy_surrogate`).
    ``baseline``: the leave-one-out mean over the global batch of the score-function weights.
    """
    cfg = trainer.config
    B, policy, split = cfg.batch_size, trainer.policy, trainer.split
    w = trainer.objective.entropy_weight(cfg.entropy_weight)
    analytic = cfg.generator_estimator == "analytic_entropy"
    reward = trainer.reward_energy
    with step_modes((policy, True), (reward, False)):  # no dropout inside Q
        seqs = split.sample(policy, B, trainer.sample_gen)  # (n, T); n = B in one process
        n = seqs.shape[0]
        with trainer.autocast():
            q = mc_q_values(
                policy,
                reward,
                seqs,
                n_rollouts=cfg.n_rollouts,
                entropy_weight=0.0 if analytic else w,  # analytic: energy-only Q^D
                mode="reward_to_go" if cfg.reward_to_go else "full",
                generator=trainer.sample_gen,
                shard=split.rollout_shard(B),
            )  # (n, T) float64
        extra: dict[str, Tensor] = {}
        if analytic:
            with trainer.autocast():
                terms = step_terms(policy, seqs, call=trainer.policy_call)  # (n, T) each, with gradient
            weights = analytic_entropy_returns(q, terms.step_entropies, entropy_weight=w)  # Q^D − w·F
            base = (split.column_sums(weights) - weights) / (B - 1) if cfg.baseline and B > 1 else None
            surrogate = analytic_entropy_surrogate(
                policy, seqs, q, entropy_weight=w, baseline=base, terms=terms
            )  # minimized: descends ∇J
            step_lp = terms.step_log_probs
            extra["step_entropy"] = terms.step_entropies.detach().mean().float()
        else:
            if cfg.baseline and B > 1:
                q = q - (split.column_sums(q) - q) / (B - 1)  # leave-one-out over the global batch
            with trainer.autocast():
                step_lp = trainer.policy_call("step_log_probs", seqs).float()  # (n, T)
                surrogate = policy_gradient_surrogate(step_lp, q.float())  # minimized: descends ∇J
        trainer.g_opt.zero_grad(set_to_none=True)
        split.backward(surrogate, n, B)
        clip_gradients(policy, cfg.g_optim.grad_clip)
        trainer.g_opt.step()
    out = {
        "g_surrogate": surrogate.detach().float(),
        "q_mean": q.mean().float(),
        "sample_log_prob": step_lp.detach().sum(dim=1).mean().float(),
        **extra,
    }
    return split.reduce(out, n, B)
