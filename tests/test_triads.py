"""Tests for gutaxis.integration.triads: candidate microbe -> metabolite -> immune chains and mediation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.stats.mediation import Mediation
from statsmodels.stats.multitest import multipletests

from gutaxis.integration.associations import associate_blocks
from gutaxis.io.configuration import fill_defaults
from gutaxis.plots.integration import plot_triads
from gutaxis.io.sheets import load_schema
from gutaxis.plots.style import apply_style
from gutaxis.integration.triads import axis_triads, bootstrap_p, candidate_triads, mediate_triad


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
    # every replicate of a*b is positive: statsmodels' own p would be 0, ours is the floor 2/(B+1)
    assert fit["acme_ci_low"] > 0 and fit["acme_p"] == 2 / 201
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
    # the planted chain's replicates all fall on one side: p at the floor, q never 0
    assert top.acme_p == 2 / 101 and top.acme_q > 0
    assert consistent.table["acme_p"].min() >= 2 / 101 and (consistent.table["acme_q"] > 0).all()
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


# ----------------------------------------------------------------- bootstrap p-values


def test_bootstrap_p_floor_when_every_replicate_falls_on_one_side():
    # Phipson & Smyth (2010): 2 (0 + 1) / (B + 1), never 0
    assert bootstrap_p(np.full(500, 0.3)) == 2 / 501
    assert bootstrap_p(-np.arange(1.0, 100.0)) == 2 / 100
    assert bootstrap_p(np.full(9, 2.0), null=1.0) == 2 / 10
    # against a null beyond every replicate the other tail is the empty one
    assert bootstrap_p(np.full(9, 2.0), null=5.0) == 2 / 10


def test_bootstrap_p_hand_worked_counts_ties_nan_and_cap():
    # B = 9, one replicate <= 0: b = min(1, 8) = 1 -> 2 (1 + 1) / 10
    assert bootstrap_p(np.r_[-0.5, np.ones(8)]) == pytest.approx(0.4)
    # B = 10: negatives 1, zeros 2, positives 7 -> b- = 3, b+ = 9 -> 2 (3 + 1) / 11
    assert bootstrap_p(np.r_[-1.0, 0.0, 0.0, np.ones(7)]) == pytest.approx(8 / 11)
    # NaN replicates leave B: same as the 9 finite ones above
    assert bootstrap_p(np.r_[np.nan, -0.5, np.ones(8), np.nan]) == pytest.approx(0.4)
    # balanced (or all tied at the null): 2 (B/2 + 1) / (B + 1) > 1 is capped at 1
    assert bootstrap_p(np.r_[-np.ones(5), np.ones(5)]) == 1.0
    assert bootstrap_p(np.zeros(7)) == 1.0
    assert np.isnan(bootstrap_p(np.full(4, np.nan)))


def test_bootstrap_p_is_statsmodels_p_with_one_added_and_vectorised():
    """Tie-free: p = min(1, (B * p_sm + 2) / (B + 1)) with statsmodels' p_sm = 2 min(#>0, #<0) / B."""
    rng = np.random.default_rng(3)
    reps = rng.normal(loc=rng.normal(scale=2.0, size=40), size=(250, 40))
    reps[:, :3] = np.abs(reps[:, :3]) + 0.1  # three effects with every replicate positive
    sm_p = 2 * np.minimum((reps > 0).sum(axis=0), (reps < 0).sum(axis=0)) / 250
    p = bootstrap_p(reps)
    np.testing.assert_allclose(p, np.minimum(1.0, (250 * sm_p + 2) / 251), rtol=1e-15)
    assert (sm_p[:3] == 0).all() and (p[:3] == 2 / 251).all()
    assert (p >= sm_p).all() and (p >= 2 / 251).all() and (p <= 1).all()
    np.testing.assert_array_equal(bootstrap_p(reps.T, axis=1), p)
    np.testing.assert_array_equal([bootstrap_p(reps[:, j]) for j in range(40)], p)


def test_mediate_triad_p_values_count_the_replicates_of_each_effect():
    """Independent recount of statsmodels' replicates (same seed) for all four effects."""
    rng = np.random.default_rng(8)  # weak effects: the four p-values lie strictly between floor and 1
    x = rng.normal(size=40)
    m = 0.35 * x + rng.normal(size=40)
    y = 0.3 * m + 0.2 * x + rng.normal(size=40)
    x, m, y = ((v - v.mean()) / v.std(ddof=1) for v in (x, m, y))
    fit = mediate_triad(x, m, y, n_rep=150, seed=21)
    p = [fit[f"{key}_p"] for key in ("acme", "ade", "total", "prop_mediated")]
    assert len(set(p)) == 4 and min(p) > 2 / 151 and max(p) < 1
    n = x.size
    model = Mediation(sm.OLS(y, np.column_stack([np.ones(n), x, m])),
                      sm.OLS(m, np.column_stack([np.ones(n), x])), exposure=(1, 1), mediator=2)
    np.random.seed(21)
    res = model.fit(method="bootstrap", n_rep=150)
    for key, reps in (("acme", res.ACME_avg), ("ade", res.ADE_avg), ("total", res.total_effect),
                      ("prop_mediated", res.prop_med_avg)):
        below, above = int(np.sum(reps <= 0)), int(np.sum(reps >= 0))
        assert fit[f"{key}_p"] == pytest.approx(min(1.0, 2 * (min(below, above) + 1) / 151), rel=1e-15), key
        assert fit[f"{key}_p"] > 0


def test_triad_headings_print_q_and_mark_the_p_floor():
    """No 'q < ...' special case any more: q is printed as is; a p at 2/(B+1) is marked."""
    import matplotlib.pyplot as plt

    style = fill_defaults({}, load_schema("config")["properties"]["style"], load_schema("config"))
    apply_style(style)
    triads = pd.DataFrame({
        "rank": [1, 2], "microbe": ["x0", "x1"], "metabolite": ["m0", "m1"], "immune": ["y0", "y1"],
        "rho_microbe_metabolite": [0.5, 0.4], "rho_metabolite_immune": [0.6, 0.3],
        "rho_microbe_immune": [0.4, 0.2], "acme": [0.3, 0.1], "acme_ci_low": [0.1, -0.05],
        "acme_ci_high": [0.5, 0.25], "prop_mediated": [0.7, 0.3],
        "acme_p": [2 / 501, 0.2], "acme_q": [2 / 501 * 2, 0.2]})
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"rank": np.repeat([1, 2], 10), "subject_id": [f"P{i}" for i in range(20)],
                         "response": "responder", **{f"{k}_change": rng.normal(size=20)
                                                     for k in ("microbe", "metabolite", "immune")}})
    labels = [pd.Series(dtype=str)] * 3
    fig = plot_triads(triads, data, labels, ["log2"] * 3, style, 0.1, n_rep=500)
    text = " ".join(t.get_text() for t in fig.texts).replace("\n", " ")
    plt.close(fig)
    assert "q = 0.008" in text and "q = 0.20" in text and "q <" not in text
    assert text.count("at its floor 2/501") == 1
