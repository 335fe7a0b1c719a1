"""Named runs, each written as the defaults plus what differs (the same values as ``configs/*.toml``).

The defaults of :class:`~gan_equiv.train.config_types.TrainConfig` are SeqGAN's synthetic-oracle
benchmark, so :func:`seqgan_oracle_preset` only names the run; :func:`seqgan_full_preset` adds
SeqGAN's LSTM generator and its discriminator schedule (its full size); :func:`tiny_exact_preset` changes
the sizes, the data and the energy so that everything can be checked exactly. A test asserts that
each preset differs from ``TrainConfig()`` in exactly the fields listed in :data:`PRESET_CHANGES`.
"""

from __future__ import annotations

from dataclasses import replace

from gan_equiv.train.config_types import TrainConfig


def seqgan_oracle_preset() -> TrainConfig:
    """SeqGAN's synthetic-oracle benchmark (Algorithm 1 with the loss pair (3)/(4)): V 5000, T 20,
    10k oracle samples, batch 64, K 16, G Adam 1e-2 clip 5, D Adam 1e-4, CNN energy with SeqGAN's
    filters — all of them the defaults (same as configs/seqgan_oracle.toml)."""
    return replace(TrainConfig(), name="seqgan_oracle")


def seqgan_full_preset() -> TrainConfig:
    """SeqGAN's synthetic-oracle experiment at its full size and schedule (Yu et al. 2017, its code):
    V 5000, T 20, LSTM generator (embedding 32, hidden 32), 120 MLE epochs, 50 discriminator
    pretraining pools, 200 adversarial rounds of one generator step (batch 64, K 16, Adam 1e-2,
    clip 5) and 5 pools × (10,000 fresh samples, 3 epochs) of discriminator steps
    (``d_schedule = "seqgan"``). Any ``objective`` uses it (same as configs/seqgan_full.toml)."""
    base = TrainConfig()
    return replace(
        base, name="seqgan_full", generator=replace(base.generator, cell="lstm"), d_schedule="seqgan"
    )


def tiny_exact_preset() -> TrainConfig:
    """A tiny exactly enumerable problem (V 4, T 4: 256 sequences) with Gibbs data (eq. 8) and a
    linear energy θ·f over ``time_last`` features, so KL(p_data‖p_G) and the learned cost can be
    checked exactly; the margin m of (3) is large enough never to bind (same as configs/tiny_exact.toml)."""
    base = TrainConfig()
    return replace(
        base,
        name="tiny_exact",
        data="gibbs",
        n_items=4,
        horizon=4,
        n_train=2000,
        n_test=2000,
        batch_size=128,
        seed=0,
        device="cpu",
        pretrain_g_epochs=20,
        pretrain_d_steps=500,
        adversarial_rounds=1000,
        g_steps=2,
        d_steps=1,
        reward_to_go=True,
        baseline=True,
        margin=100.0,
        generator=replace(base.generator, embed_dim=8),
        energy=replace(base.energy, kind="linear"),
        g_optim=replace(base.g_optim, lr=5e-3),
        d_optim=replace(base.d_optim, lr=1e-2),
        log_every=50,
        eval_every=50,
        checkpoint_every=500,
        progress=False,
    )


#: The dotted keys in which each preset differs from ``TrainConfig()`` (checked by a test).
PRESET_CHANGES: dict[str, tuple[str, ...]] = {
    "seqgan_oracle": ("name",),
    "seqgan_full": ("name", "generator.cell", "d_schedule"),
    "tiny_exact": (
        "name", "data", "n_items", "horizon", "n_train", "n_test", "batch_size", "seed", "device",
        "pretrain_g_epochs", "pretrain_d_steps", "adversarial_rounds", "g_steps", "d_steps",
        "reward_to_go", "baseline", "margin", "generator.embed_dim", "energy.kind", "g_optim.lr",
        "d_optim.lr", "log_every", "eval_every", "checkpoint_every", "progress",
    ),
}  # fmt: skip

#: Preset name → constructor (the CLI's ``--preset`` choices).
PRESETS = {
    "seqgan_oracle": seqgan_oracle_preset,
    "seqgan_full": seqgan_full_preset,
    "tiny_exact": tiny_exact_preset,
}
