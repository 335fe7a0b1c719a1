"""The CUDA paths: sampling, Monte-Carlo Q, the asynchronous item-range assertion and bf16 training.

Skipped without a GPU; ``benchmarks/gpu_check.py`` runs this file on one. Each test compares the
device's result with an exact float64 quantity computed on the CPU (seeded z-tests, MC_Z_SCORE).
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import MC_Z_SCORE

from gan_equiv.exact.q_values import exact_q_values
from gan_equiv.models.energies import TabularEnergy
from gan_equiv.models.policies import TabularPolicy, sample_categorical
from gan_equiv.train.config import apply_overrides, tiny_exact_preset
from gan_equiv.train.rollouts import mc_q_values

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
CUDA = torch.device("cuda")
F64 = torch.float64


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_cuda_draws_follow_the_softmax(precision: str) -> None:
    """Counts of n draws per category on CUDA: each within MC_Z_SCORE binomial sds of n·p."""
    logits = torch.tensor([[2.0, 0.5, -1.0, 0.0, 1.2]], dtype=F64)
    probs = torch.softmax(logits, dim=-1)[0]
    n = 200_000
    gen = torch.Generator(device=CUDA).manual_seed(0)
    draws = sample_categorical(logits.to(CUDA).expand(n, -1), gen, precision=precision).cpu()
    counts = torch.bincount(draws, minlength=5).double()
    z = (counts - n * probs) / torch.sqrt(n * probs * (1 - probs))
    assert z.abs().max() <= MC_Z_SCORE, f"max |z| = {z.abs().max():.2f}"


def test_cuda_rollout_q_matches_the_exact_q() -> None:
    """Mean of R independent K=1 estimates of Q (eq. 14) on CUDA vs exact Q by enumeration."""
    g = torch.Generator().manual_seed(1)
    policy = TabularPolicy(3, 4, init_scale=1.0, generator=g)
    energy = TabularEnergy(3, 4, values=torch.randn(3**4, generator=g, dtype=F64))
    seqs = policy.sample(4, generator=torch.Generator().manual_seed(0))
    exact = exact_q_values(policy, energy, seqs)  # (4, T) on the CPU
    policy_c, energy_c = policy.to(CUDA), energy.to(CUDA)
    gen = torch.Generator(device=CUDA).manual_seed(2)
    reps = 2000
    batch = seqs.to(CUDA).repeat(reps, 1)  # (reps·4, T): independent estimates, one rollout each
    q = mc_q_values(policy_c, energy_c, batch, n_rollouts=1, entropy_weight=1.0, generator=gen)
    q = q.detach().double().cpu().view(reps, 4, -1)
    mean, se = q.mean(0), q.std(0) / math.sqrt(reps)
    varying = se > 1e-12
    z = torch.where(varying, (mean - exact) / torch.where(varying, se, 1.0), 0.0)
    assert z.abs().max() <= MC_Z_SCORE, f"max |z| = {z.abs().max():.2f}"


def test_cuda_out_of_range_item_fails_with_the_message(tmp_path: Path) -> None:
    """The asynchronous range assertion poisons the CUDA context, so it runs in a child process."""
    script = (
        "import torch\n"
        "from gan_equiv.checks import check_item_tensor\n"
        "s = check_item_tensor([[0, 7]], n_items=5, length=2, device=torch.device('cuda'))\n"
        "torch.cuda.synchronize()\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "item ids must lie in 0..4" in result.stderr


def test_bf16_training_on_cuda_is_finite_and_learns(tmp_path: Path) -> None:
    """The tiny preset with bf16 autocast: MLE lowers the NLL and every logged loss is finite."""
    from gan_equiv.train.experiment import prepare_run
    from gan_equiv.train.trainer import Trainer

    config = apply_overrides(
        tiny_exact_preset(),
        [
            "--device", "cuda", "--bf16", "true", "--out_dir", str(tmp_path), "--progress", "false",
            "--pretrain_g_epochs", "3", "--pretrain_d_steps", "5", "--adversarial_rounds", "3",
        ],
    )  # fmt: skip
    setup = prepare_run(config)
    trainer = Trainer(config, setup.train_data, evaluator=setup.evaluator)
    first = trainer.mle_epoch()["mle_nll_per_token"].item()
    trainer.fit()
    last = trainer.mle_epoch()["mle_nll_per_token"].item()
    assert math.isfinite(first) and math.isfinite(last) and last < first
    assert next(trainer.policy.parameters()).is_cuda
