"""Feature filters of metabolomics processing, on hand-made matrices."""

from __future__ import annotations

import statistics

import numpy as np
import pandas as pd
import pytest

from gutaxis.metabolome.filters import (
    REASON_ALL_MISSING,
    REASON_BLANK,
    REASON_FEW_QC,
    REASON_MISSING,
    REASON_RSD,
    all_missing_filter,
    blank_filter,
    missing_fraction,
    missingness_filter,
    qc_rsd,
    rsd_filter,
)

NA = np.nan


def frame(rows: dict, columns) -> pd.DataFrame:
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns)


# --- blank filter -------------------------------------------------------------------


@pytest.fixture
def blank_data():
    # f_equal: sample median 30 == 3 x blank median 10 -> dropped (strict >)
    # f_above: sample median 31 > 30 -> kept
    # f_noblank: never in blanks -> kept
    # f_qc_only: QC pools are high but study samples low -> dropped (QCs ignored)
    # f_none: not detected in study samples -> dropped
    columns = ["f_equal", "f_above", "f_noblank", "f_qc_only", "f_none"]
    x = frame(
        {
            "s1": [30, 31, 5, 1, NA],
            "s2": [29, 31, 6, 1, NA],
            "s3": [31, 40, NA, 1, NA],
            "q1": [1000, 1000, 1000, 1000, 7],
            "b1": [10, 10, NA, 1, 1],
            "b2": [9, 9, NA, 1, 1],
            "b3": [11, 11, NA, 1, 1],
        },
        columns,
    )
    types = pd.Series(["stool"] * 3 + ["qc"] + ["blank"] * 3, index=x.index)
    return x, types


def test_blank_filter_boundary_is_strict(blank_data):
    x, types = blank_data
    result = blank_filter(x, types, fold=3.0)
    assert result.keep.to_dict() == {
        "f_equal": False, "f_above": True, "f_noblank": True, "f_qc_only": False, "f_none": False
    }
    assert result.value["f_equal"] == 3.0
    assert result.value["f_above"] == pytest.approx(3.1)
    assert np.isinf(result.value["f_noblank"])
    assert result.reason["f_equal"] == REASON_BLANK
    assert result.reason["f_above"] == ""
    assert result.reason["f_none"].startswith(REASON_MISSING)


def test_blank_filter_fold_moves_the_boundary(blank_data):
    x, types = blank_data
    assert blank_filter(x, types, fold=2.99).keep["f_equal"]
    assert not blank_filter(x, types, fold=3.11).keep["f_above"]


def test_blank_filter_needs_blanks(blank_data):
    x, types = blank_data
    with pytest.raises(ValueError, match="blank"):
        blank_filter(x, types.replace("blank", "stool"))


def test_filter_apply_aligns_annotations_and_lists_dropped(blank_data):
    x, types = blank_data
    ann = pd.DataFrame({"name": ["a", "b", "c", "d", "e"]}, index=x.columns[::-1])
    result = blank_filter(x, types)
    kept, kept_ann = result.apply(x, ann.iloc[::-1])
    assert list(kept.columns) == ["f_above", "f_noblank"]
    assert list(kept_ann.index) == ["f_above", "f_noblank"]
    assert list(kept_ann["name"]) == ["d", "c"]
    dropped = result.dropped
    assert list(dropped.columns) == ["feature_id", "step", "reason", "value"]
    assert list(dropped["feature_id"]) == ["f_equal", "f_qc_only", "f_none"]
    assert set(dropped["step"]) == {"blank_filter"}


# --- missingness ----------------------------------------------------------------------


@pytest.fixture
def missing_data():
    # group A = a1..a5, group B = b1..b5
    columns = ["only_in_a", "one_missing_each", "two_missing_each", "complete"]
    x = frame(
        {
            "a1": [1, NA, NA, 1], "a2": [1, 1, NA, 1], "a3": [1, 1, 1, 1], "a4": [1, 1, 1, 1], "a5": [1, 1, 1, 1],
            "b1": [NA, NA, NA, 1], "b2": [NA, 1, NA, 1], "b3": [NA, 1, 1, 1], "b4": [NA, 1, 1, 1], "b5": [NA, 1, 1, 1],
        },
        columns,
    )
    groups = pd.Series(["A"] * 5 + ["B"] * 5, index=x.index)
    return x, groups


def test_missingness_per_group_keeps_features_present_in_one_group(missing_data):
    x, groups = missing_data
    per_group = missingness_filter(x, groups, max_missing=0.2, rule="per_group")
    overall = missingness_filter(x, groups, max_missing=0.2, rule="overall")
    assert per_group.keep.to_dict() == {
        "only_in_a": True, "one_missing_each": True, "two_missing_each": False, "complete": True
    }
    assert overall.keep.to_dict() == {
        "only_in_a": False, "one_missing_each": True, "two_missing_each": False, "complete": True
    }
    assert per_group.value["only_in_a"] == 0.0
    assert overall.value["only_in_a"] == 0.5
    assert overall.reason["only_in_a"] == REASON_MISSING


