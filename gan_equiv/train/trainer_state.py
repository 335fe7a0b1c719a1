"""A trainer's state in a checkpoint: which models, optimizers and random streams are saved, and
how a checkpoint is fitted back into a :class:`~gan_equiv.train.trainer.Trainer`.

The policy and its optimizer are always saved; once built, the discriminator and its optimizer
under the name ``"energy"`` (an MLE-only run has none). The discriminator is the objective's module
around the energy: the energy itself for ``ebgan`` (so its keys are the energy's), SeqGAN's
classifier (``body.*``) or GAN-GCL's cost and learned log Z (``cost_net.*``, ``log_z``), so GAN-GCL's
log Z and its Adam moments are saved and restored with the rest. The progress counters go under
``extra``; the configuration is stored whole and checked on resume: keys that define the experiment
(:data:`~gan_equiv.train.checkpoint_restore.EXPERIMENT_KEYS`: data, seed, sizes, objective …) must
agree unless the change is allowed; the others (rounds, logging, learning rates …) take the new
values, the learning rates included.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from gan_equiv.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from gan_equiv.train.checkpoint_restore import ConfigReview, check_compatible, restore
from gan_equiv.train.config import ConfigError, config_from_dict, config_to_dict
from gan_equiv.train.rng_state import capture_rng_states
from gan_equiv.train.run_log import Progress


def _parts(trainer: Any, with_energy: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    models: dict[str, torch.nn.Module] = {"policy": trainer.policy}
    optimizers: dict[str, torch.optim.Optimizer] = {"policy": trainer.g_opt}
    if with_energy:  # the discriminator: the energy, plus log Z for GAN-GCL
        models["energy"], optimizers["energy"] = trainer.discriminator, trainer.d_opt
    return models, optimizers


def write_trainer_checkpoint(trainer: Any, target: Path) -> Path:
    """Save the trainer's models, optimizers, config, random streams and progress to ``target``."""
    models, optimizers = _parts(trainer, trainer.has_energy)
    return save_checkpoint(
        target,
        models=models,
        optimizers=optimizers,
        step=trainer.progress.step,
        config=config_to_dict(trainer.config),
        rng_states=capture_rng_states(None, trainer.rng_streams),
        extra={"progress": asdict(trainer.progress)},
    )


def resume_trainer(
    trainer: Any, path: str | Path, *, allow_config_change: bool = False
) -> tuple[Progress, ConfigReview]:
    """Load ``path`` into the trainer in place (building its energy if the checkpoint has one);
    return the saved progress and how the configuration differs (``applied``: keys that take the new
    value; ``refused``: experiment keys, an error unless ``allow_config_change``). Older
    checkpoints lacking newer config keys take their defaults."""
    ckpt = load_checkpoint(path, map_location=trainer.device)
    try:
        saved = config_to_dict(config_from_dict(ckpt.config))
    except ConfigError as err:
        raise CheckpointError(f"{ckpt.path} holds a configuration this code cannot read: {err}") from None
    review = check_compatible(
        saved, config_to_dict(trainer.config), allow_config_change=allow_config_change
    )
    models, optimizers = _parts(trainer, "energy" in ckpt.models)
    restore(ckpt, models, optimizers, torch_generators=trainer.rng_streams)
    return Progress(**{k: int(v) for k, v in ckpt.extra["progress"].items()}), review
