"""Clinical meaning of the subjects and adverse-event tables: vocabularies, flags, times, grades.

The structural checks (file readable, required columns present) belong to the input
validation step; this module checks what the values *mean* for the clinical endpoints:

* best overall response by RECIST 1.1 (``CR, PR, SD, PD, NE``; Eisenhauer et al. 2009)
  and by iRECIST (``iCR, iPR, iSD, iUPD, iCPD, NE``; Seymour et al. 2017);
* event flags ``0`` (censored) / ``1`` (event) and non-negative, finite times for PFS2 and OS;
* abscopal effect ``yes / no / NE``;
* adverse events graded by CTCAE v5.0 (integer grade 1-5) with the attribution
  vocabulary ``unrelated, unlikely, possible, probable, definite``.

Codes are matched case-insensitively after stripping blanks (``"cr"`` -> ``"CR"``,
``"icpd"`` -> ``"iCPD"``, ``"Possible"`` -> ``"possible"``); :func:`canonical_codes`
returns the canonical spelling the statistics modules use.

Every check returns a :class:`gutaxis.io.errors.ProblemCollector`; a problem names the file,
the column and the subjects (with their data-row number, 1 = first row under the header)
and says what to change. Cells with the same wrong value in one column are reported as one
problem listing the subjects, so a systematically misspelled column gives one line, not 48.

References
----------
Eisenhauer EA et al. (2009) New response evaluation criteria in solid tumours: revised
RECIST guideline (version 1.1). Eur J Cancer 45:228-247.
Seymour L et al. (2017) iRECIST: guidelines for response criteria for use in trials
testing immunotherapeutics. Lancet Oncol 18:e143-e152.
National Cancer Institute (2017) Common Terminology Criteria for Adverse Events v5.0.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from gutaxis.io.errors import ProblemCollector

log = logging.getLogger("gutaxis.clinical")

#: the labels of results/clinical/responders.tsv (an empty cell: not evaluable)
RESPONDER, NON_RESPONDER = "responder", "non_responder"

RECIST_CODES: tuple[str, ...] = ("CR", "PR", "SD", "PD", "NE")
IRECIST_CODES: tuple[str, ...] = ("iCR", "iPR", "iSD", "iUPD", "iCPD", "NE")
ABSCOPAL_CODES: tuple[str, ...] = ("yes", "no", "NE")
ATTRIBUTION_CODES: tuple[str, ...] = ("unrelated", "unlikely", "possible", "probable", "definite")
NOT_EVALUABLE = "NE"

#: response column of each criterion in the subjects table, and its vocabulary
RESPONSE_COLUMNS: dict[str, str] = {"recist": "best_response", "irecist": "best_response_irecist"}
RESPONSE_VOCABULARIES: dict[str, tuple[str, ...]] = {"recist": RECIST_CODES, "irecist": IRECIST_CODES}

#: default time-to-event endpoints: name -> (time column, event column)
SURVIVAL_ENDPOINTS: dict[str, tuple[str, str]] = {
    "PFS2": ("pfs2_months", "pfs2_event"),
    "OS": ("os_months", "os_event"),
}

#: how each criterion is written in messages and tables
CRITERION_NAMES: dict[str, str] = {"recist": "RECIST 1.1", "irecist": "iRECIST"}

DEFAULT_SUBJECTS_FILE = "subjects.tsv"
DEFAULT_AE_FILE = "adverse_events.tsv"

_MAX_LISTED = 10  # subjects listed in one problem before "... and N more"


# --------------------------------------------------------------------------- helpers


def _is_blank(values: pd.Series) -> pd.Series:
    """True where a cell is missing or only white space."""
    as_text = values.astype("string").str.strip()
    return (values.isna() | (as_text == "").fillna(True)).astype(bool)


def canonical_codes(values: pd.Series, vocabulary: Sequence[str]) -> pd.Series:
    """Map cells to the canonical spelling of ``vocabulary``, case-insensitively.

    Parameters
    ----------
    values : pandas.Series
        Raw cells (strings or missing).
    vocabulary : sequence of str
        Allowed codes in their canonical spelling.

    Returns
    -------
    pandas.Series
        Same index; the canonical code, ``""`` for a blank cell and ``NaN`` for a value
        outside the vocabulary.
    """
    lookup = {code.lower(): code for code in vocabulary}
    text = values.astype("string").str.strip()
    mapped = text.str.lower().map(lookup).astype(object)
    mapped[_is_blank(values).to_numpy()] = ""
    return mapped.where(mapped.notna(), np.nan)


def _subject_labels(frame: pd.DataFrame, mask: np.ndarray, id_column: str = "subject_id") -> str:
    """'P03 (row 3), P17 (row 17)' for the rows under ``mask`` (row = 1-based data row)."""
    positions = np.flatnonzero(mask)
    if id_column in frame.columns:
        ids = frame[id_column].astype("string").fillna("<no id>").to_numpy()
        labels = [f"{ids[i]} (row {i + 1})" for i in positions[:_MAX_LISTED]]
    else:
        labels = [f"row {i + 1}" for i in positions[:_MAX_LISTED]]
    more = len(positions) - _MAX_LISTED
    text = ", ".join(labels)
    if more > 0:
        text += f" and {more} more"
    return text


def _where(frame: pd.DataFrame, column: str, mask: np.ndarray, id_column: str = "subject_id") -> str:
    noun = "subject" if id_column == "subject_id" and mask.sum() == 1 else "subjects"
    return f"column '{column}', {noun} {_subject_labels(frame, mask, id_column)}"


def column_recorded(frame: pd.DataFrame, column: str) -> bool:
    """Whether ``column`` is recorded: present and not entirely blank."""
    return column in frame.columns and not bool(_is_blank(frame[column]).all())


def _check_vocabulary(
    frame: pd.DataFrame,
    column: str,
    vocabulary: Sequence[str],
    file: str,
    problems: ProblemCollector,
    *,
    label: str,
    blank_fix: str | None,
    hint: Mapping[str, str] | None = None,
    id_column: str = "subject_id",
) -> None:
    """Report blank cells (when ``blank_fix`` is given) and codes outside ``vocabulary``."""
    raw = frame[column]
    codes = canonical_codes(raw, vocabulary)
    blank = (codes == "").to_numpy()
    if blank_fix is not None and blank.any():
        problems.add(file, _where(frame, column, blank, id_column), f"{label} is missing", blank_fix)
    unknown = codes.isna().to_numpy()
    allowed = ", ".join(vocabulary)
    for value in pd.unique(raw[unknown].astype("string").str.strip()):
        rows = unknown & (raw.astype("string").str.strip() == value).fillna(False).to_numpy(dtype=bool)
        fix = f"use one of {allowed}"
        if hint and str(value).lower() in hint:
            fix = f"{hint[str(value).lower()]}; otherwise {fix}"
        problems.add(file, _where(frame, column, rows, id_column), f"unknown {label} '{value}'", fix)


def _numeric(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Numbers, and a mask of cells that are filled but not numeric."""
    numbers = pd.to_numeric(values, errors="coerce")
    not_numeric = (numbers.isna() & ~_is_blank(values)).to_numpy()
    return numbers.astype(float), not_numeric


