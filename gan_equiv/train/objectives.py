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
wrapper in ``discriminator_loss`` (only its ``forward`` is called, once, on the concatenated
(N + M, T) batch); ``reward_energy`` wants the plain module. Objectives whose loss reads the
generator's exact log p_G(S) (``needs_log_p_g``: GAN-GCL) accept it precomputed for a whole pool
(``log_p_g=(real (N,), fake (M,))``), since p_G does not move during discriminator steps.

Every objective's stats include the same two separation metrics, computed on the step's minibatch
before its update (:func:`separation_stats`): ``d_acc``, the balanced fraction of sequences the
discriminator classifies correctly, and ``d_gap``, mean "realness" on data minus on p_G samples.
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


def separation_stats(real_score: Tensor, fake_score: Tensor, *, threshold: Tensor | float) -> Stats:
    """How a discriminator separates data from p_G samples, from a "realness" score (high = real).

    ``d_acc`` = ½·(share of real sequences with score > threshold + share of p_G sequences with
    score ≤ threshold): balanced accuracy in [0, 1], ½ for a discriminator that cannot tell.
    ``d_gap`` = mean score on real − mean score on p_G (> 0: real looks more real). The score is
    −D(S) for an energy (threshold: the midpoint of the two minibatch means, so that d_acc asks
    whether each sequence sits on its class's side of the midpoint) and the logit ℓ for a classifier
    (threshold 0: D's own rule D(S) > ½). Shapes (N,), (M,); all outputs detached 0-d float32.
    """
    real, fake = real_score.detach().float(), fake_score.detach().float()
    return {
        "d_acc": 0.5 * ((real > threshold).float().mean() + (fake <= threshold).float().mean()),
        "d_gap": real.mean() - fake.mean(),
    }


def _classifier_stats(real_logits: Tensor, fake_logits: Tensor) -> Stats:
    real, fake = real_logits.detach(), fake_logits.detach()
    return {
        "d_real_prob": torch.sigmoid(real).mean(),  # mean D(S) on data: → 1 for a perfect D
        "d_fake_prob": torch.sigmoid(fake).mean(),  # mean D(S) on p_G samples: → 0 for a perfect D
        **separation_stats(real, fake, threshold=0.0),  # ℓ > 0 ⇔ D(S) > ½
    }


def _widen(values: Tensor) -> Tensor:
    """float16/bfloat16 (autocast) → float32; float32 and float64 unchanged."""
    return values.float() if values.dtype in (torch.float16, torch.bfloat16) else values


def _joint_forward(disc: nn.Module, real: Tensor, fake: Tensor, *extra: Tensor) -> tuple[Tensor, Tensor]:
    """One forward of ``disc`` over the concatenated (N + M, T) batch, split back into (N,), (M,)."""
    out = disc(torch.cat([real, fake]), *extra)
    return out[: real.shape[0]], out[real.shape[0] :]


class Objective:
    """One member of the family: how the discriminator is built and trained, and what the generator reads."""

    name: ClassVar[str]
    #: Whether :meth:`discriminator_loss` reads the generator's log p_G(S) (GAN-GCL).
    needs_log_p_g: ClassVar[bool] = False

    def make_discriminator(self, energy: SequenceEnergy) -> nn.Module:
        """The discriminator module built around a body energy (its parameters go to the D optimizer)."""
        raise NotImplementedError

    def discriminator_loss(
        self,
        disc: nn.Module,
        real: Tensor,
        fake: Tensor,
        policy: SequencePolicy,
        *,
        log_p_g: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, Stats]:
        """(loss to *minimize*, detached stats incl. ``d_acc``/``d_gap``) on data ``real`` (N, T) and
        p_G samples ``fake`` (M, T); ``log_p_g`` (N,), (M,) is used where ``needs_log_p_g``."""
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
        self,
        disc: nn.Module,
        real: Tensor,
        fake: Tensor,
        policy: SequencePolicy,
        *,
        log_p_g: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, Stats]:
        """Eq. (3): E_data D + E_G[m − D]^+, minimized (real energies down, fake ones up to m).

        ``d_acc`` thresholds −D at the midpoint of the two minibatch mean energies."""
        real_e, fake_e = _joint_forward(disc, real, fake)  # (N,), (M,)
        real_e, fake_e = _widen(real_e), _widen(fake_e)  # bf16 outputs → float32 loss
        loss = ebgan_discriminator_loss(real_e, fake_e, margin=self.margin)
        real_d, fake_d = real_e.detach(), fake_e.detach()
        midpoint = -0.5 * (real_d.mean() + fake_d.mean())  # on the score −D
        return loss, {
            "d_loss": loss.detach(),
            "energy_real": real_d.mean(),
            "energy_fake": fake_d.mean(),
            "fake_below_margin": (fake_d < self.margin).float().mean(),
            **separation_stats(-real_d, -fake_d, threshold=midpoint),
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
        self,
        disc: nn.Module,
        real: Tensor,
        fake: Tensor,
        policy: SequencePolicy,
        *,
        log_p_g: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, Stats]:
        """Negative of (1): E_data softplus(−ℓ) + E_G softplus(ℓ), minimized (real logits up, fake down)."""
        _expect(disc, SeqGANClassifier, self.name, "use make_discriminator(energy)")
        real_l, fake_l = _joint_forward(disc, real, fake)  # (N,), (M,) logits
        real_l, fake_l = _widen(real_l), _widen(fake_l)  # bf16 outputs → float32 loss
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
    needs_log_p_g: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "init_log_z", finite_float(self.init_log_z, "init_log_z"))

    def make_discriminator(self, energy: SequenceEnergy) -> nn.Module:
        """:class:`GANGCLDiscriminator`: the energy as the cost c, plus a learned scalar log Z."""
        return GANGCLDiscriminator(energy, init_log_z=self.init_log_z)

    def discriminator_loss(
        self,
        disc: nn.Module,
        real: Tensor,
        fake: Tensor,
        policy: SequencePolicy,
        *,
        log_p_g: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, Stats]:
        """Log-loss on ℓ = −c − log Z − log p_G (log p_G of the current policy, detached), minimized:
        real logits up (c and log Z down on data), fake logits down. ``log_p_g`` = (real (N,),
        fake (M,)) precomputed, else computed here."""
        _expect(disc, GANGCLDiscriminator, self.name, "use make_discriminator(energy)")
        if log_p_g is None:
            with torch.no_grad():
                log_p_g = (policy.log_prob(real), policy.log_prob(fake))  # (N,), (M,)
        real_lp, fake_lp = (lp.detach() for lp in log_p_g)
        if real_lp.shape != (real.shape[0],) or fake_lp.shape != (fake.shape[0],):
            raise ValueError(
                f"log_p_g must be (N,), (M,) = ({real.shape[0]},), ({fake.shape[0]},); got "
                f"{tuple(real_lp.shape)}, {tuple(fake_lp.shape)} — pass policy.log_prob of each side"
            )
        real_l, fake_l = _joint_forward(disc, real, fake, torch.cat([real_lp, fake_lp]))
        real_l, fake_l = _widen(real_l), _widen(fake_l)  # bf16 outputs → float32 loss
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