def test_missingness_boundary_strict_and_inclusive(missing_data):
    x, groups = missing_data
    # one_missing_each has exactly 1/5 = 0.2 missing in each group and overall
    assert missingness_filter(x, groups, 0.2, "overall").keep["one_missing_each"]
    assert not missingness_filter(x, groups, 0.2, "overall", strict=True).keep["one_missing_each"]
    assert not missingness_filter(x, groups, 0.19, "per_group").keep["one_missing_each"]


def test_missing_fraction_by_group(missing_data):
    x, groups = missing_data
    table = missing_fraction(x, groups)
    assert list(table.index) == ["A", "B"]
    assert table.loc["A", "two_missing_each"] == 0.4
    assert table.loc["B", "only_in_a"] == 1.0


def test_missingness_rule_needs_groups(missing_data):
    x, _ = missing_data
    with pytest.raises(ValueError, match="groups"):
        missingness_filter(x, None, rule="per_group")
    with pytest.raises(ValueError, match="rule"):
        missingness_filter(x, None, rule="any")


# --- QC RSD ---------------------------------------------------------------------------


def test_qc_rsd_is_sample_sd_over_mean_skipping_missing():
    qc = frame({"q1": [1, 2, 5, 7], "q2": [2, NA, 5, NA], "q3": [3, 4, 5, NA]}, ["a", "b", "c", "one"])
    rsd = qc_rsd(qc)
    assert rsd["a"] == 0.5  # sd([1,2,3], ddof=1) = 1, mean 2
    assert rsd["b"] == pytest.approx(statistics.stdev([2, 4]) / statistics.mean([2, 4]), rel=1e-14)
    assert rsd["c"] == 0.0
    assert np.isnan(rsd["one"])


def test_rsd_filter_strict_threshold_and_few_qc_values():
    x = frame(
        {"s1": [9, 9, 9], "q1": [1, 10, 5], "q2": [2, 11, NA], "q3": [3, 12, NA]},
        ["rsd_half", "stable", "single_qc"],
    )
    qc_mask = x.index.str.startswith("q")
    result = rsd_filter(x, qc_mask, max_rsd=0.5)
    assert result.keep.to_dict() == {"rsd_half": False, "stable": True, "single_qc": False}
    assert result.reason["rsd_half"] == REASON_RSD
    assert result.reason["single_qc"] == REASON_FEW_QC
    assert rsd_filter(x, qc_mask, max_rsd=0.5000001).keep["rsd_half"]
    with pytest.raises(ValueError, match="two QC"):
        rsd_filter(x, x.index == "q1")


def test_all_missing_filter():
    x = frame({"s1": [NA, 1], "s2": [NA, NA]}, ["empty", "seen"])
    result = all_missing_filter(x)
    assert result.keep.to_dict() == {"empty": False, "seen": True}
    assert result.dropped["reason"].tolist() == [REASON_ALL_MISSING]


def test_filters_commute_on_the_same_raw_table():
    rng = np.random.default_rng(3)
    x = pd.DataFrame(rng.lognormal(5, 1, size=(30, 40)), columns=[f"f{j}" for j in range(40)])
    x = x.mask(rng.random(x.shape) < 0.15)
    types = pd.Series(["stool"] * 20 + ["qc"] * 6 + ["blank"] * 4, index=x.index)
    x.loc[types == "qc"] = 150 * rng.lognormal(0, rng.uniform(0.05, 0.5, 40), size=(6, 40))
    x.loc[types == "blank"] *= rng.uniform(0.05, 1.5, 40)
    study = (types == "stool").to_numpy()
    qc_mask = (types == "qc").to_numpy()
    filters = {
        "blank": lambda t: blank_filter(t, types, 1.2),
        "missing": lambda t: missingness_filter(t.loc[study], rule="overall", max_missing=0.15),
        "rsd": lambda t: rsd_filter(t, qc_mask, 0.25),
    }
    kept = []
    for order in (["blank", "missing", "rsd"], ["rsd", "missing", "blank"]):
        t = x
        for name in order:
            t, _ = filters[name](t).apply(t)
        kept.append(list(t.columns))
    each = [set(filters[name](x).keep[lambda k: k].index) for name in filters]
    assert kept[0] == kept[1] == [f for f in x.columns if all(f in e for e in each)]
    assert all(len(e) < 40 for e in each) and kept[0]
    assert 0 < len(kept[0]) < 40
