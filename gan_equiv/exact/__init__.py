"""The exact bridge: EB-SeqGAN's quantities (gradient lines (9)–(14), Q, the family's optima) computed
by enumeration in float64 and checked against ``maxent_il`` as the claims E1–E19. May use ``train``.
"""

from gan_equiv.exact.claim_base import CheckResult, TinyProblem, make_tiny_problem
from gan_equiv.exact.claims import CHECKS, run_all_checks
from gan_equiv.exact.claims_gan import check_e7, check_e8, check_e9, check_e10, check_e11
from gan_equiv.exact.claims_irl import check_e1, check_e2, check_e3, check_e4, check_e5, check_e6, check_e12
from gan_equiv.exact.data_scarce import ScarceConfig, ScarceResult, exact_diagnostics, run_scarce, summarize
from gan_equiv.exact.data_scarce_loops import LoopSettings, run_adversarial
from gan_equiv.exact.enumeration import enumerate_generator, enumerate_policy, exact_objective
from gan_equiv.exact.family import FAMILY_CHECKS, check_e13, check_e14, check_e15
from gan_equiv.exact.family_estimator import check_e19
from gan_equiv.exact.family_gcl import check_e16, check_e17, check_e18
from gan_equiv.exact.gradients import GradientLines, gradient_lines
from gan_equiv.exact.policy_gradients import mc_policy_gradient
from gan_equiv.exact.q_values import exact_policy_gradient, exact_q_values, exact_state_values

__all__ = [
    "CHECKS",
    "FAMILY_CHECKS",
    "CheckResult",
    "GradientLines",
    "LoopSettings",
    "ScarceConfig",
    "ScarceResult",
    "TinyProblem",
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
    "enumerate_generator",
    "enumerate_policy",
    "exact_diagnostics",
    "exact_objective",
    "exact_policy_gradient",
    "exact_q_values",
    "exact_state_values",
    "gradient_lines",
    "make_tiny_problem",
    "mc_policy_gradient",
    "run_adversarial",
    "run_all_checks",
    "run_scarce",
    "summarize",
]
