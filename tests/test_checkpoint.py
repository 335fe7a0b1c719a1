"""Checkpoints: weights_only round trip, RNG states, bit-exact resume, atomic writes, clear errors,
configuration review on resume and the optimizer settings a resumed run takes."""

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
    FORMAT_VERSION,
    CheckpointError,
    checkpoint_path,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    write_checkpoint_payload,
)
from gan_equiv.train.checkpoint_restore import EXPERIMENT_KEYS, check_compatible, restore, review_config
from gan_equiv.train.config import apply_overrides, config_to_dict, tiny_exact_preset
from gan_equiv.train.rng_state import capture_rng_states, restore_rng_states, seed_global_rngs

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
    write_checkpoint_payload(tmp_path / "v99.pt", payload)
    with pytest.raises(CheckpointError, match=rf"format version 99.*reads version {FORMAT_VERSION}"):
        load_checkpoint(tmp_path / "v99.pt")
    write_checkpoint_payload(tmp_path / "other.pt", {"state_dict": {}})
    with pytest.raises(CheckpointError, match="not a gan_equiv checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    del payload["models"]
    write_checkpoint_payload(tmp_path / "nomodels.pt", payload | {"format_version": FORMAT_VERSION})
    with pytest.raises(CheckpointError, match="'models' is missing"):
        load_checkpoint(tmp_path / "nomodels.pt")
    torch.save(torch.load(path, weights_only=True), tmp_path / "unsealed.pt")  # same payload, no seal
    with pytest.raises(CheckpointError, match=r"unsealed\.pt is a zip archive without the SHA-256 seal"):
        load_checkpoint(tmp_path / "unsealed.pt")


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


def test_config_review_refuses_experiment_keys_and_applies_the_rest(tmp_path: Path) -> None:
    saved = config_to_dict(tiny_exact_preset())
    run_only = ["--margin", "3", "--adversarial_rounds", "7", "--g_optim.lr", "0.5", "--log_format", "csv"]
    review = check_compatible(saved, apply_overrides(tiny_exact_preset(), run_only))
    assert review.refused == ()
    assert {k for k, _, _ in review.applied} == {"margin", "adversarial_rounds", "g_optim.lr", "log_format"}
    assert ("g_optim.lr", saved["g_optim"]["lr"], 0.5) in review.applied

    changed = apply_overrides(
        tiny_exact_preset(), ["--n_items", "6", "--generator.hidden_dim", "8", "--seed", "4", "--margin", "3"]
    )
    with pytest.raises(CheckpointError) as info:
        check_compatible(saved, changed)
    msg = str(info.value)
    assert "n_items: 4 in the checkpoint vs 6 now" in msg and "generator.hidden_dim: 32" in msg
    assert "seed: " in msg and "margin" not in msg and "allow_config_change=True" in msg
    allowed = check_compatible(saved, changed, allow_config_change=True)
    assert [k for k, _, _ in allowed.refused] == ["generator.hidden_dim", "n_items", "seed"]
    assert [k for k, _, _ in allowed.applied] == ["margin"]
    with pytest.raises(CheckpointError, match="margin"):
        check_compatible(saved, apply_overrides(tiny_exact_preset(), ["--margin", "3"]), keys=("margin",))
    # every difference lands in exactly one of the two lists
    review = review_config(saved, changed)
    assert len(review.refused) + len(review.applied) == 4
    assert {"data", "data_path", "seed", "n_train", "n_test", "objective"} <= set(EXPERIMENT_KEYS)

    gen, rng = seeded()
    models, opts = make_models()
    ck = load_checkpoint(save_run(tmp_path / "c.pt", models, opts, 1, gen, rng))
    with pytest.raises(CheckpointError, match="different experiment"):
        restore(ck, models, opts, current_config=changed)


def _one_adam_step(lr: float, betas: tuple[float, float], ck, settings: str) -> tuple[dict, torch.Tensor]:
    """Restore ``ck`` into fresh models whose optimizer was built with ``lr``/``betas``, take one
    step on a fixed loss; return the optimizer's group (with its step counts) and the change."""
    models, _ = make_models(seed=42)
    opt = torch.optim.Adam(models["generator"].parameters(), lr=lr, betas=betas)
    restore(
        ck,
        {"generator": models["generator"]},
        {"generator": opt},
        restore_rng=False,
        optimizer_settings=settings,
    )
    before = torch.cat([p.detach().flatten().clone() for p in models["generator"].parameters()])
    seqs = torch.tensor([[0, 1, 2, 3], [4, 3, 2, 1]])
    opt.zero_grad()
    (-models["generator"].log_prob(seqs).mean()).backward()
    opt.step()
    after = torch.cat([p.detach().flatten() for p in models["generator"].parameters()])
    steps = {int(state["step"]) for state in opt.state.values()}
    return opt.param_groups[0] | {"steps": steps}, after - before


def test_resume_applies_the_new_learning_rate_and_betas(tmp_path: Path) -> None:
    gen, rng = seeded()
    models, opts = make_models()  # generator Adam lr = 1e-2, betas (0.9, 0.999)
    for _ in range(3):
        train_step(models, opts, gen, rng)
    ck = load_checkpoint(save_run(tmp_path / "c.pt", models, opts, 3, gen, rng))

    group_a, step_a = _one_adam_step(1e-3, (0.9, 0.999), ck, "current")
    group_b, step_b = _one_adam_step(4e-3, (0.9, 0.999), ck, "current")
    assert group_a["lr"] == 1e-3 and group_b["lr"] == 4e-3
    # same restored moments and gradient: Adam's step is proportional to the learning rate
    # (float32 parameters: the differences carry rounding of ~1e-7 of |θ| ~ 1)
    torch.testing.assert_close(step_b, 4.0 * step_a, rtol=1e-4, atol=5e-7)
    group_c, _ = _one_adam_step(1e-3, (0.5, 0.9), ck, "current")
    assert tuple(group_c["betas"]) == (0.5, 0.9)
    group_d, step_d = _one_adam_step(1e-3, (0.5, 0.9), ck, "saved")  # the stored settings win
    assert group_d["lr"] == 1e-2 and tuple(group_d["betas"]) == (0.9, 0.999)
    torch.testing.assert_close(step_d, 10.0 * step_a, rtol=1e-4, atol=5e-7)
    assert step_a.abs().max() > 1e-4  # the steps are far above the rounding tolerance
    assert group_a["steps"] == {4}  # Adam's step counts and moments came from the checkpoint ...
    _, again = _one_adam_step(1e-3, (0.9, 0.999), ck, "current")
    assert torch.equal(again, step_a)  # ... as copies: stepping did not alter the loaded checkpoint
    with pytest.raises(ValueError, match="optimizer_settings must be 'current' or 'saved', got 'new'"):
        restore(ck, models, opts, optimizer_settings="new")


def test_seed_global_rngs_seeds_python_random_and_torch(tmp_path: Path) -> None:
    def draws():
        return [random.random() for _ in range(3)], torch.rand(3).tolist()

    seed_global_rngs(5)
    first = draws()
    seed_global_rngs(5)
    assert draws() == first
    seed_global_rngs(6)
    assert draws()[0] != first[0]
    random.seed(5)
    torch.manual_seed(5)
    assert draws() == first  # the same streams as seeding each generator by hand
    # stored and restored with the checkpoint: a resumed process continues python's stream
    seed_global_rngs(5)
    models, opts = make_models()
    save_checkpoint(
        tmp_path / "c.pt", models=models, optimizers=opts, step=0, config={}, rng_states=capture_rng_states()
    )
    expected = draws()
    seed_global_rngs(123)
    restore_rng_states(load_checkpoint(tmp_path / "c.pt").rng_states)
    assert draws() == expected
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="seed must be a non-negative integer"):
            seed_global_rngs(bad)


def test_save_refuses_non_plain_values(tmp_path: Path) -> None:
    gen, rng = seeded()
    models, opts = make_models()
    with pytest.raises(TypeError, match=r"checkpoint\['extra'\]\['arr'\] is a numpy.ndarray"):
        save_run(tmp_path / "c.pt", models, opts, 1, gen, rng, extra={"arr": np.zeros(3)})
    with pytest.raises(TypeError, match=r"numpy.float64"):
        save_run(tmp_path / "c.pt", models, opts, 1, gen, rng, extra={"loss": np.float64(1.0)})
    assert list(tmp_path.iterdir()) == []
