"""Load a whole study as the workflow sees it: config, sheets and every modality, validated."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pandas as pd

from gutaxis.io.configuration import validate_config
from gutaxis.io.design import plan_study
from gutaxis.io.errors import InputError, Problem, ProblemCollector
from gutaxis.io.importers import read_table
from gutaxis.io.preflight import path_problems
from gutaxis.io.preflight import preflight as check_tables
from gutaxis.io.reconcile import reconcile_with_sheet
from gutaxis.io.sheets import id_key, load_sheets


@dataclass(frozen=True)
class ImportedModality:
    """One omics table in canonical form, with what was dropped and the importer's notes."""

    table: pd.DataFrame
    features: pd.DataFrame
    dropped: pd.DataFrame
    notes: dict


#: formats whose wide tables can be turned round, and the orientation that puts samples
#: as columns / as rows
ORIENTATION_VALUES = {
    "immune": ("subsets_as_rows", "samples_as_rows"),
    "plain": ("features_as_rows", "samples_as_rows"),
    "metabolome": ("features_as_rows", "samples_as_rows"),
}


def path_label(path) -> str:
    """How a modality's path (one file or a list) is named in messages."""
    if isinstance(path, (list, tuple)):
        return str(path[0]) if len(path) == 1 else f"{path[0]} (+{len(path) - 1} files)"
    return str(path)


def sample_keys(samples: pd.DataFrame, id_column, sample_type: str, keep_technical: bool,
                table_label: str, samples_label: str) -> dict[str, str]:
    """The ids a table's samples are matched against -> the sheet's ``sample_id``.

    Without ``id_column`` every ``sample_id`` maps to itself. With it (modality option
    ``sample_id_column``) the values of that sample-sheet column, on the rows of this
    table's sample type, map to their ``sample_id``; rows whose cell is empty are not
    in this table. Rows the sheet excludes are looked up in the sheet file itself
    (``samples_label``) so that their measurements are left out like any excluded
    sample's.
    """
    if not id_column:
        return {str(s): str(s) for s in samples["sample_id"]}
    rows = samples
    if id_column not in rows.columns:
        raise InputError(Problem(samples_label, f"column '{id_column}'", "the sample sheet has no such "
                                 f"column (named by options.sample_id_column of {table_label})",
                                 "add the column with the table's sample ids, or correct "
                                 "options.sample_id_column"))
    try:
        from gutaxis.io.sheets import read_text_table

        raw = read_text_table(samples_label)
        if {"sample_id", "sample_type", id_column} <= set(raw.columns):
            extra = raw[~raw["sample_id"].isin(rows["sample_id"])]
            rows = pd.concat([rows, extra[rows.columns.intersection(extra.columns)]], ignore_index=True)
    except (InputError, OSError):
        pass
    types = {sample_type} | ({"qc", "blank"} if keep_technical else set())
    rows = rows[rows["sample_type"].isin(types)]
    values = rows[id_column].fillna("").astype(str).map(id_key)
    rows, values = rows[values != ""], values[values != ""]
    dup = values[values.duplicated(keep=False)]
    if len(dup):
        shown = ", ".join(f"'{k}' ({', '.join(rows.loc[dup.index[dup == k], 'sample_id'])})"
                          for k in list(dict.fromkeys(dup))[:5])
        raise InputError(Problem(samples_label, f"column '{id_column}'", f"the same id names several "
                                 f"{sample_type} samples: {shown}",
                                 "give every sample its own id in this column"))
    return dict(zip(values, rows["sample_id"].astype(str)))


def relabel_samples(table: pd.DataFrame, dropped: pd.DataFrame, keys: dict[str, str],
                    id_column: str = "", table_label: str = "", samples_label: str = ""):
    """Rename the table's samples (ids of ``sample_id_column``) to the sheet's sample_id.

    Every id must be in that sheet column: an id that is not is an error, never matched
    to a ``sample_id`` of the same name (which could give one sample another's values).
    """
    ids = pd.Index(table.index.astype(str))
    unknown = [s for s in ids if id_key(s) not in keys]
    if unknown:
        shown = ", ".join(unknown[:8]) + (f" and {len(unknown) - 8} more" if len(unknown) > 8 else "")
        raise InputError(Problem(table_label, f"sample(s) {shown}",
                                 f"not in column '{id_column}' of {samples_label} (options.sample_id_column)",
                                 f"add these ids to column '{id_column}' (rows with exclude: yes for samples "
                                 "not to analyse)"))
    rename = {s: keys[id_key(s)] for s in ids}
    table = table.rename(index=rename)
    table.index.name = "sample_id"
    if "sample_id" in dropped.columns and len(dropped):
        dropped = dropped.copy()
        ids = dropped["sample_id"].fillna("").astype(str)
        dropped["sample_id"] = [keys.get(id_key(s), s) if s else s for s in ids]
    return table, dropped


