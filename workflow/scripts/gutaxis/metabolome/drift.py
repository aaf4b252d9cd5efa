"""QC-based signal-drift correction (QC-RLSC) and honest QC precision measures.

Pure functions on samples x features tables (rows = injections):

* :func:`qc_rlsc` - per feature and batch, a LOESS of the pooled-QC values on injection
  order, span chosen by leave-one-QC-out cross-validation; the fitted drift is removed
  from every injection of the batch and the batches are aligned on the feature's QC
  median (Dunn et al. 2011).
* :func:`loqo_qc_rsd` - QC RSD where each QC injection is corrected by a model fitted
  without it (leave-one-QC-out): the honest precision of a correction.
* :func:`replicate_rsd` / :func:`replicate_rsd_table` - within-replicate-group RSD of
  re-injected biological samples.
* :func:`qc_pc_batch_r2` - share of the QC principal components explained by batch.

The smoother
------------
Local linear regression with tricube weights (Cleveland 1979; Cleveland & Devlin 1988).
Within one batch let t_1..t_n be the injection orders of its QC injections and t the
order at which the curve is evaluated.  With d_k(t) = |t_k - t|, q = floor(span * n)
and h(t) the q-th smallest d_k(t) (R ``loess`` convention; the q-th neighbour gets
weight 0; for span > 1, h(t) = span * max_k d_k(t) and every QC has a positive weight),

    w_k(t) = (1 - (d_k(t) / h(t))^3)^3  for d_k(t) < h(t), else 0.

The weights depend only on injection orders, so they are shared by every feature of the
batch.  A feature's missing QC value has indicator m_k = 0 and drops out of the sums

    S_r(t) = sum_k w_k(t) m_k (t_k - t)^r  (r = 0, 1, 2),
    T_r(t) = sum_k w_k(t) m_k (t_k - t)^r y_k  (r = 0, 1),

and the local linear fit at t is the intercept

    f(t) = (S_2 T_0 - S_1 T_1) / (S_0 S_2 - S_1^2),

computed for all features at once as matrix products (weights x masked values).  The
fit is *defined* when at least two observed QC values have positive weight (QC injection
orders must be distinct within a batch, so then S_0 S_2 - S_1^2 > 0); otherwise it is NaN
(*singular*).  A span is *feasible* for a feature in a batch when every leave-one-out
prediction at its observed QCs and the curve at every injection of the batch are
defined.  Neighbourhoods are defined by the batch's
QC injection positions, not per feature: a missing QC value, like a left-out one,
only loses its weight (the bandwidth does not widen to replace it).

Leave-one-QC-out (LOO) prediction of QC k is f(t_k) with m_k set to 0 - exactly the fit
that the same rule gives after deleting the value y_k.  Injections before the batch's
first or after its last QC get the fit at that first / last QC (``extrapolate="clamp"``,
default) or the local linear fit extended (``"linear"``).

References
----------
Dunn W.B. et al. (2011) Procedures for large-scale metabolic profiling of serum and
plasma using gas chromatography and liquid chromatography coupled to mass spectrometry.
Nat Protoc 6:1060-1083.
Cleveland W.S. (1979) Robust locally weighted regression and smoothing scatterplots.
J Am Stat Assoc 74:829-836.
Broadhurst D. et al. (2018) Metabolomics 14:72.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gutaxis.metabolome.filters import column_rsd
from gutaxis.metabolome.normalise import column_medians
from gutaxis.metabolome.qc import _autoscaled, _top_components

DEFAULT_SPANS = (0.25, 0.35, 0.5, 0.65, 0.8, 1.0)
FIT_COLUMNS = ["feature_id", "batch", "n_qc", "span", "status", "note", "loo_mse"]
SPAN_SCOPES = ("feature", "feature_batch")


@dataclass
class DriftCorrection:
    """Result of :func:`qc_rlsc`.

    Attributes
    ----------
    table : pandas.DataFrame
        Corrected log-scale values, same shape, index and columns as the input; NaN
        cells stay NaN.
    fits : pandas.DataFrame
        One row per feature and batch: feature_id, batch, n_qc (observed QC values in
        the batch), span (chosen; ``inf`` = the no-drift batch median won the
        cross-validation; NaN when kept), status (``corrected`` / ``kept``),
        note (why kept), loo_mse (mean squared leave-one-QC-out error at the chosen
        span, log scale).
    """

    table: pd.DataFrame
    fits: pd.DataFrame


# --- validation -------------------------------------------------------------------------


def _per_row(values, index: pd.Index, name: str) -> np.ndarray:
    if isinstance(values, pd.Series):
        if not values.index.equals(index):
            missing = index.difference(values.index)
            if len(missing):
                raise ValueError(f"{name} lacks rows {list(missing[:5])}")
            values = values.reindex(index)
        values = values.to_numpy()
    values = np.asarray(values)
    if values.shape != (len(index),):
        raise ValueError(f"{name} must have one entry per row of the table")
    return values


def _inputs(log_intensities, injection_order, batches, qc_mask):
    if not isinstance(log_intensities, pd.DataFrame):
        raise TypeError("log_intensities must be a pandas DataFrame (injections x features)")
    y = log_intensities.to_numpy(dtype=float)
    if np.isinf(y).any():
        raise ValueError("log_intensities has infinite values (log of 0?): use NaN for missing")
    index = log_intensities.index
    t = _per_row(injection_order, index, "injection_order").astype(float)
    if not np.isfinite(t).all():
        raise ValueError("injection_order must be finite for every row")
    b = _per_row(batches, index, "batches")
    if pd.isna(b).any():
        raise ValueError("batches must give a batch for every row")
    qc = _per_row(qc_mask, index, "qc_mask").astype(bool)
    duplicated = np.zeros(len(t), dtype=bool)
    duplicated[qc] = pd.DataFrame({"b": b[qc], "t": t[qc]}).duplicated(keep=False).to_numpy()
    if duplicated.any():
        raise ValueError(f"injection_order repeats among the QC injections of a batch (rows "
                         f"{list(index[duplicated][:5])}): each QC injection needs its own run position")
    return y, t, b, qc


def _spans(spans) -> np.ndarray:
    s = np.unique(np.asarray(spans, dtype=float))
    if s.size == 0 or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError("spans must be positive, finite numbers")
    return s


def _models(spans, median_candidate: bool) -> np.ndarray:
    """The candidate spans, plus inf (= the no-drift batch median) when asked; inf last."""
    grid = _spans(spans)
    return np.append(grid, np.inf) if median_candidate else grid


def _check_min_qc(min_qc) -> int:
    if int(min_qc) != min_qc or min_qc < 3:
        raise ValueError("min_qc must be an integer >= 3 (a leave-one-out local line needs 3 points)")
    return int(min_qc)


def _batch_labels(b: np.ndarray) -> list:
    return sorted(pd.unique(b), key=str)


# --- the smoother -----------------------------------------------------------------------


def tricube_weights(t_eval: np.ndarray, t_qc: np.ndarray, span: float) -> np.ndarray:
    """Tricube neighbourhood weights w_k(t) of QC positions ``t_qc`` at each ``t_eval``.

    Parameters
    ----------
    t_eval : numpy.ndarray
        Evaluation orders, shape (m,).
    t_qc : numpy.ndarray
        QC injection orders of one batch, shape (n,).
    span : float
        Fraction of the n QC positions in each neighbourhood (q = floor(span n), the
        q-th nearest gets weight 0); > 1 widens the bandwidth to span x the largest
        distance.

    Returns
    -------
    numpy.ndarray
        Shape (m, n); see the module docstring for the formula.
    """
    d = np.abs(np.asarray(t_eval, dtype=float)[:, None] - np.asarray(t_qc, dtype=float)[None, :])
    n = d.shape[1]
    if span <= 1:
        q = min(max(int(np.floor(span * n + 1e-9)), 1), n)
        h = np.partition(d, q - 1, axis=1)[:, q - 1]
    else:
        h = span * d.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = d / h[:, None]
        w = np.where(d < h[:, None], (1.0 - u**3) ** 3, 0.0)
    return w


def _moments(w: np.ndarray, centred: np.ndarray, m: np.ndarray, y0: np.ndarray) -> tuple:
    """S0, S1, S2, T0, T1 for every evaluation row and feature (matrix products)."""
    wd = w * centred
    wd2 = wd * centred
    return w @ m, wd @ m, wd2 @ m, w @ y0, wd @ y0


def _support(w: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Number of observed QC values with positive weight, per evaluation row and feature."""
    return (w > 0).astype(float) @ m


