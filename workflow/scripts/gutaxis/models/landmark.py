"""Landmark analysis: outcomes of on-treatment features counted from the landmark, not day 0.

A patient must be alive and on study at the on-treatment visit to give an on-treatment
sample. Predicting response or time to progression *from treatment start* with such a
sample credits the feature with the time the patient had to survive to be sampled
(guarantee-time or immortal-time bias). The landmark method fixes a time :math:`L` after
treatment start at or after the last on-treatment sample used, keeps only the subjects
still event-free and under follow-up at :math:`L`, and measures time to event from
:math:`L` (:math:`T - L`).

Sample times come from the sample sheet's ``days_from_start`` column, or from
``collection_date`` minus the subjects table's ``treatment_start`` (both YYYY-MM-DD);
months are days / 30.4375, the unit of the survival columns.

References
----------
Anderson JR, Cain KC, Gelber RD (1983) Analysis of survival by tumor response. J Clin
Oncol 1:710-719. Dafni U (2011) Landmark analysis at the 25-year landmark point. Circ
Cardiovasc Qual Outcomes 4:363-371. Giobbie-Hurder A, Gelber RD, Regan MM (2013)
Challenges of guarantee-time bias. J Clin Oncol 31:2963-2969.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Landmark:
    """The landmark of one on-treatment feature set.

    Attributes
    ----------
    months : float
        Landmark time after treatment start (NaN: no sample times, no landmark).
    source : str
        How it was set: ``latest on-treatment sample`` or ``configured``.
    excluded : pandas.DataFrame
        ``subject_id, reason`` of the subjects left out because their event or
        censoring came before the landmark (or their sample after it).
    """

    months: float
    source: str
    excluded: pd.DataFrame

    @property
    def applied(self) -> bool:
        return bool(np.isfinite(self.months))

    def label(self) -> str:
        """How outputs name it, e.g. ``landmark 1.4 months (latest on-treatment sample)``."""
        if not self.applied:
            return "no landmark (no sample times): on-treatment features, guarantee-time bias possible"
        return f"landmark {self.months:.2f} months ({self.source})"


#: days per month (365.25 / 12), the unit of the survival columns
DAYS_PER_MONTH = 30.4375
#: the sample sheet's days since treatment start, else its date minus the subject's start date
DAYS_COLUMN = "days_from_start"
DATE_COLUMN = "collection_date"
START_COLUMN = "treatment_start"


def has_sample_times(samples: pd.DataFrame, subjects: pd.DataFrame) -> bool:
    """True when the sheets can give every sample a time since treatment start."""
    return DAYS_COLUMN in samples.columns or (DATE_COLUMN in samples.columns
                                              and START_COLUMN in subjects.columns)


def sample_months(samples: pd.DataFrame, subjects: pd.DataFrame) -> pd.Series:
    """Months from treatment start of every sample (index ``sample_id``; NaN when unknown)."""
    ids = samples["sample_id"].astype(str).to_numpy()
    if DAYS_COLUMN in samples.columns:
        days = pd.to_numeric(samples[DAYS_COLUMN].replace("", np.nan), errors="coerce")
        return pd.Series(days.to_numpy(dtype=float) / DAYS_PER_MONTH, index=ids)
    if DATE_COLUMN not in samples.columns or START_COLUMN not in subjects.columns:
        return pd.Series(np.nan, index=ids)
    start = subjects.drop_duplicates("subject_id").set_index("subject_id")[START_COLUMN]
    collected = pd.to_datetime(samples[DATE_COLUMN].replace("", np.nan), errors="coerce")
    began = pd.to_datetime(samples["subject_id"].astype(str).map(start).replace("", np.nan),
                           errors="coerce")
    days = (collected - began).dt.days
    return pd.Series(days.to_numpy(dtype=float) / DAYS_PER_MONTH, index=ids)


def set_landmark(months_by_sample: pd.Series, on_treatment: pd.DataFrame, subjects: pd.DataFrame,
                 *, time_column: str, event_column: str, months="auto") -> Landmark:
    """The landmark of a feature set and the subjects it leaves out.

    Parameters
    ----------
    months_by_sample : pandas.Series
        :func:`sample_months`.
    on_treatment : pandas.DataFrame
        ``sample_id, subject_id`` of the on-treatment samples the feature set uses.
    subjects : pandas.DataFrame
        With ``subject_id`` and the endpoint's time (months) and event columns.
    time_column, event_column : str
        The survival endpoint the landmark is checked against (``models.survival``).
    months : "auto" or float
        ``auto``: the latest time of those samples, so every sample used precedes it;
        a number: that time, and a subject whose on-treatment sample comes later is
        left out too.

    Returns
    -------
    Landmark
        Subjects whose event or censoring came at or before the landmark are left out
        (they were not at risk after it), each with the reason.
    """
    times = months_by_sample.reindex(on_treatment["sample_id"].astype(str)).to_numpy()
    empty = pd.DataFrame(columns=["subject_id", "reason"])
    if not len(times) or np.isnan(times).all():
        return Landmark(np.nan, "", empty)
    if months == "auto":
        landmark, source = float(np.nanmax(times)), "latest on-treatment sample"
    else:
        landmark, source = float(months), "configured"
    people = subjects.drop_duplicates("subject_id")
    ids = people["subject_id"].astype(str).to_numpy()
    time = pd.to_numeric(people[time_column].replace("", np.nan), errors="coerce").to_numpy()
    event = pd.to_numeric(people[event_column].replace("", np.nan), errors="coerce").to_numpy()
    before = np.flatnonzero(time <= landmark)
    rows = [(ids[i], f"{'event' if event[i] == 1 else 'censored'} at {time[i]:.2f} months, at or "
                     f"before the landmark ({landmark:.2f} months)") for i in before]
    late = on_treatment.assign(months=times)
    late = late[late["months"] > landmark].drop_duplicates("subject_id")
    rows += [(str(s), f"on-treatment sample at {m:.2f} months, after the landmark "
                      f"({landmark:.2f} months)") for s, m in zip(late["subject_id"], late["months"])]
    excluded = pd.DataFrame(rows, columns=["subject_id", "reason"]).drop_duplicates("subject_id")
    return Landmark(landmark, source, excluded.reset_index(drop=True))


def time_since_landmark(time: np.ndarray, landmark: float) -> np.ndarray:
    """Follow-up counted from the landmark, :math:`T - L` (NaN at or before it)."""
    time = np.asarray(time, dtype=float)
    return np.where(time > landmark, time - landmark, np.nan)
