"""The EB-SeqGAN trainer: each phase runs and moves the right loss, resume is exact, bad configs fail."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch

from gan_equiv.cli import main as cli_main
from gan_equiv.train import checkpoint as checkpoint_module
from gan_equiv.train.checkpoint import CheckpointError, load_checkpoint
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


def rewrite(path: Path, payload: dict) -> None:
    """Write an edited checkpoint payload the way the checkpoint module writes one (sealed where the
    format seals, else plain torch.save)."""
    writer = getattr(checkpoint_module, "write_checkpoint_payload", None)
    if writer is None:
        torch.save(payload, path)
    else:
        writer(path, payload)


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
    for row in rows:  # d_gap is mean "realness" −D on data minus on p_G: the same gap, sign flipped
        assert row["d_gap"] == pytest.approx(row["energy_fake"] - row["energy_real"], abs=1e-5)
    assert rows[-1]["d_acc"] > 0.5  # the energy now sorts most sequences to their side of the midpoint


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
        first.run("mle")  # two MLE epochs
        first.run("d_pretrain", 1)  # and one energy step
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
    assert cli_main(["train", "--preset", "tiny_exact", "--out", str(tmp_path / "x")]) != 0
    assert re.match(r"^error: unknown config key 'out'.*did you mean 'out_dir'", capsys.readouterr().err)
    assert cli_main(["train", "--preset", "tiny_exact", "--objective", "wgan"]) != 0
    assert re.match(r"^error: .*objective = 'wgan'.*'ebgan', 'seqgan', 'gan_gcl'", capsys.readouterr().err)


def test_tiny_training_learns_the_maxent_cost_only_in_the_adversarial_phase(tmp_path: Path) -> None:
    """On an exactly enumerable problem (V=3, T=3, Gibbs data, linear time_last energy), the energy
    after MLE and energy pretraining alone is unrelated to the exact MaxEnt IRL cost c*(S) (Pearson
    on the support 0.05 here: against a generator already close to the data, the D-steps of (3) only
    follow sampling noise); after the adversarial rounds it is c* up to an affine map (Pearson > 0.99,
    0.998 measured), while KL(p_data‖p_G) stays < 0.05 nats (MLE alone reaches 0.008 on these 2000
    samples, the adversarial phase ends at 0.009: on this data-rich problem it does not beat MLE)."""
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
    trainer.run("mle")
    trainer.run("d_pretrain")
    before = setup.evaluator(trainer)
    assert before["kl_data_model"] < 0.05
    assert abs(before["energy_cost_pearson"]) < 0.5  # the pretrained energy is not the cost yet
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
    with pytest.raises(ValueError, match=r"has shape \(20, 32\), expected \(21, 32\) for V=21"):
        prepare_run(wrong)  # the file's V=20 is refused before any array is built


# --- Trainer.run: phases driven unit by unit ---------------------------------------------------------
def test_run_counts_units_and_clips_at_the_phase_end(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, pretrain_g_epochs=3, log_every=2)
    trainer = Trainer(config, prepare_run(config).train_data)
    rows = trainer.run("mle", 1)
    assert trainer.progress.g_epochs == 1 and rows == []  # unit 1 is not a logged unit (log_every 2)
    rows = trainer.run("mle", 10)  # only the 2 units left run
    assert trainer.progress.g_epochs == 3 and [r["unit"] for r in rows] == [2, 3]  # every 2nd and the last
    assert trainer.run("mle") == [] and trainer.progress.step == 3
    assert [r["unit"] for r in trainer.run("d_pretrain", 0)] == [] and trainer.progress.d_pretrain_steps == 0
    rows = trainer.run("d_pretrain")  # None: the rest of the phase
    assert trainer.progress.d_pretrain_steps == 2 and rows[-1]["phase"] == "d_pretrain"
    rows = trainer.run("adversarial", 2)
    assert trainer.progress.rounds == 2 and trainer.progress.step == 7
    assert {"g_surrogate", "d_loss"} <= rows[-1].keys()


def test_run_follows_the_phase_order_and_checks_its_arguments(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    trainer = Trainer(config, prepare_run(config).train_data)
    with pytest.raises(ValueError, match=r"cannot run phase 'adversarial': phase 'mle' has 2 unit\(s\) left"):
        trainer.run("adversarial", 1)
    trainer.run("mle")
    with pytest.raises(ValueError, match=r"phase 'd_pretrain' has 2 unit"):
        trainer.run("adversarial")
    with pytest.raises(ValueError, match=r"unknown phase 'pretrain'.*'mle', 'd_pretrain', 'adversarial'"):
        trainer.run("pretrain")
    with pytest.raises(ValueError, match=r"units must be a non-negative integer"):
        trainer.run("d_pretrain", -1)
    assert trainer.progress.step == 2  # nothing ran


def test_run_in_pieces_equals_fit(tmp_path: Path) -> None:
    """Driving the phases with run(phase, n) in pieces gives the parameters and rows of fit()."""
    config = tiny_config(tmp_path / "a")
    data = prepare_run(config).train_data
    whole = Trainer(config, data)
    whole_rows = whole.fit()
    pieces = Trainer(tiny_config(tmp_path / "b"), data)
    rows = pieces.run("mle", 1) + pieces.run("mle") + pieces.run("d_pretrain")
    rows += pieces.run("adversarial", 2) + pieces.run("adversarial", 2)
    assert [(r["phase"], r["unit"]) for r in rows] == [(r["phase"], r["unit"]) for r in whole_rows]
    for a, b in zip(parameters(whole), parameters(pieces), strict=True):
        assert torch.equal(a, b)


def test_mle_only_run_builds_no_energy(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, pretrain_d_steps=0, adversarial_rounds=0)
    setup = prepare_run(config)
    trainer = Trainer(config, setup.train_data, evaluator=setup.evaluator)
    rows = trainer.fit()
    assert not trainer.has_energy
    assert "kl_data_model" in rows[-1] and math.isnan(rows[-1]["energy_cost_pearson"])  # no energy yet
    ckpt = load_checkpoint(tmp_path / "run" / "ckpt_00000002.pt")
    assert set(ckpt.models) == {"policy"} and set(ckpt.optimizers) == {"policy"}
    # a longer run resumes the MLE-only checkpoint and builds the energy only when it needs it
    longer = Trainer(apply_overrides(config, {"pretrain_d_steps": 1}), setup.train_data)
    longer.resume(ckpt.path)
    assert not longer.has_energy and longer.progress.step == 2
    longer.run("d_pretrain")
    assert longer.has_energy and longer.progress.d_pretrain_steps == 1


def test_lazy_energy_equals_an_energy_built_at_construction(tmp_path: Path) -> None:
    """The energy's initial parameters do not depend on when it is built, and building it leaves
    torch's global random state alone."""
    config = tiny_config(
        tmp_path, **{"energy.kind": "cnn", "energy.filter_sizes": "1,2", "energy.num_filters": "3,3"}
    )
    data = prepare_run(config).train_data
    eager = Trainer(config, data)
    eager_params = [p.detach().clone() for p in eager.energy.parameters()]
    lazy = Trainer(config, data)
    lazy.run("mle")
    state = torch.get_rng_state()
    lazy_params = list(lazy.energy.parameters())
    assert torch.equal(torch.get_rng_state(), state)
    for a, b in zip(eager_params, lazy_params, strict=True):
        assert torch.equal(a, b)


