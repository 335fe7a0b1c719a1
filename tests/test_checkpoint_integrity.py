"""Tamper-evident checkpoints: the SHA-256 seal refuses every flipped bit, NaN weights are neither
written nor read, a full disk keeps the previous checkpoint, killed writes are cleaned up, the
newest intact checkpoint is found, and the reader caps what it allocates."""

from __future__ import annotations

import errno
import io
import os
import pickletools
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_equiv.models.policies import GRUPolicy
from gan_equiv.train import checkpoint as ckpt_mod
from gan_equiv.train.checkpoint import (
    FORMAT_NAME,
    FORMAT_VERSION,
    CheckpointError,
    checkpoint_path,
    load_checkpoint,
    newest_intact_checkpoint,
    remove_orphan_temporaries,
    save_checkpoint,
    write_checkpoint_payload,
)
from gan_equiv.train.checkpoint_integrity import SEAL_PREFIX, seal

V, T = 5, 4


def parts(seed: int = 0):
    torch.manual_seed(seed)
    policy = GRUPolicy(V, T, embed_dim=4, hidden_dim=6)
    opt = torch.optim.Adam(policy.parameters(), lr=1e-2)
    loss = -policy.log_prob(torch.tensor([[0, 1, 2, 3], [4, 4, 0, 1]])).mean()
    loss.backward()
    opt.step()  # Adam state holds moments too
    return {"policy": policy}, {"policy": opt}


def save(path: Path, step: int, seed: int = 0) -> Path:
    models, opts = parts(seed)
    return save_checkpoint(
        path, models=models, optimizers=opts, step=step, config={"seed": seed}, rng_states={}
    )


