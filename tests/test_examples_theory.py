"""Fast runs of the theory examples: their figures exist and their numbers obey the mathematics.

``examples/gradient_identities.py``: every line of eqs. (10)–(14) and eq. (5) corrected equals line (9)
to rounding while eq. (5) as printed does not; the Monte-Carlo estimators of (14) shrink like 1/√n while
eq. (5) as printed stalls at its exact bias. ``examples/two_step_convergence.py``: the two-step procedure
with an exact q-step is exact LL ascent; every gradient gap obeys its TV and Pinsker bounds; more q-steps
bring the inexact procedure closer to exact ascent.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
from conftest import EXACT_TOL, load_script


def test_gradient_identities_fast(tmp_path: Path) -> None:
    out = load_script("examples/gradient_identities.py").main(["--fast", "--out-dir", str(tmp_path)])
    png = Path(out["png"])
    assert png.parent == tmp_path and png.exists() and png.stat().st_size > 10_000

    # Panel 1: lines (10)–(14) and (5) corrected are line (9) to rounding; (5) as printed is not.
    assert out["max_line_error"] < EXACT_TOL
    for errors in out["line_errors"].values():
        assert max(v for k, v in errors.items() if k != "eq5_printed") < EXACT_TOL
    for relative in out["eq5_printed_relative_error"].values():
        assert relative > 1e-3

    # Panel 2: unbiased estimators follow σ/√n; eq. (5) as printed flattens at its exact bias.
    n = np.asarray(out["sample_sizes"], dtype=float)
    rmse = {k: np.asarray(v) for k, v in out["rmse"].items()}
    for name in ("eq14_full", "eq14_reward_to_go"):
        assert -0.8 < out["slopes"][name] < -0.3, (name, out["slopes"][name])
        assert rmse[name][-1] < 3 * out["sigmas"][name] / math.sqrt(n[-1])
    bias = out["eq5_bias"]
    assert bias > 1e-3 * out["gradient_scale"]
    assert 0.8 < rmse["eq5_printed"][-1] / bias < 1.25
    unbiased_slopes = [out["slopes"][k] for k in ("eq14_full", "eq14_reward_to_go")]
    assert out["slopes"]["eq5_printed"] > max(unbiased_slopes) + 0.1  # flattening, not σ/√n


def test_two_step_convergence_fast(tmp_path: Path) -> None:
    out = load_script("examples/two_step_convergence.py").main(["--fast", "--out-dir", str(tmp_path)])
    png = Path(out["png"])
    assert png.parent == tmp_path and png.exists() and png.stat().st_size > 10_000

    # E6: the exact q-step reproduces exact LL ascent, iterate by iterate.
    assert out["exact_q_step_ll_diff"] < EXACT_TOL
    assert out["exact_q_step_theta_diff"] < EXACT_TOL
    table = out["variants"]
    assert table["exact q-step"]["final_kl"] < EXACT_TOL

    # E5: gap ≤ ‖f‖_∞·2TV ≤ ‖f‖_∞·√(2KL) at every iteration of every variant.
    for name in out["gaps"]:
        gap, tv, pinsker = (
            np.asarray(x[name]) for x in (out["gaps"], out["tv_bounds"], out["pinsker_bounds"])
        )
        assert gap.shape == tv.shape == pinsker.shape == (out["n_iters"],)
        assert np.all(gap <= tv + 1e-12) and np.all(tv <= pinsker + 1e-12), name
        assert table[name]["bounds_hold"]

    # Ascent raises the LL towards the optimum, which no iterate exceeds.
    ascent = table["exact ascent"]
    assert ascent["final_ll"] > ascent["initial_ll"]
    if out["optimum_ll"] is not None:
        assert all(row["final_ll"] <= out["optimum_ll"] + 1e-12 for row in table.values())

    # Inexact q-steps: q stays away from P_θ; more steps per q-step track exact ascent more closely.
    names = [f"inexact q-step, k={k}" for k in out["ks"]]
    assert out["ks"] == sorted(out["ks"])
    for key in ("mean_kl", "max_theta_dev", "max_ll_dev", "max_gap"):
        values = [table[name][key] for name in names]
        assert all(a > b for a, b in itertools.pairwise(values)), (key, values)
    assert table[names[0]]["mean_kl"] > 1e-6
