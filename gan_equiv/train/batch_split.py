"""How the ranks of a data-parallel job share each global batch — the identity in one process.

:class:`BatchSplit` is the trainer's single point of contact with the exact split of
:mod:`gan_equiv.train.distributed`: which rows of a global batch (N rows) this rank computes, how a
shard-mean loss is scaled before DDP averages gradients over W ranks, how shard metrics become
global-batch means, and where this rank's sampled sequences and rollouts sit in the global random
stream. With ``ctx=None`` every method returns its input unchanged (plain training, bit for bit).
"""

from __future__ import annotations

import torch
from torch import Tensor

from gan_equiv.models.policies import SequencePolicy
from gan_equiv.train.config_types import TrainConfig
from gan_equiv.train.distributed import (
    DistContext,
    all_reduce_sum,
    all_reduce_tensor_sum,
    collectives,
    rank_seed,
    shard_bounds,
    sharded_sample,
)


def check_job(config: TrainConfig, ctx: DistContext) -> None:
    """Refuse (``ValueError``) a job whose device differs from the config's, or whose global batch
    has fewer rows than there are ranks."""
    if ctx.device.type != config.torch_device().type:
        raise ValueError(
            f"the process group runs on {ctx.device} but the config asks for device "
            f"{config.device!r}; create it with init_from_env(config.device)"
        )
    if config.batch_size < ctx.world_size:
        raise ValueError(
            f"batch_size={config.batch_size} is smaller than the number of ranks ({ctx.world_size}); "
            "every rank needs a share of each batch — raise batch_size or start fewer processes"
        )


class BatchSplit:
    """This rank's share of every global batch (``ctx=None``: the whole batch, one process)."""

    def __init__(self, ctx: DistContext | None) -> None:
        self.ctx = ctx

    def rows(self, batch: Tensor) -> tuple[Tensor, int]:
        """This rank's rows of a global batch (N, T) and how many of them count.

        A rank with no row (a last MLE batch smaller than the world) runs one row with weight 0, so
        that it still takes part in DDP's gradient all-reduce.
        """
        if self.ctx is None:
            return batch, batch.shape[0]
        start, stop = shard_bounds(batch.shape[0], self.ctx.rank, self.ctx.world_size)
        return (batch[start:stop], stop - start) if stop > start else (batch[:1], 0)

    def backward(self, loss: Tensor, n_local: int, n_global: int) -> None:
        """Backward of a shard-mean loss; on W ranks scaled by n_local·W/n_global, so that DDP's
        average over ranks is the gradient of the global-batch mean."""
        if self.ctx is None:
            loss.backward()
            return
        with collectives(self.ctx, "the gradient all-reduce"):
            (loss * (n_local * self.ctx.world_size / n_global)).backward()

    def reduce(self, out: dict[str, Tensor], n_local: int, n_global: int) -> dict[str, Tensor]:
        """Global-batch means of shard-mean metrics (one all-reduce); unchanged in one process."""
        if self.ctx is None:
            return out
        share = {k: v.detach().double() * (n_local / n_global) for k, v in out.items()}
        with collectives(self.ctx, "the metrics all-reduce"):
            return all_reduce_sum(share, self.ctx)

    def sample(self, policy: SequencePolicy, n: int, generator: torch.Generator) -> Tensor:
        """n sequences of p_G from ``generator`` — this rank's shard of them (rows) on W ranks."""
        if self.ctx is None:
            return policy.sample(n, generator=generator)
        start, stop = shard_bounds(n, self.ctx.rank, self.ctx.world_size)
        return sharded_sample(policy, n, start, stop, generator=generator)

    def rollout_shard(self, n_global: int) -> tuple[int, int] | None:
        """``(n_global, first row)`` of this rank in the global rollout stream; None in one process."""
        if self.ctx is None:
            return None
        return n_global, shard_bounds(n_global, self.ctx.rank, self.ctx.world_size)[0]

    def column_sums(self, q: Tensor) -> Tensor:
        """Σ over the global batch of each column of Q̂ (N, T) → (1, T) (the leave-one-out baseline)."""
        sums = q.sum(dim=0, keepdim=True)
        if self.ctx is None:
            return sums
        with collectives(self.ctx, "the baseline all-reduce"):
            return all_reduce_tensor_sum(sums, self.ctx)

    def reseed(self, seed: int, step: int) -> None:
        """Seed rank-local randomness (dropout) from (seed, step, rank); nothing in one process."""
        if self.ctx is not None:
            torch.manual_seed(rank_seed(seed, step, self.ctx.rank))
