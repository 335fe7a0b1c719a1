"""Restoring a checkpoint into a run: configuration compatibility, model and optimizer fit.

A resumed run's configuration is compared key by key with the stored one
(:func:`review_config`): keys that define the experiment (:data:`EXPERIMENT_KEYS` — the data, the
seed, the sizes, the objective) may not change unless ``allow_config_change=True``; every other
key (phase lengths, logging, checkpoints, learning rates, …) is the new run's to set and is applied.
:func:`restore` checks everything before it changes anything — the configuration, model names,
keys, shapes and dtypes, optimizer groups and state shapes — then loads models, optimizers (with the
*current* optimizers' learning rate, betas, eps and weight decay) and RNG states in place.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from gan_equiv.train.checkpoint import Checkpoint, CheckpointError, config_as_dict
from gan_equiv.train.rng_state import restore_rng_states

#: config keys whose change makes a checkpoint's weights unfit (a key also covers its sub-keys).
ARCHITECTURE_KEYS = ("n_items", "horizon", "generator", "energy")

#: config keys that define the experiment: refused on resume unless ``allow_config_change=True``.
EXPERIMENT_KEYS = (
    "data", "data_path", "seed", "n_train", "n_test", *ARCHITECTURE_KEYS, "objective", "generator_estimator",
)  # fmt: skip

#: optimizer ``param_groups`` settings a resumed run takes from its own (new) optimizers.
OPTIMIZER_SETTINGS = ("lr", "betas", "eps", "weight_decay")

Difference = tuple[str, Any, Any]


@dataclass(frozen=True)
class ConfigReview:
    """How a resumed run's configuration differs from the checkpoint's, as (dotted key, value in
    the checkpoint, value now): ``refused`` under the experiment keys, ``applied`` elsewhere."""

    refused: tuple[Difference, ...]
    applied: tuple[Difference, ...]


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
    return out


def _covered(key: str, keys: Sequence[str]) -> bool:
    return any(key == k or key.startswith(k + ".") for k in keys)


def _describe(diffs: Sequence[Difference]) -> str:
    return "; ".join(f"{k}: {va!r} in the checkpoint vs {vb!r} now" for k, va, vb in diffs)


def config_differences(
    saved_config: Mapping[str, Any] | Any,
    current_config: Mapping[str, Any] | Any,
    keys: Sequence[str] | None = None,
) -> list[Difference]:
    """(dotted key, saved value, current value) for each key under ``keys`` (None: every key) that
    differs; a key absent on one side shows ``'<missing>'``."""
    a, b = _flatten(config_as_dict(saved_config)), _flatten(config_as_dict(current_config))
    missing = "<missing>"
    diffs = []
    for key in sorted(set(a) | set(b)):
        if keys is None or _covered(key, keys):
            va, vb = a.get(key, missing), b.get(key, missing)
            if va != vb:
                diffs.append((key, va, vb))
    return diffs


def review_config(
    saved_config: Mapping[str, Any] | Any,
    current_config: Mapping[str, Any] | Any,
    keys: Sequence[str] = EXPERIMENT_KEYS,
) -> ConfigReview:
    """Split every difference between the two configurations into ``refused`` (under ``keys``) and
    ``applied`` (the rest: the current value is used)."""
    diffs = config_differences(saved_config, current_config)
    return ConfigReview(
        refused=tuple(d for d in diffs if _covered(d[0], keys)),
        applied=tuple(d for d in diffs if not _covered(d[0], keys)),
    )


def check_compatible(
    saved_config: Mapping[str, Any] | Any,
    current_config: Mapping[str, Any] | Any,
    keys: Sequence[str] = EXPERIMENT_KEYS,
    *,
    allow_config_change: bool = False,
) -> ConfigReview:
    """Raise :class:`CheckpointError` listing every key under ``keys`` whose value differs, unless
    ``allow_config_change``; return the :class:`ConfigReview` (its ``applied`` keys are to report)."""
    review = review_config(saved_config, current_config, keys)
    if review.refused and not allow_config_change:
        raise CheckpointError(
            f"the checkpoint was made for a different experiment ({_describe(review.refused)}); resume "
            "with the checkpoint's settings, allow the change explicitly (allow_config_change=True, "
            "--allow-config-change), or start a new run"
        )
    return review


def _check_model(name: str, saved: Mapping[str, Tensor], model: nn.Module) -> None:
    current = model.state_dict()
    missing = [k for k in current if k not in saved]
    unexpected = [k for k in saved if k not in current]
    if missing or unexpected:
        raise CheckpointError(
            f"model {name!r} does not match the checkpoint: missing in the checkpoint {missing}, "
            f"not in the current model {unexpected} (different architecture?)"
        )
    for key, tensor in current.items():
        old = saved[key]
        if tuple(old.shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"model {name!r} parameter {key!r} has shape {tuple(old.shape)} in the checkpoint but "
                f"{tuple(tensor.shape)} in the current model (different n_items/horizon/sizes?)"
            )
        if old.dtype != tensor.dtype:
            raise CheckpointError(
                f"model {name!r} parameter {key!r} is {old.dtype} in the checkpoint but {tensor.dtype} now"
            )


def _check_optimizer(name: str, saved: Mapping[str, Any], opt: torch.optim.Optimizer) -> None:
    groups = saved.get("param_groups", [])
    if len(groups) != len(opt.param_groups):
        raise CheckpointError(
            f"optimizer {name!r} has {len(groups)} parameter groups in the checkpoint, "
            f"{len(opt.param_groups)} now"
        )
    state = saved.get("state", {})
    for g, (old, cur) in enumerate(zip(groups, opt.param_groups, strict=True)):
        if len(old["params"]) != len(cur["params"]):
            raise CheckpointError(
                f"optimizer {name!r} group {g} has {len(old['params'])} parameters in the checkpoint, "
                f"{len(cur['params'])} now"
            )
        for pid, param in zip(old["params"], cur["params"], strict=True):
            for key, value in state.get(pid, {}).items():
                if isinstance(value, Tensor) and value.ndim and tuple(value.shape) != tuple(param.shape):
                    raise CheckpointError(
                        f"optimizer {name!r} state {key!r} of parameter {pid} has shape "
                        f"{tuple(value.shape)} in the checkpoint but the parameter is {tuple(param.shape)}"
                    )


def _load_optimizer(opt: torch.optim.Optimizer, saved: Mapping[str, Any], keep: str) -> None:
    """``opt.load_state_dict`` of a copy of ``saved`` (torch would share its tensors); with
    ``keep = "current"`` the :data:`OPTIMIZER_SETTINGS` ``opt`` was built with are put back."""
    current = [{k: group[k] for k in OPTIMIZER_SETTINGS if k in group} for group in opt.param_groups]
    opt.load_state_dict(copy.deepcopy(dict(saved)))  # own copies: steps must not alter the checkpoint
    if keep == "current":
        for group, settings in zip(opt.param_groups, current, strict=True):
            group.update(settings)


def restore(
    checkpoint: Checkpoint,
    models: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
    *,
    current_config: Mapping[str, Any] | Any | None = None,
    compatible_keys: Sequence[str] = EXPERIMENT_KEYS,
    allow_config_change: bool = False,
    optimizer_settings: Literal["current", "saved"] = "current",
    numpy_rng: np.random.Generator | None = None,
    torch_generators: Mapping[str, torch.Generator] | None = None,
    restore_rng: bool = True,
) -> int:
    """Load models, optimizers and (by default) RNG states in place; returns the saved step.

    Everything is checked before anything is changed: the config (when ``current_config`` is given:
    :func:`check_compatible` on ``compatible_keys``), model names, keys, shapes and dtypes, optimizer
    groups and state shapes. Optimizer moments and step counts come from the checkpoint; their
    learning rate, betas, eps and weight decay are those the given optimizers were built with
    (``optimizer_settings = "current"``: a new ``--g_optim.lr`` takes effect) or the stored ones
    (``"saved"``).
    """
    if optimizer_settings not in ("current", "saved"):
        raise ValueError(f"optimizer_settings must be 'current' or 'saved', got {optimizer_settings!r}")
    optimizers = optimizers or {}
    if current_config is not None:
        check_compatible(
            checkpoint.config, current_config, compatible_keys, allow_config_change=allow_config_change
        )
    for kind, given, saved in (
        ("model", models, checkpoint.models),
        ("optimizer", optimizers, checkpoint.optimizers),
    ):
        absent = [n for n in given if n not in saved]
        if absent:
            raise CheckpointError(f"{checkpoint.path} has no {kind} named {absent}; it holds {sorted(saved)}")
    for name, model in models.items():
        _check_model(name, checkpoint.models[name], model)
    for name, opt in optimizers.items():
        _check_optimizer(name, checkpoint.optimizers[name], opt)
    for name, model in models.items():
        model.load_state_dict(checkpoint.models[name], strict=True)
    for name, opt in optimizers.items():
        _load_optimizer(opt, checkpoint.optimizers[name], optimizer_settings)
    if restore_rng:
        restore_rng_states(checkpoint.rng_states, numpy_rng, torch_generators)
    return checkpoint.step
