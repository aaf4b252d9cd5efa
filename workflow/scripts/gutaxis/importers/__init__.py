"""Importers: real tool outputs -> canonical samples x features tables.

``read_table(path, format, **options)`` dispatches to one reader per format family;
each returns an :class:`ImportResult` (``table``, ``features``, ``dropped``,
``notes``, optional ``sample_info`` and ``counts``).
"""

from __future__ import annotations

import inspect
from pathlib import Path

from gutaxis.errors import InputError, Problem
from gutaxis.importers._common import ImportResult, detect_units
from gutaxis.importers.biom_table import read_biom
from gutaxis.importers.bracken import read_bracken
from gutaxis.importers.humann import read_humann
from gutaxis.importers.immune import read_immune
from gutaxis.importers.metabolome import read_metabolome
from gutaxis.importers.metaphlan import read_metaphlan
from gutaxis.importers.plain import read_plain

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


def read_table(path, format: str, **options) -> ImportResult:
    """Read ``path`` written by a tool of family ``format`` with reader ``options``.

    Parameters
    ----------
    path : path, directory or list of paths
        As the reader of the format accepts (Bracken: directory or files; MetaPhlAn:
        one merged table or several profiles).
    format : str
        One of :data:`FORMATS` (case-insensitive; ``-`` and ``_`` are equivalent).
    **options
        Keyword options of the reader (see each ``read_*`` function).

    Returns
    -------
    ImportResult

    Raises
    ------
    gutaxis.errors.InputError
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
    return reader(path, **options)


__all__ = ["FORMATS", "ImportResult", "detect_units", "read_biom", "read_bracken", "read_humann",
           "read_immune", "read_metabolome", "read_metaphlan", "read_plain", "read_table"]
