"""Restoring a checkpoint into a run: configuration compatibility, model and optimizer fit.

:func:`restore` checks everything before it changes anything — the configuration on the keys that
fix the architecture (:data:`ARCHITECTURE_KEYS`), model names, keys, shapes and dtypes, optimizer
groups and state shapes — then loads models, optimizers and RNG states in place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from gan_equiv.train.checkpoint import Checkpoint, CheckpointError, config_as_dict
from gan_equiv.train.rng_state import restore_rng_states

#: config keys whose change makes a checkpoint unusable (a key also covers its sub-keys).
ARCHITECTURE_KEYS = ("n_items", "horizon", "generator", "energy")


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
    return out


def config_differences(
    saved_config: Mapping[str, Any] | Any, current_config: Mapping[str, Any] | Any, keys: Sequence[str]
) -> list[tuple[str, Any, Any]]:
    """(dotted key, saved value, current value) for each key under ``keys`` that differs."""
    a, b = _flatten(config_as_dict(saved_config)), _flatten(config_as_dict(current_config))
    missing = "<missing>"
    diffs = []
    for key in sorted(set(a) | set(b)):
        if any(key == k or key.startswith(k + ".") for k in keys):
            va, vb = a.get(key, missing), b.get(key, missing)
            if va != vb:
                diffs.append((key, va, vb))
    return diffs


def check_compatible(
    saved_config: Mapping[str, Any] | Any,
    current_config: Mapping[str, Any] | Any,
    keys: Sequence[str] = ARCHITECTURE_KEYS,
) -> None:
    """Raise :class:`CheckpointError` listing every key under ``keys`` whose value differs."""
    diffs = config_differences(saved_config, current_config, keys)
    if diffs:
        lines = "; ".join(f"{k}: {va!r} in the checkpoint vs {vb!r} now" for k, va, vb in diffs)
        raise CheckpointError(
            f"the checkpoint was made with a different configuration ({lines}); resume with the "
            "checkpoint's settings or start a new run"
        )


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


def restore(
    checkpoint: Checkpoint,
    models: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
    *,
    current_config: Mapping[str, Any] | Any | None = None,
    compatible_keys: Sequence[str] = ARCHITECTURE_KEYS,
    numpy_rng: np.random.Generator | None = None,
    torch_generators: Mapping[str, torch.Generator] | None = None,
    restore_rng: bool = True,
) -> int:
    """Load models, optimizers and (by default) RNG states in place; returns the saved step.

    Everything is checked before anything is changed: the config (when ``current_config`` is given,
    on ``compatible_keys``), model names, keys, shapes and dtypes, optimizer groups and state shapes.
    """
    optimizers = optimizers or {}
    if current_config is not None:
        check_compatible(checkpoint.config, current_config, compatible_keys)
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
        opt.load_state_dict(checkpoint.optimizers[name])
    if restore_rng:
        restore_rng_states(checkpoint.rng_states, numpy_rng, torch_generators)
    return checkpoint.step
