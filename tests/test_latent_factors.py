"""MOFA+ wrapper: planted factors recovered, reproducible, refuses too few samples; factor tests vs scipy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from gutaxis.integration.mofa import (
    FACTOR_TEST_COLUMNS,
    factor_tests,
    fit_mofa,
    matched_samples,
    mofa_views,
)

pytest.importorskip("mofapy2")


def unit_index(n_subjects: int) -> pd.MultiIndex:
    return pd.MultiIndex.from_product([[f"S{i:02d}" for i in range(n_subjects)], ["pre", "post"]],
                                      names=["subject_id", "timepoint"])


def planted_views(n_subjects=30, seed=0, noise=0.6):
    """Two true factors: factor A drives views x and y, factor B drives views y and z."""
    rng = np.random.default_rng(seed)
    index = unit_index(n_subjects)
    n = len(index)
    z = rng.normal(size=(n, 2))
    sizes = {"x": 40, "y": 60, "z": 15}
    active = {"x": [0], "y": [0, 1], "z": [1]}
    views = {}
    for name, d in sizes.items():
        w = np.zeros((d, 2))
        for k in active[name]:
            w[: d // 2 if name == "y" else d, k] = rng.normal(1.0, 0.3, size=d // 2 if name == "y" else d)
        if name == "y":  # half of y's features follow A, the other half B
            w[: d // 2, 1] = 0
            w[d // 2:, 1] = rng.normal(1.0, 0.3, size=d - d // 2)
        y = z @ w.T + noise * rng.normal(size=(n, d))
        frame = pd.DataFrame(y, index=index, columns=[f"{name}{j}" for j in range(d)])
        views[name] = frame - frame.mean()
    return views, pd.DataFrame(z, index=index, columns=["A", "B"])


@pytest.fixture(scope="module")
def planted_fit():
    views, truth = planted_views()
    return fit_mofa(views, n_factors=4, seed=7, max_iter=1000), views, truth


def test_planted_factors_are_recovered_with_their_views(planted_fit):
    fit, views, truth = planted_fit
    assert fit.fitted
    scores = fit.scores.pivot_table(index=["subject_id", "timepoint"], columns="factor", values="score")
    scores = scores.loc[truth.index]
    corr = pd.DataFrame({t: [abs(np.corrcoef(truth[t], scores[f])[0, 1]) for f in scores.columns]
                         for t in truth.columns}, index=scores.columns)
    best = corr.idxmax()
    assert corr.max().min() > 0.9, corr
    # the two true factors are the two strongest factors, in either order
    assert set(best) == {"Factor1", "Factor2"}
    r2 = fit.variance_explained.set_index(["factor", "view"])["variance_explained"]
    a, b = best["A"], best["B"]
    assert r2[(a, "x")] > 0.3 and r2[(a, "z")] < 0.05
    assert r2[(b, "z")] > 0.3 and r2[(b, "x")] < 0.05
    # the all-factor R^2 of a view is at least that of its best single factor
    for view in views:
        assert r2[("all", view)] >= r2[(a, view)] - 1e-9


def test_weights_are_ranked_and_signed_by_the_largest_weight(planted_fit):
    fit, views, _ = planted_fit
    w = fit.weights
    assert len(w) == sum(v.shape[1] for v in views.values()) * 4
    for factor, group in w.groupby("factor"):
        top = group.loc[group["weight"].abs().idxmax()]
        assert top["weight"] > 0
        for view, sub in group.groupby("view"):
            assert sorted(sub["abs_rank"]) == list(range(1, len(sub) + 1))
            assert sub.sort_values("abs_rank")["weight"].abs().is_monotonic_decreasing


def test_fit_is_reproducible_and_leaves_the_global_generator_alone():
    views, _ = planted_views(n_subjects=20, seed=3)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    first = fit_mofa(views, n_factors=3, seed=11, max_iter=300)
    assert np.array_equal(np.random.get_state()[1], before)
    second = fit_mofa(views, n_factors=3, seed=11, max_iter=300)
    pd.testing.assert_frame_equal(first.scores, second.scores, check_exact=True)
    pd.testing.assert_frame_equal(first.weights, second.weights, check_exact=True)
    pd.testing.assert_frame_equal(first.variance_explained, second.variance_explained, check_exact=True)


def test_too_few_matched_samples_are_reported_not_fitted():
    views, _ = planted_views(n_subjects=5)
    fit = fit_mofa(views, n_factors=3, min_samples=15)
    assert not fit.fitted
    status = fit.status.iloc[0]
    assert status["status"] == "not_fitted"
    assert "only 10 matched sample" in status["reason"] and "15" in status["reason"]
    assert fit.scores.empty and fit.variance_explained.empty and fit.weights.empty
    one_view = fit_mofa({"x": views["x"]}, min_samples=2)
    assert not one_view.fitted and "two or more" in one_view.status["reason"].iloc[0]


def test_matched_samples_keep_units_with_every_modality():
    sheet = pd.DataFrame({
        "sample_id": ["a1", "a2", "a3", "a4", "b1", "b2", "b3", "qc1"],
        "subject_id": ["S1", "S1", "S2", "S2", "S1", "S1", "S2", ""],
        "timepoint": ["pre", "post", "pre", "post", "pre", "post", "pre", ""],
    })
    ta = pd.DataFrame({"f": [1.0, 2, 3, 4]}, index=["a1", "a2", "a3", "a4"])
    tb = pd.DataFrame({"g": [1.0, 2, 3, 9]}, index=["b1", "b2", "b3", "qc1"])
    matched, membership = matched_samples(sheet, {"a": ta, "b": tb}, ["pre", "post"])
    assert matched[["subject_id", "timepoint", "a", "b"]].values.tolist() == [
        ["S1", "pre", "a1", "b1"], ["S1", "post", "a2", "b2"], ["S2", "pre", "a3", "b3"]]
    missing = membership[~membership["used"]]
    assert missing[["subject_id", "timepoint", "reason"]].values.tolist() == [["S2", "post", "no b sample"]]


def test_mofa_views_drop_constant_cap_and_scale():
    index = unit_index(6)
    table = pd.DataFrame({"flat": 1.0, "small": np.arange(12) * 0.1, "big": np.arange(12) * 5.0,
                          "mid": (np.arange(12) % 3) * 1.0}, index=[f"s{i}" for i in range(12)])
    matched = pd.DataFrame({"subject_id": index.get_level_values(0), "timepoint": index.get_level_values(1),
                            "t": table.index})
    views, dropped = mofa_views({"t": table}, matched, scale_features=True, max_features=2)
    assert list(views["t"].columns) == ["big", "mid"]
    np.testing.assert_allclose(views["t"].std(ddof=0), 1.0)
    np.testing.assert_allclose(views["t"].mean(), 0.0, atol=1e-12)
    reasons = dropped.set_index("feature_id")["reason"]
    assert "constant" in reasons["flat"] and "most variable" in reasons["small"]


def test_factor_tests_match_scipy_on_a_planted_shift():
    rng = np.random.default_rng(5)
    subjects = [f"S{i:02d}" for i in range(16)]
    pre = rng.normal(size=16)
    shifted = pre + 1.0 + 0.3 * rng.normal(size=16)
    flat = rng.normal(size=16)
    rows = []
    for s, a, b, c in zip(subjects, pre, shifted, flat):
        rows += [(s, "pre", "Factor1", a), (s, "post", "Factor1", b),
                 (s, "pre", "Factor2", c), (s, "post", "Factor2", c + rng.normal())]
    scores = pd.DataFrame(rows, columns=["subject_id", "timepoint", "factor", "score"])
    response = pd.Series(["responder"] * 8 + ["non_responder"] * 7 + [""], index=subjects)
    out = factor_tests(scores, pre="pre", post="post", response=response)
    assert list(out.columns) == FACTOR_TEST_COLUMNS
    time = out[out["test"] == "time_paired_wilcoxon"].set_index("factor")
    expected = stats.wilcoxon(shifted - pre)
    assert time.loc["Factor1", "p"] == pytest.approx(expected.pvalue)
    assert time.loc["Factor1", "p"] < 0.001 and time.loc["Factor1", "effect"] > 0.5
    np.testing.assert_allclose(time["q"], multipletests(time["p"], method="fdr_bh")[1])
    resp = out[out["test"] == "response_mann_whitney_pre"].set_index("factor")
    mw = stats.mannwhitneyu(pre[:8], pre[8:15], alternative="two-sided")
    assert resp.loc["Factor1", "p"] == pytest.approx(mw.pvalue)
    assert (resp["n_a"] == 8).all() and (resp["n_b"] == 7).all()