def test_steps_set_their_modes_and_restore_the_callers(tmp_path: Path) -> None:
    config = tiny_config(
        tmp_path, **{"energy.kind": "cnn", "energy.filter_sizes": "1,2", "energy.num_filters": "3,3"}
    )
    trainer = Trainer(config, prepare_run(config).train_data)
    seen: list[tuple[str, bool]] = []
    trainer.energy.register_forward_hook(lambda m, i, o: seen.append(("energy", m.training)))
    trainer.policy.register_forward_pre_hook(lambda m, i: seen.append(("policy", m.training)))
    for policy_mode, energy_mode in ((True, True), (False, False), (True, False)):
        trainer.policy.train(policy_mode)
        trainer.energy.train(energy_mode)
        seen.clear()
        trainer.energy_step()  # D trains (dropout on)
        assert seen and all(mode for who, mode in seen if who == "energy")
        seen.clear()
        trainer.generator_step()  # D scores rollouts without dropout
        assert seen and not any(mode for who, mode in seen if who == "energy")
        trainer.mle_epoch()
        assert (trainer.policy.training, trainer.energy.training) == (policy_mode, energy_mode)


def test_checkpoints_store_the_objective_and_resume_checks_it(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    trainer = Trainer(config, prepare_run(config).train_data)
    path = trainer.save(tmp_path / "a.pt")
    payload = torch.load(path, weights_only=True)
    assert payload["config"]["objective"] == "ebgan"
    assert payload["config"]["generator_estimator"] == "rollout"
    payload["config"]["objective"] = "seqgan"
    rewrite(tmp_path / "seqgan.pt", payload)
    with pytest.raises(CheckpointError, match=r"objective: 'seqgan' in the checkpoint vs 'ebgan' now"):
        trainer.resume(tmp_path / "seqgan.pt")
    del payload["config"]["objective"], payload["config"]["generator_estimator"]  # an older checkpoint
    rewrite(tmp_path / "old.pt", payload)
    trainer.resume(tmp_path / "old.pt")
    assert trainer.progress.step == 0


def test_csv_metrics_keep_every_column_across_phases_and_resume(tmp_path: Path) -> None:
    import csv

    config = tiny_config(tmp_path, log_format="csv")
    setup = prepare_run(config)
    first = Trainer(config, setup.train_data, evaluator=setup.evaluator)
    first.run("mle")
    first.run("d_pretrain", 1)
    path = first.save(tmp_path / "mid.pt")
    resumed = Trainer(config, setup.train_data, evaluator=setup.evaluator)
    resumed.resume(path)
    resumed.fit()
    with (tmp_path / "run" / "metrics.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["phase"] for r in rows] == ["mle"] * 2 + ["d_pretrain"] * 2 + ["adversarial"] * 3
    assert rows[0]["d_loss"] == "" and float(rows[0]["mle_nll_per_token"]) > 0
    assert float(rows[2]["d_loss"]) == float(rows[2]["d_loss"])  # a number, not an empty cell
    assert float(rows[-1]["g_surrogate"]) == float(rows[-1]["g_surrogate"]) and rows[-1]["kl_data_model"]
