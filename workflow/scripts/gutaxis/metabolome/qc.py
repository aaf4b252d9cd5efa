"""Quality-control tables for metabolomics processing (the QC figures read these).

PCA scores with QC pools marked and the QC dispersion summary, per-feature QC RSD,
missingness per sample and per feature, and total signal per injection in run order.
All return tidy DataFrames; none plots.

References
----------
Broadhurst D. et al. (2018) Guidelines and considerations for the use of system
suitability and quality control samples in mass spectrometry assays applied in
untargeted clinical metabolomic studies. Metabolomics 14:72.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse.linalg import svds

from gutaxis.metabolome.filters import qc_rsd

PCA_COLUMNS = ["sample_id", "sample_type", "stage", "pc1", "pc2", "pc1_variance_pct", "pc2_variance_pct"]
DISPERSION_COLUMNS = [
    "stage", "n_qc", "n_study", "n_features",
    "qc_median_distance", "study_median_distance", "dispersion_ratio",
    "qc_median_distance_pc12", "study_median_distance_pc12", "dispersion_ratio_pc12",
]


def _autoscaled(log_intensities: pd.DataFrame) -> np.ndarray:
    """Non-constant features, centred and scaled to unit variance (ddof = 1, observed values).

    A cell left missing (a platform not measured on that injection) is set to the
    feature's mean, 0 after centring, so it adds nothing to the components; features
    with fewer than two observed values are left out.
    """
    x = log_intensities.to_numpy(dtype=float)
    if x.shape[0] < 2:
        return np.empty((x.shape[0], 0))
    x = x[:, (~np.isnan(x)).sum(axis=0) >= 2]
    mean = np.nanmean(x, axis=0)
    sd = np.nanstd(x, axis=0, ddof=1)
    keep = sd > 0
    z = (x[:, keep] - mean[keep]) / sd[keep]
    return np.where(np.isnan(z), 0.0, z)


def _top_components(z: np.ndarray, n_components: int, exact_limit: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Scores and explained-variance fractions of the leading principal components.

    Full SVD when the smaller side of ``z`` is at most ``exact_limit``; otherwise
    ARPACK (``scipy.sparse.linalg.svds``) for the leading components only, started
    from a fixed vector so the result is deterministic.  Signs are fixed so the
    largest-magnitude loading of each component is positive.
    """
    n, p = z.shape
    total = float(np.sum(z * z))
    k = min(n_components, n, p)
    scores = np.full((n, n_components), np.nan)
    fractions = np.full(n_components, np.nan)
    if k == 0 or total == 0:
        return scores, fractions
    if min(n, p) <= exact_limit or k >= min(n, p) - 1:
        u, s, vt = np.linalg.svd(z, full_matrices=False)
        u, s, vt = u[:, :k], s[:k], vt[:k]
    else:
        u, s, vt = svds(z, k=k, v0=np.full(min(n, p), 1.0 / np.sqrt(min(n, p))), tol=0)
        order = np.argsort(s)[::-1]
        u, s, vt = u[:, order], s[order], vt[order]
    pivot = vt[np.arange(k), np.argmax(np.abs(vt), axis=1)]
    sign = np.where(pivot < 0, -1.0, 1.0)
    scores[:, :k] = u * s * sign
    fractions[:k] = s**2 / total
    return scores, fractions


def _median_distance(points: np.ndarray) -> float:
    # one point lies on its own centroid: a spread needs at least two
    if points.shape[0] < 2:
        return float("nan")
    return float(np.median(np.sqrt(((points - points.mean(axis=0)) ** 2).sum(axis=1))))


