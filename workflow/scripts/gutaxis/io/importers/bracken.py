"""Read Kraken2/Bracken abundance estimates (per-sample files or the combined table)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import pandas as pd

from gutaxis.io.errors import InputError, Problem, ProblemCollector
from gutaxis.io.importers._common import (
    RANK_ALIASES, ImportResult, check_file, check_integer, check_unique, coerce_numeric,
    concat_dropped, dropped_frame, finish_features, finish_table, leading_lines, list_ids,
    open_text, read_id_table, strip_sample_suffix, to_fractions,
)

PER_SAMPLE_COLUMNS = ("name", "taxonomy_id", "taxonomy_lvl", "kraken_assigned_reads",
                      "added_reads", "new_est_reads", "fraction_total_reads")
#: Bracken level codes (-l) per rank.
LEVEL_CODES = {"kingdom": ("K", "D"), "phylum": ("P",), "class": ("C",), "order": ("O",),
               "family": ("F",), "genus": ("G",), "species": ("S",)}
CODE_TO_RANK = {c: r for r, cs in LEVEL_CODES.items() for c in cs}
#: Default sample-name rule: everything from '.bracken'/'_bracken' on, else the extension.
DEFAULT_STRIP = r"[._]bracken.*|\.(txt|tsv|out)"


def _level_rank(code: str) -> str:
    return CODE_TO_RANK.get(str(code).rstrip("0123456789"), str(code))


def _files(path, pattern: str) -> list[Path]:
    if isinstance(path, (str, Path)):
        p = Path(path)
        if p.is_dir():
            files = sorted(f for f in p.glob(pattern) if f.is_file() and not f.name.startswith("."))
            if not files:
                raise InputError(Problem(str(p), f"files matching {pattern!r}",
                                         "the directory has no Bracken files",
                                         "check the directory or the file pattern"))
            return files
        return [check_file(p, "Bracken file")]
    files = [check_file(f, "Bracken file") for f in path]
    if not files:
        raise InputError(Problem("(none)", "option 'path'", "no Bracken file given",
                                 "give a directory, a file or a list of files"))
    return files


def _sample_name(name: str, strip: str | None) -> str:
    return strip_sample_suffix([name], strip if strip is not None else DEFAULT_STRIP)[0]


def _ragged_lines(file: Path, n_fields: int) -> list[tuple[int, int]]:
    """(line number, fields) of the lines whose field count differs from the header's."""
    out = []
    with open_text(file) as fh:
        for number, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if number > 1 and line.strip() and len(line.split("\t")) != n_fields:
                out.append((number, len(line.split("\t"))))
    return out


def _read_per_sample(file: Path, problems: ProblemCollector) -> pd.DataFrame | None:
    """One per-sample Bracken output as a frame; None when it has a header and no taxa."""
    head = leading_lines(file, 2)
    fields = head[0].split("\t") if head else []
    missing = [c for c in PER_SAMPLE_COLUMNS if c not in fields]
    if missing:
        present = [c for c in PER_SAMPLE_COLUMNS if c in fields]
        if present and fields[: len(present)] == list(PER_SAMPLE_COLUMNS[: len(present)]):
            problems.add(str(file), "header", f"ends after column '{present[-1]}': columns "
                         f"{list_ids(missing)} are missing, the file looks truncated (cut short)",
                         "copy the Bracken output again, or re-run Bracken for this sample")
        else:
            problems.add(str(file), "header", f"not a Bracken output: columns {list_ids(missing)} missing",
                         "give Bracken's -o output files (not the kreport), or select them with pattern=")
        return pd.DataFrame()
    if len(head) < 2 or not head[1].strip():
        return None
    ragged = _ragged_lines(file, len(fields))
    if ragged:
        shown = ", ".join(f"line {n} ({k} fields)" for n, k in ragged[:5])
        problems.add(str(file), shown, f"rows with other than the header's {len(fields)} fields: "
                     "the file looks truncated (cut short) or damaged",
                     "copy the Bracken output again, or re-run Bracken for this sample")
        return pd.DataFrame()
    frame = read_id_table(file, "\t", 0, column_kind="column",
                          text_columns=["taxonomy_id", "taxonomy_lvl"])
    frame.index.name = "name"
    return frame.reset_index()


