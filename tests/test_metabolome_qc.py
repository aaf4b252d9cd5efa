"""QC tables of metabolomics processing: PCA, dispersion, RSD, missingness, total signal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist
from sklearn.decomposition import PCA

from gutaxis.metabolome.qc import (
    PCA_COLUMNS,
    missingness_per_feature,
    missingness_per_sample,
    qc_pca,
    rsd_table,
    total_signal_table,
)

NA = np.nan


def _log_table(n_study=20, n_qc=6, n_features=15, qc_spread=0.05, seed=2):
    rng = np.random.default_rng(seed)
    centre = rng.normal(10, 2, n_features)
    study = centre + rng.normal(0, 1, size=(n_study, n_features))
    qc = centre + rng.normal(0, qc_spread, size=(n_qc, n_features))
    ids = [f"s{i}" for i in range(n_study)] + [f"q{i}" for i in range(n_qc)]
    x = pd.DataFrame(np.vstack([study, qc]), index=ids, columns=[f"f{j}" for j in range(n_features)])
    types = pd.Series(["stool"] * n_study + ["qc"] * n_qc, index=ids)
    return x, types


@pytest.mark.parametrize("shape", [(26, 15), (26, 60)])  # both Gram-matrix branches
def test_qc_pca_matches_sklearn(shape):
    x, types = _log_table(n_features=shape[1])
    scores, _ = qc_pca(x, types, "after")
    assert list(scores.columns) == PCA_COLUMNS
    z = (x - x.mean()) / x.std(ddof=1)
    reference = PCA(n_components=2).fit(z.to_numpy())
    expected = reference.transform(z.to_numpy())
    for k, column in enumerate(["pc1", "pc2"]):
        sign = np.sign(np.dot(scores[column], expected[:, k]))
        np.testing.assert_allclose(scores[column].to_numpy(), sign * expected[:, k], atol=1e-8)
    np.testing.assert_allclose(
        scores[["pc1_variance_pct", "pc2_variance_pct"]].iloc[0].to_numpy(),
        100 * reference.explained_variance_ratio_, rtol=1e-10,
    )
    assert set(scores["stage"]) == {"after"}
    assert list(scores["sample_type"].iloc[-6:]) == ["qc"] * 6


def test_qc_pca_ignores_incomplete_and_constant_features():
    x, types = _log_table()
    with_extra = x.assign(gap=np.r_[NA, np.ones(len(x) - 1)], flat=5.0)
    a, da = qc_pca(x, types, "before")
    b, db = qc_pca(with_extra, types, "before")
    np.testing.assert_allclose(a[["pc1", "pc2"]].to_numpy(), b[["pc1", "pc2"]].to_numpy())
    assert da["n_features"].iloc[0] == db["n_features"].iloc[0] == 15


def test_dispersion_ratio_by_direct_distances():
    x, types = _log_table(qc_spread=0.1)
    _, dispersion = qc_pca(x, types, "after")
    z = ((x - x.mean()) / x.std(ddof=1)).to_numpy()
    qc, study = z[(types == "qc").to_numpy()], z[(types != "qc").to_numpy()]
    expected_qc = np.median(cdist(qc, qc.mean(axis=0, keepdims=True)))
    expected_study = np.median(cdist(study, study.mean(axis=0, keepdims=True)))
    row = dispersion.iloc[0]
    assert row["qc_median_distance"] == pytest.approx(expected_qc, rel=1e-12)
    assert row["dispersion_ratio"] == pytest.approx(expected_qc / expected_study, rel=1e-12)
    assert row["dispersion_ratio"] < 0.2  # tight QC pools
    _, loose = qc_pca(*_log_table(qc_spread=1.0), "after")
    assert loose["dispersion_ratio"].iloc[0] > 0.5


def test_rsd_table():
    x = pd.DataFrame({"a": [1, 2, 3, 100.0], "b": [4, NA, 4, 1.0]}, index=["q1", "q2", "q3", "s1"])
    table = rsd_table(x, [True, True, True, False], "before")
    assert table["rsd"].tolist() == [0.5, 0.0]
    assert table["n_qc"].tolist() == [3, 2]


def test_missingness_tables_by_hand():
    x = pd.DataFrame(
        {"a": [NA, 1, NA, 1, 1], "b": [1, 1, 1, NA, NA]}, index=["s1", "s2", "s3", "q1", "b1"]
    )
    types = pd.Series(["stool", "stool", "stool", "qc", "blank"], index=x.index)
    groups = pd.Series(["pre", "post", "pre", NA, NA], index=x.index)
    per_sample = missingness_per_sample(x, types, "raw")
    assert per_sample.set_index("sample_id")["n_missing"].to_dict() == {"s1": 1, "s2": 0, "s3": 1, "q1": 1, "b1": 1}
    per_feature = missingness_per_feature(x, types, groups).set_index(["feature_id", "sample_set"])
    assert per_feature.loc[("a", "all injections"), "n_missing"] == 2
    assert per_feature.loc[("a", "study samples"), "fraction_missing"] == pytest.approx(2 / 3)
    assert per_feature.loc[("a", "group=pre"), "fraction_missing"] == 1.0
    assert per_feature.loc[("a", "group=post"), "n_missing"] == 0
    assert per_feature.loc[("b", "qc"), "n_missing"] == 1
    assert per_feature.loc[("b", "blank"), "n_samples"] == 1


def test_total_signal_in_run_order():
    raw = pd.DataFrame({"a": [1.0, NA, 3.0], "b": [10.0, 20.0, 30.0]}, index=["s1", "q1", "s2"])
    sheet = pd.DataFrame(
        {"sample_type": ["stool", "qc", "stool"], "batch": ["1", "1", "2"], "injection_order": [3, 1, 2]},
        index=raw.index,
    )
    processed = pd.DataFrame({"a": [2.0, 2.0], "b": [5.0, 6.0]}, index=["s2", "s1"])
    table = total_signal_table(raw, sheet, processed)
    assert table["sample_id"].tolist() == ["q1", "s2", "s1"]
    assert table["total_signal_raw"].tolist() == [20.0, 33.0, 11.0]
    assert table["n_detected"].tolist() == [1, 2, 2]
    assert table["total_signal_processed"].iloc[1:].tolist() == [7.0, 8.0]
    assert np.isnan(table["total_signal_processed"].iloc[0])


def test_truncated_pca_path_equals_full_svd():
    from gutaxis.metabolome.qc import _autoscaled, _top_components

    x, _ = _log_table(n_study=40, n_features=30)
    z = _autoscaled(x)
    exact_scores, exact_fractions = _top_components(z, 2)
    arpack_scores, arpack_fractions = _top_components(z, 2, exact_limit=0)
    np.testing.assert_allclose(arpack_scores, exact_scores, atol=1e-8)
    np.testing.assert_allclose(arpack_fractions, exact_fractions, rtol=1e-10)
