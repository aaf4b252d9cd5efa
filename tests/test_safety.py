"""Adverse-event incidence: worst grade per patient, denominators, treatment-related subset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gutaxis.io.errors import InputError
from gutaxis.clinical.safety import AE_COLUMNS, ANY_AE, ae_incidence, ae_worst_grade, worst_grades


def subjects_table() -> pd.DataFrame:
    # 6 patients: lung P1-P3, esophageal P4-P6; P3 and P6 have no adverse event at all
    return pd.DataFrame({"subject_id": ["P1", "P2", "P3", "P4", "P5", "P6"],
                         "cohort": ["lung"] * 3 + ["esophageal"] * 3})


def events_table() -> pd.DataFrame:
    return pd.DataFrame({
        "subject_id": ["P1", "P1", "P1", "P2", "P2", "P4", "P5", "P5"],
        "term": ["Diarrhea", "Diarrhea", "Fatigue", "Diarrhea", "Nausea", "Diarrhea", "Fatigue", "Nausea"],
        "grade": [1, 3, 2, 2, 1, 4, 1, 3],
        "attribution": ["probable", "unrelated", "possible", "definite", "unlikely", "possible",
                        "Unrelated", "possible"],
    })


# Worked by hand (worst grade per patient and term; "-" = none):
#            Diarrhea   Fatigue   Nausea   Any AE
#   P1 lung     3          2        -        3
#   P2 lung     2          -        1        2
#   P3 lung     -          -        -        -
#   P4 eso      4          -        -        4
#   P5 eso      -          1        3        3
#   P6 eso      -          -        -        -
# Treatment-related (possible/probable/definite) only:
#   P1: Diarrhea 1 (grade-3 episode unrelated), Fatigue 2; P2: Diarrhea 2; P4: Diarrhea 4; P5: Nausea 3
HAND = {  # (group, subset, term) -> (any grade, grade >= 3, group size)
    ("all", "all", "Diarrhea"): (3, 2, 6),
    ("all", "all", "Fatigue"): (2, 0, 6),
    ("all", "all", "Nausea"): (2, 1, 6),
    ("all", "all", ANY_AE): (4, 3, 6),
    ("lung", "all", "Diarrhea"): (2, 1, 3),
    ("lung", "all", ANY_AE): (2, 1, 3),
    ("esophageal", "all", "Nausea"): (1, 1, 3),
    ("esophageal", "all", ANY_AE): (2, 2, 3),
    ("all", "treatment_related", "Diarrhea"): (3, 1, 6),
    ("all", "treatment_related", ANY_AE): (4, 2, 6),
    ("lung", "treatment_related", "Diarrhea"): (2, 0, 3),
    ("lung", "treatment_related", "Nausea"): (0, 0, 3),
    ("esophageal", "treatment_related", "Fatigue"): (0, 0, 3),
    ("esophageal", "treatment_related", ANY_AE): (2, 2, 3),
}


def test_worst_grade_per_patient_and_term():
    worst = worst_grades(events_table()).set_index(["subject_id", "term"])["worst_grade"]
    assert worst[("P1", "Diarrhea")] == 3 and worst[("P1", ANY_AE)] == 3
    assert worst[("P5", ANY_AE)] == 3 and worst[("P2", "Nausea")] == 1
    assert len(worst) == 7 + 4  # 7 patient-term pairs + 4 patients with any AE


def test_incidence_matches_hand_count():
    table = ae_incidence(events_table(), subjects_table())
    assert list(table.columns) == AE_COLUMNS
    indexed = table.set_index(["group", "subset", "term"])
    for key, (any_grade, severe, size) in HAND.items():
        row = indexed.loc[key]
        assert (row.n_patients_any_grade, row.n_patients_grade3plus, row.n_patients_in_group) == \
            (any_grade, severe, size), key
        assert row.pct_any_grade == pytest.approx(100 * any_grade / size)
        assert row.pct_grade3plus == pytest.approx(100 * severe / size)


def test_row_order_and_complete_grid():
    table = ae_incidence(events_table(), subjects_table())
    # overall first, then cohorts in sorted order; "all" before "treatment_related"; "Any AE" first
    assert table[["group_var", "group"]].drop_duplicates().values.tolist() == [
        ["overall", "all"], ["cohort", "esophageal"], ["cohort", "lung"]]
    block = table[(table.group == "lung") & (table.subset == "all")]["term"].tolist()
    assert block == [ANY_AE, "Diarrhea", "Fatigue", "Nausea"]
    assert len(table) == 3 * 2 * 4
    # the cohorts partition the patients, so their counts add up to the overall row
    keys = ["subset", "term"]
    counts = ["n_patients_in_group", "n_patients_any_grade", "n_patients_grade3plus"]
    by_cohort = table[table.group_var == "cohort"].groupby(keys)[counts].sum()
    overall = table[table.group_var == "overall"].set_index(keys)[counts]
    pd.testing.assert_frame_equal(by_cohort.sort_index(), overall.sort_index())


def test_grade_distribution_is_consistent_with_incidence():
    incidence = ae_incidence(events_table(), subjects_table())
    worst = ae_worst_grade(events_table(), subjects_table())
    totals = worst.groupby(["group_var", "group", "subset", "term"], sort=False)["n_patients"].sum()
    severe = worst[worst.worst_grade >= 3].groupby(["group_var", "group", "subset", "term"], sort=False)[
        "n_patients"].sum()
    keyed = incidence.set_index(["group_var", "group", "subset", "term"])
    assert (totals.reindex(keyed.index) == keyed["n_patients_any_grade"]).all()
    assert (severe.reindex(keyed.index) == keyed["n_patients_grade3plus"]).all()
    row = worst[(worst.group == "all") & (worst.subset == "all") & (worst.term == ANY_AE)]
    assert row["n_patients"].tolist() == [0, 1, 2, 1, 0]  # worst grades 2 (P2), 3 (P1, P5), 4 (P4)


def test_no_attribution_column_gives_only_all_subset():
    table = ae_incidence(events_table().drop(columns="attribution"), subjects_table(), by=None)
    assert set(table["subset"]) == {"all"} and set(table["group"]) == {"all"}
    blank = ae_incidence(events_table().assign(attribution=""), subjects_table(), by=None)
    pd.testing.assert_frame_equal(table, blank)


def test_incidence_invariant_to_row_order():
    events = events_table()
    shuffled = events.iloc[np.random.default_rng(3).permutation(len(events))]
    pd.testing.assert_frame_equal(ae_incidence(events, subjects_table()),
                                  ae_incidence(shuffled, subjects_table()))


def test_custom_related_attributions():
    table = ae_incidence(events_table(), subjects_table(), by=None, related_attributions=["probable", "definite"])
    related = table[table.subset == "treatment_related"].set_index("term")
    # probable: P1 Diarrhea 1; definite: P2 Diarrhea 2
    assert related.loc["Diarrhea", "n_patients_any_grade"] == 2
    assert related.loc[ANY_AE, "n_patients_grade3plus"] == 0
    with pytest.raises(ValueError):
        ae_incidence(events_table(), subjects_table(), related_attributions=["related"])


@pytest.mark.parametrize(
    "column, value, words",
    [
        ("grade", 6, ["'grade'", "found 6", "1-5"]),
        ("attribution", "likely", ["'attribution'", "'likely'", "possible, probable"]),
        ("subject_id", "P9", ["'subject_id'", "P9", "not in the subjects table"]),
    ],
)
def test_bad_adverse_events_are_clear_errors(column, value, words):
    events = events_table().astype({"grade": object})
    events.loc[2, column] = value
    with pytest.raises(InputError) as err:
        ae_incidence(events, subjects_table(), ae_file="trial/ae.tsv")
    text = str(err.value)
    assert "trial/ae.tsv" in text and "row 3" in text
    for word in words:
        assert word in text
