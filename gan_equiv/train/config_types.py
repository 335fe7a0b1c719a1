"""The typed tables of a training run: :class:`TrainConfig` and its :class:`OptimConfig` tables.

A run is one frozen :class:`TrainConfig` holding four nested tables: ``[generator]`` and
``[energy]`` (:mod:`gan_equiv.models.specs`) and an :class:`OptimConfig` each for G (``g_optim``)
and D (``d_optim``). Every value is checked on construction (:mod:`gan_equiv.schema`); a bad one
raises :class:`~gan_equiv.schema.ConfigError` naming the key, the value and the fix. The defaults
are SeqGAN's synthetic-oracle benchmark; each value is written here once (presets and
``configs/*.toml`` list only what differs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Literal

import torch

from gan_equiv.checks import non_negative_float, non_negative_int, positive_float, positive_int
from gan_equiv.models.specs import EnergyConfig, GeneratorConfig
from gan_equiv.schema import Checked, ConfigError, check_fields, invalid, suggest

#: Where a run's training sequences come from (:func:`gan_equiv.train.experiment.prepare_run`).
DataKind = Literal["oracle", "markov", "gibbs"]
DeviceName = Literal["auto", "cpu", "cuda"]
LogFormat = Literal["jsonl", "csv"]
#: The adversarial objective pair: EBGAN (eqs. 3, 4), SeqGAN's classifier, or GAN-GCL.
ObjectiveName = Literal["ebgan", "seqgan", "gan_gcl"]
#: How the generator gradient is estimated: Monte-Carlo rollouts of eq. (14), or an estimator
#: with the entropy term's gradient computed analytically.
EstimatorName = Literal["rollout", "analytic_entropy"]
#: The discriminator schedule: ``d_steps`` minibatch steps per round, or SeqGAN's pools and epochs.
DSchedule = Literal["steps", "seqgan"]

PHASES = ("mle", "d_pretrain", "adversarial")


@dataclass(frozen=True)
class OptimConfig(Checked):
    """Adam: learning rate, gradient-norm clipping (0 = off), betas and weight decay."""

    lr: float = 1e-2
    grad_clip: float = 5.0
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0

    def _validate(self) -> None:
        check_fields(self, positive_float, "lr", fix="use a positive learning rate")
        check_fields(self, non_negative_float, "grad_clip", "weight_decay", fix="use 0 or more")
        for i, b in enumerate(self.betas):
            if not 0.0 <= b < 1.0:
                raise invalid(f"betas[{i}]", b, "must lie in [0, 1)", "use e.g. betas = [0.9, 0.999]")


def _d_optim() -> OptimConfig:
    """SeqGAN's discriminator optimizer: Adam 1e-4, no clipping."""
    return OptimConfig(lr=1e-4, grad_clip=0.0)


