"""Who each diversity sample is: responder labels, sample metadata, count detection and the tidy α table.

The diversity library (:mod:`gutaxis.diversity.filtering`, :mod:`gutaxis.diversity.alpha`,
:mod:`gutaxis.diversity.beta`, :mod:`gutaxis.diversity.permanova`) works on a feature table, a sample
sheet and a subjects table with a ``response`` column. This module turns the
workflow's own tables (``results/inputs/samples.tsv``,
``results/clinical/responders.tsv``, ``results/import/<modality>.notes.tsv``) into
those inputs and the α values into the tidy table the workflow writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from gutaxis.clinical.checks import NON_RESPONDER, RESPONDER
from gutaxis.io.errors import InputError, Problem, ProblemCollector
from gutaxis.io.tables import read_sheet

#: columns of the tidy α table (``results/diversity/<modality>/alpha.tsv``)
ALPHA_TABLE_COLUMNS = [
    "sample_id", "subject_id", "timepoint", "cohort", "response", "metric", "value", "reason",
]
METADATA_COLUMNS = ["sample_id", "subject_id", "timepoint", "cohort", "response"]


def _blank(values: pd.Series) -> pd.Series:
    return values.isna() | (values.astype(str).str.strip() == "")


def subject_labels(responders: pd.DataFrame, primary: str, source: str = "responders.tsv") -> pd.DataFrame:
    """Cohort and primary responder label of every subject.

    Parameters
    ----------
    responders : DataFrame
        ``subject_id, cohort`` and one column per responder definition, values
        ``responder`` / ``non_responder`` / empty (not evaluable).
    primary : str
        The definition used as "response" (``config["response"]["primary"]``).
    source : str
        Name of the table in error messages.

    Returns
    -------
    DataFrame
        ``subject_id, cohort, response`` (text; empty string where not evaluable),
        sorted by subject.
    """
    problems = ProblemCollector()
    for column in ("subject_id", "cohort", primary):
        if column not in responders.columns:
            problems.add(source, f"column '{column}'", "the column is missing",
                         f"rerun the clinical module so that it writes '{column}' "
                         "(response.primary names a definition in response.definitions)")
    problems.raise_if_any()
    frame = responders[["subject_id", "cohort", primary]].astype(object).copy()
    frame.columns = ["subject_id", "cohort", "response"]
    for column in frame.columns:
        frame[column] = frame[column].where(~_blank(frame[column]), "").astype(str).str.strip()
    bad = ~frame["response"].isin(["", RESPONDER, NON_RESPONDER])
    if bad.any():
        problems.add(source, f"column '{primary}', subjects " + ", ".join(frame.loc[bad, "subject_id"][:8]),
                     f"values {sorted(set(frame.loc[bad, 'response']))} are not "
                     f"'{RESPONDER}'/'{NON_RESPONDER}'/empty",
                     "use the responder labels written by the clinical module")
    duplicated = frame["subject_id"].duplicated()
    if duplicated.any():
        problems.add(source, "subjects " + ", ".join(frame.loc[duplicated, "subject_id"][:8]),
                     "subjects are listed more than once", "keep one row per subject")
    problems.raise_if_any()
    return frame.sort_values("subject_id", kind="stable").reset_index(drop=True)


def subjects_without_response(subjects: pd.DataFrame, source: str = "subjects.tsv") -> pd.DataFrame:
    """Cohort of every subject of a study without response analyses (response empty).

    Parameters
    ----------
    subjects : DataFrame
        The checked subjects table (``subject_id, cohort``).

    Returns
    -------
    DataFrame
        ``subject_id, cohort, response`` as :func:`subject_labels`, response ``""``.
    """
    responders = subjects[["subject_id", "cohort"]].astype(object).assign(response="")
    return subject_labels(responders, "response", source)


def study_labels(responders_path: str | None, primary: str, subjects_path: str) -> pd.DataFrame:
    """:func:`subject_labels` from the responders table when the study has a response
    (`responders_path` given), else :func:`subjects_without_response` of the subjects table."""
    if responders_path:
        return subject_labels(read_sheet(responders_path), primary, responders_path)
    return subjects_without_response(read_sheet(subjects_path), subjects_path)


def sample_metadata(samples: pd.DataFrame, labels: pd.DataFrame, sample_ids: Sequence[str],
                    source: str = "samples.tsv", period: str | None = None) -> pd.DataFrame:
    """Subject, timepoint, cohort and response of each sample of a feature table.

    Parameters
    ----------
    samples : DataFrame
        Checked sample sheet (``sample_id, subject_id, timepoint``).
    labels : DataFrame
        :func:`subject_labels` output.
    sample_ids : sequence of str
        The samples of the feature table, in its order.
    period : str, optional
        Sample-sheet column of a crossover study's periods; added as column
        ``period`` after ``response``.

    Returns
    -------
    DataFrame
        :data:`METADATA_COLUMNS` (+ ``period``), one row per id of `sample_ids` in
        that order; cohort/response empty for subjects absent from `labels`.
    """
    if period and period not in samples.columns:
        raise InputError(Problem(source, f"column '{period}'", "the crossover period column is missing",
                                 f"add '{period}' (1, 2, ...) to the sample sheet"))
    sheet = samples[["sample_id", "subject_id", "timepoint"] + ([period] if period else [])].astype(str)
    sheet = sheet.drop_duplicates("sample_id").set_index("sample_id")
    ids = pd.Index([str(s) for s in sample_ids], name="sample_id")
    absent = ids.difference(sheet.index)
    if len(absent):
        raise InputError(Problem(source, "samples " + ", ".join(sorted(absent)[:8]),
                                 f"{len(absent)} samples of the feature table are not in the sample sheet",
                                 "rerun the import step, which matches the table to the sheet"))
    out = sheet.reindex(ids).reset_index()
    info = labels.set_index("subject_id")
    out["cohort"] = out["subject_id"].map(info["cohort"]).fillna("").astype(str)
    out["response"] = out["subject_id"].map(info["response"]).fillna("").astype(str)
    if period:
        return out[METADATA_COLUMNS + [period]].rename(columns={period: "period"})
    return out[METADATA_COLUMNS]


def abundance_values(table: pd.DataFrame, source: str, problems: ProblemCollector) -> np.ndarray:
    """The cells of a samples x features table as floats, every bad cell collected as a problem.

    A cell that is not a number stops at once (with the problems collected so far);
    missing, infinite or negative cells are added to `problems` (the caller raises).
    """
    try:
        x = table.to_numpy(dtype=float)
    except (TypeError, ValueError):
        problems.add(source, "cells", "not every cell is a number", "write numeric abundances only")
        problems.raise_if_any()
    bad = ~np.isfinite(x) | (x < 0)
    if bad.any():
        rows, cols = np.nonzero(bad)
        where = ", ".join(f"(sample {table.index[r]}, feature {table.columns[c]})"
                          for r, c in zip(rows[:5], cols[:5]))
        problems.add(source, where, f"{int(bad.sum())} cells are missing, infinite or negative",
                     "abundances must be finite and >= 0 (write absent features as 0)")
    return x


def count_input(notes: pd.DataFrame, table: pd.DataFrame) -> tuple[bool, str]:
    """Does the canonical table hold read counts (so Chao1 and rarefied richness apply)?

    Counts are used only when the importer read counts (``units == counts`` in its
    notes), kept them (``output_units`` counts or absent) and every value is a
    whole number.

    Parameters
    ----------
    notes : DataFrame
        ``key, value`` table written by the import rule.
    table : DataFrame
        The canonical (or filtered) feature table.

    Returns
    -------
    counts : bool
    reason : str
        Why (empty when counts are used).
    """
    values = dict(zip(notes["key"].astype(str), notes["value"].astype(str)))
    units = values.get("units", "unknown")
    output_units = values.get("output_units", units)
    if units != "counts":
        return False, (f"needs read counts; the import holds relative abundances (importer units: {units})")
    if output_units != "counts":
        return False, (f"needs read counts; the importer turned the counts into {output_units} "
                       "(set the importer option value: counts to keep them)")
    x = table.to_numpy(dtype=float)
    if not np.allclose(x, np.round(x)):
        return False, "needs read counts; the imported table holds non-integer values"
    return True, ""


def tidy_alpha(values: pd.DataFrame, not_computed: pd.DataFrame, metadata: pd.DataFrame,
               metrics: Sequence[str], missing_reason: dict[str, str] | None = None) -> pd.DataFrame:
    """The α values as a tidy table, every missing value with its reason.

    Parameters
    ----------
    values : DataFrame
        ``AlphaResult.values`` (samples x metrics).
    not_computed : DataFrame
        ``AlphaResult.not_computed`` (``sample_id, metric, reason``).
    metadata : DataFrame
        :func:`sample_metadata` for the samples of `values`.
    metrics : sequence of str
        Metrics to write, in order. A metric absent from `values` is written as
        missing with ``missing_reason[metric]``.
    missing_reason : dict, optional
        Reason for each metric that was not computed at all.

    Returns
    -------
    DataFrame
        :data:`ALPHA_TABLE_COLUMNS` (with ``period`` after ``response`` when the
        metadata has it), rows by metric (in `metrics` order) then sample id.
    """
    columns = list(ALPHA_TABLE_COLUMNS)
    if "period" in metadata.columns:
        columns.insert(columns.index("response") + 1, "period")
    missing_reason = missing_reason or {}
    meta = metadata.set_index("sample_id").sort_index(kind="stable")
    reasons = not_computed.set_index(["sample_id", "metric"])["reason"]
    frames = []
    for metric in metrics:
        if metric in values.columns:
            column = values[metric].reindex(meta.index).to_numpy(dtype=float)
            why = [reasons.get((s, metric), "") if np.isnan(v) else ""
                   for s, v in zip(meta.index, column)]
        else:
            column = np.full(len(meta), np.nan)
            why = [missing_reason.get(metric, "not computed")] * len(meta)
        frames.append(meta.reset_index().assign(metric=metric, value=column, reason=why))
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


class AlphaDesign(NamedTuple):
    """The tidy α table split back into what :func:`gutaxis.diversity.alpha.paired_alpha_tests` takes.

    Attributes
    ----------
    values : DataFrame
        Samples x metrics (metrics in table order).
    samples : DataFrame
        ``sample_id, subject_id, timepoint`` (+ ``period`` when the table has it).
    subjects : DataFrame
        ``subject_id, cohort, response``.
    """

    values: pd.DataFrame
    samples: pd.DataFrame
    subjects: pd.DataFrame


def alpha_design(tidy: pd.DataFrame) -> AlphaDesign:
    """Split the tidy α table back into values, samples and subjects (:class:`AlphaDesign`).

    Metrics with no value at all (e.g. Chao1 without counts) are left out.
    """
    tidy = tidy.copy()
    extra = ["period"] if "period" in tidy.columns else []
    for column in METADATA_COLUMNS + extra + ["metric"]:
        tidy[column] = tidy[column].where(~_blank(tidy[column]), "").astype(str)
    order = list(dict.fromkeys(tidy["metric"]))
    values = tidy.pivot(index="sample_id", columns="metric", values="value").astype(float)
    values = values[[m for m in order if values[m].notna().any()]]
    values.columns.name = None
    samples = tidy[["sample_id", "subject_id", "timepoint"] + extra].drop_duplicates("sample_id")
    samples = samples.sort_values("sample_id", kind="stable").reset_index(drop=True)
    subjects = tidy[tidy["subject_id"] != ""][["subject_id", "cohort", "response"]].drop_duplicates("subject_id")
    subjects = subjects.sort_values("subject_id", kind="stable").reset_index(drop=True)
    return AlphaDesign(values, samples, subjects)


def read_alpha(path) -> AlphaDesign:
    """:func:`alpha_design` of the tidy table ``results/diversity/<modality>/alpha.tsv``."""
    tidy = read_sheet(path)
    tidy["value"] = pd.to_numeric(tidy["value"], errors="coerce")
    return alpha_design(tidy)


def full_design_timepoints(timepoints: Sequence[str], baseline: str, present: Sequence[str]) -> list[str]:
    """Every design timepoint with data, baseline first (the LMM reference), then in time order."""
    present = set(present)
    rest = [t for t in timepoints if t != baseline and t in present]
    return ([baseline] if baseline in present else []) + rest


def call_significant(p_values: pd.Series, level: float, tested: pd.Series | None = None) -> pd.Series:
    """``p < level`` where a hypothesis was tested, empty elsewhere.

    Parameters
    ----------
    p_values : Series
    level : float
        Significance level.
    tested : Series of bool, optional
        Rows that test a hypothesis of interest (e.g. not a model intercept);
        default: every row with a p value.

    Returns
    -------
    Series
        ``True`` / ``False`` / ``""`` (no p value, or not a tested row).
    """
    p = pd.to_numeric(p_values, errors="coerce")
    keep = p.notna() if tested is None else p.notna() & tested.astype(bool)
    out = pd.Series("", index=p_values.index, dtype=object)
    out[keep] = (p[keep] < level).astype(bool)
    return out


def metric_roles(check: pd.DataFrame) -> tuple[str, dict]:
    """The primary metric in use and the role of each metric, from ``beta_metrics.tsv``."""
    roles = dict(zip(check["metric"].astype(str), check["role"].astype(str)))
    primary = [m for m, r in roles.items() if r == "primary"]
    return (primary[0] if primary else ""), roles


def with_front(table: pd.DataFrame, front: dict) -> pd.DataFrame:
    """`table` with the constant columns `front` (e.g. the contrast and metric of its rows) first."""
    out = table.assign(**front)
    return out[list(front) + [c for c in out.columns if c not in front]]


def call_by_metric_role(table: pd.DataFrame, metric: str, primary_metric: str, level: float,
                        tested: pd.Series | None = None) -> pd.DataFrame:
    """Add ``significant`` (p < level), ``role`` and ``called`` to one metric's test table.

    Several β metrics test one hypothesis (does the community differ?), so only
    the pre-specified primary metric makes a call; the others are sensitivity
    analyses whose ``called`` stays empty while ``significant`` still shows
    their own p < level.

    Parameters
    ----------
    table : DataFrame
        Test rows with a ``p_value`` column.
    metric, primary_metric : str
        The table's β metric and the configured primary one.
    level : float
        Significance level.
    tested : Series of bool, optional
        As in :func:`call_significant`.

    Returns
    -------
    DataFrame
        A copy with the three columns added (``role``: primary / sensitivity).
    """
    out = table.copy()
    out["significant"] = call_significant(out["p_value"], level, tested)
    primary = metric == primary_metric
    out["role"] = "primary" if primary else "sensitivity"
    out["called"] = out["significant"] if primary else ""
    return out


def beta_metric_summary(paths: dict) -> list[str]:
    """End-of-run lines: the β metrics not computed because they are undefined for some
    sample pairs, and the metric that became primary (from ``beta_metrics.tsv``).

    Parameters
    ----------
    paths : dict
        Modality -> path of its ``beta_metrics.tsv`` (absent files are skipped).

    Returns
    -------
    list of str
    """
    from gutaxis.io.tables import existing_tables

    lines = []
    for modality, path, check in existing_tables(paths):
        for row in check[check["role"] == "not computed"].itertuples():
            lines.append(f"diversity {modality}: {row.metric} is undefined for {int(row.n_pairs_undefined):,} "
                         f"of {int(row.n_pairs):,} sample pairs; not computed ({path})")
        moved = check[(check["role"] == "primary") & (check["configured_role"] != "primary")]
        for row in moved.itertuples():
            lines.append(f"diversity {modality}: {row.metric} is the primary β metric ({row.note})")
    return lines
