"""Read and check the study sheets: samples, subjects and adverse events.

Each sheet is checked first against its JSON schema (``workflow/schemas/``:
required columns, vocabularies, number patterns) and then for meaning
(unique ids, subjects that exist, declared timepoints and cohorts only).
Every problem of a file is collected and reported together as one
:class:`gutaxis.io.errors.InputError`.
"""

from __future__ import annotations

import re

from pathlib import Path

import jsonschema
import pandas as pd
import yaml

from gutaxis.io.errors import InputError, Problem, ProblemCollector

#: sample types that belong to a patient (the others are QC injections and blanks)
BIOLOGICAL_SAMPLE_TYPES = ("stool", "blood", "tissue")
#: columns of the table of samples dropped by the sheet checks
DROPPED_COLUMNS = ("sample_id", "subject_id", "timepoint", "sample_type", "reason")
#: how many offending rows a message lists before it says "and N more"
MAX_ROWS_LISTED = 8
#: spreadsheet and R spellings of "missing"; the sheets use an empty cell
MISSING_TOKENS = ("na", "nan", "n/a", "null", "none", ".", "-", "?")
#: values of the sample sheet's `exclude` column that leave a sample out
EXCLUDE_VALUES = ("yes", "true", "1")

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "schemas"


def load_schema(name: str) -> dict:
    """Load ``workflow/schemas/<name>.schema.yaml``."""
    # libyaml's safe loader when PyYAML has it: the same result, ~10x faster, and the
    # config schema is read every time the workflow is parsed (`snakemake -n`)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(SCHEMA_DIR / f"{name}.schema.yaml") as handle:
        return yaml.load(handle, Loader=loader)


def read_text_table(path: str | Path, label: str | None = None) -> pd.DataFrame:
    """Read a tab-separated sheet with every cell as text (empty cells as "").

    Parameters
    ----------
    path : str or Path
        The file.
    label : str, optional
        How the file is named in messages (defaults to the path).

    Raises
    ------
    InputError
        When the file is missing, empty, not tab-separated or has duplicated
        column names.
    """
    label = label or str(path)
    path = Path(path)
    if not path.is_file():
        raise InputError(
            Problem(label, "file", "the file does not exist", "check the path in config/config.yaml")
        )
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment=None)
    except pd.errors.EmptyDataError:
        raise InputError(
            Problem(label, "file", "the file is empty", "write a header line and one row per record")
        ) from None
    except pd.errors.ParserError as err:
        raise InputError(
            Problem(
                label,
                "file",
                f"the file is not a rectangular tab-separated table ({err})",
                "save it as tab-separated text with the same number of fields on every line",
            )
        ) from None
    duplicated = [c for c in table.columns if "." in c and c.rsplit(".", 1)[0] in table.columns]
    if duplicated:
        raise InputError(
            Problem(
                label,
                "header",
                f"column names appear more than once ({', '.join(duplicated)})",
                "give every column a unique name",
            )
        )
    if table.shape[1] == 1 and "," in table.columns[0]:
        raise InputError(
            Problem(label, "header", "the file looks comma-separated", "save it as tab-separated text (TSV)")
        )
    return table.apply(lambda col: col.str.strip())


def id_key(value) -> str:
    """A sample id as compared with the sheet: stripped, integers without leading zeros
    or a trailing '.0' (``007``, ``7.0`` and ``7`` are the same id)."""
    text = str(value).strip()
    if re.fullmatch(r"\d+(\.0+)?", text):
        return str(int(float(text)))
    return text


def _rows_text(table: pd.DataFrame, mask: pd.Series, id_column: str | None) -> str:
    """Describe offending rows as 'rows 3 (S01), 7 (S02)' using 1-based file line numbers."""
    positions = [i for i, flag in enumerate(mask.to_numpy()) if flag]
    # a sheet as read keeps its row numbers in the index, also once rows are set aside
    numbered = pd.api.types.is_integer_dtype(table.index)
    parts = []
    for pos in positions[:MAX_ROWS_LISTED]:
        line = (int(table.index[pos]) if numbered else pos) + 2  # header is line 1
        if id_column and id_column in table.columns and table.iloc[pos][id_column]:
            parts.append(f"{line} ({table.iloc[pos][id_column]})")
        else:
            parts.append(str(line))
    more = len(positions) - MAX_ROWS_LISTED
    text = ", ".join(parts) + (f" and {more} more" if more > 0 else "")
    return ("line " if len(positions) == 1 else "lines ") + text


