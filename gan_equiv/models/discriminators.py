"""Discriminators of the GAN ⇄ IRL family over any :class:`~gan_equiv.models.energies.SequenceEnergy`.

- EB-SeqGAN (the paper, eq. 3): the energy itself, D(S) = E(S); **low = realistic**.
- SeqGAN (Yu et al. 2017, eq. 1): :class:`SeqGANClassifier`, D(S) = σ(ℓ(S)) with the logit
  ℓ(S) = −E(S) of a body energy (low energy = "real"); use ``CNNEnergy(..., nonnegative=False)`` as
  the body, or any signed energy.
- GAN-GCL (Finn, Christiano, Abbeel & Levine 2016): :class:`GANGCLDiscriminator`, a cost network c
  (any energy) and a learned scalar log Z; D(S) = ẽ/(ẽ + p_G(S)) with ẽ = exp(−c(S))/Z, so its
  logit is ℓ = −c − log Z − log p_G (``gan_equiv.losses.gan_gcl_logits``).

The generator step of every member reads a *reward energy* (low = good) for the rollouts of eq. (14):
:class:`ClassifierRewardEnergy` (−D(S), SeqGAN) and :class:`GCLRewardEnergy` (c(S) + log Z, GAN-GCL).
All shapes: sequences (N, T) int64 → (N,).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gan_equiv.checks import finite_float
from gan_equiv.losses import gan_gcl_logits
from gan_equiv.models.energies import AutoencoderEnergy, SequenceEnergy


def _check_body(body: SequenceEnergy, role: str) -> SequenceEnergy:
    if not isinstance(body, SequenceEnergy):
        raise ValueError(
            f"{role} must be a SequenceEnergy, got {type(body).__name__}; build one from "
            "gan_equiv.models.energies (e.g. CNNEnergy(V, T, nonnegative=False))"
        )
    return body


class SeqGANClassifier(nn.Module):
    """SeqGAN's discriminator as a classifier over a body energy: ℓ(S) = −E(S), D(S) = σ(ℓ(S)).

    ``forward`` returns the logit ℓ (N,) — what ``losses.seqgan_discriminator_loss`` takes;
    :meth:`prob_real` returns D(S) = σ(ℓ). The body's sign convention is kept: a low energy means
    "real". A non-negative body (softplus head) caps D at ½, so the classifier refuses it unless
    ``allow_nonnegative_body=True``.
    """

    def __init__(self, body: SequenceEnergy, *, allow_nonnegative_body: bool = False) -> None:
        super().__init__()
        self.body = _check_body(body, "body")
        if not isinstance(allow_nonnegative_body, bool):
            raise ValueError(f"allow_nonnegative_body must be True or False, got {allow_nonnegative_body!r}")
        nonnegative = getattr(body, "nonnegative", isinstance(body, AutoencoderEnergy))
        if nonnegative and not allow_nonnegative_body:
            raise ValueError(
                f"{type(body).__name__} has a non-negative (softplus) head, so ℓ = −E ≤ 0 and D(S) ≤ ½; "
                "build it with nonnegative=False or pass allow_nonnegative_body=True"
            )
        self.n_items = body.n_items
        self.horizon = body.horizon

    @property
    def device(self) -> torch.device:
        return self.body.device

    def forward(self, sequences: Tensor) -> Tensor:
        """Logit ℓ(S) = log D − log(1 − D) = −E(S): (N,)."""
        return -self.body(sequences)

    def prob_real(self, sequences: Tensor) -> Tensor:
        """D(S) = σ(ℓ(S)) ∈ (0, 1), the probability that S is real: (N,)."""
        return torch.sigmoid(self(sequences))


class GANGCLDiscriminator(nn.Module):
    """GAN-GCL's discriminator (Finn et al. 2016): a cost network c(S) and a learned scalar log Z.

    ``forward(sequences, log_p_g)`` returns the logit ℓ = −c(S) − log Z − log p_G(S) (N,), where
    ``log_p_g`` (N,) is the exact log-probability of each sequence under the current generator
    (detached). :meth:`cost` is c(S) (low = realistic, the MaxEnt cost of eq. 8).
    """

    def __init__(self, cost: SequenceEnergy, *, init_log_z: float = 0.0) -> None:
        super().__init__()
        self.cost_net = _check_body(cost, "cost")
        dtype = next(cost.parameters()).dtype if any(True for _ in cost.parameters()) else torch.float32
        init_log_z = finite_float(init_log_z, "init_log_z", hint="the starting log Z of the discriminator")
        self.log_z = nn.Parameter(torch.tensor(init_log_z, dtype=dtype))
        self.n_items = cost.n_items
        self.horizon = cost.horizon

    @property
    def device(self) -> torch.device:
        return self.log_z.device

    def cost(self, sequences: Tensor) -> Tensor:
        """c(S): (N,)."""
        return self.cost_net(sequences)

    def forward(self, sequences: Tensor, log_p_g: Tensor) -> Tensor:
        """ℓ(S) = −c(S) − log Z − log p_G(S): (N,)."""
        if log_p_g.shape != (sequences.shape[0],):
            raise ValueError(
                f"log_p_g must have shape (N,) = ({sequences.shape[0]},), got {tuple(log_p_g.shape)}; "
                "pass policy.log_prob(sequences)"
            )
        cost = self.cost(sequences)
        return gan_gcl_logits(cost, self.log_z.to(cost.dtype), log_p_g.to(cost.dtype))


class ClassifierRewardEnergy(SequenceEnergy):
    """SeqGAN's reward as an energy for the rollouts: E(S) = −D(S) = −σ(ℓ(S)) (low = good).

    The generator *maximizes* E_G D(S) (SeqGAN's code), i.e. *minimizes* E_G[−D(S)] with entropy
    weight 0. Gradients do not flow into the classifier (the reward is a fixed weight of eq. 14).
    """

    def __init__(self, classifier: SeqGANClassifier) -> None:
        super().__init__(classifier.n_items, classifier.horizon)
        self.classifier = classifier

    @property
    def device(self) -> torch.device:
        return self.classifier.device

    def forward(self, sequences: Tensor) -> Tensor:
        with torch.no_grad():
            return -self.classifier.prob_real(sequences)


class GCLRewardEnergy(SequenceEnergy):
    """GAN-GCL's generator reward as an energy: E(S) = c(S) + log Z (low = good), entropy weight 1.

    With it, Q of eq. (14) is E[c(S) + log Z + log p_G(S) | s_1 … s_t] = E[log(1 − D) − log D | …]:
    the generator loss of ``losses.gan_gcl_generator_loss`` (the constant log Z does not change the
    expected gradient). Gradients do not flow into the discriminator.
    """

    def __init__(self, discriminator: GANGCLDiscriminator) -> None:
        super().__init__(discriminator.n_items, discriminator.horizon)
        self.discriminator = discriminator

    @property
    def device(self) -> torch.device:
        return self.discriminator.device

    def forward(self, sequences: Tensor) -> Tensor:
        with torch.no_grad():
            cost = self.discriminator.cost(sequences)
            return cost + self.discriminator.log_z.to(cost.dtype)
