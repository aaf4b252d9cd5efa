"""Subject-level covariates (cohort, age ...) from the checked subjects table, typed and aligned to a view's subjects."""

from __future__ import annotations

import pandas as pd

from gutaxis.io.errors import ProblemCollector
from gutaxis.io.tables import as_numbers

__all__ = ["subject_covariates"]


def subject_covariates(
    subjects: pd.DataFrame,
    columns,
    subject_ids,
    source: str = "subjects.tsv",
) -> pd.DataFrame:
    """The named subjects-table columns for the given subjects, numeric where every value is a number.

    A column whose non-empty cells all parse as numbers becomes float (age,
    dose); any other column stays text and is treated as categorical (cohort,
    sex). Empty cells become missing, so the association step drops (and
    reports) those subjects.

    Parameters
    ----------
    subjects : DataFrame
        The checked subjects table, every cell text (``gutaxis.io.tables.read_sheet``).
    columns : sequence of str
        Covariate columns.
    subject_ids : sequence of str
        Subjects (rows) wanted, in order.
    source : str
        Subjects table name for messages.

    Returns
    -------
    DataFrame
        Indexed by ``subject_id`` (in the order of ``subject_ids``), one column
        per covariate.

    Raises
    ------
    InputError
        A column is not in the subjects table.
    """
    problems = ProblemCollector()
    columns = list(columns)
    for column in columns:
        if column not in subjects.columns:
            problems.add(source, f"column '{column}'", "covariate column not in the subjects table",
                         "add the column or remove it from integration.covariates in the config")
    problems.raise_if_any()
    table = subjects.drop_duplicates("subject_id").set_index("subject_id")[columns]
    table = table.reindex(pd.Index([str(s) for s in subject_ids], name="subject_id"))
    out = pd.DataFrame(index=table.index)
    for column in columns:
        text = table[column].astype(object).where(table[column].notna(), "").astype(str).str.strip()
        numbers = as_numbers(text)
        out[column] = text.where(text != "") if numbers is None else numbers.astype(float)
    return out
