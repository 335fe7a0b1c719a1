"""Data and evaluation for a training run, from its :class:`TrainConfig`.

- ``data = "gibbs" | "markov"``: a tiny exact problem (:mod:`gan_equiv.train.problems`). The evaluator
  reports exact KL(p_data‖p_G), KL(p_G‖p_data), TV, and — how the learned energy compares with the
  exact MaxEnt IRL cost c*(S) = θ*·f(S) fitted by ``maxent_il`` on the same training sequences —
  Pearson/Spearman correlation after the best affine alignment, on the support of p_data.
- ``data = "oracle"``: the SeqGAN-style LSTM oracle (random from ``seed``, or SeqGAN's published
  ``target_params_py3.pkl`` when ``data_path`` names it — read by a restricted unpickler that admits
  numpy arrays only); the evaluator reports NLL-oracle, NLL-test, entropy per token and distinct-n
  together (NLL-oracle alone rewards collapse).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gan_equiv.models.oracle import load_seqgan_oracle, make_oracle, oracle_dataset
from gan_equiv.train.config import TrainConfig
from gan_equiv.train.optim import step_modes
from gan_equiv.train.oracle_metrics import distinct_n, entropy_per_token, nll_oracle, nll_test
from gan_equiv.train.problems import ExactProblem, gibbs_problem, markov_chain_problem
from maxent_il.divergences import energy_cost_alignment, exact_divergences
from maxent_il.features import StateActionFeatures
from maxent_il.solver import fit_maxent

#: L2 strength of the reference MaxEnt fit (keeps θ* finite for features the samples never use).
REFERENCE_L2 = 1e-4


@dataclass(frozen=True)
class RunSetup:
    """What a run trains on and how it is evaluated.

    Attributes:
        train_data: int64 (N, T) training sequences.
        evaluator: ``trainer → {metric: value}``.
        description: one line for logs.
        problem: the exact problem (tiny data only), else None.
        reference_cost: c*(S) of the MaxEnt IRL fit over all V^T sequences (tiny data only).
        oracle: the data-generating oracle (oracle data only), else None.
    """

    train_data: Tensor
    evaluator: Callable[[Any], dict[str, float]]
    description: str
    problem: ExactProblem | None = None
    reference_cost: np.ndarray | None = None
    oracle: Any = None


def exact_problem(config: TrainConfig) -> ExactProblem:
    """The tiny exact problem a config asks for (seeded by ``config.seed``): the truth p over all
    V^T sequences, a Markov chain or a Gibbs model (eq. 8), with its training samples."""
    if config.data == "markov":
        return markov_chain_problem(
            config.n_items, config.horizon, n_samples=config.n_train, seed=config.seed
        )
    return gibbs_problem(
        config.n_items, config.horizon, state="last", scale=1.5, n_samples=config.n_train, seed=config.seed
    )


def reference_maxent_cost(problem: ExactProblem, state: str) -> np.ndarray:
    """c*(S) = θ*·f(S) over all sequences for the MaxEnt IRL fit on the problem's samples (eq. 15)."""
    features = StateActionFeatures(problem.space, state)  # type: ignore[arg-type]
    fit = fit_maxent(features, problem.samples, l2=REFERENCE_L2, gtol=1e-9)
    return features.costs(fit.theta, problem.space.all_sequences())


def _exact_setup(config: TrainConfig) -> RunSetup:
    problem = exact_problem(config)
    reference = reference_maxent_cost(problem, config.energy.feature_state)
    all_seqs = torch.as_tensor(problem.space.all_sequences())
    support = problem.probabilities > 0

    def evaluate(trainer: Any) -> dict[str, float]:
        with torch.no_grad(), step_modes((trainer.policy, False)):  # p_G without dropout
            log_q = trainer.policy.all_log_probs().double().cpu().numpy()
        div = exact_divergences(problem.log_probs, log_q)
        out = {"kl_data_model": div.kl_pq, "kl_model_data": div.kl_qp, "tv": div.tv}
        if not getattr(trainer, "has_energy", True):  # no energy yet (MLE): NaN keeps the columns
            return out | {"energy_cost_pearson": math.nan, "energy_cost_spearman": math.nan}
        energy_model = trainer.energy
        was_training = energy_model.training
        energy_model.eval()  # no dropout while scoring; the caller's mode is put back below
        try:
            with torch.no_grad():
                energy = energy_model(all_seqs.to(trainer.device)).double().cpu().numpy()  # (V^T,)
        finally:
            energy_model.train(was_training)
        align = energy_cost_alignment(energy[support], reference[support])
        return out | {"energy_cost_pearson": align.pearson, "energy_cost_spearman": align.spearman}

    return RunSetup(torch.as_tensor(problem.samples), evaluate, problem.description, problem, reference)


def _oracle_setup(config: TrainConfig, *, n_eval: int = 1000) -> RunSetup:
    if config.data_path:  # SeqGAN's published oracle (target_params_py3.pkl), loaded safely
        # the loader refuses a file whose V differs from n_items before building any array
        oracle = load_seqgan_oracle(config.data_path, horizon=config.horizon, n_items=config.n_items)
    else:
        oracle = make_oracle(n_items=config.n_items, horizon=config.horizon, seed=config.seed)
    train = oracle_dataset(oracle, config.n_train, seed=config.seed + 10)
    heldout = oracle_dataset(oracle, min(config.n_test, 5000), seed=config.seed + 11)

    def evaluate(trainer: Any) -> dict[str, float]:
        gen = torch.Generator(device=trainer.device).manual_seed(config.seed + 12)
        policy = trainer.policy
        with torch.no_grad(), step_modes((policy, False)):  # the generator as sampled: no dropout
            samples = policy.sample(n_eval, generator=gen)
            ent = entropy_per_token(policy, n_eval, gen)
            return {
                "nll_oracle": nll_oracle(oracle.to(trainer.device), samples),
                "nll_test": nll_test(policy, heldout.to(trainer.device)),
                "entropy_per_token": ent.mean,
                "distinct_2": distinct_n(samples, 2),
            }

    source = f"from {config.data_path}" if config.data_path else f"seed={config.seed}"
    text = f"SeqGAN-style LSTM oracle V={config.n_items} T={config.horizon} {source}"
    return RunSetup(train, evaluate, text, oracle=oracle)


def prepare_run(config: TrainConfig) -> RunSetup:
    """Training data and evaluator for ``config.data`` (exact KL and energy-vs-cost alignment for
    tiny problems, NLL-oracle / NLL-test / entropy for the oracle)."""
    if config.data in ("gibbs", "markov"):
        return _exact_setup(config)
    if config.data == "oracle":
        return _oracle_setup(config)
    raise ValueError(  # unreachable through TrainConfig, whose schema admits these three only
        f"data = {config.data!r} has no run setup; use 'oracle', 'gibbs' or 'markov' (to train on "
        "sequences of your own, pass them to Trainer(config, train_data) directly)"
    )
