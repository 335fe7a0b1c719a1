"""Training (the paper's Algorithm 1 and its family): the trainer, Monte-Carlo rollouts, objectives,
config, checkpoints, data-parallel steps, data problems and oracle metrics. Imports ``models`` only.
"""

from gan_equiv.train.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    newest_intact_checkpoint,
    remove_orphan_temporaries,
    save_checkpoint,
)
from gan_equiv.train.config import (
    PRESETS,
    ConfigError,
    OptimConfig,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    config_to_toml,
    load_config,
    resolve_device,
    seqgan_oracle_preset,
    tiny_exact_preset,
)
from gan_equiv.train.config_types import PHASES
from gan_equiv.train.discriminator_schedule import run_discriminator_steps, run_energy_steps
from gan_equiv.train.entropy_gradient import analytic_entropy_surrogate
from gan_equiv.train.experiment import RunSetup, prepare_run
from gan_equiv.train.objectives import OBJECTIVES, Objective, make_objective
from gan_equiv.train.oracle_metrics import distinct_n, entropy_per_token, nll_oracle, nll_test
from gan_equiv.train.presets import seqgan_full_preset
from gan_equiv.train.problems import ExactProblem, gibbs_problem, markov_chain_problem
from gan_equiv.train.rollouts import mc_q_values, naive_mc_q_values
from gan_equiv.train.trainer import Trainer

__all__ = [
    "OBJECTIVES",
    "PHASES",
    "PRESETS",
    "CheckpointError",
    "ConfigError",
    "ExactProblem",
    "Objective",
    "OptimConfig",
    "RunSetup",
    "TrainConfig",
    "Trainer",
    "analytic_entropy_surrogate",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "config_to_toml",
    "distinct_n",
    "entropy_per_token",
    "gibbs_problem",
    "latest_checkpoint",
    "load_checkpoint",
    "load_config",
    "make_objective",
    "markov_chain_problem",
    "mc_q_values",
    "naive_mc_q_values",
    "newest_intact_checkpoint",
    "nll_oracle",
    "nll_test",
    "prepare_run",
    "remove_orphan_temporaries",
    "resolve_device",
    "run_discriminator_steps",
    "run_energy_steps",
    "save_checkpoint",
    "seqgan_full_preset",
    "seqgan_oracle_preset",
    "tiny_exact_preset",
]
