"""Checkpoints that ``torch.load(path, weights_only=True)`` reads, sealed, checked and written atomically.

The payload holds only tensors, numbers, strings, None, lists/tuples and dicts — no pickled Python
objects, so it loads under torch ≥ 2.6's default ``weights_only=True`` and cannot run code. Layout
(format version :data:`FORMAT_VERSION`)::

    {"format": "gan_equiv.train.checkpoint", "format_version": 2, "torch_version": str, "step": int,
     "models": {name: {param/buffer name: Tensor}}, "optimizers": {name: optimizer.state_dict()},
     "config": JSON-safe dict (gan_equiv.train.config.config_to_dict), "rng": capture_rng_states(...),
     "extra": dict of plain values}

This module is the file format: writing, reading and checking the structure. RNG states as
tensors and strings are :mod:`gan_equiv.train.rng_state`; fitting a checkpoint back into a run
(configuration compatibility, model and optimizer shapes) is :mod:`gan_equiv.train.checkpoint_restore`.
Writes go to a temporary file in the same directory, are flushed and fsynced, then
``os.replace``-d over the target: a crash leaves the previous checkpoint intact, and
:func:`remove_orphan_temporaries` clears what a killed write left. Version 2 files carry a SHA-256
seal over every byte (:mod:`gan_equiv.train.checkpoint_integrity`): a flipped bit, a NaN weight, a
foreign pickle global or a storage larger than its bytes is refused on load, and
:func:`newest_intact_checkpoint` finds the run's last checkpoint that passes.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import pickle
import re
import tempfile
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gan_equiv.train.checkpoint_integrity import (
    DEFAULT_MAX_CHECKPOINT_BYTES,
    CheckpointError,
    check_archive,
    non_finite_entries,
    seal,
    unseal,
)

__all__ = [
    "DEFAULT_MAX_CHECKPOINT_BYTES",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "Checkpoint",
    "CheckpointError",
    "CheckpointSearch",
    "checkpoint_path",
    "config_as_dict",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "newest_intact_checkpoint",
    "remove_orphan_temporaries",
    "save_checkpoint",
    "write_checkpoint_payload",
]

FORMAT_NAME = "gan_equiv.train.checkpoint"
#: 2: sealed with a SHA-256 archive comment (:mod:`gan_equiv.train.checkpoint_integrity`).
FORMAT_VERSION = 2

#: Names of the temporary files a write leaves when killed: ``.ckpt_00000012.pt.<random>.tmp``.
_TEMPORARY = re.compile(r"\.ckpt_\d+\.pt\.[A-Za-z0-9_]+\.tmp")


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


@dataclass(frozen=True)
class CheckpointSearch:
    """What :func:`newest_intact_checkpoint` found: the newest checkpoint that loads (None when none
    does) and every newer one it skipped, newest first, with the reason."""

    path: Path | None
    checkpoint: Checkpoint | None
    skipped: tuple[tuple[Path, str], ...]


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


def _previous(target: Path) -> str:
    """Which checkpoint a failed write of ``target`` left as it was."""
    if target.is_file():
        return f"the previous checkpoint {target} is intact"
    earlier = latest_checkpoint(target.parent)
    return f"the previous checkpoint {earlier} is intact" if earlier else "no earlier checkpoint was touched"


def _write_all(fd: int, data: bytes | memoryview) -> None:
    """``os.write`` until every byte of ``data`` is written."""
    view = memoryview(data)
    while len(view):
        view = view[os.write(fd, view) :]


def _no_space(err: BaseException, target: Path) -> CheckpointError | None:
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return CheckpointError(
            f"no space left on device while writing {target}; {_previous(target)}; free space or set "
            "out_dir to a disk with room"
        )
    return None


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
    """Write a sealed checkpoint atomically (temp file in the same directory, fsync, ``os.replace``).

    Refused before anything is written: a value weights_only loading would refuse (``TypeError``),
    a NaN or ±inf in a model or optimizer tensor (:class:`CheckpointError`: the run diverged). On
    any failure the temporary file is removed and an existing checkpoint at ``path`` is left as it
    was; a full disk (``ENOSPC``) becomes a :class:`CheckpointError` saying so. Returns the path.
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
    return write_checkpoint_payload(target, payload)


def write_checkpoint_payload(path: str | Path, payload: Mapping[str, Any]) -> Path:
    """Write a checkpoint ``payload`` (the layout above) sealed and atomically: what
    :func:`save_checkpoint` does once it has gathered the states. Same refusals and errors."""
    target = Path(path)
    _check_plain(dict(payload), "checkpoint")
    bad = non_finite_entries(payload.get("models", {}), "models")
    bad += non_finite_entries(payload.get("optimizers", {}), "optimizers")
    if bad:
        raise CheckpointError(
            f"refusing to write {target}: NaN or infinite values in {'; '.join(bad[:4])}"
            f"{' and more' if len(bad) > 4 else ''} — the run has diverged. Nothing was written "
            f"({_previous(target)}); resume from the last good checkpoint with a lower learning rate "
            "(g_optim.lr / d_optim.lr), or start again with one"
        )
    return write_sealed(target, payload)


