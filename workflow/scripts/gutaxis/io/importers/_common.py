"""Shared pieces of the importers: the result type, file checks, numeric coercion, units.

Every reader returns an :class:`ImportResult`.  The helpers here turn the usual user
mistakes (missing file, empty file, duplicated ids, text in a numeric column,
negative abundances, compositions that do not add up) into
:class:`gutaxis.io.errors.InputError` messages that name the file, the row or column,
and the fix.
"""

from __future__ import annotations

import gzip
import inspect
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from gutaxis.io.errors import InputError, Problem, ProblemCollector

#: Ranks in lineage order with the one-letter prefixes MetaPhlAn, GTDB and QIIME use.
RANK_PREFIXES: dict[str, tuple[str, ...]] = {
    "kingdom": ("k__", "d__"),
    "phylum": ("p__",),
    "class": ("c__",),
    "order": ("o__",),
    "family": ("f__",),
    "genus": ("g__",),
    "species": ("s__",),
    "sgb": ("t__",),
}
RANK_ORDER: tuple[str, ...] = tuple(RANK_PREFIXES)
RANK_ALIASES: dict[str, str] = {
    **{r: r for r in RANK_ORDER},
    "domain": "kingdom",
    "superkingdom": "kingdom",
    "t": "sgb",
    "strain": "sgb",
    "k": "kingdom",
    "d": "kingdom",
    "p": "phylum",
    "c": "class",
    "o": "order",
    "f": "family",
    "g": "genus",
    "s": "species",
}
PREFIX_TO_RANK: dict[str, str] = {p: r for r, ps in RANK_PREFIXES.items() for p in ps}

#: Names tools give to the "not assigned to any clade" row (compared case-insensitively).
UNCLASSIFIED_LABELS: tuple[str, ...] = ("unclassified", "unknown", "unassigned", "-1")
UNCLASSIFIED_FEATURE = "UNCLASSIFIED"

DROPPED_COLUMNS = ["feature_id", "sample_id", "reason"]

#: How many offending cells/rows a message lists before it says "and N more".
MAX_LISTED = 5
#: A number written with a decimal comma (German/French spreadsheets): 12,5 or -0,003
DECIMAL_COMMA = re.compile(r"^-?\d+,\d+$")


@dataclass(frozen=True)
class ImportResult:
    """A tool output read into the canonical gutaxis shapes.

    Attributes
    ----------
    table : pandas.DataFrame
        Samples x features (index name ``sample_id``, columns name ``feature_id``),
        float.  Compositions are fractions summing to 1 per sample.
    features : pandas.DataFrame
        Feature annotation indexed by ``feature_id`` (e.g. ``lineage``, ``rank``,
        ``name``, ``mz``, ``rt``, ``hmdb``, ``kegg``, ``unit``), one row per column of
        ``table`` in the same order.
    dropped : pandas.DataFrame
        Tidy record of what was removed on purpose: columns ``feature_id``,
        ``sample_id`` (one of the two is ``""``) and ``reason``.
    notes : dict
        Decisions taken: detected ``units``, ``rank`` kept, whether the table was
        ``renormalised``, header version, number of rows read, ...
    sample_info : pandas.DataFrame or None
        Per-sample facts indexed by ``sample_id`` for every sample read (kept or
        not), e.g. ``classified_fraction`` (share of the sample at the kept features
        before renormalisation) and ``total`` (column total as read).
    counts : pandas.DataFrame or None
        Read counts aligned with ``table`` (same index and columns) when the input
        holds counts, so that count-based estimators (Chao1) can use them even when
        ``table`` holds fractions.
    """

    table: pd.DataFrame
    features: pd.DataFrame
    dropped: pd.DataFrame
    notes: dict
    sample_info: pd.DataFrame | None = None
    counts: pd.DataFrame | None = field(default=None)


# --------------------------------------------------------------------------- options


