"""Tests for gutaxis.differential.reference_shift: the compositional bias (mode of the effects) and the
reference feature that carries its uncertainty."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gutaxis.differential.reference_shift import kernel_mode, reference_feature, robust_bandwidth


def _effects(values):
    return pd.Series(values, index=[f"F{i:04d}" for i in range(len(values))])


def test_mode_recovers_a_known_shift_beside_blooms():
    """90 % of the features sit at the bias -0.3 (noise sd 0.05); 6 % bloom (+2) and 4 % fall
    (-2.5): the mode is the bias, the blooms get no weight."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-0.3, 0.05, 450), rng.normal(2.0, 0.3, 30),
                        rng.normal(-2.5, 0.3, 20)])
    shift = kernel_mode(_effects(x))
    assert shift.shift == pytest.approx(-0.3, abs=0.01)
    # the median is pulled by the asymmetric blooms, the mode is not
    assert abs(np.median(x) + 0.3) > abs(shift.shift + 0.3)
    assert shift.weights.iloc[450:].max() < 1e-6
    assert shift.weights.sum() == pytest.approx(1.0)
    assert shift.n_features == 500 and 300 < shift.n_reference <= 450


def test_mode_is_the_fixed_point_weighted_mean():
    rng = np.random.default_rng(1)
    x = rng.standard_t(3, 300) * 0.2 + 0.1
    shift = kernel_mode(_effects(x))
    w = np.exp(-0.5 * ((x - shift.shift) / shift.bandwidth) ** 2)
    assert shift.shift == pytest.approx(np.dot(w, x) / w.sum(), abs=1e-9)
    assert np.allclose(shift.weights.to_numpy(), w / w.sum(), atol=1e-12)


def test_bandwidth_is_2_11_robust_sds_and_ignores_outliers():
    x = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 100.0])
    mad = np.median(np.abs(x - np.median(x)))  # median 2.5, |dev| -> 1.5
    assert robust_bandwidth(x) == pytest.approx(2.9846 / np.sqrt(2) * 1.4826 * mad)
    assert robust_bandwidth(np.zeros(5)) == pytest.approx(2.9846 / np.sqrt(2))


def test_non_finite_effects_get_no_weight_and_too_few_raise():
    shift = kernel_mode(_effects([0.1, np.nan, 0.12, 0.11, np.inf]))
    assert shift.weights.iloc[[1, 4]].eq(0).all() and shift.n_features == 3
    with pytest.raises(ValueError, match="at least two"):
        kernel_mode(_effects([0.1, np.nan]))


def test_reference_feature_is_the_weighted_mean_and_renormalises_over_missing_values():
    values = pd.DataFrame([[1.0, 2.0, 4.0], [0.0, np.nan, 3.0]], index=["s1", "s2"],
                          columns=["a", "b", "c"])
    weights = pd.Series([0.5, 0.25, 0.25], index=["a", "b", "c"])
    z = reference_feature(values, weights)
    assert z["s1"] == pytest.approx(0.5 * 1 + 0.25 * 2 + 0.25 * 4)
    assert z["s2"] == pytest.approx((0.5 * 0 + 0.25 * 3) / 0.75)


def test_detection_strata_are_equal_count_bins_of_the_detection_rate():
    from gutaxis.differential.contrast import detection_strata

    rng = np.random.default_rng(3)
    rates = np.linspace(0.05, 1.0, 200)
    table = pd.DataFrame((rng.random((400, 200)) < rates).astype(float),
                         columns=[f"F{i:03d}" for i in range(200)])
    strata = detection_strata(table)
    assert strata.nunique() == 4 and strata.value_counts().eq(50).all()
    detected = (table > 0).mean()
    means = detected.groupby(strata.to_numpy()).mean()
    assert means.is_monotonic_increasing  # stratum 0 = least detected
    # too few features for two strata of 50: one stratum
    assert detection_strata(table.iloc[:, :99]).nunique() == 1
    assert detection_strata(table.iloc[:, :100]).nunique() == 2
