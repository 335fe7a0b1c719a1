"""Checkpoints: weights_only round trip, RNG states, bit-exact resume, atomic writes, clear errors."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_equiv.models.energies import CNNEnergy
from gan_equiv.models.policies import GRUPolicy
from gan_equiv.train import checkpoint as ckpt_mod
from gan_equiv.train.checkpoint import (
    FORMAT_NAME,
    CheckpointError,
    checkpoint_path,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from gan_equiv.train.checkpoint_restore import check_compatible, restore
from gan_equiv.train.config import apply_overrides, config_to_dict, tiny_exact_preset
from gan_equiv.train.rng_state import capture_rng_states, restore_rng_states

V, T = 5, 4


def make_models(seed: int = 0, n_items: int = V, cell: str = "gru"):
    torch.manual_seed(seed)
    policy = GRUPolicy(n_items, T, embed_dim=4, hidden_dim=6, cell=cell)
    energy = CNNEnergy(n_items, T, embed_dim=4, filter_sizes=(1, 2), num_filters=(3, 3), dropout=0.5)
    g_opt = torch.optim.Adam(policy.parameters(), lr=1e-2)
    d_opt = torch.optim.Adam(energy.parameters(), lr=1e-3)
    return {"generator": policy, "energy": energy}, {"generator": g_opt, "energy": d_opt}


def train_step(models, optimizers, gen: torch.Generator, rng: np.random.Generator) -> None:
    """One toy update that consumes every RNG: torch.Generator, global torch (dropout), numpy, random."""
    policy, energy = models["generator"], models["energy"]
    fake = policy.sample(8, generator=gen)
    real = torch.as_tensor(rng.integers(0, policy.n_items, size=(8, T)))
    real = (real[torch.randperm(8)] + random.randrange(policy.n_items)) % policy.n_items
    g_loss = -policy.log_prob(real).mean()
    d_loss = energy(real).mean() + torch.clamp(1.0 - energy(fake), min=0).mean()
    for opt in optimizers.values():
        opt.zero_grad()
    (g_loss + d_loss).backward()
    for opt in optimizers.values():
        opt.step()


def save_run(path: Path, models, optimizers, step: int, gen, rng, **kw) -> Path:
    return save_checkpoint(
        path,
        models=models,
        optimizers=optimizers,
        step=step,
        config=kw.pop("config", config_to_dict(tiny_exact_preset())),
        rng_states=capture_rng_states(rng, {"sample": gen}),
        extra=kw.pop("extra", {"history": [1.5, 2.5], "note": "ok"}),
    )


def seeded(seed: int = 7):
    random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed), np.random.default_rng(seed)


def test_round_trip_with_weights_only(tmp_path: Path) -> None:
    gen, rng = seeded()
    models, opts = make_models()
    for _ in range(2):
        train_step(models, opts, gen, rng)
    path = save_run(tmp_path / "ckpt.pt", models, opts, 2, gen, rng)
    raw = torch.load(path, weights_only=True)  # plain payload: no pickled Python objects
    assert raw["format"] == FORMAT_NAME and raw["step"] == 2

    ck = load_checkpoint(path)
    assert ck.step == 2 and ck.config == config_to_dict(tiny_exact_preset())
    assert ck.extra == {"history": [1.5, 2.5], "note": "ok"}
    fresh, fresh_opts = make_models(seed=99)
    assert restore(ck, fresh, fresh_opts, restore_rng=False) == 2
    for name in models:
        for key, value in models[name].state_dict().items():
            assert torch.equal(value, fresh[name].state_dict()[key]), (name, key)
        old, new = opts[name].state_dict(), fresh_opts[name].state_dict()
        assert old["param_groups"] == new["param_groups"]
        for pid, state in old["state"].items():
            for key, value in state.items():
                assert torch.equal(value, new["state"][pid][key])


def test_rng_states_restore_the_same_streams(tmp_path: Path) -> None:
    gen, rng = seeded(3)
    mt = np.random.Generator(np.random.MT19937(5))  # a bit generator whose state holds an array
    states = capture_rng_states(rng, {"sample": gen, "mt_unused": torch.Generator().manual_seed(1)})
    mt_state = capture_rng_states(mt)

    def draw():
        return (
            [random.random() for _ in range(3)] + [random.gauss(0, 1)],
            rng.standard_normal(4).tolist(),
            torch.rand(4).tolist(),
            torch.rand(4, generator=gen).tolist(),
            mt.integers(0, 1 << 30, size=3).tolist(),
        )

    first = draw()
    models, opts = make_models()
    save_checkpoint(tmp_path / "c.pt", models=models, optimizers=opts, step=0, config={}, rng_states=states)
    _ = draw()  # move every stream on
    loaded = load_checkpoint(tmp_path / "c.pt").rng_states
    restore_rng_states(loaded, rng, {"sample": gen})
    restore_rng_states(mt_state, mt)
    assert draw() == first

    with pytest.raises(CheckpointError, match=r"MT19937.*PCG64"):
        restore_rng_states(mt_state, np.random.default_rng(0))
    with pytest.raises(CheckpointError, match=r"no saved state for torch.Generator 'other'"):
        restore_rng_states(loaded, None, {"other": torch.Generator()})


def test_resume_is_bit_exact_on_cpu(tmp_path: Path) -> None:
    gen, rng = seeded(11)
    models, opts = make_models(seed=1)
    for _ in range(4):
        train_step(models, opts, gen, rng)
    straight = {n: {k: v.clone() for k, v in m.state_dict().items()} for n, m in models.items()}

    gen, rng = seeded(11)
    models, opts = make_models(seed=1)
    for _ in range(2):
        train_step(models, opts, gen, rng)
    path = save_run(checkpoint_path(tmp_path, 2), models, opts, 2, gen, rng)
    del models, opts

    gen, rng = seeded(12345)  # a resumed process starts from other RNG states and weights
    models, opts = make_models(seed=2)
    step = restore(
        load_checkpoint(path),
        models,
        opts,
        current_config=tiny_exact_preset(),
        numpy_rng=rng,
        torch_generators={"sample": gen},
    )
    for _ in range(step, 4):
        train_step(models, opts, gen, rng)
    for name, model in models.items():
        for key, value in model.state_dict().items():
            assert torch.equal(value, straight[name][key]), (name, key)


def _partial_save(obj, f, *args, **kwargs) -> None:
    f.write(b"PK\x03\x04 partial bytes")
    raise OSError("disk full")


@pytest.mark.parametrize("failure", ["torch.save", "os.replace"])
def test_atomic_write_keeps_the_old_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    gen, rng = seeded()
    models, opts = make_models()
    path = save_run(tmp_path / "ckpt.pt", models, opts, 1, gen, rng)
    before = path.read_bytes()
    train_step(models, opts, gen, rng)
    if failure == "torch.save":
        monkeypatch.setattr(torch, "save", _partial_save)
    else:

        def fail_replace(src, dst) -> None:
            raise OSError("rename failed")

        monkeypatch.setattr(ckpt_mod.os, "replace", fail_replace)
    with pytest.raises(OSError, match=r"disk full|rename failed"):
        save_run(path, models, opts, 2, gen, rng)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_checkpoint(path).step == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]  # no temp files left


def test_truncated_and_missing_files(tmp_path: Path) -> None:
    gen, rng = seeded()
    models, opts = make_models()
    good = save_run(checkpoint_path(tmp_path, 1), models, opts, 1, gen, rng)
    data = good.read_bytes()
    bad = checkpoint_path(tmp_path, 2)
    for size in (0, 10, len(data) // 2, len(data) - 7):
        bad.write_bytes(data[:size])
        with pytest.raises(CheckpointError, match=r"corrupt or truncated") as info:
            load_checkpoint(bad)
        assert str(bad) in str(info.value) and str(good) in str(info.value)  # names the last good one
    with pytest.raises(CheckpointError, match=r"no checkpoint file at .*missing\.pt"):
        load_checkpoint(tmp_path / "missing.pt")
    assert latest_checkpoint(tmp_path) == bad and latest_checkpoint(tmp_path / "none") is None


def test_wrong_format_or_version(tmp_path: Path) -> None:
    gen, rng = seeded()
    models, opts = make_models()
    path = save_run(tmp_path / "c.pt", models, opts, 1, gen, rng)
    payload = torch.load(path, weights_only=True)
    payload["format_version"] = 99
    torch.save(payload, tmp_path / "v99.pt")
    with pytest.raises(CheckpointError, match=r"format version 99.*reads version 1"):
        load_checkpoint(tmp_path / "v99.pt")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a gan_equiv checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    del payload["models"]
    torch.save(payload | {"format_version": 1}, tmp_path / "nomodels.pt")
    with pytest.raises(CheckpointError, match="'models' is missing"):
        load_checkpoint(tmp_path / "nomodels.pt")


def test_mismatched_models_are_refused_before_anything_changes(tmp_path: Path) -> None:
    gen, rng = seeded()
    models, opts = make_models()
    ck = load_checkpoint(save_run(tmp_path / "c.pt", models, opts, 1, gen, rng))

    bigger, bigger_opts = make_models(seed=5, n_items=V + 2)
    before = {k: v.clone() for k, v in bigger["generator"].state_dict().items()}
    with pytest.raises(CheckpointError, match=r"'embedding\.weight' has shape \(6, 4\).*but \(8, 4\)"):
        restore(ck, bigger, bigger_opts)
    for key, value in bigger["generator"].state_dict().items():
        assert torch.equal(value, before[key])

    lstm, _ = make_models(seed=5, cell="lstm")
    with pytest.raises(CheckpointError, match=r"model 'generator'.*cell\.weight_ih"):
        restore(ck, {"generator": lstm["generator"]}, {})
    with pytest.raises(CheckpointError, match=r"no model named \['critic'\]"):
        restore(ck, {"critic": models["energy"]})

    same, _ = make_models(seed=5)
    wrong_opt = {"generator": torch.optim.Adam(list(same["generator"].parameters())[:2])}
    with pytest.raises(CheckpointError, match=r"optimizer 'generator' group 0 has 7 parameters"):
        restore(ck, same, wrong_opt)


def test_config_compatibility(tmp_path: Path) -> None:
    saved = config_to_dict(tiny_exact_preset())
    check_compatible(saved, apply_overrides(tiny_exact_preset(), ["--margin", "3", "--seed", "4"]))
    changed = apply_overrides(tiny_exact_preset(), ["--n_items", "6", "--generator.hidden_dim", "8"])
    with pytest.raises(CheckpointError) as info:
        check_compatible(saved, changed)
    msg = str(info.value)
    assert "n_items: 4 in the checkpoint vs 6 now" in msg and "generator.hidden_dim: 32" in msg
    with pytest.raises(CheckpointError, match="margin"):
        check_compatible(saved, apply_overrides(tiny_exact_preset(), ["--margin", "3"]), keys=("margin",))

    gen, rng = seeded()
    models, opts = make_models()
    ck = load_checkpoint(save_run(tmp_path / "c.pt", models, opts, 1, gen, rng))
    with pytest.raises(CheckpointError, match="different configuration"):
        restore(ck, models, opts, current_config=changed)


class _Evil:
    """Unpickling this would run ``_mark`` — weights_only loading must refuse it."""

    ran: list[str] = []  # noqa: RUF012

    def __reduce__(self):
        return (_mark, ("pwned",))


def _mark(value: str) -> str:
    _Evil.ran.append(value)
    return value


def test_pickled_objects_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT_NAME, "format_version": 1, "extra": _Evil()}, path)
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    with pytest.raises(CheckpointError, match=r"pickled Python objects.*weights_only"):
        load_checkpoint(path)
    assert calls == [True] and _Evil.ran == []


def test_save_refuses_non_plain_values(tmp_path: Path) -> None:
    gen, rng = seeded()
    models, opts = make_models()
    with pytest.raises(TypeError, match=r"checkpoint\['extra'\]\['arr'\] is a numpy.ndarray"):
        save_run(tmp_path / "c.pt", models, opts, 1, gen, rng, extra={"arr": np.zeros(3)})
    with pytest.raises(TypeError, match=r"numpy.float64"):
        save_run(tmp_path / "c.pt", models, opts, 1, gen, rng, extra={"loss": np.float64(1.0)})
    assert list(tmp_path.iterdir()) == []