def reader_signature(options_type) -> inspect.Signature:
    """``(path, settings=None, *, <field>=<default> ...)`` of a reader whose options are `options_type`.

    A reader taking a frozen options dataclass (``settings``) plus keyword
    overrides shows the dataclass's fields as its keyword-only parameters, so
    :func:`gutaxis.io.importers.read_table` checks a config's options against them
    and the config schema documents exactly them.
    """
    keyword = inspect.Parameter.KEYWORD_ONLY
    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    options = [inspect.Parameter(f.name, keyword, default=f.default, annotation=f.type)
               for f in fields(options_type)]
    return inspect.Signature([inspect.Parameter("path", positional),
                              inspect.Parameter("settings", positional, default=None), *options])


def check_choices(options: Mapping, choices: Mapping[str, Sequence[str]], file: str) -> None:
    """Raise naming the first option (name -> value) whose value is not among its `choices`."""
    for name, allowed in choices.items():
        value = options[name]
        if value not in allowed:
            raise InputError(Problem(file, f"option '{name}'", f"unknown value {value!r}",
                                     f"use one of {', '.join(map(repr, allowed))}"))


# ----------------------------------------------------------------------------- files


def check_file(path, what: str = "input table") -> Path:
    """Return ``Path(path)`` or raise when it is missing, a directory or empty."""
    p = Path(path)
    if not p.exists():
        raise InputError(Problem(str(path), "file", f"{what} does not exist",
                                 "check the path in config/config.yaml"))
    if p.is_dir():
        inside = sorted(f.name for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
        example = f" (e.g. {p / inside[0]})" if inside else ""
        raise InputError(Problem(str(path), "file", f"{what} is a directory, not a file",
                                 f"give the file of the table itself{example}"))
    if p.stat().st_size == 0:
        raise InputError(Problem(str(path), "file", f"{what} is empty (0 bytes)",
                                 "re-export the table from the tool; the file has no content"))
    return p


def open_text(path: Path):
    """Open a plain or gzip-compressed text file for reading."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="")
    return open(path, "rt", encoding="utf-8", errors="replace", newline="")


def leading_lines(path: Path, n: int = 200) -> list[str]:
    """Return up to ``n`` first lines (line ends stripped)."""
    out = []
    with open_text(path) as fh:
        for line in fh:
            out.append(line.rstrip("\r\n"))
            if len(out) >= n:
                break
    return out


SEP_NAMES = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}


def last_line(path: Path, max_bytes: int = 1 << 16) -> tuple[str, bool] | None:
    """The last non-empty line of an uncompressed file and whether the file ends in a newline.

    Reads only the file's tail; returns None for gzip files (their tail cannot be
    read without decompressing everything).
    """
    with open(path, "rb") as fh:
        if fh.read(2) == b"\x1f\x8b":
            return None
        size = fh.seek(0, 2)
        fh.seek(max(0, size - max_bytes))
        tail = fh.read().decode("utf-8", errors="replace")
    ends_newline = tail.endswith("\n")
    lines = [line for line in tail.replace("\r", "").split("\n") if line.strip()]
    return (lines[-1], ends_newline) if lines else None


def check_last_line(path: Path, sep: str, n_fields: int) -> None:
    """Raise when the last line has fewer fields than the header: the file was cut short.

    A copy or download that stopped part-way leaves a last line with fewer fields
    than the header (pandas would read the missing cells as empty and the message
    would ask to fill them).
    """
    tail = last_line(path)
    if tail is None:
        return
    line, _ = tail
    found = len(line.split(sep))
    if 1 < n_fields and found < n_fields:
        raise InputError(Problem(str(path), "last line", f"has {found} of the header's {n_fields} "
                                 f"fields ({line[:60]!r}): the file looks truncated (cut short)",
                                 "copy or export the file again; the end of the file is missing"))


def guess_separator(path: Path, header: str | None = None) -> str:
    """Tab unless the file is a .csv (or its header has commas and no tabs)."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".csv"):
        return ","
    if header is not None and "\t" not in header and "," in header:
        return ","
    return "\t"


def split_header(line: str, sep: str) -> list[str]:
    """Split a header line, removing the quotes R's write.table puts around names."""
    fields = line.split(sep)
    return [f[1:-1] if len(f) >= 2 and f[0] == f[-1] == '"' else f for f in fields]