def _flagged(table: pd.DataFrame, mask: pd.Series, column: str, label: str, id_column: str | None,
             what, fix: str) -> list[Problem]:
    """One problem naming the lines of `mask` in `column`; none when no line is flagged.

    `what` is the text, or a function of the sorted distinct flagged values that
    writes it.
    """
    if not mask.any():
        return []
    if callable(what):
        what = what(sorted(table.loc[mask, column].unique()))
    return [Problem(label, f"column '{column}', {_rows_text(table, mask, id_column)}", what, fix)]


def schema_problems(
    table: pd.DataFrame, schema: dict, label: str, id_column: str | None = None
) -> list[Problem]:
    """Check a text table column by column against a row schema.

    Each property of ``schema`` describes one column; every row is one JSON
    object. A column with ``minLength: 1`` must be filled on every row; other
    empty cells are skipped, so an empty ``pfs2_months`` means
    "not recorded" rather than a bad number. Problems are grouped per column and
    kind, naming the offending lines and values.
    """
    problems: list[Problem] = []
    missing = [c for c in schema.get("required", []) if c not in table.columns]
    for column in missing:
        description = schema["properties"][column].get("description", "")
        problems.append(
            Problem(
                label,
                f"column '{column}'",
                "this required column is missing",
                f"add a column named '{column}' ({description.rstrip('.')})",
            )
        )
    for column, rule in schema.get("properties", {}).items():
        if column not in table.columns:
            continue
        values = table[column]
        empty = values == ""
        if rule.get("minLength", 0) > 0:
            problems += _flagged(table, empty, column, label, id_column, "the value is empty",
                                 f"fill in {column} on every row")
        validator = jsonschema.Draft202012Validator(rule)
        distinct = values[~empty].unique()
        bad_values = [v for v in distinct if not validator.is_valid(v)]
        if not bad_values:
            continue
        mask = values.isin(bad_values)
        if all(str(v).strip().lower() in MISSING_TOKENS for v in bad_values):
            problems += _flagged(table, mask, column, label, id_column,
                                 f"missing values are written as {', '.join(repr(v) for v in bad_values)}",
                                 "leave the cell empty: an empty cell means not recorded")
            continue
        if "enum" in rule:
            allowed = ", ".join(repr(v) for v in rule["enum"] if v != "")
            what = f"value(s) {', '.join(repr(v) for v in bad_values[:MAX_ROWS_LISTED])} not allowed"
            fix = f"use one of {allowed}" + (" or leave it empty" if "" in rule["enum"] else "")
        else:
            what = f"value(s) {', '.join(repr(v) for v in bad_values[:MAX_ROWS_LISTED])} are malformed"
            fix = rule.get("description", "correct the value")
        problems += _flagged(table, mask, column, label, id_column, what, fix)
    return problems


def _duplicate_problems(table: pd.DataFrame, column: str, label: str) -> list[Problem]:
    duplicated = table[column].duplicated(keep=False) & (table[column] != "")
    return _flagged(table, duplicated, column, label, None,
                    lambda ids: f"identifier(s) {', '.join(ids[:MAX_ROWS_LISTED])} appear more than once",
                    f"give every row a unique {column}")


def check_subjects(subjects: pd.DataFrame, cohorts: list[str], label: str) -> list[Problem]:
    """Schema and meaning of the subjects table: unique ids, declared cohorts."""
    problems = schema_problems(subjects, load_schema("subjects"), label, "subject_id")
    if "subject_id" in subjects.columns:
        problems += _duplicate_problems(subjects, "subject_id", label)
    if "cohort" in subjects.columns:
        unknown = (subjects["cohort"] != "") & ~subjects["cohort"].isin(cohorts)
        problems += _flagged(subjects, unknown, "cohort", label, "subject_id",
                             lambda values: f"cohort(s) {', '.join(repr(v) for v in values)} are not declared",
                             f"use one of {', '.join(cohorts)} or add the cohort to design.cohorts in the config")
    return problems


