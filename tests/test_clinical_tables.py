"""Assembly of the clinical result tables: groupings, stacking, ticks, numbers at risk, check agreement."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gutaxis.clinical.checks import check_adverse_events as clinical_check_adverse_events
from gutaxis.clinical.checks import blank_to_missing, response_criteria, usable_groupings
from gutaxis.clinical.checks import check_subjects as clinical_check_subjects
from gutaxis.clinical.tables import (
    KM_PLOT_COLUMNS,
    at_risk_rows,
    km_plot_table,
    stack_groupings,
    tick_step,
    time_ticks,
)
from gutaxis.clinical.response import response_table
from gutaxis.clinical.safety import ae_incidence
from gutaxis.io.sheets import check_adverse_events as sheet_check_adverse_events
from gutaxis.io.sheets import check_subjects as sheet_check_subjects
from gutaxis.io.sheets import read_text_table
from gutaxis.clinical.survival import kaplan_meier, survival_curves, survival_table

DATA = Path(__file__).resolve().parent / "data"
DEFINITIONS = {"dcr_recist": {"endpoint": "DCR", "criterion": "recist"},
               "orr_recist": {"endpoint": "ORR", "criterion": "recist"}}
ENDPOINTS = {"PFS2": ("pfs2_months", "pfs2_event"), "OS": ("os_months", "os_event")}


def subjects_sheet() -> pd.DataFrame:
    """A small subjects table as the workflow reads it: every cell text, blanks as ""."""
    return pd.DataFrame({
        "subject_id": ["A1", "A2", "A3", "B1", "B2", "B3", "B4"],
        "cohort": ["a", "a", "a", "b", "b", "b", "b"],
        "study": ["S1", "S1", "S2", "S2", "S2", "S2", "S2"],
        "dose_gy": ["1", "2", "2", "2", "2", "2", ""],
        "best_response": ["PR", "SD", "PD", "CR", "PD", "NE", "SD"],
        "best_response_irecist": ["iPR", "iSD", "iUPD", "iCR", "iCPD", "NE", "iSD"],
        "pfs2_months": ["5.0", "3.0", "1.0", "12.0", "2.0", "0.5", "7.0"],
        "pfs2_event": ["1", "1", "1", "0", "1", "1", "0"],
        "os_months": ["9.0", "8.0", "4.0", "12.0", "6.0", "0.5", "7.0"],
        "os_event": ["0", "1", "1", "0", "1", "1", "0"],
    })


def test_blank_to_missing_turns_empty_and_space_cells_into_nan_only():
    sheet = pd.DataFrame({"a": ["x", "", "  ", "0"], "b": ["", "NE", "1.5", " y "]})
    out = blank_to_missing(sheet)
    assert out["a"].isna().tolist() == [False, True, True, False]
    assert out["b"].isna().tolist() == [True, False, False, False]
    assert out.loc[3, "a"] == "0" and out.loc[3, "b"] == " y "


def test_response_criteria_adds_recorded_columns_and_keeps_needed_ones():
    subjects = blank_to_missing(subjects_sheet())
    assert response_criteria(subjects, DEFINITIONS) == ["recist", "irecist"]
    no_irecist = subjects.drop(columns="best_response_irecist")
    assert response_criteria(no_irecist, DEFINITIONS) == ["recist"]
    # a definition that needs iRECIST keeps it, so the check can name the missing column
    needs_irecist = {"dcr_irecist": {"endpoint": "DCR", "criterion": "irecist"}}
    assert response_criteria(no_irecist, needs_irecist) == ["recist", "irecist"]


def test_usable_groupings_skips_absent_or_empty_columns_with_a_reason():
    subjects = blank_to_missing(subjects_sheet()).assign(arm=np.nan)
    usable, skipped = usable_groupings(subjects, {"cohort": ["cohort"], "dose_group": ["study", "dose_gy"],
                                                  "arm": ["arm"], "site": "site"})
    assert usable == {"cohort": ["cohort"], "dose_group": ["study", "dose_gy"]}
    assert skipped["grouping"].tolist() == ["arm", "site"]
    assert all("absent or empty" in r for r in skipped["reason"])


def test_stack_groupings_keeps_overall_rows_once_and_orders_by_endpoint():
    subjects = blank_to_missing(subjects_sheet())
    groupings = {"cohort": ["cohort"], "dose_group": ["study", "dose_gy"]}
    table = stack_groupings(survival_table, groupings, order_by="endpoint", subjects=subjects,
                            endpoints=ENDPOINTS, landmarks=[6])
    assert table["endpoint"].tolist() == sorted(table["endpoint"], key=["PFS2", "OS"].index)
    for endpoint in ENDPOINTS:
        rows = table[table["endpoint"] == endpoint]
        medians = rows[rows["quantity"] == "median"]
        assert (medians["group_var"] == "overall").sum() == 1
        assert set(medians.loc[medians["group_var"] == "cohort", "group"]) == {"a", "b"}
        # the blank dose of B4 is its own group, never a silent drop
        assert set(medians.loc[medians["group_var"] == "study+dose_gy", "group"]) == {
            "S1 / 1", "S1 / 2", "S2 / 2", "S2 / NA"}
        assert (rows["quantity"] == "logrank_chisq").sum() == 2
    # each grouping's rows equal a direct call for that grouping
    direct = survival_table(subjects, ENDPOINTS, by=["study", "dose_gy"], landmarks=[6])
    mine = table[table["group_var"] == "study+dose_gy"].reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, direct[direct["group_var"] == "study+dose_gy"].reset_index(drop=True))


def test_stack_groupings_without_groupings_is_the_overall_table():
    subjects = blank_to_missing(subjects_sheet())
    events = pd.DataFrame({"subject_id": ["A1", "B2"], "term": ["Fatigue", "Fatigue"], "grade": ["1", "3"]})
    table = stack_groupings(ae_incidence, {}, adverse_events=events, subjects=subjects)
    assert set(table["group_var"]) == {"overall"}
    fatigue = table[table["term"] == "Fatigue"].iloc[0]
    assert fatigue["n_patients_any_grade"] == 2 and fatigue["n_patients_grade3plus"] == 1
    assert fatigue["n_patients_in_group"] == 7


def test_response_table_over_stacked_groupings_counts_by_hand():
    subjects = blank_to_missing(subjects_sheet())
    table = response_table(subjects, {"overall": None, "cohort": ["cohort"]}, ["recist"], "include")
    overall = table[(table["group_var"] == "overall")].set_index("endpoint")
    assert overall.loc["ORR", "n_responders"] == 2  # A1 PR, B1 CR
    assert overall.loc["DCR", "n_responders"] == 4  # + A2 SD, B4 SD
    assert (overall["n_denominator"] == 7).all()


@pytest.mark.parametrize("max_time, step", [(38.0, 6.0), (45.9, 6.0), (10.0, 2.0), (8.0, 1.0), (24.0, 3.0),
                                             (0.0, 1.0), (float("nan"), 1.0), (90.0, 12.0)])
def test_tick_step_is_the_smallest_nice_step_with_at_most_eight_intervals(max_time, step):
    assert tick_step(max_time) == step


def test_tick_step_beyond_the_nice_steps_is_a_multiple_of_120():
    step = tick_step(2000.0)
    assert step % 120 == 0 and 2000 / step <= 8 and 2000 / (step - 120) > 8


def test_time_ticks_cover_the_follow_up():
    assert time_ticks(38.0).tolist() == [0, 6, 12, 18, 24, 30, 36, 42]
    assert time_ticks(12.0, step=3).tolist() == [0, 3, 6, 9, 12]
    assert time_ticks(0.0).tolist() == [0, 1]


def test_at_risk_rows_hand_worked():
    # times 1 2 2 3 5 8, events 1 0 1 1 0 1: S = 5/6 at 1, 4/6 at 2, 4/9 at 3, 0 at 8
    curve = kaplan_meier([1, 2, 2, 3, 5, 8], [1, 0, 1, 1, 0, 1])
    rows = at_risk_rows(curve, [0, 2, 4, 6, 8, 10])
    assert rows["n_risk"].tolist() == [6, 5, 2, 1, 1, 0]
    np.testing.assert_allclose(rows["survival"], [1, 4 / 6, 4 / 9, 4 / 9, 0, 0])
    assert rows["n_event"].isna().all() and rows["n_censor"].isna().all()
    # the CI of the tick is the CI in force at the tick
    np.testing.assert_allclose(rows["ci_low"].iloc[2], curve.loc[curve["time"] == 3, "ci_low"].iloc[0])


def test_at_risk_rows_beyond_a_censored_end_are_not_estimable():
    curve = kaplan_meier([1, 2, 4], [1, 0, 0])
    rows = at_risk_rows(curve, [0, 3, 4, 6])
    assert rows["n_risk"].tolist() == [3, 1, 1, 0]
    np.testing.assert_allclose(rows["survival"].iloc[:3], [1, 2 / 3, 2 / 3])
    assert np.isnan(rows["survival"].iloc[3])


def test_km_plot_table_steps_and_numbers_at_risk_match_direct_counts():
    subjects = blank_to_missing(subjects_sheet())
    groupings = {"cohort": ["cohort"]}
    table = km_plot_table(subjects, ENDPOINTS, groupings, tick_every=2)
    assert table.columns.tolist() == KM_PLOT_COLUMNS
    steps = table[table["record"] == "step"].drop(columns="record").reset_index(drop=True)
    pd.testing.assert_frame_equal(steps, survival_curves(subjects, ENDPOINTS, by="cohort"), check_dtype=False)
    ticks = table[table["record"] == "at_risk"]
    for (endpoint, group_var, group), rows in ticks.groupby(["endpoint", "group_var", "group"]):
        time_column = ENDPOINTS[endpoint][0]
        members = subjects if group_var == "overall" else subjects[subjects["cohort"] == group]
        times = members[time_column].astype(float).to_numpy()
        expected = [(times >= t).sum() for t in rows["time"]]
        assert rows["n_risk"].tolist() == expected
        # ticks every 2 months up to the study's longest follow-up (12 months)
        assert rows["time"].tolist() == [0, 2, 4, 6, 8, 10, 12]


# ---------------------------------------------------------------- parse-time and rule-time checks agree


def _study_subjects(case: str | None = None) -> pd.DataFrame:
    path = DATA / "bad" / case / "subjects.tsv" if case else DATA / "good" / "subjects.tsv"
    return read_text_table(path, "subjects.tsv")


def test_the_good_study_passes_both_checks():
    subjects = _study_subjects()
    assert not sheet_check_subjects(subjects, ["lung", "esophageal"], "subjects.tsv")
    assert not clinical_check_subjects(blank_to_missing(subjects), criteria=["recist", "irecist"],
                                       endpoints=ENDPOINTS, require_abscopal=True, group_columns=["cohort"])
    events = read_text_table(DATA / "good" / "adverse_events.tsv")
    assert not sheet_check_adverse_events(events, set(subjects["subject_id"]), "adverse_events.tsv")
    assert not clinical_check_adverse_events(blank_to_missing(events), blank_to_missing(subjects))


@pytest.mark.parametrize("case, column", [
    ("subjects_unknown_recist", "best_response"),
    ("subjects_unknown_irecist", "best_response_irecist"),
    ("subjects_negative_pfs2", "pfs2_months"),
    ("subjects_event_flag_2", "os_event"),
    ("subjects_duplicate_id", "subject_id"),
])
def test_a_bad_subjects_table_is_caught_by_both_checks_in_the_same_column(case, column):
    subjects = _study_subjects(case)
    parse_time = [str(p) for p in sheet_check_subjects(subjects, ["lung", "esophageal"], "subjects.tsv")]
    rule_time = [str(p) for p in clinical_check_subjects(blank_to_missing(subjects)).problems]
    assert any(f"'{column}'" in p for p in parse_time), parse_time
    assert any(f"'{column}'" in p for p in rule_time), rule_time


def test_the_rule_time_check_catches_what_the_sheet_schema_lets_through():
    # an empty optional cell passes the sheet schema ("not recorded"), but a survival time
    # missing for one subject of a recorded endpoint stops the survival rule
    subjects = _study_subjects()
    subjects.loc[1, "pfs2_months"] = ""
    assert not sheet_check_subjects(subjects, ["lung", "esophageal"], "subjects.tsv")
    (problem,) = clinical_check_subjects(blank_to_missing(subjects), endpoints=ENDPOINTS).problems
    assert "'pfs2_months'" in str(problem) and "L2" in str(problem) and "missing" in str(problem)
    # likewise a partly filled attribution column would bias the treatment-related subset
    events = read_text_table(DATA / "good" / "adverse_events.tsv")
    events.loc[0, "attribution"] = ""
    assert not sheet_check_adverse_events(events, set(subjects["subject_id"]), "adverse_events.tsv")
    (problem,) = clinical_check_adverse_events(blank_to_missing(events), blank_to_missing(_study_subjects())).problems
    assert "'attribution'" in str(problem) and "L1" in str(problem)
