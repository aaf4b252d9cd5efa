"""Tests for gutaxis.triads: candidate microbe -> metabolite -> immune chains and mediation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.stats.multitest import multipletests

from gutaxis.associations import associate_blocks
from gutaxis.triads import axis_triads, candidate_triads, mediate_triad


def _links(rows):
    return pd.DataFrame(rows, columns=["feature_a", "feature_b", "rho", "q"])


def test_candidate_triads_join_on_metabolite_keep_significant_and_prioritise():
    xm = _links([("x1", "m1", 0.6, 0.001), ("x2", "m1", -0.5, 0.03),
                 ("x1", "m2", 0.7, 0.2), ("x3", "m3", 0.4, 0.01)])
    my = _links([("m1", "y1", 0.5, 0.02), ("m1", "y2", -0.8, 0.0001),
                 ("m2", "y1", 0.9, 0.0), ("m4", "y1", 0.9, 0.0)])
    chains = candidate_triads(xm, my, max_q=0.05)
    # m2 (xm link not significant), m3 (no immune link), m4 (no microbe link) give nothing;
    # order: weaker-link q ascending -> (x1,m1,y2) 0.001, (x1,m1,y1) 0.02, (x2,m1,y2) 0.03,
    # (x2,m1,y1) 0.03 tie broken by |rho_xm rho_my|: 0.5*0.8 > 0.5*0.5
    assert list(zip(chains["microbe"], chains["metabolite"], chains["immune"])) == [
        ("x1", "m1", "y2"), ("x1", "m1", "y1"), ("x2", "m1", "y2"), ("x2", "m1", "y1")]
    assert chains.loc[0, "rho_metabolite_immune"] == -0.8
    assert candidate_triads(xm, my, max_q=0.01).shape[0] == 1


def _chain_data(n=120, seed=0):
    """x0 -> m0 -> y0 (mediated, positive); x1 -> m1 (+) and m1 -> y1 (-), but x1 -> y1 (+) directly."""
    rng = np.random.default_rng(seed)
    idx = pd.Index([f"P{i:03d}" for i in range(n)], name="subject_id")
    x = rng.normal(size=(n, 4))
    m = rng.normal(size=(n, 5))
    y = rng.normal(size=(n, 3))
    m[:, 0] += 0.9 * x[:, 0]
    y[:, 0] += 0.8 * m[:, 0]
    m[:, 1] += 0.8 * x[:, 1]
    y[:, 1] += -1.0 * m[:, 1] + 1.4 * x[:, 1]
    return (pd.DataFrame(x, index=idx, columns=[f"x{i}" for i in range(4)]),
            pd.DataFrame(m, index=idx, columns=[f"m{i}" for i in range(5)]),
            pd.DataFrame(y, index=idx, columns=[f"y{i}" for i in range(3)]))


def test_mediate_triad_matches_linear_path_products_and_restores_global_rng():
    x, m, y = (frame.iloc[:, 0].to_numpy() for frame in _chain_data(n=200, seed=3))
    x, m, y = ((v - v.mean()) / v.std(ddof=1) for v in (x, m, y))
    a = sm.OLS(m, sm.add_constant(x)).fit().params[1]
    coef = sm.OLS(y, np.column_stack([np.ones_like(x), x, m])).fit().params
    np.random.seed(99)
    before = np.random.get_state()[1].copy()
    fit = mediate_triad(x, m, y, n_rep=200, seed=5)
    assert np.array_equal(np.random.get_state()[1], before)
    # the bootstrap mean of a*b (and of c') is close to the full-sample estimates
    assert fit["acme"] == pytest.approx(a * coef[2], abs=0.03)
    assert fit["ade"] == pytest.approx(coef[1], abs=0.03)
    assert fit["total"] == pytest.approx(a * coef[2] + coef[1], abs=0.04)
    assert fit["acme_ci_low"] > 0 and fit["acme_p"] <= 2 / 200
    assert fit["ade_ci_low"] < 0 < fit["ade_ci_high"]  # no direct effect was planted
    assert fit["prop_mediated"] > 0.7 and fit["n"] == 200
    again = mediate_triad(x, m, y, n_rep=200, seed=5)
    assert again == fit


def test_axis_triads_finds_planted_chain_applies_sign_rule_cap_and_bh():
    x, m, y = _chain_data()
    xm = associate_blocks(x, m).table
    my = associate_blocks(m, y).table
    consistent = axis_triads(x, m, y, xm, my, max_q=0.05, n_rep=100, seed=1)
    triads = list(zip(consistent.table["microbe"], consistent.table["metabolite"], consistent.table["immune"]))
    assert triads[0] == ("x0", "m0", "y0")
    # x1 -> m1 -> y1: indirect sign (+)(-) = - but total association x1~y1 is +
    assert ("x1", "m1", "y1") not in triads
    top = consistent.table.iloc[0]
    assert top.acme_ci_low > 0 and top.prop_mediated > 0.5 and top.acme_q < 0.05
    np.testing.assert_array_equal(consistent.table["acme_q"],
                                  multipletests(consistent.table["acme_p"], method="fdr_bh")[1])
    assert consistent.table["prop_mediated"].is_monotonic_decreasing

    both = axis_triads(x, m, y, xm, my, rule="both_significant", max_triads=1, n_rep=50, seed=1)
    assert both.summary["capped"] and both.summary["n_tested"] == 1
    assert both.summary["n_candidates"] > consistent.summary["n_candidates"]
    inconsistent = both.candidates.query("microbe == 'x1' and metabolite == 'm1' and immune == 'y1'")
    assert len(inconsistent) == 1 and not inconsistent["sign_consistent"].iloc[0]
    untested = both.candidates[~both.candidates["tested"]]
    assert (untested["reason"] == "beyond the cap of 1 triads tested").all()


def test_axis_triads_reproducible_and_independent_of_cap_and_jobs():
    x, m, y = _chain_data(n=60, seed=4)
    cov = pd.DataFrame({"cohort": np.repeat(["lung", "other"], 30)}, index=x.index)
    xm = associate_blocks(x, m, cov).table
    my = associate_blocks(m, y, cov).table
    kwargs = dict(max_q=0.2, rule="both_significant", n_rep=40, seed=11)
    first = axis_triads(x, m, y, xm, my, cov, **kwargs)
    assert first.summary["n_tested"] >= 1
    again = axis_triads(x, m, y, xm, my, cov, n_jobs=2, **kwargs)
    pd.testing.assert_frame_equal(first.table, again.table)
    capped = axis_triads(x, m, y, xm, my, cov, max_triads=1, **kwargs)
    row = capped.table.iloc[0]
    same = first.table.query("microbe == @row.microbe and metabolite == @row.metabolite and immune == @row.immune")
    assert same["acme"].iloc[0] == row.acme  # per-triad seed: unaffected by the cap
