"""Typed, validated configuration of the trainer (paper Algorithm 1 and its family) — one import point.

The pieces live by concern and are re-exported here:

- the tables: :class:`TrainConfig`, :class:`OptimConfig` (:mod:`gan_equiv.train.config_types`),
  :class:`GeneratorConfig`, :class:`EnergyConfig` (:mod:`gan_equiv.models.specs`), and the checked
  dataclass machinery with :class:`ConfigError` (:mod:`gan_equiv.schema`);
- dicts, TOML files and command-line overrides (:mod:`gan_equiv.train.config_io`);
- the presets, written as defaults plus what differs (:mod:`gan_equiv.train.presets`).

Every value is checked on construction; a bad one raises :class:`ConfigError` (a ``ValueError``)
naming the key, the value and the fix. Unknown keys are errors with a "did you mean" suggestion.
"""

from __future__ import annotations

from gan_equiv.models.specs import EnergyConfig, GeneratorConfig
from gan_equiv.schema import ConfigError
from gan_equiv.train.config_io import (
    apply_overrides,
    config_from_dict,
    config_to_dict,
    config_to_toml,
    load_config,
)
from gan_equiv.train.config_types import (
    PHASES,
    DSchedule,
    EstimatorName,
    ObjectiveName,
    OptimConfig,
    TrainConfig,
    resolve_device,
)
from gan_equiv.train.presets import PRESETS, seqgan_full_preset, seqgan_oracle_preset, tiny_exact_preset

__all__ = [
    "PHASES",
    "PRESETS",
    "ConfigError",
    "DSchedule",
    "EnergyConfig",
    "EstimatorName",
    "GeneratorConfig",
    "ObjectiveName",
    "OptimConfig",
    "TrainConfig",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "config_to_toml",
    "load_config",
    "resolve_device",
    "seqgan_full_preset",
    "seqgan_oracle_preset",
    "tiny_exact_preset",
]
