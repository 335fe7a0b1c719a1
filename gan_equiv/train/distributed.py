"""Data-parallel EB-SeqGAN training on torch.distributed (DDP), split to equal 1-process training.

``torchrun --nproc_per_node=N -m gan_equiv train …`` starts N processes; :func:`init_from_env` joins
them into a process group (``nccl`` when the run's device is CUDA, ``gloo`` on CPU) with a timeout,
and :class:`gan_equiv.train.trainer.Trainer` (``distributed=ctx``) then wraps the generator and the
energy in :class:`~torch.nn.parallel.DistributedDataParallel`.

**Exact split.** Every rank draws the *global* random numbers of a step from the shared, identically
seeded generators (``data`` and ``sample``) and keeps its contiguous shard (:func:`shard_bounds`):

- MLE: the epoch's permutation and its global batches of ``batch_size`` rows;
- energy step: the B data indices, and the B·T uniforms of the fake samples (:func:`sharded_sample`);
- generator step: the B·T sampling uniforms and the B·K·(T−1)·T/2 rollout uniforms of
  :func:`gan_equiv.train.rollouts.mc_q_values` (its ``shard`` argument), whose leave-one-out baseline
  uses the all-reduced column sums of Q̂ over the global batch.

Each rank computes only its shard (sampling, rollouts, forward and backward); the extra cost is the
uniforms of the other shards (one float64 draw per sampled item, no network work). Each local loss
is the shard mean scaled by ``n_shard·W/B``; DDP averages gradients over the W ranks, so the
gradient is that of the global-batch mean, exactly the 1-process gradient up to float rounding. The
shared generators advance identically on every rank, so their state (saved by rank 0) is
independent of the world size — which is what makes checkpoints portable across world sizes.

Per-rank randomness that is *not* split (dropout in the CNN energy, from torch's global RNG) is
reseeded at the start of every unit from ``(seed, step, rank)`` (:func:`rank_seed`).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import inspect
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from gan_equiv.models.policies import SequencePolicy, inverse_cdf_draw
from gan_equiv.train.config import resolve_device

#: Seconds a collective may wait for the other ranks before the job fails (override with the
#: environment variable ``GAN_EQUIV_DIST_TIMEOUT``).
DEFAULT_TIMEOUT_S = 600.0
TIMEOUT_ENV = "GAN_EQUIV_DIST_TIMEOUT"
_ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class DistributedError(RuntimeError):
    """A collective failed: another rank stopped or hung, or the process group is misconfigured."""


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job: rank, world size, local rank, backend, device, timeout."""

    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: torch.device
    timeout_s: float

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes logs and checkpoints."""
        return self.rank == 0


def backend_for(device: torch.device) -> str:
    """``nccl`` for CUDA devices, ``gloo`` for the CPU."""
    return "nccl" if device.type == "cuda" else "gloo"


def _timeout(timeout_s: float | None) -> float:
    if timeout_s is None:
        text = os.environ.get(TIMEOUT_ENV, "")
        try:
            timeout_s = float(text) if text else DEFAULT_TIMEOUT_S
        except ValueError:
            raise DistributedError(f"{TIMEOUT_ENV}={text!r} is not a number of seconds") from None
    if not timeout_s > 0:
        raise DistributedError(f"the collective timeout must be positive seconds, got {timeout_s!r}")
    return float(timeout_s)


def setup(
    rank: int,
    world_size: int,
    *,
    device: str = "auto",
    local_rank: int | None = None,
    timeout_s: float | None = None,
    init_method: str = "env://",
) -> DistContext:
    """Join the process group (this process is ``rank`` of ``world_size``) and return its context.

    ``device`` is the run's device name (``auto``/``cpu``/``cuda``): CUDA gives one GPU per local
    rank (``cuda:<local_rank>``) and the ``nccl`` backend, the CPU gives ``gloo``. ``init_method``
    ``env://`` reads MASTER_ADDR and MASTER_PORT. Collectives that wait longer than ``timeout_s``
    (default :data:`DEFAULT_TIMEOUT_S` or ``$GAN_EQUIV_DIST_TIMEOUT``) fail instead of hanging.
    """
    if not dist.is_available():
        raise DistributedError("this torch build has no torch.distributed support")
    if not 0 <= rank < world_size:
        raise DistributedError(f"rank {rank} is outside 0..{world_size - 1} (world size {world_size})")
    local = rank if local_rank is None else int(local_rank)
    timeout = _timeout(timeout_s)
    dev = resolve_device(device)
    if dev.type == "cuda":
        count = torch.cuda.device_count()
        if local >= count:
            raise DistributedError(
                f"local rank {local} needs GPU {local} but only {count} CUDA device(s) are visible; "
                f"start at most {count} processes per node or use --device cpu"
            )
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
        # NCCL honours the timeout only with asynchronous error handling (the default in torch ≥ 2.2)
        os.environ.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1")
    backend = backend_for(dev)
    if dist.is_initialized():
        raise DistributedError("a default process group already exists; call shutdown() first")
    dist.init_process_group(
        backend=backend,
        init_method=init_method,
        rank=rank,
        world_size=world_size,
        timeout=datetime.timedelta(seconds=timeout),
    )
    return DistContext(rank, world_size, local, backend, dev, timeout)


def init_from_env(device: str = "auto", *, timeout_s: float | None = None) -> DistContext | None:
    """The process group of a ``torchrun`` worker (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT).

    Returns None outside torchrun and when WORLD_SIZE is 1 (plain single-process training).
    """
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        return None
    missing = [k for k in _ENV_KEYS if k not in os.environ]
    if missing:
        raise DistributedError(
            f"WORLD_SIZE is set but {', '.join(missing)} is not; start the job with torchrun "
            "(torchrun --nproc_per_node=N -m gan_equiv train …)"
        )
    return setup(
        int(os.environ["RANK"]),
        int(os.environ["WORLD_SIZE"]),
        device=device,
        local_rank=int(os.environ["LOCAL_RANK"]),
        timeout_s=timeout_s,
    )


def shutdown(ctx: DistContext | None = None) -> None:
    """Destroy the default process group if there is one (safe to call after a failure)."""
    if dist.is_available() and dist.is_initialized():
        with contextlib.suppress(Exception):
            dist.destroy_process_group()


#: Message fragments of collective failures that backends raise as plain RuntimeError (gloo does).
_FAILURE_MARKERS = ("gloo", "nccl", "connection closed", "connection reset", "timed out", "timeout")


def _is_collective_failure(err: BaseException) -> bool:
    if isinstance(err, dist.DistError):
        return True
    text = str(err).lower()
    return isinstance(err, RuntimeError) and any(m in text for m in _FAILURE_MARKERS)


@contextlib.contextmanager
def collectives(ctx: DistContext, what: str) -> Iterator[None]:
    """Turn a failed or timed-out collective into a :class:`DistributedError` that says what to do;
    other errors pass through unchanged."""
    try:
        yield
    except RuntimeError as err:
        if isinstance(err, DistributedError) or not _is_collective_failure(err):
            raise
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DistributedError(
            f"rank {ctx.rank}/{ctx.world_size} ({ctx.backend}): a collective failed during {what}: "
            f"{first}. Another rank has probably stopped with an error (see its output) or hung for "
            f"more than the {ctx.timeout_s:g} s timeout (${TIMEOUT_ENV})."
        ) from err


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (with the group's timeout)."""
    if ctx.backend == "nccl":
        dist.barrier(device_ids=[ctx.device.index])
    else:
        dist.barrier()


