"""Load a whole study as the workflow sees it: config, sheets and every modality, validated."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from gutaxis.configuration import validate_config
from gutaxis.design import plan_study
from gutaxis.errors import InputError, ProblemCollector
from gutaxis.importers import read_table
from gutaxis.reconcile import reconcile_with_sheet
from gutaxis.sheets import load_sheets


@dataclass(frozen=True)
class ImportedModality:
    """One omics table in canonical form, with what was dropped and the importer's notes."""

    table: pd.DataFrame
    features: pd.DataFrame
    dropped: pd.DataFrame
    notes: dict


def import_modality(
    spec: dict, samples: pd.DataFrame, samples_label: str, duplicates: str = "last", excluded=()
) -> ImportedModality:
    """Read one configured modality and match it to the checked sample sheet.

    Parameters
    ----------
    spec : dict
        The modality's config entry (kind, format, path, sample_type, options,
        min_total), defaults filled.
    samples : DataFrame
        The checked sample sheet.
    samples_label : str
        How the sample sheet is named in messages.
    duplicates : {"last", "first", "error"}
        ``design.duplicates``: resolved among this table's usable samples.
    excluded : iterable of str
        Samples the sheet's ``exclude`` column leaves out: their columns are removed
        from the table without a word here (results/qc/samples.tsv lists them).

    Returns
    -------
    ImportedModality
        ``table`` samples x features (compositions closed to 1 per sample),
        ``features`` annotations aligned to the table's columns, ``dropped``
        with ``kind`` (sample/feature), ``id`` and ``reason``.
    """
    imported = read_table(spec["path"], spec["format"], **spec.get("options", {}))
    excluded = set(map(str, excluded))
    table = imported.table.loc[~imported.table.index.astype(str).isin(excluded)]
    import_dropped = imported.dropped
    if "sample_id" in import_dropped.columns:
        import_dropped = import_dropped[~import_dropped["sample_id"].fillna("").astype(str).isin(excluded)]
    reconciled = reconcile_with_sheet(
        table,
        samples,
        import_dropped,
        sample_type=spec["sample_type"],
        table_label=spec["path"],
        sheet_label=samples_label,
        keep_technical=spec["kind"] == "metabolome",
        min_total=spec.get("min_total", 0.0),
        duplicates=duplicates,
    )
    table = reconciled.table
    if spec["kind"] in ("taxonomy", "function") and imported.notes.get("units") != "counts":
        table = table.div(table.sum(axis=1), axis=0)
    features = imported.features.reindex(table.columns)
    features.index.name = "feature_id"
    feature_drops = pd.DataFrame(columns=["kind", "id", "reason"])
    if "feature_id" in imported.dropped.columns:
        ids = imported.dropped["feature_id"].fillna("").astype(str)
        rows = imported.dropped[ids != ""]
        feature_drops = pd.DataFrame(
            {"kind": "feature", "id": rows["feature_id"].astype(str), "reason": rows["reason"].astype(str)}
        )
    sample_drops = pd.DataFrame(
        {"kind": "sample", "id": reconciled.dropped["sample_id"], "reason": reconciled.dropped["reason"]}
    )
    dropped = pd.concat([sample_drops, feature_drops], ignore_index=True)
    return ImportedModality(table, features, dropped, dict(imported.notes))


def load_study(config: dict) -> dict:
    """Validate the config and the sheets and plan the study, reporting all problems together.

    What the workflow does when it is parsed (``snakemake -n``), before any table is read.

    Returns
    -------
    dict
        ``config`` (defaults filled), ``sheets`` (see :func:`load_sheets`) and ``plan``
        (:class:`gutaxis.design.StudyPlan`).

    Raises
    ------
    InputError
        With every problem found: the config's first (nothing else can be checked
        without it), then the sheets', then those of the study plan.
    """
    config = validate_config(config)
    sheets = load_sheets(config)
    plan, problems = plan_study(config, sheets["subjects"], sheets["samples"])
    if problems:
        raise InputError(problems)
    return {"config": config, "sheets": sheets, "plan": plan}


def validate_study(config: dict) -> dict:
    """Validate the config, the sheets, the study plan and every modality; report all problems together.

    Returns
    -------
    dict
        ``config`` (defaults filled), ``sheets`` (see :func:`load_sheets`), ``plan``
        and ``modalities`` (name -> :class:`ImportedModality`).

    Raises
    ------
    InputError
        With every problem found: those of :func:`load_study`, then every modality's.
    """
    study = load_study(config)
    config, sheets = study["config"], study["sheets"]
    collector = ProblemCollector()
    modalities = {}
    for name in sorted(config["modalities"]):
        try:
            modalities[name] = import_modality(
                config["modalities"][name],
                sheets["samples"],
                config["samples"],
                config["design"]["duplicates"],
                sheets["excluded"]["sample_id"],
            )
        except InputError as err:
            collector.problems.extend(err.problems)
    collector.raise_if_any()
    return {**study, "modalities": modalities}
