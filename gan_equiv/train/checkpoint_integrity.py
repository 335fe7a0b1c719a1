"""The bytes of a checkpoint file: its SHA-256 seal, the archive and pickle checks made before loading.

A checkpoint is the zip archive ``torch.save`` writes, sealed with a zip *archive comment* (legal
zip, so ``torch.load`` still reads the file)::

    <torch.save zip, end-of-central-directory record with comment length 81>
    b"gan_equiv.checkpoint sha256:" + 64 lowercase hex digits of SHA-256(every byte before them)

The digest covers every byte of the file but its own 64 hex digits, and those are compared byte
for byte, so a single flipped bit anywhere — tensor data, pickle, zip headers, padding, the
comment length or the digest itself — is refused (:func:`unseal`). Before ``torch.load`` runs,
:func:`check_archive` reads the zip directory and the pickle's instructions without building a
tensor: every record is stored uncompressed inside the file, the pickle names only the globals
a checkpoint contains (:data:`CHECKPOINT_GLOBALS`; a refused one is named) and every tensor
storage claims exactly the bytes of its record, so loading allocates at most the file's size,
itself capped by ``max_bytes``.
"""

from __future__ import annotations

import collections
import hashlib
import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

#: The start of the archive comment that carries the digest.
SEAL_PREFIX = b"gan_equiv.checkpoint sha256:"
_HEX_LEN = 64
_COMMENT_LEN = len(SEAL_PREFIX) + _HEX_LEN
_EOCD_SIGNATURE = b"PK\x05\x06"
_EOCD_LEN = 22  # end-of-central-directory record without its comment

#: Largest checkpoint file :func:`gan_equiv.train.checkpoint.load_checkpoint` reads by default (4 GiB).
DEFAULT_MAX_CHECKPOINT_BYTES = 4 << 30


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, of another format, or does not fit the current run."""


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.3g} GiB"


# --- the seal ----------------------------------------------------------------------------------
def seal(archive: bytes | memoryview) -> list[bytes | memoryview]:
    """The pieces of a sealed file (write them in order): ``archive`` with an 81-byte comment
    ``SEAL_PREFIX + SHA-256 hex`` of all bytes before the hex digits.

    ``archive`` must be a zip whose end-of-central-directory record ends the data with an empty
    comment (what ``torch.save`` writes); otherwise ``ValueError``.
    """
    view = memoryview(archive)
    if (
        len(view) < _EOCD_LEN
        or bytes(view[-_EOCD_LEN:][:4]) != _EOCD_SIGNATURE
        or bytes(view[-2:]) != b"\0\0"
    ):
        raise ValueError(
            "torch.save did not end its archive with an empty zip comment; this torch version writes "
            "a layout gan_equiv.train.checkpoint cannot seal"
        )
    head = [view[:-2], _COMMENT_LEN.to_bytes(2, "little") + SEAL_PREFIX]
    digest = hashlib.sha256()
    for part in head:
        digest.update(part)
    return [*head, digest.hexdigest().encode("ascii")]


def unseal(data: bytes, path: Path, hint: str) -> None:
    """Raise :class:`CheckpointError` unless ``data`` ends with a matching seal (see :func:`seal`).

    The 64 hex digits are compared as bytes (an upper-case digit is a changed byte, not the same
    digest); ``hint`` (which other checkpoint to use) ends every message.
    """
    if not data:
        raise CheckpointError(f"{path} is corrupt or truncated (the file is empty){hint}")
    tail = len(SEAL_PREFIX) + _HEX_LEN + 2
    if data[-_EOCD_LEN:][:4] == _EOCD_SIGNATURE and data[-2:] == b"\0\0":
        raise CheckpointError(
            f"{path} is a zip archive without the SHA-256 seal of gan_equiv checkpoints (format 2): it "
            f"was written by torch.save directly or by an older gan_equiv, and is not loaded{hint}"
        )
    if len(data) < _EOCD_LEN + _COMMENT_LEN or data[-tail:-_HEX_LEN] != (
        _COMMENT_LEN.to_bytes(2, "little") + SEAL_PREFIX
    ):
        raise CheckpointError(
            f"{path} is corrupt or truncated (it does not end with the SHA-256 seal every "
            f"gan_equiv checkpoint carries){hint}"
        )
    if data[-_EOCD_LEN - _COMMENT_LEN : -_EOCD_LEN - _COMMENT_LEN + 4] != _EOCD_SIGNATURE:
        raise CheckpointError(f"{path} is corrupt or truncated (its zip end record is damaged){hint}")
    expected = hashlib.sha256(memoryview(data)[:-_HEX_LEN]).hexdigest().encode("ascii")
    if data[-_HEX_LEN:] != expected:
        raise CheckpointError(
            f"{path} is corrupt or truncated: its SHA-256 digest does not match its bytes (the file "
            f"was changed or damaged after it was written){hint}"
        )


# --- what the pickle may contain ---------------------------------------------------------------
#: The tensor storage classes a checkpoint's pickle may name, with their element types.
_STORAGE_DTYPES: dict[str, torch.dtype] = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "UntypedStorage": torch.uint8,
}  # fmt: skip

#: (module, name) of every global a checkpoint's pickle may name: dicts, tensors and their storages.
CHECKPOINT_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2")}
    | {("torch", name) for name in _STORAGE_DTYPES}
)


class _StorageType:
    """A storage class named by the pickle (never the class itself): its element size."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.itemsize = _STORAGE_DTYPES[name].itemsize


