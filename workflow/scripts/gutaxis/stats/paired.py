"""Paired pre/post tests on within-subject differences, vectorised across features.

Samples are paired by subject (:func:`gutaxis.io.pairing.paired_design`), differences ``post - pre``
are formed for every feature at once (:func:`paired_differences`), and then

* :func:`paired_t_test` - one-sample t test of the mean difference (= scipy's
  ``ttest_rel``),
* :func:`wilcoxon_signed_rank` - Wilcoxon signed-rank test; for every feature it
  chooses exact / permutation / normal approximation exactly as
  ``scipy.stats.wilcoxon(post, pre, nan_policy="omit")`` does for that feature
  alone (scipy's own vectorised call decides once for the whole array, which is
  why it is not used here),
* :func:`hodges_lehmann` - median of Walsh averages with Tukey's
  distribution-free confidence interval,

all operating on a ``(n_pairs, n_features)`` array; missing values (NaN) drop a
pair for that feature only.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import special


def paired_differences(values: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Within-subject differences ``post - pre`` for every feature.

    Parameters
    ----------
    values : pandas.DataFrame
        Samples x features on the scale to be tested (e.g. CLR).
    pairs : pandas.DataFrame
        ``subject_id, pre_sample, post_sample``
        (:func:`gutaxis.io.pairing.pair_samples`).

    Returns
    -------
    pandas.DataFrame
        Subjects x features (index ``subject_id``); NaN where either value is
        missing.
    """
    post = values.loc[pairs["post_sample"]].to_numpy(dtype=float)
    pre = values.loc[pairs["pre_sample"]].to_numpy(dtype=float)
    return pd.DataFrame(post - pre, index=pd.Index(pairs["subject_id"], name="subject_id"),
                        columns=values.columns)


def _as_2d(diff):
    if isinstance(diff, pd.DataFrame):
        return diff.to_numpy(dtype=float), diff.columns
    arr = np.asarray(diff, dtype=float)
    if arr.ndim == 1:
        arr = arr[:, None]
    return arr, None


def _frame(index, **arrays) -> pd.DataFrame:
    """One row per feature; indexed by feature id when the input had columns."""
    out = pd.DataFrame(arrays)
    if index is not None:
        out.index = pd.Index(index, name="feature_id")
    return out