def orientation_problem(table: pd.DataFrame, keys: set[str], spec: dict, label: str,
                        id_column=None, resolved: str | None = None) -> Problem | None:
    """A wide table read the wrong way round: its samples are not among the sheet's ids,
    while its feature names are. Returns the problem naming the option that fixes it.
    """
    if table.empty or not keys:
        return None
    rows = pd.Index(table.index.astype(str)).map(id_key)
    cols = pd.Index(table.columns.astype(str)).map(id_key)
    in_rows, in_cols = int(rows.isin(keys).sum()), int(cols.isin(keys).sum())
    if in_rows >= 0.5 * len(rows) or in_cols < max(2, 0.5 * len(cols)):
        return None
    options = spec.get("options") or {}
    fmt = spec["format"]
    pair = ORIENTATION_VALUES.get(fmt)
    sheet_ids = f"sheet column '{id_column}'" if id_column else "sample_id values of the sheet"
    what = (f"the samples read from it ({', '.join(list(table.index.astype(str))[:3])}, ...) are not "
            f"sample ids, while {in_cols} of its {len(cols)} other names are {sheet_ids}: the table "
            "is the other way round")
    if pair is None:
        return Problem(label, "sample ids", what, "give the table with samples as its tool writes them")
    if (options.get("layout") or "wide") == "long":
        return Problem(label, "sample ids", what.replace("the other way round", "not matched"),
                       "check options.sample_column (the column of sample ids)")
    default = {"immune": "samples_as_rows", "plain": "features_as_rows", "metabolome": "auto"}[fmt]
    current = resolved if resolved in pair else options.get("orientation", default)
    # samples were read from the header when the current orientation puts them as columns
    wanted = pair[1] if current == pair[0] else pair[0]
    shape = "samples as rows" if wanted == pair[1] else "samples as columns"
    return Problem(label, "sample ids", what, f"set options.orientation: {wanted} ({shape})")


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
    options = dict(spec.get("options") or {})
    id_column = options.pop("sample_id_column", None)
    label = path_label(spec["path"])
    # a feature absent from one of several files: not measured (NaN) for metabolites and
    # cell subsets, not detected (0) for abundances
    absent = float("nan") if spec["kind"] in ("metabolome", "immune") else None
    imported = read_table(spec["path"], spec["format"], absent_fill=absent, **options)
    keep_technical = spec["kind"] == "metabolome"
    sheet_keys = sample_keys(samples, id_column, spec["sample_type"], keep_technical, label, samples_label)
    problem = orientation_problem(imported.table, set(sheet_keys), spec, label, id_column,
                                  imported.notes.get("orientation"))
    if problem is not None:
        raise InputError(problem)
    table, import_dropped = imported.table, imported.dropped
    if id_column:
        table, import_dropped = relabel_samples(table, import_dropped, sheet_keys, id_column, label,
                                                samples_label)
    excluded = set(map(str, excluded))
    table = table.loc[~table.index.astype(str).isin(excluded)]
    if "sample_id" in import_dropped.columns:
        import_dropped = import_dropped[~import_dropped["sample_id"].fillna("").astype(str).isin(excluded)]
    reconciled = reconcile_with_sheet(
        table,
        samples,
        import_dropped,
        sample_type=spec["sample_type"],
        table_label=label,
        sheet_label=samples_label,
        keep_technical=keep_technical,
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


def load_study(config: dict, preflight: bool = False, warn=sys.stderr) -> dict:
    """Validate the config and the sheets and plan the study, reporting all problems together.

    What the workflow does when it is parsed (``snakemake -n``). With ``preflight``
    (the workflow's main process) every omics table is checked too
    (:func:`gutaxis.io.preflight.preflight`): its errors join the plan's, its warnings
    are printed to ``warn``, one line each.

    Returns
    -------
    dict
        ``config`` (defaults filled), ``sheets`` (see :func:`load_sheets`) and ``plan``
        (:class:`gutaxis.io.design.StudyPlan`).

    Raises
    ------
    InputError
        With every problem found: the config's first (nothing else can be checked
        without it), then the sheets', then those of the study plan.
    """
    config = validate_config(config)
    paths = path_problems(config)
    if paths:
        raise InputError(paths)
    sheets = load_sheets(config)
    plan, problems = plan_study(config, sheets["subjects"], sheets["samples"])
    problems = list(problems)
    if preflight:
        errors, warnings = check_tables(config, sheets["samples"])
        problems += errors
        if not problems and warn is not None:
            for warning in warnings:
                print(f"gutaxis: note: {warning}", file=warn)
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
    study = load_study(config, preflight=True, warn=None)
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
