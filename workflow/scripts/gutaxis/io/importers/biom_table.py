"""Read BIOM tables (HDF5 or JSON, biom-format 2.1) into samples x features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from gutaxis.io.errors import InputError, Problem, ProblemCollector
from gutaxis.io.importers._common import (
    PREFIX_TO_RANK, RANK_ALIASES, RANK_ORDER, UNCLASSIFIED_FEATURE, ImportResult, all_integer,
    check_choices, check_file, check_unique, coerce_numeric, concat_dropped, detect_units, dropped_frame,
    finish_features, finish_table, to_fractions,
)

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
#: the allowed values of the options that have a fixed set
CHOICES = {"value": ("fraction", "as_is"), "units": ("auto", "counts", "fraction", "percent"),
           "unclassified": ("drop", "keep"), "feature_id": ("last", "lineage")}


def _lineage_parts(tax) -> list[str]:
    """Taxonomy metadata (list or '; '-joined string) as a list of stripped elements."""
    if tax is None or (isinstance(tax, float) and np.isnan(tax)):
        return []
    if isinstance(tax, str):
        tax = tax.replace("|", ";").split(";")
    return [str(t).strip() for t in tax if str(t).strip()]


def _assigned(part: str) -> bool:
    """An element such as ``g__`` (prefix only) carries no assignment."""
    return bool(part) and not (len(part) == 3 and part.endswith("__"))


def read_biom(
    path: str | Path,
    *,
    value: str = "fraction",
    units: str = "auto",
    rank: str | None = None,
    unclassified: str = "drop",
    taxonomy_key: str = "taxonomy",
    feature_id: str = "last",
) -> ImportResult:
    """Read a BIOM table (observations x samples) as samples x observations.

    Observation taxonomy metadata becomes ``features['lineage']`` (elements joined
    by ``"; "``), ``rank`` and ``name`` (deepest assigned element).  With ``rank``
    the observations are summed per lineage truncated at that rank (QIIME-style
    collapse); observations without an assignment at that rank are dropped (or
    summed into ``UNCLASSIFIED`` with ``unclassified="keep"``).

    Parameters
    ----------
    path : path
        ``.biom`` file, HDF5 (BIOM 2.x) or JSON (BIOM 1.0); read with
        ``biom.load_table``.
    value : {"fraction", "as_is"}
        ``fraction`` turns percents or counts into fractions renormalised per
        sample; ``as_is`` keeps the numbers.
    units : {"auto", "counts", "fraction", "percent"}
        ``auto``: whole numbers are counts; otherwise
        :func:`gutaxis.io.importers._common.detect_units`.
    rank : str, optional
        Collapse to this rank (``kingdom`` ... ``species``).
    unclassified : {"drop", "keep"}
    taxonomy_key : str
        Observation-metadata key of the taxonomy.
    feature_id : {"last", "lineage"}
        Id of collapsed features: last lineage element or the truncated lineage.

    Returns
    -------
    ImportResult
        ``counts`` holds the (collapsed) counts when the table holds counts.

    References
    ----------
    McDonald D et al. (2012) The Biological Observation Matrix (BIOM) format.
    GigaScience 1:7.
    """
    import biom  # imported here: only BIOM users need the package loaded

    file = str(path)
    check_choices({"value": value, "units": units, "unclassified": unclassified, "feature_id": feature_id},
                  CHOICES, file)
    p = check_file(path, "BIOM table")
    with open(p, "rb") as fh:
        encoding = "hdf5" if fh.read(8) == HDF5_MAGIC else "json"
    try:
        tbl = biom.load_table(str(p))
    except Exception as exc:  # biom raises many types for a malformed file
        raise InputError(Problem(file, "file", f"cannot be read as a BIOM table ({type(exc).__name__}: "
                                 f"{str(exc)[:200]})",
                                 "give a BIOM 1.0 (JSON) or 2.x (HDF5) file, e.g. from "
                                 "'biom convert --to-hdf5'")) from None
    obs_ids = [str(i) for i in tbl.ids(axis="observation")]
    sample_ids = [str(i) for i in tbl.ids(axis="sample")]
    problems = ProblemCollector()
    if not sample_ids or not obs_ids:
        raise InputError(Problem(file, "table", f"cannot be read as a BIOM table with data: "
                                 f"{len(obs_ids)} observations and {len(sample_ids)} samples found",
                                 "give a non-empty BIOM 1.0 (JSON) or 2.x (HDF5) table"))
    check_unique(obs_ids, "observation", file, problems)
    check_unique(sample_ids, "sample", file, problems)
    problems.raise_if_any()
    dense = np.asarray(tbl.matrix_data.toarray(), dtype=float).T
    values = pd.DataFrame(dense, index=sample_ids, columns=obs_ids)
    coerce_numeric(values, file, problems, row_kind="sample", col_kind="observation",
                   allow_missing=False)
    problems.raise_if_any()

    meta = tbl.metadata(axis="observation")
    parts = [_lineage_parts(m.get(taxonomy_key) if m else None) for m in (meta or [None] * len(obs_ids))]
    assigned = [[x for x in ps if _assigned(x)] for ps in parts]
    lineage = pd.Series(["; ".join(ps) for ps in parts], index=obs_ids)
    deepest = pd.Series([a[-1] if a else "" for a in assigned], index=obs_ids)
    deep_rank = deepest.str[:3].map(PREFIX_TO_RANK)
    features = pd.DataFrame({"lineage": lineage, "rank": deep_rank,
                             "name": deepest.str.replace(r"^[a-z]__", "", regex=True)},
                            index=obs_ids)
    if meta:
        extra = pd.DataFrame([{k: v for k, v in (m or {}).items() if k != taxonomy_key
                               and not isinstance(v, (list, tuple, dict))} for m in meta],
                             index=obs_ids)
        features = features.join(extra)

    if units == "auto":
        # BIOM tables are count tables unless the values say otherwise.
        unit = "counts" if all_integer(values) else detect_units(values)
    else:
        unit = units
    notes = {"format": "biom", "encoding": encoding, "units": unit,
             "n_rows_read": len(obs_ids), "n_samples_read": len(sample_ids),
             "taxonomy_key": taxonomy_key, "has_taxonomy": any(parts)}
    dropped = []
    if rank is not None:
        rank_key = RANK_ALIASES.get(str(rank).lower())
        if rank_key is None:
            raise InputError(Problem(file, "option 'rank'", f"unknown rank {rank!r}",
                                     f"use one of {', '.join(RANK_ORDER)}"))
        if not any(parts):
            raise InputError(Problem(file, f"observation metadata '{taxonomy_key}'",
                                     "the table has no taxonomy to collapse by",
                                     "drop the rank option or add taxonomy with 'biom add-metadata'"))
        keys, ok = [], []
        for ps in assigned:
            upto = [x for x in ps if x[:3] in PREFIX_TO_RANK and
                    RANK_ORDER.index(PREFIX_TO_RANK[x[:3]]) <= RANK_ORDER.index(rank_key)]
            hit = bool(upto) and PREFIX_TO_RANK.get(upto[-1][:3]) == rank_key
            ok.append(hit)
            keys.append("; ".join(upto) if hit else UNCLASSIFIED_FEATURE)
        keys = pd.Series(keys, index=obs_ids)
        ok = pd.Series(ok, index=obs_ids)
        present_ranks = sorted(set(deep_rank.dropna()), key=RANK_ORDER.index)
        if not ok.any():
            raise InputError(Problem(file, "option 'rank'", f"no observation is assigned at rank "
                                     f"{rank_key!r}; deepest ranks present: {', '.join(present_ranks) or 'none'}",
                                     "choose a rank present in the taxonomy"))
        if unclassified == "drop":
            dropped.append(dropped_frame(feature_ids=list(keys.index[~ok]),
                                         reason=f"no assignment at rank {rank_key} "
                                                f"(unclassified='drop')"))
            keys = keys[ok]
        collapsed = values[keys.index].T.groupby(keys.to_numpy(), sort=False).sum().T
        last = pd.Series([k.split("; ")[-1] for k in collapsed.columns], index=collapsed.columns)
        ids = pd.Series(collapsed.columns, index=collapsed.columns) if feature_id == "lineage" else last
        check_unique(ids, "feature", file, problems,
                     fix="two lineages end in the same name at this rank; use feature_id='lineage'")
        problems.raise_if_any()
        features = pd.DataFrame({"lineage": collapsed.columns, "rank": [
            "unclassified" if c == UNCLASSIFIED_FEATURE else rank_key for c in collapsed.columns],
            "name": last.str.replace(r"^[a-z]__", "", regex=True).to_numpy(),
            "n_observations": keys.value_counts().reindex(collapsed.columns).to_numpy()},
            index=ids.to_numpy())
        collapsed.columns = ids.to_numpy()
        values = collapsed
        notes["collapsed_to_rank"] = rank_key

    counts = values.copy() if unit == "counts" and all_integer(values) else None
    info = pd.DataFrame({"total": values.sum(axis=1)})
    info.index.name = "sample_id"
    if value == "fraction":
        if unit not in ("counts", "fraction", "percent"):
            raise InputError(Problem(file, "values", "values are neither counts, fractions nor "
                                     "percents, so they cannot be turned into fractions",
                                     "pass value='as_is' or give units="))
        values, dropped_samples, frac_info = to_fractions(values, unit, file, rank_label=(
            notes.get("collapsed_to_rank", "")))
        info["classified_fraction"] = frac_info["classified_fraction"]
        dropped.append(dropped_samples)
        if counts is not None:
            counts = counts.loc[values.index]
    table = finish_table(values)
    notes.update({"output_units": "fraction" if value == "fraction" else unit,
                  "renormalised": value == "fraction", "n_features": int(table.shape[1]),
                  "n_samples": int(table.shape[0])})
    return ImportResult(table=table, features=finish_features(features, table.columns),
                        dropped=concat_dropped(dropped), notes=notes, sample_info=info,
                        counts=finish_table(counts) if counts is not None else None)
