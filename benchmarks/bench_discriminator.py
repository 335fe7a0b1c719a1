"""Benchmark of SeqGAN-style energy (discriminator) steps of eq. (3) against their in-run floor.

Measures, in one run and on this machine, S optimizer steps of the EBGAN loss (3) on minibatches
of B real and B p_G sequences (pools of ``--pool`` sequences each, Adam):

- ``floor``: the energy's forward + backward over the same (2B, T) minibatches (pre-gathered,
  contiguous), nothing else — what the arithmetic of the step allows;
- ``engine``: :func:`gan_equiv.train.discriminator_schedule.run_energy_steps` (indices drawn at
  once, one forward over the concatenated minibatch, metrics kept on the device, Adam foreach);
- ``engine + compile``: the same with ``compile=True`` (only with ``--compile``: torch.compile
  needs a working compiler toolchain, and its first call compiles);
- ``per-step loop``: the trainer's pattern — indices and transfer per step, two forwards, the
  loss, backward, Adam, and ``float(loss)`` logged every step (a host sync on CUDA).

Each time is printed with its ratio to the floor. Best of ``--repeats`` interleaved repeats.

    python benchmarks/bench_discriminator.py --threads 1   # SeqGAN's CNN, B=64, T=20, V=5000, S=50
    python benchmarks/bench_discriminator.py --fast        # tiny CNN, seconds (smoke test)
    python benchmarks/bench_discriminator.py --device cuda # on the GPU (bf16 autocast in the engine)
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan_equiv.losses import ebgan_discriminator_loss
from gan_equiv.models.energies import CNNEnergy
from gan_equiv.train.discriminator_schedule import epoch_indices, run_energy_steps

MARGIN = 1.0


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def build(args, device: torch.device):
    torch.manual_seed(args.seed)
    if args.fast:
        energy = CNNEnergy(args.items, args.horizon, embed_dim=8, filter_sizes=(2, 3), num_filters=(8, 8))
    else:  # SeqGAN's discriminator: embedding 64, widths 1…20, 1720 filters
        energy = CNNEnergy(args.items, args.horizon)
    energy = energy.to(device)
    g = torch.Generator().manual_seed(args.seed)
    real = torch.randint(args.items, (args.pool, args.horizon), generator=g).to(device)
    fake = torch.randint(args.items, (args.pool, args.horizon), generator=g).to(device)
    return energy, real, fake


def adam(energy: CNNEnergy) -> torch.optim.Adam:
    return torch.optim.Adam(energy.parameters(), lr=1e-4, foreach=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="tiny CNN, V=50, T=6, S=5: seconds")
    parser.add_argument("--batch", type=int, default=64, help="B, sequences per batch")
    parser.add_argument("--horizon", type=int, default=20, help="T, sequence length")
    parser.add_argument("--items", type=int, default=5000, help="V, vocabulary size")
    parser.add_argument("--steps", type=int, default=50, help="energy steps timed per call")
    parser.add_argument(
        "--pool", type=int, default=1024, help="fake-pool size the steps draw minibatches from"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats; the best is kept")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where to run: cpu or cuda")
    parser.add_argument("--compile", action="store_true", help="also time compile=True")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    args = parser.parse_args(argv)
    if args.fast:
        args.items, args.horizon, args.steps, args.pool, args.batch, args.repeats = 50, 6, 5, 64, 16, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    energy, real, fake = build(args, device)
    S, B = args.steps, args.batch
    g = torch.Generator().manual_seed(args.seed + 1)
    idx_r = epoch_indices(real.shape[0], S, B, g, device)
    idx_f = epoch_indices(fake.shape[0], S, B, g, device)
    batches = [torch.cat([real[idx_r[s]], fake[idx_f[s]]]).contiguous() for s in range(S)]

    def floor() -> None:
        for batch in batches:
            energy.zero_grad(set_to_none=True)
            energy(batch).sum().backward()

    def engine(compile: bool = False):
        opt = adam(energy)
        return lambda: run_energy_steps(
            energy, opt, real, fake, n_steps=S, batch_size=B, margin=MARGIN,
            generator=torch.Generator().manual_seed(args.seed + 2), compile=compile,
        )  # fmt: skip

    def per_step_loop() -> None:
        opt = adam(energy)
        cpu_r, cpu_f = idx_r.cpu(), idx_f.cpu()
        log = []
        for s in range(S):
            r, f = real[cpu_r[s].to(device)], fake[cpu_f[s].to(device)]
            real_e, fake_e = energy(r).float(), energy(f).float()
            loss = ebgan_discriminator_loss(real_e, fake_e, margin=MARGIN)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            log.append(float(loss.detach()))

    methods = {"floor": floor, "engine": engine(), "per-step loop": per_step_loop}
    if args.compile:
        methods["engine + compile"] = engine(compile=True)  # compiles in the warm-up below
    energy.train()
    for fn in methods.values():  # warm-up: allocator, kernels, lazy initialisation
        fn()
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(args.repeats):
        for name, fn in methods.items():
            times[name].append(timed(fn, device))
    print(
        f"torch {torch.__version__}, python {platform.python_version()}, {platform.machine()}, "
        f"device={device}, threads={torch.get_num_threads()}"
    )
    n_params = sum(p.numel() for p in energy.parameters())
    print(
        f"S={S} steps, B={B} real + {B} fake per step, T={args.horizon}, V={args.items}, "
        f"CNNEnergy {n_params:,} parameters, Adam"
    )
    best_floor = min(times["floor"])
    print(f"{'method':<20}{'best (s)':>10}{'per step (ms)':>15}{'/floor':>9}   all repeats (s)")
    for name, ts in times.items():
        print(
            f"{name:<20}{min(ts):>10.3f}{1e3 * min(ts) / S:>15.2f}{min(ts) / best_floor:>8.2f}x   "
            + " ".join(f"{t:.3f}" for t in ts)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