def all_reduce_sum(values: Mapping[str, Tensor], ctx: DistContext) -> dict[str, Tensor]:
    """Σ over ranks of each 0-d tensor, in one float64 all-reduce: {name: 0-d float64 tensor}."""
    names = list(values)
    if not names:
        return {}
    stacked = torch.stack([values[k].detach().to(ctx.device, torch.float64).reshape(()) for k in names])
    dist.all_reduce(stacked, op=dist.ReduceOp.SUM)
    return dict(zip(names, stacked.unbind(0), strict=True))


def all_reduce_tensor_sum(value: Tensor, ctx: DistContext) -> Tensor:
    """Σ over ranks of a tensor (a copy; the input is unchanged)."""
    out = value.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


# --- sharding and seeds -----------------------------------------------------------------------------
def shard_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """Rows [start, stop) of rank ``rank`` in a batch of n: contiguous, sizes differ by at most one
    (the first n mod W ranks get one extra row), as :func:`torch.tensor_split`."""
    base, extra = divmod(int(n), int(world_size))
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def rank_seed(seed: int, step: int, rank: int) -> int:
    """A 63-bit seed for rank-local randomness (dropout) in unit ``step``, from (seed, step, rank)."""
    digest = hashlib.sha256(f"gan_equiv.distributed/{seed}/{step}/{rank}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


# --- DDP wrappers ------------------------------------------------------------------------------------
class MethodCall(nn.Module):
    """Routes ``forward(name, *args)`` to ``module.name(*args)``, so that DDP can wrap a policy whose
    differentiable entry point is a method (``step_log_probs``) rather than ``forward``."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.inner = module

    def forward(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.inner, method)(*args, **kwargs)


def wrap_ddp(module: nn.Module, ctx: DistContext) -> nn.Module:
    """DDP over ``module`` (rank 0's parameters are broadcast now); the module itself if it has no
    trainable parameter. Buffers are not re-broadcast on each forward (the models have no running
    statistics)."""
    if not any(p.requires_grad for p in module.parameters()):
        return module
    # no buffer broadcast before each forward (torch ≥ 2.13 names the option forward_sync_buffers)
    no_sync = (
        {"forward_sync_buffers": False}
        if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
        else {"broadcast_buffers": False}
    )
    with collectives(ctx, "the DDP parameter broadcast"):
        return DistributedDataParallel(
            module, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None, **no_sync
        )


# --- sharded sampling and rollouts ---------------------------------------------------------------
def _check_shard(n_global: int, start: int, stop: int) -> None:
    if not 0 <= start < stop <= n_global:
        raise ValueError(f"shard [{start}, {stop}) must be a non-empty part of 0..{n_global}")


@torch.no_grad()
def sharded_sample(
    policy: SequencePolicy, n_global: int, start: int, stop: int, *, generator: torch.Generator | None
) -> Tensor:
    """Rows [start, stop) of ``policy.sample(n_global, generator=generator)``: int64 (stop−start, T).

    Draws all n_global·T uniforms (so ``generator`` advances exactly as in the global call) but runs
    the policy on the shard only; each row's arithmetic is that of :meth:`SequencePolicy.complete`.
    """
    _check_shard(n_global, start, stop)
    n, T = stop - start, policy.horizon
    out = torch.zeros(n, T, dtype=torch.long, device=policy.device)
    state = policy.initial_state(n)
    for t in range(T):
        u = torch.rand(n_global, 1, generator=generator, dtype=torch.float64, device=policy.device)
        drawn = inverse_cdf_draw(policy.logits(state), u[start:stop])[0]
        out[:, t] = drawn
        state = policy.advance(state, drawn)
    return out