def check_samples(
    samples: pd.DataFrame,
    subject_ids: set[str],
    timepoints: list[str],
    label: str,
    subjects_label: str = "subjects table",
) -> list[Problem]:
    """Schema and meaning of the sample sheet.

    Checks unique sample ids; biological samples with a subject and a
    timepoint; QC and blank rows without them; timepoints declared in the
    config; subjects present in the subjects table.
    """
    problems = schema_problems(samples, load_schema("samples"), label, "sample_id")
    needed = {"sample_id", "subject_id", "timepoint", "sample_type"}
    if not needed <= set(samples.columns):
        return problems
    problems += _duplicate_problems(samples, "sample_id", label)
    biological = samples["sample_type"].isin(BIOLOGICAL_SAMPLE_TYPES)
    technical = samples["sample_type"].isin(["qc", "blank"])
    for column in ("subject_id", "timepoint"):
        problems += _flagged(samples, biological & (samples[column] == ""), column, label, "sample_id",
                             f"biological samples need a {column}",
                             f"fill in {column}, or set sample_type to qc or blank if the row is a QC pool or blank")
        problems += _flagged(samples, technical & (samples[column] != ""), column, label, "sample_id",
                             f"qc and blank rows must not have a {column}",
                             f"leave {column} empty on QC-pool and blank rows")
    bad_tp = biological & (samples["timepoint"] != "") & ~samples["timepoint"].isin(timepoints)
    problems += _flagged(samples, bad_tp, "timepoint", label, "sample_id",
                         lambda values: f"timepoint(s) {', '.join(repr(v) for v in values)} are not declared",
                         f"use one of {', '.join(timepoints)} or add it to design.timepoints in the config")
    orphan = biological & (samples["subject_id"] != "") & ~samples["subject_id"].isin(subject_ids)
    problems += _flagged(samples, orphan, "subject_id", label, "sample_id",
                         lambda values: f"subject(s) {', '.join(values[:MAX_ROWS_LISTED])} are not in the "
                                        f"{subjects_label}",
                         f"add them to the {subjects_label} or correct the subject_id")
    return problems


def check_adverse_events(events: pd.DataFrame, subject_ids: set[str], label: str) -> list[Problem]:
    """Schema and meaning of the adverse-event table: known subjects, grades 1-5."""
    problems = schema_problems(events, load_schema("adverse_events"), label, "subject_id")
    if "subject_id" in events.columns:
        orphan = (events["subject_id"] != "") & ~events["subject_id"].isin(subject_ids)
        problems += _flagged(events, orphan, "subject_id", label, None,
                             lambda values: f"subject(s) {', '.join(values[:MAX_ROWS_LISTED])} are not in the "
                                            "subjects table",
                             "add them to the subjects table or correct the subject_id")
    return problems