# --------------------------------------------------------------------------- subjects


def _check_response_column(frame, criterion, file, problems, required):
    column = RESPONSE_COLUMNS[criterion]
    if not column_recorded(frame, column):
        if required:
            problems.add(
                file,
                f"column '{column}'",
                f"the {CRITERION_NAMES[criterion]} best overall response is needed but the column is "
                f"{'empty' if column in frame.columns else 'absent'}",
                f"add '{column}' with one of {', '.join(RESPONSE_VOCABULARIES[criterion])} per "
                f"subject, or drop '{criterion}' from the response criteria in the config",
            )
        return
    other = "irecist" if criterion == "recist" else "recist"
    other_column = RESPONSE_COLUMNS[other]
    hint = {
        code.lower(): f"'{code}' is a {CRITERION_NAMES[other]} code and belongs in column '{other_column}'"
        for code in RESPONSE_VOCABULARIES[other]
        if code != NOT_EVALUABLE
    }
    _check_vocabulary(
        frame,
        column,
        RESPONSE_VOCABULARIES[criterion],
        file,
        problems,
        label=f"{CRITERION_NAMES[criterion]} response code",
        blank_fix="write NE for a subject whose response could not be evaluated",
        hint=hint,
    )


def _check_survival_pair(frame, name, time_column, event_column, file, problems, required):
    recorded = [column_recorded(frame, c) for c in (time_column, event_column)]
    if not any(recorded):
        if required:
            problems.add(
                file,
                f"columns '{time_column}', '{event_column}'",
                f"{name} is needed but its time and event columns are absent or empty",
                f"add '{time_column}' (months) and '{event_column}' (1 = event, 0 = censored), "
                f"or drop {name} from the survival endpoints in the config",
            )
        return
    for column, present in zip((time_column, event_column), recorded):
        if not present:
            problems.add(
                file,
                f"column '{column}'",
                f"{name} has {'an event' if column == time_column else 'a time'} column but "
                f"'{column}' is absent or empty",
                f"give both '{time_column}' and '{event_column}' for every subject",
            )
    if not all(recorded):
        return
    times, not_numeric = _numeric(frame[time_column])
    blank_time = _is_blank(frame[time_column]).to_numpy()
    if not_numeric.any():
        problems.add(
            file, _where(frame, time_column, not_numeric), f"{name} time is not a number",
            "write the time as a plain number of months (e.g. 7.4), without units",
        )
    if blank_time.any():
        problems.add(
            file, _where(frame, time_column, blank_time), f"{name} time is missing",
            "give the time to the event or to the last follow-up (censored) for every subject",
        )
    negative = (times < 0).to_numpy()
    if negative.any():
        problems.add(
            file, _where(frame, time_column, negative), f"{name} time is negative",
            "times are measured from the start of treatment and must be >= 0; check the dates",
        )
    infinite = np.isinf(times.to_numpy())
    if infinite.any():
        problems.add(
            file, _where(frame, time_column, infinite), f"{name} time is infinite",
            "give a finite time in months",
        )
    flags, _ = _numeric(frame[event_column])
    blank_flag = _is_blank(frame[event_column]).to_numpy()
    bad_flag = ~blank_flag & ~flags.isin([0.0, 1.0]).to_numpy()
    if blank_flag.any():
        problems.add(
            file, _where(frame, event_column, blank_flag), f"{name} event flag is missing",
            "use 1 for an observed event and 0 for censored at the last follow-up",
        )
    if bad_flag.any():
        values = ", ".join(sorted({str(v).strip() for v in frame[event_column][bad_flag]}))
        problems.add(
            file, _where(frame, event_column, bad_flag),
            f"{name} event flag must be 0 or 1, found {values}",
            "use 1 for an observed event (progression or death) and 0 for censored",
        )


