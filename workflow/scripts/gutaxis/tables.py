"""Read and write gutaxis tables: tidy TSV, written atomically, read back identically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd

#: float format of every written table: enough digits to round-trip the statistics
FLOAT_FORMAT = "%.10g"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_tsv(table: pd.DataFrame, path: str | Path, index: bool = False) -> None:
    """Write ``table`` as TSV through a temporary file and an atomic rename.

    A job killed mid-write leaves no file that looks complete at ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        table.to_csv(tmp, sep="\t", index=index, float_format=FLOAT_FORMAT, lineterminator="\n")
        # mkstemp creates 0600; give the file the permissions a plain open() would
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


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
