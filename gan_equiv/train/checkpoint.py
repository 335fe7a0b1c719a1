"""Checkpoints that ``torch.load(path, weights_only=True)`` reads, written atomically.

The payload holds only tensors, numbers, strings, None, lists/tuples and dicts — no pickled Python
objects, so it loads under torch ≥ 2.6's default ``weights_only=True`` and cannot run code. Layout
(format version :data:`FORMAT_VERSION`)::

    {"format": "gan_equiv.train.checkpoint", "format_version": 1, "torch_version": str, "step": int,
     "models": {name: {param/buffer name: Tensor}}, "optimizers": {name: optimizer.state_dict()},
     "config": JSON-safe dict (gan_equiv.train.config.config_to_dict), "rng": capture_rng_states(...),
     "extra": dict of plain values}

RNG states are stored as tensors and strings (python ``random``: a tensor of its 625 words; numpy
``Generator``: its bit-generator state as JSON; torch CPU / ``torch.Generator`` / CUDA: byte
tensors), so a resumed run on CPU continues bit for bit. Writes go to a temporary file in the same
directory, are flushed and fsynced, then ``os.replace``-d over the target: a crash leaves the
previous checkpoint intact.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import random
import tempfile
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

FORMAT_NAME = "gan_equiv.train.checkpoint"
FORMAT_VERSION = 1
#: config keys whose change makes a checkpoint unusable (a key also covers its sub-keys).
ARCHITECTURE_KEYS = ("n_items", "horizon", "generator", "energy")


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, of another format, or does not fit the current run."""


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint (tensors on ``map_location``)."""

    path: Path
    step: int
    models: dict[str, dict[str, Tensor]]
    optimizers: dict[str, dict[str, Any]]
    config: dict[str, Any]
    rng_states: dict[str, Any]
    extra: dict[str, Any]
    format_version: int
    torch_version: str


# --- plain-payload check ---------------------------------------------------------------------
_SCALARS = (bool, int, float, str, type(None))


def _check_plain(obj: Any, where: str) -> None:
    """Raise TypeError naming the first value that weights_only loading would refuse.

    Types are checked exactly: subclasses (numpy.float64, TorchVersion, namedtuples, enums) would
    be pickled as their own class and refused on load.
    """
    if isinstance(obj, Tensor) or type(obj) in _SCALARS:
        return
    if type(obj) in (dict, OrderedDict):
        for k, v in obj.items():
            if type(k) not in (str, int):
                raise TypeError(f"{where} has a key {k!r} of type {type(k).__name__}; use str or int keys")
            _check_plain(v, f"{where}[{k!r}]")
        return
    if type(obj) in (list, tuple):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]")
        return
    raise TypeError(
        f"{where} is a {type(obj).__module__}.{type(obj).__qualname__}; a checkpoint holds only tensors, "
        "numbers, strings, None, lists and dicts (convert with int()/float()/str(), torch.as_tensor or "
        ".tolist())"
    )


# --- RNG states --------------------------------------------------------------------------------
def _to_json(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": obj.tolist(), "dtype": str(obj.dtype)}
    if isinstance(obj, dict):
        return {k: _to_json(v) for k, v in obj.items()}
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _from_json(obj: Any) -> Any:
    if isinstance(obj, dict):
        if "__ndarray__" in obj:
            return np.asarray(obj["__ndarray__"], dtype=obj["dtype"])
        return {k: _from_json(v) for k, v in obj.items()}
    return obj


def capture_rng_states(
    numpy_rng: np.random.Generator | None = None,
    torch_generators: Mapping[str, torch.Generator] | None = None,
    *,
    include_cuda: bool | None = None,
) -> dict[str, Any]:
    """Every RNG state as tensors/strings: python ``random``, torch's global CPU RNG, ``numpy_rng``,
    each named ``torch.Generator``, and the CUDA RNGs (``include_cuda=None``: when CUDA is initialized)."""
    version, words, gauss_next = random.getstate()
    states: dict[str, Any] = {
        "python": {"version": version, "words": torch.tensor(words, dtype=torch.int64), "gauss": gauss_next},
        "torch_cpu": torch.get_rng_state(),
        "numpy": None if numpy_rng is None else json.dumps(_to_json(numpy_rng.bit_generator.state)),
        "generators": {
            name: {"device": str(g.device), "state": g.get_state()}
            for name, g in (torch_generators or {}).items()
        },
        "cuda": [],
    }
    if include_cuda is None:
        include_cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    if include_cuda:
        states["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    return states


def restore_rng_states(
    states: Mapping[str, Any],
    numpy_rng: np.random.Generator | None = None,
    torch_generators: Mapping[str, torch.Generator] | None = None,
) -> None:
    """Put back what :func:`capture_rng_states` recorded (in place, into the objects given).

    Errors (:class:`CheckpointError`) when a generator passed here has no saved state, when
    ``numpy_rng`` uses another bit generator, or when a state does not fit its generator's device.
    """
    missing = [k for k in ("python", "torch_cpu", "numpy", "generators") if k not in states]
    if missing:
        raise CheckpointError(f"RNG states lack {missing}; they must come from capture_rng_states")
    py = states["python"]
    random.setstate((int(py["version"]), tuple(int(w) for w in py["words"].tolist()), py["gauss"]))
    torch.set_rng_state(states["torch_cpu"].cpu())
    if numpy_rng is not None:
        if states.get("numpy") is None:
            raise CheckpointError("the checkpoint has no numpy RNG state but a numpy Generator was given")
        saved = _from_json(json.loads(states["numpy"]))
        kind = type(numpy_rng.bit_generator).__name__
        if saved.get("bit_generator") != kind:
            raise CheckpointError(
                f"saved numpy RNG is {saved.get('bit_generator')} but the current one is {kind}; "
                f"create it with np.random.Generator(np.random.{saved.get('bit_generator')}())"
            )
        numpy_rng.bit_generator.state = saved
    saved_gens = states.get("generators", {})
    for name, gen in (torch_generators or {}).items():
        if name not in saved_gens:
            raise CheckpointError(
                f"no saved state for torch.Generator {name!r}; the checkpoint has {sorted(saved_gens)}"
            )
        entry = saved_gens[name]
        try:
            gen.set_state(entry["state"].cpu())
        except RuntimeError as err:
            raise CheckpointError(
                f"cannot restore torch.Generator {name!r} (saved on {entry['device']}, now on "
                f"{gen.device}): {err}"
            ) from None
    cuda = states.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


# --- save ----------------------------------------------------------------------------------------
def _config_dict(config: Any) -> dict[str, Any]:
    if isinstance(config, Mapping):
        return dict(config)
    from gan_equiv.train.config import TrainConfig, config_to_dict

    if isinstance(config, TrainConfig):
        return config_to_dict(config)
    raise TypeError(f"config must be a dict or a TrainConfig, got {type(config).__name__}")


def save_checkpoint(
    path: str | Path,
    *,
    models: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
    step: int,
    config: Mapping[str, Any] | Any,
    rng_states: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically (temp file in the same directory, fsync, ``os.replace``).

    On any failure the temporary file is removed and an existing checkpoint at ``path`` is left as
    it was. Returns the path written.
    """
    target = Path(path)
    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "torch_version": str(torch.__version__),
        "step": int(step),
        "models": {name: dict(m.state_dict()) for name, m in models.items()},
        "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
        "config": _config_dict(config),
        "rng": dict(rng_states),
        "extra": dict(extra or {}),
    }
    _check_plain(payload, "checkpoint")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    with contextlib.suppress(OSError):  # persist the rename itself (POSIX; best effort)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return target


