"""Data-parallel training (gan_equiv.train.distributed): 2 gloo ranks on loopback equal 1-process training.

The multi-process tests spawn 2 CPU processes (MASTER_ADDR=127.0.0.1, a free port) or run
``torchrun`` on the CLI; models are float64 so that "equal" can mean 1e-10.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp

from gan_equiv.cli import main as cli_main
from gan_equiv.models.energies import CNNEnergy
from gan_equiv.models.policies import GRUPolicy
from gan_equiv.train.config import TrainConfig, apply_overrides
from gan_equiv.train.distributed import (
    DistContext,
    DistributedError,
    init_from_env,
    rank_seed,
    setup,
    shard_bounds,
    sharded_sample,
    shutdown,
)
from gan_equiv.train.rollouts import mc_q_values
from gan_equiv.train.trainer import Trainer

V, T = 5, 4
FAIL_TIMEOUT_S = 4.0  # the collective timeout of the failure tests
PARAM_TOL = 1e-10  # float64 models; the split changes only the order of float sums
ROOT = Path(__file__).resolve().parents[1]


def _config(out_dir: Path, **overrides: Any) -> TrainConfig:
    base: dict[str, Any] = {
        "n_items": V,
        "horizon": T,
        "batch_size": 8,
        "seed": 3,
        "device": "cpu",
        "pretrain_g_epochs": 1,
        "pretrain_d_steps": 1,
        "adversarial_rounds": 2,
        "g_steps": 1,
        "d_steps": 1,
        "n_rollouts": 3,
        "baseline": True,
        "reward_to_go": True,
        "margin": 10.0,
        "generator.embed_dim": 3,
        "generator.hidden_dim": 4,
        "energy.kind": "cnn",
        "energy.embed_dim": 3,
        "energy.filter_sizes": [1, 2],
        "energy.num_filters": [2, 2],
        "energy.dropout": 0.0,
        "g_optim.grad_clip": 0.1,  # binds: clipping acts on the rank-averaged gradient
        "d_optim.lr": 1e-2,
        "d_optim.grad_clip": 0.1,
        "log_every": 1,
        "eval_every": 1,
        "checkpoint_every": 1,
        "progress": False,
        "out_dir": str(out_dir),
    }
    base.update(overrides)
    return apply_overrides(TrainConfig(), base)


def _data() -> torch.Tensor:
    """33 sequences: with batch 8 the last MLE batch has one row, so rank 1 holds no row of it."""
    return torch.randint(V, (33, T), generator=torch.Generator().manual_seed(0))


def _models() -> tuple[GRUPolicy, CNNEnergy]:
    torch.manual_seed(11)
    policy = GRUPolicy(V, T, embed_dim=3, hidden_dim=4, dtype=torch.float64)
    energy = CNNEnergy(
        V, T, embed_dim=3, filter_sizes=(1, 2), num_filters=(2, 2), dropout=0.0, dtype=torch.float64
    )
    return policy, energy


def _trainer(config: TrainConfig, ctx: DistContext | None = None, evaluator: Any = None) -> Trainer:
    policy, energy = _models()
    return Trainer(config, _data(), policy=policy, energy=energy, evaluator=evaluator, distributed=ctx)


def _params(trainer: Trainer) -> list[torch.Tensor]:
    return [p.detach().clone() for p in [*trainer.policy.parameters(), *trainer.energy.parameters()]]


def _max_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a, b, strict=True))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- in-process: the exact split ---------------------------------------------------------------------
def test_shards_cover_every_row_once() -> None:
    for n in range(1, 12):
        for world in range(1, 5):
            bounds = [shard_bounds(n, r, world) for r in range(world)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
            sizes = [b - a for a, b in bounds]
            assert max(sizes) - min(sizes) <= 1
    assert rank_seed(3, 5, 1) == rank_seed(3, 5, 1) != rank_seed(3, 5, 0) != rank_seed(3, 6, 0)


def test_sharded_sampling_and_rollouts_are_slices_of_the_global_ones() -> None:
    """Concatenating the shards of W ranks gives the 1-process samples exactly and the 1-process Q
    to rounding; every rank's generator ends where the global one does."""
    policy, energy = _models()
    energy.eval()
    B, K = 7, 3
    gen = torch.Generator().manual_seed(5)
    seqs = policy.sample(B, generator=gen)
    q = mc_q_values(policy, energy, seqs, n_rollouts=K, generator=gen, mode="reward_to_go")
    end_state = gen.get_state()
    for world in (1, 2, 3):
        pieces_s, pieces_q = [], []
        for rank in range(world):
            a, b = shard_bounds(B, rank, world)
            g = torch.Generator().manual_seed(5)
            s = sharded_sample(policy, B, a, b, generator=g)
            pieces_q.append(
                mc_q_values(policy, energy, s, shard=(B, a), n_rollouts=K, generator=g, mode="reward_to_go")
            )
            pieces_s.append(s)
            assert torch.equal(g.get_state(), end_state)
        assert torch.equal(torch.cat(pieces_s), seqs)
        if world == 1:
            assert torch.equal(pieces_q[0], q)
        assert torch.allclose(torch.cat(pieces_q), q, rtol=0, atol=1e-12)