def write_sealed(path: str | Path, payload: Mapping[str, Any]) -> Path:
    """``torch.save`` ``payload`` sealed (:func:`~gan_equiv.train.checkpoint_integrity.seal`) and
    atomically: a temporary file in the same directory, fsync, ``os.replace``; on failure the
    temporary is removed and a file already at ``path`` stays as it was; a full disk (``ENOSPC``)
    becomes a :class:`CheckpointError` saying so. What checkpoints and saved recommenders share."""
    target = Path(path)
    buffer = io.BytesIO()
    torch.save(dict(payload), buffer, pickle_protocol=2)
    pieces = seal(buffer.getbuffer())
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as err:
        raise (_no_space(err, target) or err) from err
    try:
        try:
            for piece in pieces:
                _write_all(fd, piece)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp_name, target)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        full = _no_space(err, target)
        if full is not None:
            raise full from err
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
    """The highest-step checkpoint of a directory, or None (not checked: see
    :func:`newest_intact_checkpoint`)."""
    found = list_checkpoints(directory)
    return found[-1] if found else None


def remove_orphan_temporaries(directory: str | Path) -> list[Path]:
    """Delete the ``.ckpt_<step>.pt.<random>.tmp`` files that killed writes of :func:`save_checkpoint`
    left in ``directory``; return them. Call it when a run starts, before it writes."""
    d = Path(directory)
    if not d.is_dir():
        return []
    removed = []
    for entry in sorted(d.iterdir()):
        if _TEMPORARY.fullmatch(entry.name) and (entry.is_file() or entry.is_symlink()):
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


# --- load ----------------------------------------------------------------------------------------
def _other_checkpoints_hint(path: Path) -> str:
    others = [p for p in list_checkpoints(path.parent) if p.resolve() != path.resolve()]
    if others:
        return f"; the last other checkpoint in that directory is {others[-1]}"
    return "; resume from an earlier good checkpoint or start afresh"


def _refused_global(err: BaseException) -> str:
    """The global torch's weights_only unpickler names in ``err`` (its advice is dropped)."""
    found = re.search(r"GLOBAL\s+([\w.]+)", str(err))
    return found.group(1) if found else "a Python object"


def load_checkpoint(
    path: str | Path,
    *,
    map_location: str | torch.device | None = "cpu",
    max_bytes: int = DEFAULT_MAX_CHECKPOINT_BYTES,
) -> Checkpoint:
    """Read a checkpoint: size cap, SHA-256 seal, archive and pickle checks, then
    ``torch.load(..., weights_only=True)``, the structure and finite values.

    Every refusal is a :class:`CheckpointError` naming the file, what is wrong and which other
    checkpoint of the directory to use. Files above ``max_bytes`` are not read.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"no checkpoint file at {p}{_other_checkpoints_hint(p)}")
    size = p.stat().st_size
    if size > max_bytes:
        raise CheckpointError(
            f"{p} is {size} bytes, above the limit max_bytes = {max_bytes}; it was not read — pass a "
            "larger max_bytes if this checkpoint is expected to be that large"
        )
    hint = _other_checkpoints_hint(p)
    try:
        data = p.read_bytes()
    except OSError as err:
        raise CheckpointError(f"cannot read {p}: {err.strerror or err}{hint}") from None
    unseal(data, p, hint)
    check_archive(data, p, max_bytes=max_bytes)
    try:
        payload = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{p} refers to {_refused_global(err)}, which weights_only loading refuses and no gan_equiv "
            f"checkpoint contains (it was not written by gan_equiv.train.checkpoint, or was altered){hint}"
        ) from None
    except Exception as err:  # zip, EOF and unpickling errors of a damaged file
        raise CheckpointError(f"{p} is corrupt or truncated ({type(err).__name__}: {err}){hint}") from None
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
    bad = non_finite_entries(payload["models"], "models") + non_finite_entries(
        payload["optimizers"], "optimizers"
    )
    if bad:
        raise CheckpointError(f"{p} holds NaN or infinite values in {'; '.join(bad[:4])}{hint}")
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


def newest_intact_checkpoint(
    directory: str | Path,
    *,
    map_location: str | torch.device | None = "cpu",
    max_bytes: int = DEFAULT_MAX_CHECKPOINT_BYTES,
) -> CheckpointSearch:
    """The newest checkpoint of ``directory`` that :func:`load_checkpoint` accepts, loaded, and the
    newer ones skipped with the reason for each (for ``--resume`` without a path)."""
    skipped: list[tuple[Path, str]] = []
    for path in reversed(list_checkpoints(directory)):
        try:
            found = load_checkpoint(path, map_location=map_location, max_bytes=max_bytes)
        except CheckpointError as err:
            skipped.append((path, str(err)))
            continue
        return CheckpointSearch(path=path, checkpoint=found, skipped=tuple(skipped))
    return CheckpointSearch(path=None, checkpoint=None, skipped=tuple(skipped))