def read_id_table(path: Path, sep: str, skiprows: int = 0, *, column_kind: str = "sample",
                  na_values: Iterable[str] = (), header_line: str | None = None,
                  text_columns: Sequence[str] = ()) -> pd.DataFrame:
    """Read a delimited table whose first column holds row ids.

    Numbers are parsed by pandas' C parser (fast for 5,000-column tables); columns
    holding any text stay ``object`` and are checked by :func:`coerce_numeric`.
    The header may be R ``write.table`` style, one field short with no name for the
    row-name column.  ``header_line`` replaces the file's header (used when the
    header is a ``#`` comment, as in single-sample MetaPhlAn profiles); the data then
    start at line ``skiprows``.
    """
    file = str(path)
    n_head = 0 if header_line is not None else 1
    lines = leading_lines(path, skiprows + n_head + 1)
    if header_line is None:
        if len(lines) <= skiprows or not lines[skiprows].strip():
            raise InputError(Problem(file, "header", "no header line with column names was found",
                                     "the first non-comment line must name the columns"))
        header_line = lines[skiprows]
    header = split_header(header_line, sep)
    if len(header) == 1:
        other = next((c for c in (";", "\t", ",", "|") if c != sep and c in header_line), None)
        if other is not None:
            raise InputError(Problem(file, "header", f"the header is one single field "
                                     f"({header_line[:50]!r}): the file is {SEP_NAMES.get(other, repr(other))}-"
                                     f"separated, not {SEP_NAMES.get(sep, repr(sep))}-separated",
                                     f"save it tab-separated, or set options.sep: {other!r} "
                                     "(plain, metabolome and immune formats)"))
    first = lines[skiprows + n_head] if len(lines) > skiprows + n_head else None
    if first is None:
        raise InputError(Problem(file, "rows", "the table has a header but no data rows",
                                 "re-export the table from the tool"))
    if len(first.split(sep)) == len(header) + 1:
        header = [""] + header  # R write.table: the row-name column has no header
    while len(header) > 1 and header[-1] == "" and len(first.split(sep)) < len(header):
        header = header[:-1]  # trailing separator on the header line only
    problems = ProblemCollector()
    check_unique(header[1:], column_kind, file, problems,
                 fix=f"rename the duplicated {column_kind} columns in the header")
    problems.raise_if_any()
    # the first data row is complete: a last row with fewer fields was cut short
    check_last_line(path, sep, min(len(header), len(first.split(sep))))
    dtypes = {header[0]: str, **{c: str for c in text_columns if c in header}}
    try:
        frame = pd.read_csv(path, sep=sep, skiprows=skiprows + n_head, header=None, names=header,
                            dtype=dtypes, na_values=list(na_values), low_memory=False,
                            engine="c", index_col=False)
    except pd.errors.EmptyDataError:
        raise InputError(Problem(file, "rows", "the table has a header but no data rows",
                                 "re-export the table from the tool")) from None
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(Problem(file, "file", f"cannot be parsed as a "
                                 f"{'tab' if sep == chr(9) else repr(sep)}-separated table "
                                 f"({str(exc).strip()})",
                                 "check that every row has as many fields as the header "
                                 "and that the separator is right")) from None
    if frame.empty:
        raise InputError(Problem(file, "rows", "the table has a header but no data rows",
                                 "re-export the table from the tool"))
    frame = frame.set_index(header[0])
    frame.index = pd.Index(frame.index.astype(object), name=header[0])
    return frame


# ---------------------------------------------------------------------------- checks


def require_sample_columns(frame: pd.DataFrame, file: str) -> None:
    """Raise when a features-as-rows table has no value column after the id column."""
    if frame.shape[1] == 0:
        raise InputError(Problem(file, "header", "no sample columns after the id column",
                                 "give one column per sample; check that the file is "
                                 "tab-separated"))


def list_ids(items: Sequence, limit: int = MAX_LISTED) -> str:
    items = [str(i) for i in items]
    head = ", ".join(f"'{i}'" for i in items[:limit])
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return head + more