def read_bracken(
    path: str | Path | Sequence[str | Path],
    *,
    value: str = "fraction",
    rank: str | None = None,
    pattern: str = "*",
    sample_suffix_strip: str | None = None,
    feature_id: str = "name",
) -> ImportResult:
    """Read Bracken species/genus estimates into a samples x taxa table.

    Accepts a directory of per-sample Bracken ``-o`` files (``name, taxonomy_id,
    taxonomy_lvl, kraken_assigned_reads, added_reads, new_est_reads,
    fraction_total_reads``), a list of such files, one such file, or the table of
    ``combine_bracken_outputs.py`` (``name taxonomy_id taxonomy_lvl <s>_num <s>_frac
    ...``).  Counts are ``new_est_reads`` (``<s>_num``); fractions are recomputed
    from them over the taxa listed for the sample,

    .. math:: p_{ij} = n_{ij} / \\sum_j n_{ij},

    so they sum to 1.  Bracken's own ``fraction_total_reads`` column is not used:
    it is rounded to 5 decimals and, in real outputs, its denominator can exceed
    the listed reads (e.g. 0.46908 vs 0.47020 for the top taxon of a skin
    sample), so it does not sum to 1.  The counts are always returned in
    ``ImportResult.counts`` because richness estimators such as Chao1 need them.

    Parameters
    ----------
    path : directory, file or list of files
    value : {"fraction", "counts"}
        What ``table`` holds.
    rank : str, optional
        ``species``, ``genus``, ...; selects files of that Bracken level when a
        directory mixes levels (e.g. ``.bracken.s`` and ``.bracken.g``).
    pattern : str
        Glob used inside a directory.
    sample_suffix_strip : str, optional
        Regex removed from the end of file names (or ``<s>`` column names) to give
        sample ids; default removes ``.bracken...``/``_bracken...`` or ``.txt``.
    feature_id : {"name", "taxid"}

    Returns
    -------
    ImportResult

    References
    ----------
    Lu J, Breitwieser FP, Thielen P, Salzberg SL (2017) Bracken: estimating species
    abundance in metagenomics data. PeerJ Comput Sci 3:e104.
    """
    if value not in ("fraction", "counts"):
        raise InputError(Problem(str(path), "option 'value'", f"unknown value {value!r}",
                                 "use 'fraction' or 'counts'"))
    if feature_id not in ("name", "taxid"):
        raise InputError(Problem(str(path), "option 'feature_id'", f"unknown value {feature_id!r}",
                                 "use 'name' or 'taxid'"))
    wanted_codes = None
    if rank is not None:
        key = RANK_ALIASES.get(str(rank).lower())
        if key not in LEVEL_CODES:
            raise InputError(Problem(str(path), "option 'rank'", f"unknown Bracken rank {rank!r}",
                                     f"use one of {', '.join(LEVEL_CODES)}"))
        rank, wanted_codes = key, LEVEL_CODES[key]
    files = _files(path, pattern)
    label = str(path) if isinstance(path, (str, Path)) else f"{files[0]} (+{len(files) - 1} files)"
    problems = ProblemCollector()

    header = leading_lines(files[0], 1)
    combined = len(files) == 1 and header and any(c.endswith("_num") for c in header[0].split("\t"))
    notes: dict = {"format": "bracken", "files": [str(f) for f in files]}
    if combined:
        long, levels = _read_combined(files[0], sample_suffix_strip, problems)
        notes["layout"] = "combine_bracken_outputs"
    else:
        long, levels, empty = _read_files(files, sample_suffix_strip, problems)
        notes["layout"] = "per-sample files"
    problems.raise_if_any()
    if combined:
        empty = []
    if empty and long.empty:
        raise InputError(Problem(label, "rows", "every Bracken file has a header and no taxa",
                                 "check that Bracken ran on the right Kraken2 reports"))
    empty_dropped = dropped_frame(sample_ids=empty, reason="Bracken file has a header and no taxa "
                                  "(no reads estimated: failed sample)")

    present = sorted(levels.unique())
    if wanted_codes is None:
        if len(present) > 1:
            per = levels.value_counts()
            raise InputError(Problem(label, "column 'taxonomy_lvl'", "the files hold different "
                                     "Bracken levels: " + ", ".join(f"{c} ({n} files)" for c, n in per.items()),
                                     "pass rank= (e.g. rank: species) or select files with pattern="))
        codes = present
    else:
        codes = [c for c in present if c.rstrip("0123456789") in wanted_codes]
        if not codes:
            raise InputError(Problem(label, "column 'taxonomy_lvl'", f"no {rank} level in the "
                                     f"Bracken output; levels present: {', '.join(present)}",
                                     "run Bracken with -l for that rank or choose a rank present"))
    ignored = levels[~levels.isin(codes)]
    if len(ignored):
        notes["files_ignored"] = {str(k): v for k, v in ignored.items()}
    long = long[long["source"].map(levels).isin(codes)].copy()
    rank_name = _level_rank(codes[0])

    samples_per_source = long.drop_duplicates("source").groupby("sample")["source"].apply(list)
    dup_samples = samples_per_source[samples_per_source.map(len) > 1]
    if len(dup_samples):
        problems.add(label, "sample names", "several inputs give the same sample id: "
                     + "; ".join(f"'{s}' from {list_ids(src)}" for s, src in dup_samples.items()),
                     "set sample_suffix_strip (or rename the files) so each sample id is unique")
    long["feature"] = long["name"] if feature_id == "name" else long["taxonomy_id"]
    dups = long[long.duplicated(["sample", "feature"], keep=False)]
    if len(dups):
        problems.add(label, f"rows of {list_ids(dups['feature'].unique())}",
                     f"taxon listed more than once in a sample ({list_ids(dups['source'].unique())})",
                     "use feature_id='taxid' or remove the repeated rows")
    ids = long.drop_duplicates(["feature", "name", "taxonomy_id"])
    clash = ids[ids.duplicated("feature", keep=False)]
    if len(clash):
        problems.add(label, f"taxa {list_ids(clash['feature'].unique())}",
                     "the same name has different taxonomy ids in different files",
                     "use feature_id='taxid' or make the Bracken databases agree")
    problems.raise_if_any()

    counts = long.pivot(index="sample", columns="feature", values="count").fillna(0.0)
    order = long.drop_duplicates("sample")["sample"]
    counts = counts.reindex(order)
    fractions, dropped_samples, info = to_fractions(counts, "counts", label, rank_label=rank_name)
    info = info.drop(columns="classified_fraction").rename(columns={"total": "total_reads"})
    features = ids.set_index("feature")[["name", "taxonomy_id"]].rename(
        columns={"taxonomy_id": "taxid"})
    features["rank"] = rank_name
    features["level_code"] = codes[0]

    kept_counts = finish_table(counts.loc[fractions.index])
    table = finish_table(fractions) if value == "fraction" else kept_counts.copy()
    notes.update({"units": "counts", "output_units": value, "rank": rank_name,
                  "levels": codes, "renormalised": value == "fraction",
                  "fraction_source": "new_est_reads / sum of new_est_reads over the listed taxa "
                                     "(fraction_total_reads column not used)",
                  "n_rows_read": int(len(long)), "n_samples_read": int(counts.shape[0]),
                  "n_features": int(table.shape[1]), "n_samples": int(table.shape[0]),
                  "feature_id": feature_id})
    return ImportResult(table=table, features=finish_features(features, table.columns),
                        dropped=concat_dropped([dropped_samples, empty_dropped]), notes=notes,
                        sample_info=info, counts=kept_counts)


