"""Read immune-cell tables (wide or long) with units declared by the caller.

Blood immune subsets (flow or mass cytometry: % of parent, fractions, cells/uL) and tumour
tissue cell densities (IHC or multiplex immunofluorescence: cells/mm^2) share this reader.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
import pandas as pd

from gutaxis.io.errors import InputError, Problem, ProblemCollector
from gutaxis.io.importers._common import (
    ImportResult, check_choices, check_file, check_nonempty_ids, check_unique, coerce_numeric, concat_dropped,
    dropped_frame, finish_features, finish_table, guess_separator, leading_lines, list_ids,
    norm_key, read_id_table, reader_signature,
)
from gutaxis.io.importers.metabolome import SAMPLE_ID_KEYS, _mostly_text
from gutaxis.io.settings import with_overrides

#: Units an immune table may declare, and the largest value each allows.
IMMUNE_UNITS: dict[str, float] = {"percent_of_parent": 100.0, "percent": 100.0,
                                  "fraction": 1.0, "cells_per_ul": np.inf, "cells_per_mm2": np.inf,
                                  "counts": np.inf}
SUBSET_KEYS = ("subset", "population", "cellsubset", "celltype", "cellpopulation", "subsetname")
LAYOUTS = ("auto", "wide", "long")
ORIENTATIONS = ("samples_as_rows", "subsets_as_rows")


def _is_row_number_column(name: str, col: pd.Series) -> bool:
    """R write.csv's unnamed row-number column ('' header, values 1..n)."""
    if norm_key(name) not in ("", "unnamed0"):
        return False
    nums = pd.to_numeric(col, errors="coerce")
    return bool(nums.notna().all() and (nums.to_numpy() == np.arange(1, len(col) + 1)).all())


def _check_units(units, file: str) -> None:
    given = [units] if isinstance(units, str) else list(units.values()) if isinstance(units, Mapping) else [units]
    bad = [u for u in given if u not in IMMUNE_UNITS]
    if units is None or bad:
        raise InputError(Problem(file, "option 'units'",
                                 "immune units not declared" if units is None else
                                 f"unknown unit(s) {list_ids(bad)}",
                                 f"declare the units in the config: one of {', '.join(IMMUNE_UNITS)} "
                                 "(or a mapping subset -> unit)"))


@dataclass(frozen=True)
class ImmuneOptions:
    """The options of :func:`read_immune`: a modality's ``options`` of format ``immune``.

    Attributes
    ----------
    units : str or mapping
        ``percent_of_parent``, ``percent``, ``fraction``, ``cells_per_ul``,
        ``cells_per_mm2`` (tissue densities) or ``counts``, for all subsets or per
        subset.  Required (the config declares them), unless ``unit_column`` gives them row by row in a long table.
    layout : {"auto", "wide", "long"}
        ``long`` = one row per measurement (sample, subset, value); ``auto`` picks
        long when a subset column and ``value_column`` exist.
    orientation : {"samples_as_rows", "subsets_as_rows"}
        Wide tables only; ``subsets_as_rows`` is the cytometry-export layout (one
        column per sample, e.g. R ``write.csv`` with a row-number column).
    sample_column : str, optional
        Default ``sample_id``/``SampleID``/``Sample`` or the first column.
    subset_column : str, optional
        Long tables and ``subsets_as_rows``: column naming the subset (default
        ``subset``/``population``/``CellSubset``/...).
    value_column : str
        Long tables: the value column.
    unit_column : str, optional
        Long tables: a per-row unit column.
    sample_ids : sequence of str, optional
        Keep only these samples (others go to ``dropped``).
    metadata_columns : sequence of str, optional
        Wide, samples as rows: non-subset columns (default: mostly-text columns).
    na_values : sequence of str
        Extra codes for "not measured" (besides empty cells and ``NA``), e.g.
        ``["n/a", "<LOD"]``; such cells stay missing.
    sep : str, optional
        Field separator (default: tab, or comma for .csv).
    """

    units: str | Mapping[str, str] | None = None
    layout: str = "auto"
    orientation: str = "samples_as_rows"
    sample_column: str | None = None
    subset_column: str | None = None
    value_column: str = "value"
    unit_column: str | None = None
    sample_ids: Sequence[str] | None = None
    metadata_columns: Sequence[str] | None = None
    na_values: Sequence[str] = ()
    sep: str | None = None

    #: the allowed values of the options that have a fixed set
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"layout": LAYOUTS, "orientation": ORIENTATIONS}

    @classmethod
    def from_config(cls, options: Mapping) -> ImmuneOptions:
        """The options of a modality's config entry (``modalities.<name>.options``)."""
        return cls(**options)


