"""Prevalence / mean-abundance filter: hand-worked example, real data, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gutaxis.io.errors import InputError
from gutaxis.diversity.filtering import filter_features


def small_table():
    # 4 samples x 4 features; relative abundances
    return pd.DataFrame(
        [[0.50, 0.30, 0.20, 0.00],
         [0.60, 0.00, 0.39, 0.01],
         [0.70, 0.00, 0.30, 0.00],
         [0.00, 0.00, 0.00, 0.00]],
        index=pd.Index(["s1", "s2", "s3", "s4"], name="sample_id"),
        columns=pd.Index(["A", "B", "C", "D"], name="feature_id"))


def test_hand_worked_prevalence_filter_and_renormalisation():
    result = filter_features(small_table(), min_prevalence=0.5, min_mean_abundance=0.0)
    # prevalence over all 4 samples: A 3/4, B 1/4, C 3/4, D 1/4
    assert list(result.table.columns) == ["A", "C"]
    dropped = result.dropped_features.set_index("feature_id")
    assert list(dropped.index) == ["B", "D"]
    assert dropped.loc["B", "prevalence"] == pytest.approx(0.25)
    assert dropped.loc["B", "reason"] == "prevalence 0.25 < 0.5"
    # s4 is empty from the start; it is listed, not silently lost
    assert result.dropped_samples.to_dict("records") == [
        {"sample_id": "s4", "reason": "sample has no abundance (all zero)"}]
    np.testing.assert_allclose(result.table.sum(axis=1), 1.0)
    assert result.table.loc["s1", "A"] == pytest.approx(0.5 / 0.7)
    renorm = result.renormalisation.set_index("sample_id")
    assert renorm.loc["s1", "retained_fraction"] == pytest.approx(0.7)
    assert renorm.loc["s2", "retained_fraction"] == pytest.approx(0.99)
    assert renorm["renormalised"].all()


def test_mean_abundance_filter_is_on_the_relative_scale_and_reasons_combine():
    counts = pd.DataFrame([[90, 9, 1], [80, 18, 2], [70, 30, 0]], index=["a", "b", "c"],
                          columns=["x", "y", "z"])
    result = filter_features(counts, min_prevalence=0.8, min_mean_abundance=0.02, renormalise=False)
    # z: prevalence 2/3, mean relative abundance (0.01 + 0.02 + 0) / 3 = 0.01
    row = result.dropped_features.set_index("feature_id").loc["z"]
    assert row["mean_abundance"] == pytest.approx(0.01)
    assert row["reason"] == "prevalence 0.666667 < 0.8; mean abundance 0.01 < 0.02"
    # not renormalised: the kept counts are untouched
    assert result.table.loc["a", "x"] == 90
    assert not result.renormalisation["renormalised"].any()


def test_detection_limit_and_sample_emptied_by_the_filter():
    table = pd.DataFrame([[0.5, 0.5, 0.0], [0.6, 0.4, 0.0], [0.0, 0.0, 1.0]], index=["a", "b", "c"],
                         columns=["x", "y", "z"])
    result = filter_features(table, min_prevalence=0.5, detection_limit=0.45)
    # above 0.45: x in a, b (2/3); y in a (1/3); z in c (1/3)
    assert list(result.table.columns) == ["x"]
    assert result.dropped_samples.to_dict("records") == [
        {"sample_id": "c", "reason": "no abundance left after feature filtering"}]
    assert list(result.table.index) == ["a", "b"]


def test_bad_input_names_the_problem():
    table = small_table()
    table.loc["s2", "B"] = -1.0
    table.loc["s3", "C"] = np.nan
    with pytest.raises(InputError) as err:
        filter_features(table, source="taxa.tsv")
    message = str(err.value)
    assert "taxa.tsv" in message and "(sample s2, feature B)" in message and "2 cells" in message
    with pytest.raises(InputError, match="min_prevalence"):
        filter_features(small_table(), min_prevalence=1.5)
    with pytest.raises(InputError, match="no feature"):
        filter_features(small_table(), min_prevalence=1.0)


def test_real_hmp2_species_table_matches_an_independent_computation(shared_data):
    raw = pd.read_csv(shared_data / "hmp2_maaslin2" / "HMP2_taxonomy.tsv", sep="\t", index_col=0)
    result = filter_features(raw, min_prevalence=0.1, min_mean_abundance=1e-3)
    relative = raw.div(raw.sum(axis=1), axis=0)
    expected = raw.columns[((raw > 0).mean() >= 0.1) & (relative.mean() >= 1e-3)]
    assert list(result.table.columns) == list(expected)
    assert len(result.dropped_features) == raw.shape[1] - len(expected)
    assert 0 < len(expected) < raw.shape[1]
    np.testing.assert_allclose(result.table.sum(axis=1), 1.0)
    kept = result.renormalisation.set_index("sample_id")
    np.testing.assert_allclose(kept["retained_fraction"],
                               (raw[expected].sum(axis=1) / raw.sum(axis=1)).loc[kept.index].to_numpy())
