"""The three adversarial objectives of the GAN ⇄ IRL family behind one small interface (docs/family.md).

- ``"ebgan"`` — EB-SeqGAN, the paper: energy D, loss (3) with margin m; generator (4) with
  ψ = −w·H, i.e. Q of eq. (14) with energy D and weight w.
- ``"seqgan"`` — SeqGAN (Yu et al. 2017): classifier D = σ(ℓ) trained with the log-loss (1); the
  generator maximizes E_G D(S) (SeqGAN's code), i.e. Q of (14) with "energy" −D(S) and weight 0.
- ``"gan_gcl"`` — GAN-GCL (Finn, Christiano, Abbeel & Levine 2016): D = ẽ/(ẽ + p_G), ẽ = e^{−c}/Z,
  trained with the log-loss; the generator minimizes E_G[log(1 − D) − log D] = E_G[c + log p_G] + log Z,
  i.e. Q of (14) with energy c + log Z and weight 1.

A trainer calls, per run: ``disc = objective.make_discriminator(energy)``; per discriminator step:
``loss, stats = objective.discriminator_loss(disc, real (N, T), fake (M, T), policy)`` (minimize
``loss``); per generator step: ``mc_q_values(policy, objective.reward_energy(disc), seqs,
entropy_weight=objective.entropy_weight(config.entropy_weight), ...)``. ``disc`` may be a DDP
wrapper in ``discriminator_loss`` (only its ``forward`` is called); ``reward_energy`` wants the
plain module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from gan_equiv.checks import choice, finite_float
from gan_equiv.losses import check_margin, ebgan_discriminator_loss, seqgan_discriminator_loss
from gan_equiv.models.discriminators import (
    ClassifierRewardEnergy,
    GANGCLDiscriminator,
    GCLRewardEnergy,
    SeqGANClassifier,
)
from gan_equiv.models.energies import SequenceEnergy
from gan_equiv.models.policies import SequencePolicy

ObjectiveName = Literal["ebgan", "seqgan", "gan_gcl"]
#: The objectives :func:`make_objective` knows (the trainer's ``objective`` key).
OBJECTIVES: tuple[str, ...] = ("ebgan", "seqgan", "gan_gcl")

Stats = dict[str, Tensor]


def _plain(module: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (itself otherwise)."""
    return getattr(module, "module", module)


def _expect(disc: nn.Module, cls: type, objective: str, fix: str) -> None:
    if not isinstance(_plain(disc), cls):
        raise ValueError(
            f"the {objective!r} objective needs a {cls.__name__} discriminator, got "
            f"{type(_plain(disc)).__name__}; {fix}"
        )


def _classifier_stats(real_logits: Tensor, fake_logits: Tensor) -> Stats:
    real, fake = real_logits.detach(), fake_logits.detach()
    return {
        "d_real_prob": torch.sigmoid(real).mean(),  # mean D(S) on data: → 1 for a perfect D
        "d_fake_prob": torch.sigmoid(fake).mean(),  # mean D(S) on p_G samples: → 0 for a perfect D
        "d_accuracy": 0.5 * ((real > 0).float().mean() + (fake <= 0).float().mean()),
    }


class Objective:
    """One member of the family: how the discriminator is built and trained, and what the generator reads."""

    name: ClassVar[str]

    def make_discriminator(self, energy: SequenceEnergy) -> nn.Module:
        """The discriminator module built around a body energy (its parameters go to the D optimizer)."""
        raise NotImplementedError

    def discriminator_loss(
        self, disc: nn.Module, real: Tensor, fake: Tensor, policy: SequencePolicy
    ) -> tuple[Tensor, Stats]:
        """(loss to *minimize*, detached stats) on data ``real`` (N, T) and p_G samples ``fake`` (M, T)."""
        raise NotImplementedError

    def reward_energy(self, disc: nn.Module) -> SequenceEnergy:
        """The energy whose rollout mean, with :meth:`entropy_weight`, is Q of eq. (14) (low = good)."""
        raise NotImplementedError

    def entropy_weight(self, config_w: float) -> float:
        """The weight w of log p_G in the generator's return D + w·log p_G (ψ = −w·H of eq. 4)."""
        raise NotImplementedError


@dataclass(frozen=True)
class EBGANObjective(Objective):
    """EB-SeqGAN (the paper): D-loss (3) with margin m; generator (4), ψ = −w·H (Q: energy D, weight w)."""

    margin: float
    name: ClassVar[str] = "ebgan"

    def __post_init__(self) -> None:
        object.__setattr__(self, "margin", check_margin(self.margin))

    def make_discriminator(self, energy: SequenceEnergy) -> nn.Module:
        """The energy itself (low = realistic)."""
        return energy

    def discriminator_loss(
        self, disc: nn.Module, real: Tensor, fake: Tensor, policy: SequencePolicy
    ) -> tuple[Tensor, Stats]:
        """Eq. (3): E_data D + E_G[m − D]^+, minimized (real energies down, fake ones up to m)."""
        real_e, fake_e = disc(real), disc(fake)  # (N,), (M,)
        loss = ebgan_discriminator_loss(real_e, fake_e, margin=self.margin)
        return loss, {
            "d_loss": loss.detach(),
            "energy_real": real_e.detach().mean(),
            "energy_fake": fake_e.detach().mean(),
            "fake_below_margin": (fake_e.detach() < self.margin).float().mean(),
        }

    def reward_energy(self, disc: nn.Module) -> SequenceEnergy:
        """D itself: the generator minimizes E_G[D + w·log p_G]."""
        plain = _plain(disc)
        if not isinstance(plain, SequenceEnergy):
            raise ValueError(f"the 'ebgan' objective needs a SequenceEnergy, got {type(plain).__name__}")
        return plain

    def entropy_weight(self, config_w: float) -> float:
        """The configured w (1 = the paper)."""
        return finite_float(config_w, "entropy_weight", hint="1 = the paper")