class _Inspector(pickle.Unpickler):
    """Replays a checkpoint's pickle with inert stand-ins: collects the storage claims and refuses
    any global outside :data:`CHECKPOINT_GLOBALS`. Nothing is allocated beyond the pickle's size."""

    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))
        self.refused: list[str] = []
        self.storages: dict[str, tuple[str, int]] = {}  # key → (storage class, bytes claimed)

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in CHECKPOINT_GLOBALS:
            self.refused.append(f"{module}.{name}")
            raise pickle.UnpicklingError(f"global {module}.{name}")
        if module == "torch":
            return _StorageType(name)
        if name == "OrderedDict":
            return collections.OrderedDict
        return _inert

    def persistent_load(self, pid: Any) -> Any:
        ok = isinstance(pid, tuple) and len(pid) == 5 and pid[0] in ("storage", b"storage")
        if not ok or not isinstance(pid[1], _StorageType) or type(pid[4]) is not int or pid[4] < 0:
            raise pickle.UnpicklingError(f"a tensor storage reference {pid!r} of unknown form")
        key = pid[2].decode("ascii") if isinstance(pid[2], bytes) else str(pid[2])
        self.storages[key] = (pid[1].name, pid[4] * pid[1].itemsize)
        return None


def _inert(*args: Any) -> None:
    """Stand-in for ``torch._utils._rebuild_tensor_v2`` while inspecting: builds nothing."""
    return None


def check_archive(data: bytes, path: Path, *, max_bytes: int) -> None:
    """Refuse (:class:`CheckpointError`) an archive ``torch.load`` should not be given.

    Checks, without building a tensor: every zip record stored uncompressed inside the file;
    one ``data.pkl``; the pickle's globals all in :data:`CHECKPOINT_GLOBALS` (a refused one is
    named); each storage's claimed bytes (elements × element size) equal to its record's size;
    their total at most ``max_bytes``.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = {info.filename: info for info in archive.infolist()}
            for info in infos.values():
                inside = info.header_offset + info.compress_size <= len(data)
                if (
                    info.compress_type != zipfile.ZIP_STORED
                    or info.file_size != info.compress_size
                    or not inside
                ):
                    raise CheckpointError(
                        f"{path}: zip record {info.filename!r} is compressed or claims {info.file_size} "
                        f"bytes beyond the file; torch.save never writes that (the file was altered)"
                    )
            pickles = [name for name in infos if name.endswith("/data.pkl") or name == "data.pkl"]
            if len(pickles) != 1:
                raise CheckpointError(f"{path} has {len(pickles)} data.pkl records; a checkpoint has one")
            prefix = pickles[0][: -len("data.pkl")]
            inspector = _Inspector(archive.read(pickles[0]))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as err:
        raise CheckpointError(f"{path} is corrupt or truncated (zip: {err})") from None
    try:
        inspector.load()
    except Exception as err:  # any unpickling failure of the inert replay
        if inspector.refused:
            raise CheckpointError(
                f"{path} refers to the Python global {inspector.refused[0]}, which no gan_equiv "
                "checkpoint contains (it was not written by gan_equiv.train.checkpoint, or was altered); "
                "it was not loaded — use a checkpoint this code wrote"
            ) from None
        raise CheckpointError(f"{path} holds a pickle that is not a checkpoint's ({err})") from None
    total = 0
    for key, (kind, claimed) in inspector.storages.items():
        record = infos.get(f"{prefix}data/{key}")
        if record is None or record.file_size != claimed:
            size = "no record" if record is None else f"a record of {record.file_size} bytes"
            raise CheckpointError(
                f"{path}: tensor storage {key!r} ({kind}) claims {claimed} bytes but the file has {size} "
                "(the file was altered); it was not loaded"
            )
        total += claimed
    if total > max_bytes:
        raise CheckpointError(
            f"{path} holds {_gib(total)} of tensors, above the limit max_bytes = {_gib(max_bytes)}; pass "
            "a larger max_bytes if this checkpoint is expected to be that large"
        )


# --- values --------------------------------------------------------------------------------------
def non_finite_entries(tensors: dict[str, Any], where: str) -> list[str]:
    """``where[name]`` of every floating or complex tensor in ``tensors`` (nested dicts and lists
    searched) holding a NaN or ±inf, each with its count of such entries."""
    found: list[str] = []

    def visit(obj: Any, label: str) -> None:
        if isinstance(obj, torch.Tensor):
            # a NaN or ±inf entry makes the sum non-finite; only then (or on overflow) count them
            if (obj.is_floating_point() or obj.is_complex()) and not bool(torch.isfinite(obj.sum())):
                bad = int((~torch.isfinite(obj)).sum())
                if bad:
                    found.append(f"{label} ({bad} of {obj.numel()} entries)")
        elif isinstance(obj, dict):
            for k, v in obj.items():
                visit(v, f"{label}[{k!r}]")
        elif isinstance(obj, (list, tuple)):
            for i, v in enumerate(obj):
                visit(v, f"{label}[{i}]")

    visit(tensors, where)
    return found