def _check_abscopal(frame, file, problems, required):
    if column_recorded(frame, "abscopal"):
        _check_vocabulary(frame, "abscopal", ABSCOPAL_CODES, file, problems, label="abscopal code",
                          blank_fix="write NE when the abscopal effect could not be evaluated")
    elif required:
        problems.add(file, "column 'abscopal'", "the abscopal effect is needed but the column is absent or empty",
                     "add 'abscopal' with yes / no / NE per subject")


def check_subjects(
    subjects: pd.DataFrame,
    file: str = DEFAULT_SUBJECTS_FILE,
    *,
    criteria: Iterable[str] = (),
    endpoints: Mapping[str, tuple[str, str]] | None = None,
    require_abscopal: bool = False,
    group_columns: Iterable[str] = (),
    check_recorded: bool = True,
) -> ProblemCollector:
    """Check the clinical meaning of a subjects table.

    Optional clinical columns are checked when they are recorded (present and not entirely
    blank). Columns named by ``criteria``, ``endpoints``, ``require_abscopal`` and
    ``group_columns`` are required: their absence is a problem too.

    Parameters
    ----------
    subjects : pandas.DataFrame
        One row per subject; columns as in the design (``subject_id, cohort, ...``).
    file : str
        Name of the file, used in the messages.
    criteria : iterable of {"recist", "irecist"}
        Response criteria the caller needs.
    endpoints : mapping, optional
        Survival endpoints ``name -> (time column, event column)`` to check; default
        :data:`SURVIVAL_ENDPOINTS` (checked when recorded, never required unless given).
    require_abscopal : bool
        Whether the ``abscopal`` column is needed.
    group_columns : iterable of str
        Columns the caller groups by (e.g. ``cohort``); they must exist.
    check_recorded : bool
        Also check the optional clinical columns nobody asked for (the full validation of
        the file). The statistics functions pass ``False`` so that, say, a bad OS time does
        not stop the response table.

    Returns
    -------
    ProblemCollector
        Empty when the table is fine.
    """
    problems = ProblemCollector()
    frame = subjects.reset_index(drop=True)
    criteria = tuple(criteria)
    for criterion in criteria:
        if criterion not in RESPONSE_COLUMNS:
            raise ValueError(f"unknown response criterion {criterion!r}; use 'recist' or 'irecist'")

    if "subject_id" not in frame.columns:
        problems.add(file, "column 'subject_id'", "the subject identifier column is missing",
                     "add a 'subject_id' column with one unique id per subject")
    else:
        blank = _is_blank(frame["subject_id"]).to_numpy()
        if blank.any():
            problems.add(file, f"column 'subject_id', rows {', '.join(str(i + 1) for i in np.flatnonzero(blank))}",
                         "subject id is empty", "give every subject a unique id")
        ids = frame["subject_id"].astype("string").str.strip()
        duplicated = ids.duplicated(keep=False).to_numpy(dtype=bool) & ~blank
        if duplicated.any():
            problems.add(file, _where(frame, "subject_id", duplicated), "subject id appears more than once",
                         "keep one row per subject")

    for column in group_columns:
        if column not in frame.columns:
            problems.add(file, f"column '{column}'", f"grouping column '{column}' is missing",
                         f"add '{column}' to the subjects table or remove it from the groupings in the config")

    for criterion in RESPONSE_COLUMNS:
        if check_recorded or criterion in criteria:
            _check_response_column(frame, criterion, file, problems, required=criterion in criteria)

    required_endpoints = dict(endpoints) if endpoints is not None else {}
    all_endpoints = {**SURVIVAL_ENDPOINTS, **required_endpoints} if check_recorded else required_endpoints
    for name, (time_column, event_column) in all_endpoints.items():
        _check_survival_pair(frame, name, time_column, event_column, file, problems,
                             required=name in required_endpoints)

    if not check_recorded:
        if require_abscopal:
            _check_abscopal(frame, file, problems, required=True)
        return problems
    _check_abscopal(frame, file, problems, required=require_abscopal)
    if column_recorded(frame, "dose_gy"):
        dose, not_numeric = _numeric(frame["dose_gy"])
        bad = not_numeric | (dose < 0).to_numpy()
        if bad.any():
            problems.add(file, _where(frame, "dose_gy", bad), "dose is not a non-negative number",
                         "write the total dose in Gy as a number (e.g. 2), or leave it empty")
    if column_recorded(frame, "ecog"):
        ecog, not_numeric = _numeric(frame["ecog"])
        bad = not_numeric | (~ecog.isna() & ~ecog.isin([0, 1, 2, 3, 4, 5])).to_numpy()
        if bad.any():
            problems.add(file, _where(frame, "ecog", bad), "ECOG performance status must be an integer 0-5",
                         "write the ECOG score as 0, 1, 2, 3, 4 or 5, or leave it empty")
    return problems