@dataclass(frozen=True)
class TrainConfig(Checked):
    """Everything one EB-SeqGAN run (Algorithm 1) needs; defaults follow SeqGAN where it has a choice.

    Phases: ``pretrain_g_epochs`` MLE epochs; ``pretrain_d_steps`` discriminator units;
    ``adversarial_rounds`` rounds of ``g_steps`` policy-gradient steps of (14) (K = ``n_rollouts``)
    and the discriminator's share of the round. ``objective`` picks the loss pair (``ebgan``: (3)
    with margin m and (4); ``seqgan``; ``gan_gcl``: docs/family.md) and ``generator_estimator`` the
    generator-gradient estimator (``rollout``: eq. 14; ``analytic_entropy``: the entropy part
    per step, :mod:`gan_equiv.train.entropy_gradient`).

    ``d_schedule = "steps"``: a discriminator unit is one minibatch step (``batch_size`` real and
    ``batch_size`` generated sequences) and a round takes ``d_steps`` of them. ``"seqgan"`` (SeqGAN's
    code): a unit is one *pool* — ``d_pool`` fresh generator samples, then ``d_epochs`` epochs of
    minibatches of ``batch_size`` rows, half real and half generated — and a round takes
    ``d_repeats`` pools (so SeqGAN's 50 pretraining pools are ``pretrain_d_steps = 50``).
    ``out_dir`` empty means ``runs/<name>``; ``*_every`` = 0 means only at the end.
    """

    name: str = "run"
    data: DataKind = "oracle"
    data_path: str = ""
    n_items: int = 5000
    horizon: int = 20
    n_train: int = 10000
    n_test: int = 10000
    batch_size: int = 64
    seed: int = 88
    device: DeviceName = "auto"
    bf16: bool = False
    objective: ObjectiveName = "ebgan"
    generator_estimator: EstimatorName = "rollout"
    pretrain_g_epochs: int = 120
    pretrain_d_steps: int = 50
    adversarial_rounds: int = 200
    g_steps: int = 1
    d_steps: int = 5
    d_schedule: DSchedule = "steps"
    d_pool: int = 10000  # SeqGAN: 10,000 fresh generator samples per pool
    d_repeats: int = 5  # SeqGAN: 5 pools per adversarial round
    d_epochs: int = 3  # SeqGAN: 3 epochs over each pool
    n_rollouts: int = 16
    entropy_weight: float = 1.0
    reward_to_go: bool = False
    baseline: bool = False
    constant_reward: bool = False
    margin: float = 10.0  # the EBGAN margin m of eq. (3); its one default
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    energy: EnergyConfig = field(default_factory=EnergyConfig)
    g_optim: OptimConfig = field(default_factory=OptimConfig)
    d_optim: OptimConfig = field(default_factory=_d_optim)
    log_every: int = 1
    eval_every: int = 10
    checkpoint_every: int = 10
    log_format: LogFormat = "jsonl"
    out_dir: str = ""
    progress: bool = True

    def _validate(self) -> None:
        _check_run_name(self.name)
        sizes = ("n_items", "horizon", "n_train", "n_test", "batch_size")
        sizes += ("d_pool", "d_repeats", "d_epochs")
        check_fields(self, positive_int, *sizes, fix="use a positive value")
        if self.n_items < 2:
            raise invalid("n_items", self.n_items, "must be at least 2", "use V >= 2 items")
        check_fields(
            self, positive_int, "n_rollouts", fix="use at least 1 (K rollouts per prefix), e.g. K = 16"
        )
        check_fields(
            self, positive_float, "margin", fix="the EBGAN margin m must be positive and finite; use m > 0"
        )
        check_fields(self, non_negative_float, "entropy_weight", fix="use 0 or more")
        counts = ("pretrain_g_epochs", "pretrain_d_steps", "adversarial_rounds", "g_steps", "d_steps")
        counts += ("log_every", "eval_every", "checkpoint_every", "seed")
        check_fields(self, non_negative_int, *counts, fix="use 0 or more")
        if self.d_schedule == "seqgan" and self.batch_size % 2:
            raise invalid(
                "batch_size",
                self.batch_size,
                "must be even with d_schedule = 'seqgan' (each minibatch is half real, half generated)",
                f"use batch_size = {self.batch_size + 1} or d_schedule = 'steps'",
            )
        if self.objective == "seqgan" and self.energy.kind == "autoencoder":
            raise invalid(
                "energy.kind",
                "autoencoder",
                "is non-negative, so SeqGAN's classifier logit −E ≤ 0 caps D(S) at ½",
                "use energy.kind = 'cnn' (its head is made signed for SeqGAN), 'linear' or 'tabular'",
            )
        if self.bf16 and self.device == "cpu":
            raise invalid(
                "bf16", True, "bf16 autocast is CUDA only", "set device = 'cuda'/'auto' or bf16 = false"
            )
        if self.energy.kind == "cnn" and min(self.energy.filter_sizes) > self.horizon:
            raise invalid(
                "energy.filter_sizes",
                self.energy.filter_sizes,
                f"every filter is wider than the horizon T={self.horizon}",
                "include a width <= T",
            )

    @property
    def run_dir(self) -> Path:
        """Where logs and checkpoints go: ``out_dir`` or ``runs/<name>``."""
        return Path(self.out_dir or f"runs/{self.name}")

    def torch_device(self) -> torch.device:
        """The torch device of ``device`` (:func:`resolve_device`)."""
        return resolve_device(self.device)

    def phase_length(self, phase: str) -> int:
        """Units in ``phase`` (one of :data:`PHASES`): MLE epochs, D-pretraining steps or rounds."""
        units = (self.pretrain_g_epochs, self.pretrain_d_steps, self.adversarial_rounds)
        lengths = dict(zip(PHASES, units, strict=True))
        if phase not in lengths:
            raise ValueError(f"unknown phase {phase!r}; choose one of {', '.join(map(repr, PHASES))}")
        return lengths[phase]


def _check_run_name(name: str) -> None:
    """A run name is one plain path component: not empty, '.', '..', absolute or holding a separator
    (it names the directory ``runs/<name>``)."""
    plain = bool(name) and name not in (".", "..") and not any(c in name for c in "/\\\0")
    plain = plain and not PureWindowsPath(name).anchor and not PurePosixPath(name).is_absolute()
    if not plain:
        raise invalid(
            "name",
            name,
            "must be a plain name (not empty, '.', '..' or a path: no '/', '\\', drive or NUL)",
            "use e.g. 'oracle_run1'; to choose the directory set out_dir",
        )


def resolve_device(name: str) -> torch.device:
    """'auto' → cuda if available else cpu; 'cpu'; 'cuda' or 'cuda:N' (error when none is present)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"CUDA requested (device = {name!r}) but torch.cuda.is_available() is False; "
                "use --device cpu or auto",
                key="device",
            )
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {name!r} does not exist: {torch.cuda.device_count()} CUDA device(s) visible",
                key="device",
            )
        return dev
    raise ConfigError(
        f"unknown device {name!r}; use 'auto', 'cpu' or 'cuda'{suggest(name, ['auto', 'cpu', 'cuda'])}"
    )
