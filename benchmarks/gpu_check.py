"""One run of everything CUDA-specific, written to one JSON: the CUDA tests, a bf16 training smoke run,
1-GPU data-parallel training over nccl, and the throughput benchmarks (GPU next to CPU).

    python benchmarks/gpu_check.py --out gpu_check.json            # on a machine with a GPU
    python benchmarks/gpu_check.py --quick                         # small sizes, a few minutes

Each step runs in its own process with a time limit; the JSON records its command, exit status,
wall time and the tail of its output, so one failing step never hides the others. Without CUDA
the script records that and skips the GPU steps (exit status 0), so it can be tried anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def run_step(name: str, command: list[str], *, timeout: float, env: dict[str, str]) -> dict:
    """Run one step in a child process; never raises (a failure is recorded, not thrown)."""
    print(f"[gpu_check] {name}: {' '.join(command)}", flush=True)
    start = time.perf_counter()
    try:
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        status, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        status, output = "timeout", f"{exc.stdout or ''}{exc.stderr or ''}"
    seconds = time.perf_counter() - start
    print(f"[gpu_check] {name}: status {status} in {seconds:.1f} s", flush=True)
    return {"command": command, "status": status, "seconds": round(seconds, 2), "output_tail": output[-4000:]}


def steps(quick: bool, work: Path) -> dict[str, list[str]]:
    """The commands, by name (sizes shrink with ``quick``)."""
    py = sys.executable
    rounds = "3" if quick else "20"
    train = [py, "-m", "gan_equiv", "train", "--preset", "tiny_exact", "--device", "cuda"]
    train += ["--adversarial_rounds", rounds, "--progress", "false"]
    items = ["--items", "500"] if quick else ["--items", "5000"]
    tests = ["tests/test_cuda.py", "tests/test_rollouts.py", "tests/test_sampler.py"]
    return {
        "cuda_tests": [py, "-m", "pytest", "-q", *tests],
        "bf16_smoke": [*train, "--bf16", "true", "--out_dir", str(work / "bf16")],
        "ddp_nccl_1gpu": [
            py, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", "-m", "gan_equiv",
            *train[3:], "--out_dir", str(work / "ddp"),
        ],
        "bench_rollouts": [py, "benchmarks/bench_rollouts.py", "--device", "cuda", *items, "--repeats", "3"],
        "bench_discriminator": [py, "benchmarks/bench_discriminator.py", "--device", "cuda", *items],
        "bench_trainer": [py, "benchmarks/bench_trainer.py", "--device", "cuda", *(["--quick"] * quick)],
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gpu_check.json", help="where the JSON report is written")
    parser.add_argument("--quick", action="store_true", help="small sizes and few rounds (a few minutes)")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds allowed per step")
    parser.add_argument("--only", nargs="*", default=None, help="run only these steps (names as in the JSON)")
    args = parser.parse_args(argv)
    report: dict = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cuda_version": torch.version.cuda,
        "cpu_count": os.cpu_count(),
        "steps": {},
    }
    if not torch.cuda.is_available():
        report["skipped"] = "no CUDA device: the GPU steps did not run"
        print(f"[gpu_check] {report['skipped']}", flush=True)
    else:
        env = dict(os.environ)
        with tempfile.TemporaryDirectory() as tmp:
            for name, command in steps(args.quick, Path(tmp)).items():
                if args.only is None or name in args.only:
                    report["steps"][name] = run_step(name, command, timeout=args.timeout, env=env)
    Path(args.out).write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"[gpu_check] report written to {args.out}", flush=True)
    failed = [n for n, s in report["steps"].items() if s["status"] != 0]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
