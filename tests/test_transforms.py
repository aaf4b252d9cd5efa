"""Tests for gutaxis.differential.transforms: per-modality transforms before differential testing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gutaxis.io.errors import InputError
from gutaxis.differential.transforms import (clr_transform, log2_transform, logit_transform, rclr_transform,
                                transform_table)


@pytest.fixture
def composition():
    table = pd.DataFrame([[0.5, 0.3, 0.2, 0.0],
                          [0.1, 0.0, 0.6, 0.3],
                          [0.25, 0.25, 0.25, 0.25]],
                         index=pd.Index(["s1", "s2", "s3"], name="sample_id"),
                         columns=pd.Index(["a", "b", "c", "d"], name="feature_id"))
    return table


def test_clr_half_min_pseudocount_matches_textbook_formula(composition):
    res = clr_transform(composition)
    c = 0.05  # half of the smallest non-zero value, 0.1
    assert res.parameters["pseudocount"] == pytest.approx(c)
    logs = np.log(composition.to_numpy() + c)
    expected = logs - logs.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(res.values.to_numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(res.values.sum(axis=1), 0, atol=1e-12)
    assert "0.05" in res.description and res.log_base == pytest.approx(np.e)
    assert list(res.values.index) == ["s1", "s2", "s3"]


def test_clr_fixed_pseudocount_and_scale_invariance(composition):
    counts = composition * 1000
    a = clr_transform(composition, pseudocount=1e-3).values
    b = clr_transform(counts, pseudocount=1.0).values  # same pseudocount relative to scale
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), atol=1e-12)


def test_rclr_uses_only_non_zero_parts(composition):
    res = rclr_transform(composition)
    out = res.values.to_numpy()
    assert np.isnan(out[0, 3]) and np.isnan(out[1, 1])
    row = np.log(np.array([0.1, 0.6, 0.3]))
    np.testing.assert_allclose(out[1, [0, 2, 3]], row - row.mean(), atol=1e-12)
    assert res.parameters["n_zero"] == 2


def test_log2_keeps_missing_and_doubling_is_one_unit():
    table = pd.DataFrame({"m1": [1.0, 2.0, np.nan], "m2": [8.0, 16.0, 4.0]},
                         index=["s1", "s2", "s3"])
    res = log2_transform(table)
    np.testing.assert_allclose(res.values["m2"], [3, 4, 2])
    assert np.isnan(res.values.loc["s3", "m1"])
    assert res.values.loc["s2", "m1"] - res.values.loc["s1", "m1"] == pytest.approx(1.0)
    assert res.log_base == 2.0


def test_log2_zero_without_pseudocount_is_a_clear_input_error():
    table = pd.DataFrame({"m1": [1.0, 0.0], "m2": [1.0, 2.0]}, index=["s1", "s2"])
    with pytest.raises(InputError) as err:
        log2_transform(table, file="metabolome.tsv")
    text = str(err.value)
    assert "metabolome.tsv" in text and "m1" in text and "pseudocount" in text
    np.testing.assert_allclose(log2_transform(table, pseudocount=1.0).values["m1"], [1.0, 0.0])


def test_logit_percent_clipping_and_symmetry():
    table = pd.DataFrame({"cd8": [0.0, 20.0, 50.0, 80.0, 100.0],
                          "treg": [1.0, 2.0, np.nan, 4.0, 5.0]})
    res = logit_transform(table, percent=True)
    eps = 0.5 * 0.01  # smallest positive p (and 1 - p) is 0.01 (1 %)
    assert res.parameters["epsilon"] == pytest.approx(eps)
    assert res.parameters["n_clipped"] == 2
    v = res.values["cd8"].to_numpy()
    assert v[0] == pytest.approx(np.log(eps / (1 - eps)))
    np.testing.assert_allclose(v, -v[::-1], atol=1e-12)  # logit(1-p) = -logit(p)
    assert v[2] == pytest.approx(0.0)
    assert v[1] == pytest.approx(np.log(0.2 / 0.8))
    assert np.isnan(res.values["treg"].iloc[2])
    assert "clipped" in res.description and "2 value(s)" in res.description


def test_logit_rejects_values_outside_the_declared_units():
    table = pd.DataFrame({"cd4": [0.2, 35.0]})
    with pytest.raises(InputError) as err:
        logit_transform(table, percent=False, file="immune.tsv")
    assert "immune.tsv" in str(err.value) and "cd4" in str(err.value)


def test_clr_rejects_negative_and_missing_values_naming_features():
    table = pd.DataFrame({"x": [0.5, -0.1], "y": [0.5, np.nan]}, index=["s1", "s2"])
    with pytest.raises(InputError) as err:
        clr_transform(table, file="taxa.tsv")
    text = str(err.value)
    assert "taxa.tsv" in text and "'x'" in text and "'y'" in text
    assert len(err.value.problems) == 2  # both problems reported together


def test_transform_table_dispatch_and_unknown_name(composition):
    np.testing.assert_allclose(transform_table(composition, "none").values, composition)
    assert transform_table(composition, "clr").name == "clr"
    with pytest.raises(InputError, match="unknown transform"):
        transform_table(composition, "sqrt")


def test_processed_log2_metabolome_values_get_a_fold_change_of_two_to_the_effect():
    """Issue 17 (tables): processed metabolome values are log2 already (transform none), so a
    difference of d is a 2^d fold change on the original intensities."""
    from gutaxis.differential.transforms import as_processed_log2, transform_table

    table = pd.DataFrame({"m1": [3.0, 5.0], "m2": [np.nan, 1.0]}, index=["s1", "s2"])
    plain = transform_table(table, "none")
    assert plain.log_base is None
    tr = as_processed_log2(plain)
    assert tr.log_base == 2.0 and tr.name == "log2 (processed)"
    pd.testing.assert_frame_equal(tr.values, plain.values)
    assert "log2" in tr.description
