"""Clinical-meaning checks of the subjects and adverse-event tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gutaxis.clinical.checks import (
    canonical_codes,
    check_adverse_events,
    check_subjects,
    require_valid_adverse_events,
    require_valid_subjects,
    subject_warnings,
)
from gutaxis.io.errors import InputError


def good_subjects() -> pd.DataFrame:
    return pd.DataFrame({
        "subject_id": ["P01", "P02", "P03", "P04"],
        "cohort": ["lung", "lung", "esophageal", "other"],
        "study": ["ILDR-02", "ILDR-02", "ILDR-01", "ILDR-01"],
        "dose_gy": [1, 1, 2, 3],
        "ecog": [0, 1, 1, 2],
        "best_response": ["PR", "SD", "PD", "NE"],
        "best_response_irecist": ["iPR", "iSD", "iUPD", "NE"],
        "pfs2_months": [5.2, 3.1, 1.9, 0.0],
        "pfs2_event": [1, 0, 1, 1],
        "os_months": [12.0, 9.5, 4.4, 0.0],
        "os_event": [0, 0, 1, 1],
        "abscopal": ["yes", "no", "no", "NE"],
    })


def good_events() -> pd.DataFrame:
    return pd.DataFrame({
        "subject_id": ["P01", "P01", "P03"],
        "term": ["Diarrhea", "Fatigue", "Diarrhea"],
        "grade": [1, 3, 2],
        "attribution": ["possible", "unrelated", "definite"],
    })


def messages(collector) -> list[str]:
    return [str(p) for p in collector.problems]


def test_clean_tables_have_no_problems():
    subjects = good_subjects()
    assert not check_subjects(subjects, criteria=["recist", "irecist"], require_abscopal=True,
                              group_columns=["cohort"])
    assert not check_adverse_events(good_events(), subjects)
    assert subject_warnings(subjects).empty


def test_codes_are_matched_case_insensitively():
    codes = canonical_codes(pd.Series([" cr", "Pr", "icpd", None, "", "XX"]),
                            ("CR", "PR", "iCPD"))
    assert codes.tolist()[:5] == ["CR", "PR", "iCPD", "", ""]
    assert np.isnan(codes.iloc[5])
    subjects = good_subjects().assign(best_response=["pr", "sd", "pd", "ne"])
    assert not check_subjects(subjects, criteria=["recist"])


def test_unknown_response_code_names_file_column_subject_and_fix():
    subjects = good_subjects()
    subjects.loc[1, "best_response"] = "CRR"
    problems = messages(check_subjects(subjects, "trial/subjects.tsv", criteria=["recist"]))
    assert len(problems) == 1
    text = problems[0]
    assert text.startswith("trial/subjects.tsv:")
    assert "'best_response'" in text and "P02" in text and "row 2" in text and "'CRR'" in text
    assert "CR, PR, SD, PD, NE" in text  # the fix lists the vocabulary


def test_irecist_code_in_recist_column_points_to_the_right_column():
    subjects = good_subjects()
    subjects.loc[0, "best_response"] = "iUPD"
    (text,) = messages(check_subjects(subjects))
    assert "best_response_irecist" in text and "P01" in text


def test_same_wrong_value_is_one_problem_listing_the_subjects():
    subjects = good_subjects().assign(best_response="Partial response")
    (text,) = messages(check_subjects(subjects))
    for sid in ("P01", "P02", "P03", "P04"):
        assert sid in text


def test_blank_response_asks_for_NE():
    subjects = good_subjects()
    subjects.loc[2, "best_response_irecist"] = ""
    (text,) = messages(check_subjects(subjects))
    assert "best_response_irecist" in text and "P03" in text and "write NE" in text


def test_required_criterion_missing_column_is_reported():
    subjects = good_subjects().drop(columns="best_response_irecist")
    assert not check_subjects(subjects)  # optional when nobody needs it
    (text,) = messages(check_subjects(subjects, criteria=["irecist"]))
    assert "best_response_irecist" in text and "drop 'irecist'" in text


def test_all_blank_optional_column_counts_as_not_recorded():
    subjects = good_subjects().assign(best_response_irecist=np.nan)
    assert not check_subjects(subjects)


def test_negative_time_event_flag_two_and_text_time():
    subjects = good_subjects().astype({"pfs2_months": object, "os_event": object})
    subjects.loc[0, "pfs2_months"] = -1.5
    subjects.loc[1, "pfs2_months"] = "3 months"
    subjects.loc[2, "os_event"] = 2
    subjects.loc[3, "os_event"] = "dead"
    problems = messages(check_subjects(subjects))
    negative = [p for p in problems if "negative" in p]
    assert len(negative) == 1 and "'pfs2_months'" in negative[0] and "P01" in negative[0]
    assert ">= 0" in negative[0]
    not_number = [p for p in problems if "not a number" in p]
    assert len(not_number) == 1 and "P02" in not_number[0] and "without units" in not_number[0]
    flags = [p for p in problems if "must be 0 or 1" in p]
    assert len(flags) == 1
    assert "'os_event'" in flags[0] and "P03" in flags[0] and "P04" in flags[0]
    assert "found 2, dead" in flags[0] and "1 for an observed event" in flags[0]


def test_float_event_flags_are_fine_and_missing_ones_are_not():
    subjects = good_subjects().assign(pfs2_event=[1.0, 0.0, 1.0, 1.0])
    assert not check_subjects(subjects)
    subjects.loc[0, "pfs2_event"] = np.nan
    (text,) = messages(check_subjects(subjects))
    assert "pfs2_event" in text and "P01" in text and "missing" in text


def test_time_without_event_column():
    subjects = good_subjects().drop(columns="os_event")
    (text,) = messages(check_subjects(subjects))
    assert "'os_event'" in text


def test_check_recorded_false_ignores_unrelated_columns():
    subjects = good_subjects()
    subjects.loc[0, "os_months"] = -3
    assert check_subjects(subjects)  # the full validation sees it
    assert not check_subjects(subjects, criteria=["recist"], check_recorded=False)
    assert check_subjects(subjects, endpoints={"OS": ("os_months", "os_event")}, check_recorded=False)


def test_duplicate_subject_missing_group_column_bad_abscopal_dose_ecog():
    subjects = good_subjects()
    subjects.loc[3, "subject_id"] = "P01"
    subjects.loc[1, "abscopal"] = "maybe"
    subjects.loc[2, "dose_gy"] = -1
    subjects.loc[0, "ecog"] = 7
    problems = messages(check_subjects(subjects, group_columns=["arm"]))
    assert any("more than once" in p and "P01 (row 1)" in p and "P01 (row 4)" in p for p in problems)
    assert any("'arm'" in p for p in problems)
    assert any("'abscopal'" in p and "'maybe'" in p and "yes, no, NE" in p for p in problems)
    assert any("'dose_gy'" in p and "P03" in p for p in problems)
    assert any("'ecog'" in p and "P01" in p for p in problems)
    assert len(problems) == 5


def test_require_valid_subjects_raises_all_problems_together():
    subjects = good_subjects()
    subjects.loc[0, "best_response"] = "XX"
    subjects.loc[1, "pfs2_event"] = 2
    with pytest.raises(InputError) as err:
        require_valid_subjects(subjects, "subjects.tsv")
    assert len(err.value.problems) == 2
    assert "2 problems" in str(err.value)


def test_os_shorter_than_pfs2_is_a_warning_not_an_error():
    subjects = good_subjects()
    subjects.loc[1, "os_months"] = 2.0  # PFS2 3.1
    subjects.loc[2, ["pfs2_event", "os_event", "os_months"]] = [0, 1, 1.9]  # death censored in PFS2
    assert not check_subjects(subjects)
    warnings = subject_warnings(subjects)
    assert warnings["subject_id"].tolist() == ["P02", "P03"]
    assert warnings["column"].tolist() == ["os_months", "pfs2_event"]
    assert "shorter than PFS2" in warnings["what"].iloc[0]
    assert "set pfs2_event to 1" in warnings["fix"].iloc[1]


def test_adverse_event_grade_attribution_and_unknown_subject():
    events = good_events().astype({"grade": object})
    events.loc[0, "grade"] = 6
    events.loc[1, "grade"] = 0
    events.loc[2, "attribution"] = "related"
    events = pd.concat([events, pd.DataFrame({"subject_id": ["P99"], "term": ["Nausea"], "grade": [2],
                                              "attribution": ["unlikely"]})], ignore_index=True)
    problems = messages(check_adverse_events(events, good_subjects(), "ae.tsv"))
    grade = [p for p in problems if "grade must be" in p]
    assert len(grade) == 1 and "found 0, 6" in grade[0] and "row 1" in grade[0] and "row 2" in grade[0]
    assert any("'attribution'" in p and "ambiguous" in p and "P03" in p for p in problems)
    assert any("P99" in p and "not in the subjects table" in p for p in problems)
    assert all(p.startswith("ae.tsv:") for p in problems)
    assert len(problems) == 3


def test_adverse_events_partial_attribution_and_missing_columns():
    events = good_events()
    events.loc[1, "attribution"] = None
    (text,) = messages(check_adverse_events(events, good_subjects()))
    assert "attribution is missing" in text and "P01" in text
    assert not check_adverse_events(good_events().assign(attribution=None), good_subjects())
    with pytest.raises(InputError) as err:
        require_valid_adverse_events(good_events().drop(columns="grade"))
    assert "'grade'" in str(err.value)