def _intercept(s0, s1, s2, t0, t1, support) -> np.ndarray:
    """Local linear intercept (S2 T0 - S1 T1) / (S0 S2 - S1^2); NaN where support < 2."""
    det = s0 * s2 - s1 * s1
    ok = (support >= 2) & (det > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, (s2 * t0 - s1 * t1) / np.where(ok, det, 1.0), np.nan)


def local_linear_fit(
    t_eval: np.ndarray, t_qc: np.ndarray, y_qc: np.ndarray, span: float, leave_out_diagonal: bool = False
) -> np.ndarray:
    """Local linear (LOESS degree 1) fit of QC values at ``t_eval``, all features at once.

    Parameters
    ----------
    t_eval : numpy.ndarray
        Shape (m,); the orders to evaluate at (no clamping here).
    t_qc : numpy.ndarray
        Shape (n,); QC injection orders of one batch.
    y_qc : numpy.ndarray
        Shape (n, p); QC values, NaN = missing (weight 0).
    span : float
        See :func:`tricube_weights`.
    leave_out_diagonal : bool
        With ``t_eval is t_qc``: zero w_k(t_k), giving the leave-one-QC-out predictions.

    Returns
    -------
    numpy.ndarray
        Shape (m, p); NaN where the local fit is singular.
    """
    t_eval = np.asarray(t_eval, dtype=float)
    t_qc = np.asarray(t_qc, dtype=float)
    w = tricube_weights(t_eval, t_qc, span)
    if leave_out_diagonal:
        np.fill_diagonal(w, 0.0)
    m = np.isfinite(y_qc).astype(float)
    y0 = np.where(m > 0, y_qc, 0.0)
    centred = t_qc[None, :] - t_eval[:, None]
    return _intercept(*_moments(w, centred, m, y0), _support(w, m))


