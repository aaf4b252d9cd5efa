"""Adverse-event incidence by term and by worst CTCAE grade per patient.

Incidence is counted in patients, not events: each patient contributes once per term,
with the worst (highest) grade among that patient's events of the term; the row
``"Any AE"`` uses the worst grade over all terms. The denominator is every patient of the
group in the subjects table, so patients without any adverse event count (as having none).
The treatment-related subset keeps the events whose attribution is in
``related_attributions`` (default possible, probable, definite: the usual "at least
possibly related" convention) and is only produced when the attribution column is recorded.

References
----------
National Cancer Institute (2017) Common Terminology Criteria for Adverse Events (CTCAE) v5.0.
ICH E3 (1995) Structure and content of clinical study reports, section 12.2.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from gutaxis.clinical.checks import (
    ATTRIBUTION_CODES,
    DEFAULT_AE_FILE,
    DEFAULT_SUBJECTS_FILE,
    column_recorded,
    canonical_codes,
    require_valid_adverse_events,
    require_valid_subjects,
)
from gutaxis.clinical.response import OVERALL, group_order, subject_groups

ANY_AE = "Any AE"
SEVERE_GRADE = 3  # grade >= 3: severe or worse (CTCAE)
#: attributions counted as treatment-related unless the config says otherwise
RELATED_ATTRIBUTIONS = ("possible", "probable", "definite")
AE_COLUMNS = [
    "group_var", "group", "subset", "term", "n_patients_in_group", "n_patients_any_grade",
    "pct_any_grade", "n_patients_grade3plus", "pct_grade3plus",
]
WORST_GRADE_COLUMNS = ["group_var", "group", "subset", "term", "worst_grade", "n_patients",
                       "n_patients_in_group", "pct"]


def worst_grades(adverse_events: pd.DataFrame) -> pd.DataFrame:
    """Worst grade per patient and term, plus the per-patient worst grade over all terms.

    Parameters
    ----------
    adverse_events : pandas.DataFrame
        Validated events with ``subject_id``, ``term`` and integer ``grade``.

    Returns
    -------
    pandas.DataFrame
        Columns ``subject_id, term, worst_grade``; term ``"Any AE"`` holds
        :math:`\\max` over all the patient's events. Sorted by subject, then term.
    """
    events = pd.DataFrame({
        "subject_id": adverse_events["subject_id"].astype(str).str.strip().to_numpy(),
        "term": adverse_events["term"].astype(str).str.strip().to_numpy(),
        "grade": pd.to_numeric(adverse_events["grade"]).astype(int).to_numpy(),
    })
    per_term = events.groupby(["subject_id", "term"], as_index=False)["grade"].max()
    any_term = events.groupby("subject_id", as_index=False)["grade"].max().assign(term=ANY_AE)
    worst = pd.concat([per_term, any_term], ignore_index=True).rename(columns={"grade": "worst_grade"})
    return worst.sort_values(["subject_id", "term"], ignore_index=True)[["subject_id", "term", "worst_grade"]]


def _subsets(adverse_events: pd.DataFrame, related_attributions: Sequence[str]) -> dict[str, pd.DataFrame]:
    subsets = {"all": adverse_events}
    if column_recorded(adverse_events, "attribution"):
        attribution = canonical_codes(adverse_events["attribution"], ATTRIBUTION_CODES)
        subsets["treatment_related"] = adverse_events[attribution.isin(related_attributions).to_numpy()]
    return subsets


def _prepare(adverse_events, subjects, by, related_attributions, ae_file, subjects_file):
    related = tuple(related_attributions)
    unknown = sorted(set(related) - set(ATTRIBUTION_CODES))
    if unknown:
        raise ValueError(f"related_attributions {unknown} are not in {ATTRIBUTION_CODES}")
    by_columns = [] if by is None else ([by] if isinstance(by, str) else list(by))
    require_valid_subjects(subjects, subjects_file, group_columns=by_columns, check_recorded=False)
    require_valid_adverse_events(adverse_events, subjects, ae_file)
    subject_ids = subjects["subject_id"].astype(str).str.strip().to_numpy()
    groupings = [(OVERALL[0], pd.Series(OVERALL[1], index=subjects.index), [OVERALL[1]])]
    if by_columns:
        group_var, labels = subject_groups(subjects, by_columns)
        groupings.append((group_var, labels, group_order(subjects, by_columns, labels)))
    terms = [ANY_AE] + sorted(set(adverse_events["term"].astype(str).str.strip()))
    return subject_ids, groupings, terms, _subsets(adverse_events, related)


def _ordered(table: pd.DataFrame, groupings, subsets, terms, extra: Sequence[str] = ()) -> pd.DataFrame:
    """Rows by grouping (overall first), group, subset ("all" first), term ("Any AE" first), extra."""
    rank = {(var, group): (i, j) for i, (var, _, order) in enumerate(groupings) for j, group in enumerate(order)}
    ranks = [rank[(var, group)] for var, group in zip(table["group_var"], table["group"])]
    keys = pd.DataFrame({
        "_grouping": [r[0] for r in ranks],
        "_group": [r[1] for r in ranks],
        "_subset": table["subset"].map({name: i for i, name in enumerate(subsets)}),
        "_term": table["term"].map({term: i for i, term in enumerate(terms)}),
    }, index=table.index)
    for column in extra:
        keys[column] = table[column]
    order = keys.sort_values(list(keys.columns), kind="stable").index
    return table.loc[order].reset_index(drop=True)


def _worst_by_group(subset, subject_ids, labels, terms):
    """Patients x terms worst-grade matrix (0 = no event) and each patient's group."""
    worst = worst_grades(subset).pivot(index="subject_id", columns="term", values="worst_grade")
    worst = worst.reindex(index=subject_ids, columns=terms).fillna(0).astype(int)
    return worst, labels.to_numpy()


