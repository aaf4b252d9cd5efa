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


def _measured_values(x: pd.DataFrame, measured) -> np.ndarray:
    """Values as float with the cells not in ``measured`` (imputed, not measured) set to NaN."""
    values = x.to_numpy(dtype=float)
    if measured is None:
        return values
    m = measured.reindex(index=x.index, columns=x.columns, fill_value=False).to_numpy(dtype=bool)
    return np.where(m, values, np.nan)


def quotient_counts(intensities: pd.DataFrame, measured=None) -> pd.Series:
    """Number of values each sample's normalisation factor is computed from."""
    values = _measured_values(_frame(intensities), measured)
    return pd.Series((~np.isnan(values)).sum(axis=1), index=intensities.index, name="n_features")


def pqn_normalise(
    intensities: pd.DataFrame, reference="qc", qc_mask=None, measured: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, pd.Series]:
    """Probabilistic quotient normalisation (PQN).

    With reference spectrum r_j, the dilution factor of sample i is

        d_i = median_{j in M_i} (x_ij / r_j),

    and the normalised values are x_ij / d_i (every cell, imputed ones included).  M_i
    holds the features whose value in sample i was measured (``measured``; all
    non-missing cells when None), and r_j is the median over the measured reference
    values: an imputed value is an assumption about a level below detection, and a
    quotient built from it would move the factor of exactly the samples with more
    non-detects.

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
    measured : pandas.DataFrame of bool, optional
        Cells that hold measured (not imputed) values; the reference and the
        quotients use only these.  Features left out of the quotients entirely
        (e.g. a platform not run at every visit) are simply False in every row.

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
    values = _measured_values(x, measured)
    if isinstance(reference, pd.Series):
        ref = reference.reindex(x.columns).to_numpy(dtype=float)
        if np.isnan(ref).any():
            raise ValueError("the reference spectrum lacks some features of intensities")
    elif reference == "qc":
        if qc_mask is None:
            raise ValueError("reference='qc' needs qc_mask")
        rows = _rows(x, qc_mask, "qc_mask")
        ref = column_medians(values[rows])
    elif reference == "median":
        rows = np.ones(x.shape[0], dtype=bool)
        if qc_mask is not None:
            rows = ~np.asarray(qc_mask, dtype=bool)
            if rows.shape != (x.shape[0],):
                raise ValueError("qc_mask must have one entry per row")
        if not rows.any():
            raise ValueError("reference='median' needs at least one non-QC row")
        ref = column_medians(values[rows])
    else:
        raise ValueError(f"reference must be 'qc', 'median' or a Series, not {reference!r}")
    used = ~np.isnan(ref)
    if measured is None and not used.all():
        raise ValueError("the reference spectrum must be positive for every feature")
    if np.any(~(ref[used] > 0)):
        raise ValueError("the reference spectrum must be positive for every feature")
    with np.errstate(all="ignore"):
        quotients = values / ref
    factors = np.nanmedian(quotients, axis=1) if np.isnan(quotients).any() else np.median(quotients, axis=1)
    if np.isnan(factors).any():
        empty = list(x.index[np.isnan(factors)][:5])
        raise ValueError(f"no measured value to form the quotient of sample(s) {empty}")
    return _divide(x, factors, "dilution_factor")


def column_medians(values: np.ndarray) -> np.ndarray:
    """Median of each column skipping NaN; NaN for a column with no value (no warning)."""
    out = np.full(values.shape[1], np.nan)
    seen = (~np.isnan(values)).any(axis=0)
    if seen.any():
        out[seen] = np.nanmedian(values[:, seen], axis=0)
    return out


def total_signal_normalise(intensities: pd.DataFrame, measured: pd.DataFrame | None = None
                           ) -> tuple[pd.DataFrame, pd.Series]:
    """Total-signal (total ion count / integral) normalisation.

    f_i = T_i / median_k(T_k) with T_i = sum_{j in M_i} x_ij, M_i the measured cells
    of sample i (``measured``; every non-missing cell when None).

    Returns
    -------
    normalised : pandas.DataFrame
    factors : pandas.Series named ``normalisation_factor``.
    """
    return _relative_to_median(intensities, measured, np.nansum)


def median_normalise(intensities: pd.DataFrame, measured: pd.DataFrame | None = None
                     ) -> tuple[pd.DataFrame, pd.Series]:
    """Median normalisation: f_i = m_i / median_k(m_k), m_i = median_{j in M_i} x_ij.

    M_i as in :func:`total_signal_normalise`.
    After normalisation every sample has the same median intensity. Returns as
    :func:`total_signal_normalise`.
    """
    return _relative_to_median(intensities, measured, np.nanmedian)


def _relative_to_median(intensities, measured, per_sample) -> tuple[pd.DataFrame, pd.Series]:
    """Divide each sample by ``per_sample`` of its measured values over the median of that over samples."""
    x = _frame(intensities)
    value = per_sample(_measured_values(x, measured), axis=1)
    return _divide(x, value / np.median(value), "normalisation_factor")


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
