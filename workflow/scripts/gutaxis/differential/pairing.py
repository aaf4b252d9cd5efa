"""Pair each subject's pre- and post-treatment sample from a sample sheet."""

from __future__ import annotations

import pandas as pd

from gutaxis.io.errors import ProblemCollector

PAIR_COLUMNS = ["subject_id", "pre_sample", "post_sample"]
UNPAIRED_COLUMNS = ["sample_id", "subject_id", "timepoint", "reason"]


def _present(values: pd.Series) -> pd.Series:
    """True where a sheet cell holds a value (sheets are read as text: empty means missing)."""
    return values.notna() & (values.astype(str).str.strip() != "")


def _timepoint_rows(samples, pre, post, subject_col, timepoint_col, source):
    problems = ProblemCollector()
    for column in ("sample_id", subject_col, timepoint_col):
        if column not in samples.columns:
            problems.add(source, f"column '{column}'", "the column is missing",
                         f"add a '{column}' column to the sample sheet")
    if pre == post:
        problems.add(source, f"timepoints '{pre}' and '{post}'",
                     "the pre and post timepoints are the same",
                     "name two different timepoints in the config")
    problems.raise_if_any()
    rows = samples.loc[_present(samples[subject_col]) & samples[timepoint_col].isin([pre, post]),
                       ["sample_id", subject_col, timepoint_col]].astype(str)
    duplicated = rows.duplicated([subject_col, timepoint_col], keep=False)
    for (subject, timepoint), group in rows[duplicated].groupby([subject_col, timepoint_col], sort=True):
        problems.add(source, f"subject '{subject}', timepoint '{timepoint}'",
                     f"{len(group)} samples ({', '.join(sorted(group['sample_id']))}) share one "
                     "subject and timepoint",
                     "keep one sample per subject and timepoint (resolve duplicates first)")
    problems.raise_if_any()
    return rows


def pair_samples(
    samples: pd.DataFrame,
    pre: str,
    post: str,
    subject_col: str = "subject_id",
    timepoint_col: str = "timepoint",
    source: str = "samples.tsv",
) -> pd.DataFrame:
    """Pair every subject's ``pre`` sample with its ``post`` sample.

    Parameters
    ----------
    samples : DataFrame
        Sample sheet with columns ``sample_id``, `subject_col`, `timepoint_col``.
        Rows with an empty subject (QC, blanks) or another timepoint are ignored.
    pre, post : str
        The two timepoint labels to pair.
    subject_col, timepoint_col : str
        Column names of the subject and the timepoint.
    source : str
        File name used in error messages.

    Returns
    -------
    DataFrame
        Columns ``subject_id, pre_sample, post_sample``; one row per subject that has
        both samples, sorted by subject. Subjects with only one of the two samples are
        listed by :func:`unpaired_samples`.

    Raises
    ------
    InputError
        A column is missing, or a subject has two samples at one timepoint.
    """
    rows = _timepoint_rows(samples, pre, post, subject_col, timepoint_col, source)
    wide = rows.pivot(index=subject_col, columns=timepoint_col, values="sample_id")
    wide = wide.reindex(columns=[pre, post]).dropna()
    pairs = pd.DataFrame({
        "subject_id": wide.index.astype(str),
        "pre_sample": wide[pre].to_numpy(dtype=str),
        "post_sample": wide[post].to_numpy(dtype=str),
    })
    return pairs.sort_values("subject_id", kind="stable").reset_index(drop=True)


def unpaired_samples(
    samples: pd.DataFrame,
    pre: str,
    post: str,
    subject_col: str = "subject_id",
    timepoint_col: str = "timepoint",
    source: str = "samples.tsv",
) -> pd.DataFrame:
    """The ``pre``/``post`` samples that :func:`pair_samples` leaves out, with the reason.

    Returns
    -------
    DataFrame
        Columns ``sample_id, subject_id, timepoint, reason``, sorted by sample.
    """
    rows = _timepoint_rows(samples, pre, post, subject_col, timepoint_col, source)
    n_timepoints = rows.groupby(subject_col)[timepoint_col].transform("nunique")
    lone = rows[n_timepoints < 2]
    missing = {pre: post, post: pre}
    out = pd.DataFrame({
        "sample_id": lone["sample_id"].to_numpy(dtype=str),
        "subject_id": lone[subject_col].to_numpy(dtype=str),
        "timepoint": lone[timepoint_col].to_numpy(dtype=str),
        "reason": [f"unpaired: subject has no '{missing[t]}' sample" for t in lone[timepoint_col]],
    }, columns=UNPAIRED_COLUMNS)
    return out.sort_values("sample_id", kind="stable").reset_index(drop=True)