def qc_pca(
    log_intensities: pd.DataFrame, sample_types: pd.Series, stage: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """PCA scores of study and QC-pool injections, and the QC dispersion ratio.

    PCA input: the log-scale values of every feature observed at least twice, each
    centred and scaled to unit variance (ddof = 1) over its observed values, cells
    not measured set to 0 (the feature mean); constant features are left out.

    The dispersion ratio is

        median_{q in QC} ||z_q - c_QC|| / median_{i in study} ||z_i - c_study||,

    c the centroid of the group, computed in the full scaled feature space
    (``dispersion_ratio``) and on PC1-PC2 (``dispersion_ratio_pc12``).  Well-behaved
    QC pools cluster tightly: the ratio is well below 1 and falls after processing.
    A group of fewer than two rows has no spread: its distance and the ratio are NaN.

    Parameters
    ----------
    log_intensities : pandas.DataFrame
        Samples x features, log scale, rows = study samples and QC pools.
    sample_types : pandas.Series
        Type per row (``qc`` marks QC pools).
    stage : str
        Label for the ``stage`` column (``before`` / ``after``).

    Returns
    -------
    scores : pandas.DataFrame
        sample_id, sample_type, stage, pc1, pc2, pc1_variance_pct, pc2_variance_pct.
    dispersion : pandas.DataFrame
        One row, columns :data:`DISPERSION_COLUMNS`.
    """
    types = pd.Series(sample_types).reindex(log_intensities.index).astype(str).to_numpy()
    z = _autoscaled(log_intensities)
    scores, fractions = _top_components(z, 2)
    table = pd.DataFrame(
        {
            "sample_id": log_intensities.index.astype(str),
            "sample_type": types,
            "stage": stage,
            "pc1": scores[:, 0],
            "pc2": scores[:, 1],
            "pc1_variance_pct": 100 * fractions[0],
            "pc2_variance_pct": 100 * fractions[1],
        },
        columns=PCA_COLUMNS,
    )
    is_qc = types == "qc"
    qc_full, study_full = np.float64(_median_distance(z[is_qc])), np.float64(_median_distance(z[~is_qc]))
    qc_12, study_12 = np.float64(_median_distance(scores[is_qc])), np.float64(_median_distance(scores[~is_qc]))
    with np.errstate(all="ignore"):
        dispersion = pd.DataFrame(
            [[stage, int(is_qc.sum()), int((~is_qc).sum()), z.shape[1],
              qc_full, study_full, qc_full / study_full, qc_12, study_12, qc_12 / study_12]],
            columns=DISPERSION_COLUMNS,
        )
    return table, dispersion


def rsd_table(intensities: pd.DataFrame, qc_mask, stage: str) -> pd.DataFrame:
    """Per-feature QC RSD (std/mean, ddof = 1, fraction) on the linear scale.

    Returns
    -------
    pandas.DataFrame
        feature_id, stage, n_qc (observed QC values), rsd.
    """
    qc = intensities.loc[np.asarray(qc_mask, dtype=bool)]
    return pd.DataFrame(
        {
            "feature_id": intensities.columns.astype(str),
            "stage": stage,
            "n_qc": qc.notna().sum(axis=0).to_numpy(dtype=int),
            "rsd": qc_rsd(qc).to_numpy(dtype=float),
        }
    )


def missingness_per_sample(intensities: pd.DataFrame, sample_types: pd.Series, stage: str) -> pd.DataFrame:
    """Missing values per injection: sample_id, sample_type, stage, n_features, n_missing, fraction_missing."""
    n_missing = intensities.isna().sum(axis=1).to_numpy(dtype=int)
    n = intensities.shape[1]
    return pd.DataFrame(
        {
            "sample_id": intensities.index.astype(str),
            "sample_type": pd.Series(sample_types).reindex(intensities.index).to_numpy(),
            "stage": stage,
            "n_features": n,
            "n_missing": n_missing,
            "fraction_missing": n_missing / n if n else np.nan,
        }
    )


def missingness_per_feature(
    intensities: pd.DataFrame, sample_types: pd.Series, groups: pd.Series | None = None
) -> pd.DataFrame:
    """Missing values per feature within sample sets.

    Sample sets: ``all injections``, ``study samples``, ``qc``, ``blank`` (when
    present) and, when ``groups`` (labels for study samples) is given, one set
    ``group=<label>`` per group.

    Returns
    -------
    pandas.DataFrame
        feature_id, sample_set, n_samples, n_missing, fraction_missing, ordered by
        feature then sample set.
    """
    types = pd.Series(sample_types).reindex(intensities.index)
    missing = intensities.isna()
    study = ~types.isin(["qc", "blank"])
    sets = {"all injections": np.ones(len(types), dtype=bool), "study samples": study.to_numpy()}
    for t in ("qc", "blank"):
        if (types == t).any():
            sets[t] = (types == t).to_numpy()
    if groups is not None:
        g = pd.Series(groups).reindex(intensities.index)
        for label in sorted(g[study].dropna().unique(), key=str):
            sets[f"group={label}"] = (g == label).to_numpy() & study.to_numpy()
    parts = []
    for name, rows in sets.items():
        n_missing = missing.loc[rows].sum(axis=0).to_numpy(dtype=int)
        n = int(rows.sum())
        parts.append(
            pd.DataFrame(
                {
                    "feature_id": intensities.columns.astype(str),
                    "sample_set": name,
                    "n_samples": n,
                    "n_missing": n_missing,
                    "fraction_missing": n_missing / n if n else np.nan,
                    "_order": len(parts),
                    "_feature": np.arange(intensities.shape[1]),
                }
            )
        )
    out = pd.concat(parts, ignore_index=True).sort_values(["_feature", "_order"], kind="stable")
    return out.drop(columns=["_order", "_feature"]).reset_index(drop=True)


def total_signal_table(
    raw: pd.DataFrame, samples: pd.DataFrame, processed: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Total signal per injection in run order.

    Parameters
    ----------
    raw : pandas.DataFrame
        Raw intensities, all injections x all features (NaN skipped in sums).
    samples : pandas.DataFrame
        Sample sheet indexed by sample id with ``sample_type`` and optionally
        ``batch`` and ``injection_order``.
    processed : pandas.DataFrame, optional
        Normalised linear-scale intensities of the kept features for the injections
        that were processed.

    Returns
    -------
    pandas.DataFrame
        sample_id, sample_type, batch, injection_order, n_detected,
        total_signal_raw, total_signal_processed; sorted by injection order (table
        order when no injection order is declared).
    """
    sheet = samples.reindex(raw.index)
    out = pd.DataFrame(
        {
            "sample_id": raw.index.astype(str),
            "sample_type": sheet["sample_type"].to_numpy(),
            "batch": sheet["batch"].to_numpy() if "batch" in sheet else np.nan,
            "injection_order": sheet["injection_order"].to_numpy(dtype=float)
            if "injection_order" in sheet else np.nan,
            "n_detected": raw.notna().sum(axis=1).to_numpy(dtype=int),
            "total_signal_raw": raw.sum(axis=1, skipna=True).to_numpy(dtype=float),
            "total_signal_processed": np.nan,
        }
    )
    if processed is not None:
        out["total_signal_processed"] = processed.sum(axis=1).reindex(raw.index).to_numpy(dtype=float)
    out["_position"] = np.arange(len(out))
    out = out.sort_values(["injection_order", "_position"], kind="stable", na_position="last")
    return out.drop(columns="_position").reset_index(drop=True)
