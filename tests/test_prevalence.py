"""Presence/absence tests: exact McNemar, Fisher and the discordant-pair interaction."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats
from scipy.stats.contingency import odds_ratio

from gutaxis.differential import prevalence
from gutaxis.differential.prevalence import (discordant_interaction_test, discordant_pairs, fisher_conditional_ci,
                                fisher_exact_p, fisher_presence_test, mcnemar_exact,
                                paired_presence_test, presence_call, presence_matrix)


def _random_presence(rng, shape, p_present=0.5, p_nan=0.0):
    out = (rng.random(shape) < p_present).astype(float)
    out[rng.random(shape) < p_nan] = np.nan
    return out


# --------------------------------------------------------------------------- McNemar

def test_mcnemar_hand_worked_example():
    # b = 9 lost, c = 1 gained: under H0, C ~ Bin(10, 1/2);
    # P(C <= 1) = (C(10,0) + C(10,1)) / 2^10 = (1 + 10) / 1024, two-sided p = 2 * 11 / 1024.
    assert mcnemar_exact(9, 1) == pytest.approx(22 / 1024, abs=1e-15)
    assert 22 / 1024 == 0.021484375
    # b = 0, c = 5: P(C <= 0) = 1/32, p = 2/32.
    assert mcnemar_exact(0, 5) == pytest.approx(0.0625, abs=1e-15)
    # symmetric in lost/gained
    assert mcnemar_exact(1, 9) == mcnemar_exact(9, 1)


def test_mcnemar_edge_cases_give_p_one():
    # no discordant pair, and equal numbers lost and gained (P(C <= n/2) > 1/2, clipped)
    np.testing.assert_array_equal(mcnemar_exact([0, 3, 7, 1], [0, 3, 7, 1]), [1.0, 1.0, 1.0, 1.0])
    # b and c one apart (b + c odd): P(X <= 3 | n = 7) = 1/2, p = 1
    assert mcnemar_exact(3, 4) == 1.0


def test_mcnemar_equals_scipy_binomtest():
    rng = np.random.default_rng(1)
    b = rng.integers(0, 40, 200)
    c = rng.integers(0, 40, 200)
    ours = mcnemar_exact(b, c)
    ref = [stats.binomtest(int(ci), int(bi + ci), 0.5).pvalue if bi + ci else 1.0 for bi, ci in zip(b, c)]
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=0)


def test_mcnemar_rejects_bad_counts():
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)
    with pytest.raises(ValueError):
        mcnemar_exact(1.5, 3)


# --------------------------------------------------------------------------- paired

def test_paired_counts_effect_and_interval_by_hand():
    # feature 0: 6 pairs lost, 2 gained, 4 concordant present, 3 concordant absent
    pre = np.array([1] * 6 + [0] * 2 + [1] * 4 + [0] * 3, dtype=float)
    post = np.array([0] * 6 + [1] * 2 + [1] * 4 + [0] * 3, dtype=float)
    res = paired_presence_test(pre[:, None], post[:, None]).iloc[0]
    assert (res.n_pairs, res.n_present_pre, res.n_present_post, res.n_lost, res.n_gained) == (15, 10, 6, 6, 2)
    assert res.prevalence_pre == pytest.approx(10 / 15)
    assert res.effect == pytest.approx(np.log(2 / 6), abs=1e-14)
    # exact p: 2 * P(Bin(8, 1/2) <= 2) = 2 * (1 + 8 + 28) / 256
    assert res.p == pytest.approx(2 * 37 / 256, abs=1e-15)
    ci = stats.binomtest(2, 8).proportion_ci(0.95, method="exact")
    assert res.ci_low == pytest.approx(special.logit(ci.low), abs=1e-10)
    assert res.ci_high == pytest.approx(special.logit(ci.high), abs=1e-10)


def test_taxon_lost_in_most_subjects_is_called_lost():
    # present in 40 of 40 before, 5 of 40 after: 35 lost, none gained
    pre = np.ones((40, 1))
    post = np.zeros((40, 1))
    post[:5] = 1
    res = paired_presence_test(pre, post).iloc[0]
    assert (res.n_lost, res.n_gained) == (35, 0)
    assert res.p == pytest.approx(2 * 0.5 ** 35, rel=1e-12)
    assert res.p < 1e-9
    # 0.5 correction: log(0.5 / 35.5)
    assert res.effect == pytest.approx(np.log(0.5 / 35.5), abs=1e-14)
    assert res.ci_low == -np.inf and res.ci_high < 0
    assert presence_call([res.effect], [res.p], 0.1, "time")[0] == "lost"


def test_paired_no_discordant_pair_and_no_usable_pair():
    pre = np.array([[1, 0, np.nan], [1, 0, 1], [0, 0, np.nan]], dtype=float)
    post = np.array([[1, 0, 1], [1, 0, np.nan], [0, 0, 0]], dtype=float)
    res = paired_presence_test(pre, post)
    for j in (0, 1):  # no discordant pair: no information
        assert res.p[j] == 1.0 and res.effect[j] == 0.0
        assert res.ci_low[j] == -np.inf and res.ci_high[j] == np.inf
    assert res.n_pairs[2] == 0
    assert np.isnan(res.loc[2, ["effect", "ci_low", "ci_high", "p"]].astype(float)).all()


def test_paired_nan_drops_the_pair_for_that_feature_only():
    rng = np.random.default_rng(3)
    pre = _random_presence(rng, (30, 25), 0.6, p_nan=0.15)
    post = _random_presence(rng, (30, 25), 0.4, p_nan=0.15)
    res = paired_presence_test(pre, post)
    for j in range(pre.shape[1]):
        keep = ~(np.isnan(pre[:, j]) | np.isnan(post[:, j]))
        alone = paired_presence_test(pre[keep, j][:, None], post[keep, j][:, None]).iloc[0]
        pd.testing.assert_series_equal(res.iloc[j], alone, check_names=False)
        b = int(((pre[keep, j] == 1) & (post[keep, j] == 0)).sum())
        c = int(((pre[keep, j] == 0) & (post[keep, j] == 1)).sum())
        assert (res.n_lost[j], res.n_gained[j]) == (b, c)
        ref = stats.binomtest(c, b + c).pvalue if b + c else 1.0
        assert res.p[j] == pytest.approx(ref, rel=1e-12)


def test_paired_interval_excludes_zero_exactly_when_p_below_alpha():
    rng = np.random.default_rng(4)
    b = rng.integers(0, 30, 400)
    c = rng.integers(0, 30, 400)
    n = b + c
    pre = np.zeros((n.max(), b.size))
    post = np.zeros_like(pre)
    for j in range(b.size):  # b lost pairs, then c gained pairs
        pre[:b[j], j] = 1
        post[b[j]:n[j], j] = 1
    res = paired_presence_test(pre, post, confidence=0.9)
    excludes = (res.ci_low > 0) | (res.ci_high < 0)
    np.testing.assert_array_equal(excludes, res.p < 0.1)
    assert excludes.any() and not excludes.all()


@pytest.mark.filterwarnings("ignore:Dropped")
def test_paired_effect_is_the_conditional_logistic_estimate():
    # 1:1 matched conditional logistic regression of presence on time: beta = log(c / b)
    from statsmodels.discrete.conditional_models import ConditionalLogit

    rng = np.random.default_rng(5)
    pre = (rng.random(60) < 0.7).astype(float)
    post = (rng.random(60) < 0.4).astype(float)
    y = np.concatenate([pre, post])
    time = np.r_[np.zeros(60), np.ones(60)][:, None]
    model = ConditionalLogit(y, time, groups=np.r_[np.arange(60), np.arange(60)])
    fit = model.fit(method="newton", tol=1e-14, disp=False)
    res = paired_presence_test(pre[:, None], post[:, None]).iloc[0]
    assert res.n_lost > 0 and res.n_gained > 0
    assert res.effect == pytest.approx(fit.params[0], abs=1e-6)


def test_paired_dataframe_input_keeps_feature_ids_and_rejects_bad_values():
    pre = pd.DataFrame({"taxA": [True, True, False], "taxB": [False, True, True]})
    post = pd.DataFrame({"taxA": [False, False, False], "taxB": [True, True, True]})
    res = paired_presence_test(pre, post)
    assert list(res.index) == ["taxA", "taxB"] and res.index.name == "feature_id"
    assert res.loc["taxA", "n_lost"] == 2 and res.loc["taxB", "n_gained"] == 1
    # nullable booleans: pd.NA is an unusable pair, as a DataFrame or as an object array
    pre_na = pre.astype("boolean")
    pre_na.iloc[0, 0] = pd.NA
    for pre_in, post_in in ((pre_na, post), (pre_na.to_numpy(), post.to_numpy())):
        res_na = paired_presence_test(pre_in, post_in)
        assert list(res_na.n_pairs) == [2, 3] and list(res_na.n_lost) == [1, 0]
    with pytest.raises(ValueError, match="present"):
        paired_presence_test(np.array([[2.0]]), np.array([[1.0]]))
    with pytest.raises(ValueError, match="same shape"):
        paired_presence_test(np.ones((3, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="confidence"):
        paired_presence_test(np.ones((3, 2)), np.ones((3, 2)), confidence=95)


def test_presence_matrix_and_discordant_pairs():
    values = np.array([[0.0, 3.0, np.nan], [1e-4, 0.0, 2.0]])
    np.testing.assert_array_equal(presence_matrix(values), [[0, 1, np.nan], [1, 0, 1]])
    np.testing.assert_array_equal(presence_matrix(values, detection=1e-3), [[0, 1, np.nan], [0, 0, 1]])
    pre = np.array([[1, 1, 0, 0, np.nan]], dtype=float).T
    post = np.array([[0, 1, 1, 0, 1]], dtype=float).T
    lost, gained = discordant_pairs(pre, post)
    np.testing.assert_array_equal(lost[:, 0], [1, 0, 0, 0, np.nan])
    np.testing.assert_array_equal(gained[:, 0], [0, 0, 1, 0, np.nan])


# --------------------------------------------------------------------------- Fisher

def test_fisher_presence_equals_scipy_per_feature():
    rng = np.random.default_rng(6)
    group = _random_presence(rng, (14, 60), rng.random(60), p_nan=0.1)
    ref = _random_presence(rng, (19, 60), rng.random(60), p_nan=0.1)
    res = fisher_presence_test(group, ref)
    for j in range(60):
        g = group[~np.isnan(group[:, j]), j]
        r = ref[~np.isnan(ref[:, j]), j]
        table = np.array([[g.sum(), g.size - g.sum()], [r.sum(), r.size - r.sum()]], dtype=int)
        assert (res.n_group[j], res.n_reference[j]) == (g.size, r.size)
        assert (res.n_present_group[j], res.n_present_reference[j]) == (table[0, 0], table[1, 0])
        assert res.p[j] == pytest.approx(stats.fisher_exact(table).pvalue, rel=1e-10, abs=1e-14)
        ci = odds_ratio(table, kind="conditional").confidence_interval(0.95)
        np.testing.assert_allclose(np.exp([res.ci_low[j], res.ci_high[j]]), [ci.low, ci.high], rtol=1e-8)
        corrected = table + (0.5 if (table == 0).any() else 0.0)
        if table.sum(axis=0).all():
            expected = np.log(corrected[0, 0] * corrected[1, 1] / (corrected[0, 1] * corrected[1, 0]))
        else:  # present in all or none: no information
            expected = 0.0
        assert res.effect[j] == pytest.approx(expected, abs=1e-12)


def test_fisher_kernels_match_scipy_on_random_and_large_tables():
    rng = np.random.default_rng(7)
    small = rng.integers(0, 12, (300, 4))
    large = rng.integers(0, 400, (40, 4))
    extreme = np.array([[1, 2499, 0, 2500], [2500, 0, 1, 2499], [1, 0, 0, 1], [0, 1, 1, 0],
                        [1000, 1, 1, 1000], [2, 3000, 3000, 2], [0, 5, 5000, 1], [0, 0, 0, 0]])
    for tables in (small, large, extreme):
        p = fisher_exact_p(*tables.T)
        low, high = fisher_conditional_ci(*tables.T, confidence=0.9)
        for t, pj, lj, hj in zip(tables, p, low, high):
            table = t.reshape(2, 2)
            assert pj == pytest.approx(stats.fisher_exact(table).pvalue, rel=1e-9, abs=1e-300)
            ci = odds_ratio(table, kind="conditional").confidence_interval(0.9)
            np.testing.assert_allclose(np.exp([lj, hj]), [ci.low, ci.high], rtol=1e-7)


def test_fisher_planted_prevalence_difference_and_untestable_features():
    group = np.zeros((30, 4))
    ref = np.zeros((20, 4))
    group[:27, 0] = 1
    ref[:2, 0] = 1  # 27/30 vs 2/20 present
    group[:, 1] = np.nan  # no usable subject in the group
    ref[:10, 2] = 1  # absent in all of the group, 10/20 in the reference
    # feature 3 absent everywhere: no information (Haldane would give log(20.5 / 30.5), not 0)
    res = fisher_presence_test(group, ref)
    assert res.p[0] < 1e-7 and res.effect[0] == pytest.approx(np.log(27 * 18 / (3 * 2)))
    assert res.ci_low[0] > 0
    assert np.isnan(res.loc[1, ["effect", "ci_low", "ci_high", "p"]].astype(float)).all()
    assert res.effect[2] == pytest.approx(np.log(0.5 * 10.5 / (30.5 * 10.5)))
    assert res.ci_low[2] == -np.inf and res.ci_high[2] < 0
    assert (res.effect[3], res.p[3], res.ci_low[3], res.ci_high[3]) == (0.0, 1.0, -np.inf, np.inf)
    calls = presence_call(res.effect, res.p, 0.05, "group")
    assert list(calls) == ["more_prevalent", "none", "less_prevalent", "none"]


def test_fisher_computes_each_distinct_table_once(monkeypatch):
    rng = np.random.default_rng(8)
    base_g = _random_presence(rng, (10, 5))
    base_r = _random_presence(rng, (12, 5))
    group = np.tile(base_g, (1, 200))  # 1000 features, at most 5 distinct tables
    ref = np.tile(base_r, (1, 200))
    seen = []
    original = prevalence._null_log_weights

    def counting(uniq):
        seen.append(len(uniq))
        return original(uniq)

    monkeypatch.setattr(prevalence, "_null_log_weights", counting)
    res = fisher_presence_test(group, ref)
    n_distinct = len({(base_g[:, j].sum(), base_r[:, j].sum()) for j in range(5)})
    assert seen == [n_distinct, n_distinct]  # one pass for p, one for the interval
    monkeypatch.undo()
    single = fisher_presence_test(base_g, base_r)
    np.testing.assert_array_equal(res.p.to_numpy().reshape(200, 5), np.tile(single.p.to_numpy(), (200, 1)))


def test_fisher_rejects_mismatched_features():
    with pytest.raises(ValueError, match="same features"):
        fisher_presence_test(np.ones((3, 2)), np.ones((3, 3)))
    a = pd.DataFrame({"x": [1, 0]})
    with pytest.raises(ValueError, match="different feature"):
        fisher_presence_test(a, a.rename(columns={"x": "y"}))
    with pytest.raises(ValueError, match="whole numbers"):
        fisher_exact_p(1, 2, -1, 4)
    with pytest.raises(ValueError, match="whole numbers"):
        fisher_conditional_ci(1, 2.5, 3, 4)


# --------------------------------------------------------------------------- interaction

def _pairs_with(counts):
    """lost/gained/is_group from per-feature (b_g, c_g, b_r, c_r), 8 concordant pairs each group."""
    n_g = max(b + c for b, c, _, _ in counts) + 8
    n_r = max(b + c for _, _, b, c in counts) + 8
    lost = np.zeros((n_g + n_r, len(counts)))
    gained = np.zeros_like(lost)
    for j, (b_g, c_g, b_r, c_r) in enumerate(counts):
        lost[:b_g, j] = 1
        gained[b_g:b_g + c_g, j] = 1
        lost[n_g:n_g + b_r, j] = 1
        gained[n_g + b_r:n_g + b_r + c_r, j] = 1
    return lost, gained, np.r_[np.ones(n_g, bool), np.zeros(n_r, bool)]


def test_interaction_is_fisher_on_the_discordant_pairs():
    counts = [(12, 1, 2, 9), (4, 6, 5, 5), (0, 7, 6, 0), (2, 5, 0, 0), (5, 2, 9, 4)]
    lost, gained, is_group = _pairs_with(counts)
    res = discordant_interaction_test(lost, gained, is_group)
    for j, (b_g, c_g, b_r, c_r) in enumerate(counts):
        table = np.array([[c_g, b_g], [c_r, b_r]])
        assert (res.n_lost_group[j], res.n_gained_group[j]) == (b_g, c_g)
        assert (res.n_lost_reference[j], res.n_gained_reference[j]) == (b_r, c_r)
        assert res.p[j] == pytest.approx(stats.fisher_exact(table).pvalue, rel=1e-10)
        ci = odds_ratio(table, kind="conditional").confidence_interval(0.95)
        np.testing.assert_allclose(np.exp([res.ci_low[j], res.ci_high[j]]), [ci.low, ci.high], rtol=1e-8)
    # no zero cell: difference of the two conditional log odds ratios
    assert res.effect[0] == pytest.approx(np.log(1 / 12) - np.log(9 / 2), abs=1e-12)
    assert res.effect[4] == pytest.approx(np.log(2 / 5) - np.log(4 / 9), abs=1e-12)
    assert res.effect[2] == pytest.approx(np.log(7.5 * 6.5 / (0.5 * 0.5)), abs=1e-12)
    # reference group without a discordant pair: no information
    assert res.effect[3] == 0.0 and res.p[3] == 1.0
    # group loses, reference gains
    assert res.p[0] < 0.01 and res.effect[0] < 0
    calls = presence_call(res.effect, res.p, 0.05, "interaction")
    assert list(calls[:3]) == ["more_lost", "none", "more_gained"]


@pytest.mark.filterwarnings("ignore:Dropped")
def test_interaction_effect_is_the_conditional_logistic_interaction():
    from statsmodels.discrete.conditional_models import ConditionalLogit

    rng = np.random.default_rng(10)
    n = 80
    is_group = rng.random(n) < 0.5
    pre = (rng.random(n) < 0.6).astype(float)
    post = (rng.random(n) < np.where(is_group, 0.2, 0.7)).astype(float)
    y = np.concatenate([pre, post])
    time = np.r_[np.zeros(n), np.ones(n)]
    g = np.r_[is_group, is_group].astype(float)
    model = ConditionalLogit(y, np.column_stack([time, time * g]), groups=np.r_[np.arange(n), np.arange(n)])
    fit = model.fit(method="newton", tol=1e-14, disp=False)
    lost, gained = discordant_pairs(pre[:, None], post[:, None])
    res = discordant_interaction_test(lost, gained, is_group).iloc[0]
    assert min(res.n_lost_group, res.n_gained_group, res.n_lost_reference, res.n_gained_reference) > 0
    assert res.effect == pytest.approx(fit.params[1], abs=1e-6)


def test_interaction_nan_and_validation():
    lost, gained, is_group = _pairs_with([(6, 1, 1, 6)])
    lost = np.hstack([lost, lost])
    gained = np.hstack([gained, gained])
    lost[~is_group, 1] = np.nan  # reference unusable for feature 1
    res = discordant_interaction_test(lost, gained, is_group)
    assert res.n_pairs_reference[1] == 0 and np.isnan(res.p[1]) and np.isnan(res.effect[1])
    assert res.n_pairs_group[0] == res.n_pairs_group[1] == is_group.sum()
    with pytest.raises(ValueError, match="both lost and gained"):
        discordant_interaction_test(np.ones((2, 1)), np.ones((2, 1)), [True, False])
    with pytest.raises(ValueError, match="one entry per pair"):
        discordant_interaction_test(lost, gained, is_group[:-1])


# --------------------------------------------------------------------------- calls

def test_presence_call_labels():
    effect = [-1.0, 2.0, -1.0, 0.5, np.nan, 1.0]
    q = [0.01, 0.01, 0.2, np.nan, 0.01, 0.1]
    assert list(presence_call(effect, q, 0.1, "time")) == ["lost", "gained", "none", "none", "none", "none"]
    assert list(presence_call(effect, q, 0.1, "group"))[:2] == ["less_prevalent", "more_prevalent"]
    with pytest.raises(ValueError, match="kind"):
        presence_call(effect, q, 0.1, "abundance")


# --------------------------------------------------------------------------- R

def _rscript(code: str) -> np.ndarray:
    out = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return np.array([[np.nan if v == "NA" else float(v) for v in line.split()]
                     for line in out.stdout.strip().splitlines()])


def _r_num(v: float) -> str:
    return "Inf" if v == np.inf else repr(float(v))


@pytest.mark.rcheck
def test_mcnemar_and_clopper_pearson_equal_r_binom_test():
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript not available")
    lost = np.array([9, 0, 35, 4, 13, 1, 60, 7, 250])
    gained = np.array([1, 5, 0, 4, 2, 1, 41, 19, 198])
    code = (f"b <- c({','.join(map(str, lost))}); g <- c({','.join(map(str, gained))}); "
            "for (i in seq_along(b)) { r <- binom.test(g[i], b[i] + g[i], conf.level = 0.9); "
            "cat(sprintf('%.17g %.17g %.17g\\n', r$p.value, r$conf.int[1], r$conf.int[2])) }")
    ref = _rscript(code)
    pre = np.zeros(((lost + gained).max(), lost.size))
    post = np.zeros_like(pre)
    for j, (b, c) in enumerate(zip(lost, gained)):
        pre[:b, j] = 1
        post[b:b + c, j] = 1
    res = paired_presence_test(pre, post, confidence=0.9)
    np.testing.assert_allclose(res.p, ref[:, 0], rtol=1e-10, atol=0)
    np.testing.assert_allclose(mcnemar_exact(lost, gained), ref[:, 0], rtol=1e-10, atol=0)
    np.testing.assert_allclose(special.expit(res.ci_low), ref[:, 1], rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(special.expit(res.ci_high), ref[:, 2], rtol=1e-10)


@pytest.mark.rcheck
def test_fisher_p_and_conditional_interval_equal_r_fisher_test():
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript not available")
    tables = np.array([[27, 3, 3, 27], [0, 12, 5, 9], [7, 0, 2, 11], [4, 6, 5, 5],
                       [1, 18, 9, 10], [40, 2, 38, 4], [0, 0, 6, 4], [3, 9, 9, 3],
                       [120, 80, 95, 105], [2, 2, 2, 2]])
    rows = ";".join(f"t[{i + 1},] <- c({','.join(map(str, t))})" for i, t in enumerate(tables))
    code = (f"t <- matrix(0, {len(tables)}, 4); {rows}; "
            "for (i in 1:nrow(t)) { r <- fisher.test(matrix(t[i,], 2, byrow = TRUE), conf.level = 0.95); "
            "cat(sprintf('%.17g %.17g %.17g\\n', r$p.value, r$conf.int[1], r$conf.int[2])) }")
    ref = _rscript(code)
    p = fisher_exact_p(*tables.T)
    low, high = fisher_conditional_ci(*tables.T)
    np.testing.assert_allclose(p, ref[:, 0], rtol=1e-10, atol=0)
    # R finds the roots with uniroot's default tolerance (~1.2e-4 on psi when psi < 1, on 1/psi
    # otherwise), so its interval is compared on that scale to that accuracy ...
    def uniroot_scale(v):
        with np.errstate(divide="ignore"):
            return np.minimum(v, 1 / v)
    np.testing.assert_allclose(uniroot_scale(np.exp(low)), uniroot_scale(ref[:, 1]), rtol=0, atol=3e-4)
    finite = np.isfinite(ref[:, 2])
    np.testing.assert_array_equal(np.isfinite(high), finite)
    np.testing.assert_allclose(uniroot_scale(np.exp(high[finite])), uniroot_scale(ref[finite, 2]),
                               rtol=0, atol=3e-4)
    # ... and our bounds are checked tightly by evaluating, in R, the noncentral hypergeometric
    # tails that define them (as fisher.test's pnhyper does): P(A >= a; psi_L) = P(A <= a; psi_U) = 0.025
    bounds = ";".join(f"t[{i + 1},] <- c({','.join(map(str, t))}); "
                      f"lo[{i + 1}] <- {_r_num(lo)}; hi[{i + 1}] <- {_r_num(hi)}"
                      for i, (t, lo, hi) in enumerate(zip(tables, np.exp(low), np.exp(high))))
    code = (f"t <- matrix(0, {len(tables)}, 4); lo <- hi <- numeric({len(tables)}); {bounds}; "
            "tail <- function(x, psi, upper) { m <- x[1] + x[2]; n <- x[3] + x[4]; k <- x[1] + x[3]; "
            "s <- max(0, k - n):min(k, m); d <- dhyper(s, m, n, k, log = TRUE) + log(psi) * s; "
            "d <- exp(d - max(d)); d <- d / sum(d); if (upper) sum(d[s >= x[1]]) else sum(d[s <= x[1]]) }; "
            "for (i in 1:nrow(t)) cat(sprintf('%.17g %.17g\\n', "
            "if (lo[i] > 0) tail(t[i,], lo[i], TRUE) else NA, "
            "if (is.finite(hi[i])) tail(t[i,], hi[i], FALSE) else NA))")
    tails = _rscript(code)
    np.testing.assert_allclose(tails[np.exp(low) > 0, 0], 0.025, rtol=1e-8)
    np.testing.assert_allclose(tails[np.isfinite(high), 1], 0.025, rtol=1e-8)