def _evaluation_orders(t: np.ndarray, t_qc: np.ndarray, extrapolate: str) -> np.ndarray:
    if extrapolate == "clamp":
        return np.clip(t, t_qc.min(), t_qc.max())
    return t


# --- span selection ---------------------------------------------------------------------


@dataclass
class _BatchCV:
    rows: np.ndarray  # row indices of the batch (all injections)
    qc_rows: np.ndarray  # row indices of its QC injections
    t_qc: np.ndarray
    t_eval: np.ndarray  # evaluation order of every injection of the batch (clamped or not)
    y_qc: np.ndarray  # (n, p) with NaN
    n_obs: np.ndarray  # (p,)
    sse: np.ndarray  # (n_spans, p): LOO sum of squared errors, inf where the span is not feasible
    loo: np.ndarray  # (n_spans, n, p) LOO predictions
    defined: np.ndarray  # (n_spans, p): the curve is defined at every injection of the batch
    fragile: np.ndarray | None = None  # (n_spans, n, p): deleting QC k leaves some injection undefined


def _batch_cv(y, t, rows, qc_rows, spans, extrapolate: str, fragile: bool = False) -> _BatchCV:
    """Leave-one-QC-out errors of every span for one batch (all features at once)."""
    t_qc = t[qc_rows]
    y_qc = y[qc_rows]
    observed = np.isfinite(y_qc)
    m = observed.astype(float)
    n_spans, (n, p) = len(spans), y_qc.shape
    sse = np.full((n_spans, p), np.inf)
    loo = np.full((n_spans, n, p), np.nan)
    t_eval = _evaluation_orders(t[rows], t_qc, extrapolate) if n else t[rows]
    weak = np.zeros((n_spans, n, p), dtype=bool) if fragile else None
    defined = np.zeros((n_spans, p), dtype=bool)
    if n >= 2:
        for i, span in enumerate(spans):
            if np.isinf(span):  # the no-drift model: the batch's QC median
                pred = leave_one_out_median(y_qc)
                loo[i] = pred
                defined[i] = observed.any(axis=0)
                feasible = np.all(np.isfinite(pred) | ~observed, axis=0)
                sse[i] = np.where(feasible, np.sum(np.where(observed, y_qc - pred, 0.0) ** 2, axis=0), np.inf)
                continue
            pred = local_linear_fit(t_qc, t_qc, y_qc, span, leave_out_diagonal=True)
            loo[i] = pred
            reach = tricube_weights(t_eval, t_qc, span) > 0
            support = reach.astype(float) @ m  # observed QCs with weight, per injection and feature
            defined[i] = np.all(support >= 2, axis=0)
            feasible = np.all(np.isfinite(pred) | ~observed, axis=0) & defined[i]
            err = np.where(observed, y_qc - pred, 0.0)
            sse[i] = np.where(feasible, np.sum(err**2, axis=0), np.inf)
            if fragile:
                # an injection with support exactly 2 that includes QC k loses its fit without y_k
                weak[i] = ((reach.T.astype(float) @ (support == 2).astype(float)) > 0) & observed
    return _BatchCV(rows, qc_rows, t_qc, t_eval, y_qc, observed.sum(axis=0), sse, loo, defined, weak)


def _argmin_prefer_smooth(sse: np.ndarray) -> np.ndarray:
    """Index of the smallest SSE per column; ties go to the larger span (later row)."""
    flipped = sse[::-1]
    return sse.shape[0] - 1 - np.argmin(flipped, axis=0)


