"""Exact order statistics of Walsh averages and pairwise differences (gutaxis.stats.rank_shift).

Truth: every Walsh average / difference written down and sorted (numpy, per
feature), the previous brute-force implementations of the two Hodges-Lehmann
functions (copied below), and R's ``wilcox.test``.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from scipy import special

from gutaxis.stats import rank_shift
from gutaxis.differential.contrast import hodges_lehmann_shift
from gutaxis.stats.paired import _signed_rank_ci_ranks, hodges_lehmann
from gutaxis.stats.rank_shift import difference_order_statistics, walsh_order_statistics

# small band and sample: many narrowing steps even on small data
SEARCH = [dict(brute_max=0, band_cap=4, sample=8), dict(brute_max=0, band_cap=64, sample=32),
          dict(brute_max=0)]


def _sorted_walsh(col: np.ndarray) -> np.ndarray:
    d = col[~np.isnan(col)]
    i, j = np.triu_indices(d.size)
    return np.sort((d[i] + d[j]) * 0.5)


def _sorted_differences(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.sort(np.subtract.outer(x[~np.isnan(x)], y[~np.isnan(y)]).ravel())


def _data(rng, n, n_feat, kind):
    """Continuous, rounded (ties), three-valued (heavy ties), with 10% NaN."""
    if kind == "continuous":
        v = rng.normal(0.3, 1.0, (n, n_feat))
    elif kind == "rounded":
        v = np.round(rng.normal(0.3, 1.0, (n, n_feat)), 1)
    else:
        v = rng.integers(-1, 2, (n, n_feat)).astype(float)
    v[rng.random(v.shape) < 0.1] = np.nan
    return v


def _ranks(rng, m):
    """The four Hodges-Lehmann ranks plus two random ones, per feature (0 where m = 0)."""
    mm = np.maximum(m, 1)
    r = np.stack([(mm - 1) // 2, mm // 2, mm // 40, mm - 1 - mm // 40,
                  rng.integers(0, mm), np.zeros_like(mm)])
    return np.where(m > 0, r, 0)


@pytest.mark.parametrize("kind", ["continuous", "rounded", "three_values"])
@pytest.mark.parametrize("n", [1, 2, 3, 10, 57, 300])
def test_walsh_order_statistics_equal_a_full_sort(n, kind):
    rng = np.random.default_rng(n + len(kind))
    d = _data(rng, n, 7, kind)
    d[:, 0] = np.nan  # a feature without values
    counts = (~np.isnan(d)).sum(axis=0)
    ranks = _ranks(rng, counts * (counts + 1) // 2)
    expected = np.full(ranks.shape, np.nan)
    for f in range(d.shape[1]):
        if counts[f]:
            expected[:, f] = _sorted_walsh(d[:, f])[ranks[:, f]]
    for options in SEARCH:
        got = walsh_order_statistics(d, ranks, **options)
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(rank_shift.walsh_select_brute(d, ranks), expected)


@pytest.mark.parametrize("kind", ["continuous", "rounded", "three_values"])
@pytest.mark.parametrize("n1,n2", [(1, 1), (1, 5), (2, 3), (10, 10), (57, 31), (300, 250)])
def test_difference_order_statistics_equal_a_full_sort(n1, n2, kind):
    rng = np.random.default_rng(n1 * 7 + n2)
    x = _data(rng, n1, 6, kind)
    y = _data(rng, n2, 6, kind) - 0.2
    y[:, 1] = np.nan  # an empty reference sample
    c1, c2 = (~np.isnan(x)).sum(axis=0), (~np.isnan(y)).sum(axis=0)
    ranks = _ranks(rng, c1 * c2)
    expected = np.full(ranks.shape, np.nan)
    for f in range(x.shape[1]):
        if c1[f] and c2[f]:
            expected[:, f] = _sorted_differences(x[:, f], y[:, f])[ranks[:, f]]
    for options in SEARCH:
        got = difference_order_statistics(x, y, ranks, **options)
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(rank_shift.difference_select_brute(x, y, ranks), expected)


def test_many_features_of_different_sizes_at_once():
    rng = np.random.default_rng(3)
    d = np.round(rng.normal(size=(220, 60)), 2)
    d[rng.random(d.shape) < rng.uniform(0, 0.6, 60)] = np.nan  # n from ~90 to 220
    counts = (~np.isnan(d)).sum(axis=0)
    ranks = _ranks(rng, counts * (counts + 1) // 2)
    got = walsh_order_statistics(d, ranks, brute_max=0, band_cap=16, sample=16)
    for f in range(d.shape[1]):
        np.testing.assert_array_equal(got[:, f], _sorted_walsh(d[:, f])[ranks[:, f]])


def test_infinite_values_take_the_brute_force_route():
    d = np.array([[1.0, 2.0], [np.inf, 0.5], [-3.0, 1.5], [0.25, -1.0]])
    ranks = np.array([[0, 0], [4, 4], [9, 9]])
    np.testing.assert_array_equal(walsh_order_statistics(d, ranks, brute_max=0),
                                  rank_shift.walsh_select_brute(d, ranks))


# ------------------------------------------------------------------ the previous implementations

def _old_hodges_lehmann(d, confidence=0.95):
    """gutaxis.stats.paired.hodges_lehmann before issue 16 (all Walsh averages, partitioned)."""
    n_obs = (~np.isnan(d)).sum(axis=0)
    estimate = np.full(d.shape[1], np.nan)
    low, high = estimate.copy(), estimate.copy()
    for n in np.unique(n_obs):
        n = int(n)
        if n == 0:
            continue
        cols = np.flatnonzero(n_obs == n)
        m = n * (n + 1) // 2
        qu, qhi = _signed_rank_ci_ranks(n, confidence)
        kth = sorted({(m - 1) // 2, m // 2, qu - 1, qhi - 1})
        sub = d[:, cols]
        keep = np.argsort(np.isnan(sub), axis=0, kind="stable")[:n]
        rows = np.ascontiguousarray(np.take_along_axis(sub, keep, axis=0).T)
        walsh = np.empty((cols.size, m))
        offset = 0
        for i in range(n):
            np.add(rows[:, i:i + 1], rows[:, i:], out=walsh[:, offset:offset + n - i])
            offset += n - i
        walsh *= 0.5
        walsh.partition(kth, axis=1)
        estimate[cols] = 0.5 * (walsh[:, (m - 1) // 2] + walsh[:, m // 2])
        low[cols] = walsh[:, qu - 1]
        high[cols] = walsh[:, qhi - 1]
    return estimate, low, high


def _old_hodges_lehmann_shift(group, reference, confidence=0.95):
    """gutaxis.differential.contrast.hodges_lehmann_shift before issue 16."""
    F = group.shape[1]
    n1 = (~np.isnan(group)).sum(axis=0)
    n2 = (~np.isnan(reference)).sum(axis=0)
    est, lo, hi = (np.full(F, np.nan) for _ in range(3))
    z = special.ndtri(0.5 + confidence / 2)
    keys = pd.DataFrame({"n1": n1, "n2": n2})
    for (a, b), rows in keys.groupby(["n1", "n2"], sort=True):
        if a == 0 or b == 0:
            continue
        cols = rows.index.to_numpy()
        m = int(a * b)
        k = int(np.ceil(m / 2 - 0.5 - z * np.sqrt(a * b * (a + b + 1) / 12.0)))
        k = min(max(k, 1), m)
        kth = sorted({(m - 1) // 2, m // 2, k - 1, m - k})

        def compress(v, n):
            sub = v[:, cols]
            keep = np.argsort(np.isnan(sub), axis=0, kind="stable")[:n]
            return np.take_along_axis(sub, keep, axis=0)

        x_all, y_all = compress(group, a), compress(reference, b)
        diffs = (x_all[:, None, :] - y_all[None, :, :]).reshape(m, -1).T.copy()
        diffs.partition(kth, axis=1)
        est[cols] = 0.5 * (diffs[:, (m - 1) // 2] + diffs[:, m // 2])
        lo[cols] = diffs[:, k - 1]
        hi[cols] = diffs[:, m - k]
    return est, lo, hi


@pytest.mark.parametrize("kind", ["continuous", "rounded", "three_values"])
def test_hodges_lehmann_equals_the_previous_brute_force(kind):
    rng = np.random.default_rng(11)
    # n from 1 to ~300: both the direct route (M <= 2,000) and the search
    blocks = []
    for n in (1, 2, 3, 10, 57, 199, 260, 320):
        block = np.full((320, 3), np.nan)
        block[:n] = _data(rng, n, 3, kind)
        blocks.append(block)
    d = rng.permuted(np.hstack(blocks), axis=0)  # NaN anywhere, not only at the end
    res = hodges_lehmann(d, confidence=0.9)
    est, low, high = _old_hodges_lehmann(d, confidence=0.9)
    np.testing.assert_array_equal(res["estimate"], est)
    np.testing.assert_array_equal(res["ci_low"], low)
    np.testing.assert_array_equal(res["ci_high"], high)
    assert (res["n"] > 200).sum() >= 6  # the search route was taken


@pytest.mark.parametrize("kind", ["continuous", "rounded", "three_values"])
def test_hodges_lehmann_shift_equals_the_previous_brute_force(kind):
    rng = np.random.default_rng(12)
    x = _data(rng, 260, 8, kind) + 0.3
    y = _data(rng, 190, 8, kind)
    x[5:, 0] = np.nan  # 5 x ~170 values: direct route
    y[:, 1] = np.nan  # empty reference
    res = hodges_lehmann_shift(x, y)
    est, lo, hi = _old_hodges_lehmann_shift(x, y)
    np.testing.assert_array_equal(res["estimate"], est)
    np.testing.assert_array_equal(res["ci_low"], lo)
    np.testing.assert_array_equal(res["ci_high"], hi)
    assert np.isnan(res["estimate"][1]) and np.isfinite(res["estimate"][[0, 2]]).all()


def test_result_does_not_depend_on_search_settings():
    rng = np.random.default_rng(5)
    d = np.round(rng.normal(size=(400, 4)), 1)
    m = 400 * 401 // 2
    ranks = np.array([[(m - 1) // 2] * 4, [m // 2] * 4, [123] * 4, [m - 124] * 4])
    results = [walsh_order_statistics(d, ranks, brute_max=0, band_cap=c, sample=s, seed=seed)
               for c, s, seed in [(16, 16, 0), (1024, 256, 1), (100, 1000, 2)]]
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])


# ------------------------------------------------------------------ R


def _rscript(code: str) -> list[float]:
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript not available")
    out = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True, check=True)
    return [float(v) for v in out.stdout.split()]


def _r_vector(v: np.ndarray) -> str:
    return "c(" + ",".join(repr(float(x)) for x in v) + ")"


@pytest.mark.rcheck
def test_walsh_search_equals_r_wilcox_test_one_sample():
    rng = np.random.default_rng(21)
    d = rng.normal(0.4, 1.0, 40)  # tie-free
    r_est, r_low, r_high = _rscript(
        f"r <- wilcox.test({_r_vector(d)}, conf.int=TRUE, exact=TRUE); "
        "cat(sprintf('%.17g', c(r$estimate, r$conf.int)))")
    m = 40 * 41 // 2
    qu, qhi = _signed_rank_ci_ranks(40, 0.95)
    got = walsh_order_statistics(d, [[(m - 1) // 2], [m // 2], [qu - 1], [qhi - 1]],
                                 brute_max=0, band_cap=8, sample=16)[:, 0]
    assert 0.5 * (got[0] + got[1]) == pytest.approx(r_est, rel=1e-15)
    assert got[2] == pytest.approx(r_low, rel=1e-15)
    assert got[3] == pytest.approx(r_high, rel=1e-15)


@pytest.mark.rcheck
def test_difference_search_equals_r_wilcox_test_two_sample():
    rng = np.random.default_rng(22)
    x, y = rng.normal(0.5, 1.0, 30), rng.normal(0.0, 1.0, 25)  # tie-free
    r_est, r_low, r_high, r_qu = _rscript(
        f"x <- {_r_vector(x)}; y <- {_r_vector(y)}; "
        "r <- wilcox.test(x, y, conf.int=TRUE, exact=TRUE); "
        "qu <- qwilcox(0.025, length(x), length(y)); if (qu == 0) qu <- 1; "
        "cat(sprintf('%.17g', c(r$estimate, r$conf.int, qu)))")
    m, qu = 30 * 25, int(r_qu)
    got = difference_order_statistics(x, y, [[(m - 1) // 2], [m // 2], [qu - 1], [m - qu]],
                                      brute_max=0, band_cap=8, sample=16)[:, 0]
    assert 0.5 * (got[0] + got[1]) == pytest.approx(r_est, rel=1e-15)
    assert got[2] == pytest.approx(r_low, rel=1e-15)
    assert got[3] == pytest.approx(r_high, rel=1e-15)
