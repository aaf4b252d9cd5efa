"""Read and write gutaxis tables: tidy TSV, written atomically, read back identically."""

from __future__ import annotations

import math
import os
import tempfile
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pandas as pd

#: float format of every written table: enough digits to round-trip the statistics
FLOAT_FORMAT = "%.10g"


def decimal_text(value, decimals: int) -> str | None:
    """``value`` at ``decimals`` decimals, rounded half away from zero on its shortest decimal
    form (``3.15`` -> ``3.2``, ``7.5`` -> ``8``, as a reader rounding the table by hand; binary
    rounding would give ``3.1``). None for a missing or non-finite value.

    Every number a figure or the summary prints goes through here, so they agree.
    """
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(value):
        return None
    return str(Decimal(repr(value)).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_atomically(path: str | Path, write) -> None:
    """Call ``write(tmp)`` on a temporary file next to ``path``, then rename it to ``path``.

    A job killed mid-write leaves no file that looks complete at ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        # mkstemp creates 0600; give the file the permissions a plain open() would
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_tsv(table: pd.DataFrame, path: str | Path, index: bool = False) -> None:
    """Write ``table`` as TSV through a temporary file and an atomic rename.

    Floats are written with :data:`FLOAT_FORMAT`, missing values as empty cells. A table whose
    columns are all floats (feature tables, distance matrices) is formatted row by row, ~4x
    faster than pandas' cell-by-cell formatter and byte-identical to it (tests/test_tables.py):
    at consortium size these tables are 10^7-10^8 cells and pandas' writer dominated the rules.
    """
    if _all_float(table) and _plain_labels(table, index):
        _write_atomically(path, lambda tmp: _write_float_table(table, tmp, index))
        return
    _write_atomically(path, lambda tmp: table.to_csv(tmp, sep="\t", index=index, float_format=FLOAT_FORMAT,
                                                     lineterminator="\n"))


def _all_float(table: pd.DataFrame) -> bool:
    return table.shape[1] > 0 and all(dtype == np.float64 for dtype in table.dtypes)


def _plain_labels(table: pd.DataFrame, index: bool) -> bool:
    """Labels that pandas writes as ``str(label)``: text or integers, one level (floats it formats)."""
    indexes = [table.columns] + ([table.index] if index else [])
    return all(not isinstance(ix, pd.MultiIndex) and ix.inferred_type in ("string", "integer", "empty")
               for ix in indexes)


def _write_float_table(table: pd.DataFrame, path: str, index: bool) -> None:
    """``table.to_csv(sep="\\t", float_format=FLOAT_FORMAT)`` for an all-float64 table, row-wise."""
    fmt = FLOAT_FORMAT.__mod__
    values = table.to_numpy()
    missing_rows = np.isnan(values).any(axis=1)
    head = [str(c) for c in table.columns]
    labels = None
    if index:
        head.insert(0, "" if table.index.name is None else str(table.index.name))
        labels = [str(v) for v in table.index]
    with open(path, "w", newline="\n") as handle:
        handle.write("\t".join(head) + "\n")
        for i, row in enumerate(values.tolist()):
            if missing_rows[i]:
                cells = "\t".join("" if v != v else fmt(v) for v in row)
            else:
                cells = "\t".join(map(fmt, row))
            handle.write((labels[i] + "\t" + cells if index else cells) + "\n")


def write_square_matrix(matrix: pd.DataFrame, values_path: str | Path, ids_path: str | Path) -> None:
    """Write a labelled square matrix as a NumPy ``.npy`` file plus its labels, one per line.

    The binary intermediate of large sample x sample matrices (distance matrices): at 5,000
    samples the TSV of one matrix is ~300 MB of text that takes ~50 s to write and ~10 s to
    parse, the ``.npy`` ~200 MB that takes under a second either way and keeps every bit.
    User-facing copies stay TSV (:func:`write_tsv`). Labels go to ``ids_path`` as a one-column
    TSV (header ``sample_id``); ``np.save`` output is byte-identical for identical values.
    """
    if list(matrix.index) != list(matrix.columns):
        raise ValueError("write_square_matrix: rows and columns must carry the same labels in the same order")
    values = np.ascontiguousarray(matrix.to_numpy(dtype=float))

    def save(tmp):
        with open(tmp, "wb") as handle:
            np.save(handle, values, allow_pickle=False)

    _write_atomically(values_path, save)
    write_tsv(pd.DataFrame({"sample_id": matrix.index.astype(str)}), ids_path)


def read_square_matrix(values_path: str | Path, ids_path: str | Path) -> pd.DataFrame:
    """Read a matrix written by :func:`write_square_matrix` (labels as text)."""
    values = np.load(values_path, allow_pickle=False)
    ids = pd.read_csv(ids_path, sep="\t", dtype=str, keep_default_na=False)["sample_id"].tolist()
    if values.ndim != 2 or values.shape != (len(ids), len(ids)):
        raise ValueError(
            f"{values_path}: a {'x'.join(map(str, values.shape))} matrix, but {ids_path} lists {len(ids)} "
            "labels; the two files come from different runs - delete both and rerun the rule that writes them"
        )
    return pd.DataFrame(values, index=pd.Index(ids), columns=pd.Index(ids))


def existing_tables(paths: dict):
    """(key, path, text table) for each path of ``paths`` that exists, in order; for end-of-run
    summaries, which read the tables a (possibly partial) run has written."""
    for key, path in paths.items():
        if Path(path).is_file():
            yield key, path, pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def read_tsv(path: str | Path, **kwargs) -> pd.DataFrame:
    """Read a tidy result table (text columns stay text, empty cells are NaN)."""
    return pd.read_csv(path, sep="\t", **kwargs)


def write_feature_table(table: pd.DataFrame, path: str | Path) -> None:
    """Write a samples x features table with ``sample_id`` as the first column."""
    out = table.copy()
    out.index.name = "sample_id"
    write_tsv(out, path, index=True)


def read_feature_table(path: str | Path) -> pd.DataFrame:
    """Read a samples x features table written by :func:`write_feature_table`."""
    table = pd.read_csv(path, sep="\t", index_col=0, dtype={0: str})
    table.index = table.index.astype(str)
    table.index.name = "sample_id"
    table.columns.name = "feature_id"
    return table.astype(float)


def read_sheet(path: str | Path) -> pd.DataFrame:
    """Read a checked sheet written by the workflow, every cell as text."""
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def as_numbers(text: pd.Series) -> pd.Series | None:
    """A text column of a sheet (:func:`read_sheet`) as numbers when every non-empty cell is
    one (empty cells missing); None when a cell is not a number (the column is categorical)."""
    text = text.replace("", np.nan)
    numbers = pd.to_numeric(text, errors="coerce")
    filled = text.notna()
    return numbers if filled.any() and numbers[filled].notna().all() else None
