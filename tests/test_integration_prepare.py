"""Preparing modalities for integration: per-sample CLR pseudocount, prevalence filter, logit, labels, covariates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gutaxis.io.errors import InputError
from gutaxis.integration.prepare import clr_sample_pseudocount, feature_labels, prepare_for_integration
from gutaxis.io.subject_covariates import subject_covariates


def compositions() -> pd.DataFrame:
    x = pd.DataFrame(
        [[0.5, 0.3, 0.2, 0.0],
         [0.1, 0.0, 0.6, 0.3],
         [0.25, 0.25, 0.5, 0.0],
         [0.4, 0.4, 0.2, 0.0]],
        index=pd.Index(["s1", "s2", "s3", "s4"], name="sample_id"),
        columns=pd.Index(["s__A_one", "s__B_two", "s__C_three", "s__rare"], name="feature_id"),
    )
    return x


def test_clr_with_per_sample_pseudocount_matches_the_formula():
    x = compositions()
    values, c = clr_sample_pseudocount(x, fraction=0.5)
    raw = x.to_numpy()
    expected_c = np.array([0.5 * row[row > 0].min() for row in raw])
    np.testing.assert_allclose(c, expected_c)
    logs = np.log(raw + expected_c[:, None])
    expected = logs - logs.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(values.to_numpy(), expected, atol=1e-12)
    # the pseudocount scales with the sample: multiplying one sample changes nothing
    scaled = x.copy()
    scaled.loc["s1"] *= 1000
    np.testing.assert_allclose(clr_sample_pseudocount(scaled, 0.5)[0].to_numpy(), values.to_numpy(), atol=1e-12)


def test_clr_refuses_an_empty_sample():
    x = compositions()
    x.loc["s2"] = 0.0
    with pytest.raises(InputError, match="s2"):
        clr_sample_pseudocount(x)


def test_taxonomy_is_filtered_closed_and_clr_transformed():
    prepared = prepare_for_integration(compositions(), kind="taxonomy", transform="clr",
                                       min_prevalence=0.5, clr_pseudocount_fraction=0.5)
    assert list(prepared.values.columns) == ["s__A_one", "s__B_two", "s__C_three"]
    dropped = prepared.dropped.set_index("id")
    assert dropped.loc["s__rare", "kind"] == "feature" and "prevalence 0.25 < 0.5" in dropped.loc["s__rare", "reason"]
    np.testing.assert_allclose(prepared.values.sum(axis=1), 0.0, atol=1e-12)
    closed = compositions().drop(columns="s__rare")
    closed = closed.div(closed.sum(axis=1), axis=0)
    np.testing.assert_allclose(prepared.values.to_numpy(), clr_sample_pseudocount(closed, 0.5)[0].to_numpy())
    notes = prepared.notes.set_index("key")["value"]
    assert notes["n_features_out"] == "3" and "CLR" in notes["description"]


def test_immune_percent_of_parent_is_logit_of_the_proportion():
    table = pd.DataFrame({"CD8": [20.0, 50.0, 75.0], "Treg": [5.0, 2.5, 10.0]}, index=["b1", "b2", "b3"])
    prepared = prepare_for_integration(table, kind="immune", transform="logit", units="percent_of_parent")
    p = table.to_numpy() / 100
    np.testing.assert_allclose(prepared.values.to_numpy(), np.log(p / (1 - p)))
    with pytest.raises(InputError, match="log2 for counts"):
        prepare_for_integration(table, kind="immune", transform="logit", units="cells_per_ul")


def test_immune_counts_log2_with_a_recorded_pseudocount_for_zeros():
    table = pd.DataFrame({"NK": [0.0, 100.0, 400.0]}, index=["b1", "b2", "b3"])
    prepared = prepare_for_integration(table, kind="immune", transform="log2", units="cells_per_ul")
    np.testing.assert_allclose(prepared.values["NK"], np.log2(table["NK"] + 50.0))
    assert prepared.notes.set_index("key")["value"]["pseudocount"] == "50"


def test_processed_metabolome_is_left_on_its_scale():
    table = pd.DataFrame({"FT1": [20.1, 21.3], "FT2": [18.0, 17.5]}, index=["m1", "m2"])
    prepared = prepare_for_integration(table, kind="metabolome", transform="none")
    np.testing.assert_array_equal(prepared.values.to_numpy(), table.to_numpy())
    assert prepared.dropped.empty


def test_labels_use_names_and_stay_unique():
    annotations = pd.DataFrame({"name": ["Butyric acid", "", "Bile acid", "Bile acid"]},
                               index=["FT1", "FT2", "FT3", "FT4"])
    labels = feature_labels(["FT1", "FT2", "FT3", "FT4", "FT5"], annotations).set_index("feature_id")["label"]
    assert labels.to_dict() == {"FT1": "Butyric acid", "FT2": "FT2", "FT3": "Bile acid (FT3)",
                                "FT4": "Bile acid (FT4)", "FT5": "FT5"}
    taxa = feature_labels(["s__A_b"], pd.DataFrame({"name": ["A_b"]}, index=["s__A_b"]))
    assert taxa["label"].tolist() == ["A b"]


def test_subject_covariates_type_columns_and_mark_missing():
    subjects = pd.DataFrame({"subject_id": ["S1", "S2", "S3"], "cohort": ["lung", "other", "lung"],
                             "age": ["61", "", "70"]})
    cov = subject_covariates(subjects, ["cohort", "age"], ["S3", "S1", "S2"])
    assert list(cov.index) == ["S3", "S1", "S2"]
    assert cov["age"].dtype == float and np.isnan(cov.loc["S2", "age"]) and cov.loc["S3", "age"] == 70.0
    assert cov["cohort"].tolist() == ["lung", "lung", "other"]
    with pytest.raises(InputError, match="'dose_gy'"):
        subject_covariates(subjects, ["dose_gy"], ["S1"])


def test_rclr_compositions_are_integrated_as_complete_clr():
    """A modality declared rclr (for differential testing) still gives complete data here."""
    clr = prepare_for_integration(compositions(), kind="taxonomy", transform="clr",
                                  min_prevalence=0.5, clr_pseudocount_fraction=0.5)
    rclr = prepare_for_integration(compositions(), kind="taxonomy", transform="rclr",
                                   min_prevalence=0.5, clr_pseudocount_fraction=0.5)
    assert np.isfinite(rclr.values.to_numpy()).all()
    np.testing.assert_array_equal(rclr.values.to_numpy(), clr.values.to_numpy())
    assert "replaced" in rclr.notes.set_index("key")["value"]["description"]
