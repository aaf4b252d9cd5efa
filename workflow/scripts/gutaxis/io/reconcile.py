"""Match an imported feature table to the sample sheet, recording every sample dropped and why."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from gutaxis.io.errors import InputError, Problem, ProblemCollector
from gutaxis.io.sheets import MAX_ROWS_LISTED, resolve_duplicate_samples

#: metabolomics tables also carry pooled QC injections and blanks
TECHNICAL_TYPES = ("qc", "blank")


@dataclass(frozen=True)
class ReconciledTable:
    """A feature table restricted to the samples the sheet declares for it.

    Attributes
    ----------
    table : DataFrame
        samples x features, only kept samples, in sample-sheet order.
    dropped : DataFrame
        ``sample_id, reason`` for every sample of this modality not kept.
    """

    table: pd.DataFrame
    dropped: pd.DataFrame


def _listed(ids) -> str:
    ids = list(ids)
    more = len(ids) - MAX_ROWS_LISTED
    return ", ".join(ids[:MAX_ROWS_LISTED]) + (f" and {more} more" if more > 0 else "")


def reconcile_with_sheet(
    table: pd.DataFrame,
    samples: pd.DataFrame,
    import_dropped: pd.DataFrame,
    sample_type: str,
    table_label: str,
    sheet_label: str,
    keep_technical: bool = False,
    min_total: float = 0.0,
    duplicates: str = "last",
) -> ReconciledTable:
    """Keep the table's samples that the sheet declares, and say what happened to the rest.

    Parameters
    ----------
    table : DataFrame
        samples x features as imported.
    samples : DataFrame
        The checked sample sheet.
    import_dropped : DataFrame
        The importer's dropped rows; those with a ``sample_id`` (e.g. a failed
        sample with no classified reads) are carried into ``dropped``.
    sample_type : str
        The sheet's sample_type for this table (stool, blood, tissue).
    keep_technical : bool
        Keep qc and blank injections (metabolomics).
    min_total : float
        Samples whose total abundance is below this are dropped (compositions).
    duplicates : {"last", "first", "error"}
        How to resolve two usable samples of this table for one subject and
        timepoint (``design.duplicates``): resolved here, per table, so a
        re-sequenced metagenome does not remove the metabolome of the original
        aliquot.

    Raises
    ------
    InputError
        When the table has samples the sheet does not know, samples of another
        sample_type, or no sample left.
    """
    problems = ProblemCollector()
    sheet = samples.set_index("sample_id")
    in_table = pd.Index(table.index.astype(str))
    allowed_types = {sample_type} | (set(TECHNICAL_TYPES) if keep_technical else set())

    unknown = [s for s in in_table if s not in sheet.index]
    if unknown:
        problems.add(
            table_label,
            f"sample column(s) {_listed(unknown)}",
            "these samples are not in the sample sheet",
            f"add them to {sheet_label} (with subject_id, timepoint, sample_type) or remove them from the table",
        )
    known = [s for s in in_table if s in sheet.index]
    wrong_type = [s for s in known if sheet.at[s, "sample_type"] not in allowed_types]
    if wrong_type:
        types = sorted({sheet.at[s, "sample_type"] for s in wrong_type})
        problems.add(
            table_label,
            f"sample column(s) {_listed(wrong_type)}",
            f"these are sample_type {', '.join(types)} in the sample sheet, but this table holds {sample_type} samples",
            "correct sample_type in the sample sheet or the modality's sample_type in the config",
        )
    problems.raise_if_any()

    reasons: dict[str, str] = {}
    if len(import_dropped) and "sample_id" in import_dropped.columns:
        ids = import_dropped["sample_id"].fillna("").astype(str)
        for sample, reason in zip(ids[ids != ""], import_dropped.loc[ids != "", "reason"]):
            reasons.setdefault(sample, str(reason))
    expected = sheet.index[sheet["sample_type"].isin(allowed_types)]
    for sample in expected:
        if sample not in in_table and sample not in reasons:
            reasons[sample] = f"not in {table_label}"

    candidates = [s for s in samples["sample_id"] if s in in_table and s not in reasons]
    kept = table.loc[candidates]
    zero = kept.index[(kept.fillna(0) == 0).all(axis=1)]
    for sample in zero:
        reasons[sample] = "all feature values are zero or missing (failed sample)"
    kept = kept.drop(index=zero)
    if min_total > 0:
        totals = kept.sum(axis=1)
        low = totals.index[totals < min_total]
        for sample in low:
            reasons[sample] = f"total abundance {totals[sample]:.4g} below min_total {min_total:g}"
        kept = kept.drop(index=low)
    usable = samples[samples["sample_id"].isin(kept.index)]
    resolved, duplicate_drops = resolve_duplicate_samples(usable, duplicates, sheet_label)
    for sample, reason in zip(duplicate_drops["sample_id"], duplicate_drops["reason"]):
        reasons[sample] = reason
    kept = kept.loc[resolved["sample_id"]]
    if kept.shape[0] == 0:
        raise InputError(
            Problem(
                table_label,
                "sample columns",
                f"no {sample_type} sample of the sample sheet is left in this table",
                "check that the column names equal the sample_id values of the sheet",
            )
        )
    if kept.shape[1] == 0:
        raise InputError(
            Problem(table_label, "features", "no feature is left", "check the importer options (e.g. rank)")
        )
    dropped = pd.DataFrame(
        {"sample_id": list(reasons), "reason": [reasons[s] for s in reasons]}, dtype=str
    )
    order = {s: i for i, s in enumerate(samples["sample_id"])}
    dropped = dropped.sort_values("sample_id", key=lambda s: s.map(lambda x: order.get(x, len(order))))
    kept.index.name = "sample_id"
    return ReconciledTable(kept, dropped.reset_index(drop=True))
