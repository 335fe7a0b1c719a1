"""The trainer of the GAN ⇄ IRL family (the paper's Algorithm 1): MLE pretraining, discriminator
pretraining, adversarial rounds — for EB-SeqGAN, SeqGAN and GAN-GCL alike.

Phases, in order, each made of *units* counted in :class:`~gan_equiv.train.run_log.Progress` (so a
run can stop after any unit and resume exactly):

1. ``mle``: ``pretrain_g_epochs`` epochs of maximum likelihood (teacher forcing) on the data;
2. ``d_pretrain``: ``pretrain_d_steps`` discriminator units (one minibatch step, or one SeqGAN pool
   with ``d_schedule = "seqgan"``) of the objective's loss against samples of p_G;
3. ``adversarial``: ``adversarial_rounds`` rounds of ``g_steps`` generator updates — the policy
   gradient of eq. (14) on the objective's reward energy, with Q from vectorized Monte-Carlo
   rollouts (:func:`gan_equiv.train.rollouts.mc_q_values`) or the analytic-entropy estimator — and
   the round's discriminator units (``d_steps`` steps, or ``d_repeats`` pools).

The objective (:func:`gan_equiv.train.objectives.make_objective`) supplies the discriminator built
around the energy, its loss, the generator's reward energy and its entropy weight; the steps are in
:mod:`gan_equiv.train.adversarial`. :meth:`Trainer.run` runs up to n units of one phase (the way
other code drives training); :meth:`Trainer.fit` runs (or continues) all of them. The energy is
built when a phase first needs it, from the random state construction left, so an MLE-only run
never builds one and a lazily built energy equals an eagerly built one. Each step sets the
train/eval modes it needs and puts back the modes it found.

The trainer knows nothing of imitation learning: it calls the losses and records what they return
(every round logs ``d_acc`` and ``d_gap``, how the discriminator separates data from p_G samples);
an optional ``evaluator(trainer) → dict`` adds problem-specific metrics (exact KL, NLL-oracle …).
With ``distributed=`` (``torchrun``; docs/scaling.md) the same steps run data-parallel, each rank on
its shard of every global batch (:class:`~gan_equiv.train.batch_split.BatchSplit`), rank 0 alone
logging and checkpointing; one step on N ranks equals one step in one process up to rounding.
"""

from __future__ import annotations

import contextlib
import time
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gan_equiv.checks import check_item_tensor, choice, non_negative_int
from gan_equiv.models.builders import ConstantEnergy, build_energy, build_generator
from gan_equiv.models.energies import CNNEnergy, SequenceEnergy
from gan_equiv.models.policies import SequencePolicy
from gan_equiv.train import adversarial
from gan_equiv.train.batch_split import BatchSplit, check_job
from gan_equiv.train.checkpoint import checkpoint_path
from gan_equiv.train.checkpoint_restore import ConfigReview
from gan_equiv.train.config_types import PHASES, DSchedule, EstimatorName, TrainConfig
from gan_equiv.train.distributed import DistContext, MethodCall, barrier, collectives, wrap_ddp
from gan_equiv.train.objectives import OBJECTIVES, Objective, make_objective
from gan_equiv.train.optim import adam, clip_gradients, step_modes
from gan_equiv.train.rng_state import seed_global_rngs
from gan_equiv.train.run_log import MetricsLog, Progress, postfix, progress_bar
from gan_equiv.train.trainer_state import resume_trainer, write_trainer_checkpoint

Evaluator = Callable[["Trainer"], dict[str, float]]

#: The settings this trainer implements, per config key (every value the schema accepts).
IMPLEMENTED: dict[str, tuple[str, ...]] = {
    "objective": OBJECTIVES,
    "generator_estimator": typing.get_args(EstimatorName),
    "d_schedule": typing.get_args(DSchedule),
}


