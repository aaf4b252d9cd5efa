"""Issue 19: landmarks of on-treatment feature sets and grouped / external validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gutaxis.models.landmark import DAYS_PER_MONTH, sample_months, set_landmark, time_since_landmark
from gutaxis.models.features import EXCLUSION_COLUMNS, NON_RESPONDER, RESPONDER, ModelData
from gutaxis.models.pipeline import Block, PipelineOptions
from gutaxis.models.survival import biomarker_survival
from gutaxis.models.fit import (CVSettings, group_performance, nested_cv, outer_splits, performance_row,
                            permuted_labels)
from test_models import GRIDS


def test_sample_months_from_days_or_dates():
    samples = pd.DataFrame({"sample_id": ["a", "b", "c"], "subject_id": ["S1", "S1", "S2"],
                            "collection_date": ["2021-01-01", "2021-03-02", ""]})
    subjects = pd.DataFrame({"subject_id": ["S1", "S2"], "treatment_start": ["2021-01-01", "2021-02-01"]})
    months = sample_months(samples, subjects)
    assert months["a"] == 0.0 and months["b"] == pytest.approx(60 / DAYS_PER_MONTH)
    assert np.isnan(months["c"])
    with_days = samples.assign(days_from_start=["-3", "42", ""])
    assert sample_months(with_days, subjects).tolist()[:2] == pytest.approx([-3 / DAYS_PER_MONTH,
                                                                            42 / DAYS_PER_MONTH])
    assert sample_months(samples, subjects.drop(columns="treatment_start")).isna().all()


def test_landmark_excludes_follow_up_ending_before_it_and_late_samples():
    months = pd.Series({"p1": 1.0, "p2": 1.2, "p3": 1.4})
    post = pd.DataFrame({"sample_id": ["p1", "p2", "p3"], "subject_id": ["S1", "S2", "S3"]})
    subjects = pd.DataFrame({"subject_id": ["S1", "S2", "S3", "S4"],
                             "t": ["0.9", "1.4", "5.0", "1.3"], "e": ["1", "0", "1", "1"]})
    auto = set_landmark(months, post, subjects, time_column="t", event_column="e")
    assert auto.months == 1.4 and auto.source == "latest on-treatment sample"
    # S2 censored at the landmark itself: not at risk after it
    assert set(auto.excluded["subject_id"]) == {"S1", "S2", "S4"}
    assert auto.excluded.set_index("subject_id").loc["S2", "reason"].startswith("censored at 1.40")
    fixed = set_landmark(months, post, subjects, time_column="t", event_column="e", months=1.1)
    reasons = fixed.excluded.set_index("subject_id")["reason"]
    assert set(reasons.index) == {"S1", "S2", "S3"}  # S2, S3 sampled after 1.1 months
    assert reasons["S3"].startswith("on-treatment sample at 1.40 months, after the landmark")
    np.testing.assert_allclose(time_since_landmark([0.5, 2.0], 1.4), [np.nan, 0.6])


def test_biomarker_cox_counts_time_from_the_landmark():
    rng = np.random.default_rng(5)
    n = 50
    subjects = pd.DataFrame({"subject_id": [f"S{i}" for i in range(n)], "cohort": "a",
                             "t": rng.exponential(6, n) + 0.2, "e": (rng.random(n) < 0.8).astype(int)})
    values = pd.DataFrame({"m": rng.normal(size=n)}, index=subjects["subject_id"])
    plain, _ = biomarker_survival(values, subjects, time_column="t", event_column="e", covariates=())
    late, _ = biomarker_survival(values, subjects, time_column="t", event_column="e", covariates=(),
                                 landmark_months=1.5)
    before = int((subjects["t"] <= 1.5).sum())
    assert late.loc[0, "n_before_landmark"] == before and late.loc[0, "n"] == n - before
    assert late.loc[0, "landmark_months"] == 1.5 and np.isnan(plain.loc[0, "landmark_months"])
    # the Cox model of the landmark set equals one fitted on T - L of the subjects at risk
    kept = subjects[subjects["t"] > 1.5]
    direct, _ = biomarker_survival(values.loc[kept["subject_id"]], kept.assign(t=kept["t"] - 1.5),
                                   time_column="t", event_column="e", covariates=())
    assert late.loc[0, "hr_per_sd"] == pytest.approx(direct.loc[0, "hr_per_sd"], rel=1e-12)


def grouped_data(n_groups=4, per_group=24, p=150, informative=0, effect=1.0, seed=0) -> ModelData:
    """Groups (cohorts) with their own response rate and their own feature offsets."""
    rng = np.random.default_rng(seed)
    group = np.repeat([f"C{g}" for g in range(n_groups)], per_group)
    rate = np.repeat(rng.uniform(0.3, 0.7, n_groups), per_group)
    y = (rng.random(group.size) < rate).astype(int)
    for g in np.unique(group):  # both classes in every group
        members = np.flatnonzero(group == g)
        y[members[:2]] = [0, 1]
    X = rng.normal(size=(group.size, p)) + rng.normal(0, 1, (n_groups, p))[np.unique(group, return_inverse=True)[1]]
    X[:, :informative] += effect * y[:, None]
    rows = pd.DataFrame({"subject_id": [f"S{i:03d}" for i in range(group.size)], "cohort": group,
                         "timepoint": "baseline", "label": np.where(y == 1, RESPONDER, NON_RESPONDER)})
    block = Block("omics", "omics", "omics", tuple(range(p)), tuple(f"f{j:03d}" for j in range(p)))
    return ModelData("sim", X, y, rows, [block], "concatenate", "baseline",
                     pd.DataFrame(columns=EXCLUSION_COLUMNS), None, group.astype(object))


def test_grouped_and_external_splits():
    data = grouped_data()
    logo = CVSettings(validation="leave_one_group_out")
    splits = outer_splits(data.y, data.groups, logo, 0, False, data.validation_groups)
    assert len(splits) == 4 and logo.repeats == 1
    for train, test in splits:
        assert len(set(data.validation_groups[test])) == 1
        assert not set(data.validation_groups[train]) & set(data.validation_groups[test])
    external = CVSettings(validation="external", train_groups=("C0", "C1"), test_groups=("C3",))
    (train, test), = outer_splits(data.y, data.groups, external, 0, False, data.validation_groups)
    assert set(data.validation_groups[train]) == {"C0", "C1"}
    assert set(data.validation_groups[test]) == {"C3"}
    rest = CVSettings(validation="external", train_groups=("C0",))
    (_, test), = outer_splits(data.y, data.groups, rest, 0, False, data.validation_groups)
    assert set(data.validation_groups[test]) == {"C1", "C2", "C3"}


def test_labels_permute_within_groups():
    data = grouped_data(seed=2)
    for index in range(5):
        permuted = permuted_labels(data.y, data.groups, seed=1, index=index, strata=data.validation_groups)
        for g in np.unique(data.validation_groups):
            members = data.validation_groups == g
            assert permuted[members].sum() == data.y[members].sum()
    assert not np.array_equal(permuted, data.y)


@pytest.mark.parametrize("design", ["stratified", "leave_one_group_out", "external"])
def test_random_labels_centre_on_half_under_every_design(design):
    """No leakage: random labels give AUROC near 0.5 whatever the validation design (the
    groups differ in their features and response rates, the trap of pooled CV)."""
    options = PipelineOptions(max_features_per_block=20, grids=GRIDS)
    settings = CVSettings(outer_folds=4, outer_repeats=1, inner_folds=3, seed=3, validation=design,
                          train_groups=("C0", "C1") if design == "external" else ())
    values = []
    for seed in range(12):
        data = grouped_data(seed=seed)
        result = nested_cv(data, "l1_logistic", options, settings)
        values.append(performance_row(result)["auroc_mean"])
    assert 0.42 <= np.mean(values) <= 0.58


def test_group_table_and_planted_signal_transfers_across_groups():
    data = grouped_data(informative=5, effect=1.5, seed=7)
    options = PipelineOptions(max_features_per_block=20, grids=GRIDS)
    settings = CVSettings(validation="leave_one_group_out", inner_folds=3, seed=7)
    result = nested_cv(data, "l1_logistic", options, settings)
    groups = group_performance(result)
    assert list(groups["group"]) == ["C0", "C1", "C2", "C3"]
    assert (groups["auroc"] > 0.7).all()
    assert (groups["auroc_low"] <= groups["auroc"]).all() and (groups["auroc"] <= groups["auroc_high"]).all()
    assert (groups["auroc_low"] < groups["auroc"]).any()
    row = performance_row(result)
    assert row["validation"] == "leave_one_group_out" and row["n_groups"] == 4
    assert row["auroc_group_mean"] == pytest.approx(groups["auroc"].mean())
    assert row["auroc_group_sd"] == pytest.approx(groups["auroc"].std(ddof=1))
    assert (result.predictions["validation_group"] == data.validation_groups[
        pd.Index(data.rows["subject_id"]).get_indexer(result.predictions["subject_id"])]).all()