def sealed_bytes(payload: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return b"".join(bytes(p) for p in seal(buffer.getvalue()))


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# --- the seal --------------------------------------------------------------------------------------
def test_every_flipped_bit_is_refused(tmp_path: Path) -> None:
    good = save(checkpoint_path(tmp_path, 1), 1)
    data = good.read_bytes()
    assert data[-64 - len(SEAL_PREFIX) : -64] == SEAL_PREFIX
    assert torch.load(good, weights_only=True)["step"] == 1  # still a plain torch zip
    n_bits = 8 * len(data)
    rng = np.random.default_rng(20240614)
    bits = set(rng.choice(n_bits, size=300, replace=False).tolist())
    digest_start = len(data) - 64
    bits |= {0, n_bits - 1, 8 * digest_start, 8 * (digest_start - 3)}  # first, last, digest, comment
    letters = [i for i in range(digest_start, len(data)) if data[i : i + 1] in b"abcdef"]
    bits |= {8 * i + 5 for i in letters[:3]}  # lowercase → uppercase hex: the same digest value
    # a bit inside tensor data (the embedding record)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        record = next(i for i in archive.infolist() if "/data/" in i.filename)
    body = record.header_offset + 30 + len(record.filename) + len(record.extra)
    bits.add(8 * body + 3)
    target = tmp_path / "flipped.pt"
    for bit in sorted(bits):
        target.write_bytes(flip(data, bit))
        with pytest.raises(CheckpointError, match="corrupt or truncated") as info:
            load_checkpoint(target)
        message = str(info.value)
        assert str(target) in message and str(good) in message, (bit, message)  # names file and fix
    assert load_checkpoint(good).step == 1


def test_a_resealed_file_with_nan_weights_is_refused_on_load(tmp_path: Path) -> None:
    path = save(tmp_path / "c.pt", 2)
    payload = torch.load(path, weights_only=True)
    payload["models"]["policy"]["embedding.weight"][1, 2] = float("nan")
    payload["optimizers"]["policy"]["state"][0]["exp_avg"][0, 0] = float("inf")
    path.write_bytes(sealed_bytes(payload))  # a valid seal over bad values
    with pytest.raises(CheckpointError, match="NaN or infinite values in") as info:
        load_checkpoint(path)
    msg = str(info.value)
    assert "models['policy']['embedding.weight'] (1 of 24 entries)" in msg and "exp_avg" in msg


# --- non-finite values at save time; disk full ------------------------------------------------
def test_non_finite_parameters_are_not_written(tmp_path: Path) -> None:
    path = save(tmp_path / "c.pt", 1)
    before = path.read_bytes()
    models, opts = parts(3)
    with torch.no_grad():
        models["policy"].embedding.weight[0, :2] = float("nan")
        models["policy"].head.bias[3] = float("-inf")
    with pytest.raises(CheckpointError) as info:
        save_checkpoint(path, models=models, optimizers=opts, step=2, config={}, rng_states={})
    msg = str(info.value)
    assert "models['policy']['embedding.weight'] (2 of 24 entries)" in msg
    assert "models['policy']['head.bias'] (1 of 5 entries)" in msg
    assert f"the previous checkpoint {path} is intact" in msg and "lower learning rate" in msg
    assert path.read_bytes() == before and sorted(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize("same_name", [True, False])
def test_disk_full_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, same_name: bool
) -> None:
    previous = save(checkpoint_path(tmp_path, 1), 1)
    before = previous.read_bytes()
    target = previous if same_name else checkpoint_path(tmp_path, 2)
    real_write = ckpt_mod._write_all

    def full_disk(fd: int, data) -> None:
        real_write(fd, memoryview(data)[: len(data) // 2])  # half of it lands, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(ckpt_mod, "_write_all", full_disk)
    with pytest.raises(CheckpointError) as info:
        save(target, 2, seed=1)
    assert str(info.value) == (
        f"no space left on device while writing {target}; the previous checkpoint {previous} is intact; "
        "free space or set out_dir to a disk with room"
    )
    assert isinstance(info.value.__cause__, OSError) and info.value.__cause__.errno == errno.ENOSPC
    monkeypatch.undo()
    assert sorted(tmp_path.iterdir()) == [previous]  # the temporary file is gone
    assert previous.read_bytes() == before and load_checkpoint(previous).step == 1


def test_other_write_errors_pass_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(fd: int, data) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(ckpt_mod, "_write_all", denied)
    with pytest.raises(OSError, match="I/O error") as info:
        save(tmp_path / "c.pt", 1)
    assert not isinstance(info.value, CheckpointError) and list(tmp_path.iterdir()) == []


# --- killed writes; the newest intact checkpoint ----------------------------------------------
def test_orphaned_temporaries_are_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keep = save(checkpoint_path(tmp_path, 1), 1)

    def killed(fd: int, data) -> None:  # a kill mid-write: no cleanup runs
        os.write(fd, bytes(memoryview(data)[:100]))
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt_mod, "_write_all", killed)
    monkeypatch.setattr(ckpt_mod.os, "unlink", lambda path: None)
    with pytest.raises(KeyboardInterrupt):
        save(checkpoint_path(tmp_path, 2), 2)
    monkeypatch.undo()
    orphan = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(orphan) == 1 and orphan[0].name.startswith(".ckpt_00000002.pt.")
    others = [tmp_path / ".notes.tmp", tmp_path / "ckpt_00000003.pt.tmp", tmp_path / ".ckpt_x.pt.a.tmp"]
    for other in others:
        other.write_text("not ours")
    (tmp_path / ".ckpt_00000004.pt.dir.tmp").mkdir()
    assert remove_orphan_temporaries(tmp_path) == orphan
    assert all(p.exists() for p in others) and keep.exists() and not orphan[0].exists()
    assert remove_orphan_temporaries(tmp_path) == [] and remove_orphan_temporaries(tmp_path / "none") == []


def test_newest_intact_checkpoint_skips_damaged_ones(tmp_path: Path) -> None:
    assert newest_intact_checkpoint(tmp_path) == ckpt_mod.CheckpointSearch(None, None, ())
    paths = [save(checkpoint_path(tmp_path, s), s, seed=s) for s in (1, 2, 3, 4)]
    paths[3].write_bytes(paths[3].read_bytes()[:-500])  # cut short by a kill
    paths[2].write_bytes(flip(paths[2].read_bytes(), 8 * 200 + 1))  # one flipped bit
    payload = torch.load(paths[1], weights_only=True)
    payload["models"]["policy"]["head.weight"][0, 0] = float("nan")
    paths[1].write_bytes(sealed_bytes(payload))
    found = newest_intact_checkpoint(tmp_path)
    assert found.path == paths[0] and found.checkpoint.step == 1
    assert [p for p, _ in found.skipped] == [paths[3], paths[2], paths[1]]
    reasons = [r for _, r in found.skipped]
    assert "SHA-256 seal" in reasons[0] and "digest does not match" in reasons[1] and "NaN" in reasons[2]
    paths[0].write_bytes(b"")
    none = newest_intact_checkpoint(tmp_path)
    assert none.path is None and len(none.skipped) == 4 and "empty" in none.skipped[-1][1]


# --- what the reader allocates -----------------------------------------------------------------
def test_files_above_the_cap_are_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save(tmp_path / "c.pt", 1)
    size = path.stat().st_size
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("the file was read"))
    with pytest.raises(CheckpointError, match=rf"is {size} bytes, above the limit max_bytes = {size - 1}"):
        load_checkpoint(path, max_bytes=size - 1)


def _inflate_storage(data: bytes, factor: int) -> bytes:
    """Rewrite a torch zip so the first tensor storage claims ``factor`` times its elements."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        records = [(i.filename, archive.read(i.filename)) for i in archive.infolist()]
    name, pkl = next((n, b) for n, b in records if n.endswith("data.pkl"))
    ops = list(pickletools.genops(pkl))
    k = next(i for i, (op, _, _) in enumerate(ops) if op.name == "BINPERSID")
    j = max(i for i in range(k) if ops[i][0].name.startswith("BININT"))  # numel, TUPLE, BINPUT, BINPERSID
    (_, numel, start), end = ops[j], ops[j + 1][2]
    new = pkl[:start] + b"J" + struct.pack("<i", numel * factor) + pkl[end:]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for n, b in records:
            archive.writestr(n, new if n == name else b)
    return out.getvalue()


def test_a_storage_claiming_more_than_its_bytes_is_refused_before_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save(tmp_path / "c.pt", 1)
    payload = torch.load(path, weights_only=True)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    path.write_bytes(b"".join(bytes(p) for p in seal(_inflate_storage(buffer.getvalue(), 1 << 24))))
    calls = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(a))
    with pytest.raises(
        CheckpointError, match=r"tensor storage '0' \(\w+Storage\) claims \d+ bytes but"
    ) as info:
        load_checkpoint(path)
    assert "record of" in str(info.value) and calls == []
    monkeypatch.undo()
    path.write_bytes(b"".join(bytes(p) for p in seal(_inflate_storage(buffer.getvalue(), 1))))
    assert load_checkpoint(path).step == 1  # the same rewrite without inflation loads


def test_compressed_records_and_foreign_payloads(tmp_path: Path) -> None:
    path = save(tmp_path / "c.pt", 1)
    with zipfile.ZipFile(path) as archive:
        records = [(i.filename, archive.read(i.filename)) for i in archive.infolist()]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for n, b in records:
            archive.writestr(n, b)
    path.write_bytes(b"".join(bytes(p) for p in seal(out.getvalue())))
    with pytest.raises(CheckpointError, match="is compressed or claims"):
        load_checkpoint(path)
    # numpy arrays are not tensors: torch.save pickles them with numpy globals, which are named
    path.write_bytes(sealed_bytes({"format": ckpt_mod.FORMAT_NAME, "extra": np.zeros(3)}))
    with pytest.raises(CheckpointError, match=r"refers to the Python global numpy\.") as info:
        load_checkpoint(path)
    assert "weights_only=False" not in str(info.value)


def test_write_checkpoint_payload_round_trips_a_plain_payload(tmp_path: Path) -> None:
    payload = torch.load(save(tmp_path / "a.pt", 7), weights_only=True)
    payload["extra"] = {"note": "edited"}
    back = load_checkpoint(write_checkpoint_payload(tmp_path / "b.pt", payload))
    assert back.step == 7 and back.extra == {"note": "edited"}
    assert torch.equal(back.models["policy"]["head.weight"], payload["models"]["policy"]["head.weight"])


class _Evil:
    """Unpickling this would run ``_mark`` — weights_only loading must refuse it."""

    ran: list[str] = []  # noqa: RUF012

    def __reduce__(self):
        return (_mark, ("pwned",))


def _mark(value: str) -> str:
    _Evil.ran.append(value)
    return value


def test_pickled_objects_are_refused_naming_the_global(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "evil.pt"
    buffer = io.BytesIO()
    torch.save({"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "extra": _Evil()}, buffer)
    path.write_bytes(b"".join(bytes(piece) for piece in seal(buffer.getvalue())))  # a valid seal
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    with pytest.raises(
        CheckpointError, match=rf"refers to the Python global {_mark.__module__}\._mark"
    ) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert (
        "weights_only=False" not in message and "weights_only` set to `False" not in message
    )  # no such advice
    assert calls == [] and _Evil.ran == []  # refused before torch.load, and nothing ran