def check_trainable(config: TrainConfig) -> None:
    """Refuse (``ValueError``) an ``objective`` / ``generator_estimator`` / ``d_schedule`` this trainer
    does not implement, naming the ones it does (every value the config schema accepts trains)."""
    for key, ok in IMPLEMENTED.items():
        value = getattr(config, key)
        if value not in ok:
            raise ValueError(
                f"{key} = {value!r} is not implemented by the trainer; "
                f"choose one of {', '.join(map(repr, ok))}"
            )


class Trainer:
    """Trainer of one :class:`TrainConfig` (any objective, estimator and D schedule) on a tensor of
    training sequences (N, T).

    Args:
        config: the run's configuration.
        train_data: int64 training sequences, shape (N, T), items in 0 … V−1.
        evaluator: optional ``trainer → {metric: value}`` called every ``eval_every`` rounds.
        policy: a pre-built generator (default: built from the config).
        energy: a pre-built energy, the discriminator's body (default: built from the config when a
            phase first needs it; for ``objective = "seqgan"`` a CNN is built with a signed head).
        distributed: this process's place in a data-parallel job (:func:`gan_equiv.train.distributed.
            init_from_env`); None (default) trains in this process alone. When given, every rank
            must make the same calls (steps, ``run``, ``fit``, ``save`` are collective).
    """

    def __init__(
        self,
        config: TrainConfig,
        train_data: Tensor,
        *,
        evaluator: Evaluator | None = None,
        policy: SequencePolicy | None = None,
        energy: SequenceEnergy | None = None,
        distributed: DistContext | None = None,
    ) -> None:
        check_trainable(config)
        self.config = config
        self.dist = distributed
        self.device = config.torch_device() if distributed is None else distributed.device
        if distributed is not None:
            check_job(config, distributed)
        sizes = {"n_items": config.n_items, "horizon": config.horizon}
        seed_global_rngs(config.seed)  # parameter initialization (torch) and python's random
        self.policy = (policy or build_generator(config.generator, **sizes)).to(self.device)
        self._energy_init_state = torch.get_rng_state()  # the energy's draws start here
        # validated on the CPU (a clear error naming the bad id), then moved once
        self.train_data = check_item_tensor(
            train_data, n_items=config.n_items, length=config.horizon, device=torch.device("cpu")
        ).to(self.device)
        if self.train_data.shape[0] < 1:
            raise ValueError("train_data is empty; give at least one training sequence")
        self.g_opt = adam(self.policy, config.g_optim)
        self.sample_gen = torch.Generator(device=self.device).manual_seed(config.seed + 1)
        self.data_gen = torch.Generator().manual_seed(config.seed + 2)
        self.evaluator = evaluator
        self.objective: Objective = make_objective(config.objective, margin=config.margin)
        self.progress = Progress()
        self.run_dir = config.run_dir
        self.log = MetricsLog(self.run_dir / f"metrics.{config.log_format}", config.log_format)
        self._start = time.perf_counter()
        self.split = BatchSplit(distributed)
        # DDP views of the models (same parameters); the plain modules stay in .policy / .energy
        self._policy_ddp = None if distributed is None else wrap_ddp(MethodCall(self.policy), distributed)
        self._energy: SequenceEnergy | None = None
        self._disc: nn.Module | None = None
        self._disc_ddp: nn.Module | None = None
        self._reward_energy: SequenceEnergy | None = None
        self._d_opt: torch.optim.Adam | None = None
        if energy is not None:
            self._install_energy(energy)

    @property
    def is_main(self) -> bool:
        """True in single-process training and on rank 0 (the rank that logs and checkpoints)."""
        return self.dist is None or self.dist.is_main

    # --- the energy, built when first needed ------------------------------------------------------
    @property
    def has_energy(self) -> bool:
        """Whether the energy exists yet (an MLE-only run never builds one)."""
        return self._energy is not None

    @property
    def energy(self) -> SequenceEnergy:
        """The energy: D of eq. (3) (``ebgan``), the classifier's body with logit −E (``seqgan``) or
        the cost c (``gan_gcl``). Built on first use from the random state construction left
        (torch's global random state is not touched), so it does not depend on when it is built."""
        if self._energy is None:
            with torch.random.fork_rng(devices=[]):
                torch.set_rng_state(self._energy_init_state)
                spec = self.config.energy
                built = build_energy(spec, n_items=self.config.n_items, horizon=self.config.horizon)
            if self.objective.name == "seqgan" and isinstance(built, CNNEnergy):
                built.nonnegative = False  # a signed head: a softplus would cap SeqGAN's D(S) at ½
            self._install_energy(built)
        assert self._energy is not None
        return self._energy

    @property
    def discriminator(self) -> nn.Module:
        """``objective.make_discriminator(energy)``: the energy (``ebgan``), SeqGAN's classifier, or
        GAN-GCL's cost + learned log Z; its parameters are those the D optimizer trains. GAN-GCL's
        log Z starts at :func:`~gan_equiv.train.adversarial.centered_log_z` of the generator as it
        is when the discriminator is built."""
        _ = self.energy
        return self._disc  # type: ignore[return-value]  # set with the energy

    @property
    def disc_entry(self) -> nn.Module:
        """What D steps call: the discriminator, or its DDP wrapper on W ranks."""
        _ = self.energy
        return self._disc_ddp if self._disc_ddp is not None else self._disc  # type: ignore[return-value]

    @property
    def d_opt(self) -> torch.optim.Adam:
        """Adam over the discriminator's parameters (GAN-GCL's log Z included; builds it if needed)."""
        _ = self.energy
        return self._d_opt  # type: ignore[return-value]  # set with the energy

    @property
    def reward_energy(self) -> SequenceEnergy:
        """The energy inside Q of eq. (14): ``objective.reward_energy(disc)``, or D ≡ 0 with
        ``constant_reward`` (the control, for every objective)."""
        _ = self.energy
        return self._reward_energy  # type: ignore[return-value]  # set with the energy

    def _install_energy(self, energy: SequenceEnergy) -> None:
        cfg = self.config
        self._energy = energy.to(self.device)
        self._disc = self.objective.make_discriminator(self._energy).to(self.device)
        if self.objective.needs_log_p_g:  # GAN-GCL: start log Z where D ≈ ½ on p_G (not at 0)
            log_z = adversarial.centered_log_z(self._disc, self.policy, seed=cfg.seed + 3)
            with torch.no_grad():
                self._disc.log_z.copy_(log_z)
        self._d_opt = adam(self._disc, cfg.d_optim)
        constant = ConstantEnergy(cfg.n_items, cfg.horizon).to(self.device) if cfg.constant_reward else None
        self._reward_energy = constant or self.objective.reward_energy(self._disc)
        if self.dist is not None:
            self._disc_ddp = wrap_ddp(self._disc, self.dist)

    # --- autocast and DDP entry points ------------------------------------------------------------
    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """bf16 autocast with ``bf16`` on CUDA; nothing otherwise."""
        if self.config.bf16 and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def policy_call(self, method: str, *args: Any) -> Any:
        """``policy.method(*args)`` — through DDP on W ranks, so that its gradients are averaged."""
        if self._policy_ddp is None:
            return getattr(self.policy, method)(*args)
        return self._policy_ddp(method, *args)

    # --- single updates -------------------------------------------------------------------------
    def _data_batches(self) -> Iterator[Tensor]:
        """One epoch of shuffled training batches (the permutation comes from ``data_gen``)."""
        order = torch.randperm(self.train_data.shape[0], generator=self.data_gen).to(self.device)
        for start in range(0, order.numel(), self.config.batch_size):
            yield self.train_data[order[start : start + self.config.batch_size]]

    def _data_batch(self) -> Tensor:
        B = self.config.batch_size
        idx = torch.randint(self.train_data.shape[0], (B,), generator=self.data_gen).to(self.device)
        return self.train_data[idx]

    def mle_epoch(self) -> dict[str, Tensor]:
        """One epoch of behaviour cloning: minimize −mean_t log p_G(s_t | h_t) on the data."""
        total = torch.zeros((), device=self.device)
        count = 0
        with step_modes((self.policy, True)):
            for batch in self._data_batches():
                rows, n = self.split.rows(batch)  # the whole batch in one process
                with self.autocast():
                    nll = -self.policy_call("step_log_probs", rows).float().mean()  # minimized
                self.g_opt.zero_grad(set_to_none=True)
                self.split.backward(nll, n, batch.shape[0])
                clip_gradients(self.policy, self.config.g_optim.grad_clip)
                self.g_opt.step()
                total += nll.detach() * n
                count += n
        if self.dist is not None:
            sums = self.split.reduce({"total": total, "count": torch.tensor(float(count))}, 1, 1)
            return {"mle_nll_per_token": sums["total"] / sums["count"]}
        return {"mle_nll_per_token": total / count}

    def energy_step(self) -> dict[str, Tensor]:
        """One discriminator step of the objective's loss (minimized by D; eq. 3 for ``ebgan``) on
        ``batch_size`` data rows and as many p_G samples, whatever ``d_schedule``."""
        return adversarial.discriminator_units(self, 1, schedule="steps")

    def discriminator_units(self, units: int = 1) -> dict[str, Tensor]:
        """``units`` units of the D schedule (steps, or SeqGAN pools): mean loss and stats (d_acc, d_gap)."""
        return adversarial.discriminator_units(self, units)

    def generator_step(self) -> dict[str, Tensor]:
        """One policy-gradient step of eq. (14) for the objective and ``generator_estimator``: the
        generator *minimizes* E_G[reward energy + w·log p_G] (:func:`.adversarial.generator_step`)."""
        return adversarial.generator_step(self)

    # --- phases -------------------------------------------------------------------------------
    def _run_unit(self, phase: str) -> dict[str, Tensor]:
        self.split.reseed(self.config.seed, self.progress.step)  # rank-local dropout (W ranks only)
        out: dict[str, Tensor] = {}
        if phase == "mle":
            out = self.mle_epoch()
        elif phase == "d_pretrain":
            out = self.discriminator_units(1)
        else:
            for _ in range(self.config.g_steps):
                out.update(self.generator_step())
            cfg = self.config
            out.update(self.discriminator_units(cfg.d_steps if cfg.d_schedule == "steps" else cfg.d_repeats))
        self.progress.advance(phase)
        return out

    def _run_phase(self, phase: str, units: int | None, bar: Any) -> list[dict[str, Any]]:
        cfg = self.config
        length, done = cfg.phase_length(phase), self.progress.done(phase)
        stop = length if units is None else min(length, done + units)
        rows: list[dict[str, Any]] = []
        for unit in range(done, stop):
            out = self._run_unit(phase)
            bar.update(1)
            if (cfg.log_every and (unit + 1) % cfg.log_every == 0) or unit + 1 == length:
                rows.append(self._log_row(phase, unit + 1, out))
                bar.set_postfix(postfix(rows[-1]))
            if cfg.checkpoint_every and self.progress.step % cfg.checkpoint_every == 0:
                self.save()
        return rows

    def _bar(self) -> Any:
        total = sum(self.config.phase_length(p) for p in PHASES)
        shown = self.config.progress and self.is_main
        return progress_bar(total=total, initial=self.progress.step, enabled=shown, name=self.config.name)

    def run(self, phase: str, units: int | None = None) -> list[dict[str, Any]]:
        """Run up to ``units`` more units of ``phase`` (None: the rest of it); return the logged rows.

        ``phase`` is ``"mle"`` (epochs), ``"d_pretrain"`` (discriminator units: steps or SeqGAN
        pools) or ``"adversarial"`` (rounds of eq. 14 and the discriminator's units). Phases run
        in Algorithm 1's order: an earlier phase with units left is a ``ValueError``. A unit is
        logged every ``log_every`` units and at the end of the phase; checkpoints follow
        ``checkpoint_every``.
        """
        choice(phase, "phase", PHASES)
        if units is not None:
            units = non_negative_int(units, "units", hint="None runs the rest of the phase")
        for earlier in PHASES[: PHASES.index(phase)]:
            left = self.config.phase_length(earlier) - self.progress.done(earlier)
            if left > 0:
                raise ValueError(
                    f"cannot run phase {phase!r}: phase {earlier!r} has {left} unit(s) left; run "
                    f"trainer.run({earlier!r}) first, or configure that phase shorter"
                )
        bar = self._bar()
        try:
            return self._run_phase(phase, units, bar)
        finally:
            bar.close()

    def fit(self) -> list[dict[str, Any]]:
        """Run (or continue) all phases of Algorithm 1 and write a final checkpoint.

        To run one phase or a few units of it, use :meth:`run`.
        """
        rows: list[dict[str, Any]] = []
        bar = self._bar()
        try:
            for phase in PHASES:
                rows += self._run_phase(phase, None, bar)
            self.save()
        finally:
            bar.close()
        return rows

    def _log_row(self, phase: str, unit: int, out: dict[str, Tensor]) -> dict[str, Any]:
        row: dict[str, Any] = {"phase": phase, "unit": unit, "step": self.progress.step}
        row.update({k: float(v) for k, v in out.items()})  # one host sync per logged unit
        every = self.config.eval_every
        evaluate = unit == self.config.phase_length(phase)
        evaluate |= phase == "adversarial" and every > 0 and unit % every == 0
        if self.evaluator is not None and self.is_main and evaluate:
            row.update(self.evaluator(self))
        row["wall_s"] = time.perf_counter() - self._start
        if self.is_main:
            self.log.write(row)
        return row

    # --- checkpoints ----------------------------------------------------------------------------
    @property
    def rng_streams(self) -> dict[str, torch.Generator]:
        """The trainer's own random streams (saved in checkpoints): sampling and data order."""
        return {"sample": self.sample_gen, "data": self.data_gen}

    def save(self, path: str | Path | None = None) -> Path:
        """Write a checkpoint atomically (default: ``run_dir/ckpt_<step>.pt``); the discriminator (the
        energy, with GAN-GCL's log Z) and its optimizer are included once built.

        On W ranks this is collective: rank 0 writes (its models, optimizers and shared generator
        states are those of every rank), then all ranks wait for the file; all return its path.
        """
        target = Path(path) if path is not None else checkpoint_path(self.run_dir, self.progress.step)
        if self.dist is None:
            return write_trainer_checkpoint(self, target)
        if self.dist.is_main:
            write_trainer_checkpoint(self, target)
        with collectives(self.dist, f"the barrier after writing {target}"):
            barrier(self.dist)
        return target

    def resume(self, path: str | Path, *, allow_config_change: bool = False) -> ConfigReview:
        """Load a checkpoint of a compatible run; training continues exactly where it stopped.

        The checkpoint must agree on the keys that define the experiment (data, seed, sizes,
        ``objective`` …) unless ``allow_config_change``; other keys (rounds, logging, learning
        rates) take this run's values. The metrics log is cut back to the checkpoint's step, so
        no step is logged twice. On W ranks every rank loads the same file; a checkpoint written
        by any number of ranks (or by one process) fits, because the shared generator states do
        not depend on W. Returns how the configuration differs from the checkpoint's.
        """
        self.progress, review = resume_trainer(self, path, allow_config_change=allow_config_change)
        if self.is_main:
            self.log.trim(self.progress.step)
        return review