def checkpoint_path(directory: str | Path, step: int) -> Path:
    """The conventional file name of the checkpoint after ``step``: ``<dir>/ckpt_00000123.pt``."""
    return Path(directory) / f"ckpt_{int(step):08d}.pt"


def list_checkpoints(directory: str | Path) -> list[Path]:
    """``ckpt_*.pt`` files of a directory, oldest step first."""
    d = Path(directory)
    return sorted(d.glob("ckpt_*.pt")) if d.is_dir() else []


def latest_checkpoint(directory: str | Path) -> Path | None:
    """The highest-step checkpoint of a directory, or None."""
    found = list_checkpoints(directory)
    return found[-1] if found else None


# --- load ----------------------------------------------------------------------------------------
def _other_checkpoints_hint(path: Path) -> str:
    others = [p for p in list_checkpoints(path.parent) if p.resolve() != path.resolve()]
    if others:
        return f"; the last other checkpoint in that directory is {others[-1]}"
    return "; resume from an earlier good checkpoint or start afresh"


def _first_line(err: BaseException) -> str:
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    reason = [ln for ln in lines if ln.startswith("WeightsUnpickler error")]
    return (reason or lines or ["the file is empty or cut short"])[0]


def load_checkpoint(path: str | Path, *, map_location: str | torch.device | None = "cpu") -> Checkpoint:
    """Read a checkpoint with ``torch.load(..., weights_only=True)`` and check its structure."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"no checkpoint file at {p}{_other_checkpoints_hint(p)}")
    try:
        payload = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights_only" in str(err).lower() or "weights only" in str(err).lower():
            raise CheckpointError(
                f"{p} contains pickled Python objects that weights_only loading refuses (it was not "
                f"written by gan_equiv.train.checkpoint, or was altered): {_first_line(err)}"
            ) from None
        raise CheckpointError(f"{p} is corrupt or truncated ({err}){_other_checkpoints_hint(p)}") from None
    except Exception as err:  # zip, EOF, OS and unpickling errors of a damaged file
        raise CheckpointError(
            f"{p} is corrupt or truncated ({type(err).__name__}: {_first_line(err)})"
            f"{_other_checkpoints_hint(p)}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{p} is not a gan_equiv checkpoint (no 'format': {FORMAT_NAME!r} entry)")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{p} has checkpoint format version {version!r}; this code reads version {FORMAT_VERSION}"
        )
    spec = {
        "step": int,
        "models": dict,
        "optimizers": dict,
        "config": dict,
        "rng": dict,
        "extra": dict,
        "torch_version": str,
    }
    for key, kind in spec.items():
        if not isinstance(payload.get(key), kind):
            raise CheckpointError(f"{p}: entry {key!r} is missing or not a {kind.__name__}")
    return Checkpoint(
        path=p,
        step=payload["step"],
        models=payload["models"],
        optimizers=payload["optimizers"],
        config=payload["config"],
        rng_states=payload["rng"],
        extra=payload["extra"],
        format_version=version,
        torch_version=payload["torch_version"],
    )


# --- compatibility and restore -----------------------------------------------------------------
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
    a, b = _flatten(_config_dict(saved_config)), _flatten(_config_dict(current_config))
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
