"""Read MetaPhlAn 3/4 merged tables (and single-sample profiles) into one-rank fractions."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from gutaxis.io.errors import InputError, Problem, ProblemCollector
from gutaxis.io.importers._common import (
    PREFIX_TO_RANK, RANK_ALIASES, RANK_ORDER, UNCLASSIFIED_FEATURE, UNCLASSIFIED_LABELS,
    UNIT_SCALE, ImportResult, all_integer, check_composition, check_file, check_nonempty_ids,
    check_unique, coerce_numeric, concat_dropped, detect_composition_scale, dropped_frame,
    finish_features, finish_table, leading_lines, list_ids, read_id_table, require_sample_columns,
    strip_sample_suffix, to_fractions,
)

#: Header names of the optional taxid column (merge_metaphlan_tables.py of MetaPhlAn 3
#: writes ``NCBI_tax_id``; profiles made with ``-t rel_ab_w_read_stats`` use ``clade_taxid``).
TAXID_COLUMNS = ("ncbi_tax_id", "ncbitaxid", "clade_taxid", "cladetaxid", "taxid", "tax_id")
#: Column of a single-sample profile that holds the relative abundance.
PROFILE_VALUE_COLUMN = "relative_abundance"
#: Unprefixed MetaPhlAn 4 SGB ids (the t__ level), e.g. SGB15300, SGB4285_group, EUK4932.
SGB_NAME = re.compile(r"^(SGB|EUK)\d+(_group)?$")
VERSION_LINE = re.compile(r"^#\s*(mpa_v\S+)")


def _parse_rank(rank: str, file: str) -> str:
    key = str(rank).strip().lower()
    if key not in RANK_ALIASES:
        raise InputError(Problem(file, "option 'rank'", f"unknown rank {rank!r}",
                                 f"use one of {', '.join(RANK_ORDER)} (or 't' for t__/SGB rows)"))
    return RANK_ALIASES[key]


def _read_one(path: Path):
    """Read one merged table or profile: (clades x samples, taxids or None, version, is_profile)."""
    file = str(path)
    head = leading_lines(path, 400)
    n_comment = 0
    while n_comment < len(head) and head[n_comment].startswith("#"):
        n_comment += 1
    comments = head[:n_comment]
    version = next((m.group(1) for m in map(VERSION_LINE.match, comments) if m), None)
    profile_header = next((c for c in reversed(comments) if c.lstrip("#").startswith("clade_name")), None)
    is_profile = profile_header is not None and n_comment > 1
    if is_profile:
        # Single-sample profile: '#clade_name<TAB>NCBI_tax_id<TAB>relative_abundance<TAB>...'
        names = profile_header.lstrip("#").split("\t")
        frame = read_id_table(path, "\t", n_comment, header_line="\t".join(names),
                              column_kind="column", text_columns=names[1:2])
        if PROFILE_VALUE_COLUMN not in frame.columns:
            raise InputError(Problem(file, "header", f"a MetaPhlAn profile header without a "
                                     f"'{PROFILE_VALUE_COLUMN}' column ({profile_header!r})",
                                     "give the MetaPhlAn output file unchanged"))
        # '#<sample_id_key><TAB><sample_id>' ('#SampleID<TAB>Metaphlan_Analysis' by default)
        sample = next((c.split("\t")[1].strip() for c in comments
                       if c is not profile_header and len(c.split("\t")) == 2), "")
        if not sample or sample == "Metaphlan_Analysis":
            sample = re.sub(r"(\.(txt|tsv|gz|profile))+$", "", path.name)
        taxid_col = next((c for c in frame.columns if c.lower() in TAXID_COLUMNS), None)
        taxid = frame[taxid_col].astype(str) if taxid_col else None
        raw = frame[[PROFILE_VALUE_COLUMN]].rename(columns={PROFILE_VALUE_COLUMN: sample})
    else:
        frame = read_id_table(path, "\t", n_comment, column_kind="sample",
                              text_columns=[c for c in head[n_comment].split("\t")
                                            if c.lower() in TAXID_COLUMNS] if n_comment < len(head) else ())
        taxid_col = next((c for c in frame.columns if str(c).lower() in TAXID_COLUMNS), None)
        taxid = frame.pop(taxid_col).astype(str) if taxid_col else None
        raw = frame
        require_sample_columns(raw, file)
    return raw, taxid, version, is_profile


def read_metaphlan(
    path: str | Path | Sequence[str | Path],
    *,
    rank: str = "species",
    unclassified: str = "drop",
    sample_suffix_strip: str | None = None,
    units: str = "auto",
    feature_id: str = "last",
    check_sums: bool = True,
    tolerance: float = 0.01,
) -> ImportResult:
    """Read a MetaPhlAn 3/4 merged abundance table and keep one rank as fractions.

    Accepts the output of ``merge_metaphlan_tables.py`` (MetaPhlAn 3 or 4) with or
    without the ``#mpa_v...`` header and other ``#`` comment lines, with or without
    an ``NCBI_tax_id``/``clade_taxid`` column, with all ranks or only the terminal
    one, with full ``k__|p__|...`` lineages or bare names; also single-sample
    profiles (``#clade_name`` header, including ``-t rel_ab_w_read_stats``) and a
    list of files (outer-joined, absent clades = 0).

    The kept rank's rows are divided by the unit total (100 for percent), samples
    whose kept rows sum to 0 are dropped, and each remaining sample is renormalised:

    .. math:: p_{ij} = x_{ij} / \\sum_{j \\in R} x_{ij}

    over the rows :math:`R` whose deepest rank is ``rank`` (plus ``UNCLASSIFIED``
    when ``unclassified="keep"``).  The share before renormalisation is returned as
    ``sample_info['classified_fraction']``.

    Parameters
    ----------
    path : path or list of paths
        Merged table(s) or single-sample profile(s), plain or gzip.
    rank : str
        ``kingdom``, ``phylum``, ``class``, ``order``, ``family``, ``genus``,
        ``species`` (default) or ``sgb``/``t`` for the ``t__`` rows.
    unclassified : {"drop", "keep"}
        Drop the ``UNCLASSIFIED``/``UNKNOWN`` row (recorded in ``dropped``) or keep it
        as a feature named ``UNCLASSIFIED``.
    sample_suffix_strip : str, optional
        Regex (or plain suffix) removed from the end of each sample name, e.g.
        ``"_metagenome"``.
    units : {"auto", "percent", "fraction", "counts"}
        Input units; ``auto`` looks at the per-sample totals of the top rank
        (about 100 -> percent, about 1 -> fraction, whole numbers well above 100
        -> counts, as in tables merged from ``estimated_number_of_reads_from_the_clade``).
        Counts are also returned in ``ImportResult.counts``.
    feature_id : {"last", "lineage"}
        Feature id = last lineage element (``s__Faecalibacterium_prausnitzii``) or the
        full clade name.
    check_sums : bool
        Check that the top rank (plus unclassified) sums to 100 or 1 per sample.
        Turn off only for tables that were deliberately subset.
    tolerance : float
        Relative tolerance of that check (0.01 = 1%).

    Returns
    -------
    ImportResult
        ``table`` samples x clades (fractions, rows sum to 1); ``features`` with
        ``lineage``, ``rank``, ``name`` (and ``taxid``); ``dropped`` with other-rank,
        unclassified rows and failed samples; ``sample_info`` with ``total``,
        ``classified_fraction``, ``unclassified_fraction``.

    References
    ----------
    Blanco-Miguez A et al. (2023) Extending and improving metagenomic taxonomic
    profiling with uncharacterized species using MetaPhlAn 4. Nat Biotechnol 41:1633.
    """
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    if not paths:
        raise InputError(Problem("(none)", "option 'path'", "no MetaPhlAn file given",
                                 "give the merged table's path"))
    file = str(paths[0]) if len(paths) == 1 else f"{paths[0]} (+{len(paths) - 1} files)"
    rank = _parse_rank(rank, file)
    if unclassified not in ("drop", "keep"):
        raise InputError(Problem(file, "option 'unclassified'", f"unknown value {unclassified!r}",
                                 "use 'drop' or 'keep'"))
    if units not in ("auto", "percent", "fraction", "counts"):
        raise InputError(Problem(file, "option 'units'", f"unknown value {units!r}",
                                 "use 'auto', 'percent', 'fraction' or 'counts'"))
    if feature_id not in ("last", "lineage"):
        raise InputError(Problem(file, "option 'feature_id'", f"unknown value {feature_id!r}",
                                 "use 'last' or 'lineage'"))

    parts, taxids, versions, profile_flags = [], [], [], []
    for p in paths:
        raw, taxid, version, is_profile = _read_one(check_file(p, "MetaPhlAn table"))
        parts.append(raw)
        taxids.append(taxid)
        versions.append(version)
        profile_flags.append(is_profile)
    distinct_versions = sorted({v for v in versions if v})
    if len(distinct_versions) > 1:
        raise InputError(Problem(file, "header", f"files made with different MetaPhlAn databases "
                                 f"({', '.join(distinct_versions)})",
                                 "re-run MetaPhlAn with one database for all samples"))

    problems = ProblemCollector()
    for raw, p in zip(parts, paths):
        check_nonempty_ids(raw.index, "clade", str(p), problems)
        check_unique(raw.index, "clade", str(p), problems,
                     fix="each clade must appear once; re-merge the per-sample profiles")
        check_nonempty_ids(raw.columns, "sample", str(p), problems)
    problems.raise_if_any()
    numeric = [coerce_numeric(raw, str(p), problems, row_kind="clade")
               for raw, p in zip(parts, paths)]
    problems.raise_if_any()
    for part in numeric:
        part.columns = strip_sample_suffix(part.columns, sample_suffix_strip)
    seen: dict[str, str] = {}
    for part, p in zip(numeric, paths):
        check_unique(part.columns, "sample", str(p), problems,
                     fix="sample names must be unique (after sample_suffix_strip); rename or "
                         "remove the duplicated columns")
        for sample in dict.fromkeys(map(str, part.columns)):
            if sample in seen:
                problems.add(str(p), f"sample '{sample}'", f"the sample is also in {seen[sample]}",
                             "each sample may appear in one file of the list; remove or rename one")
            seen.setdefault(sample, str(p))
    problems.raise_if_any()
    # Clades absent from a profile were not detected there: 0, as merge_metaphlan_tables does.
    values = numeric[0] if len(numeric) == 1 else pd.concat(numeric, axis=1, join="outer").fillna(0.0)
    taxid = None
    if any(t is not None for t in taxids):
        taxid = pd.concat([t for t in taxids if t is not None])
        taxid = taxid[~taxid.index.duplicated()].reindex(values.index)

    clades = pd.Series(values.index.astype(str), index=values.index)
    last = clades.str.extract(r"([^|;]*)$", expand=False)
    is_unclassified = clades.str.strip().str.lower().isin(UNCLASSIFIED_LABELS)
    row_rank = last.str[:3].map(PREFIX_TO_RANK)
    unprefixed = row_rank.isna() & ~is_unclassified
    notes: dict = {"format": "metaphlan", "files": [str(p) for p in paths],
                   "header_version": distinct_versions[0] if distinct_versions else None,
                   "single_sample_profile": any(profile_flags),
                   "n_rows_read": int(len(values)), "n_samples_read": int(values.shape[1]),
                   "taxid_column": taxid is not None}
    if unprefixed.all() and (~is_unclassified).any():
        # Post-processed tables with bare names carry no rank; take the requested one.
        names = last[~is_unclassified]
        sgb_share = float(names.str.match(SGB_NAME).mean())
        if rank != "sgb" and sgb_share >= 0.9:
            raise InputError(Problem(file, "clade names", f"names look like MetaPhlAn 4 SGB ids "
                                     f"(e.g. {list_ids(list(names[:3]))}) but rank {rank!r} was "
                                     f"requested", "pass rank='sgb' for this table"))
        row_rank = row_rank.where(is_unclassified, rank)
        notes["rank_source"] = ("clade names carry no rank prefix; every row was taken as "
                                f"rank {rank} as requested")
    elif unprefixed.any():
        bad = list(clades[unprefixed])
        raise InputError(Problem(file, f"clade rows {list_ids(bad)}",
                                 "clade names without a rank prefix (k__, p__, c__, o__, f__, "
                                 "g__, s__, t__) among prefixed ones",
                                 "give the MetaPhlAn table as written by the tool, or remove these rows"))
    else:
        notes["rank_source"] = "deepest rank prefix of each clade name"

    counts_by_rank = row_rank[~is_unclassified].value_counts()
    rank_counts = {r: int(counts_by_rank.get(r, 0)) for r in RANK_ORDER if counts_by_rank.get(r, 0)}
    notes["rank_counts"] = rank_counts
    if rank not in rank_counts:
        present = ", ".join(f"{r} ({n} rows)" for r, n in rank_counts.items()) or "none"
        raise InputError(Problem(file, "option 'rank'", f"rank {rank!r} is not in the table; "
                                 f"ranks present: {present}",
                                 "choose one of the ranks present (taxonomy rank in the config)"))

    # Units and the composition check use the shallowest rank present (+ unclassified):
    # deeper ranks of real MetaPhlAn 4 tables do not always add up to the total.
    top_rank = next(r for r in RANK_ORDER if r in rank_counts)
    top_rows = (row_rank == top_rank) | is_unclassified
    totals = values[top_rows].sum(axis=0)
    if units == "auto":
        unit = detect_composition_scale(totals, tolerance)
        if unit is None:
            # Tables merged from the estimated_number_of_reads_from_the_clade column
            # (-t rel_ab_w_read_stats) hold read counts.
            big = totals.max() > 100 * (1 + tolerance)
            unit = ("counts" if big and all_integer(values) else
                    "percent" if totals.max() > 1 + tolerance else "fraction")
    else:
        unit = units
    if check_sums and unit != "counts":
        check_composition(totals, unit, tolerance, file, problems,
                          what=f"the {top_rank} rows (+ unclassified)",
                          fix="give the unfiltered MetaPhlAn table, set the right taxonomy units, "
                              "or turn the sum check off (check_sums: false) for a table "
                              "that was subset on purpose")
        problems.raise_if_any()
    # Denominator of the classified share: 100 or 1, or each sample's total reads.
    scale = totals.where(totals > 0) if unit == "counts" else UNIT_SCALE[unit]

    keep_rows = row_rank == rank
    kept = values[keep_rows].T
    kept_clades = clades[keep_rows]
    ids = kept_clades if feature_id == "lineage" else last[keep_rows]
    check_unique(ids, "feature", file, problems,
                 fix="two lineages end in the same name; use feature_id='lineage'")
    problems.raise_if_any()
    kept.columns = list(ids)
    unclassified_values = values[is_unclassified].sum(axis=0)
    sample_info = pd.DataFrame({"total": totals,
                                "classified_fraction": kept.sum(axis=1) / scale,
                                "unclassified_fraction": (unclassified_values / scale
                                                          if is_unclassified.any() else np.nan)})
    features = pd.DataFrame({"lineage": list(kept_clades), "rank": rank,
                             "name": list(last[keep_rows].str.replace(r"^[a-z]__", "", regex=True))},
                            index=list(ids))
    if taxid is not None:
        features["taxid"] = list(taxid[keep_rows])
    if unclassified == "keep":
        kept[UNCLASSIFIED_FEATURE] = unclassified_values
        features = pd.concat([features, pd.DataFrame(
            {"lineage": [UNCLASSIFIED_FEATURE], "rank": ["unclassified"],
             "name": [UNCLASSIFIED_FEATURE]}, index=[UNCLASSIFIED_FEATURE])])
    fractions, dropped_samples, _ = to_fractions(kept, unit, file, rank_label=rank)
    counts = finish_table(kept.loc[fractions.index]) if unit == "counts" else None
    sample_info.index.name = "sample_id"

    other = ~keep_rows & ~is_unclassified
    reasons = "rank " + row_rank[other].astype(str) + f" (kept rank: {rank})"
    dropped = [dropped_frame(feature_ids=list(clades[other]), reason=list(reasons))]
    if unclassified == "drop" and is_unclassified.any():
        dropped.append(dropped_frame(feature_ids=list(clades[is_unclassified]),
                                     reason="unclassified share (unclassified='drop'); "
                                            "samples renormalised over classified clades"))
    dropped.append(dropped_samples)

    table = finish_table(fractions)
    notes.update({
        "units": unit, "output_units": "fraction", "rank": rank, "top_rank": top_rank,
        "unclassified": unclassified, "unclassified_row": bool(is_unclassified.any()),
        "renormalised": True, "feature_id": feature_id,
        "sample_suffix_strip": sample_suffix_strip,
        "n_features": int(table.shape[1]), "n_samples": int(table.shape[0]),
        "min_classified_fraction": float(sample_info["classified_fraction"].min()),
    })
    return ImportResult(table=table, features=finish_features(features, table.columns),
                        dropped=concat_dropped(dropped), notes=notes, sample_info=sample_info,
                        counts=counts)