def _choose_spans(cvs: list[_BatchCV], min_qc: int, scope: str) -> tuple[list, list]:
    """Chosen span index per batch and feature (-1 = none) and the fittable masks."""
    fittable = [(cv.n_obs >= min_qc) & np.isfinite(cv.sse).any(axis=0) for cv in cvs]
    own = [np.where(ok, _argmin_prefer_smooth(cv.sse), -1) for cv, ok in zip(cvs, fittable)]
    if scope == "feature_batch" or not cvs:
        return own, fittable
    pooled = np.zeros_like(cvs[0].sse)
    for cv, ok in zip(cvs, fittable):
        pooled = pooled + np.where(ok[None, :], cv.sse, 0.0)
    best = _argmin_prefer_smooth(pooled)
    common = np.isfinite(pooled.min(axis=0))  # some span finite in every fittable batch
    chosen = [np.where(ok, np.where(common, best, o), -1) for o, ok in zip(own, fittable)]
    return chosen, fittable


# --- QC-RLSC ----------------------------------------------------------------------------


def qc_rlsc(
    log_intensities: pd.DataFrame,
    injection_order: pd.Series,
    batches: pd.Series,
    qc_mask,
    spans=DEFAULT_SPANS,
    min_qc: int = 5,
    *,
    span_scope: str = "feature",
    extrapolate: str = "clamp",
    median_candidate: bool = True,
) -> DriftCorrection:
    """QC robust LOESS signal correction (QC-RLSC) with leave-one-QC-out span choice.

    For feature j, batch b and injection i of batch b (log scale),

        y'_ij = y_ij - f_bj(t_i) + median_{k in QC} y_kj,

    where f_bj is the local linear LOESS of the batch's QC values on injection order
    (module docstring), so within-batch drift is removed and every batch is aligned on
    the feature's overall QC median.  The span minimises the leave-one-QC-out squared
    error sum_k (y_kj - f^{(-k)}_bj(t_k))^2 over ``spans`` (ties: the larger span).
    With ``median_candidate`` (default) the no-drift model f_bj = median of the batch's
    QC values competes too (span reported as ``inf``, preferred on ties): with a handful
    of QCs per batch a local line often predicts a left-out QC worse than the median of
    the others (MTBLS79: in all 8 batches), and then fitting one only adds noise.
    ``median_candidate=False`` is QC-RLSC as published.  The span is chosen:

    * ``span_scope="feature"`` (default): one span per feature, errors pooled over the
      batches it can be fitted in (with 4-8 QCs per batch a per-batch choice rests on a
      handful of errors); when no span is finite in all of them, each batch takes its own;
    * ``"feature_batch"``: one span per feature and batch.

    A feature is *kept* in a batch - ``y_ij - median_{k in QC of b} y_kj + median_{k in
    QC} y_kj`` (median alignment only) - when it has fewer than ``min_qc`` observed QC
    values there, no span gives finite leave-one-out fits, or the chosen curve is
    undefined at one of the batch's injections (spans are only chosen where it is
    defined, so this is a numerical safety net); with no observed QC value in the batch
    its values are left as they are.  ``fits`` says which and why.

    Parameters
    ----------
    log_intensities : pandas.DataFrame
        Injections x features, log2 scale, NaN = not fitted (stays NaN).
    injection_order : pandas.Series
        Run order per row (aligned on the index when a Series).
    batches : pandas.Series
        Batch label per row.
    qc_mask : array-like of bool
        True for pooled-QC injections.
    spans : sequence of float
        Candidate spans (fractions of the batch's QC injections; > 1 allowed).
    median_candidate : bool
        Let the no-drift batch median compete in the cross-validation (see above).
    min_qc : int
        Fewest observed QC values of a feature in a batch for a fit (>= 3).
    span_scope : {"feature", "feature_batch"}
        Where the span is chosen (see above).
    extrapolate : {"clamp", "linear"}
        Injections outside the batch's QC range get the fit at the nearest end QC
        (``clamp``) or the local line extended (``linear``).

    Returns
    -------
    DriftCorrection

    References
    ----------
    Dunn W.B. et al. (2011) Nat Protoc 6:1060-1083; Cleveland W.S. (1979) J Am Stat
    Assoc 74:829-836.
    """
    y, t, b, qc = _inputs(log_intensities, injection_order, batches, qc_mask)
    grid = _models(spans, median_candidate)
    min_qc = _check_min_qc(min_qc)
    if span_scope not in SPAN_SCOPES:
        raise ValueError(f"span_scope must be one of {SPAN_SCOPES}, not {span_scope!r}")
    if extrapolate not in ("clamp", "linear"):
        raise ValueError(f"extrapolate must be 'clamp' or 'linear', not {extrapolate!r}")
    p = y.shape[1]
    level = column_medians(y[qc]) if qc.any() else np.full(p, np.nan)
    labels = _batch_labels(b)
    cvs = []
    for label in labels:
        rows = np.flatnonzero(b == label)
        cvs.append(_batch_cv(y, t, rows, rows[qc[rows]], grid, extrapolate))
    chosen, fittable = _choose_spans(cvs, min_qc, span_scope)

    out = y.copy()
    fit_parts = []
    for label, cv, pick, ok in zip(labels, cvs, chosen, fittable):
        status_ok = pick >= 0
        note = np.full(p, "", dtype=object)
        if cv.qc_rows.size:
            for i in np.unique(pick[status_ok]):
                cols = np.flatnonzero(pick == i)
                if np.isinf(grid[i]):
                    curve = np.broadcast_to(column_medians(cv.y_qc[:, cols]), (cv.rows.size, cols.size))
                    note[cols] = "no drift: the batch QC median predicts left-out QCs best"
                else:
                    curve = local_linear_fit(cv.t_eval, cv.t_qc, cv.y_qc[:, cols], grid[i])
                bad = ~np.all(np.isfinite(curve), axis=0)
                good = cols[~bad]
                out[np.ix_(cv.rows, good)] = y[np.ix_(cv.rows, good)] - curve[:, ~bad] + level[good]
                status_ok[cols[bad]] = False
                note[cols[bad]] = f"LOESS (span {grid[i]:g}) not finite at some injection: median aligned"
        few = cv.n_obs < min_qc
        note[~status_ok & few] = f"fewer than min_qc={min_qc} observed QC values: median aligned"
        note[~status_ok & ~few & ~ok] = ("no span gives defined leave-one-QC-out fits and a curve at every "
                                          "injection: median aligned")
        kept = ~status_ok
        batch_median = column_medians(cv.y_qc) if cv.qc_rows.size else np.full(p, np.nan)
        align = kept & np.isfinite(batch_median) & np.isfinite(level)
        out[np.ix_(cv.rows, np.flatnonzero(align))] += (level - batch_median)[align]
        none = kept & ~align
        note[none] = "no observed QC value in the batch: left as is"
        mse = np.full(p, np.nan)
        idx = np.flatnonzero(status_ok)
        mse[idx] = cv.sse[pick[idx], idx] / cv.n_obs[idx]
        fit_parts.append(pd.DataFrame({
            "feature_id": log_intensities.columns.astype(str),
            "batch": label,
            "n_qc": cv.n_obs.astype(int),
            "span": np.where(status_ok, grid[np.maximum(pick, 0)], np.nan),
            "status": np.where(status_ok, "corrected", "kept"),
            "note": note,
            "loo_mse": mse,
        }))
    out[~np.isfinite(y)] = np.nan
    fits = pd.concat(fit_parts, ignore_index=True)[FIT_COLUMNS] if fit_parts else pd.DataFrame(columns=FIT_COLUMNS)
    table = pd.DataFrame(out, index=log_intensities.index, columns=log_intensities.columns)
    return DriftCorrection(table=table, fits=fits)


