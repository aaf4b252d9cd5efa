"""Sample normalisation, log transform, scaling and batch centring of metabolite tables.

Normalisers divide each sample (row) by one factor and return ``(normalised,
factors)``.  Scalers act per feature (column).  All functions take and return
samples x features DataFrames; none changes the row or column order.

References
----------
Dieterle F. et al. (2006) Probabilistic quotient normalization as robust method to
account for dilution of complex biological mixtures. Anal Chem 78:4281-4290.
van den Berg R.A. et al. (2006) Centering, scaling, and transformations: improving the
biological information content of metabolomics data. BMC Genomics 7:142.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _frame(x: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(x, pd.DataFrame):
        raise TypeError("expected a pandas DataFrame (samples x features)")
    return x


def _rows(x: pd.DataFrame, mask, name: str) -> np.ndarray:
    if mask is None:
        return np.ones(x.shape[0], dtype=bool)
    m = np.asarray(mask, dtype=bool)
    if m.shape != (x.shape[0],):
        raise ValueError(f"{name} must have one entry per row")
    if not m.any():
        raise ValueError(f"{name} selects no rows")
    return m


def _divide(x: pd.DataFrame, factors: np.ndarray, name: str) -> tuple[pd.DataFrame, pd.Series]:
    f = pd.Series(factors, index=x.index, name=name)
    return x.div(f, axis=0), f


def pqn_normalise(
    intensities: pd.DataFrame, reference="qc", qc_mask=None
) -> tuple[pd.DataFrame, pd.Series]:
    """Probabilistic quotient normalisation (PQN).

    With reference spectrum r_j, the dilution factor of sample i is

        d_i = median_j (x_ij / r_j),

    and the normalised values are x_ij / d_i.  Missing values are skipped in the
    medians.

    Parameters
    ----------
    intensities : pandas.DataFrame
        Samples x features on the linear scale, positive values.
    reference : {"qc", "median"} or pandas.Series
        ``"qc"``: r_j = median of feature j over the QC-pool rows (``qc_mask``);
        ``"median"``: median over the non-QC rows (all rows when ``qc_mask`` is None);
        a Series: the reference spectrum itself, indexed by feature id.
    qc_mask : array-like of bool, optional
        True for QC-pool rows; required for ``reference="qc"``.

    Returns
    -------
    normalised : pandas.DataFrame
    dilution_factors : pandas.Series
        d_i per sample, named ``dilution_factor``.

    References
    ----------
    Dieterle et al. (2006) Anal Chem 78:4281-4290.
    """
    x = _frame(intensities)
    if isinstance(reference, pd.Series):
        ref = reference.reindex(x.columns).to_numpy(dtype=float)
        if np.isnan(ref).any():
            raise ValueError("the reference spectrum lacks some features of intensities")
    elif reference == "qc":
        if qc_mask is None:
            raise ValueError("reference='qc' needs qc_mask")
        rows = _rows(x, qc_mask, "qc_mask")
        ref = np.nanmedian(x.to_numpy(dtype=float)[rows], axis=0)
    elif reference == "median":
        rows = np.ones(x.shape[0], dtype=bool)
        if qc_mask is not None:
            rows = ~np.asarray(qc_mask, dtype=bool)
            if rows.shape != (x.shape[0],):
                raise ValueError("qc_mask must have one entry per row")
        if not rows.any():
            raise ValueError("reference='median' needs at least one non-QC row")
        ref = np.nanmedian(x.to_numpy(dtype=float)[rows], axis=0)
    else:
        raise ValueError(f"reference must be 'qc', 'median' or a Series, not {reference!r}")
    if np.any(~(ref > 0)):
        raise ValueError("the reference spectrum must be positive for every feature")
    with np.errstate(all="ignore"):
        quotients = x.to_numpy(dtype=float) / ref
    factors = np.nanmedian(quotients, axis=1) if np.isnan(quotients).any() else np.median(quotients, axis=1)
    return _divide(x, factors, "dilution_factor")


def total_signal_normalise(intensities: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Total-signal (total ion count / integral) normalisation.

    f_i = T_i / median_k(T_k) with T_i = sum_j x_ij (missing values skipped); the
    normalised values x_ij / f_i all have total signal median_k(T_k).

    Returns
    -------
    normalised : pandas.DataFrame
    factors : pandas.Series named ``normalisation_factor``.
    """
    x = _frame(intensities)
    total = x.sum(axis=1, skipna=True).to_numpy(dtype=float)
    return _divide(x, total / np.median(total), "normalisation_factor")