def subject_warnings(subjects: pd.DataFrame, file: str = DEFAULT_SUBJECTS_FILE) -> pd.DataFrame:
    """Plausibility warnings that do not stop the analysis.

    * OS shorter than PFS2: progression-free survival ends at progression *or death*, so
      ``pfs2_months <= os_months`` always holds in correctly entered data.
    * Death recorded (``os_event = 1``) at the PFS2 time while PFS2 is censored: death
      without prior progression is a PFS event.

    Returns
    -------
    pandas.DataFrame
        Columns ``file, subject_id, column, what, fix``; empty when nothing is suspicious
        or the columns are absent. Rows whose values fail :func:`check_subjects` are skipped.
    """
    columns = ["file", "subject_id", "column", "what", "fix"]
    needed = ("pfs2_months", "os_months")
    if not all(column_recorded(subjects, c) for c in needed) or "subject_id" not in subjects.columns:
        return pd.DataFrame(columns=columns)
    frame = subjects.reset_index(drop=True)
    pfs = pd.to_numeric(frame["pfs2_months"], errors="coerce")
    os_ = pd.to_numeric(frame["os_months"], errors="coerce")
    rows = []
    for i in np.flatnonzero((os_ < pfs).to_numpy()):
        rows.append((file, str(frame.at[i, "subject_id"]), "os_months",
                     f"OS ({os_[i]:g} months) is shorter than PFS2 ({pfs[i]:g} months)",
                     "PFS2 ends at progression or death, so it cannot exceed OS; check both dates"))
    if column_recorded(frame, "pfs2_event") and column_recorded(frame, "os_event"):
        pfs_event = pd.to_numeric(frame["pfs2_event"], errors="coerce")
        os_event = pd.to_numeric(frame["os_event"], errors="coerce")
        death_censored = (os_event == 1) & (pfs_event == 0) & (os_ == pfs)
        for i in np.flatnonzero(death_censored.to_numpy()):
            rows.append((file, str(frame.at[i, "subject_id"]), "pfs2_event",
                         "death recorded at the PFS2 time but PFS2 is censored",
                         "death without prior progression is a PFS2 event: set pfs2_event to 1"))
    return pd.DataFrame(rows, columns=columns).sort_values(["subject_id", "column"], kind="stable",
                                                           ignore_index=True)


