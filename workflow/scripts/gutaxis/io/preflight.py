"""Checks of every omics table before any job runs (``snakemake -n`` reports them).

The importers read a table only when its job runs; a problem found then costs the
user a run.  :func:`preflight` reads the header, the row ids and (for files up to
:data:`FULL_SCAN_BYTES`) the values of each configured table at parse time and
returns two lists of :class:`gutaxis.io.errors.Problem`, one line each naming the
file, the column or row, and the fix:

errors (the dry run stops, all listed together)
    a path that is a directory or empty; a file separated by another character
    than the one it is read with; numbers with a decimal comma; a last line with
    fewer fields than the header (a truncated file) or a per-sample Bracken file
    missing columns; a wide table the wrong way round (its samples are not sample
    ids while its feature names are); units that contradict the values (a table
    declared percent whose samples sum to about 1, declared fraction summing to
    about 100; immune ``percent``/``percent_of_parent`` values all <= 1).
warnings (printed, the run goes on)
    samples of the sheet missing from a table; samples whose values are all zero;
    a Bracken file with a header and no taxa (dropped as a failed sample).

The facts read from a file (not the problems, which also depend on the sheet)
are cached in ``.snakemake/gutaxis/preflight/`` under a key made of the path, its
size and modification time and the reading options, so parsing the workflow
again costs a stat per file.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from gutaxis.io.errors import Problem
from gutaxis.io.importers._common import DECIMAL_COMMA, SEP_NAMES, UNCLASSIFIED_LABELS, open_text
from gutaxis.io.sheets import id_key

#: files up to this size are read whole (values checked); larger ones by header and ids only
FULL_SCAN_BYTES = 32 * 1024 * 1024
#: rows read from a larger file (its ids and field counts)
HEAD_ROWS = 2000
#: where the facts of scanned files are kept
CACHE_DIR = Path(".snakemake") / "gutaxis" / "preflight"
#: bump when the facts a scan records change
SCAN_VERSION = 6
#: how many ids a line lists before "and N more"
LISTED = 5
#: readers and the options that change how a file is scanned
TEXT_FORMATS = ("metaphlan", "humann", "plain", "metabolome", "immune")
UNIT_SCALE = {"fraction": 1.0, "percent": 100.0}
NA_TOKENS = {"", "na", "nan", "n/a", "null", "none"}
TAXID_COLUMNS = ("ncbi_tax_id", "ncbitaxid", "clade_taxid", "cladetaxid", "taxid", "tax_id")
HUMANN_SUFFIX = r"_(Abundance|Coverage)(-[A-Za-z]+)?"
BRACKEN_STRIP = r"[._]bracken.*|\.(txt|tsv|out)"
BRACKEN_COLUMNS = ("name", "taxonomy_id", "taxonomy_lvl", "kraken_assigned_reads",
                   "added_reads", "new_est_reads", "fraction_total_reads")


def _listed(ids) -> str:
    ids = [str(i) for i in ids]
    more = f" and {len(ids) - LISTED} more" if len(ids) > LISTED else ""
    return ", ".join(ids[:LISTED]) + more


def _strip(names, pattern):
    if not pattern:
        return [str(n) for n in names]
    try:
        rx = re.compile(f"(?:{pattern})$")
    except re.error:
        rx = re.compile(re.escape(pattern) + "$")
    return [rx.sub("", str(n)) for n in names]


# ------------------------------------------------------------------------------ scan


def _cache_path(path: Path, settings: dict) -> Path | None:
    try:
        st = path.stat()
    except OSError:
        return None
    key = json.dumps([SCAN_VERSION, str(path.resolve()), st.st_size, st.st_mtime_ns, settings],
                     sort_keys=True, default=str)
    return CACHE_DIR / (hashlib.sha1(key.encode()).hexdigest() + ".json")


def scan_table(path: Path, sep: str | None, comments: bool, cache: bool = True) -> dict:
    """The facts of a delimited text table, read once and cached.

    Parameters
    ----------
    path : Path
    sep : str or None
        Field separator (None: tab, or comma for ``.csv`` / a comma-only header).
    comments : bool
        Skip leading ``#`` lines (the header is the first other line, or the last
        ``#`` line when it has as many fields as the first data line).

    Returns
    -------
    dict
        ``sep``, ``header`` (fields), ``ids`` (first-column values), ``ragged``
        ([line, fields] of rows whose field count differs from the header's),
        ``decimal_comma`` (first example [row id, column, cell]), ``partial``
        (True when only the head of a large file was read), and for full scans
        ``col_totals`` / ``row_totals`` (sums of the numeric cells), ``top_totals``
        (column sums over the kingdom-level and unclassified rows of lineage
        tables, or None), ``max_value`` and ``text_columns`` (mostly-text columns).
    """
    settings = {"sep": sep, "comments": comments}
    target = _cache_path(path, settings) if cache else None
    if target is not None and target.is_file():
        try:
            return json.loads(target.read_text())
        except (OSError, ValueError):
            pass
    facts = _scan(path, sep, comments)
    if target is not None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(facts))
        except OSError:
            pass
    return facts


def _scan(path: Path, sep: str | None, comments: bool) -> dict:
    partial = path.stat().st_size > FULL_SCAN_BYTES
    lines: list[str] = []
    comment_lines: list[str] = []
    with open_text(path) as fh:
        for number, line in enumerate(fh):
            line = line.rstrip("\r\n")
            if comments and not lines and line.startswith("#"):
                comment_lines.append(line)
                continue
            if line.strip():
                lines.append(line)
            if partial and len(lines) > HEAD_ROWS:
                break
    n_skipped = len(comment_lines)
    facts: dict = {"partial": partial, "ragged": [], "decimal_comma": None, "ids": [],
                   "header": [], "col_totals": None, "row_totals": None, "top_totals": None,
                   "max_value": None, "text_columns": [], "n_rows": 0}
    if not lines:
        facts["sep"] = sep or "\t"
        return facts
    header_line = lines[0]
    if sep is None:
        csv = path.name.lower().removesuffix(".gz").endswith(".csv")
        sep = "," if csv or ("\t" not in header_line and "," in header_line) else "\t"
    facts["sep"] = sep
    data = lines[1:]
    if comment_lines and data:
        last = comment_lines[-1].lstrip("#").lstrip()
        if len(last.split(sep)) > 1 and len(last.split(sep)) == len(lines[0].split(sep)):
            header_line, data = last, lines
    header = [f[1:-1] if len(f) >= 2 and f[0] == f[-1] == '"' else f for f in header_line.split(sep)]
    rows = [line.split(sep) for line in data]
    if rows and len(rows[0]) == len(header) + 1:
        header = [""] + header  # R write.table: no name for the row-name column
    facts["header"] = header
    n = len(header)
    first_data_line = n_skipped + 2
    facts["ragged"] = [[first_data_line + i, len(r)] for i, r in enumerate(rows) if len(r) != n][:LISTED]
    facts["last_short"] = None
    if partial and rows:
        rows = rows[:-1]  # the last row read from a large file may be cut by the read
    elif len(rows) > 1 and len(rows[-1]) < min(n, len(rows[0])):
        # the first row is complete; a shorter last row was cut short
        facts["last_short"] = [first_data_line + len(rows) - 1, len(rows[-1])]
    facts["ids"] = [r[0].strip().strip('"') for r in rows]
    facts["n_rows"] = len(rows)
    if n < 2 or not rows:
        return facts
    width = n - 1
    # one flat array of cells: one vectorised parse instead of one per column
    flat = pd.Series([c for r in rows for c in (r[1:] + [""] * width)[:width]], dtype=object)
    flat = flat.str.strip().str.strip('"')
    shape = (len(rows), width)
    nums = pd.to_numeric(flat, errors="coerce").to_numpy(dtype=float).reshape(shape)
    filled = (~flat.str.lower().isin(NA_TOKENS)).to_numpy().reshape(shape)
    numeric_share = (~np.isnan(nums) & filled).sum(axis=0) / np.maximum(filled.sum(axis=0), 1)
    is_text = (numeric_share < 0.5) & (filled.sum(axis=0) > 0)
    columns = header[1:]
    facts["text_columns"] = [str(c) for c, t in zip(columns, is_text) if t]
    comma = flat.str.match(DECIMAL_COMMA).to_numpy().reshape(shape)
    if comma.any():
        i, j = np.argwhere(comma)[0]
        facts["decimal_comma"] = [facts["ids"][i], str(columns[j]), flat.iat[i * width + j]]
    keep = np.flatnonzero(~is_text)
    if partial:
        return facts
    v = pd.DataFrame(nums[:, keep], columns=[columns[k] for k in keep], index=facts["ids"])
    facts["col_totals"] = {str(c): float(t) for c, t in v.sum(axis=0).items()}
    facts["row_totals"] = [float(t) for t in v.sum(axis=1)]
    finite = v.to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    facts["max_value"] = float(finite.max()) if finite.size else None
    ids = pd.Series(facts["ids"], index=v.index)
    last = ids.str.extract(r"([^|;]*)$", expand=False).str.strip()
    top = last.str[:3].isin(["k__", "d__"]) | last.str.lower().isin(UNCLASSIFIED_LABELS)
    if top.any() and (~top).any():
        facts["top_totals"] = {str(c): float(t) for c, t in v[top.to_numpy()].sum(axis=0).items()}
    return facts


# -------------------------------------------------------------------------- problems


def _expected(samples: pd.DataFrame, spec: dict) -> dict[str, str]:
    """The ids this table's samples should carry -> the sheet's sample_id."""
    id_column = (spec.get("options") or {}).get("sample_id_column")
    types = {spec["sample_type"]} | ({"qc", "blank"} if spec["kind"] == "metabolome" else set())
    rows = samples[samples["sample_type"].isin(types)]
    if id_column:
        if id_column not in rows.columns:
            return {}
        keys = rows[id_column].fillna("").astype(str).map(id_key)
        return {k: s for k, s in zip(keys, rows["sample_id"].astype(str)) if k}
    return {str(s): str(s) for s in rows["sample_id"]}


def _paths(spec: dict) -> list[str]:
    path = spec.get("path")
    return [str(p) for p in path] if isinstance(path, (list, tuple)) else [str(path or "")]


def path_problems(config: dict) -> list[Problem]:
    """Input paths of the config that do not exist, are directories or are empty.

    Named by the config key, in the style of the other config checks. A directory
    is right only for Bracken (a folder of per-sample files).
    """
    problems = []
    entries = [(key, config.get(key) or "", False) for key in ("samples", "subjects", "adverse_events")]
    for name, spec in sorted(config.get("modalities", {}).items()):
        paths = _paths(spec)
        for i, p in enumerate(paths):
            key = f"modalities.{name}.path" + (f".{i}" if len(paths) > 1 else "")
            entries.append((key, p, spec.get("format") == "bracken"))
    for key, path, dir_ok in entries:
        if not path:
            continue
        p = Path(path)
        if not p.exists():
            problems.append(Problem("config", f"key '{key}'", f"'{path}' does not exist",
                                    "check the path (relative paths start at the working directory)"))
        elif p.is_dir() and not dir_ok:
            inside = sorted(f.name for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
            example = f", e.g. {p / inside[0]}" if inside else ""
            problems.append(Problem("config", f"key '{key}'", f"'{path}' is a directory",
                                    f"give the file of the table itself{example}"))
        elif p.is_file() and p.stat().st_size == 0:
            problems.append(Problem("config", f"key '{key}'", f"'{path}' is empty (0 bytes)",
                                    "export the table again; the file has no content"))
    return problems


def _composition_units(spec: dict, totals: dict | None, file: str) -> list[Problem]:
    """Declared percent/fraction against the median non-zero sample total."""
    options = spec.get("options") or {}
    declared = options.get("units", "auto")
    if declared not in UNIT_SCALE or not totals:
        return []
    nz = [t for t in totals.values() if t > 0]
    if not nz:
        return []
    med = float(np.median(nz))
    for unit, scale in UNIT_SCALE.items():
        if unit != declared and abs(med - scale) <= 0.05 * scale:
            return [Problem(file, "sample columns", f"declared units: {declared}, but the samples sum to "
                            f"about {med:.4g} (median), as {unit} do",
                            f"set options.units: {unit} (or leave units out: auto-detected)")]
    return []


def _table_problems(name: str, spec: dict, samples: pd.DataFrame, cache: bool):
    errors: list[Problem] = []
    warnings: list[Problem] = []
    fmt = spec["format"]
    options = spec.get("options") or {}
    expected = _expected(samples, spec)
    if fmt == "bracken":
        return _bracken_problems(spec, expected)
    if fmt not in TEXT_FORMATS:
        return errors, warnings
    long_layout = (options.get("layout") or "wide") == "long"
    found: dict[str, str] = {}  # table sample id -> file
    zero: list[tuple[str, str]] = []
    for path in _paths(spec):
        p = Path(path)
        if not p.is_file() or p.stat().st_size == 0:
            continue
        sep = options.get("sep") if fmt in ("plain", "metabolome", "immune") else "\t"
        comments = fmt in ("metaphlan", "plain")
        facts = scan_table(p, sep, comments, cache)
        header = facts["header"]
        if not header:
            continue
        if len(header) == 1:
            other = next((c for c in (";", "\t", ",", "|") if c != facts["sep"] and c in header[0]), None)
            if other is not None:
                fix = (f"save it tab-separated, or set options.sep: {other!r}"
                       if fmt in ("plain", "metabolome", "immune") else "save it tab-separated")
                errors.append(Problem(path, "header", f"one single field ({header[0][:40]!r}): the file "
                                      f"is {SEP_NAMES.get(other, repr(other))}-separated, not "
                                      f"{SEP_NAMES.get(facts['sep'], repr(facts['sep']))}-separated", fix))
                continue
        if facts["decimal_comma"]:
            row, col, cell = facts["decimal_comma"]
            errors.append(Problem(path, f"column '{col}', row '{row}'", f"the number {cell!r} has a "
                                  "decimal comma", "save the file with decimal points (e.g. 12.5); "
                                  "gutaxis reads '.' as the decimal mark"))
        if facts.get("last_short"):
            line, fields = facts["last_short"]
            errors.append(Problem(path, f"line {line} (the last)", f"has {fields} of the header's "
                                  f"{len(header)} fields: the file looks truncated (cut short)",
                                  "copy or export the file again; its end is missing"))
            continue
        if long_layout:
            continue  # one row per measurement: the importer matches its sample column
        # where the samples are: the header (features as rows) or the first column
        header_ids = [h for h in header[1:] if h not in facts["text_columns"]
                      and h.lower() not in TAXID_COLUMNS]
        strip = options.get("sample_suffix_strip", HUMANN_SUFFIX if fmt == "humann" else None)
        header_ids = _strip(header_ids, strip) if fmt in ("metaphlan", "humann", "plain") else header_ids
        row_ids = facts["ids"]
        as_rows = {"plain": options.get("orientation") == "samples_as_rows",
                   "immune": options.get("orientation", "samples_as_rows") == "samples_as_rows",
                   "metabolome": options.get("orientation", "auto") == "samples_as_rows"}.get(fmt, False)
        keys = set(expected)
        in_header = sum(id_key(h) in keys for h in header_ids)
        in_rows = sum(id_key(r) in keys for r in row_ids)
        if fmt == "metabolome" and options.get("orientation", "auto") == "auto":
            as_rows = in_rows > in_header
        if fmt == "immune" and options.get("sample_column"):
            continue  # the ids are in a named column: the importer checks them
        ids, other_hits, other_n = ((row_ids, in_header, len(header_ids)) if as_rows
                                    else (header_ids, in_rows, len(row_ids)))
        hits = in_rows if as_rows else in_header
        if keys and ids and hits < 0.5 * len(ids) and other_hits >= max(2, 0.5 * other_n) \
                and fmt in ("plain", "immune", "metabolome"):
            pair = {"immune": ("subsets_as_rows", "samples_as_rows")}.get(fmt, ("features_as_rows",
                                                                                "samples_as_rows"))
            wanted = pair[0] if as_rows else pair[1]
            shape = "samples as columns" if wanted == pair[0] else "samples as rows"
            where = "first column" if as_rows else "column names"
            errors.append(Problem(path, "sample ids", f"the {where} ({_listed(ids[:3])}) are not sample "
                                  f"ids, while {other_hits} of the {'column names' if as_rows else 'first column values'} "
                                  "are: the table is the other way round",
                                  f"set options.orientation: {wanted} ({shape})"))
            continue
        for sid in ids:
            found.setdefault(id_key(sid), path)
        totals = None
        if not as_rows and facts["col_totals"] is not None:
            totals = {h: facts["col_totals"].get(raw) for raw, h in zip(
                [h for h in header[1:] if h not in facts["text_columns"] and h.lower() not in TAXID_COLUMNS],
                header_ids)}
        elif as_rows and facts["row_totals"] is not None:
            totals = dict(zip(row_ids, facts["row_totals"]))
        if totals and spec["kind"] in ("taxonomy", "function"):
            zero += [(h, path) for h, t in totals.items() if t == 0 and id_key(h) in keys]
        if fmt in ("metaphlan", "plain"):
            errors += _composition_units(spec, facts["top_totals"] or totals, path)
        if fmt == "immune" and facts["max_value"] is not None:
            units = options.get("units")
            declared = set(units.values()) if isinstance(units, dict) else {units}
            if declared <= {"percent", "percent_of_parent"} and declared and 0 < facts["max_value"] <= 1:
                errors.append(Problem(path, "subset values", f"declared units: {_listed(sorted(declared))}, "
                                      f"but every value is <= 1 (largest {facts['max_value']:g}): these "
                                      "are fractions", "set options.units: fraction (or multiply the "
                                      "values by 100)"))
    if zero:
        warnings.append(Problem(_paths(spec)[0] if len(_paths(spec)) == 1 else zero[0][1],
                                f"sample column(s) {_listed([z[0] for z in zero])}",
                                "every value is zero (failed sample)",
                                "nothing to do: left out of this modality and listed in "
                                "results/qc/samples.tsv"))
    warnings += _missing_samples(spec, expected, found)
    return errors, warnings


def _missing_samples(spec: dict, expected: dict, found: dict) -> list[Problem]:
    if not found or not any(k in expected for k in found):
        return []
    missing = [sid for key, sid in expected.items() if key not in found]
    if not missing:
        return []
    paths = _paths(spec)
    label = paths[0] if len(paths) == 1 else f"{paths[0]} (+{len(paths) - 1} files)"
    return [Problem(label, f"{len(missing)} {spec['sample_type']} sample(s) of the sheet",
                    f"not in this table: {_listed(missing)}",
                    "nothing to do if they were not measured: they are left out of this modality "
                    "and listed in results/qc/samples.tsv")]


def _bracken_problems(spec: dict, expected: dict):
    errors: list[Problem] = []
    warnings: list[Problem] = []
    options = spec.get("options") or {}
    files: list[Path] = []
    for path in _paths(spec):
        p = Path(path)
        if p.is_dir():
            files += sorted(f for f in p.glob(options.get("pattern", "*"))
                            if f.is_file() and not f.name.startswith("."))
        elif p.is_file():
            files.append(p)
    found: dict[str, str] = {}
    empty = []
    strip = options.get("sample_suffix_strip") or BRACKEN_STRIP
    for f in files:
        with open_text(f) as fh:
            head = [fh.readline().rstrip("\r\n") for _ in range(2)]
        fields = head[0].split("\t")
        if any(c.endswith("_num") for c in fields):
            for c in fields:
                if c.endswith("_num"):
                    found.setdefault(_strip([c[:-4]], strip)[0], str(f))
            continue
        present = [c for c in BRACKEN_COLUMNS if c in fields]
        if not present:
            continue  # not a Bracken output: the importer says so
        sample = _strip([f.name], strip)[0]
        if len(present) < len(BRACKEN_COLUMNS):
            missing = [c for c in BRACKEN_COLUMNS if c not in fields]
            errors.append(Problem(str(f), "header", f"columns {_listed(missing)} are missing: the file "
                                  "looks truncated (cut short)", "copy the Bracken output again, or "
                                  "re-run Bracken for this sample"))
            continue
        if not head[1].strip():
            empty.append(sample)
            found.setdefault(sample, str(f))
            continue
        facts = scan_table(f, "\t", False)
        if facts["ragged"]:
            line, fields_found = facts["ragged"][0]
            errors.append(Problem(str(f), f"line {line}", f"has {fields_found} of the header's "
                                  f"{len(BRACKEN_COLUMNS)} fields: the file looks truncated (cut short)",
                                  "copy the Bracken output again, or re-run Bracken for this sample"))
            continue
        found.setdefault(sample, str(f))
    if empty:
        warnings.append(Problem(_paths(spec)[0], f"sample(s) {_listed(empty)}",
                                "Bracken file(s) with a header and no taxa (no reads estimated)",
                                "nothing to do: left out as failed samples and listed in "
                                "results/qc/samples.tsv"))
    warnings += _missing_samples(spec, expected, found)
    return errors, warnings


def preflight(config: dict, samples: pd.DataFrame, cache: bool = True):
    """Check every configured omics table against the sample sheet before any job.

    Parameters
    ----------
    config : dict
        The validated config (defaults filled).
    samples : DataFrame
        The checked sample sheet (without excluded samples).
    cache : bool
        Keep the facts read from each file under :data:`CACHE_DIR`.

    Returns
    -------
    errors, warnings : list of Problem
        One problem per line; errors stop the run, warnings are printed.
    """
    errors: list[Problem] = []
    warnings: list[Problem] = []
    for name, spec in sorted(config["modalities"].items()):
        e, w = _table_problems(name, spec, samples, cache)
        errors += e
        warnings += w
    return errors, warnings
