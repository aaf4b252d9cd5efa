"""Imputation of missing metabolite intensities (half-minimum, fraction of LOD, KNN).

Missing values in untargeted metabolomics are mostly missing not at random: the
compound was below the detection limit.  The default methods therefore replace a
missing value by a value below the smallest one observed for that feature, not by a
typical value.  All functions take and return a samples x features DataFrame on the
raw (linear) scale.

References
----------
Wei R. et al. (2018) Missing value imputation approach for mass spectrometry-based
metabolomics data. Sci Rep 8:663.
Hrydziuszko O. & Viant M.R. (2012) Missing values in mass spectrometry based
metabolomics: an undervalued step in the data processing pipeline. Metabolomics 8:161.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _check(intensities: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(intensities, pd.DataFrame):
        raise TypeError("intensities must be a pandas DataFrame (samples x features)")
    empty = intensities.columns[intensities.isna().all(axis=0).to_numpy()]
    if len(empty):
        raise ValueError(
            f"{len(empty)} feature(s) have no observed value (e.g. {list(empty[:3])}); "
            "drop them before imputing"
        )
    return intensities


def impute_lod_fraction(
    intensities: pd.DataFrame, fraction: float = 0.2, lod: pd.Series | None = None
) -> pd.DataFrame:
    """Replace missing values by a fixed fraction of each feature's detection limit.

    x_ij (missing) := fraction * LOD_j.  Without an explicit ``lod`` the detection
    limit is estimated as the smallest observed value of the feature,
    LOD_j = min_i x_ij (MetaboAnalyst's "1/5 of the minimum positive value" is
    ``fraction=0.2``).

    Parameters
    ----------
    intensities : pandas.DataFrame
        Samples x features, NaN where not detected.
    fraction : float
        Multiple of the LOD used as the imputed value, in (0, 1].
    lod : pandas.Series, optional
        Detection limit per feature id; features missing from it (or NaN) fall back
        to their observed minimum.

    Returns
    -------
    pandas.DataFrame
        Same shape, no missing values.
    """
    x = _check(intensities)
    if not 0.0 < fraction <= 1.0:
        raise ValueError("fraction must be in (0, 1]")
    limit = x.min(axis=0, skipna=True)
    if lod is not None:
        given = pd.Series(lod, dtype=float).reindex(x.columns)
        limit = given.where(given.notna() & (given > 0), limit)
    values = x.to_numpy(dtype=float)
    filled = np.where(np.isnan(values), (fraction * limit).to_numpy(dtype=float), values)
    return pd.DataFrame(filled, index=x.index, columns=x.columns)


def impute_half_minimum(intensities: pd.DataFrame) -> pd.DataFrame:
    """Replace missing values by half the feature's smallest observed value.

    x_ij (missing) := min_k(x_kj) / 2, the minimum over the observed values of
    feature j in the rows given.

    References
    ----------
    Wei et al. (2018) Sci Rep 8:663 (half-minimum, "HM").
    """
    return impute_lod_fraction(intensities, fraction=0.5)


def impute_knn(intensities: pd.DataFrame, k: int = 5) -> pd.DataFrame:
    """K-nearest-neighbour imputation with scikit-learn's ``KNNImputer``.

    Each missing x_ij is the mean of feature j over the ``k`` samples nearest to
    sample i that observed feature j, distances being the NaN-aware Euclidean
    distance over the features both samples observed (``nan_euclidean``), uniform
    weights.  KNN assumes values missing at random; prefer half-minimum when
    non-detection dominates.

    Parameters
    ----------
    intensities : pandas.DataFrame
        Samples x features, NaN where not detected.
    k : int
        Number of neighbouring samples.

    References
    ----------
    Troyanskaya O. et al. (2001) Missing value estimation methods for DNA
    microarrays. Bioinformatics 17:520-525.
    """
    from sklearn.impute import KNNImputer

    x = _check(intensities)
    if int(k) < 1:
        raise ValueError("k must be >= 1")
    if not x.isna().to_numpy().any():
        return x.copy()
    filled = KNNImputer(n_neighbors=int(k), keep_empty_features=True).fit_transform(x.to_numpy(dtype=float))
    return pd.DataFrame(np.asarray(filled, dtype=float), index=x.index, columns=x.columns)