# --- honest precision -------------------------------------------------------------------


def _rsd_linear(log_values: np.ndarray) -> np.ndarray:
    """sd(ddof=1) / mean of 2**values per column over finite cells; NaN with < 2."""
    return column_rsd(np.exp2(log_values))


def qc_rsd_linear(log_intensities: pd.DataFrame, qc_mask) -> pd.Series:
    """In-sample QC RSD on the linear scale: sd(ddof=1) / mean of 2**y over observed QCs.

    Parameters
    ----------
    log_intensities : pandas.DataFrame
        Injections x features, log2 scale.
    qc_mask : array-like of bool
        True for QC injections.

    Returns
    -------
    pandas.Series
        Per feature (fraction); NaN with fewer than two observed QC values.
    """
    qc = _per_row(qc_mask, log_intensities.index, "qc_mask").astype(bool)
    values = log_intensities.to_numpy(dtype=float)[qc]
    return pd.Series(_rsd_linear(values), index=log_intensities.columns, name="rsd")


def leave_one_out_median(values: np.ndarray) -> np.ndarray:
    """Median of each column without row k, for every row k (NaN skipped).

    With the column's n observed values sorted, v_(1) <= ... <= v_(n), and row k at
    rank r, the remaining n - 1 values are v_(1..n) without v_(r); their median is
    read off by index arithmetic, so no loop over rows or columns.  Rows whose own
    value is missing get the median of all observed values; NaN when nothing remains.
    """
    v = np.asarray(values, dtype=float)
    n_rows, p = v.shape
    observed = np.isfinite(v)
    k = observed.sum(axis=0)  # observed per column
    order = np.argsort(np.where(observed, v, np.inf), axis=0, kind="stable")
    s = np.take_along_axis(np.where(observed, v, np.inf), order, axis=0)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(n_rows)[:, None].repeat(p, axis=1), axis=0)
    # remaining count per row: k - 1 if the row is observed, else k
    m = k[None, :] - observed.astype(int)
    r = np.where(observed, rank, n_rows)  # unobserved rows remove nothing
    lo = (m - 1) // 2
    hi = m // 2
    lo_idx = lo + (lo >= r)
    hi_idx = hi + (hi >= r)
    safe = m >= 1
    lo_idx = np.clip(np.where(safe, lo_idx, 0), 0, n_rows - 1)
    hi_idx = np.clip(np.where(safe, hi_idx, 0), 0, n_rows - 1)
    cols = np.broadcast_to(np.arange(p), (n_rows, p))
    med = 0.5 * (s[lo_idx, cols] + s[hi_idx, cols])
    return np.where(safe, med, np.nan)