def resolve_duplicate_samples(
    samples: pd.DataFrame, rule: str, label: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Resolve several samples of one type for the same subject and timepoint.

    Parameters
    ----------
    samples : DataFrame
        A checked sample sheet.
    rule : {"last", "first", "error", "keep"}
        ``last`` keeps the row listed last (a re-run is usually appended),
        ``first`` the row listed first, ``error`` raises, ``keep`` keeps every
        row (cohort studies, whose models take repeated samples as they come).
    label : str
        How the sheet is named in messages.

    Returns
    -------
    kept : DataFrame
        The sheet without the dropped duplicates (QC and blank rows untouched).
    dropped : DataFrame
        ``sample_id, subject_id, timepoint, sample_type, reason`` for every
        dropped sample.
    """
    biological = samples["sample_type"].isin(BIOLOGICAL_SAMPLE_TYPES)
    key = ["subject_id", "timepoint", "sample_type"]
    clash = biological & samples.duplicated(key, keep=False)
    if not clash.any() or rule == "keep":
        return samples.copy(), pd.DataFrame(columns=[*DROPPED_COLUMNS], dtype=str)
    if rule == "error":
        raise InputError(
            Problem(
                label,
                f"{_rows_text(samples, clash, 'sample_id')}",
                "several samples of one type share a subject and timepoint",
                "remove all but one, or set design.duplicates to 'last' or 'first' in the config",
            )
        )
    keep = "last" if rule == "last" else "first"
    drop = clash & samples.duplicated(key, keep=keep)
    kept_ids = samples.loc[clash & ~drop].set_index(key)["sample_id"]
    reasons = [
        f"duplicate of {kept_ids.loc[tuple(row[k] for k in key)]} "
        f"(same subject, timepoint and sample_type; design.duplicates = {rule})"
        for _, row in samples.loc[drop].iterrows()
    ]
    dropped = samples.loc[drop, ["sample_id", *key]].assign(reason=reasons).reset_index(drop=True)
    return samples.loc[~drop].copy(), dropped


def split_excluded(samples: pd.DataFrame, label: str) -> tuple[pd.DataFrame, pd.DataFrame, list[Problem]]:
    """Take the samples the sheet's ``exclude`` column leaves out.

    Returns
    -------
    kept : DataFrame
        The sheet without the excluded rows.
    excluded : DataFrame
        ``sample_id, subject_id, timepoint, sample_type, reason`` of every excluded
        sample; the reason is ``excluded in the sample sheet: <exclude_reason>``.
    problems : list of Problem
        Excluded rows without an ``exclude_reason``.
    """
    if "exclude" not in samples.columns:
        return samples, pd.DataFrame(columns=[*DROPPED_COLUMNS], dtype=str), []
    out = samples["exclude"].str.lower().isin(EXCLUDE_VALUES)
    reasons = samples["exclude_reason"] if "exclude_reason" in samples.columns else pd.Series("", index=samples.index)
    silent = out & (reasons == "")
    problems = _flagged(samples, silent, "exclude_reason", label, "sample_id", "an excluded sample needs its reason",
                        "write why the sample is left out in exclude_reason (it is reported with the sample)")
    excluded = samples.loc[out, ["sample_id", "subject_id", "timepoint", "sample_type"]].assign(
        reason="excluded in the sample sheet: " + reasons[out]
    )
    return samples.loc[~out].copy(), excluded.reset_index(drop=True), problems


def load_sheets(config: dict) -> dict[str, pd.DataFrame]:
    """Read and check the samples, subjects and adverse-event sheets of a config.

    Returns
    -------
    dict
        ``samples`` (without the excluded samples), ``subjects``,
        ``adverse_events`` (empty when not configured) and ``excluded`` (the samples
        the sheet's ``exclude`` column leaves out, with their reason). Duplicated samples are resolved per modality, among the
        samples each table actually holds (see :mod:`gutaxis.io.reconcile`); with
        ``design.duplicates: error`` they are an error here already.

    Raises
    ------
    InputError
        With every problem of every sheet.
    """
    design = config["design"]
    collector = ProblemCollector()
    subjects_label = config["subjects"]
    samples_label = config["samples"]
    subjects = samples = events = None
    for name, path in (("subjects", subjects_label), ("samples", samples_label)):
        try:
            table = read_text_table(path)
        except InputError as err:
            collector.problems.extend(err.problems)
            continue
        if name == "subjects":
            subjects = table
        else:
            samples = table
    if subjects is not None:
        collector.problems.extend(check_subjects(subjects, design["cohorts"], subjects_label))
    subject_ids = set(subjects["subject_id"]) if subjects is not None and "subject_id" in subjects else set()
    excluded = pd.DataFrame(columns=[*DROPPED_COLUMNS], dtype=str)
    if samples is not None:
        # excluded rows are set aside before the checks: a sample left out (a flare visit,
        # a withdrawn subject) needs no declared timepoint or known subject, only an id
        # that no other row uses and a reason
        if "sample_id" in samples.columns:
            if "exclude" in samples.columns:
                samples["exclude"] = samples["exclude"].str.strip().str.lower()
            if "period" in samples.columns:
                # 1, 01 and 1.0 (a spreadsheet's number) are one period
                samples["period"] = samples["period"].map(id_key)
            full = samples
            samples, excluded, problems = split_excluded(full, samples_label)
            collector.problems.extend(problems)
            clash = full["sample_id"].isin(set(excluded["sample_id"])) & full["sample_id"].duplicated(keep=False)
            if clash.any():
                collector.problems.append(Problem(
                    samples_label, f"column 'sample_id', {_rows_text(full, clash, 'sample_id')}",
                    "an excluded sample shares its id with another row",
                    "give every row of the sample sheet its own sample_id"))
        collector.problems.extend(
            check_samples(samples, subject_ids, design["timepoints"], samples_label, subjects_label)
        )
    ae_path = config.get("adverse_events") or ""
    if ae_path:
        try:
            events = read_text_table(ae_path)
            collector.problems.extend(check_adverse_events(events, subject_ids, ae_path))
        except InputError as err:
            collector.problems.extend(err.problems)
    collector.raise_if_any()
    if design["duplicates"] == "error":
        resolve_duplicate_samples(samples, "error", samples_label)
    if events is None:
        events = pd.DataFrame(columns=["subject_id", "term", "grade", "attribution"], dtype=str)
    return {"samples": samples, "subjects": subjects, "adverse_events": events, "excluded": excluded}
