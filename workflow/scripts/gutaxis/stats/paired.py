"""Paired pre/post tests on within-subject differences, vectorised across features.

Samples are paired by subject (:func:`pair_samples`), differences ``post - pre``
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

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import special

from gutaxis.io.errors import ProblemCollector


@dataclass(frozen=True)
class PairedDesign:
    """Subjects with a sample at both timepoints, and the samples left over.

    Attributes
    ----------
    pairs : pandas.DataFrame
        Columns ``subject_id, pre_sample, post_sample``, one row per subject,
        sorted by subject.
    unpaired : pandas.DataFrame
        Columns ``sample_id, subject_id, timepoint, reason``: samples at the two
        timepoints whose partner is missing.
    """

    pairs: pd.DataFrame
    unpaired: pd.DataFrame


def pair_samples(samples: pd.DataFrame, pre: str, post: str, sample_ids=None,
                 file: str = "samples.tsv") -> PairedDesign:
    """Pair each subject's ``pre`` and ``post`` samples.

    Parameters
    ----------
    samples : pandas.DataFrame
        Sample sheet with columns ``sample_id, subject_id, timepoint``.
    pre, post : str
        Timepoint labels (e.g. ``"baseline"``, ``"post"``).
    sample_ids : iterable of str, optional
        Restrict to these samples (those present in the feature table).
    file : str
        Name used in error messages.

    Returns
    -------
    PairedDesign

    Raises
    ------
    gutaxis.io.errors.InputError
        Missing columns, or a subject with two samples at one timepoint.
    """
    problems = ProblemCollector()
    missing = [c for c in ("sample_id", "subject_id", "timepoint") if c not in samples.columns]
    if missing:
        problems.add(file, f"columns {missing}", "required column(s) missing",
                     "add sample_id, subject_id and timepoint columns")
        problems.raise_if_any()
    sheet = samples[["sample_id", "subject_id", "timepoint"]].copy()
    sheet["sample_id"] = sheet["sample_id"].astype(str)
    if sample_ids is not None:
        sheet = sheet[sheet["sample_id"].isin(set(map(str, sample_ids)))]
    sheet = sheet[sheet["timepoint"].isin([pre, post]) & sheet["subject_id"].notna()
                  & (sheet["subject_id"].astype(str) != "")]
    dup = sheet[sheet.duplicated(["subject_id", "timepoint"], keep=False)]
    groups = dup.groupby(["subject_id", "timepoint"], sort=True, observed=True)
    for (subject, timepoint), rows in groups:
        problems.add(file, f"subject {subject}, timepoint {timepoint}",
                     f"{len(rows)} samples ({', '.join(rows['sample_id'])}) for one subject "
                     "at one timepoint", "keep one sample per subject and timepoint (or give "
                     "replicates their own timepoint label)")
    problems.raise_if_any()
    wide = sheet.pivot(index="subject_id", columns="timepoint", values="sample_id")
    wide = wide.reindex(columns=[pre, post]).sort_index()
    complete = wide.notna().all(axis=1)
    pairs = pd.DataFrame({"subject_id": wide.index[complete],
                          "pre_sample": wide.loc[complete, pre].to_numpy(),
                          "post_sample": wide.loc[complete, post].to_numpy()})
    left = sheet[~sheet["subject_id"].isin(pairs["subject_id"])].copy()
    left["reason"] = np.where(left["timepoint"] == pre,
                              f"no '{post}' sample for this subject",
                              f"no '{pre}' sample for this subject")
    left = left.sort_values(["subject_id", "timepoint", "sample_id"]).reset_index(drop=True)
    return PairedDesign(pairs.reset_index(drop=True), left)


def paired_differences(values: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Within-subject differences ``post - pre`` for every feature.

    Parameters
    ----------
    values : pandas.DataFrame
        Samples x features on the scale to be tested (e.g. CLR).
    pairs : pandas.DataFrame
        ``PairedDesign.pairs``.

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


def _signed_rank_ci_ranks(n: int, confidence: float) -> tuple[int, int]:
    """1-based order statistics of the Walsh averages bounding Tukey's CI.

    ``qu`` is the lower alpha/2 quantile of the signed-rank null distribution
    (R's ``qsignrank``; exact for n <= 50, normal approximation with
    continuity correction above); the CI is ``(W_(qu), W_(M - qu + 1))``.
    """
    m = n * (n + 1) // 2
    alpha = 1.0 - confidence
    if n <= 50:
        cdf = np.cumsum(signed_rank_counts(n)) / float(2 ** n)
        qu = int(np.searchsorted(cdf, alpha / 2 * (1 - 1e-12), side="left"))
    else:
        sigma = np.sqrt(n * (n + 1) * (2 * n + 1) / 24.0)
        qu = int(np.ceil(m / 2.0 - 0.5 + special.ndtri(alpha / 2) * sigma))
    qu = max(qu, 1)
    return qu, m - qu + 1


def hodges_lehmann(diff, confidence: float = 0.95,
                   max_elements: int = 4_000_000) -> pd.DataFrame:
    r"""One-sample Hodges-Lehmann estimate and Tukey's CI for every feature.

    .. math:: \hat\Delta = \operatorname{median}\{(d_i + d_j)/2 : i \le j\}

    The confidence interval is bounded by the ``q``-th smallest and largest of
    the :math:`M = n(n+1)/2` Walsh averages, ``q`` the lower alpha/2 quantile
    of the signed-rank distribution (as R's ``wilcox.test(conf.int=TRUE)``
    with exact = TRUE); coverage is exact for continuous data without ties.

    The four order statistics (the two middle ones, averaged when :math:`M` is
    even, and the two bounds) are selected without writing the Walsh averages
    down: :func:`gutaxis.stats.rank_shift.walsh_order_statistics` searches the
    sorted matrix :math:`(d_{(i)} + d_{(j)})/2` in :math:`O(n \log n)` per
    feature (Monahan 1984) and returns the very floats a full sort gives;
    features with at most 2,000 Walsh averages are sorted directly.

    Parameters
    ----------
    diff : array_like or pandas.DataFrame, shape (n_pairs, n_features)
        Differences; NaN drops the pair for that feature.
    confidence : float
    max_elements : int
        Walsh averages held in memory at once on the direct route (features
        are chunked).

    Returns
    -------
    pandas.DataFrame
        One row per feature: ``n, estimate, ci_low, ci_high``.

    References
    ----------
    Hodges, J. L. & Lehmann, E. L. (1963). Estimates of location based on rank
    tests. Ann. Math. Statist. 34, 598-611. Hollander, M., Wolfe, D. A. &
    Chicken, E. (2014). Nonparametric Statistical Methods, 3rd ed., sec. 3.2.
    Monahan, J. F. (1984). Algorithm 616: fast computation of the
    Hodges-Lehmann location estimator. ACM Trans. Math. Softw. 10, 265-270.
    """
    from gutaxis.stats.rank_shift import walsh_order_statistics

    d, columns = _as_2d(diff)
    n_obs = (~np.isnan(d)).sum(axis=0)
    m = n_obs * (n_obs + 1) // 2
    q_low = np.ones(d.shape[1], dtype=np.int64)
    q_high = np.maximum(m, 1)
    for n in np.unique(n_obs[n_obs > 0]):
        q_low[n_obs == n], q_high[n_obs == n] = _signed_rank_ci_ranks(int(n), confidence)
    ranks = np.stack([(m - 1) // 2, m // 2, q_low - 1, q_high - 1])
    ranks = np.where(n_obs > 0, ranks, 0)
    mid_low, mid_high, low, high = walsh_order_statistics(d, ranks, max_elements=max_elements)
    return _frame(columns, n=n_obs, estimate=0.5 * (mid_low + mid_high), ci_low=low,
                  ci_high=high)
