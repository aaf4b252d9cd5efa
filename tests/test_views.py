"""Tests for gutaxis.integration.views: baseline/post/change views matched across two modalities."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gutaxis.io.errors import InputError
from gutaxis.integration.views import build_views, locate_samples


def _sheet():
    rows = [
        # P1: complete in both modalities; stool and blood ids differ
        ("ST-P1-0", "P1", "baseline", "stool"), ("ST-P1-1", "P1", "post", "stool"),
        ("BL-P1-0", "P1", "baseline", "blood"), ("BL-P1-1", "P1", "post", "blood"),
        # P2: stool post missing
        ("ST-P2-0", "P2", "baseline", "stool"),
        ("BL-P2-0", "P2", "baseline", "blood"), ("BL-P2-1", "P2", "post", "blood"),
        # P3: complete, plus a progression stool sample that no view uses
        ("ST-P3-0", "P3", "baseline", "stool"), ("ST-P3-1", "P3", "post", "stool"),
        ("ST-P3-2", "P3", "progression", "stool"),
        ("BL-P3-0", "P3", "baseline", "blood"), ("BL-P3-1", "P3", "post", "blood"),
        # P4: blood only
        ("BL-P4-0", "P4", "baseline", "blood"),
        ("QC01", None, None, "qc"),
    ]
    return pd.DataFrame(rows, columns=["sample_id", "subject_id", "timepoint", "sample_type"])


def _tables():
    taxa = pd.DataFrame(
        {"t1": [1.0, 4.0, 2.0, 3.0, 5.0, 9.0, 0.5], "t2": [0.0, 1.0, 1.0, -1.0, 2.0, 7.0, 0.0]},
        index=["ST-P1-0", "ST-P1-1", "ST-P2-0", "ST-P3-0", "ST-P3-1", "ST-P3-2", "QC01"],
    )
    immune = pd.DataFrame(
        {"cd8": [10.0, 13.0, 20.0, 18.0, 30.0, np.nan, 5.0]},
        index=["BL-P1-0", "BL-P1-1", "BL-P2-0", "BL-P2-1", "BL-P3-0", "BL-P3-1", "BL-P4-0"],
    )
    return taxa, immune


def test_views_match_subjects_across_modalities_and_compute_changes():
    taxa, immune = _tables()
    res = build_views(_sheet(), taxa, immune, name_a="taxa", name_b="immune")
    assert list(res.views) == ["baseline", "post", "change"]

    base_a, base_b = res.views["baseline"]
    assert list(base_a.index) == list(base_b.index) == ["P1", "P2", "P3"]
    assert base_a.loc["P2", "t1"] == 2.0 and base_b.loc["P3", "cd8"] == 30.0

    post_a, post_b = res.views["post"]
    assert list(post_a.index) == ["P1", "P3"]

    change_a, change_b = res.views["change"]
    assert list(change_a.index) == list(change_b.index) == ["P1", "P3"]
    # hand-computed post - baseline
    assert change_a.loc["P1"].tolist() == [3.0, 1.0]
    assert change_a.loc["P3"].tolist() == [2.0, 3.0]  # progression sample ignored
    assert change_b.loc["P1", "cd8"] == 3.0
    assert np.isnan(change_b.loc["P3", "cd8"])  # NaN propagates, associations decides
    assert list(change_a.columns) == ["t1", "t2"] and change_a.index.name == "subject_id"


def test_membership_lists_every_subject_with_reasons():
    taxa, immune = _tables()
    m = build_views(_sheet(), taxa, immune, name_a="taxa", name_b="immune").membership
    change = m[m["view"] == "change"].set_index("subject_id")
    assert change.loc["P1", "used"] and change.loc["P1", "reason"] == ""
    assert change.loc["P1", "samples_a"] == "ST-P1-0;ST-P1-1"
    assert change.loc["P1", "samples_b"] == "BL-P1-0;BL-P1-1"
    assert not change.loc["P2", "used"] and change.loc["P2", "reason"] == "no taxa sample at post"
    assert change.loc["P4", "reason"] == (
        "no taxa sample at baseline; no taxa sample at post; no immune sample at post")
    base = m[m["view"] == "baseline"].set_index("subject_id")
    assert base.loc["P4", "reason"] == "no taxa sample at baseline"
    qc = m[m["view"] == "none"]
    assert list(qc["samples_a"]) == ["QC01"] and "qc" in qc["reason"].iloc[0]
    # every (view, subject) appears once and the used flags agree with the matrices
    assert not m[m["view"] != "none"].duplicated(["view", "subject_id"]).any()
    assert base["used"].sum() == 3 and change["used"].sum() == 2


def test_bad_sample_sheets_raise_input_errors_naming_the_samples():
    taxa, immune = _tables()
    sheet = _sheet()
    with pytest.raises(InputError, match="ST-P9-0"):
        build_views(sheet, pd.concat([taxa, taxa.iloc[[0]].set_axis(["ST-P9-0"])]), immune)

    dup = pd.concat([sheet, pd.DataFrame([("ST-P1-0b", "P1", "baseline", "stool")], columns=sheet.columns)])
    extra = pd.concat([taxa, taxa.iloc[[0]].set_axis(["ST-P1-0b"])])
    with pytest.raises(InputError) as err:
        build_views(dup, extra, immune, name_a="taxa.tsv")
    message = str(err.value)
    assert "subject P1, timepoint baseline" in message and "ST-P1-0b" in message

    with pytest.raises(InputError, match="timepoint"):
        locate_samples(sheet.drop(columns="timepoint"), taxa, source="taxa.tsv")


def test_same_sample_ids_in_both_modalities_work():
    # stool metagenomics and stool metabolomics often share the sample id
    taxa, _ = _tables()
    metabolites = taxa.rename(columns={"t1": "m1", "t2": "m2"}) * 10
    res = build_views(_sheet(), taxa, metabolites)
    change_a, change_b = res.views["change"]
    np.testing.assert_array_equal(change_b.to_numpy(), 10 * change_a.to_numpy())


def test_without_a_post_timepoint_only_the_baseline_view_is_built():
    taxa, immune = _tables()
    res = build_views(_sheet(), taxa, immune, pre="baseline", post="", name_a="taxa", name_b="immune")
    assert list(res.views) == ["baseline"]
    base_a, base_b = res.views["baseline"]
    assert list(base_a.index) == ["P1", "P2", "P3"]
    assert base_a.loc["P2", "t1"] == 2.0 and base_b.loc["P3", "cd8"] == 30.0
    assert set(res.membership["view"]) <= {"baseline", "none"}
