"""Resume as a user meets it: new learning rates reach the optimizer, experiment keys are refused
unless allowed, the metrics log holds each step once after kill-and-resume, a bare --resume skips a
damaged checkpoint and says so, and python's ``random`` is seeded and restored."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from test_trainer import tiny_config

from gan_equiv.cli import main as cli_main
from gan_equiv.train.checkpoint import CheckpointError
from gan_equiv.train.config import apply_overrides
from gan_equiv.train.experiment import prepare_run
from gan_equiv.train.run_log import read_metrics_log
from gan_equiv.train.trainer import Trainer


def test_a_new_learning_rate_reaches_the_resumed_optimizer(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, **{"g_optim.lr": 0.01})
    data = prepare_run(config).train_data
    first = Trainer(config, data)
    first.run("mle", 1)
    ckpt = first.save(tmp_path / "mid.pt")
    changed = apply_overrides(config, {"g_optim.lr": 0.003, "adversarial_rounds": 5})
    resumed = Trainer(changed, data)
    review = resumed.resume(ckpt)
    assert {key for key, _, _ in review.applied} == {"g_optim.lr", "adversarial_rounds"}
    assert not review.refused
    assert all(group["lr"] == 0.003 for group in resumed.g_opt.param_groups)
    # the restored Adam moments are the checkpoint's: the first step equals a run built with lr 0.003
    twin = Trainer(changed, data)
    twin.resume(ckpt)
    resumed.run("mle", 1)
    twin.run("mle", 1)
    for a, b in zip(resumed.policy.parameters(), twin.policy.parameters(), strict=True):
        assert torch.equal(a, b)


def test_experiment_keys_are_refused_unless_allowed(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    data = prepare_run(config).train_data
    first = Trainer(config, data)
    first.run("mle", 1)
    ckpt = first.save(tmp_path / "mid.pt")
    other_seed = apply_overrides(config, {"seed": config.seed + 1})
    expected = rf"seed: {config.seed} in the checkpoint vs {config.seed + 1} now"
    with pytest.raises(CheckpointError, match=expected):
        Trainer(other_seed, data).resume(ckpt)
    review = Trainer(other_seed, data).resume(ckpt, allow_config_change=True)
    assert [key for key, _, _ in review.refused] == ["seed"]


def test_metrics_log_holds_each_step_once_after_kill_and_resume(tmp_path: Path) -> None:
    for fmt in ("jsonl", "csv"):
        config = tiny_config(tmp_path / fmt, log_format=fmt)
        data = prepare_run(config).train_data
        killed = Trainer(config, data)
        killed.run("mle")
        ckpt = killed.save(tmp_path / fmt / "mid.pt")
        killed.run("d_pretrain")  # logged after the checkpoint, then the process "dies"
        killed.run("adversarial", 1)
        assert max(row["step"] for row in read_metrics_log(killed.log.path)) > killed.progress.step - 1
        resumed = Trainer(config, data)
        resumed.resume(ckpt)
        resumed.fit()
        steps = [row["step"] for row in read_metrics_log(resumed.log.path) if "step" in row]
        assert len(steps) == len(set(steps)), f"{fmt}: repeated steps {steps}"
        assert steps == sorted(steps) and steps[-1] == resumed.progress.step


def test_bare_resume_skips_a_damaged_checkpoint_and_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli"
    args = ["train", "--preset", "tiny_exact", "--n_items", "3", "--horizon", "3", "--n_train", "100"]
    args += ["--pretrain_g_epochs", "1", "--pretrain_d_steps", "1", "--adversarial_rounds", "2"]
    args += ["--n_rollouts", "2", "--checkpoint_every", "1", "--out_dir", str(out), "--progress", "false"]
    assert cli_main(args) == 0
    checkpoints = sorted(out.glob("ckpt_*.pt"))
    assert len(checkpoints) >= 2
    newest = checkpoints[-1]
    blob = bytearray(newest.read_bytes())
    blob[len(blob) // 2] ^= 0x10  # one flipped bit in the newest checkpoint
    newest.write_bytes(bytes(blob))
    (out / ".ckpt_9.pt.abc123.tmp").write_bytes(b"half a write")  # a killed write's leftover
    capsys.readouterr()
    assert cli_main([*args, "--adversarial_rounds", "3", "--resume"]) == 0
    printed = capsys.readouterr().out
    assert f"skipped checkpoint {newest}" in printed
    assert f"resumed from {checkpoints[-2]}" in printed
    assert "removed the unfinished checkpoint write" in printed
    assert not (out / ".ckpt_9.pt.abc123.tmp").exists()


def test_python_random_is_seeded_by_the_trainer(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    data = prepare_run(config).train_data
    Trainer(config, data)
    first = random.random()
    Trainer(config, data)
    assert random.random() == first
