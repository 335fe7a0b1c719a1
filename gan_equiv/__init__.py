"""EB-SeqGAN in PyTorch and the bridge that checks it against exact MaxEnt IRL (``maxent_il``).

- generators (:mod:`gan_equiv.models.policies`) and energies (:mod:`gan_equiv.models.energies`);
- the paper's objectives (:mod:`gan_equiv.losses`), exact gradient lines (9)–(14)
  (:mod:`gan_equiv.exact.gradients`), exact and Monte-Carlo Q (:mod:`gan_equiv.train.rollouts`);
- the claim checks E1–E19 (:mod:`gan_equiv.exact.claims`, ``python -m gan_equiv verify``);
- the trainer of Algorithm 1 (:mod:`gan_equiv.train.trainer`, :mod:`gan_equiv.train.config`,
  ``python -m gan_equiv train``), data (:mod:`gan_equiv.train.problems`) and metrics.
"""

from gan_equiv.exact.claims import CHECKS, CheckResult, make_tiny_problem, run_all_checks
from gan_equiv.exact.policy_gradients import mc_policy_gradient
from gan_equiv.exact.q_values import exact_policy_gradient, exact_q_values
from gan_equiv.models.energies import (
    AutoencoderEnergy,
    CNNEnergy,
    LinearEnergy,
    SequenceEnergy,
    TabularEnergy,
)
from gan_equiv.models.oracle import make_oracle, oracle_dataset
from gan_equiv.models.policies import GRUPolicy, SequencePolicy, TabularPolicy, sample_categorical
from gan_equiv.train.config import (
    TrainConfig,
    apply_overrides,
    load_config,
    seqgan_oracle_preset,
    tiny_exact_preset,
)
from gan_equiv.train.problems import ExactProblem, gibbs_problem, markov_chain_problem
from gan_equiv.train.rollouts import mc_q_values
from gan_equiv.train.trainer import Trainer

__all__ = [
    "CHECKS",
    "AutoencoderEnergy",
    "CNNEnergy",
    "CheckResult",
    "ExactProblem",
    "GRUPolicy",
    "LinearEnergy",
    "SequenceEnergy",
    "SequencePolicy",
    "TabularEnergy",
    "TabularPolicy",
    "TrainConfig",
    "Trainer",
    "apply_overrides",
    "exact_policy_gradient",
    "exact_q_values",
    "gibbs_problem",
    "load_config",
    "make_oracle",
    "make_tiny_problem",
    "markov_chain_problem",
    "mc_policy_gradient",
    "mc_q_values",
    "oracle_dataset",
    "run_all_checks",
    "sample_categorical",
    "seqgan_oracle_preset",
    "tiny_exact_preset",
]