def _loo_rlsc_predictions(
    cvs: list[_BatchCV], grid: np.ndarray, min_qc: int, scope: str, p: int
) -> list[np.ndarray]:
    """For each batch: (n, p) drift level used to correct QC k when QC k is left out.

    QC k's correction is what :func:`qc_rlsc` gives after deleting y_k: the span is
    chosen on the other QCs (their errors are leave-two-out: the moments of the LOO fit
    at t_j lose QC k's term, a rank-one downdate), the fit at t_k is the LOO prediction
    at that span, and a feature with fewer than min_qc values left or no feasible span
    falls back to the median of the batch's other QC values.  Feasible without y_k: the
    other QCs' leave-two-out fits are defined, and so is the curve at every injection
    (t_k included) - an injection whose support was exactly 2, QC k among them, loses it.
    """
    fittable = [(cv.n_obs >= min_qc) & np.isfinite(cv.sse).any(axis=0) for cv in cvs]
    contributions = [np.where(ok[None, :], cv.sse, 0.0) for cv, ok in zip(cvs, fittable)]
    out = []
    for index, cv in enumerate(cvs):
        n = cv.t_qc.size
        level = np.full((n, p), np.nan)
        if n == 0:
            out.append(level)
            continue
        observed = np.isfinite(cv.y_qc)
        mq = observed.astype(float)
        y0 = np.where(observed, cv.y_qc, 0.0)
        centred = cv.t_qc[None, :] - cv.t_qc[:, None]  # row j: t_k - t_j
        weights, moments, supports = [], [], []
        for span in grid:
            if np.isinf(span):
                weights.append(None), moments.append(None), supports.append(None)
                continue
            w = tricube_weights(cv.t_qc, cv.t_qc, span)
            np.fill_diagonal(w, 0.0)
            weights.append(w)
            moments.append(_moments(w, centred, mq, y0))
            supports.append(_support(w, mq))
        fallback = leave_one_out_median(cv.y_qc)
        others = np.zeros((len(grid), p))
        for other, part in enumerate(contributions):
            if other != index:
                others = others + part
        for k in range(n):
            keep = observed.copy()
            keep[k] = False
            sse_k = np.empty((len(grid), p))
            for i in range(len(grid)):
                if np.isinf(grid[i]):  # no-drift model: leave-two-out medians
                    pred = leave_one_out_median(np.where(keep, cv.y_qc, np.nan))
                    finite = np.all(np.isfinite(pred) | ~keep, axis=0)
                    sse_k[i] = np.where(finite, np.sum(np.where(keep, cv.y_qc - pred, 0.0) ** 2, axis=0), np.inf)
                    continue
                wk = weights[i][:, k][:, None]  # weight of QC k in each row's fit
                dk = centred[:, k][:, None]
                s0, s1, s2, t0, t1 = moments[i]
                mk, yk = mq[k][None, :], y0[k][None, :]
                pred = _intercept(s0 - wk * mk, s1 - wk * dk * mk, s2 - wk * dk * dk * mk,
                                  t0 - wk * yk, t1 - wk * dk * yk, supports[i] - (wk > 0) * mk)
                finite = np.all(np.isfinite(pred) | ~keep, axis=0) & cv.defined[i] & ~cv.fragile[i, k]
                err = np.where(keep, cv.y_qc - pred, 0.0)
                sse_k[i] = np.where(finite, np.sum(err**2, axis=0), np.inf)
            n_left = keep.sum(axis=0)
            ok_k = (n_left >= min_qc) & np.isfinite(sse_k).any(axis=0)
            pick = _argmin_prefer_smooth(sse_k)
            if scope == "feature":
                pool_k = others + np.where(ok_k[None, :], sse_k, 0.0)
                common = np.isfinite(pool_k.min(axis=0))
                pick = np.where(common, _argmin_prefer_smooth(pool_k), pick)
            pred_k = cv.loo[pick, k, np.arange(p)]
            use = ok_k & np.isfinite(pred_k)
            level[k] = np.where(use, pred_k, fallback[k])
        out.append(level)
    return out