@dataclass(frozen=True)
class SeqGANObjective(Objective):
    """SeqGAN (Yu et al. 2017): log-loss (1) on D = σ(ℓ); reward D(S) with no entropy term (weight 0)."""

    name: ClassVar[str] = "seqgan"

    def make_discriminator(self, energy: SequenceEnergy) -> nn.Module:
        """:class:`SeqGANClassifier` with logit ℓ = −energy (give a signed body, e.g. nonnegative=False)."""
        return SeqGANClassifier(energy)

    def discriminator_loss(
        self, disc: nn.Module, real: Tensor, fake: Tensor, policy: SequencePolicy
    ) -> tuple[Tensor, Stats]:
        """Negative of (1): E_data softplus(−ℓ) + E_G softplus(ℓ), minimized (real logits up, fake down)."""
        _expect(disc, SeqGANClassifier, self.name, "use make_discriminator(energy)")
        real_l, fake_l = disc(real), disc(fake)  # (N,), (M,) logits
        loss = seqgan_discriminator_loss(real_l, fake_l)
        return loss, {"d_loss": loss.detach(), **_classifier_stats(real_l, fake_l)}

    def reward_energy(self, disc: nn.Module) -> SequenceEnergy:
        """−D(S) = −σ(ℓ(S)): the generator maximizes E_G D(S)."""
        _expect(disc, SeqGANClassifier, self.name, "use make_discriminator(energy)")
        return ClassifierRewardEnergy(_plain(disc))

    def entropy_weight(self, config_w: float) -> float:
        """0: SeqGAN's reward has no entropy term (the configured w is not used)."""
        return 0.0


@dataclass(frozen=True)
class GANGCLObjective(Objective):
    """GAN-GCL (Finn et al. 2016): D = ẽ/(ẽ + p_G), ẽ = e^{−c}/Z, log-loss; generator (4) with w = 1."""

    init_log_z: float = 0.0
    name: ClassVar[str] = "gan_gcl"

    def __post_init__(self) -> None:
        object.__setattr__(self, "init_log_z", finite_float(self.init_log_z, "init_log_z"))

    def make_discriminator(self, energy: SequenceEnergy) -> nn.Module:
        """:class:`GANGCLDiscriminator`: the energy as the cost c, plus a learned scalar log Z."""
        return GANGCLDiscriminator(energy, init_log_z=self.init_log_z)

    def discriminator_loss(
        self, disc: nn.Module, real: Tensor, fake: Tensor, policy: SequencePolicy
    ) -> tuple[Tensor, Stats]:
        """Log-loss on ℓ = −c − log Z − log p_G (log p_G of the current policy, detached), minimized."""
        _expect(disc, GANGCLDiscriminator, self.name, "use make_discriminator(energy)")
        with torch.no_grad():
            real_lp, fake_lp = policy.log_prob(real), policy.log_prob(fake)  # (N,), (M,)
        real_l, fake_l = disc(real, real_lp), disc(fake, fake_lp)
        loss = seqgan_discriminator_loss(real_l, fake_l)
        log_z = _plain(disc).log_z.detach()
        stats = {
            "d_loss": loss.detach(),
            "cost_real": (-real_l.detach() - log_z - real_lp.to(real_l.dtype)).mean(),  # c(S) on data
            "cost_fake": (-fake_l.detach() - log_z - fake_lp.to(fake_l.dtype)).mean(),  # c(S) on p_G
            "log_z": log_z,
            **_classifier_stats(real_l, fake_l),
        }
        return loss, stats

    def reward_energy(self, disc: nn.Module) -> SequenceEnergy:
        """c(S) + log Z: with weight 1, Q is E[log(1 − D) − log D | prefix]."""
        _expect(disc, GANGCLDiscriminator, self.name, "use make_discriminator(energy)")
        return GCLRewardEnergy(_plain(disc))

    def entropy_weight(self, config_w: float) -> float:
        """1: GAN-GCL's generator loss is (4) with w = 1 (the configured w is not used)."""
        return 1.0


def make_objective(name: str, *, margin: float = 10.0, init_log_z: float = 0.0) -> Objective:
    """The objective called ``name`` (one of :data:`OBJECTIVES`); ``margin`` is used by ``"ebgan"``
    only, ``init_log_z`` by ``"gan_gcl"`` only."""
    kind = choice(name, "objective", OBJECTIVES)
    if kind == "ebgan":
        return EBGANObjective(margin)
    if kind == "seqgan":
        return SeqGANObjective()
    return GANGCLObjective(init_log_z)