def ae_incidence(
    adverse_events: pd.DataFrame,
    subjects: pd.DataFrame,
    by: Sequence[str] | str | None = "cohort",
    related_attributions: Iterable[str] = RELATED_ATTRIBUTIONS,
    *,
    ae_file: str = DEFAULT_AE_FILE,
    subjects_file: str = DEFAULT_SUBJECTS_FILE,
) -> pd.DataFrame:
    """Patients with each adverse event, at any grade and at grade >= 3, per group.

    .. math::

        \\text{pct}_{any}(term, g) = 100 \\cdot
            \\frac{\\#\\{i \\in g : \\max_{e \\in E_i(term)} grade_e \\ge 1\\}}{|g|}, \\qquad
        \\text{pct}_{\\ge 3}(term, g) = 100 \\cdot
            \\frac{\\#\\{i \\in g : \\max_{e \\in E_i(term)} grade_e \\ge 3\\}}{|g|}

    Parameters
    ----------
    adverse_events : pandas.DataFrame
        One row per event: ``subject_id, term, grade`` (CTCAE 1-5), optional ``attribution``.
    subjects : pandas.DataFrame
        Subjects table; defines the groups and the denominators.
    by : str, sequence of str or None
        Grouping columns of ``subjects``; overall rows are always included.
    related_attributions : iterable of str
        Attributions counted as treatment-related.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`AE_COLUMNS`. Rows: overall then each group; subset ``"all"`` then
        ``"treatment_related"`` (when attribution is recorded); term ``"Any AE"`` first, then
        every term in the table alphabetically (zero counts included, so groups align).

    Raises
    ------
    gutaxis.io.errors.InputError
        Grade outside 1-5, unknown attribution, event of a subject not in ``subjects``.
    """
    subject_ids, groupings, terms, subsets = _prepare(
        adverse_events, subjects, by, related_attributions, ae_file, subjects_file)
    pieces = []
    for group_var, labels, order in groupings:
        group_size = pd.Series(labels.to_numpy()).value_counts().reindex(order).to_numpy()
        for subset_name, subset in subsets.items():
            worst, groups = _worst_by_group(subset, subject_ids, labels, terms)
            any_grade = (worst >= 1).groupby(groups).sum().reindex(order)
            severe = (worst >= SEVERE_GRADE).groupby(groups).sum().reindex(order)
            block = pd.DataFrame({
                "group_var": group_var,
                "group": np.repeat(order, len(terms)),
                "subset": subset_name,
                "term": np.tile(terms, len(order)),
                "n_patients_in_group": np.repeat(group_size, len(terms)),
                "n_patients_any_grade": any_grade.to_numpy().ravel(),
                "n_patients_grade3plus": severe.to_numpy().ravel(),
            })
            pieces.append(block)
    table = pd.concat(pieces, ignore_index=True)
    table["pct_any_grade"] = 100.0 * table["n_patients_any_grade"] / table["n_patients_in_group"]
    table["pct_grade3plus"] = 100.0 * table["n_patients_grade3plus"] / table["n_patients_in_group"]
    return _ordered(table, groupings, subsets, terms)[AE_COLUMNS]


def ae_worst_grade(adverse_events: pd.DataFrame, subjects: pd.DataFrame, by: Sequence[str] | str | None = "cohort",
                   related_attributions: Iterable[str] = RELATED_ATTRIBUTIONS, *, ae_file: str = DEFAULT_AE_FILE,
                   subjects_file: str = DEFAULT_SUBJECTS_FILE) -> pd.DataFrame:
    """Distribution of the worst grade per patient, by term and group.

    Parameters
    ----------
    As in :func:`ae_incidence`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`WORST_GRADE_COLUMNS`; one row per group x subset x term x worst grade
        1-5 (``n_patients`` whose worst grade of the term is exactly that grade, and
        ``pct`` of the group). Row order as in :func:`ae_incidence`, grades ascending.
    """
    subject_ids, groupings, terms, subsets = _prepare(
        adverse_events, subjects, by, related_attributions, ae_file, subjects_file)
    grades = np.arange(1, 6)
    pieces = []
    for group_var, labels, order in groupings:
        group_size = pd.Series(labels.to_numpy()).value_counts().reindex(order).to_numpy()
        for subset_name, subset in subsets.items():
            worst, groups = _worst_by_group(subset, subject_ids, labels, terms)
            # counts[group, term, grade]
            counts = np.stack([(worst == g).groupby(groups).sum().reindex(order).to_numpy() for g in grades],
                              axis=-1)
            block = pd.DataFrame({
                "group_var": group_var,
                "group": np.repeat(order, len(terms) * grades.size),
                "subset": subset_name,
                "term": np.tile(np.repeat(terms, grades.size), len(order)),
                "worst_grade": np.tile(grades, len(order) * len(terms)),
                "n_patients": counts.ravel(),
                "n_patients_in_group": np.repeat(group_size, len(terms) * grades.size),
            })
            pieces.append(block)
    table = pd.concat(pieces, ignore_index=True)
    table["pct"] = 100.0 * table["n_patients"] / table["n_patients_in_group"]
    return _ordered(table, groupings, subsets, terms, extra=["worst_grade"])[WORST_GRADE_COLUMNS]


__all__ = ["AE_COLUMNS", "ANY_AE", "WORST_GRADE_COLUMNS", "ae_incidence", "ae_worst_grade", "worst_grades"]
