"""Imputation, normalisation, transforms, scaling and batch centring, on hand-made matrices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import KNNImputer

from gutaxis.metabolome.impute import impute_half_minimum, impute_knn, impute_lod_fraction
from gutaxis.metabolome.normalise import (
    auto_scale,
    batch_median_centre,
    log2_transform,
    median_normalise,
    pareto_scale,
    pqn_normalise,
    total_signal_normalise,
)

NA = np.nan


def frame(values, rows=None, columns=None) -> pd.DataFrame:
    values = np.asarray(values, dtype=float)
    rows = rows or [f"s{i}" for i in range(values.shape[0])]
    columns = columns or [f"f{j}" for j in range(values.shape[1])]
    return pd.DataFrame(values, index=rows, columns=columns)


# --- imputation -----------------------------------------------------------------------


def test_half_minimum_by_hand():
    x = frame([[4, NA, 7], [NA, 10, 7], [2, 6, 7]])
    out = impute_half_minimum(x)
    assert out.loc["s1", "f0"] == 1.0
    assert out.loc["s0", "f1"] == 3.0
    assert out.loc["s2", "f0"] == 2.0  # observed values untouched
    assert not out.isna().to_numpy().any()
    assert x.isna().to_numpy().sum() == 2  # input not modified


def test_lod_fraction_uses_given_lod_else_minimum():
    x = frame([[4, NA, NA], [NA, 10, 8], [2, 6, 9]])
    lod = pd.Series({"f0": 10.0, "f2": NA})
    out = impute_lod_fraction(x, fraction=0.2, lod=lod)
    assert out.loc["s1", "f0"] == pytest.approx(2.0)  # 0.2 x given LOD 10
    assert out.loc["s0", "f1"] == pytest.approx(1.2)  # no LOD: 0.2 x minimum 6
    assert out.loc["s0", "f2"] == pytest.approx(1.6)  # NaN LOD: 0.2 x minimum 8
    with pytest.raises(ValueError, match="fraction"):
        impute_lod_fraction(x, fraction=0)


def test_imputers_refuse_all_missing_feature():
    x = frame([[1, NA], [2, NA]])
    for impute in (impute_half_minimum, impute_knn):
        with pytest.raises(ValueError, match="no observed value"):
            impute(x)


def test_knn_equals_sklearn():
    rng = np.random.default_rng(7)
    values = rng.lognormal(3, 1, size=(25, 12))
    values[rng.random(values.shape) < 0.2] = np.nan
    x = frame(values)
    expected = KNNImputer(n_neighbors=4).fit_transform(values)
    out = impute_knn(x, k=4)
    np.testing.assert_array_equal(out.to_numpy(), expected)
    assert list(out.index) == list(x.index) and list(out.columns) == list(x.columns)


# --- normalisation --------------------------------------------------------------------


@pytest.fixture
def spectra():
    rng = np.random.default_rng(11)
    n_features = 30
    reference = rng.lognormal(4, 1.5, n_features)
    qc = reference * rng.lognormal(0, 0.1, size=(5, n_features))
    study = reference * rng.lognormal(0, 0.6, size=(12, n_features))
    x = frame(np.vstack([study, qc]))
    qc_mask = np.r_[np.zeros(12, bool), np.ones(5, bool)]
    return x, qc_mask


def test_pqn_factors_equal_planted_dilution():
    reference = np.array([1.0, 4.0, 9.0, 2.0, 5.0])
    qc = np.vstack([0.5 * reference, reference, 2.0 * reference])  # median per feature = reference
    dilutions = np.array([0.25, 1.0, 3.0])
    study = dilutions[:, None] * reference
    study[0, 4] *= 50.0  # a changed metabolite: 2 of 5 quotients may move without moving the median
    study[2, 1] *= 0.01
    x = frame(np.vstack([study, qc]))
    normalised, factors = pqn_normalise(x, "qc", np.r_[False, False, False, True, True, True])
    np.testing.assert_array_equal(factors.to_numpy()[:3], dilutions)
    np.testing.assert_array_equal(factors.to_numpy()[3:], [0.5, 1.0, 2.0])
    np.testing.assert_allclose(normalised.iloc[1].to_numpy(), reference)
    assert factors.name == "dilution_factor"


def test_pqn_recovers_dilution_of_a_diluted_copy(spectra):
    x, qc_mask = spectra
    dilution = np.r_[np.linspace(0.3, 3.0, 12), np.ones(5)]
    diluted = x.mul(dilution, axis=0)
    norm_x, factors_x = pqn_normalise(x, "qc", qc_mask)
    norm_d, factors_d = pqn_normalise(diluted, "qc", qc_mask)
    np.testing.assert_allclose(factors_d / factors_x, dilution, rtol=1e-12)
    np.testing.assert_allclose(norm_d.to_numpy(), norm_x.to_numpy(), rtol=1e-12)


def test_pqn_median_reference_by_hand(spectra):
    x, qc_mask = spectra
    values = x.to_numpy()
    ref = np.median(values[~qc_mask], axis=0)
    expected = np.median(values / ref, axis=1)
    _, factors = pqn_normalise(x, "median", qc_mask)
    np.testing.assert_allclose(factors.to_numpy(), expected, rtol=1e-14)
    _, explicit = pqn_normalise(x, pd.Series(ref, index=x.columns))
    np.testing.assert_allclose(explicit.to_numpy(), expected, rtol=1e-14)
    with pytest.raises(ValueError, match="qc_mask"):
        pqn_normalise(x, "qc")


def test_total_signal_and_median_normalisation(spectra):
    x, _ = spectra
    by_total, f_total = total_signal_normalise(x)
    totals = x.sum(axis=1)
    np.testing.assert_allclose(by_total.sum(axis=1), np.median(totals), rtol=1e-12)
    np.testing.assert_allclose(f_total, totals / np.median(totals), rtol=1e-12)
    by_median, _ = median_normalise(x)
    row_medians = by_median.median(axis=1).to_numpy()
    np.testing.assert_allclose(row_medians, row_medians[0], rtol=1e-12)


# --- transform and scaling ------------------------------------------------------------


def test_log2_transform():
    out = log2_transform(frame([[1, 8, NA], [0.5, 1024, 2]]))
    np.testing.assert_array_equal(out.to_numpy(), [[0, 3, NA], [-1, 10, 1]])
    with pytest.raises(ValueError, match="positive"):
        log2_transform(frame([[0.0, 1.0]]))


def test_pareto_and_auto_scaling_by_hand():
    x = frame([[1, 10], [2, 10], [3, 40], [6, 20]])
    sd = x.std(ddof=1)
    auto = auto_scale(x)
    np.testing.assert_allclose(auto.mean(), 0, atol=1e-12)
    np.testing.assert_allclose(auto.std(ddof=1), 1, rtol=1e-12)
    pareto = pareto_scale(x)
    np.testing.assert_allclose(pareto.std(ddof=1), np.sqrt(sd), rtol=1e-12)
    assert pareto.loc["s0", "f0"] == pytest.approx((1 - 3) / np.sqrt(np.std([1, 2, 3, 6], ddof=1)))


def test_scaling_fitted_on_subset_applies_to_all_rows():
    x = frame([[1, 5], [3, 5], [100, 9]])
    fit = np.array([True, True, False])
    out = auto_scale(x, fit_rows=fit)
    # f0: mean 2, sd sqrt(2) over the first two rows; f1 constant there -> only centred
    np.testing.assert_allclose(out["f0"], (np.array([1, 3, 100]) - 2) / np.sqrt(2))
    np.testing.assert_allclose(out["f1"], [0, 0, 4])


# --- batch centring -------------------------------------------------------------------


@pytest.fixture
def batched():
    rng = np.random.default_rng(5)
    batches = pd.Series(np.repeat(["b1", "b2", "b3"], 8), index=[f"s{i}" for i in range(24)])
    shift = batches.map({"b1": 0.0, "b2": 1.5, "b3": -2.0}).to_numpy()[:, None]
    x = frame(rng.normal(10, 1, size=(24, 6)) + shift)
    qc_mask = np.tile([True, False, False, True, False, False, True, False], 3)
    return x, batches, qc_mask


def test_batch_centring_on_qc_equalises_qc_medians(batched):
    x, batches, qc_mask = batched
    out = batch_median_centre(x, batches, "qc", qc_mask)
    qc_medians = out[qc_mask].groupby(batches[qc_mask].to_numpy()).median()
    target = x[qc_mask].median()
    for batch in qc_medians.index:
        np.testing.assert_allclose(qc_medians.loc[batch], target, rtol=1e-12)
    # one shift per batch and feature: within-batch differences are unchanged
    diff = (out - x).to_numpy()
    for batch in ("b1", "b2", "b3"):
        rows = (batches == batch).to_numpy()
        np.testing.assert_allclose(diff[rows], np.tile(diff[rows][0], (rows.sum(), 1)), atol=1e-12)


def test_batch_centring_on_all_samples(batched):
    x, batches, _ = batched
    out = batch_median_centre(x, batches, "all")
    medians = out.groupby(batches.to_numpy()).median()
    np.testing.assert_allclose(medians.to_numpy(), np.tile(x.median().to_numpy(), (3, 1)), rtol=1e-12)


def test_batch_centring_needs_qc_in_every_batch(batched):
    x, batches, qc_mask = batched
    qc_mask = qc_mask & (batches != "b2").to_numpy()
    with pytest.raises(ValueError, match="b2"):
        batch_median_centre(x, batches, "qc", qc_mask)