def median_normalise(intensities: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Median normalisation: f_i = m_i / median_k(m_k), m_i = median_j x_ij.

    After normalisation every sample has the same median intensity.

    Returns
    -------
    normalised : pandas.DataFrame
    factors : pandas.Series named ``normalisation_factor``.
    """
    x = _frame(intensities)
    med = np.nanmedian(x.to_numpy(dtype=float), axis=1)
    return _divide(x, med / np.median(med), "normalisation_factor")


def log2_transform(intensities: pd.DataFrame) -> pd.DataFrame:
    """log2(x); missing values stay missing.  Values must be positive.

    Impute before transforming: zeros and negatives have no logarithm.
    """
    x = _frame(intensities)
    values = x.to_numpy(dtype=float)
    if np.any(values[~np.isnan(values)] <= 0):
        raise ValueError("log2_transform needs positive values; impute missing/zero values first")
    return pd.DataFrame(np.log2(values), index=x.index, columns=x.columns)


def _scale(x: pd.DataFrame, fit_rows, power: float) -> pd.DataFrame:
    rows = _rows(x, fit_rows, "fit_rows")
    fit = x.loc[rows]
    mean = fit.mean(axis=0)
    sd = fit.std(axis=0, ddof=1)
    divisor = (sd**power).where(sd > 0, 1.0)
    return (x - mean) / divisor


def pareto_scale(intensities: pd.DataFrame, fit_rows=None) -> pd.DataFrame:
    """Pareto scaling: (x_ij - mean_j) / sqrt(s_j), s_j the sample sd (ddof = 1).

    Parameters
    ----------
    intensities : pandas.DataFrame
        Usually log2 values.
    fit_rows : array-like of bool, optional
        Rows whose mean and sd are used (e.g. study samples only, so QC pools are
        transformed alike without shaping the scale); default all rows.  Features with
        zero sd are only centred.

    References
    ----------
    van den Berg et al. (2006) BMC Genomics 7:142, Table 1.
    """
    return _scale(_frame(intensities), fit_rows, 0.5)


def auto_scale(intensities: pd.DataFrame, fit_rows=None) -> pd.DataFrame:
    """Auto scaling (unit variance): (x_ij - mean_j) / s_j, s_j with ddof = 1.

    ``fit_rows`` as in :func:`pareto_scale`.

    References
    ----------
    van den Berg et al. (2006) BMC Genomics 7:142, Table 1.
    """
    return _scale(_frame(intensities), fit_rows, 1.0)


def batch_median_centre(
    log_intensities: pd.DataFrame, batches: pd.Series, reference: str = "qc", qc_mask=None
) -> pd.DataFrame:
    """Per-batch median centring on the log scale.

    For feature j and batch b, with R the reference rows (QC pools or all rows),

        y_ij = x_ij - median_{k in R, batch b}(x_kj) + median_{k in R}(x_kj),

    so the reference-row medians of every batch become equal to the pooled median
    and the overall level of each feature is kept.

    Parameters
    ----------
    log_intensities : pandas.DataFrame
        Samples x features on the log scale.
    batches : pandas.Series
        Batch label per row.
    reference : {"qc", "all"}
        Estimate batch medians from the QC-pool rows (every batch needs one) or
        from all rows.
    qc_mask : array-like of bool, optional
        True for QC-pool rows; required for ``reference="qc"``.

    References
    ----------
    Broadhurst et al. (2018) Metabolomics 14:72; Wehrens R. et al. (2016) Improved
    batch correction in untargeted MS-based metabolomics. Metabolomics 12:88.
    """
    x = _frame(log_intensities)
    b = pd.Series(batches).reindex(x.index)
    if b.isna().any():
        raise ValueError("batches must give a batch for every row")
    if reference == "qc":
        if qc_mask is None:
            raise ValueError("reference='qc' needs qc_mask")
        rows = _rows(x, qc_mask, "qc_mask")
    elif reference == "all":
        rows = _rows(x, None, "")
    else:
        raise ValueError(f"reference must be 'qc' or 'all', not {reference!r}")
    ref = x.loc[rows]
    batch_median = ref.groupby(b[rows].to_numpy()).median()
    lacking = sorted(set(b.unique()) - set(batch_median.index), key=str)
    if lacking:
        raise ValueError(f"batch(es) {lacking} have no reference rows to estimate their median")
    offsets = batch_median.reindex(b.to_numpy()).to_numpy() - ref.median(axis=0).to_numpy()
    return x - offsets
