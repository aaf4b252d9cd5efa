"""Read HUMAnN 2/3 pathway and gene-family tables (joined or single-sample)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from gutaxis.io.errors import InputError, Problem, ProblemCollector
from gutaxis.io.importers._common import (
    ImportResult, check_file, check_nonempty_ids, check_unique, coerce_numeric, concat_dropped,
    dropped_frame, finish_features, finish_table, leading_lines, read_id_table,
    require_sample_columns, strip_sample_suffix, to_fractions,
)

#: Rows that are not a function: reads not mapped to any gene family, pathway
#: abundance not assigned to a pathway, and regrouping leftovers.
SPECIAL_ROWS = ("UNMAPPED", "UNINTEGRATED", "UNGROUPED")
#: Column suffixes written by humann / humann_renorm_table / humann_join_tables.
SAMPLE_SUFFIX = r"_(Abundance|Coverage)(-[A-Za-z]+)?"
SUFFIX_UNITS = {"rpks": "rpk", "rpk": "rpk", "cpm": "cpm", "relab": "relab"}
HEADER_KINDS = {"pathway": "pathway", "genefamily": "gene_family", "genefamilies": "gene_family"}


def _units_from_names(columns, file: str) -> str | None:
    found = set()
    for c in columns:
        m = re.search(SAMPLE_SUFFIX + "$", str(c))
        if m:
            kind, unit = m.group(1), (m.group(2) or "").lstrip("-").lower()
            found.add("coverage" if kind == "Coverage" else SUFFIX_UNITS.get(unit, "rpk" if not unit else unit))
    if len(found) == 1:
        return found.pop()
    name = Path(file).name.lower()
    for key, unit in (("relab", "relab"), ("cpm", "cpm"), ("coverage", "coverage"), ("rpk", "rpk")):
        if key in name:
            return unit
    return None


def read_humann(
    path: str | Path,
    *,
    stratified: str = "drop",
    unmapped: str = "drop",
    units: str = "auto",
    feature_id: str = "id",
    renormalise: bool = False,
    sample_suffix_strip: str | None = SAMPLE_SUFFIX,
) -> ImportResult:
    """Read a HUMAnN pathway-abundance, pathway-coverage or gene-family table.

    Rows ``FUNCTION|g__Genus.s__species`` (and ``FUNCTION|unclassified``) are the
    per-taxon stratification of the community total row ``FUNCTION``; keeping both
    would count every read twice, so the default keeps the community totals.

    Parameters
    ----------
    path : path
        ``humann`` output or ``humann_join_tables`` output (``# Pathway`` or
        ``# Gene Family`` header; plain or gzip).
    stratified : {"drop", "keep", "only"}
        Drop stratified rows (default), keep every row, or keep only stratified rows.
    unmapped : {"drop", "keep"}
        ``UNMAPPED``, ``UNINTEGRATED`` and ``UNGROUPED`` rows (and their stratified
        rows) are dropped with a reason by default.
    units : {"auto", "rpk", "cpm", "relab", "coverage"}
        ``auto`` reads the column suffix (``_Abundance-RPKs``, ``-CPM``, ``-RELAB``,
        ``_Coverage``), then the file name, then the community totals (about 1e6 per
        sample -> CPM, about 1 -> relab, else RPK).
    feature_id : {"id", "full"}
        ``id`` keeps the identifier before ``": "`` (``PWY-5100``, ``UniRef90_X``) and
        puts the description in ``name``; ``full`` keeps the whole row label.
    renormalise : bool
        Divide each sample by its total over the kept rows (-> fractions).
    sample_suffix_strip : str or None
        Regex removed from the end of sample names (default the HUMAnN suffixes).

    Returns
    -------
    ImportResult
        ``features`` has ``name``, ``function``, ``taxon``, ``genus``, ``species``,
        ``stratified``, ``unit``.

    References
    ----------
    Beghini F et al. (2021) Integrating taxonomic, functional, and strain-level
    profiling of diverse microbial communities with bioBakery 3. eLife 10:e65088.
    """
    file = str(path)
    for opt, val, allowed in (("stratified", stratified, ("drop", "keep", "only")),
                              ("unmapped", unmapped, ("drop", "keep")),
                              ("units", units, ("auto", "rpk", "cpm", "relab", "coverage")),
                              ("feature_id", feature_id, ("id", "full"))):
        if val not in allowed:
            raise InputError(Problem(file, f"option '{opt}'", f"unknown value {val!r}",
                                     f"use one of {', '.join(map(repr, allowed))}"))
    p = check_file(path, "HUMAnN table")
    head = leading_lines(p, 2)
    header = head[0] if head else ""
    first_field = header.split("\t")[0]
    kind_key = re.sub(r"[^a-z]", "", first_field.lower())
    kind = HEADER_KINDS.get(kind_key, "unknown")
    frame = read_id_table(p, "\t", 0, column_kind="sample")
    require_sample_columns(frame, file)
    raw_samples = list(frame.columns)
    problems = ProblemCollector()
    check_nonempty_ids(frame.index, "feature", file, problems)
    check_unique(frame.index, "feature", file, problems,
                 fix="each row label must appear once; re-join the per-sample tables")
    values = coerce_numeric(frame, file, problems, row_kind="row")
    values.columns = strip_sample_suffix(values.columns, sample_suffix_strip)
    check_unique(values.columns, "sample", file, problems,
                 fix="sample names must be unique after removing the HUMAnN suffix")
    problems.raise_if_any()

    labels = pd.Series(values.index.astype(str), index=values.index)
    parts = labels.str.partition("|")
    function = parts[0]
    is_strat = parts[1] == "|"
    taxon = parts[2].where(is_strat)
    is_special = function.isin(SPECIAL_ROWS)

    if units == "auto":
        unit = _units_from_names(raw_samples, file)
        if unit is None:
            community = values[~is_strat].sum(axis=0)
            med = float(community.median()) if len(community) else 0.0
            unit = "cpm" if abs(med - 1e6) <= 0.01 * 1e6 else (
                "relab" if abs(med - 1.0) <= 0.01 else "rpk")
            unit_source = "community totals"
        else:
            unit_source = "sample column suffix or file name"
    else:
        unit, unit_source = units, "given"

    keep = pd.Series(True, index=values.index)
    dropped = []
    if unmapped == "drop" and is_special.any():
        rows = is_special & keep
        dropped.append(dropped_frame(feature_ids=list(labels[rows]),
                                     reason=list(function[rows] + " row (reads not assigned to a "
                                                 "function; unmapped='drop')")))
        keep &= ~is_special
    if stratified == "drop":
        rows = is_strat & keep
        dropped.append(dropped_frame(feature_ids=list(labels[rows]),
                                     reason="stratified row (per-taxon contribution; stratified='drop')"))
        keep &= ~is_strat
    elif stratified == "only":
        rows = ~is_strat & keep
        dropped.append(dropped_frame(feature_ids=list(labels[rows]),
                                     reason="community total row (stratified='only')"))
        keep &= is_strat
    if not keep.any():
        raise InputError(Problem(file, "rows", f"no rows left after stratified={stratified!r} "
                                 f"and unmapped={unmapped!r}",
                                 "check the options: the table may hold only stratified or "
                                 "only unstratified rows"))

    fn_id = function.str.split(": ", n=1).str[0]
    fn_name = function.str.split(": ", n=1).str[1]
    if feature_id == "id":
        ids = fn_id.where(~is_strat, fn_id + "|" + parts[2])
    else:
        ids = labels
    ids = ids[keep]
    check_unique(ids, "feature", file, problems,
                 fix="two rows share an identifier before ': '; use feature_id='full'")
    problems.raise_if_any()

    genus = labels.str.extract(r"\|(?:.*\.)?g__([^.|]+)", expand=False)
    species = labels.str.extract(r"\|.*s__([^.|]+)", expand=False)
    features = pd.DataFrame({
        "name": fn_name[keep].to_numpy(), "function": fn_id[keep].to_numpy(),
        "taxon": taxon[keep].to_numpy(), "genus": genus[keep].to_numpy(),
        "species": species[keep].to_numpy(), "stratified": is_strat[keep].to_numpy(),
        "unit": "fraction" if renormalise else unit}, index=ids.to_numpy())

    kept = values[keep].T
    kept.columns = ids.to_numpy()
    info = pd.DataFrame({"total": values[~is_strat].sum(axis=0),
                         "kept_total": kept.sum(axis=1)})
    info.index.name = "sample_id"
    if renormalise:
        kept, dropped_samples, _ = to_fractions(kept, "counts", file)
        dropped.append(dropped_samples)
    table = finish_table(kept)
    notes = {"format": "humann", "header": first_field, "kind": kind, "units": unit,
             "units_source": unit_source, "output_units": "fraction" if renormalise else unit,
             "stratified": stratified, "unmapped": unmapped, "renormalised": bool(renormalise),
             "n_rows_read": int(len(values)), "n_samples_read": int(values.shape[1]),
             "n_stratified_rows": int(is_strat.sum()), "n_features": int(table.shape[1]),
             "n_samples": int(table.shape[0]), "feature_id": feature_id,
             "sample_suffix_strip": sample_suffix_strip}
    return ImportResult(table=table, features=finish_features(features, table.columns),
                        dropped=concat_dropped(dropped), notes=notes, sample_info=info)