def check_unique(ids: Sequence, kind: str, file: str, problems: ProblemCollector,
                 fix: str | None = None) -> None:
    """Add a problem when ``ids`` (feature or sample ids) contain duplicates."""
    idx = pd.Index([str(i) for i in ids])
    dup = idx[idx.duplicated()].unique()
    if len(dup):
        problems.add(file, f"{kind} ids", f"duplicated {kind} id(s) {list_ids(list(dup))}",
                     fix or f"give every {kind} a unique id (merge or rename the duplicates)")


def check_nonempty_ids(ids: Sequence, kind: str, file: str, problems: ProblemCollector) -> None:
    s = pd.Series(list(ids), dtype=object)
    bad = s.isna() | (s.astype(str).str.strip() == "")
    if bad.any():
        problems.add(file, f"{kind} ids", f"{int(bad.sum())} {kind} id(s) are empty",
                     f"give every {kind} an id")


def coerce_numeric(raw: pd.DataFrame, file: str, problems: ProblemCollector, *,
                   row_kind: str = "feature", col_kind: str = "sample",
                   allow_missing: bool = False, allow_negative: bool = False,
                   na_option: bool = False) -> pd.DataFrame:
    """Return ``raw`` as floats, collecting problems per column.

    Cells that are present but not numbers, missing cells (unless
    ``allow_missing``) and negative values (unless ``allow_negative``) are each
    reported per column, naming up to :data:`MAX_LISTED` rows.  Columns pandas
    already parsed as numbers pass through untouched; only text columns are
    coerced.  With ``na_option`` (readers that have the ``na_values`` option) the
    message for text cells names that option and the codes found; numbers written
    with a decimal comma (``12,5``) get their own fix.
    """
    numeric = np.array([d.kind in "iuf" for d in raw.dtypes], dtype=bool)
    text_cols = list(raw.columns[~numeric])
    values = raw.astype({c: object for c in text_cols}) if text_cols else raw
    if text_cols:
        values = values.copy()
        values[text_cols] = raw[text_cols].apply(lambda col: pd.to_numeric(col, errors="coerce"))
    if not all(d == np.float64 for d in values.dtypes):
        values = values.astype(float)
    if values.empty:
        return values
    arr = values.to_numpy()
    if text_cols:
        present = raw.notna().to_numpy()
        bad = present & np.isnan(arr)
        fix = "replace text with numbers (leave a cell empty or NA if not measured)"
        if bad.any():
            tokens = [str(t) for t in pd.unique(raw.to_numpy()[bad].astype(str))]
            if all(DECIMAL_COMMA.match(t.strip()) for t in tokens[:50]):
                fix = ("the numbers use a decimal comma; save the file with decimal points "
                       "(and tab or comma as the field separator)")
            elif na_option:
                shown = ", ".join(repr(t) for t in tokens[:MAX_LISTED])
                fix = (f"if {shown} mean 'not measured', list them in options.na_values "
                       f"(e.g. na_values: [{', '.join(tokens[:MAX_LISTED])}]); otherwise "
                       "replace the text with numbers")
        _report_cells(bad, raw, file, problems, row_kind, col_kind,
                      what=lambda cells: f"non-numeric value(s) {cells}", fix=fix,
                      show_values=True)
    if not allow_missing:
        _report_cells(raw.isna().to_numpy(), raw, file, problems, row_kind, col_kind,
                      what=lambda cells: f"empty/NA cell(s) at {cells}",
                      fix="fill them (0 when the feature was not detected in that sample)")
    if not allow_negative:
        with np.errstate(invalid="ignore"):
            neg = arr < 0
        _report_cells(neg, values, file, problems, row_kind, col_kind,
                      what=lambda cells: f"negative value(s) {cells}",
                      fix="abundances cannot be negative; export the raw (untransformed) values",
                      show_values=True)
    return values