def require_valid_subjects(subjects: pd.DataFrame, file: str = DEFAULT_SUBJECTS_FILE, **needs) -> None:
    """Raise :class:`gutaxis.io.errors.InputError` listing every problem :func:`check_subjects` finds."""
    check_subjects(subjects, file, **needs).raise_if_any()


# --------------------------------------------------------------------------- sheets as the statistics read them


def blank_to_missing(sheet: pd.DataFrame) -> pd.DataFrame:
    """A checked sheet read as text (empty cell = ``""``) with empty cells as NaN.

    The statistics functions treat NaN as "not recorded"; an empty string would become
    a group label of its own.
    """
    text = sheet.astype(object)
    blank = text.apply(lambda column: column.astype("string").str.strip().eq("").fillna(True))
    return text.mask(blank.to_numpy(dtype=bool))


def response_criteria(subjects: pd.DataFrame, definitions: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Criteria to report: those the responder definitions need, plus any other recorded one.

    Returns
    -------
    list of str
        Subset of ``["recist", "irecist"]`` in that order. A criterion a definition needs
        is listed even when its column is absent, so that the check names the column.
    """
    needed = {str(d["criterion"]).lower() for d in definitions.values()}
    return [c for c, column in RESPONSE_COLUMNS.items() if c in needed or column_recorded(subjects, column)]


def usable_groupings(
    subjects: pd.DataFrame, groupings: Mapping[str, Sequence[str]]
) -> tuple[dict[str, list[str]], pd.DataFrame]:
    """Split the configured groupings into those the subjects table can support and the rest.

    A grouping is skipped when one of its columns is absent or entirely blank (e.g. the
    dose group of a trial that recorded no dose); a column with *some* blanks is kept and
    its blank subjects form the group ``"NA"``.

    Returns
    -------
    usable : dict
        ``name -> columns`` in the configured order.
    skipped : pandas.DataFrame
        Columns ``grouping, columns, reason``, one row per skipped grouping.
    """
    usable, skipped = {}, []
    for name, columns in groupings.items():
        columns = [columns] if isinstance(columns, str) else list(columns)
        missing = [c for c in columns if not column_recorded(subjects, c)]
        if missing:
            skipped.append((name, "+".join(columns), f"column(s) {', '.join(missing)} absent or empty in the subjects table"))
        else:
            usable[name] = columns
    return usable, pd.DataFrame(skipped, columns=["grouping", "columns", "reason"])


def checked_groupings(subjects: pd.DataFrame, groupings: Mapping[str, Sequence[str]],
                      file: str = DEFAULT_SUBJECTS_FILE, **needs) -> dict[str, list[str]]:
    """The configured groupings the subjects table supports, after checking every clinical column.

    A grouping :func:`usable_groupings` skips is logged as a warning; then
    :func:`require_valid_subjects` checks every recorded clinical column, the
    grouping columns and `needs` before anything is computed.

    Parameters
    ----------
    subjects : DataFrame
        :func:`blank_to_missing` of the subjects sheet.
    groupings : mapping
        ``clinical.groupings`` of the config (name -> columns).
    file : str
        The subjects sheet's name in messages.
    **needs
        More of :func:`check_subjects`' keywords (``criteria``, ``endpoints``, ...).

    Returns
    -------
    dict
        ``name -> columns`` of the usable groupings, in the configured order.
    """
    usable, skipped = usable_groupings(subjects, groupings)
    for row in skipped.itertuples():
        log.warning("grouping %s (%s) skipped: %s", row.grouping, row.columns, row.reason)
    require_valid_subjects(subjects, file, check_recorded=True,
                           group_columns=[c for columns in usable.values() for c in columns], **needs)
    return usable


# --------------------------------------------------------------------------- adverse events


def check_adverse_events(
    adverse_events: pd.DataFrame,
    subjects: pd.DataFrame | None = None,
    file: str = DEFAULT_AE_FILE,
) -> ProblemCollector:
    """Check the clinical meaning of an adverse-event table (one row per event).

    Required columns ``subject_id, term, grade``; ``grade`` is an integer CTCAE grade 1-5;
    ``attribution``, when recorded, uses :data:`ATTRIBUTION_CODES` for every row (a
    partly filled attribution column would make the treatment-related subset depend on
    blanks, so blanks are a problem); every ``subject_id`` must be in ``subjects``.
    Returns every problem found, as :func:`check_subjects` does.
    """
    problems = ProblemCollector()
    frame = adverse_events.reset_index(drop=True)
    missing = [c for c in ("subject_id", "term", "grade") if c not in frame.columns]
    for column in missing:
        problems.add(file, f"column '{column}'", f"required column '{column}' is missing",
                     "the adverse-event table needs columns subject_id, term, grade (and optionally attribution)")
    if missing:
        return problems

    blank_id = _is_blank(frame["subject_id"]).to_numpy()
    if blank_id.any():
        problems.add(file, f"column 'subject_id', rows {', '.join(str(i + 1) for i in np.flatnonzero(blank_id))}",
                     "subject id is empty", "give the subject of every adverse event")
    if subjects is not None and "subject_id" in subjects.columns:
        known = set(subjects["subject_id"].astype("string").str.strip())
        unknown = ~blank_id & ~frame["subject_id"].astype("string").str.strip().isin(known).to_numpy(dtype=bool)
        if unknown.any():
            problems.add(file, _where(frame, "subject_id", unknown), "subject is not in the subjects table",
                         "correct the subject id or add the subject to the subjects table")

    blank_term = _is_blank(frame["term"]).to_numpy()
    if blank_term.any():
        problems.add(file, _where(frame, "term", blank_term), "adverse-event term is empty",
                     "write the CTCAE v5.0 term (e.g. 'Diarrhea')")

    grades, not_numeric = _numeric(frame["grade"])
    blank_grade = _is_blank(frame["grade"]).to_numpy()
    bad_grade = not_numeric | (~grades.isna() & ~grades.isin([1, 2, 3, 4, 5])).to_numpy()
    if blank_grade.any():
        problems.add(file, _where(frame, "grade", blank_grade), "grade is missing",
                     "give the CTCAE v5.0 grade (1-5) of every adverse event")
    if bad_grade.any():
        values = ", ".join(sorted({str(v).strip() for v in frame["grade"][bad_grade]}))
        problems.add(file, _where(frame, "grade", bad_grade), f"grade must be an integer 1-5, found {values}",
                     "use the CTCAE v5.0 grade 1, 2, 3, 4 or 5 (grade 0 means no event: remove the row)")

    if column_recorded(frame, "attribution"):
        _check_vocabulary(
            frame, "attribution", ATTRIBUTION_CODES, file, problems, label="attribution",
            blank_fix="give the attribution of every event (unrelated, unlikely, possible, probable, "
                      "definite), or leave the whole column empty when attribution was not assessed",
            hint={"related": "'related' is ambiguous: choose possible, probable or definite",
                  "not related": "write 'unrelated'"},
        )
    return problems


def require_valid_adverse_events(adverse_events: pd.DataFrame, subjects: pd.DataFrame | None = None,
                                 file: str = DEFAULT_AE_FILE) -> None:
    """Raise :class:`gutaxis.io.errors.InputError` listing every problem :func:`check_adverse_events` finds."""
    check_adverse_events(adverse_events, subjects, file).raise_if_any()


__all__ = [
    "ABSCOPAL_CODES",
    "ATTRIBUTION_CODES",
    "CRITERION_NAMES",
    "IRECIST_CODES",
    "NOT_EVALUABLE",
    "RECIST_CODES",
    "RESPONSE_COLUMNS",
    "RESPONSE_VOCABULARIES",
    "SURVIVAL_ENDPOINTS",
    "blank_to_missing",
    "canonical_codes",
    "check_adverse_events",
    "check_subjects",
    "checked_groupings",
    "column_recorded",
    "require_valid_adverse_events",
    "require_valid_subjects",
    "response_criteria",
    "subject_warnings",
    "usable_groupings",
]