def test_init_from_env_outside_torchrun(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    assert init_from_env("cpu") is None
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert init_from_env("cpu") is None  # torchrun --nproc_per_node=1: plain training
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(DistributedError, match="RANK"):
        init_from_env("cpu")


def test_batch_smaller_than_the_world_is_rejected(tmp_path: Path) -> None:
    ctx = DistContext(0, 4, 0, "gloo", torch.device("cpu"), 10.0)
    with pytest.raises(ValueError, match="batch_size=2"):
        _trainer(_config(tmp_path, batch_size=2), ctx)


# --- two processes -----------------------------------------------------------------------------------
def _worker(rank: int, world: int, port: int, job: str, tmp: str) -> None:
    """One rank of a spawned job; writes result<rank>.pt, or error<rank>.txt and re-raises."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    out = Path(tmp)
    try:
        ctx = setup(rank, world, device="cpu", timeout_s=FAIL_TIMEOUT_S if job.startswith("fail") else 60.0)
        try:
            result = _JOBS[job](rank, ctx, out)
        finally:
            shutdown(ctx)
        torch.save(result, out / f"result{rank}.pt")
    except BaseException as err:
        (out / f"error{rank}.txt").write_text(f"{type(err).__name__}: {err}\n{traceback.format_exc()}")
        raise


def _job_train(rank: int, ctx: DistContext, out: Path) -> dict[str, Any]:
    # each rank gets its own out_dir, so a write by rank 1 would show up
    trainer = _trainer(
        _config(out / f"run_rank{rank}"), ctx, evaluator=lambda t: {"evaluated": float(ctx.rank)}
    )
    rows = trainer.fit()
    straight = _params(trainer)
    # resume a 1-process checkpoint (made by the parent) on 2 ranks
    resumed = _trainer(_config(out / f"resumed_rank{rank}"), ctx)
    resumed.resume(out / "one_process_step2.pt")
    resumed.fit()
    # resume the 2-rank run's own checkpoint on 2 ranks
    again = _trainer(_config(out / f"again_rank{rank}"), ctx)
    again.resume(out / "run_rank0" / "ckpt_00000002.pt")
    again.fit()
    return {"params": straight, "rows": rows, "resumed": _params(resumed), "again": _params(again)}


def _job_fail_raise(rank: int, ctx: DistContext, out: Path) -> dict[str, Any]:
    trainer = _trainer(_config(out / "run"), ctx)

    def broken() -> dict[str, torch.Tensor]:
        raise ValueError("injected failure on rank 1")

    if rank == 1:
        trainer.generator_step = broken  # type: ignore[method-assign]
    trainer.fit()
    return {}


def _job_fail_hang(rank: int, ctx: DistContext, out: Path) -> dict[str, Any]:
    trainer = _trainer(_config(out / "run", pretrain_g_epochs=0, pretrain_d_steps=0), ctx)
    if rank == 1:
        time.sleep(30)  # never joins the first collective; the parent kills it
    trainer.fit()
    return {}


_JOBS = {"train": _job_train, "fail_raise": _job_fail_raise, "fail_hang": _job_fail_hang}


def _run_ranks(
    job: str, tmp: Path, *, world: int = 2, wait_s: float = 120.0, grace_s: float = 10.0
) -> list[int | None]:
    """Start the ranks, wait for rank 0 (then briefly for the others), kill stragglers; exit codes
    (None for a rank that was still running)."""
    ctx = mp.get_context("spawn")
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, world, port, job, str(tmp))) for r in range(world)]
    for p in procs:
        p.start()
    procs[0].join(wait_s)
    for p in procs[1:]:  # a rank that outlives rank 0 by more than grace_s counts as hung
        p.join(grace_s)
    codes = [p.exitcode for p in procs]
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join()
    return codes


def test_two_ranks_equal_one_process_write_once_and_resume_across_world_sizes(tmp_path: Path) -> None:
    # 1 process: the straight run, and a checkpoint after two units (one MLE epoch, one D step)
    config = _config(tmp_path / "one")
    one = _trainer(config)
    one_rows = one.fit()
    reference = _params(one)
    mid = _trainer(_config(tmp_path / "mid"))
    mid.run("mle")
    mid.run("d_pretrain", 1)
    mid.save(tmp_path / "one_process_step2.pt")

    codes = _run_ranks("train", tmp_path)
    errors = [p.read_text() for p in sorted(tmp_path.glob("error*.txt"))]
    assert codes == [0, 0], errors
    results = [torch.load(tmp_path / f"result{r}.pt", weights_only=True) for r in range(2)]

    # (1) the same parameters as 1 process (MLE epoch with an uneven last batch, D steps, G steps
    # with rollouts and the leave-one-out baseline, clipping), identical on both ranks
    for a, b in zip(results[0]["params"], results[1]["params"], strict=True):
        assert torch.equal(a, b)
    assert _max_diff(results[0]["params"], reference) < PARAM_TOL
    # metrics are all-reduced: every rank logs the global-batch values of 1-process training (the
    # trainer reports losses in float32; the reduction sums in float64)
    for rows in (results[0]["rows"], results[1]["rows"]):
        assert [r["phase"] for r in rows] == [r["phase"] for r in one_rows]
        for got, want in zip(rows, one_rows, strict=True):
            for key in ("mle_nll_per_token", "d_loss", "energy_fake", "g_surrogate", "q_mean"):
                if key in want:
                    assert got[key] == pytest.approx(want[key], rel=1e-6, abs=1e-6), key

    # (3) only rank 0 evaluates, logs and checkpoints
    assert all(r["evaluated"] == 0.0 for r in results[0]["rows"])
    assert not any("evaluated" in r for r in results[1]["rows"])
    assert not any((tmp_path / f"{name}_rank1").exists() for name in ("run", "resumed", "again"))
    run0 = tmp_path / "run_rank0"
    logged = [json.loads(line) for line in (run0 / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == [1, 2, 3, 4]
    assert sorted(p.name for p in run0.glob("ckpt_*.pt")) == [f"ckpt_0000000{i}.pt" for i in (1, 2, 3, 4)]
    assert not list(run0.glob(".*.tmp"))  # atomic writes leave no temporary file

    # (4) a 2-rank checkpoint resumed on 2 ranks continues bit for bit (CPU, gloo); a 1-process
    # checkpoint resumed on 2 ranks, and a 2-rank checkpoint resumed in 1 process,
    # both end where the straight 1-process run ends
    for a, b in zip(results[0]["again"], results[0]["params"], strict=True):
        assert torch.equal(a, b)
    assert _max_diff(results[0]["resumed"], reference) < PARAM_TOL
    single = _trainer(_config(tmp_path / "from_two"))
    single.resume(run0 / "ckpt_00000002.pt")
    assert single.progress.step == 2
    single.fit()
    assert _max_diff(_params(single), reference) < PARAM_TOL


@pytest.mark.parametrize("job", ["fail_raise", "fail_hang"])
def test_a_failing_rank_stops_the_job_with_a_clear_error(tmp_path: Path, job: str) -> None:
    """Rank 1 raises (or hangs); rank 0 stops with a DistributedError within the 4 s timeout."""
    start = time.monotonic()
    codes = _run_ranks(job, tmp_path, wait_s=45.0, grace_s=10.0 if job == "fail_raise" else 0.0)
    elapsed = time.monotonic() - start
    assert codes[0] not in (0, None), "rank 0 did not stop"
    message = (tmp_path / "error0.txt").read_text()
    assert message.startswith("DistributedError: rank 0/2 (gloo): a collective failed")
    assert "Another rank has probably stopped" in message
    if job == "fail_raise":
        assert codes[1] not in (0, None)
        assert "injected failure on rank 1" in (tmp_path / "error1.txt").read_text()
    else:
        assert "timed out" in message.lower()
    assert elapsed < 40.0


def test_torchrun_cli_trains_on_two_ranks_and_resumes_in_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli"
    args = [
        "train",
        "--preset",
        "tiny_exact",
        "--device",
        "cpu",
        "--n_items",
        "3",
        "--horizon",
        "3",
        "--n_train",
        "100",
        "--batch_size",
        "16",
        "--pretrain_g_epochs",
        "1",
        "--pretrain_d_steps",
        "1",
        "--adversarial_rounds",
        "2",
        "--n_rollouts",
        "2",
        "--generator.hidden_dim",
        "4",
        "--log_every",
        "1",
        "--checkpoint_every",
        "0",
        "--out_dir",
        str(out),
    ]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2"]
    launcher += ["--master_addr=127.0.0.1", f"--master_port={_free_port()}", "-m", "gan_equiv"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GAN_EQUIV_DIST_TIMEOUT": "60"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [*launcher, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("final:") == 1  # rank 0 alone prints
    assert "data-parallel: 2 ranks, backend gloo" in done.stdout
    logged = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in logged] == [1, 2, 3, 4]  # written once, not twice
    assert "kl_data_model" in json.loads(logged[-1])
    assert [p.name for p in out.glob("ckpt_*.pt")] == ["ckpt_00000004.pt"]
    # the 2-rank checkpoint continues in one plain process
    assert cli_main([*args, "--adversarial_rounds", "3", "--resume"]) == 0
    assert "resumed from" in capsys.readouterr().out
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 5
