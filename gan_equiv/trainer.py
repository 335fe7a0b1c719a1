"""EB-SeqGAN training (the paper's Algorithm 1): MLE pretraining, energy pretraining, adversarial rounds.

Phases, in order, each made of *units* counted in :class:`Progress` (so a run can stop after any
unit and resume exactly):

1. ``pretrain_g_epochs`` epochs of maximum likelihood (teacher forcing) on the training sequences;
2. ``pretrain_d_steps`` energy updates with the EBGAN loss (3) against samples of p_G;
3. ``adversarial_rounds`` rounds of ``g_steps`` generator updates — the policy gradient of eq. (14)
   with Q from vectorized Monte-Carlo rollouts (:func:`gan_equiv.rollouts.mc_q_values`) — and
   ``d_steps`` energy updates with (3) and margin m.

The trainer knows nothing of imitation learning: it calls the losses and records what they return.
An optional ``evaluator(trainer) → dict`` adds problem-specific metrics (exact KL, NLL-oracle …).
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

from gan_equiv.checkpoint import (
    capture_rng_states,
    checkpoint_path,
    load_checkpoint,
    restore,
    save_checkpoint,
)
from gan_equiv.config import TrainConfig, config_to_dict
from gan_equiv.energies import SequenceEnergy
from gan_equiv.losses import ebgan_discriminator_loss, policy_gradient_surrogate
from gan_equiv.models import ConstantEnergy, build_energy, build_generator
from gan_equiv.policies import SequencePolicy
from gan_equiv.rollouts import mc_q_values
from gan_equiv.sequences import check_item_tensor

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
        policy, energy: pre-built models (default: built from the config).
    """

    def __init__(
        self,
        config: TrainConfig,
        train_data: Tensor,
        *,
        evaluator: Evaluator | None = None,
        policy: SequencePolicy | None = None,
        energy: SequenceEnergy | None = None,
    ) -> None:
        self.config = config
        self.device = config.torch_device()
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

    # --- autocast -------------------------------------------------------------------------------
    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.config.bf16 and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

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
            with self._autocast():
                nll = -self.policy.step_log_probs(batch).float().mean()  # minimized
            self.g_opt.zero_grad(set_to_none=True)
            nll.backward()
            _clip(self.policy, self.config.g_optim.grad_clip)
            self.g_opt.step()
            total += nll.detach() * batch.shape[0]
            count += batch.shape[0]
        return {"mle_nll_per_token": total / count}

    def energy_step(self) -> dict[str, Tensor]:
        """One step of eq. (3) on a data batch and a p_G batch: D *minimizes* E_data D + E_G[m − D]^+."""
        self.energy.train()
        real = self._data_batch()
        fake = self.policy.sample(self.config.batch_size, generator=self.sample_gen)
        with self._autocast():
            real_e = self.energy(real).float()
            fake_e = self.energy(fake).float()
            loss = ebgan_discriminator_loss(real_e, fake_e, margin=self.config.margin)
        self.d_opt.zero_grad(set_to_none=True)
        loss.backward()
        _clip(self.energy, self.config.d_optim.grad_clip)
        self.d_opt.step()
        return {
            "d_loss": loss.detach(),
            "energy_real": real_e.detach().mean(),
            "energy_fake": fake_e.detach().mean(),
            "fake_below_margin": (fake_e.detach() < self.config.margin).float().mean(),
        }

    def generator_step(self) -> dict[str, Tensor]:
        """One policy-gradient step of eq. (14): the generator *minimizes* E_G[D + w·log p_G].

        Q̂ comes from K vectorized rollouts per prefix (full return, or reward-to-go); with
        ``baseline`` the leave-one-out batch mean of Q̂_t is subtracted (unbiased).
        """
        cfg = self.config
        seqs = self.policy.sample(cfg.batch_size, generator=self.sample_gen)  # (B, T)
        self.reward_energy.eval()  # no dropout inside Q
        with self._autocast():
            q = mc_q_values(
                self.policy,
                self.reward_energy,
                seqs,
                n_rollouts=cfg.n_rollouts,
                entropy_weight=cfg.entropy_weight,
                mode="reward_to_go" if cfg.reward_to_go else "full",
                generator=self.sample_gen,
            )  # (B, T) float64
        if cfg.baseline and seqs.shape[0] > 1:
            q = q - (q.sum(dim=0, keepdim=True) - q) / (seqs.shape[0] - 1)
        self.policy.train()
        with self._autocast():
            step_lp = self.policy.step_log_probs(seqs).float()  # (B, T)
            surrogate = policy_gradient_surrogate(step_lp, q.float())  # minimized
        self.g_opt.zero_grad(set_to_none=True)
        surrogate.backward()
        _clip(self.policy, cfg.g_optim.grad_clip)
        self.g_opt.step()
        return {
            "g_surrogate": surrogate.detach(),
            "q_mean": q.mean().float(),
            "sample_log_prob": step_lp.detach().sum(dim=1).mean(),
        }

    # --- phases -------------------------------------------------------------------------------
    def _units(self) -> list[tuple[str, int, int]]:
        cfg, p = self.config, self.progress
        return [
            ("mle", p.g_epochs, cfg.pretrain_g_epochs),
            ("d_pretrain", p.d_pretrain_steps, cfg.pretrain_d_steps),
            ("adversarial", p.rounds, cfg.adversarial_rounds),
        ]

    def _run_unit(self, phase: str) -> dict[str, Tensor]:
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
        bar = tqdm(total=total, initial=self.progress.step, disable=not cfg.progress, desc=cfg.name)
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
        if self.evaluator is not None and (evaluate or unit == self._phase_length(phase)):
            row.update(self.evaluator(self))
        row["wall_s"] = time.perf_counter() - self._start
        self.log.write(row)
        return row

    def _phase_length(self, phase: str) -> int:
        return {name: n for name, _, n in self._units()}[phase]

    # --- checkpoints ----------------------------------------------------------------------------
    def _generators(self) -> dict[str, torch.Generator]:
        return {"sample": self.sample_gen, "data": self.data_gen}

    def save(self, path: str | Path | None = None) -> Path:
        """Write a checkpoint atomically (default: ``run_dir/ckpt_<step>.pt``)."""
        target = Path(path) if path is not None else checkpoint_path(self.run_dir, self.progress.step)
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
        """Load a checkpoint of a compatible run; training continues exactly where it stopped."""
        ckpt = load_checkpoint(path, map_location=self.device)
        restore(
            ckpt,
            {"policy": self.policy, "energy": self.energy},
            {"policy": self.g_opt, "energy": self.d_opt},
            current_config=config_to_dict(self.config),
            torch_generators=self._generators(),
        )
        self.progress = Progress(**{k: int(v) for k, v in ckpt.extra["progress"].items()})