def _report_cells(mask: np.ndarray, frame: pd.DataFrame, file: str, problems: ProblemCollector,
                  row_kind: str, col_kind: str, what, fix: str, show_values: bool = False) -> None:
    if not mask.any():
        return
    cols = np.flatnonzero(mask.any(axis=0))
    for j in cols:
        rows = np.flatnonzero(mask[:, j])
        shown = []
        for i in rows[:MAX_LISTED]:
            label = f"{row_kind} '{frame.index[i]}'"
            if show_values:
                label += f" = {frame.iat[i, j]!r}"
            shown.append(label)
        more = f" and {len(rows) - MAX_LISTED} more" if len(rows) > MAX_LISTED else ""
        problems.add(file, f"{col_kind} column '{frame.columns[j]}'",
                     what(", ".join(shown) + more), fix)


def check_integer(values: pd.DataFrame, file: str, problems: ProblemCollector,
                  what: str = "read counts", row_kind: str = "feature",
                  col_kind: str = "sample") -> None:
    arr = values.to_numpy()
    with np.errstate(invalid="ignore"):
        bad = np.isfinite(arr) & (np.abs(arr - np.round(arr)) > 1e-6)
    _report_cells(bad, values, file, problems, row_kind, col_kind,
                  what=lambda cells: f"{what} must be whole numbers; found {cells}",
                  fix="give the read counts (integers), not normalised values", show_values=True)


# ----------------------------------------------------------------------------- units


def all_integer(table: pd.DataFrame) -> bool:
    arr = table.to_numpy(dtype=float)
    arr = arr[np.isfinite(arr)]
    return bool(arr.size) and bool(np.all(np.abs(arr - np.round(arr)) <= 1e-9))


def detect_units(table: pd.DataFrame, tolerance: float = 0.01) -> str:
    """Guess whether a samples x features table holds fractions, percents or counts.

    Rules (first match wins), using per-sample totals :math:`T_i = \\sum_j x_{ij}`
    over samples with :math:`T_i > 0`:

    1. all values integers and some :math:`T_i > 100 (1 + tol)` -> ``"counts"``;
    2. all values :math:`\\le 1` and all :math:`T_i \\le 1 + tol` -> ``"fraction"``;
    3. all values :math:`\\le 100` and all :math:`T_i \\le 100 (1 + tol)` -> ``"percent"``;
    4. all values integers -> ``"counts"``; otherwise ``"other"``.

    Tables of fractions that were subset (totals below 1) are still fractions; a
    percent table whose totals are all below 1 is indistinguishable from fractions,
    so pass the units explicitly in that case.
    """
    arr = table.to_numpy(dtype=float)
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return "other"
    totals = np.nansum(arr, axis=1)
    totals = totals[totals > 0]
    vmax = finite.max()
    integer = bool(np.all(np.abs(finite - np.round(finite)) <= 1e-9))
    if integer and totals.size and np.any(totals > 100 * (1 + tolerance)):
        return "counts"
    if vmax <= 1 + 1e-9 and np.all(totals <= 1 + tolerance):
        return "fraction"
    if vmax <= 100 + 1e-7 and np.all(totals <= 100 * (1 + tolerance)):
        return "percent"
    return "counts" if integer else "other"


UNIT_SCALE = {"fraction": 1.0, "percent": 100.0}


def detect_composition_scale(totals: pd.Series, tolerance: float) -> str | None:
    """``"fraction"`` or ``"percent"`` when the non-zero totals sit near 1 or 100."""
    nz = totals[totals > 0]
    if nz.empty:
        return None
    med = float(nz.median())
    for unit, scale in UNIT_SCALE.items():
        if abs(med - scale) <= tolerance * scale:
            return unit
    return None


def check_composition(totals: pd.Series, unit: str, tolerance: float, file: str,
                      problems: ProblemCollector, what: str, fix: str) -> None:
    """Report samples whose (non-zero) total is not within ``tolerance`` of 1 or 100.

    Totals of 0 are failed samples; they are handled (dropped) by the caller.
    """
    scale = UNIT_SCALE[unit]
    off = totals[(totals > 0) & ((totals - scale).abs() > tolerance * scale)]
    if len(off):
        shown = ", ".join(f"'{s}' = {v:.6g}" for s, v in off.iloc[:MAX_LISTED].items())
        more = f" and {len(off) - MAX_LISTED} more" if len(off) > MAX_LISTED else ""
        problems.add(file, f"sample column(s) {list_ids(list(off.index))}",
                     f"{what} should sum to {scale:g} ({unit}) within {tolerance:.0%} per sample "
                     f"but sum(s) are {shown}{more}", fix)


