"""Choose the strongest associations of a block and order them by hierarchical clustering for a heatmap.

The heatmap of a block shows the features that take part in its strongest pairs
(smallest p), all their pairwise correlations, rows and columns ordered by
average-linkage clustering of their correlation profiles (leaf order optimised,
Bar-Joseph et al. 2001). The order is computed here, in the compute rule, so the
plot rule only draws a table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.cluster import hierarchy

__all__ = ["HEATMAP_COLUMNS", "cluster_order", "strongest_submatrix"]

HEATMAP_COLUMNS = ["feature_a", "feature_b", "label_a", "label_b", "rho", "p", "q",
                   "row_order", "col_order"]


def cluster_order(profiles: np.ndarray) -> np.ndarray:
    """Leaf order of an average-linkage (UPGMA) tree on the rows of ``profiles``.

    Distances are Euclidean between rows (correlation profiles); the leaf order
    is optimised so neighbouring leaves are the most similar (``optimal_ordering``,
    Bar-Joseph, Gifford & Jaakkola 2001). Fewer than three rows keep their order.

    Parameters
    ----------
    profiles : ndarray, shape (n, m)
        One row per item; NaN counts as 0 (no association).

    Returns
    -------
    ndarray of int
        Row positions in display order.

    References
    ----------
    Bar-Joseph Z, Gifford DK, Jaakkola TS (2001) Fast optimal leaf ordering for
    hierarchical clustering. Bioinformatics 17:S22-S29.
    """
    profiles = np.nan_to_num(np.asarray(profiles, dtype=float))
    if profiles.shape[0] < 3:
        return np.arange(profiles.shape[0])
    tree = hierarchy.linkage(profiles, method="average", metric="euclidean", optimal_ordering=True)
    return hierarchy.leaves_list(tree)


def strongest_submatrix(
    table: pd.DataFrame,
    *,
    n_pairs: int = 50,
    max_features: int = 30,
    labels_a: pd.Series | None = None,
    labels_b: pd.Series | None = None,
) -> pd.DataFrame:
    """The correlation submatrix spanned by a block's strongest pairs, clustered.

    The first ``n_pairs`` rows of ``table`` (ordered by p, as
    :func:`gutaxis.integration.associations.associate_blocks` writes them) name the features;
    at most ``max_features`` per side are kept, in order of their best pair.
    Every pair among the kept features is returned (NaN rho when the table does
    not hold it), with the clustered row (feature_a) and column (feature_b) order.

    Parameters
    ----------
    table : DataFrame
        ``feature_a, feature_b, rho, p, q``, strongest first.
    n_pairs : int
        Number of top pairs whose features are shown.
    max_features : int
        Cap on features per side.
    labels_a, labels_b : Series, optional
        Feature id -> display label.

    Returns
    -------
    DataFrame
        :data:`HEATMAP_COLUMNS`, one row per (feature_a, feature_b), sorted by
        row then column order. Empty when the table is.
    """
    top = table.head(n_pairs)
    ids_a = pd.unique(top["feature_a"].astype(str))[:max_features]
    ids_b = pd.unique(top["feature_b"].astype(str))[:max_features]
    if len(ids_a) == 0 or len(ids_b) == 0:
        return pd.DataFrame(columns=HEATMAP_COLUMNS)
    fa = table["feature_a"].astype(str)
    fb = table["feature_b"].astype(str)
    sub = table.loc[fa.isin(ids_a) & fb.isin(ids_b), ["rho", "p", "q"]].copy()
    sub.insert(0, "feature_b", fb[sub.index])
    sub.insert(0, "feature_a", fa[sub.index])
    grid = pd.MultiIndex.from_product([ids_a, ids_b], names=["feature_a", "feature_b"])
    sub = sub.set_index(["feature_a", "feature_b"]).reindex(grid).reset_index()
    rho = sub["rho"].to_numpy().reshape(len(ids_a), len(ids_b))
    row_rank = np.empty(len(ids_a), dtype=int)
    row_rank[cluster_order(rho)] = np.arange(len(ids_a))
    col_rank = np.empty(len(ids_b), dtype=int)
    col_rank[cluster_order(rho.T)] = np.arange(len(ids_b))
    sub["row_order"] = np.repeat(row_rank, len(ids_b))
    sub["col_order"] = np.tile(col_rank, len(ids_a))
    sub["label_a"] = _labels(sub["feature_a"], labels_a)
    sub["label_b"] = _labels(sub["feature_b"], labels_b)
    return sub.sort_values(["row_order", "col_order"], kind="stable")[HEATMAP_COLUMNS].reset_index(drop=True)


def _labels(ids: pd.Series, labels: pd.Series | None) -> np.ndarray:
    if labels is None:
        return ids.to_numpy()
    found = ids.map(labels)
    return found.where(found.notna(), ids).to_numpy()
