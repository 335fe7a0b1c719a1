"""EB-SeqGAN training (the paper's Algorithm 1): MLE pretraining, energy pretraining, adversarial rounds.

Phases, in order, each made of *units* counted in :class:`Progress` (so a run can stop after any
unit and resume exactly):

1. ``pretrain_g_epochs`` epochs of maximum likelihood (teacher forcing) on the training sequences;
2. ``pretrain_d_steps`` energy updates with the EBGAN loss (3) against samples of p_G;
3. ``adversarial_rounds`` rounds of ``g_steps`` generator updates — the policy gradient of eq. (14)
   with Q from vectorized Monte-Carlo rollouts (:func:`gan_equiv.train.rollouts.mc_q_values`) — and
   ``d_steps`` energy updates with (3) and margin m.

The trainer knows nothing of imitation learning: it calls the losses and records what they return.
An optional ``evaluator(trainer) → dict`` adds problem-specific metrics (exact KL, NLL-oracle …).

With ``distributed=`` a :class:`~gan_equiv.train.distributed.DistContext` (``torchrun``; see
docs/scaling.md) the same steps run data-parallel: DDP over generator and energy, each rank working
on its shard of every global batch and of the rollouts, metrics all-reduced, rank 0 alone writing
logs and checkpoints. The split is exact (:mod:`gan_equiv.train.distributed`), so one step on N ranks
equals one step in one process up to float rounding, and checkpoints resume on any number of ranks.
"""

from __future__ import annotations

import contextlib
import csv
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from gan_equiv.checks import check_item_tensor
from gan_equiv.losses import ebgan_discriminator_loss, policy_gradient_surrogate
from gan_equiv.models.builders import ConstantEnergy, build_energy, build_generator
from gan_equiv.models.energies import SequenceEnergy
from gan_equiv.models.policies import SequencePolicy
from gan_equiv.train.checkpoint import (
    capture_rng_states,
    checkpoint_path,
    load_checkpoint,
    restore,
    save_checkpoint,
)
from gan_equiv.train.config import TrainConfig, config_to_dict
from gan_equiv.train.distributed import (
    DistContext,
    MethodCall,
    all_reduce_sum,
    all_reduce_tensor_sum,
    barrier,
    collectives,
    rank_seed,
    shard_bounds,
    sharded_sample,
    wrap_ddp,
)
from gan_equiv.train.rollouts import mc_q_values

Evaluator = Callable[["Trainer"], dict[str, float]]

#: Metrics shown live on the progress bar (all of them go to the metrics log).
POSTFIX_KEYS = ("mle_nll_per_token", "d_loss", "g_surrogate", "kl_data_model", "nll_test", "nll_oracle")


@dataclass
class Progress:
    """Units completed in each phase; their sum is the global step of checkpoints."""

    g_epochs: int = 0
    d_pretrain_steps: int = 0
    rounds: int = 0

    @property
    def step(self) -> int:
        return self.g_epochs + self.d_pretrain_steps + self.rounds