def loqo_qc_rsd(
    log_intensities: pd.DataFrame,
    injection_order: pd.Series,
    batches: pd.Series,
    qc_mask,
    method: str = "qc_rlsc",
    spans=DEFAULT_SPANS,
    min_qc: int = 5,
    *,
    span_scope: str = "feature",
    extrapolate: str = "clamp",
    median_candidate: bool = True,
) -> pd.Series:
    """Leave-one-QC-out QC RSD on the linear scale: the honest precision of a correction.

    Each QC injection k is corrected by a model fitted without it,

        y'_kj = y_kj - g^{(-k)}_bj(t_k) + median_{l in QC, l != k} y_lj,

    and RSD_j = sd(2**y'_kj) / mean(2**y'_kj) (ddof = 1) over the feature's observed QC
    values.  ``g`` is, by ``method``:

    * ``"none"``: no correction (plain QC RSD of 2**y);
    * ``"median"``: the median of the other QC values of the batch (batch median
      centring); with no other QC value in the batch the value is left as is;
    * ``"qc_rlsc"``: the QC-RLSC curve of :func:`qc_rlsc` fitted without y_k, its model
      chosen without y_k too (nested: the other QCs' errors are leave-two-out), with the
      same fallbacks (median of the batch's other QCs) and the same feasibility rule
      (the curve must stay defined at every injection once y_k is gone).

    In-sample RSD after a correction (:func:`qc_rsd_linear` of the corrected table) is
    optimistic because the QCs that fitted the correction also judge it.

    Parameters
    ----------
    log_intensities, injection_order, batches, qc_mask, spans, min_qc, span_scope, extrapolate, median_candidate
        As in :func:`qc_rlsc`.
    method : {"none", "median", "qc_rlsc"}

    Returns
    -------
    pandas.Series
        Per feature, fraction; NaN with fewer than two observed QC values.

    References
    ----------
    Dunn W.B. et al. (2011) Nat Protoc 6:1060-1083; Broadhurst D. et al. (2018)
    Metabolomics 14:72.
    """
    y, t, b, qc = _inputs(log_intensities, injection_order, batches, qc_mask)
    if method not in ("none", "median", "qc_rlsc"):
        raise ValueError(f"method must be 'none', 'median' or 'qc_rlsc', not {method!r}")
    if span_scope not in SPAN_SCOPES:
        raise ValueError(f"span_scope must be one of {SPAN_SCOPES}, not {span_scope!r}")
    qc_rows = np.flatnonzero(qc)
    yq = y[qc_rows]
    if method == "none":
        return pd.Series(_rsd_linear(yq), index=log_intensities.columns, name="rsd")
    p = y.shape[1]
    global_loo = leave_one_out_median(yq)  # overall QC median without QC k
    corrected = np.full_like(yq, np.nan)
    labels = _batch_labels(b)
    position = {row: k for k, row in enumerate(qc_rows)}
    if method == "median":
        for label in labels:
            rows = qc_rows[b[qc_rows] == label]
            idx = np.array([position[r] for r in rows], dtype=int)
            if idx.size == 0:
                continue
            med = leave_one_out_median(yq[idx])
            corrected[idx] = np.where(np.isfinite(med), yq[idx] - med + global_loo[idx], yq[idx])
    else:
        grid = _models(spans, median_candidate)
        min_qc = _check_min_qc(min_qc)
        cvs = []
        for label in labels:
            rows = np.flatnonzero(b == label)
            cvs.append(_batch_cv(y, t, rows, rows[qc[rows]], grid, extrapolate, fragile=True))
        levels = _loo_rlsc_predictions(cvs, grid, min_qc, span_scope, p)
        for cv, level in zip(cvs, levels):
            if cv.qc_rows.size == 0:
                continue
            idx = np.array([position[r] for r in cv.qc_rows], dtype=int)
            corrected[idx] = np.where(np.isfinite(level), yq[idx] - level + global_loo[idx], yq[idx])
    corrected[~np.isfinite(yq)] = np.nan
    return pd.Series(_rsd_linear(corrected), index=log_intensities.columns, name="rsd")


# --- replicate injections ---------------------------------------------------------------


