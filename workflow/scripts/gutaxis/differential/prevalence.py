r"""Presence/absence tests per feature, beside the abundance tests.

An abundance test on a log-ratio scale cannot see a taxon that drops below
detection: the pairs where it is absent carry no abundance. These exact tests
ask instead whether the *probability of detecting* the feature changes, as
MaAsLin 3 reports prevalence beside abundance (Nickols et al. 2024). Every
function works on all features at once:

* :func:`paired_presence_test` - pre vs post in the same subjects: exact
  McNemar test on the discordant pairs (:func:`mcnemar_exact`), effect = the
  conditional log odds ratio :math:`\log(n_\text{gained}/n_\text{lost})`;
* :func:`fisher_presence_test` - two independent groups (responders vs
  non-responders at baseline): Fisher's exact test, effect = log odds ratio;
* :func:`discordant_interaction_test` - time x response: does the presence
  change differ between two groups of subjects? Fisher's exact test on the
  discordant pairs, effect = log ratio of the two conditional odds ratios;
* :func:`presence_call` - direction labels from effect and q.

Helpers :func:`presence_matrix` (abundance -> present/absent/NaN) and
:func:`discordant_pairs` (pre/post presence -> lost/gained indicators) prepare
the inputs; :func:`fisher_exact_p` and :func:`fisher_conditional_ci` are the
vectorised 2 x 2 kernels (p equal to R ``fisher.test()$p.value``, interval
equal to R ``fisher.test()$conf.int``).

Terms of the differential engine
--------------------------------
=========================================  ================================
term                                       function
=========================================  ================================
``timepoint[post]`` (paired)               :func:`paired_presence_test`
``response[responder]`` (at ``pre``)       :func:`fisher_presence_test`
``timepoint[post]:response[responder]``    :func:`discordant_interaction_test`
=========================================  ================================

Each returns one row per feature with ``effect, ci_low, ci_high, p``; q values
(BH within the family) and :func:`presence_call` are left to the caller.

Conventions shared by all tests
-------------------------------
* Inputs are ``(n_pairs or n_subjects, n_features)`` arrays (or DataFrames,
  whose columns become the feature index of the result) holding 1/True
  (present), 0/False (absent) or NaN (unusable for that feature only).
* Effects are natural-log odds ratios, positive = more presence (gained after,
  or more prevalent in the group). In a table with a zero cell, 0.5 is added
  to every cell (Haldane-Anscombe) so the effect is finite; a table without
  information (no discordant pair, or a zero row/column total) has effect 0
  and p = 1.
* Confidence intervals are exact (they invert the exact conditional
  distribution, as R does) and reported on the log scale; a bound the data
  cannot limit (a zero cell) is ``-inf`` or ``+inf``, never NaN.
* A feature with no usable observation (no usable pair, or an empty group)
  gets NaN effect, interval and p: it is untestable and should be reported as
  such, not as p = 1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special, stats

#: the differential engine's method names of these tests (rows whose effect is a log odds
#: ratio of detection, not an abundance change)
PRESENCE_METHODS = ("presence_mcnemar", "presence_interaction", "presence_fisher")

#: R's relative tolerance for "as or less likely than the observed table"
#: in two-sided exact tests (``relErr <- 1 + 10^(-7)`` in ``fisher.test``).
R_REL_ERR = 1.0 + 1e-7
#: added to every cell of a 2 x 2 table that has a zero cell (Haldane-Anscombe)
HALDANE = 0.5
#: most Newton/bisection steps on the log odds ratio for the exact conditional interval
_CI_MAX_STEPS = 200
#: relative step size at which a bound of the exact conditional interval has converged
_CI_XTOL = 1e-13
#: largest |log odds ratio| searched for an exact interval bound
_CI_LOG_RANGE = 200.0
#: table cells held at once by the vectorised kernels (memory bound)
_MAX_CELLS = 4_000_000

TIME_LABELS = ("lost", "gained")
GROUP_LABELS = ("less_prevalent", "more_prevalent")
INTERACTION_LABELS = ("more_lost", "more_gained")


# --------------------------------------------------------------------------- inputs

def _as_presence(values, name: str):
    """``(array of 0/1/NaN floats, columns or None)``; rejects other values."""
    if isinstance(values, pd.Series):
        values = values.to_frame()
    if isinstance(values, pd.DataFrame):
        columns = values.columns
        arr = values.astype("float64").to_numpy(dtype=float, na_value=np.nan)
    else:
        columns = None
        try:
            arr = np.asarray(values, dtype=float)
        except TypeError:  # object array holding pd.NA / None as missing
            obj = np.asarray(values, dtype=object)
            arr = np.where(pd.isna(obj), np.nan, obj).astype(float)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (units x features), got shape {arr.shape}")
    bad = ~(np.isnan(arr) | (arr == 0) | (arr == 1))
    if bad.any():
        raise ValueError(f"{name} must hold only present (1/True), absent (0/False) or NaN; "
                         f"found {arr[bad][0]!r}")
    return arr, columns


def _same_shape(a, b, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape, "
                         f"got {a.shape} and {b.shape}")


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")


def _frame(columns, **arrays) -> pd.DataFrame:
    out = pd.DataFrame(arrays)
    if columns is not None:
        out.index = pd.Index(columns, name="feature_id")
    return out


def presence_matrix(values, detection: float = 0.0):
    """Present (1.0) / absent (0.0) / unusable (NaN) from abundances.

    Parameters
    ----------
    values : array_like or pandas.DataFrame
        Abundances on the original scale (counts or relative abundances); NaN
        marks a measurement that is missing.
    detection : float
        A value strictly above ``detection`` is present.

    Returns
    -------
    numpy.ndarray or pandas.DataFrame
        Same shape (and labels) as ``values``, float 0/1/NaN.
    """
    if isinstance(values, pd.DataFrame):
        arr = values.to_numpy(dtype=float, na_value=np.nan)
        out = np.where(np.isnan(arr), np.nan, (arr > detection).astype(float))
        return pd.DataFrame(out, index=values.index, columns=values.columns)
    arr = np.asarray(values, dtype=float)
    return np.where(np.isnan(arr), np.nan, (arr > detection).astype(float))


def discordant_pairs(pre_present, post_present):
    """Lost and gained indicators of each pair, NaN where the pair is unusable.

    ``lost = pre & ~post``, ``gained = ~pre & post``; a pair with NaN at either
    timepoint is NaN in both.

    Parameters
    ----------
    pre_present, post_present : array_like, shape (n_pairs, n_features)
        Presence (1/0/NaN) of each feature in the pre and post sample of each pair.

    Returns
    -------
    lost, gained : numpy.ndarray, shape (n_pairs, n_features)
    """
    pre, _ = _as_presence(pre_present, "pre_present")
    post, _ = _as_presence(post_present, "post_present")
    _same_shape(pre, post, "pre_present", "post_present")
    usable = ~(np.isnan(pre) | np.isnan(post))
    lost = np.where(usable, (pre == 1) & (post == 0), np.nan)
    gained = np.where(usable, (pre == 0) & (post == 1), np.nan)
    return lost, gained


# --------------------------------------------------------------------------- kernels

def mcnemar_exact(n_lost, n_gained):
    r"""Exact two-sided McNemar test on the discordant pairs, vectorised.

    Under no change each discordant pair is equally likely to be a loss or a
    gain, so with :math:`b` = lost and :math:`c` = gained,
    :math:`C \sim \mathrm{Binomial}(b + c, 1/2)` and

    .. math:: p = \min\{1,\ 2\, P(X \le \min(b, c))\},\quad X \sim \mathrm{Bin}(b+c, 1/2)

    which equals R ``binom.test(c, b + c)$p.value`` and
    ``exact2x2::mcnemar.exact``. ``p = 1`` when there is no discordant pair.

    Parameters
    ----------
    n_lost, n_gained : array_like of int
        Discordant-pair counts per feature (broadcast together).

    Returns
    -------
    numpy.ndarray of float

    References
    ----------
    McNemar, Q. (1947). Note on the sampling error of the difference between
    correlated proportions or percentages. Psychometrika 12, 153-157.
    Fay, M. P. (2010). Two-sided exact tests and matching confidence intervals
    for discrete data. R Journal 2(1), 53-58.
    """
    b = np.asarray(n_lost, dtype=float)
    c = np.asarray(n_gained, dtype=float)
    if np.any(b < 0) or np.any(c < 0) or np.any(b != np.round(b)) or np.any(c != np.round(c)):
        raise ValueError("n_lost and n_gained must be non-negative whole numbers")
    n = b + c
    return np.minimum(1.0, 2.0 * stats.binom.cdf(np.minimum(b, c), n, 0.5))


def _log_odds_ratio(a, b, c, d):
    r"""``log(a d / (b c))``; 0.5 added to all four cells where one is zero; 0
    where a row or column total is zero (no information)."""
    a, b, c, d = (np.asarray(x, dtype=float) for x in (a, b, c, d))
    h = np.where((a == 0) | (b == 0) | (c == 0) | (d == 0), HALDANE, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log(a + h) + np.log(d + h) - np.log(b + h) - np.log(c + h)
    empty_margin = (a + b == 0) | (c + d == 0) | (a + c == 0) | (b + d == 0)
    return np.where(empty_margin, 0.0, out)


def _unique_tables(a, b, c, d):
    """Distinct tables (as int arrays) and the index of each input table in them."""
    cells = np.stack([np.asarray(x, dtype=float).ravel() for x in (a, b, c, d)], axis=1)
    if np.any(cells < 0) or np.any(cells != np.round(cells)):
        raise ValueError("table cells must be non-negative whole numbers")
    tables = cells.astype(np.int64)
    uniq, inverse = np.unique(tables, axis=0, return_inverse=True)
    return uniq, inverse.ravel()


def _null_log_weights(uniq):
    """Support offsets and central-hypergeometric log weights of each distinct table.

    For the table ``[[a, b], [c, d]]`` with row totals ``n1 = a + b``,
    ``n2 = c + d`` and first-column total ``m = a + c``, the cell ``a`` ranges
    over ``lo..hi`` = ``max(0, m - n2)..min(n1, m)`` with weight
    ``C(n1, k) C(n2, m - k)``. Returns ``(k, logw, valid, x)`` with ``k``
    (tables x K) the support values, ``valid`` masking padding, ``x`` = ``a``.
    """
    a, b, c, d = uniq.T
    n1, n2, m = a + b, c + d, a + c
    lo = np.maximum(0, m - n2)
    hi = np.minimum(n1, m)
    width = int((hi - lo).max()) + 1 if uniq.size else 1
    k = lo[:, None] + np.arange(width)[None, :]
    valid = k <= hi[:, None]
    ks = np.where(valid, k, lo[:, None])
    logw = (special.gammaln(n1[:, None] + 1) - special.gammaln(ks + 1) - special.gammaln(n1[:, None] - ks + 1)
            + special.gammaln(n2[:, None] + 1) - special.gammaln(m[:, None] - ks + 1)
            - special.gammaln(n2[:, None] - m[:, None] + ks + 1))
    logw = np.where(valid, logw, -np.inf)
    return k, logw, valid, a


def _chunks(uniq):
    """Slices of the distinct tables keeping each block under ``_MAX_CELLS`` cells."""
    if len(uniq) == 0:
        return
    a, b, c, d = uniq.T
    width = int((np.minimum(a + b, a + c) - np.maximum(0, a - d)).max()) + 1
    step = max(1, _MAX_CELLS // width)
    for start in range(0, len(uniq), step):
        yield slice(start, start + step)


def fisher_exact_p(a, b, c, d):
    r"""Two-sided Fisher exact p for many 2 x 2 tables ``[[a, b], [c, d]]``.

    Conditional on the margins, :math:`a` follows the hypergeometric law
    :math:`P(k) = \binom{n_1}{k}\binom{n_2}{m-k} / \binom{n}{m}`; the p value
    sums the tables no more likely than the observed one:

    .. math:: p = \sum_{k:\ P(k) \le P(a)(1 + 10^{-7})} P(k)

    exactly R's ``fisher.test()$p.value`` (its relative tolerance included)
    and ``scipy.stats.fisher_exact``. Computed once per distinct table, all
    distinct tables at once.

    Parameters
    ----------
    a, b, c, d : array_like of int
        Cells of each table (same shape).

    Returns
    -------
    numpy.ndarray of float, the shape of ``a``.

    References
    ----------
    Fisher, R. A. (1935). The logic of inductive inference. J. R. Stat. Soc.
    98, 39-82. Agresti, A. (2013). Categorical Data Analysis, 3rd ed., sec. 3.5.
    """
    shape = np.shape(a)
    uniq, inverse = _unique_tables(a, b, c, d)
    p_uniq = np.empty(len(uniq))
    for block in _chunks(uniq):
        k, logw, valid, x = _null_log_weights(uniq[block])
        logw = logw - logw.max(axis=1, keepdims=True)
        w = np.exp(logw)
        observed = np.take_along_axis(w, (x - k[:, 0])[:, None], axis=1)
        as_extreme = valid & (w <= observed * R_REL_ERR)
        p_uniq[block] = np.where(as_extreme, w, 0.0).sum(axis=1) / w.sum(axis=1)
    return np.minimum(1.0, p_uniq[inverse]).reshape(shape)


def _solve_tail(logw, offset, mask, target, theta, increasing):
    """Solve ``log P_theta(A in mask) = target`` for theta = log psi, row by row.

    ``logw`` are the central log weights of each row's support (-inf on
    padding), ``offset`` the support values minus the smallest, ``mask`` the
    tail. Newton steps (d/dtheta log P(tail) = E[A | tail] - E[A]) from
    ``theta``, kept inside a bisection bracket; rows leave once converged.
    """
    n = len(theta)
    lo = np.full(n, -_CI_LOG_RANGE)
    hi = np.full(n, _CI_LOG_RANGE)
    theta = np.clip(np.asarray(theta, dtype=float).copy(), -_CI_LOG_RANGE, _CI_LOG_RANGE)
    active = np.arange(n)
    for _ in range(_CI_MAX_STEPS):
        if active.size == 0:
            break
        t, off, m = theta[active], offset[active], mask[active]
        lw = logw[active] + t[:, None] * off
        w = np.exp(lw - lw.max(axis=1, keepdims=True))
        w_tail = np.where(m, w, 0.0)
        total, tail = w.sum(axis=1), w_tail.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.log(tail) - np.log(total) - target
            slope = (w_tail * off).sum(axis=1) / tail - (w * off).sum(axis=1) / total
            newton = t - f / slope
        # P(A >= a) grows with theta, P(A <= a) falls: move the bracket end past the root
        too_high = (f > 0) if increasing else (f < 0)
        hi[active] = np.where(too_high, t, hi[active])
        lo[active] = np.where(too_high, lo[active], t)
        # a Newton step below tolerance (or f == 0) ends the row; it may land on a bracket end
        done = (f == 0) | (np.abs(newton - t) <= _CI_XTOL * (1.0 + np.abs(t)))
        inside = np.isfinite(newton) & (newton > lo[active]) & (newton < hi[active])
        new = np.where(done | inside, newton, 0.5 * (lo[active] + hi[active]))
        theta[active] = np.where(f == 0, t, new)
        active = active[~done]
    return theta


def fisher_conditional_ci(a, b, c, d, confidence: float = 0.95):
    r"""Exact conditional confidence interval of the log odds ratio of 2 x 2 tables.

    Given the margins, :math:`a` follows Fisher's noncentral hypergeometric law
    :math:`P_\psi(k) \propto \binom{n_1}{k}\binom{n_2}{m-k}\psi^k`. The bounds
    solve the two one-sided equations

    .. math:: P_{\psi_L}(A \ge a) = \alpha/2,\qquad P_{\psi_U}(A \le a) = \alpha/2

    (Cornfield 1956), :math:`\alpha = 1 - \text{confidence}`, with
    :math:`\psi_L = 0` when :math:`a` is the smallest value its margins allow
    and :math:`\psi_U = \infty` when it is the largest. This is the interval of
    R ``fisher.test()$conf.int`` (R finds the roots with ``uniroot``'s default
    tolerance, about 1e-4; here Newton steps on :math:`\log\psi`, safeguarded by
    bisection, run to a relative step of 1e-13).
    Returned as :math:`(\log\psi_L, \log\psi_U)`, so ``-inf``/``+inf`` for an
    open side. Computed once per distinct table, all tables at once.

    Parameters
    ----------
    a, b, c, d : array_like of int
        Cells of each table (same shape).
    confidence : float

    Returns
    -------
    low, high : numpy.ndarray of float

    References
    ----------
    Cornfield, J. (1956). A statistical problem arising from retrospective
    studies. Proc. Third Berkeley Symp. 4, 135-148. Agresti, A. (2013).
    Categorical Data Analysis, 3rd ed., sec. 16.6.
    """
    _check_confidence(confidence)
    shape = np.shape(a)
    uniq, inverse = _unique_tables(a, b, c, d)
    log_half_alpha = np.log((1.0 - confidence) / 2.0)
    # starting points: Woolf's interval on the table with 0.5 added to every cell
    cells = uniq.astype(float) + 0.5
    centre = np.log(cells[:, 0] * cells[:, 3] / (cells[:, 1] * cells[:, 2]))
    half = special.ndtri(0.5 + confidence / 2.0) * np.sqrt((1.0 / cells).sum(axis=1))
    low_u = np.full(len(uniq), -np.inf)
    high_u = np.full(len(uniq), np.inf)
    for block in _chunks(uniq):
        k, logw, valid, x = _null_log_weights(uniq[block])
        offset = (k - k[:, :1]).astype(float)
        rows = np.arange(block.start, block.start + len(x))
        # psi_L = 0 when a is the smallest value the margins allow, psi_U = inf when the largest
        has_low = np.flatnonzero(x > k[:, 0])
        has_high = np.flatnonzero(x < np.where(valid, k, -1).max(axis=1))
        low_u[rows[has_low]] = _solve_tail(logw[has_low], offset[has_low],
                                           (k >= x[:, None])[has_low], log_half_alpha,
                                           (centre - half)[rows[has_low]], increasing=True)
        high_u[rows[has_high]] = _solve_tail(logw[has_high], offset[has_high],
                                             (k <= x[:, None])[has_high], log_half_alpha,
                                             (centre + half)[rows[has_high]], increasing=False)
    return low_u[inverse].reshape(shape), high_u[inverse].reshape(shape)


# --------------------------------------------------------------------------- tests

def paired_presence_test(pre_present, post_present, confidence: float = 0.95) -> pd.DataFrame:
    r"""Did each feature's presence change between the two samples of a pair?

    With :math:`b` pairs that lost the feature (present pre, absent post) and
    :math:`c` that gained it, the concordant pairs carry no information about
    the change, and the exact McNemar test (:func:`mcnemar_exact`) asks whether
    :math:`c \sim \mathrm{Bin}(b + c, 1/2)`. The effect is the conditional
    (within-subject) log odds ratio of presence post vs pre, the maximum
    likelihood estimate of the conditional-logistic time effect for 1:1
    matched binary data:

    .. math:: \hat\beta = \log\frac{c + h}{b + h},\qquad
       h = 0.5 \text{ if } b = 0 \text{ or } c = 0, \text{ else } 0

    (the 0.5 correction keeps it finite; with no discordant pair it is 0).
    The interval is the exact Clopper-Pearson interval
    :math:`(\pi_L, \pi_U)` for :math:`\pi = c/(b+c)` (R ``binom.test``),
    mapped to :math:`\log\{\pi/(1-\pi)\}`; :math:`\pi_L = 0` (when ``c = 0``)
    gives ``-inf`` and :math:`\pi_U = 1` (when ``b = 0``) gives ``+inf``.
    The interval excludes 0 exactly when ``p < 1 - confidence`` (the
    binomial at 1/2 is symmetric, so the two-sided p is twice the smaller
    one-sided tail, which is what Clopper-Pearson inverts).

    Parameters
    ----------
    pre_present, post_present : array_like or pandas.DataFrame, shape (n_pairs, n_features)
        Presence (1/True, 0/False) of each feature in the pre and post sample
        of each pair (rows aligned by subject); NaN in either makes that pair
        unusable for that feature only.
    confidence : float
        Level of the interval.

    Returns
    -------
    pandas.DataFrame
        One row per feature (indexed by feature id for DataFrame input):
        ``n_pairs`` (usable), ``n_present_pre``, ``n_present_post``,
        ``prevalence_pre``, ``prevalence_post``, ``n_lost``, ``n_gained``,
        ``effect`` (log odds ratio, negative = lost), ``ci_low``, ``ci_high``,
        ``p``. Features without a usable pair have NaN effect, interval and p.

    References
    ----------
    McNemar, Q. (1947). Psychometrika 12, 153-157. Clopper, C. J. & Pearson,
    E. S. (1934). The use of confidence or fiducial limits illustrated in the
    case of the binomial. Biometrika 26, 404-413. Breslow, N. E. & Day, N. E.
    (1980). Statistical Methods in Cancer Research I, sec. 5.2 (matched pairs).
    """
    _check_confidence(confidence)
    pre, columns = _as_presence(pre_present, "pre_present")
    post, _ = _as_presence(post_present, "post_present")
    _same_shape(pre, post, "pre_present", "post_present")
    usable = ~(np.isnan(pre) | np.isnan(post))
    n_pairs = usable.sum(axis=0)
    pre_1 = usable & (pre == 1)
    post_1 = usable & (post == 1)
    n_pre = pre_1.sum(axis=0)
    n_post = post_1.sum(axis=0)
    n_lost = (pre_1 & ~post_1).sum(axis=0)
    n_gained = (~pre_1 & post_1 & usable).sum(axis=0)

    h = np.where((n_lost == 0) | (n_gained == 0), HALDANE, 0.0)
    effect = np.log(n_gained + h) - np.log(n_lost + h)
    alpha = (1.0 - confidence) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        pi_low = np.where(n_gained == 0, 0.0, special.betaincinv(n_gained, n_lost + 1, alpha))
        pi_high = np.where(n_lost == 0, 1.0, special.betaincinv(n_gained + 1, n_lost, 1.0 - alpha))
        ci_low, ci_high = special.logit(pi_low), special.logit(pi_high)
        prev_pre = n_pre / n_pairs
        prev_post = n_post / n_pairs
    p = mcnemar_exact(n_lost, n_gained)
    none = n_pairs == 0
    nan = np.nan
    return _frame(columns, n_pairs=n_pairs, n_present_pre=n_pre, n_present_post=n_post,
                  prevalence_pre=prev_pre, prevalence_post=prev_post,
                  n_lost=n_lost, n_gained=n_gained,
                  effect=np.where(none, nan, effect),
                  ci_low=np.where(none, nan, ci_low), ci_high=np.where(none, nan, ci_high),
                  p=np.where(none, nan, p))


def _exact_2x2(a, b, c, d, confidence, untestable):
    """effect, ci_low, ci_high, p of tables ``[[a, b], [c, d]]``; NaN where untestable."""
    effect = _log_odds_ratio(a, b, c, d)
    low, high = fisher_conditional_ci(a, b, c, d, confidence)
    p = fisher_exact_p(a, b, c, d)
    nan = np.nan
    return (np.where(untestable, nan, effect), np.where(untestable, nan, low),
            np.where(untestable, nan, high), np.where(untestable, nan, p))


def fisher_presence_test(group_present, reference_present, confidence: float = 0.95) -> pd.DataFrame:
    r"""Is each feature more often present in one group of subjects than another?

    For independent subjects (e.g. responders vs non-responders at baseline),
    per feature the table

    .. math:: \begin{pmatrix} x_g & n_g - x_g \\ x_r & n_r - x_r \end{pmatrix}

    (present, absent; group, reference) is tested with the two-sided Fisher
    exact test (:func:`fisher_exact_p`, equal to R ``fisher.test()$p.value``).
    The effect is the log odds ratio of presence, group vs reference,

    .. math:: \log\frac{(x_g+h)(n_r-x_r+h)}{(n_g-x_g+h)(x_r+h)},

    with the Haldane-Anscombe correction ``h = 0.5`` only when a cell is zero,
    and 0 when the feature is present in all or in none of the subjects (no
    information; p = 1). The interval is the exact conditional one of
    :func:`fisher_conditional_ci` (the interval R ``fisher.test`` reports),
    ``-inf``/``+inf`` on a side the data cannot bound. Tables shared by many
    features are computed once.

    Parameters
    ----------
    group_present : array_like or pandas.DataFrame, shape (n_group, n_features)
    reference_present : array_like or pandas.DataFrame, shape (n_reference, n_features)
        Presence (1/0/NaN) of each feature in each subject; NaN leaves that
        subject out for that feature.
    confidence : float

    Returns
    -------
    pandas.DataFrame
        One row per feature: ``n_group``, ``n_reference`` (usable subjects),
        ``n_present_group``, ``n_present_reference``, ``prevalence_group``,
        ``prevalence_reference``, ``effect`` (positive = more prevalent in the
        group), ``ci_low``, ``ci_high``, ``p``. NaN effect, interval and p
        where either group has no usable subject.

    References
    ----------
    Fisher, R. A. (1935). J. R. Stat. Soc. 98, 39-82. Haldane, J. B. S. (1956).
    The estimation and significance of the logarithm of a ratio of
    frequencies. Ann. Hum. Genet. 20, 309-311. Agresti, A. (2013).
    Categorical Data Analysis, 3rd ed., secs. 3.5 and 16.6.
    """
    _check_confidence(confidence)
    group, columns = _as_presence(group_present, "group_present")
    ref, ref_columns = _as_presence(reference_present, "reference_present")
    if group.shape[1] != ref.shape[1]:
        raise ValueError(f"group_present and reference_present must have the same features, "
                         f"got {group.shape[1]} and {ref.shape[1]} columns")
    if columns is not None and ref_columns is not None and not columns.equals(ref_columns):
        raise ValueError("group_present and reference_present have different feature columns")
    columns = columns if columns is not None else ref_columns
    n_g = (~np.isnan(group)).sum(axis=0)
    n_r = (~np.isnan(ref)).sum(axis=0)
    x_g = (group == 1).sum(axis=0)
    x_r = (ref == 1).sum(axis=0)
    effect, low, high, p = _exact_2x2(x_g, n_g - x_g, x_r, n_r - x_r, confidence,
                                      untestable=(n_g == 0) | (n_r == 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        prev_g, prev_r = x_g / n_g, x_r / n_r
    return _frame(columns, n_group=n_g, n_reference=n_r, n_present_group=x_g,
                  n_present_reference=x_r, prevalence_group=prev_g, prevalence_reference=prev_r,
                  effect=effect, ci_low=low, ci_high=high, p=p)


def discordant_interaction_test(lost, gained, is_group, confidence: float = 0.95) -> pd.DataFrame:
    r"""Does the change in presence differ between two groups of subjects (time x response)?

    In a conditional logistic model for 1:1 matched binary data,
    :math:`\operatorname{logit} P(\text{present}_{it}) = \alpha_i + \beta\,t +
    \gamma\,t\,g_i`, the subject terms :math:`\alpha_i` are eliminated by
    conditioning on each pair's total, which leaves only the discordant pairs:
    a discordant pair of a subject in group :math:`g` is a gain with odds
    :math:`e^{\beta + \gamma g}`. The interaction :math:`\gamma` is therefore
    the log odds ratio of the table

    .. math:: \begin{pmatrix} c_g & b_g \\ c_r & b_r \end{pmatrix}

    (gained, lost; group, reference), i.e. the log ratio of the two
    conditional odds ratios :math:`\log(c_g/b_g) - \log(c_r/b_r)`, 0.5 added
    to every cell when one is zero and 0 when a row or column total is zero.
    It is tested exactly with Fisher's test (:func:`fisher_exact_p`) and the
    interval is the exact conditional one (:func:`fisher_conditional_ci`),
    as in :func:`fisher_presence_test`.

    Parameters
    ----------
    lost, gained : array_like or pandas.DataFrame, shape (n_pairs, n_features)
        1/0/NaN indicators (see :func:`discordant_pairs`); NaN in either
        leaves the pair out for that feature. A pair cannot be both.
    is_group : array_like of bool, length n_pairs
        True for the pairs of the group (e.g. responders), False for the
        reference group.
    confidence : float

    Returns
    -------
    pandas.DataFrame
        One row per feature: ``n_pairs_group``, ``n_pairs_reference``
        (usable pairs), ``n_lost_group``, ``n_gained_group``,
        ``n_lost_reference``, ``n_gained_reference``, ``effect`` (positive =
        the group shifts more towards presence than the reference),
        ``ci_low``, ``ci_high``, ``p``. NaN effect, interval and p where a
        group has no usable pair.

    References
    ----------
    Breslow, N. E. & Day, N. E. (1980). Statistical Methods in Cancer
    Research I, sec. 7.4 (matched pairs; interaction via discordant pairs).
    Agresti, A. (2013). Categorical Data Analysis, 3rd ed., sec. 11.2.
    """
    _check_confidence(confidence)
    lost_a, columns = _as_presence(lost, "lost")
    gained_a, gained_columns = _as_presence(gained, "gained")
    _same_shape(lost_a, gained_a, "lost", "gained")
    columns = columns if columns is not None else gained_columns
    group = np.asarray(is_group)
    if group.ndim != 1 or group.size != lost_a.shape[0]:
        raise ValueError(f"is_group must have one entry per pair ({lost_a.shape[0]}), "
                         f"got shape {group.shape}")
    if group.dtype != bool:
        if not np.isin(group, (0, 1)).all():
            raise ValueError("is_group must be boolean (True = group, False = reference)")
        group = group.astype(bool)
    if np.any((lost_a == 1) & (gained_a == 1)):
        raise ValueError("a pair cannot be both lost and gained for one feature")
    usable = ~(np.isnan(lost_a) | np.isnan(gained_a))
    g, r = usable & group[:, None], usable & ~group[:, None]
    n_g, n_r = g.sum(axis=0), r.sum(axis=0)
    b_g = (g & (lost_a == 1)).sum(axis=0)
    c_g = (g & (gained_a == 1)).sum(axis=0)
    b_r = (r & (lost_a == 1)).sum(axis=0)
    c_r = (r & (gained_a == 1)).sum(axis=0)
    effect, low, high, p = _exact_2x2(c_g, b_g, c_r, b_r, confidence,
                                      untestable=(n_g == 0) | (n_r == 0))
    return _frame(columns, n_pairs_group=n_g, n_pairs_reference=n_r,
                  n_lost_group=b_g, n_gained_group=c_g,
                  n_lost_reference=b_r, n_gained_reference=c_r,
                  effect=effect, ci_low=low, ci_high=high, p=p)


def presence_call(effect, q, alpha: float, kind: str = "time") -> np.ndarray:
    """Direction label of each presence test: called when ``q < alpha``.

    ============== ================= ================= =======
    kind           effect < 0        effect > 0        else
    ============== ================= ================= =======
    ``time``       ``lost``          ``gained``        ``none``
    ``group``      ``less_prevalent`` ``more_prevalent`` ``none``
    ``interaction`` ``more_lost``     ``more_gained``   ``none``
    ============== ================= ================= =======

    ``interaction`` labels the group relative to the reference (see
    :func:`discordant_interaction_test`). NaN q or effect gives ``none``.

    Parameters
    ----------
    effect, q : array_like of float
    alpha : float
        q threshold.
    kind : {"time", "group", "interaction"}

    Returns
    -------
    numpy.ndarray of str
    """
    labels = {"time": TIME_LABELS, "group": GROUP_LABELS, "interaction": INTERACTION_LABELS}
    if kind not in labels:
        raise ValueError(f"kind must be one of {sorted(labels)}, got {kind!r}")
    down, up = labels[kind]
    effect = np.asarray(effect, dtype=float)
    q = np.asarray(q, dtype=float)
    with np.errstate(invalid="ignore"):
        called = q < alpha
        return np.where(called & (effect < 0), down, np.where(called & (effect > 0), up, "none"))
