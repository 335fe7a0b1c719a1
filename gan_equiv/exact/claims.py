"""The claims E1–E19 as executable checks on tiny exact problems: the registry.

Each ``check_eN(problem, ...)`` computes one quantity two ways — an exact reference and the route
the paper describes — and returns a :class:`CheckResult`. The IRL-side claims (E1–E6, E12) live in
:mod:`gan_equiv.exact.claims_irl`, the GAN-side claims (E7–E11) in :mod:`gan_equiv.exact.claims_gan`;
the GAN ⇄ IRL family's claims (E13–E19: SeqGAN, GAN-GCL, the analytic-entropy estimator) in
:mod:`gan_equiv.exact.family`, :mod:`gan_equiv.exact.family_gcl` and
:mod:`gan_equiv.exact.family_estimator`; each claim's statement and derivation are in
docs/equations.md, docs/derivations.md and docs/family.md.
``run_all_checks`` runs them all on a problem; ``python -m gan_equiv verify`` runs them on a few
seeded problems and prints a table. A new family of checks joins the registry as one more argument
of :func:`claim_registry`.
"""

from __future__ import annotations

from gan_equiv.exact.claim_base import (
    Check,
    CheckResult,
    TinyProblem,
    claim_registry,
    make_tiny_problem,
)
from gan_equiv.exact.claims_gan import (
    GAN_CHECKS,
    check_e7,
    check_e8,
    check_e9,
    check_e10,
    check_e11,
)
from gan_equiv.exact.claims_irl import (
    IRL_CHECKS,
    check_e1,
    check_e2,
    check_e3,
    check_e4,
    check_e5,
    check_e6,
    check_e12,
)
from gan_equiv.exact.family import FAMILY_CHECKS, check_e13, check_e14, check_e15
from gan_equiv.exact.family_estimator import check_e19
from gan_equiv.exact.family_gcl import check_e16, check_e17, check_e18

__all__ = [
    "CHECKS",
    "Check",
    "CheckResult",
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
    "claim_registry",
    "make_tiny_problem",
    "run_all_checks",
]

#: Claim id → check, ordered E1, E2, …, E19.
CHECKS: dict[str, Check] = claim_registry(*IRL_CHECKS, *GAN_CHECKS, *FAMILY_CHECKS)


def run_all_checks(problem: TinyProblem, *, names: list[str] | None = None) -> list[CheckResult]:
    """Run the named claim checks (all of :data:`CHECKS` by default, in order) on one problem."""
    chosen = list(CHECKS) if names is None else names
    unknown = [n for n in chosen if n not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; available: {list(CHECKS)}")
    return [CHECKS[n](problem) for n in chosen]
