"""Feature filters for a metabolomics peak table: blank, missingness and QC-pool RSD.

Every filter takes a samples x features intensity table (NaN = not detected) on the
raw scale, computes one statistic per feature, and returns a :class:`FeatureFilter`
holding the keep mask, the statistic and the reason for each dropped feature.  The
filters are per-feature, so applying them to the same raw table in any order keeps
the same features.

References
----------
Broadhurst D. et al. (2018) Guidelines and considerations for the use of system
suitability and quality control samples in mass spectrometry assays applied in
untargeted clinical metabolomic studies. Metabolomics 14:72.
Bijlsma S. et al. (2006) Large-scale human metabolomics studies: a strategy for data
(pre-) processing and validation. Anal Chem 78:567-574 (the "80% rule").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: reasons written to the ``reason`` column of the dropped-features table
REASON_ALL_MISSING = "all values missing"
REASON_BLANK = "sample median not above fold x blank median"
REASON_MISSING = "too many missing values"
REASON_RSD = "qc rsd not below max_rsd"
REASON_FEW_QC = "fewer than 2 qc values"


@dataclass(frozen=True)
class FeatureFilter:
    """Outcome of one feature filter.

    ``step`` names the filter (the ``step`` column of the dropped table). The
    Series are indexed by feature id: ``keep`` is True for kept features, ``value``
    the per-feature statistic the rule was applied to, ``reason`` why each feature
    was dropped (empty for kept features).
    """

    step: str
    keep: pd.Series
    value: pd.Series
    reason: pd.Series

    @property
    def dropped(self) -> pd.DataFrame:
        """Tidy table of dropped features: feature_id, step, reason, value."""
        out = pd.DataFrame(
            {
                "feature_id": self.keep.index[~self.keep.to_numpy()],
                "step": self.step,
                "reason": self.reason[~self.keep].to_numpy(),
                "value": self.value[~self.keep].to_numpy(dtype=float),
            }
        )
        return out.reset_index(drop=True)

    def apply(
        self, intensities: pd.DataFrame, annotations: pd.DataFrame | None = None
    ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """Keep the passing features in ``intensities`` and, aligned, in ``annotations``."""
        kept = self.keep.index[self.keep.to_numpy()]
        table = intensities.loc[:, kept]
        if annotations is None:
            return table, None
        return table, annotations.reindex(kept)


def _feature_filter(step: str, keep: pd.Series, value: pd.Series, reason: pd.Series) -> FeatureFilter:
    keep = keep.astype(bool)
    reason = reason.where(~keep, "")
    return FeatureFilter(step, keep, value.astype(float), reason.astype(str))


def _as_frame(intensities: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(intensities, pd.DataFrame):
        raise TypeError("intensities must be a pandas DataFrame (samples x features)")
    return intensities


def all_missing_filter(intensities: pd.DataFrame) -> FeatureFilter:
    """Drop features with no observed value in any row.

    Parameters
    ----------
    intensities : pandas.DataFrame
        Samples x features, NaN where not detected.

    Returns
    -------
    FeatureFilter
        ``value`` is the number of observed values (0 for dropped features).
    """
    x = _as_frame(intensities)
    n_observed = x.notna().sum(axis=0).astype(float)
    keep = n_observed > 0
    reason = pd.Series(REASON_ALL_MISSING, index=x.columns)
    return _feature_filter("all_missing", keep, n_observed, reason)


def blank_filter(intensities: pd.DataFrame, sample_types: pd.Series, fold: float = 3.0) -> FeatureFilter:
    """Keep features whose median in study samples exceeds ``fold`` times the blank median.

    A feature is kept when

        median_{i in study}(x_ij) > fold * median_{b in blanks}(x_bj),

    medians skipping missing values; a feature never detected in any blank has blank
    level 0 and is kept when it is detected in a study sample.  Study samples are the
    rows whose sample type is neither ``qc`` nor ``blank``.

    Parameters
    ----------
    intensities : pandas.DataFrame
        Samples x features on the raw (linear) scale, NaN where not detected.
    sample_types : pandas.Series
        Sample type per row of ``intensities`` (``qc``, ``blank``, ``stool`` ...).
    fold : float
        Required multiple of the blank level (strict inequality).

    Returns
    -------
    FeatureFilter
        ``value`` is the ratio sample median / blank median (inf when the blank level is 0).

    References
    ----------
    Broadhurst et al. (2018) Metabolomics 14:72, section "Blank samples".
    """
    x = _as_frame(intensities)
    if fold < 0:
        raise ValueError("fold must be >= 0")
    types = pd.Series(sample_types).reindex(x.index)
    if types.isna().any():
        raise ValueError("sample_types must give a type for every row of intensities")
    is_blank = (types == "blank").to_numpy()
    is_study = (~types.isin(["qc", "blank"])).to_numpy()
    if not is_blank.any():
        raise ValueError("blank_filter needs at least one row with sample type 'blank'")
    if not is_study.any():
        raise ValueError("blank_filter needs at least one study sample")
    sample_median = x.loc[is_study].median(axis=0, skipna=True)
    blank_level = x.loc[is_blank].median(axis=0, skipna=True).fillna(0.0)
    keep = (sample_median > fold * blank_level).fillna(False)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = sample_median / blank_level
    reason = pd.Series(REASON_BLANK, index=x.columns)
    reason[sample_median.isna()] = REASON_MISSING + " (none detected in study samples)"
    return _feature_filter("blank_filter", keep, ratio, reason)


def missing_fraction(intensities: pd.DataFrame, groups: pd.Series | None = None,
                     not_measured: pd.DataFrame | None = None) -> pd.DataFrame:
    """Fraction of missing values per feature, overall or per group, among measured cells.

    f_gj = #{i in g : x_ij missing, (i, j) measured} / #{i in g : (i, j) measured}.
    Cells flagged in ``not_measured`` (a platform not run on that sample's group, see
    :mod:`gutaxis.metabolome.structure`) are neither missing nor present: they leave
    the denominator.  A group with no measured cell of a feature gets NaN.

    Returns
    -------
    pandas.DataFrame
        One row per group (a single row ``"all"`` when ``groups`` is None),
        one column per feature.
    """
    x = _as_frame(intensities)
    if not_measured is None:
        counted = pd.DataFrame(1.0, index=x.index, columns=x.columns)
    else:
        counted = (~not_measured.reindex(index=x.index, columns=x.columns, fill_value=False)).astype(float)
    missing = x.isna().astype(float) * counted
    if groups is None:
        with np.errstate(invalid="ignore", divide="ignore"):
            return (missing.sum(axis=0) / counted.sum(axis=0).replace(0.0, np.nan)).to_frame("all").T
    g = pd.Series(groups).reindex(x.index)
    if g.isna().any():
        raise ValueError("groups must give a group for every row of intensities")
    labels = g.to_numpy()
    return missing.groupby(labels, sort=True).sum() / counted.groupby(labels, sort=True).sum().replace(0.0, np.nan)


def missingness_filter(
    intensities: pd.DataFrame,
    groups: pd.Series | None = None,
    max_missing: float = 0.2,
    rule: str = "per_group",
    strict: bool = False,
    not_measured: pd.DataFrame | None = None,
) -> FeatureFilter:
    """Keep features detected often enough, overall or in at least one group.

    With ``rule="overall"`` a feature is kept when its missing fraction f_j over all
    rows satisfies f_j <= max_missing (``f_j < max_missing`` when ``strict``).  With
    ``rule="per_group"`` (the modified 80% rule) it is kept when that holds in at
    least one group, i.e. min_g f_gj <= max_missing.  ``max_missing=0.2`` is the 80%
    rule: present in at least 80% of the samples (of some group).

    Parameters
    ----------
    intensities : pandas.DataFrame
        Samples x features, NaN where not detected.
    groups : pandas.Series, optional
        Group label per row; required for ``rule="per_group"``.
    max_missing : float
        Largest allowed fraction of missing values, in [0, 1].
    rule : {"per_group", "overall"}
    strict : bool
        Use ``<`` instead of ``<=``.
    not_measured : pandas.DataFrame of bool, optional
        Cells not measured (structural gaps): left out of every fraction, so a
        platform missing at one visit neither fails nor passes the rule there.

    Returns
    -------
    FeatureFilter
        ``value`` is the tested missing fraction (the smallest group fraction for
        ``per_group``).

    References
    ----------
    Bijlsma et al. (2006) Anal Chem 78:567-574; Smilde et al. (2005) Anal Chem 77:6729.
    """
    x = _as_frame(intensities)
    if not 0.0 <= max_missing <= 1.0:
        raise ValueError("max_missing must be between 0 and 1")
    if rule == "overall":
        fraction = missing_fraction(x, None, not_measured).iloc[0].fillna(1.0)
    elif rule == "per_group":
        if groups is None:
            raise ValueError("rule='per_group' needs groups")
        fraction = missing_fraction(x, groups, not_measured).min(axis=0, skipna=True).fillna(1.0)
    else:
        raise ValueError(f"rule must be 'per_group' or 'overall', not {rule!r}")
    keep = fraction < max_missing if strict else fraction <= max_missing
    reason = pd.Series(REASON_MISSING, index=x.columns)
    return _feature_filter("missingness", keep, fraction, reason)


def qc_rsd(intensities_qc: pd.DataFrame) -> pd.Series:
    """Relative standard deviation of each feature across QC-pool injections.

    RSD_j = s_j / mean_j, with s_j the sample standard deviation (ddof = 1) and the
    mean over the observed (non-missing) QC values; NaN when fewer than two QC values
    are observed.  Returned as a fraction (0.3 = 30%).

    References
    ----------
    Broadhurst et al. (2018) Metabolomics 14:72 (RSD_QC < 20-30%).
    """
    x = _as_frame(intensities_qc)
    return pd.Series(column_rsd(x.to_numpy(dtype=float)), index=x.columns, name="rsd")


def column_rsd(values: np.ndarray) -> np.ndarray:
    """sd(ddof=1) / mean of each column over its finite cells; NaN with fewer than two.

    The array core of :func:`qc_rsd` (also the leave-one-QC-out RSD of
    :mod:`gutaxis.metabolome.drift`).
    """
    observed = np.isfinite(values)
    n = observed.sum(axis=0)
    with np.errstate(all="ignore"):
        mean = np.where(observed, values, 0.0).sum(axis=0) / n
        ss = np.where(observed, (values - mean) ** 2, 0.0).sum(axis=0)
        return np.where(n >= 2, np.sqrt(ss / (n - 1)) / mean, np.nan)


def rsd_filter(intensities: pd.DataFrame, qc_mask, max_rsd: float = 0.3) -> FeatureFilter:
    """Keep features whose QC-pool RSD is below ``max_rsd`` (strict inequality).

    Parameters
    ----------
    intensities : pandas.DataFrame
        Samples x features on the raw scale (before imputation: missing QC values are
        skipped, not imputed).
    qc_mask : array-like of bool
        True for the rows that are QC-pool injections.
    max_rsd : float
        Threshold as a fraction (0.3 = 30%).

    Returns
    -------
    FeatureFilter
        ``value`` is the RSD (see :func:`qc_rsd`).  Features with fewer than two
        observed QC values are dropped.
    """
    x = _as_frame(intensities)
    mask = np.asarray(qc_mask, dtype=bool)
    if mask.shape != (x.shape[0],):
        raise ValueError("qc_mask must have one entry per row of intensities")
    if mask.sum() < 2:
        raise ValueError("rsd_filter needs at least two QC injections")
    if max_rsd <= 0:
        raise ValueError("max_rsd must be > 0")
    rsd = qc_rsd(x.loc[mask])
    keep = (rsd < max_rsd).fillna(False)
    reason = pd.Series(REASON_RSD, index=x.columns)
    reason[rsd.isna()] = REASON_FEW_QC
    return _feature_filter("qc_rsd", keep, rsd, reason)
