"""Importers: real tool outputs -> canonical samples x features tables.

``read_table(path, format, **options)`` dispatches to one reader per format family;
each returns an :class:`ImportResult` (``table``, ``features``, ``dropped``,
``notes``, optional ``sample_info`` and ``counts``).
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pandas as pd

from gutaxis.io.errors import InputError, Problem, ProblemCollector
from gutaxis.io.importers._common import MAX_LISTED, ImportResult, concat_dropped, detect_units
from gutaxis.io.importers.biom_table import read_biom
from gutaxis.io.importers.bracken import read_bracken
from gutaxis.io.importers.humann import read_humann
from gutaxis.io.importers.immune import read_immune
from gutaxis.io.importers.metabolome import read_metabolome
from gutaxis.io.importers.metaphlan import read_metaphlan
from gutaxis.io.importers.plain import read_plain

#: Format name -> reader.  Aliases name the tool versions users write in configs.
READERS = {
    "metaphlan": read_metaphlan,
    "metaphlan3": read_metaphlan,
    "metaphlan4": read_metaphlan,
    "bracken": read_bracken,
    "kraken2_bracken": read_bracken,
    "humann": read_humann,
    "humann2": read_humann,
    "humann3": read_humann,
    "biom": read_biom,
    "plain": read_plain,
    "metabolome": read_metabolome,
    "immune": read_immune,
}
FORMATS = tuple(READERS)


def read_table(path, format: str, *, absent_fill: float | None = None, **options) -> ImportResult:
    """Read ``path`` written by a tool of family ``format`` with reader ``options``.

    Parameters
    ----------
    path : path, directory or list of paths
        As the reader of the format accepts (Bracken: directory or files; MetaPhlAn:
        one merged table or several profiles). For the other formats a list of
        files (e.g. one table per cohort) is read file by file and joined with
        :func:`join_results`.
    format : str
        One of :data:`FORMATS` (case-insensitive; ``-`` and ``_`` are equivalent).
    absent_fill : float, optional
        For a list of files: what a feature absent from one file is in that file's
        samples. Default by reader (:data:`MISSING_FILL`: 0 for abundances, NaN for
        metabolome and immune readers); the workflow passes NaN for every modality of
        kind metabolome or immune, whatever reader it uses.
    **options
        Keyword options of the reader (see each ``read_*`` function).

    Returns
    -------
    ImportResult

    Raises
    ------
    gutaxis.io.errors.InputError
        Unknown format or option, or any problem with the file.
    """
    key = str(format).strip().lower().replace("-", "_").replace("/", "_")
    label = str(path) if isinstance(path, (str, Path)) else f"{len(list(path))} files"
    if key not in READERS:
        raise InputError(Problem(label, "format", f"unknown input format {format!r}",
                                 f"use one of {', '.join(FORMATS)}"))
    reader = READERS[key]
    accepted = [n for n, prm in inspect.signature(reader).parameters.items()
                if prm.kind is inspect.Parameter.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InputError(Problem(label, f"options for format {key!r}",
                                 f"unknown option(s) {', '.join(unknown)}",
                                 f"valid options: {', '.join(accepted)}"))
    if isinstance(path, (str, Path)) or reader in LIST_READERS:
        return reader(path, **options)
    paths = [str(p) for p in path]
    if not paths:
        raise InputError(Problem(label, "path", "an empty list of files", "give one or more files"))
    if len(paths) == 1:
        return reader(paths[0], **options)
    fill = MISSING_FILL.get(reader, 0.0) if absent_fill is None else absent_fill
    return join_results([reader(p, **options) for p in paths], paths, fill)


#: Readers that take a list of files themselves (per-sample profiles or Bracken outputs).
LIST_READERS = (read_metaphlan, read_bracken)
#: What a feature absent from one file of a list is in that file's samples: 0 (not
#: detected) for abundances; missing (not measured) for metabolites and immune subsets.
MISSING_FILL = {read_metabolome: np.nan, read_immune: np.nan}


def join_results(results: list[ImportResult], paths: list[str], fill: float) -> ImportResult:
    """Join the tables read from several files (e.g. one per cohort) into one.

    Samples are stacked; the features are the union, in order of first appearance.
    A feature absent from a file is ``fill`` in that file's samples (0 for
    abundances: the profiler did not detect it; NaN for metabolome and immune
    tables: not measured). Each file's samples keep the values of that file (a
    composition read as fractions stays closed to 1 per sample).

    Raises
    ------
    InputError
        A sample id in two files (naming both), or files whose units differ.
    """
    seen: dict[str, str] = {}
    problems = ProblemCollector()
    for res, p in zip(results, paths):
        for sample in res.table.index.astype(str):
            if sample in seen and seen[sample] != p:
                problems.add(p, f"sample '{sample}'", f"the sample is also in {seen[sample]}",
                             "each sample may appear in one file of the list; remove or rename one")
            seen.setdefault(sample, p)
    units = {str(res.notes.get("units")) for res in results}
    if len(units) > 1:
        per = "; ".join(f"{p}: {res.notes.get('units')}" for res, p in zip(results, paths))
        problems.add(paths[0], "units", f"the files of the list hold different units ({per})",
                     "give every file in the same units, or set options.units")
    if len(problems.problems) > 3 * MAX_LISTED:
        problems.problems = problems.problems[: 3 * MAX_LISTED]
    problems.raise_if_any()
    table = pd.concat([r.table for r in results], axis=0, join="outer", sort=False)
    if fill == fill:  # not NaN
        table = table.fillna(fill)
    table.index.name, table.columns.name = "sample_id", "feature_id"
    features = pd.concat([r.features for r in results], axis=0)
    features = features[~features.index.duplicated()].reindex(table.columns)
    features.index.name = "feature_id"
    dropped = concat_dropped([r.dropped for r in results]).drop_duplicates(ignore_index=True)
    infos = [r.sample_info for r in results if r.sample_info is not None]
    info = pd.concat(infos, axis=0) if len(infos) == len(results) else None
    counts = None
    if all(r.counts is not None for r in results):
        counts = pd.concat([r.counts for r in results], axis=0, join="outer", sort=False).fillna(0.0)
        counts = counts.reindex(columns=table.columns, fill_value=0.0)
    notes = dict(results[0].notes)
    for key in ("n_rows_read", "n_samples_read", "n_missing_cells", "n_zero_cells"):
        if all(key in r.notes for r in results):
            notes[key] = int(sum(r.notes[key] for r in results))
    notes.update({"files": paths, "n_files": len(paths), "n_samples": int(table.shape[0]),
                  "n_features": int(table.shape[1]),
                  "absent_feature_value": "0" if fill == fill else "missing"})
    return ImportResult(table=table, features=features, dropped=dropped, notes=notes,
                        sample_info=info, counts=counts)


__all__ = ["FORMATS", "ImportResult", "detect_units", "read_biom", "read_bracken", "read_humann",
           "read_immune", "read_metabolome", "read_metaphlan", "read_plain", "read_table"]