def replicate_rsd_table(linear: pd.DataFrame, groups: pd.Series) -> pd.DataFrame:
    """Within-group RSD per replicate group and feature, linear scale.

    RSD_gj = sd_{i in g}(x_ij) / mean_{i in g}(x_ij) (ddof = 1, observed values), for
    groups with at least two injections; NaN where fewer than two values are observed.
    Rows with a NaN group label are ignored.

    Returns
    -------
    pandas.DataFrame
        Replicate groups (sorted) x features.
    """
    if not isinstance(linear, pd.DataFrame):
        raise TypeError("linear must be a pandas DataFrame (injections x features)")
    g = pd.Series(_per_row(groups, linear.index, "groups"), index=linear.index)
    keep = g.notna().to_numpy()
    x, g = linear.loc[keep], g[keep]
    size = g.value_counts()
    multi = g.isin(size.index[size >= 2]).to_numpy()
    x, g = x.loc[multi], g[multi]
    if x.empty:
        return pd.DataFrame(columns=linear.columns, dtype=float)
    grouped = x.groupby(g.to_numpy(), sort=True)
    n = grouped.count()
    rsd = grouped.std(ddof=1) / grouped.mean()
    return rsd.where(n >= 2)


def replicate_rsd(linear: pd.DataFrame, groups: pd.Series) -> pd.Series:
    """Median over replicate groups of the within-group RSD, per feature.

    Parameters
    ----------
    linear : pandas.DataFrame
        Injections x features, linear scale.
    groups : pandas.Series
        Biological sample per injection (groups of >= 2 injections are replicates;
        NaN = not a replicate, ignored).

    Returns
    -------
    pandas.Series
        median_g RSD_gj (see :func:`replicate_rsd_table`); NaN when no group has two
        observed values.
    """
    table = replicate_rsd_table(linear, groups)
    return table.median(axis=0, skipna=True).reindex(linear.columns).rename("replicate_rsd")


# --- QC PCA and batch ------------------------------------------------------------------


def qc_pc_batch_r2(log_intensities: pd.DataFrame, batches: pd.Series, qc_mask, n_components: int = 5) -> pd.DataFrame:
    """Batch R^2 of the leading principal components of the QC injections.

    PCA of the QC rows (features observed in every QC and not constant, each
    autoscaled); for component c with scores z_c, the one-way ANOVA R^2 of batch is

        R^2_c = sum_b n_b (mean_b z_c - mean z_c)^2 / sum_k (z_kc - mean z_c)^2,

    and the total is the variance-weighted mean sum_c v_c R^2_c / sum_c v_c (v_c the
    explained-variance fraction).  Well-corrected QCs carry no batch signal: R^2 -> 0.

    Parameters
    ----------
    log_intensities : pandas.DataFrame
        Injections x features, log scale.
    batches : pandas.Series
        Batch label per row.
    qc_mask : array-like of bool
        True for QC injections.
    n_components : int
        Number of leading components.

    Returns
    -------
    pandas.DataFrame
        component (PC1.., total), explained_variance (fraction of the QC variance),
        batch_r2; attribute-free, n_components + 1 rows.

    References
    ----------
    Broadhurst D. et al. (2018) Metabolomics 14:72.
    """
    if not isinstance(log_intensities, pd.DataFrame):
        raise TypeError("log_intensities must be a pandas DataFrame")
    if int(n_components) != n_components or n_components < 1:
        raise ValueError("n_components must be a positive integer")
    qc = _per_row(qc_mask, log_intensities.index, "qc_mask").astype(bool)
    b = _per_row(batches, log_intensities.index, "batches")[qc]
    z = _autoscaled(log_intensities.loc[qc])
    scores, fractions = _top_components(z, int(n_components))
    codes = pd.factorize(pd.Series(b).astype(str), sort=True)[0]
    r2 = np.full(n_components, np.nan)
    for c in range(n_components):
        s = scores[:, c]
        if not np.all(np.isfinite(s)):
            continue
        total = np.sum((s - s.mean()) ** 2)
        means = np.bincount(codes, weights=s) / np.bincount(codes)
        between = np.sum(np.bincount(codes) * (means - s.mean()) ** 2)
        r2[c] = between / total if total > 0 else np.nan
    ok = np.isfinite(r2) & np.isfinite(fractions)
    weighted = float(np.sum(fractions[ok] * r2[ok]) / np.sum(fractions[ok])) if ok.any() else np.nan
    return pd.DataFrame({
        "component": [f"PC{c + 1}" for c in range(n_components)] + ["total"],
        "explained_variance": np.append(fractions, np.nansum(fractions[ok])),
        "batch_r2": np.append(r2, weighted),
    })