def _read_files(files: list[Path], strip: str | None, problems: ProblemCollector):
    frames, levels, empty = [], {}, []
    for f in files:
        frame = _read_per_sample(f, problems)
        if frame is None:
            # a header and no taxa: Bracken found nothing to estimate (failed sample)
            empty.append(_sample_name(f.name, strip))
            continue
        if frame.empty:
            continue
        local = ProblemCollector()
        reads = coerce_numeric(frame[["new_est_reads"]].set_axis(frame["name"]), str(f), local,
                               row_kind="taxon", col_kind="Bracken")
        if not local:
            check_integer(reads, str(f), local, row_kind="taxon", col_kind="Bracken")
        problems.extend(local)
        if local:
            continue
        lv = frame["taxonomy_lvl"].dropna().unique()
        if len(lv) != 1:
            problems.add(str(f), "column 'taxonomy_lvl'", f"mixed levels {list_ids(lv)} in one file",
                         "give Bracken output estimated at a single level")
            continue
        levels[str(f)] = str(lv[0])
        frames.append(pd.DataFrame({"source": str(f), "sample": _sample_name(f.name, strip),
                                    "name": frame["name"].astype(str).to_numpy(),
                                    "taxonomy_id": frame["taxonomy_id"].astype(str).to_numpy(),
                                    "count": reads.iloc[:, 0].to_numpy()}))
    long = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["source", "sample", "name", "taxonomy_id", "count"])
    return long, pd.Series(levels, dtype=object), empty


def _read_combined(file: Path, strip: str | None, problems: ProblemCollector):
    frame = read_id_table(file, "\t", 0, column_kind="column",
                          text_columns=["taxonomy_id", "taxonomy_lvl"])
    need = [c for c in ("taxonomy_id", "taxonomy_lvl") if c not in frame.columns]
    num_cols = [c for c in frame.columns if str(c).endswith("_num")]
    if need or not num_cols:
        problems.add(str(file), "header", "not a combine_bracken_outputs.py table "
                     "(needs name, taxonomy_id, taxonomy_lvl and <sample>_num columns)",
                     "give the combined table unchanged")
        return pd.DataFrame(), pd.Series(dtype=object)
    reads = coerce_numeric(frame[num_cols], str(file), problems, row_kind="taxon")
    if problems:
        return pd.DataFrame(), pd.Series(dtype=object)
    check_integer(reads, str(file), problems, row_kind="taxon")
    samples = [_sample_name(re.sub(r"_num$", "", c), strip) for c in num_cols]
    check_unique(samples, "sample", str(file), problems)
    if problems:
        return pd.DataFrame(), pd.Series(dtype=object)
    reads.columns = samples
    reads.index = frame.index.astype(str)
    long = reads.rename_axis("name").reset_index().melt(id_vars="name", var_name="sample",
                                                        value_name="count")
    long["taxonomy_id"] = long["name"].map(dict(zip(frame.index.astype(str),
                                                    frame["taxonomy_id"].astype(str))))
    long["source"] = long["sample"]
    lv = frame["taxonomy_lvl"].dropna().unique()
    if len(lv) != 1:
        problems.add(str(file), "column 'taxonomy_lvl'", f"mixed levels {list_ids(lv)}",
                     "combine Bracken outputs estimated at one level")
    levels = pd.Series({s: str(lv[0]) if len(lv) else "" for s in samples}, dtype=object)
    return long[["source", "sample", "name", "taxonomy_id", "count"]], levels
