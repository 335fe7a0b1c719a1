"""The EB-SeqGAN trainer: each phase runs and moves the right loss, resume is exact, bad configs fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gan_equiv.cli import main as cli_main
from gan_equiv.train.checkpoint import CheckpointError
from gan_equiv.train.config import ConfigError, TrainConfig, apply_overrides, tiny_exact_preset
from gan_equiv.train.experiment import prepare_run
from gan_equiv.train.trainer import Trainer


def tiny_config(tmp_path: Path, **overrides: object) -> TrainConfig:
    """V=3, T=3 with small networks and few units (seconds on a CPU)."""
    base = {
        "n_items": 3,
        "horizon": 3,
        "n_train": 300,
        "n_test": 100,
        "batch_size": 16,
        "pretrain_g_epochs": 2,
        "pretrain_d_steps": 2,
        "adversarial_rounds": 3,
        "n_rollouts": 4,
        "log_every": 1,
        "eval_every": 1,
        "checkpoint_every": 0,
        "out_dir": str(tmp_path / "run"),
        "generator.hidden_dim": 8,
        "generator.embed_dim": 4,
    }
    base.update(overrides)
    return apply_overrides(tiny_exact_preset(), base)


def parameters(trainer: Trainer) -> list[torch.Tensor]:
    return [p.detach().clone() for p in [*trainer.policy.parameters(), *trainer.energy.parameters()]]


def test_phases_run_log_and_evaluate(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    setup = prepare_run(config)
    trainer = Trainer(config, setup.train_data, evaluator=setup.evaluator)
    rows = trainer.fit()
    phases = [r["phase"] for r in rows]
    assert phases == ["mle"] * 2 + ["d_pretrain"] * 2 + ["adversarial"] * 3
    assert trainer.progress.step == 7
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(logged) == 7
    assert 0.0 <= logged[-1]["kl_data_model"] < 10
    assert logged[-1]["fake_below_margin"] == 1.0  # margin 100 never binds on this problem
    assert (tmp_path / "run" / "ckpt_00000007.pt").exists()


def test_mle_pretraining_lowers_the_data_nll(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, pretrain_g_epochs=15, pretrain_d_steps=0, adversarial_rounds=0)
    setup = prepare_run(config)
    trainer = Trainer(config, setup.train_data)
    rows = trainer.fit()
    first, last = rows[0]["mle_nll_per_token"], rows[-1]["mle_nll_per_token"]
    assert last < first - 0.05
    # an exact lower bound: the per-token entropy rate of the empirical data distribution
    assert last > 0


def test_energy_steps_separate_real_from_fake(tmp_path: Path) -> None:
    """D-steps of (3) lower E_data D − E_G D (a uniform generator vs structured data)."""
    config = tiny_config(tmp_path, pretrain_g_epochs=0, pretrain_d_steps=40, adversarial_rounds=0)
    trainer = Trainer(config, prepare_run(config).train_data)
    rows = trainer.fit()
    gap_first = rows[0]["energy_real"] - rows[0]["energy_fake"]
    gap_last = rows[-1]["energy_real"] - rows[-1]["energy_fake"]
    assert gap_last < gap_first - 0.1


def test_resume_continues_bit_for_bit(tmp_path: Path) -> None:
    for energy_kind in ("linear", "cnn"):
        overrides = {"energy.kind": energy_kind, "energy.embed_dim": 4}
        if energy_kind == "cnn":
            overrides.update({"energy.filter_sizes": "1,2", "energy.num_filters": "3,3"})
        config = tiny_config(tmp_path / energy_kind, **overrides)
        data = prepare_run(config).train_data
        straight = Trainer(config, data)
        straight.fit()

        first = Trainer(config, data)
        first.fit(stop_after=3)  # two MLE epochs and one energy step
        ckpt = first.save(tmp_path / energy_kind / "mid.pt")
        resumed = Trainer(config, data)
        resumed.resume(ckpt)
        assert resumed.progress.step == 3
        resumed.fit()
        for a, b in zip(parameters(straight), parameters(resumed), strict=True):
            assert torch.equal(a, b)


def test_resume_refuses_a_checkpoint_of_another_architecture(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    trainer = Trainer(config, prepare_run(config).train_data)
    ckpt = trainer.save(tmp_path / "a.pt")
    other = apply_overrides(config, {"generator.hidden_dim": 16})
    with pytest.raises(CheckpointError, match="hidden_dim"):
        Trainer(other, prepare_run(other).train_data).resume(ckpt)


def test_resume_rejects_a_corrupt_checkpoint(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    trainer = Trainer(config, prepare_run(config).train_data)
    path = trainer.save(tmp_path / "a.pt")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"corrupt|truncated"):
        trainer.resume(path)


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("margin", "-1", "margin"),
        ("n_rollouts", "0", "n_rollouts"),
        ("g_optim.lr", "0", "lr"),
        ("d_optim.lr", "-0.1", "lr"),
        ("no_such_key", "1", "no_such_key"),
    ],
)
def test_bad_config_values_fail_clearly(tmp_path: Path, key: str, value: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        apply_overrides(tiny_config(tmp_path), [f"--{key}", value])


def test_cuda_requested_without_cuda_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config = tiny_config(tmp_path, device="cuda")
    with pytest.raises(ValueError, match="CUDA requested"):
        Trainer(config, prepare_run(config).train_data)


def test_train_data_out_of_range_is_rejected(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    with pytest.raises(ValueError, match=r"outside 0\.\.2"):
        Trainer(config, torch.full((4, 3), 7))


def test_cli_train_smoke_and_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "train",
        "--preset",
        "tiny_exact",
        "--n_items",
        "3",
        "--horizon",
        "3",
        "--n_train",
        "200",
        "--pretrain_g_epochs",
        "1",
        "--pretrain_d_steps",
        "1",
        "--adversarial_rounds",
        "2",
        "--n_rollouts",
        "2",
        "--generator.hidden_dim",
        "8",
        "--out_dir",
        str(tmp_path / "cli"),
    ]
    assert cli_main(args) == 0
    out = capsys.readouterr().out
    assert "kl_data_model=" in out
    assert cli_main([*args, "--adversarial_rounds", "3", "--resume"]) == 0
    assert "resumed from" in capsys.readouterr().out


def test_tiny_training_reaches_the_exact_targets(tmp_path: Path) -> None:
    """On an exactly enumerable problem (V=3, T=3, Gibbs data, linear time_last energy), EB-SeqGAN
    ends with KL(p_data‖p_G) < 0.05 nats and an energy whose Pearson correlation with the exact
    MaxEnt IRL cost c*(S) on the support is > 0.99 (the issue's targets; seeded, CPU)."""
    config = apply_overrides(
        tiny_exact_preset(),
        {
            "n_items": 3,
            "horizon": 3,
            "pretrain_d_steps": 300,
            "adversarial_rounds": 400,
            "n_rollouts": 8,
            "log_every": 400,
            "eval_every": 400,
            "checkpoint_every": 0,
            "out_dir": str(tmp_path / "run"),
        },
    )
    setup = prepare_run(config)
    trainer = Trainer(config, setup.train_data, evaluator=setup.evaluator)
    trainer.fit()
    final = setup.evaluator(trainer)
    assert final["kl_data_model"] < 0.05
    assert final["energy_cost_pearson"] > 0.99
    assert trainer.progress.rounds == 400


def test_oracle_run_can_use_seqgan_published_parameters(tmp_path: Path) -> None:
    """data_path names a target_params-style pickle (15 numpy arrays): the run trains on samples of
    exactly that oracle, loaded through the restricted unpickler."""
    import pickle

    from gan_equiv.models.oracle import make_oracle

    source = make_oracle(n_items=20, horizon=5, seed=3)
    path = tmp_path / "target_params_py3.pkl"
    path.write_bytes(pickle.dumps([a for a in source.to_seqgan_params()], protocol=4))
    config = apply_overrides(
        tiny_config(tmp_path),
        {"data": "oracle", "data_path": str(path), "n_items": 20, "horizon": 5, "energy.kind": "autoencoder"},
    )
    setup = prepare_run(config)
    assert "target_params_py3.pkl" in setup.description
    for a, b in zip(setup.oracle.to_seqgan_params(), source.to_seqgan_params(), strict=True):
        assert (a == b).all()
    wrong = apply_overrides(config, {"n_items": 21})
    with pytest.raises(ValueError, match="V=20"):
        prepare_run(wrong)