def renormalise(table: pd.DataFrame) -> pd.DataFrame:
    """Divide each row by its total so it sums to 1 (rows must have total > 0)."""
    return table.div(table.sum(axis=1), axis=0)


# ------------------------------------------------------------------------ ids / frames


def strip_sample_suffix(names: Sequence[str], pattern: str | None) -> list[str]:
    """Remove ``pattern`` (a regex or plain suffix, matched at the end) from each name."""
    names = [str(n) for n in names]
    if not pattern:
        return names
    try:
        rx = re.compile(f"(?:{pattern})$")
    except re.error:
        rx = re.compile(re.escape(pattern) + "$")
    return [rx.sub("", n) for n in names]


def norm_key(name: str) -> str:
    """Lower-case a column name and drop everything but letters and digits."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def dropped_frame(feature_ids: Sequence = (), sample_ids: Sequence = (), reason=None) -> pd.DataFrame:
    """Build the tidy ``dropped`` table for features and/or samples with one reason each.

    ``reason`` is a string (same for all) or a sequence aligned with the ids
    (features first, then samples).
    """
    feature_ids = [str(f) for f in feature_ids]
    sample_ids = [str(s) for s in sample_ids]
    n = len(feature_ids) + len(sample_ids)
    reasons = [reason] * n if isinstance(reason, str) or reason is None else list(reason)
    return pd.DataFrame({
        "feature_id": feature_ids + [""] * len(sample_ids),
        "sample_id": [""] * len(feature_ids) + sample_ids,
        "reason": [str(r) for r in reasons],
    }, columns=DROPPED_COLUMNS)


def concat_dropped(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if f is not None and len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in DROPPED_COLUMNS})
    return pd.concat(frames, ignore_index=True)[DROPPED_COLUMNS]


def finish_table(table: pd.DataFrame) -> pd.DataFrame:
    """Canonical names and float dtype for a samples x features table."""
    if not all(d == np.float64 for d in table.dtypes):
        table = table.astype(float)
    else:
        table = table.copy(deep=False)
    table.index = pd.Index([str(i) for i in table.index], name="sample_id")
    table.columns = pd.Index([str(c) for c in table.columns], name="feature_id")
    return table


def finish_features(features: pd.DataFrame, columns: pd.Index) -> pd.DataFrame:
    """Annotation aligned with ``columns`` (same order), index name ``feature_id``."""
    features = features.copy()
    features.index = pd.Index([str(i) for i in features.index], name="feature_id")
    features = features.reindex(pd.Index([str(c) for c in columns], name="feature_id"))
    return features


def to_fractions(table: pd.DataFrame, units: str, file: str, *, rank_label: str = "",
                 renormalise_rows: bool = True):
    """Convert a composition to fractions, drop all-zero samples, renormalise.

    Returns ``(fractions, dropped, sample_info)`` where ``sample_info`` has, for every
    input sample, ``total`` (as read) and ``classified_fraction`` (share of the
    sample in the kept features before renormalisation: total / 1 or / 100; NaN for
    counts, where no denominator beyond the kept features exists).
    """
    totals = table.sum(axis=1)
    scale = UNIT_SCALE.get(units)
    info = pd.DataFrame({"total": totals})
    info["classified_fraction"] = totals / scale if scale else np.nan
    info.index.name = "sample_id"
    failed = totals.index[totals <= 0]
    reason = (f"no classified reads at rank {rank_label}" if rank_label
              else "all features are 0 (empty or failed sample)")
    dropped = dropped_frame(sample_ids=failed, reason=reason)
    kept = table.drop(index=failed)
    if scale:
        kept = kept / scale
    if renormalise_rows:
        kept = renormalise(kept)
    return kept, dropped, info
