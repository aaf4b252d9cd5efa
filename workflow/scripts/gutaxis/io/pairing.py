"""Pair each subject's pre- and post-treatment sample from the sample sheet.

One pairing serves every module that compares a subject with itself (differential
tests, α and β diversity, the PERMANOVA of time within subject): :func:`paired_design`
returns the pairs and the samples left without a partner, :func:`pair_samples` the
pairs alone and :func:`unpaired_samples` the leftovers as the diversity notes word them.
Pairing is a table operation (a pivot of subject x timepoint), never a loop over
samples; a subject with two samples at one timepoint is an input error, reported with
its sample ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gutaxis.io.errors import ProblemCollector


@dataclass(frozen=True)
class PairedDesign:
    """Subjects with a sample at both timepoints, and the samples left over.

    Attributes
    ----------
    pairs : pandas.DataFrame
        Columns ``subject_id, pre_sample, post_sample``, one row per subject with
        both samples, sorted by subject.
    unpaired : pandas.DataFrame
        Columns ``sample_id, subject_id, timepoint, reason``: the samples at the two
        timepoints whose partner is missing (reason :data:`PARTNER_MISSING`), sorted
        by sample.
    """

    pairs: pd.DataFrame
    unpaired: pd.DataFrame


PAIR_COLUMNS = ["subject_id", "pre_sample", "post_sample"]
UNPAIRED_COLUMNS = ["sample_id", "subject_id", "timepoint", "reason"]
#: why a sample has no partner: in the differential dropped_samples tables ...
PARTNER_MISSING = "no '{partner}' sample for this subject"
#: ... and in the diversity notes (both wordings reach result tables, so both stay)
UNPAIRED_NOTE = "unpaired: subject has no '{partner}' sample"


def _present(values: pd.Series) -> pd.Series:
    """True where a sheet cell holds a value (sheets are read as text: empty means missing)."""
    return values.notna() & (values.astype(str).str.strip() != "")


def _timepoint_rows(samples: pd.DataFrame, pre: str, post: str, sample_ids,
                    source: str) -> pd.DataFrame:
    """``sample_id, subject_id, timepoint`` (text) of the subjects' samples at ``pre`` or
    ``post``; raises on missing columns, equal timepoints or two samples of one subject
    at one timepoint."""
    problems = ProblemCollector()
    for column in ("sample_id", "subject_id", "timepoint"):
        if column not in samples.columns:
            problems.add(source, f"column '{column}'", "the column is missing",
                         f"add a '{column}' column to the sample sheet")
    if pre == post:
        problems.add(source, f"timepoints '{pre}' and '{post}'",
                     "the pre and post timepoints are the same",
                     "name two different timepoints in the config")
    problems.raise_if_any()
    wanted = _present(samples["subject_id"]) & samples["timepoint"].isin([pre, post])
    if sample_ids is not None:
        wanted &= samples["sample_id"].astype(str).isin(set(map(str, sample_ids)))
    rows = samples.loc[wanted, ["sample_id", "subject_id", "timepoint"]].astype(str)
    duplicated = rows[rows.duplicated(["subject_id", "timepoint"], keep=False)]
    for (subject, timepoint), group in duplicated.groupby(["subject_id", "timepoint"], sort=True):
        problems.add(source, f"subject {subject}, timepoint '{timepoint}'",
                     f"{len(group)} samples ({', '.join(sorted(group['sample_id']))}) share one "
                     "subject and timepoint",
                     "keep one sample per subject and timepoint (resolve duplicates first, or "
                     "give replicates their own timepoint label)")
    problems.raise_if_any()
    return rows


def _leftovers(rows: pd.DataFrame, paired_subjects, pre: str, post: str,
               wording: str) -> pd.DataFrame:
    """The rows of subjects without a pair, each with the missing partner in ``wording``."""
    lone = rows[~rows["subject_id"].isin(paired_subjects)]
    partner = np.where(lone["timepoint"].to_numpy() == pre, post, pre)
    reasons = [wording.format(partner=p) for p in partner]
    out = lone.assign(reason=reasons)[UNPAIRED_COLUMNS]
    return out.sort_values("sample_id", kind="stable").reset_index(drop=True)


def paired_design(samples: pd.DataFrame, pre: str, post: str, sample_ids=None,
                  source: str = "samples.tsv", wording: str = PARTNER_MISSING) -> PairedDesign:
    """Pair each subject's ``pre`` sample with its ``post`` sample.

    Parameters
    ----------
    samples : pandas.DataFrame
        Sample sheet with columns ``sample_id, subject_id, timepoint``. Rows with an
        empty subject (QC, blanks) or another timepoint are ignored.
    pre, post : str
        The two timepoint labels to pair.
    sample_ids : iterable of str, optional
        Restrict to these samples (those present in a feature table).
    source : str
        The sample sheet's name in error messages.
    wording : str
        Reason of an unpaired sample, with ``{partner}`` for the missing timepoint.

    Returns
    -------
    PairedDesign

    Raises
    ------
    gutaxis.io.errors.InputError
        A column is missing, ``pre`` equals ``post``, or a subject has two samples at
        one timepoint.
    """
    rows = _timepoint_rows(samples, pre, post, sample_ids, source)
    # pivot sorts the subjects: the pairs come out in subject order
    wide = rows.pivot(index="subject_id", columns="timepoint", values="sample_id")
    wide = wide.reindex(columns=[pre, post]).dropna()
    pairs = pd.DataFrame({"subject_id": wide.index.to_numpy(dtype=str),
                          "pre_sample": wide[pre].to_numpy(dtype=str),
                          "post_sample": wide[post].to_numpy(dtype=str)}, columns=PAIR_COLUMNS)
    return PairedDesign(pairs, _leftovers(rows, wide.index, pre, post, wording))


def pair_samples(samples: pd.DataFrame, pre: str, post: str, sample_ids=None,
                 source: str = "samples.tsv") -> pd.DataFrame:
    """The pairs of :func:`paired_design`: ``subject_id, pre_sample, post_sample``."""
    return paired_design(samples, pre, post, sample_ids, source).pairs


def unpaired_samples(samples: pd.DataFrame, pre: str, post: str, sample_ids=None,
                     source: str = "samples.tsv") -> pd.DataFrame:
    """The samples :func:`pair_samples` leaves out, reason worded :data:`UNPAIRED_NOTE`."""
    return paired_design(samples, pre, post, sample_ids, source, UNPAIRED_NOTE).unpaired