def paired_t_test(diff, confidence: float = 0.95) -> pd.DataFrame:
    r"""Paired t test for every feature (column) of a differences array.

    .. math:: t = \frac{\bar d}{s_d/\sqrt{n}},\quad \nu = n - 1,\quad
       \bar d \pm t_{1-\alpha/2,\nu}\, s_d/\sqrt{n}

    Parameters
    ----------
    diff : array_like or pandas.DataFrame, shape (n_pairs, n_features)
        Differences ``post - pre``; NaN drops that pair for that feature.
    confidence : float
        Level of the confidence interval of the mean difference.

    Returns
    -------
    pandas.DataFrame
        One row per feature: ``n, mean, sd, t, df, p, ci_low, ci_high``.
        Equal to ``scipy.stats.ttest_rel(post, pre, nan_policy="omit")``.

    References
    ----------
    Student (1908). The probable error of a mean. Biometrika 6, 1-25.
    """
    d, columns = _as_2d(diff)
    present = ~np.isnan(d)
    n = present.sum(axis=0)
    d0 = np.where(present, d, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = d0.sum(axis=0) / n
        dev = np.where(present, d - mean, 0.0)
        sd = np.sqrt((dev * dev).sum(axis=0) / (n - 1))
        se = sd / np.sqrt(n)
        t = mean / se
        df = (n - 1).astype(float)
        p = 2.0 * special.stdtr(df, -np.abs(t))
        half = special.stdtrit(df, 0.5 + confidence / 2) * se
    return _frame(columns, n=n, mean=mean, sd=sd, t=t, df=df, p=p,
                  ci_low=mean - half, ci_high=mean + half)


def average_ranks(a: np.ndarray):
    """Average ranks along axis 0 (NaN excluded, rank NaN) and each value's tie size.

    Returns ``(ranks, tie_size)``; ``tie_size`` is 0 where ``a`` is NaN.
    """
    n = a.shape[0]
    order = np.argsort(a, axis=0, kind="stable")  # NaN sort last
    s = np.take_along_axis(a, order, axis=0)
    valid = ~np.isnan(s)
    new_run = np.ones(s.shape, dtype=bool)
    new_run[1:] = s[1:] != s[:-1]  # NaN != NaN, so every NaN is its own run
    last_of_run = np.ones(s.shape, dtype=bool)
    last_of_run[:-1] = new_run[1:]
    pos = np.arange(n)[:, None]
    start = np.maximum.accumulate(np.where(new_run, pos, 0), axis=0)
    end = np.minimum.accumulate(np.where(last_of_run, pos, n)[::-1], axis=0)[::-1]
    rank_sorted = np.where(valid, (start + end) / 2.0 + 1.0, np.nan)
    tie_sorted = np.where(valid, end - start + 1, 0)
    ranks = np.empty_like(rank_sorted)
    ties = np.empty_like(tie_sorted)
    np.put_along_axis(ranks, order, rank_sorted, axis=0)
    np.put_along_axis(ties, order, tie_sorted, axis=0)
    return ranks, ties


@lru_cache(maxsize=None)
def signed_rank_counts(n: int) -> np.ndarray:
    """Number of sign patterns of ranks 1..n giving each positive-rank sum.

    ``signed_rank_counts(n)[k] / 2**n`` is the exact null probability that the
    Wilcoxon statistic equals ``k`` (no ties); built by the standard recursion
    over ranks (exact in int64 up to n = 60).
    """
    size = n * (n + 1) // 2 + 1
    counts = np.zeros(size, dtype=np.int64)
    counts[0] = 1
    for rank in range(1, n + 1):
        shifted = np.zeros_like(counts)
        shifted[rank:] = counts[:-rank]
        counts = counts + shifted
    counts.setflags(write=False)
    return counts


def _signed_rank_cdf(n: int) -> np.ndarray:
    counts = signed_rank_counts(n)
    return np.cumsum(counts) / float(2 ** n)


def _exact_two_sided(r_plus: np.ndarray, count: np.ndarray) -> np.ndarray:
    """scipy's exact two-sided p: 2 min(P(W >= floor r), P(W <= ceil r)), clipped."""
    p = np.full(r_plus.shape, np.nan)
    for n in np.unique(count):
        sel = count == n
        cdf = _signed_rank_cdf(int(n))
        k_hi = np.ceil(r_plus[sel]).astype(int)
        k_lo = np.floor(r_plus[sel]).astype(int)
        p_le = cdf[np.clip(k_hi, 0, cdf.size - 1)]
        p_ge = np.where(k_lo <= 0, 1.0, 1.0 - cdf[np.clip(k_lo - 1, 0, cdf.size - 1)])
        p[sel] = np.clip(2.0 * np.minimum(p_ge, p_le), 0.0, 1.0)
    return p


def _sign_flip_two_sided(d: np.ndarray, ranks: np.ndarray, r_plus: np.ndarray,
                         n_obs: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Exact sign-flip permutation p (scipy's PermutationMethod when 2**n <= 9999).

    Flipping signs leaves the ranks of ``|d|`` unchanged, so the null statistic
    is (constant) + the sum of the non-zero ranks of any subset: all ``2**n``
    subsets are enumerated as one matrix product per sample size.
    """
    p = np.full(columns.size, np.nan)
    for n in np.unique(n_obs[columns]):
        cols = columns[n_obs[columns] == n]
        n = int(n)
        sub_d, sub_r = d[:, cols], ranks[:, cols]
        keep = np.argsort(np.isnan(sub_d), axis=0, kind="stable")[:n]
        dd = np.take_along_axis(sub_d, keep, axis=0)
        rr = np.take_along_axis(sub_r, keep, axis=0)
        movable = np.where((dd != 0) & ~np.isnan(rr), rr, 0.0)
        constant = r_plus[cols] - np.where(dd > 0, movable, 0.0).sum(axis=0)
        patterns = ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1).astype(float)
        null = constant + patterns @ movable
        observed = r_plus[cols]
        gamma = np.abs(observed) * np.finfo(float).eps * 100
        less = np.count_nonzero(null <= observed + gamma, axis=0)
        greater = np.count_nonzero(null >= observed - gamma, axis=0)
        p[np.searchsorted(columns, cols)] = np.clip(
            2.0 * np.minimum(less, greater) / 2.0 ** n, 0.0, 1.0)
    return p


def wilcoxon_signed_rank(diff, zero_method: str = "wilcox", correction: bool = False,
                         method: str = "auto") -> pd.DataFrame:
    r"""Wilcoxon signed-rank test for every feature (column) of a differences array.

    With :math:`R_i` the average rank of :math:`|d_i|` among the non-zero
    differences (``zero_method="wilcox"``),

    .. math:: W^+ = \sum_{d_i>0} R_i,\qquad
       z = \frac{W^+ - n(n+1)/4}
       {\sqrt{\left[n(n+1)(2n+1) - \tfrac12\sum_g (t_g^3-t_g)\right]/24}}

    (``t_g``: sizes of tied groups). ``zero_method`` "pratt" and "zsplit" and
    the continuity ``correction`` follow scipy.

    The p-value method is chosen per feature exactly as
    ``scipy.stats.wilcoxon(x, y, nan_policy="omit", method="auto")`` (SciPy
    1.17) chooses it for that feature alone, with ``n`` the number of
    non-missing pairs:

    * ``n > 50``: normal approximation;
    * no ties and no zero differences: exact null distribution;
    * otherwise, ``n <= 13``: exact sign-flip permutation distribution
      (all ``2**n`` patterns);
    * otherwise: normal approximation.

    Parameters
    ----------
    diff : array_like or pandas.DataFrame, shape (n_pairs, n_features)
        Differences ``post - pre``; NaN drops the pair for that feature.
    zero_method : {"wilcox", "pratt", "zsplit"}
    correction : bool
        Continuity correction of the normal approximation.
    method : {"auto", "exact", "asymptotic"}

    Returns
    -------
    pandas.DataFrame
        One row per feature: ``n, n_zero, statistic`` (scipy's two-sided
        statistic ``min(W+, W-)``), ``r_plus, z, p, p_method``.

    References
    ----------
    Wilcoxon, F. (1945). Individual comparisons by ranking methods.
    Biometrics Bulletin 1, 80-83. Pratt, J. W. (1959). JASA 54, 655-667.
    """
    if zero_method not in ("wilcox", "pratt", "zsplit"):
        raise ValueError("zero_method must be 'wilcox', 'pratt' or 'zsplit'")
    if method not in ("auto", "exact", "asymptotic"):
        raise ValueError("method must be 'auto', 'exact' or 'asymptotic'")
    d, columns = _as_2d(diff)
    n_obs = (~np.isnan(d)).sum(axis=0)
    zero = d == 0
    n_zero = zero.sum(axis=0)
    ranked = np.where(zero, np.nan, d) if zero_method == "wilcox" else d
    ranks, ties = average_ranks(np.abs(ranked))
    count = (~np.isnan(ranked)).sum(axis=0).astype(float)
    r_plus = np.where(ranked > 0, ranks, 0.0).sum(axis=0)
    r_minus = np.where(ranked < 0, ranks, 0.0).sum(axis=0)
    has_ties = (ties > 1).any(axis=0)
    if zero_method == "zsplit":
        half_zero = np.where(zero, ranks, 0.0).sum(axis=0) / 2.0
        r_plus = r_plus + half_zero
        r_minus = r_minus + half_zero
    mean = count * (count + 1.0) * 0.25
    var24 = count * (count + 1.0) * (2.0 * count + 1.0)
    tie_terms = np.where(ties > 0, ties.astype(float) ** 2 - 1.0, 0.0)
    if zero_method == "pratt":
        nz = n_zero.astype(float)
        mean = mean - nz * (nz + 1.0) * 0.25
        var24 = var24 - nz * (nz + 1.0) * (2.0 * nz + 1.0)
        tie_terms = np.where(zero, 0.0, tie_terms)  # the zeros' tie group is excluded
    tie_correct = tie_terms.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt((var24 - tie_correct / 2.0) / 24.0)
        z = (r_plus - mean) / se
        if correction:
            z = z - np.sign(z) * 0.5 / se
        p_normal = 2.0 * special.ndtr(-np.abs(z))

    if method == "auto":
        exact_ok = ~has_ties & (n_zero == 0)
        p_method = np.where(n_obs > 50, "asymptotic",
                            np.where(exact_ok, "exact",
                                     np.where(n_obs <= 13, "permutation", "asymptotic")))
    else:
        p_method = np.full(d.shape[1], method)
    p = np.where(p_method == "asymptotic", p_normal, np.nan)
    is_exact = np.flatnonzero(p_method == "exact")
    if is_exact.size:
        p[is_exact] = _exact_two_sided(r_plus[is_exact], count[is_exact].astype(int))
    is_perm = np.flatnonzero(p_method == "permutation")
    if is_perm.size:
        p[is_perm] = _sign_flip_two_sided(d, ranks, r_plus, n_obs, is_perm)
    p = np.where(n_obs == 0, np.nan, p)
    return _frame(columns, n=n_obs, n_zero=n_zero,
                  statistic=np.minimum(r_plus, r_minus), r_plus=r_plus,
                  z=np.where(p_method == "asymptotic", -np.abs(z), np.nan), p=p,
                  p_method=p_method)


def psignrank(q: float, n: int) -> float:
    """P(V <= q) for the Wilcoxon signed-rank statistic V of n untied, non-zero values (R's
    ``psignrank``)."""
    q = int(np.floor(q + 1e-7))
    return 0.0 if q < 0 else float(_signed_rank_cdf(n)[min(q, n * (n + 1) // 2)])


def qsignrank(p: float, n: int) -> int:
    """Smallest q with P(V <= q) >= p: R's ``qsignrank`` for p <= 0.5, with its fuzz of
    10 machine epsilons below p."""
    return int(np.searchsorted(_signed_rank_cdf(n), p - 10 * np.finfo(float).eps, side="left"))


def _signed_rank_ci_ranks(n: int, confidence: float) -> tuple[int, int]:
    """1-based order statistics of the Walsh averages bounding Tukey's CI.

    ``qu`` is the lower alpha/2 quantile of the signed-rank null distribution
    (:func:`qsignrank`; exact for n <= 50, normal approximation with
    continuity correction above), at least 1; the CI is ``(W_(qu), W_(M - qu + 1))``.
    """
    m = n * (n + 1) // 2
    alpha = 1.0 - confidence
    if n <= 50:
        qu = qsignrank(alpha / 2, n)
    else:
        sigma = np.sqrt(n * (n + 1) * (2 * n + 1) / 24.0)
        qu = int(np.ceil(m / 2.0 - 0.5 + special.ndtri(alpha / 2) * sigma))
    qu = max(qu, 1)
    return qu, m - qu + 1


def walsh_averages(d) -> np.ndarray:
    r"""All Walsh averages :math:`(d_i + d_j)/2,\ i \le j`, sorted, of each column.

    Parameters
    ----------
    d : array_like, shape (n,) or (n, F)
        Values; NaN drops that value for that column.

    Returns
    -------
    ndarray, shape (M,) or (M, F)
        Ascending, :math:`M = n(n+1)/2` of the longest column; a shorter column ends
        in NaN.
    """
    arr = np.asarray(d, dtype=float)
    values = np.sort(arr.reshape(arr.shape[0], -1), axis=0)  # NaN last
    i, j = np.triu_indices(values.shape[0])
    walsh = np.sort((values[i] + values[j]) / 2.0, axis=0)
    return walsh[:, 0] if arr.ndim == 1 else walsh


#: confidence intervals of :func:`hodges_lehmann`
HL_INTERVALS = ("tukey", "wilcox_test")


def hodges_lehmann(diff, confidence: float = 0.95, interval: str = "tukey",
                   correct: bool = True, max_elements: int = 4_000_000) -> pd.DataFrame:
    r"""One-sample Hodges-Lehmann estimate and its confidence interval for every feature.

    .. math:: \hat\Delta = \operatorname{median}\{(d_i + d_j)/2 : i \le j\}

    over the :math:`M = n(n+1)/2` Walsh averages of the non-missing differences
    (zeros included). Two intervals:

    * ``interval="tukey"`` (the differential tests): bounded by the ``q``-th
      smallest and largest Walsh average, ``q`` the lower alpha/2 quantile of the
      signed-rank distribution (:func:`_signed_rank_ci_ranks`; R's
      ``wilcox.test(conf.int=TRUE, exact=TRUE)``); coverage is exact for
      continuous data without ties.
    * ``interval="wilcox_test"`` (α diversity): as R's ``wilcox.test(d,
      conf.int=TRUE)`` with its defaults. Zero differences are dropped; with fewer
      than 50 left, no ties and no zero it is the exact interval above (when the
      level cannot be reached, tiny n, R's rule reports the level achieved);
      otherwise the normal-approximation interval, the shifts :math:`\delta` where
      the tie-corrected signed-rank statistic of :math:`d - \delta`,

      .. math:: W(\delta) = \frac{T^+(\delta) - n_\delta(n_\delta+1)/4
         - \tfrac12\operatorname{sign}(\cdot)}
         {\sqrt{n_\delta(n_\delta+1)(2n_\delta+1)/24 - \sum_g (t_g^3-t_g)/48}},

      crosses :math:`\pm z_{1-\alpha/2}` (``correct``: the continuity term
      :math:`\tfrac12\operatorname{sign}`). R finds the crossing with ``uniroot``;
      :math:`W` jumps only at Walsh averages of the non-zero differences, so a
      bisection over them, in step for every feature, finds it exactly. Where
      :math:`W` cannot reach the quantile, alpha is doubled as R does and
      ``conf_level`` reports the level achieved.

    The order statistics of the estimate and of Tukey's and the exact interval are
    selected without writing the Walsh averages down:
    :func:`gutaxis.stats.rank_shift.walsh_order_statistics` searches the sorted
    matrix :math:`(d_{(i)} + d_{(j)})/2` in :math:`O(n \log n)` per feature
    (Monahan 1984) and returns the very floats a full sort gives; features with
    at most 2,000 Walsh averages are sorted directly.

    Parameters
    ----------
    diff : array_like or pandas.DataFrame, shape (n_pairs, n_features)
        Differences; NaN drops the pair for that feature.
    confidence : float
    interval : {"tukey", "wilcox_test"}
    correct : bool
        Continuity correction of the ``wilcox_test`` normal approximation.
    max_elements : int
        Walsh averages held in memory at once where they are written down
        (features are chunked).

    Returns
    -------
    pandas.DataFrame
        One row per feature: ``n, estimate, ci_low, ci_high``; with
        ``wilcox_test`` also ``n_nonzero, conf_level`` and ``ci_method``
        (``exact``, ``normal approximation[ with continuity correction]`` or
        ``not computed``).

    References
    ----------
    Hodges, J. L. & Lehmann, E. L. (1963). Estimates of location based on rank
    tests. Ann. Math. Statist. 34, 598-611. Hollander, M., Wolfe, D. A. &
    Chicken, E. (2014). Nonparametric Statistical Methods, 3rd ed., sec. 3.2.
    Bauer, D. F. (1972). Constructing confidence sets using rank statistics.
    JASA 67, 687-690. Monahan, J. F. (1984). Algorithm 616: fast computation of
    the Hodges-Lehmann location estimator. ACM Trans. Math. Softw. 10, 265-270.
    """
    from gutaxis.stats.rank_shift import walsh_order_statistics

    if interval not in HL_INTERVALS:
        raise ValueError(f"interval must be one of {HL_INTERVALS}")
    d, columns = _as_2d(diff)
    n_obs = (~np.isnan(d)).sum(axis=0)
    m = n_obs * (n_obs + 1) // 2
    if interval == "tukey":
        exact = n_obs > 0
    else:
        nonzero = np.where(d == 0, np.nan, d)
        n_nonzero = (~np.isnan(nonzero)).sum(axis=0)
        _, ties = average_ranks(np.abs(nonzero))
        exact = (n_nonzero > 0) & (n_nonzero < 50) & (n_nonzero == n_obs) & ~(ties > 1).any(axis=0)
    q_low = np.ones(d.shape[1], dtype=np.int64)
    q_high = np.maximum(m, 1)
    for n in np.unique(n_obs[exact]):
        q_low[exact & (n_obs == n)], q_high[exact & (n_obs == n)] = _signed_rank_ci_ranks(
            int(n), confidence)
    ranks = np.stack([(m - 1) // 2, m // 2, q_low - 1, q_high - 1])
    ranks = np.where(n_obs > 0, ranks, 0)
    mid_low, mid_high, low, high = walsh_order_statistics(d, ranks, max_elements=max_elements)
    estimate = 0.5 * (mid_low + mid_high)
    if interval == "tukey":
        return _frame(columns, n=n_obs, estimate=estimate, ci_low=low, ci_high=high)

    alpha = 1.0 - confidence
    level = np.full(d.shape[1], np.nan)
    method = np.full(d.shape[1], "not computed", dtype=object)
    # exact: R reports the level achieved, 1 - 2 P(V <= q - 1) to two significant digits,
    # when it falls short of the level asked by more than half of alpha (tiny n)
    achieved = np.zeros(d.shape[1])
    for n in np.unique(n_obs[exact]):
        same = exact & (n_obs == n)
        achieved[same] = 2.0 * _signed_rank_cdf(int(n))[q_low[same] - 1]
    short = exact & (achieved - alpha > alpha / 2.0)
    level[exact] = confidence
    level[short] = [1.0 - float(f"{a:.2g}") for a in achieved[short]]
    method[exact] = "exact"
    low, high = np.where(exact, low, np.nan), np.where(exact, high, np.nan)
    normal = np.flatnonzero(~exact & (n_nonzero > 0))
    if normal.size:
        found = _normal_interval(nonzero[:, normal], confidence, correct, max_elements)
        low[normal], high[normal], level[normal] = found
        method[normal[np.isfinite(found[2])]] = ("normal approximation" + (
            " with continuity correction" if correct else ""))
    return _frame(columns, n=n_obs, n_nonzero=n_nonzero, estimate=estimate, ci_low=low,
                  ci_high=high, conf_level=level, ci_method=method)


def _signed_rank_z(x: np.ndarray, shift: np.ndarray, correct: bool) -> np.ndarray:
    """R's ``W(d)`` of every column: the standardised signed-rank statistic of ``x - shift``
    (zeros and NaN dropped; tie-corrected variance; NaN without a non-zero value)."""
    xd = x - shift
    xd = np.where(xd == 0, np.nan, xd)
    nx = (~np.isnan(xd)).sum(axis=0)
    ranks, ties = average_ranks(np.abs(xd))
    z = np.where(xd > 0, ranks, 0.0).sum(axis=0) - nx * (nx + 1) / 4.0
    # sum over tie groups of t^3 - t = sum over values of t^2 - 1
    tie_terms = np.where(ties > 0, ties.astype(float) ** 2 - 1.0, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        sigma = np.sqrt(nx * (nx + 1) * (2 * nx + 1) / 24.0 - tie_terms / 48.0)
        correction = np.sign(z) * 0.5 if correct else 0.0
        return np.where((nx > 0) & (sigma > 0), (z - correction) / sigma, np.nan)


def _normal_interval(x: np.ndarray, confidence: float, correct: bool, max_elements: int):
    """``(low, high, conf_level)`` of R's normal-approximation interval, per column of the
    non-zero differences ``x`` (NaN elsewhere); NaN where ``W`` is undefined at the
    extremes. Columns are taken in chunks of at most ``max_elements`` Walsh averages."""
    from scipy import stats

    low, high, level = (np.full(x.shape[1], np.nan) for _ in range(3))
    n = (~np.isnan(x)).sum(axis=0)
    per_column = max(int(n.max()) * (int(n.max()) + 1) // 2, 1)
    step = max(1, max_elements // per_column)
    for start in range(0, x.shape[1], step):
        cols = slice(start, start + step)
        part = x[:, cols]
        alpha = np.full(part.shape[1], 1.0 - confidence)
        w_min = _signed_rank_z(part, np.nanmin(part, axis=0), correct)
        w_max = _signed_rank_z(part, np.nanmax(part, axis=0), correct)
        usable = np.isfinite(w_min) & np.isfinite(w_max)
        while True:  # widen as R does until W spans the quantiles (or alpha reaches 1)
            short = usable & (alpha < 1) & ((w_min - stats.norm.isf(alpha / 2.0) < 0)
                                            | (w_max - stats.norm.ppf(alpha / 2.0) > 0))
            if not short.any():
                break
            alpha = np.where(short, alpha * 2.0, alpha)
        # the level after widening, to 12 decimals by Python's round (np.round can differ in
        # the last bit)
        widened = usable & ((alpha >= 1) | (1 - confidence < alpha * 0.75))
        part_level = np.where(usable, confidence, np.nan)
        part_level[widened] = [round(1.0 - min(1.0, a), 12) for a in alpha[widened]]
        level[cols] = part_level
        points = _unique_sorted(walsh_averages(part))
        reach = alpha < 1
        lo = np.where(reach, _crossing(part, points, stats.norm.isf(alpha / 2.0), correct), np.nan)
        hi = np.where(reach, _crossing(part, points, stats.norm.ppf(alpha / 2.0), correct), np.nan)
        if (~reach & usable).any():
            median = np.nanmedian(part, axis=0)
            lo, hi = np.where(reach, lo, median), np.where(reach, hi, median)
        low[cols], high[cols] = np.where(usable, lo, np.nan), np.where(usable, hi, np.nan)
    return low, high, level


def _unique_sorted(walsh: np.ndarray) -> np.ndarray:
    """Each column's distinct values, ascending, NaN after them."""
    repeated = np.zeros(walsh.shape, dtype=bool)
    repeated[1:] = walsh[1:] == walsh[:-1]
    return np.sort(np.where(repeated, np.nan, walsh), axis=0)


def _crossing(x: np.ndarray, points: np.ndarray, zq: np.ndarray, correct: bool) -> np.ndarray:
    """Per column, the smallest distinct Walsh average right of which ``W <= zq``.

    ``W`` is a non-increasing step function of the shift with jumps at the Walsh
    averages only; it is evaluated between neighbouring points (beyond the last, one
    unit right of it), and every column's bisection takes its steps together.
    """
    count = (~np.isnan(points)).sum(axis=0)
    columns = np.arange(points.shape[1])

    def right_of(k):
        here = points[k, columns]
        after = np.where(k + 1 < count, points[np.minimum(k + 1, points.shape[0] - 1), columns],
                         here + 1.0)
        return _signed_rank_z(x, 0.5 * (here + after), correct)

    lo = np.zeros(points.shape[1], dtype=np.int64)
    hi = np.maximum(count - 1, 0)
    at_first = right_of(lo) <= zq
    while True:
        active = ~at_first & (hi - lo > 1)
        if not active.any():
            break
        mid = (lo + hi) // 2
        above = right_of(mid) > zq
        lo = np.where(active & above, mid, lo)
        hi = np.where(active & ~above, mid, hi)
    return np.where(at_first, points[0], points[hi, columns])
