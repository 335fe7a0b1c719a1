"""EB-SeqGAN in PyTorch and the bridge that checks it against exact MaxEnt IRL (``maxent_il``).

Four wings (docs/architecture.md), imports running one way — models ← train ← exact, recsys:

- :mod:`gan_equiv.models`: generators p_G, energies D, the family's discriminators, SeqGAN's oracle;
- :mod:`gan_equiv.train`: the trainer of Algorithm 1 and its family (``python -m gan_equiv train``),
  Monte-Carlo Q (:mod:`gan_equiv.train.rollouts`), objectives, config, checkpoints, data problems;
- :mod:`gan_equiv.exact`: exact gradient lines (9)–(14) and the claim checks E1–E19
  (``python -m gan_equiv verify``);
- :mod:`gan_equiv.recsys`: recommendation on interaction logs (``evaluate``, ``recommend``);

and at the top the paper's losses (:mod:`gan_equiv.losses`) and input checks (:mod:`gan_equiv.checks`).
The most used names are importable from here.
"""

from gan_equiv.exact import (
    CHECKS,
    CheckResult,
    check_e1,
    check_e2,
    check_e3,
    check_e4,
    check_e5,
    check_e6,
    check_e7,
    check_e8,
    check_e9,
    check_e10,
    check_e11,
    check_e12,
    check_e13,
    check_e14,
    check_e15,
    check_e16,
    check_e17,
    check_e18,
    check_e19,
    make_tiny_problem,
    run_all_checks,
)
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
from gan_equiv.models.sasrec import SASRecPolicy
from gan_equiv.train.config import (
    TrainConfig,
    apply_overrides,
    load_config,
    seqgan_oracle_preset,
    tiny_exact_preset,
)
from gan_equiv.train.objectives import OBJECTIVES, make_objective
from gan_equiv.train.problems import ExactProblem, gibbs_problem, markov_chain_problem
from gan_equiv.train.rollouts import mc_q_values
from gan_equiv.train.trainer import Trainer

__all__ = [
    "CHECKS",
    "OBJECTIVES",
    "AutoencoderEnergy",
    "CNNEnergy",
    "CheckResult",
    "ExactProblem",
    "GRUPolicy",
    "LinearEnergy",
    "SASRecPolicy",
    "SequenceEnergy",
    "SequencePolicy",
    "TabularEnergy",
    "TabularPolicy",
    "TrainConfig",
    "Trainer",
    "apply_overrides",
    "check_e1",
    "check_e2",
    "check_e3",
    "check_e4",
    "check_e5",
    "check_e6",
    "check_e7",
    "check_e8",
    "check_e9",
    "check_e10",
    "check_e11",
    "check_e12",
    "check_e13",
    "check_e14",
    "check_e15",
    "check_e16",
    "check_e17",
    "check_e18",
    "check_e19",
    "exact_policy_gradient",
    "exact_q_values",
    "gibbs_problem",
    "load_config",
    "make_objective",
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
