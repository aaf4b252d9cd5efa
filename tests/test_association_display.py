"""Heatmap selection: the strongest pairs' features, every pair among them, clustered order."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gutaxis.integration.association_display import HEATMAP_COLUMNS, cluster_order, strongest_submatrix
from gutaxis.integration.associations import associate_blocks


def test_cluster_order_keeps_clusters_together():
    rng = np.random.default_rng(1)
    centres = np.array([[1.0, 1.0, -1.0], [-1.0, -1.0, 1.0]])
    labels = np.array([0, 1, 0, 1, 0, 1, 1, 0])
    profiles = centres[labels] + 0.05 * rng.normal(size=(8, 3))
    order = cluster_order(profiles)
    assert sorted(order) == list(range(8))
    seq = labels[order]
    assert (np.diff(seq) != 0).sum() == 1  # one switch between the two groups


def test_strongest_submatrix_selects_planted_pairs_and_fills_the_grid():
    rng = np.random.default_rng(2)
    n = 40
    a = pd.DataFrame(rng.normal(size=(n, 12)), columns=[f"a{i}" for i in range(12)])
    b = pd.DataFrame(rng.normal(size=(n, 9)), columns=[f"b{i}" for i in range(9)])
    b["b3"] = a["a5"] + 0.3 * rng.normal(size=n)
    b["b7"] = -a["a2"] + 0.3 * rng.normal(size=n)
    table = associate_blocks(a, b).table
    heat = strongest_submatrix(table, n_pairs=2, max_features=10, labels_a=pd.Series({"a5": "five"}))
    assert list(heat.columns) == HEATMAP_COLUMNS
    assert set(heat["feature_a"]) == {"a5", "a2"} and set(heat["feature_b"]) == {"b3", "b7"}
    assert len(heat) == 4
    lookup = table.astype({"feature_a": str, "feature_b": str}).set_index(["feature_a", "feature_b"])["rho"]
    for row in heat.itertuples(index=False):
        assert row.rho == lookup[(row.feature_a, row.feature_b)]
    assert sorted(heat.drop_duplicates("feature_a")["row_order"]) == [0, 1]
    assert dict(zip(heat["feature_a"], heat["label_a"])) == {"a5": "five", "a2": "a2"}
    capped = strongest_submatrix(table, n_pairs=50, max_features=3)
    assert capped["feature_a"].nunique() == 3 and capped["feature_b"].nunique() == 3
    assert strongest_submatrix(table.iloc[:0]).empty