def read_immune(path: str | Path, settings: ImmuneOptions | None = None, **overrides) -> ImportResult:
    """Read immune-cell subsets into samples x subsets, values as given.

    Percentages stay percentages (the transformation step applies the logit to
    proportions); the declared units are recorded in ``notes['units']`` and
    ``features['unit']``, and values are checked against them (fractions <= 1,
    percents <= 100, nothing negative).  Missing cells stay NaN (subset not
    measured in that sample).

    Parameters
    ----------
    path : path
        TSV or CSV (by extension).
    settings : ImmuneOptions, optional
        The modality's options; the units have no default (the config declares them).
    **overrides
        Single options (e.g. ``units="percent"``) that replace those of `settings`.

    Returns
    -------
    ImportResult

    References
    ----------
    Maecker HT, McCoy JP, Nussenblatt R (2012) Standardizing immunophenotyping for
    the Human Immunology Project. Nat Rev Immunol 12:191-200.
    """
    o = with_overrides(settings, ImmuneOptions, overrides)
    file = str(path)
    check_choices(vars(o), ImmuneOptions.CHOICES, file)
    layout = o.layout  # "auto" is resolved below
    if o.unit_column is None:
        _check_units(o.units, file)
    p = check_file(path, "immune table")
    head = leading_lines(p, 1)
    sep = o.sep or guess_separator(p, head[0] if head else None)
    frame = read_id_table(p, sep, 0, column_kind="column", na_values=o.na_values).reset_index()
    frame.columns = [str(c) for c in frame.columns]
    for c in [c for c in frame.columns if _is_row_number_column(c, frame[c])]:
        frame = frame.drop(columns=c)
    keys = {c: norm_key(c) for c in frame.columns}
    sub_col = o.subset_column or next((c for c in frame.columns if keys[c] in SUBSET_KEYS), None)
    if layout == "auto":
        layout = "long" if sub_col is not None and o.value_column in frame.columns else "wide"
        if (layout == "wide" and o.orientation == "samples_as_rows" and sub_col is not None
                and len(frame) >= 4 and frame[sub_col].astype(str).duplicated().mean() > 0.5):
            raise InputError(Problem(file, f"column '{sub_col}'", "the table looks long (one row per "
                                     f"sample and subset: '{sub_col}' repeats) but has no "
                                     f"'{o.value_column}' column",
                                     "set options.value_column to the column holding the values "
                                     f"(one of {list_ids(list(frame.columns), 12)}), or "
                                     "options.layout: wide"))

    def find_sample_column() -> str:
        if o.sample_column is not None:
            if o.sample_column not in frame.columns:
                raise InputError(Problem(file, f"column '{o.sample_column}'", "sample id column not found",
                                         f"use one of {list_ids(list(frame.columns), 20)}"))
            return o.sample_column
        return next((c for c in frame.columns if keys[c] in SAMPLE_ID_KEYS), frame.columns[0])

    problems = ProblemCollector()
    notes: dict = {"format": "immune", "layout": layout, "separator": sep}
    row_units = None
    if layout == "long":
        sid = find_sample_column()
        need = [c for c in (sub_col, o.value_column, o.unit_column) if c is not None and c not in frame.columns]
        if sub_col is None or need:
            raise InputError(Problem(file, "columns", "a long immune table needs sample, subset and "
                                     f"value columns; missing: {list_ids(need or ['subset'])}",
                                     "set options.subset_column / options.value_column to columns of "
                                     f"the table ({list_ids(list(frame.columns), 12)}), or "
                                     "options.layout: wide"))
        long = frame[[sid, sub_col, o.value_column] + ([o.unit_column] if o.unit_column else [])].copy()
        long[sid] = long[sid].astype(str)
        long[sub_col] = long[sub_col].astype(str)
        dup = long[long.duplicated([sid, sub_col], keep=False)]
        if len(dup):
            pairs = dup[[sid, sub_col]].drop_duplicates().astype(str).agg(" / ".join, axis=1)
            problems.add(file, f"rows {list_ids([i + 2 for i in dup.index])} (line numbers)",
                         f"the same sample and subset appear more than once: {list_ids(list(pairs))}",
                         "keep one measurement per sample and subset")
        vals = coerce_numeric(long[[o.value_column]].set_axis(
            long[sid] + " / " + long[sub_col]), file, problems, row_kind="sample / subset",
            col_kind="value", allow_missing=True, na_option=True)
        problems.raise_if_any()
        long["__value"] = vals.iloc[:, 0].to_numpy()
        raw = long.pivot(index=sid, columns=sub_col, values="__value")
        raw = raw.reindex(index=long[sid].drop_duplicates(), columns=long[sub_col].drop_duplicates())
        if o.unit_column:
            per = long.groupby(sub_col)[o.unit_column].agg(lambda s: sorted(set(s.dropna())))
            mixed = per[per.map(len) > 1]
            if len(mixed):
                problems.add(file, f"column '{o.unit_column}'", "subset(s) with more than one unit: "
                             + "; ".join(f"{k}: {', '.join(v)}" for k, v in mixed.items()),
                             "use one unit per subset")
            row_units = {k: (v[0] if v else None) for k, v in per.items()}
            _check_units(row_units, file)
        values = raw
        notes["sample_column"], notes["subset_column"] = sid, sub_col
    elif o.orientation == "samples_as_rows":
        sid = find_sample_column()
        body = frame.set_index(sid)
        body.index = body.index.astype(str)
        meta = ([c for c in o.metadata_columns if c in body.columns] if o.metadata_columns is not None
                else [c for c in body.columns if _mostly_text(body[c])])
        check_nonempty_ids(body.index, "sample", file, problems)
        check_unique(body.index, "sample", file, problems)
        problems.raise_if_any()
        values = coerce_numeric(body.drop(columns=meta), file, problems, row_kind="sample",
                                col_kind="subset", allow_missing=True, na_option=True)
        notes["sample_column"], notes["metadata_columns"] = sid, meta
    else:
        fid = sub_col or frame.columns[0]
        body = frame.set_index(fid)
        body.index = body.index.astype(str)
        check_nonempty_ids(body.index, "subset", file, problems)
        check_unique(body.index, "subset", file, problems)
        problems.raise_if_any()
        values = coerce_numeric(body, file, problems, row_kind="subset", col_kind="sample",
                                allow_missing=True, na_option=True).T
        notes["subset_column"] = fid
    problems.raise_if_any()
    values.index = values.index.astype(str)
    values.columns = values.columns.astype(str)
    if values.shape[1] == 0 or values.shape[0] == 0:
        raise InputError(Problem(file, "columns", "no subset values found",
                                 "check options.layout (wide|long), options.orientation "
                                 "(samples_as_rows|subsets_as_rows) and options.sep"))
    check_unique(values.index, "sample", file, problems)
    problems.raise_if_any()

    dropped = []
    if o.sample_ids is not None:
        sheet = pd.Index([str(s) for s in o.sample_ids])
        outside = ~values.index.isin(sheet)
        dropped.append(dropped_frame(sample_ids=list(values.index[outside]),
                                     reason="sample not in the sample sheet"))
        values = values[~outside]
        if values.empty:
            raise InputError(Problem(file, "sample ids", "no sample of the table is in the sample sheet",
                                     "make the sample ids match the sheet"))

    unit_map = row_units if row_units is not None else o.units
    if isinstance(unit_map, Mapping):
        missing = [c for c in values.columns if c not in unit_map]
        if missing:
            raise InputError(Problem(file, f"subsets {list_ids(missing)}", "no unit declared",
                                     "declare a unit for every subset"))
        per_subset = pd.Series({c: unit_map[c] for c in values.columns})
    else:
        per_subset = pd.Series(unit_map, index=values.columns)
    limit = per_subset.map(IMMUNE_UNITS).astype(float)
    too_big = values.gt(limit * (1 + 1e-9), axis=1)
    for col in values.columns[too_big.any(axis=0).to_numpy()]:
        rows = values.index[too_big[col].to_numpy()]
        problems.add(file, f"subset '{col}'", f"value(s) above {limit[col]:g} for unit "
                     f"{per_subset[col]!r} in sample(s) {list_ids(list(rows))}",
                     "declare the right units (e.g. percent_of_parent instead of fraction)")
    problems.raise_if_any()

    table = finish_table(values)
    features = pd.DataFrame({"name": table.columns, "unit": per_subset.reindex(table.columns).to_numpy()},
                            index=table.columns)
    distinct = sorted(set(per_subset))
    notes.update({"units": distinct[0] if len(distinct) == 1 else "mixed",
                  "units_by_subset": per_subset.to_dict() if len(distinct) > 1 else None,
                  "orientation": o.orientation if layout == "wide" else None,
                  "n_rows_read": int(frame.shape[0]), "n_samples": int(table.shape[0]),
                  "n_features": int(table.shape[1]),
                  "n_missing_cells": int(table.isna().to_numpy().sum())})
    return ImportResult(table=table, features=finish_features(features, table.columns),
                        dropped=concat_dropped(dropped), notes=notes)


read_immune.__signature__ = reader_signature(ImmuneOptions)
