"""Checkpoints that ``torch.load(path, weights_only=True)`` reads, written atomically.

The payload holds only tensors, numbers, strings, None, lists/tuples and dicts — no pickled Python
objects, so it loads under torch ≥ 2.6's default ``weights_only=True`` and cannot run code. Layout
(format version :data:`FORMAT_VERSION`)::

    {"format": "gan_equiv.train.checkpoint", "format_version": 1, "torch_version": str, "step": int,
     "models": {name: {param/buffer name: Tensor}}, "optimizers": {name: optimizer.state_dict()},
     "config": JSON-safe dict (gan_equiv.train.config.config_to_dict), "rng": capture_rng_states(...),
     "extra": dict of plain values}

This module is the file format: writing, reading and checking the structure. RNG states as
tensors and strings are :mod:`gan_equiv.train.rng_state`; fitting a checkpoint back into a run
(configuration compatibility, model and optimizer shapes) is :mod:`gan_equiv.train.checkpoint_restore`.
Writes go to a temporary file in the same directory, are flushed and fsynced, then
``os.replace``-d over the target: a crash leaves the previous checkpoint intact.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import tempfile
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

FORMAT_NAME = "gan_equiv.train.checkpoint"
FORMAT_VERSION = 1


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


# --- save ----------------------------------------------------------------------------------------
def config_as_dict(config: Any) -> dict[str, Any]:
    """A run's config as the JSON-safe dict a checkpoint stores (a dict is taken as it is)."""
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
        "config": config_as_dict(config),
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
