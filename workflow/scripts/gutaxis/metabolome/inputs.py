"""Validation of the metabolomics inputs: intensity table, sample sheet, annotations.

Each check reports every problem of one input together as an
:class:`~gutaxis.io.errors.InputError` naming the file, the row or column and the fix.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gutaxis.io.errors import InputError, Problem, ProblemCollector

#: sample types a metabolomics injection may have; all but qc and blank are study samples
SAMPLE_TYPES = ("stool", "blood", "tissue", "qc", "blank")
MAX_LISTED = 8


def listed(values) -> str:
    """Comma-separated ids, the first few only (``a, b and 12 more``)."""
    values = [str(v) for v in values]
    more = f" and {len(values) - MAX_LISTED} more" if len(values) > MAX_LISTED else ""
    return ", ".join(values[:MAX_LISTED]) + more


def validate_intensities(intensities: pd.DataFrame, label: str) -> pd.DataFrame:
    """Check a samples x features intensity table; return it as floats with string ids.

    Raises :class:`InputError` for duplicate sample or feature ids, non-numeric cells
    (naming feature, samples and the offending value), negative or infinite values.
    """
    problems = ProblemCollector()
    x = intensities.copy()
    x.index = x.index.astype(str)
    x.columns = x.columns.astype(str)
    for axis, ids in (("sample", x.index), ("feature", x.columns)):
        dup = ids[ids.duplicated()].unique()
        if len(dup):
            problems.add(label, f"{axis} ids {listed(dup)}", f"{axis} id appears more than once",
                         f"give every {axis} a unique id")
    problems.raise_if_any()
    if all(pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t) for t in x.dtypes):
        numeric = x.astype(float)
    else:
        numeric = x.apply(pd.to_numeric, errors="coerce").astype(float)
    values = numeric.to_numpy()
    checks = (
        ("non-numeric", (numeric.isna() & x.notna()).to_numpy(),
         "write a number, or leave the cell empty / NA when the feature was not detected"),
        ("negative", values < 0, "give raw non-negative intensities; leave undetected cells empty"),
        ("infinite", np.isinf(values), "give raw non-negative intensities; leave undetected cells empty"),
    )
    for kind, mask, fix in checks:
        columns = np.flatnonzero(mask.any(axis=0))
        for j in columns[:MAX_LISTED]:
            rows = x.index[mask[:, j]]
            problems.add(label, f"feature {x.columns[j]!r}, sample(s) {listed(rows)}",
                         f"{kind} intensity {x.at[rows[0], x.columns[j]]!r}", fix)
        if len(columns) > MAX_LISTED:
            problems.add(label, f"{len(columns) - MAX_LISTED} more features ({listed(x.columns[columns[MAX_LISTED:]])})",
                         f"{kind} intensities", fix)
    problems.raise_if_any()
    numeric.index.name, numeric.columns.name = "sample_id", "feature_id"
    return numeric


def validate_samples(samples: pd.DataFrame, ids: pd.Index, label: str, table_label: str) -> pd.DataFrame:
    """Return the sample-sheet rows for the injections ``ids`` (in that order), indexed by sample id.

    Raises :class:`InputError` when ``sample_type`` is absent, an injection has no row,
    a sample type is unknown or ``injection_order`` is not numeric.
    """
    sheet = samples.copy()
    if "sample_id" in sheet.columns:
        sheet = sheet.set_index("sample_id")
    sheet.index = sheet.index.astype(str)
    problems = ProblemCollector()
    if "sample_type" not in sheet.columns:
        raise InputError(Problem(label, "column 'sample_type'", "missing",
                                 f"add sample_type ({', '.join(SAMPLE_TYPES)}) for every sample"))
    absent = ids[~ids.isin(sheet.index)]
    if len(absent):
        problems.add(label, f"sample(s) {listed(absent)}", f"in {table_label} but not in the sample sheet",
                     "add a row for each (sample_type qc for pooled QC injections, blank for blanks) "
                     f"or remove the column from {table_label}")
    sheet = sheet[~sheet.index.duplicated(keep="first")].reindex(ids[ids.isin(sheet.index)])
    bad = sheet.index[~sheet["sample_type"].isin(SAMPLE_TYPES).to_numpy()]
    if len(bad):
        problems.add(label, f"column 'sample_type', sample(s) {listed(bad)}",
                     f"sample_type {sheet.at[bad[0], 'sample_type']!r} is not allowed",
                     f"use one of {', '.join(SAMPLE_TYPES)}")
    if "injection_order" in sheet.columns:
        order = pd.to_numeric(sheet["injection_order"], errors="coerce")
        wrong = sheet.index[(order.isna() & sheet["injection_order"].notna()).to_numpy()]
        if len(wrong):
            problems.add(label, f"column 'injection_order', sample(s) {listed(wrong)}", "not a number",
                         "give the run position as an integer")
        sheet["injection_order"] = order
    problems.raise_if_any()
    return sheet


def align_annotations(annotations: pd.DataFrame | None, features: pd.Index, label: str) -> pd.DataFrame:
    """Annotation rows for ``features`` (NaN rows for unannotated features), indexed by feature_id."""
    if annotations is None:
        return pd.DataFrame(index=pd.Index(features, name="feature_id"))
    ann = annotations.copy()
    if "feature_id" in ann.columns:
        ann = ann.set_index("feature_id")
    ann.index = ann.index.astype(str)
    dup = ann.index[ann.index.duplicated()].unique()
    if len(dup):
        raise InputError(Problem(label, f"feature ids {listed(dup)}", "annotated more than once",
                                 "keep one annotation row per feature"))
    out = ann.reindex(features)
    out.index.name = "feature_id"
    return out


def study_groups(sheet, study_ids, column, samples_file, section) -> pd.Series:
    """Group label (as text) of each study sample for the per-group missingness rule."""
    if column not in sheet.columns:
        raise InputError(Problem(samples_file, f"column {column!r}",
                                 "missing, but the missingness rule per_group needs it",
                                 f"add the column or set {section}.missingness.group_column / rule: overall"))
    groups = sheet.loc[study_ids, column]
    empty = groups.index[groups.isna().to_numpy() | (groups.astype(str).str.strip() == "").to_numpy()]
    if len(empty):
        raise InputError(Problem(samples_file, f"column {column!r}, sample(s) {listed(empty)}", "empty",
                                 f"fill in {column} for every study sample or set {section}.missingness.rule: overall"))
    return groups.astype(str)