class MetricsLog:
    """Append-only metrics file (JSON lines or CSV), one row per logged unit."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path = path
        self.fmt = fmt
        self._fields: list[str] | None = None

    def write(self, row: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.fmt == "jsonl":
            with self.path.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
            return
        new = not self.path.exists()
        if self._fields is None:
            self._fields = list(row)
        with self.path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self._fields, extrasaction="ignore", restval="")
            if new:
                writer.writeheader()
            writer.writerow(row)


def _clip(module: torch.nn.Module, max_norm: float) -> None:
    if max_norm > 0:
        torch.nn.utils.clip_grad_norm_(module.parameters(), max_norm)


def _adam(module: torch.nn.Module, optim: Any) -> torch.optim.Adam:
    return torch.optim.Adam(
        module.parameters(), lr=optim.lr, betas=tuple(optim.betas), weight_decay=optim.weight_decay
    )


class Trainer:
    """EB-SeqGAN trainer for one :class:`TrainConfig` and a tensor of training sequences (N, T).

    Args:
        config: the run's configuration.
        train_data: int64 training sequences, shape (N, T), items in 0 … V−1.
        evaluator: optional ``trainer → {metric: value}`` called every ``eval_every`` rounds.
        policy: a pre-built generator (default: built from the config).
        energy: a pre-built energy (default: built from the config).
        distributed: this process's place in a data-parallel job (:func:`gan_equiv.train.distributed.
            init_from_env`); None (default) trains in this process alone. When given, every rank
            must make the same calls (steps, ``fit``, ``save`` are collective).
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
        self.config = config
        self.dist = distributed
        self.device = config.torch_device() if distributed is None else distributed.device
        if distributed is not None:
            if self.device.type != config.torch_device().type:
                raise ValueError(
                    f"the process group runs on {self.device} but the config asks for device "
                    f"{config.device!r}; create it with init_from_env(config.device)"
                )
            if config.batch_size < distributed.world_size:
                raise ValueError(
                    f"batch_size={config.batch_size} is smaller than the number of ranks "
                    f"({distributed.world_size}); every rank needs a share of each batch — raise "
                    "batch_size or start fewer processes"
                )
        torch.manual_seed(config.seed)  # parameter initialization
        self.policy = (policy or build_generator(config)).to(self.device)
        self.energy = (energy or build_energy(config)).to(self.device)
        # validated on the CPU (a clear error naming the bad id), then moved once
        self.train_data = check_item_tensor(
            train_data, n_items=config.n_items, length=config.horizon, device=torch.device("cpu")
        ).to(self.device)
        if self.train_data.shape[0] < 1:
            raise ValueError("train_data is empty; give at least one training sequence")
        self.g_opt = _adam(self.policy, config.g_optim)
        self.d_opt = _adam(self.energy, config.d_optim)
        self.sample_gen = torch.Generator(device=self.device).manual_seed(config.seed + 1)
        self.data_gen = torch.Generator().manual_seed(config.seed + 2)
        self.reward_energy: SequenceEnergy = (
            ConstantEnergy(config.n_items, config.horizon).to(self.device)
            if config.constant_reward
            else self.energy
        )
        self.evaluator = evaluator
        self.progress = Progress()
        self.run_dir = config.run_dir
        self.log = MetricsLog(self.run_dir / f"metrics.{config.log_format}", config.log_format)
        self._start = time.perf_counter()
        # DDP views of the models (same parameters); the plain modules stay in .policy / .energy
        self._policy_ddp: torch.nn.Module | None = None
        self._energy_ddp: torch.nn.Module | None = None
        if distributed is not None:
            self._policy_ddp = wrap_ddp(MethodCall(self.policy), distributed)
            self._energy_ddp = wrap_ddp(self.energy, distributed)

    @property
    def is_main(self) -> bool:
        """True in single-process training and on rank 0 (the rank that logs and checkpoints)."""
        return self.dist is None or self.dist.is_main

    # --- autocast -------------------------------------------------------------------------------
    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.config.bf16 and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # --- data-parallel plumbing (identity in single-process training) ----------------------------
    def _shard(self, batch: Tensor) -> tuple[Tensor, int]:
        """This rank's rows of a global batch and how many of them count (all rows in one process).

        A rank with no row (a last MLE batch smaller than the world) runs one row with weight 0, so
        that it still takes part in DDP's gradient all-reduce.
        """
        if self.dist is None:
            return batch, batch.shape[0]
        start, stop = shard_bounds(batch.shape[0], self.dist.rank, self.dist.world_size)
        return (batch[start:stop], stop - start) if stop > start else (batch[:1], 0)

    def _backward(self, loss: Tensor, n_local: int, n_global: int) -> None:
        """Backward of a shard-mean loss; on W ranks scaled by n_local·W/n_global, so that DDP's
        average over ranks is the gradient of the global-batch mean."""
        if self.dist is None:
            loss.backward()
            return
        with collectives(self.dist, "the gradient all-reduce"):
            (loss * (n_local * self.dist.world_size / n_global)).backward()

    def _reduce(self, out: dict[str, Tensor], n_local: int, n_global: int) -> dict[str, Tensor]:
        """Global-batch means of shard-mean metrics (one all-reduce); unchanged in one process."""
        if self.dist is None:
            return out
        share = {k: v.detach().double() * (n_local / n_global) for k, v in out.items()}
        with collectives(self.dist, "the metrics all-reduce"):
            return all_reduce_sum(share, self.dist)

    def _step_log_probs(self, seqs: Tensor) -> Tensor:
        if self._policy_ddp is None:
            return self.policy.step_log_probs(seqs)
        return self._policy_ddp("step_log_probs", seqs)

    def _energy_of(self, seqs: Tensor) -> Tensor:
        return self.energy(seqs) if self._energy_ddp is None else self._energy_ddp(seqs)

    def _sample(self, n: int) -> Tensor:
        """n sequences of p_G from ``sample_gen`` — this rank's shard of them on W ranks."""
        if self.dist is None:
            return self.policy.sample(n, generator=self.sample_gen)
        start, stop = shard_bounds(n, self.dist.rank, self.dist.world_size)
        return sharded_sample(self.policy, n, start, stop, generator=self.sample_gen)

    def _q_values(self, seqs: Tensor, n_global: int) -> Tensor:
        cfg = self.config
        mode = "reward_to_go" if cfg.reward_to_go else "full"
        shard = None
        if self.dist is not None:  # this rank's rows of the global batch, global random stream
            shard = (n_global, shard_bounds(n_global, self.dist.rank, self.dist.world_size)[0])
        return mc_q_values(
            self.policy,
            self.reward_energy,
            seqs,
            n_rollouts=cfg.n_rollouts,
            entropy_weight=cfg.entropy_weight,
            mode=mode,
            generator=self.sample_gen,
            shard=shard,
        )

    # --- single updates -------------------------------------------------------------------------
    def _data_batches(self) -> Iterator[Tensor]:
        """One epoch of shuffled training batches (the permutation comes from ``data_gen``)."""
        order = torch.randperm(self.train_data.shape[0], generator=self.data_gen).to(self.device)
        for start in range(0, order.numel(), self.config.batch_size):
            yield self.train_data[order[start : start + self.config.batch_size]]

    def _data_batch(self) -> Tensor:
        idx = torch.randint(self.train_data.shape[0], (self.config.batch_size,), generator=self.data_gen).to(
            self.device
        )
        return self.train_data[idx]

    def mle_epoch(self) -> dict[str, Tensor]:
        """One epoch of behaviour cloning: minimize −mean_t log p_G(s_t | h_t) on the data."""
        self.policy.train()
        total = torch.zeros((), device=self.device)
        count = 0
        for batch in self._data_batches():
            rows, n = self._shard(batch)  # the whole batch in one process
            with self._autocast():
                nll = -self._step_log_probs(rows).float().mean()  # minimized
            self.g_opt.zero_grad(set_to_none=True)
            self._backward(nll, n, batch.shape[0])
            _clip(self.policy, self.config.g_optim.grad_clip)
            self.g_opt.step()
            total += nll.detach() * n
            count += n
        if self.dist is not None:
            sums = self._reduce({"total": total, "count": torch.tensor(float(count))}, 1, 1)
            return {"mle_nll_per_token": sums["total"] / sums["count"]}
        return {"mle_nll_per_token": total / count}

    def energy_step(self) -> dict[str, Tensor]:
        """One step of eq. (3) on a data batch and a p_G batch: D *minimizes* E_data D + E_G[m − D]^+."""
        self.energy.train()
        B = self.config.batch_size
        real, n = self._shard(self._data_batch())  # indices drawn for the global batch
        fake = self._sample(B)
        with self._autocast():
            real_e = self._energy_of(real).float()
            fake_e = self._energy_of(fake).float()
            loss = ebgan_discriminator_loss(real_e, fake_e, margin=self.config.margin)
        self.d_opt.zero_grad(set_to_none=True)
        self._backward(loss, n, B)
        _clip(self.energy, self.config.d_optim.grad_clip)
        self.d_opt.step()
        out = {
            "d_loss": loss.detach(),
            "energy_real": real_e.detach().mean(),
            "energy_fake": fake_e.detach().mean(),
            "fake_below_margin": (fake_e.detach() < self.config.margin).float().mean(),
        }
        return self._reduce(out, n, B)

    def generator_step(self) -> dict[str, Tensor]:
        """One policy-gradient step of eq. (14): the generator *minimizes* E_G[D + w·log p_G].

        Q̂ comes from K vectorized rollouts per prefix (full return, or reward-to-go); with
        ``baseline`` the leave-one-out batch mean of Q̂_t is subtracted (unbiased).
        """
        cfg = self.config
        B = cfg.batch_size
        seqs = self._sample(B)  # (B, T); this rank's shard (n, T) on W ranks
        n = seqs.shape[0]
        self.reward_energy.eval()  # no dropout inside Q
        with self._autocast():
            q = self._q_values(seqs, B)  # (n, T) float64
        if cfg.baseline and B > 1:
            column_sums = q.sum(dim=0, keepdim=True)  # over the global batch on W ranks
            if self.dist is not None:
                with collectives(self.dist, "the baseline all-reduce"):
                    column_sums = all_reduce_tensor_sum(column_sums, self.dist)
            q = q - (column_sums - q) / (B - 1)
        self.policy.train()
        with self._autocast():
            step_lp = self._step_log_probs(seqs).float()  # (n, T)
            surrogate = policy_gradient_surrogate(step_lp, q.float())  # minimized
        self.g_opt.zero_grad(set_to_none=True)
        self._backward(surrogate, n, B)
        _clip(self.policy, cfg.g_optim.grad_clip)
        self.g_opt.step()
        out = {
            "g_surrogate": surrogate.detach(),
            "q_mean": q.mean().float(),
            "sample_log_prob": step_lp.detach().sum(dim=1).mean(),
        }
        return self._reduce(out, n, B)

    # --- phases -------------------------------------------------------------------------------
    def _units(self) -> list[tuple[str, int, int]]:
        cfg, p = self.config, self.progress
        return [
            ("mle", p.g_epochs, cfg.pretrain_g_epochs),
            ("d_pretrain", p.d_pretrain_steps, cfg.pretrain_d_steps),
            ("adversarial", p.rounds, cfg.adversarial_rounds),
        ]

    def _run_unit(self, phase: str) -> dict[str, Tensor]:
        if self.dist is not None:  # rank-local randomness (dropout) depends on (seed, step, rank) only
            torch.manual_seed(rank_seed(self.config.seed, self.progress.step, self.dist.rank))
        if phase == "mle":
            out = self.mle_epoch()
            self.progress.g_epochs += 1
            return out
        if phase == "d_pretrain":
            out = self.energy_step()
            self.progress.d_pretrain_steps += 1
            return out
        out: dict[str, Tensor] = {}
        for _ in range(self.config.g_steps):
            out.update(self.generator_step())
        for _ in range(self.config.d_steps):
            out.update(self.energy_step())
        self.progress.rounds += 1
        return out

    def fit(self, *, stop_after: int | None = None) -> list[dict[str, Any]]:
        """Run (or continue) all phases; ``stop_after`` units at most in this call (for tests)."""
        cfg = self.config
        total = sum(n for _, _, n in self._units())
        rows: list[dict[str, Any]] = []
        shown_here = cfg.progress and self.is_main
        bar = tqdm(total=total, initial=self.progress.step, disable=not shown_here, desc=cfg.name)
        done_now = 0
        try:
            for phase, done, n in self._units():
                for unit in range(done, n):
                    if stop_after is not None and done_now >= stop_after:
                        return rows
                    out = self._run_unit(phase)
                    done_now += 1
                    bar.update(1)
                    last = unit + 1 == n
                    if (cfg.log_every and (unit + 1) % cfg.log_every == 0) or last:
                        row = self._log_row(phase, unit + 1, out)
                        rows.append(row)
                        shown = {k: f"{row[k]:.4g}" for k in POSTFIX_KEYS if isinstance(row.get(k), float)}
                        bar.set_postfix(shown)
                    if cfg.checkpoint_every and self.progress.step % cfg.checkpoint_every == 0:
                        self.save()
            self.save()
        finally:
            bar.close()
        return rows

    def _log_row(self, phase: str, unit: int, out: dict[str, Tensor]) -> dict[str, Any]:
        row: dict[str, Any] = {"phase": phase, "unit": unit, "step": self.progress.step}
        row.update({k: float(v) for k, v in out.items()})  # one host sync per logged unit
        evaluate = phase != "adversarial" and unit == self._phase_length(phase)
        evaluate |= (
            phase == "adversarial" and self.config.eval_every > 0 and unit % self.config.eval_every == 0
        )
        if self.evaluator is not None and self.is_main and (evaluate or unit == self._phase_length(phase)):
            row.update(self.evaluator(self))
        row["wall_s"] = time.perf_counter() - self._start
        if self.is_main:
            self.log.write(row)
        return row

    def _phase_length(self, phase: str) -> int:
        return {name: n for name, _, n in self._units()}[phase]

    # --- checkpoints ----------------------------------------------------------------------------
    def _generators(self) -> dict[str, torch.Generator]:
        return {"sample": self.sample_gen, "data": self.data_gen}

    def save(self, path: str | Path | None = None) -> Path:
        """Write a checkpoint atomically (default: ``run_dir/ckpt_<step>.pt``).

        On W ranks this is collective: rank 0 writes (its models, optimizers and shared generator
        states are those of every rank), then all ranks wait for the file; all return its path.
        """
        target = Path(path) if path is not None else checkpoint_path(self.run_dir, self.progress.step)
        if self.dist is None:
            return self._write_checkpoint(target)
        if self.dist.is_main:
            self._write_checkpoint(target)
        with collectives(self.dist, f"the barrier after writing {target}"):
            barrier(self.dist)
        return target

    def _write_checkpoint(self, target: Path) -> Path:
        return save_checkpoint(
            target,
            models={"policy": self.policy, "energy": self.energy},
            optimizers={"policy": self.g_opt, "energy": self.d_opt},
            step=self.progress.step,
            config=config_to_dict(self.config),
            rng_states=capture_rng_states(None, self._generators()),
            extra={"progress": asdict(self.progress)},
        )

    def resume(self, path: str | Path) -> None:
        """Load a checkpoint of a compatible run; training continues exactly where it stopped.

        On W ranks every rank loads the same file; a checkpoint written by any number of ranks
        (or by one process) fits, because the shared generator states do not depend on W.
        """
        ckpt = load_checkpoint(path, map_location=self.device)
        restore(
            ckpt,
            {"policy": self.policy, "energy": self.energy},
            {"policy": self.g_opt, "energy": self.d_opt},
            current_config=config_to_dict(self.config),
            torch_generators=self._generators(),
        )
        self.progress = Progress(**{k: int(v) for k, v in ckpt.extra["progress"].items()})
