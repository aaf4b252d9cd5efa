"""Process an untargeted metabolomics peak table: filter, impute, normalise, transform.

:func:`process_metabolome` runs the steps below on a samples x features table of raw
intensities (NaN or 0 = not detected) whose rows are study samples, pooled QC
injections and blanks, and records every step in a processing log.

Order of the steps, and why:

0. ``input``: zeros become missing (not detected); ``all_missing``: features missing
   in every study and QC injection are dropped (reason ``all values missing``).
1. ``blank_filter``: study-sample median vs blank median, raw intensities.  Blank
   injections then leave the table (``remove_blanks``).
1b. ``structural_missingness``: (feature, group) cells where the feature and its platform
   were not measured (a platform not run at a visit or in a batch) and injections not
   run on a platform (:mod:`gutaxis.metabolome.structure`) stay missing to the end:
   never imputed, never used for normalisation; the downstream modules leave such a
   feature out of every analysis that uses the group.
2. ``missingness``: fraction missing over study samples (per group or overall).
3. ``qc_rsd``: RSD over the raw QC intensities, before imputation (imputed values
   would make poorly detected features look stable) and before normalisation.
   Steps 1-3 are per-feature rules on the same raw table, so their order only decides
   which step a feature is credited to in the dropped table.
   ``empty_samples``: injections with no observed value among the kept features are
   dropped (nothing to impute from).
4. ``impute``: study samples and QC pools together (half-minimum by default); the
   not-measured cells of step 1b stay missing.
5. ``normalise``: PQN against the median QC spectrum, reference and quotients from
   measured values only, of the features measured in every group.
6. ``log2``.
7. ``batch_correction``: on the log scale, before scaling (scaling after centring keeps
   the chosen variance weighting exact): per-batch median centring, or QC-RLSC drift
   correction (LOESS of the QC values on injection order per feature and batch, span by
   leave-one-QC-out cross-validation; :mod:`gutaxis.metabolome.drift`), both estimated
   from measured QC values only.  ``qc_precision`` reports the QC RSD in-sample and
   leave-one-QC-out, the replicate-injection RSD and the batch R^2 of the QC principal
   components before and after.
8. ``scale``: Pareto or auto scaling with mean and sd from study samples only.
9. ``output``: study samples only; QC pools are listed in ``dropped_samples``.

The pure step functions are re-exported here from ``metabolome_filters``,
``metabolome_impute`` and ``metabolome_normalise``; the QC tables come from
``metabolome_qc``; the parameters and their defaults from ``metabolome_params``.

References
----------
Broadhurst D. et al. (2018) Metabolomics 14:72; Dieterle F. et al. (2006) Anal Chem
78:4281; van den Berg R.A. et al. (2006) BMC Genomics 7:142.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gutaxis.io.errors import InputError, Problem
from gutaxis.metabolome.filters import (  # noqa: F401  (re-exported API)
    FeatureFilter, all_missing_filter, blank_filter, missing_fraction, missingness_filter, qc_rsd, rsd_filter,
)
from gutaxis.metabolome.impute import impute_half_minimum, impute_knn, impute_lod_fraction  # noqa: F401
from gutaxis.metabolome.normalise import (  # noqa: F401
    auto_scale, batch_median_centre, log2_transform, median_normalise, pareto_scale, pqn_normalise,
    quotient_counts, total_signal_normalise,
)
from gutaxis.metabolome.inputs import (  # noqa: F401  (SAMPLE_TYPES re-exported)
    SAMPLE_TYPES, align_annotations, listed, study_groups, validate_intensities, validate_samples,
)
from gutaxis.metabolome.params import DEFAULT_PARAMS, resolve_params  # noqa: F401
from gutaxis.metabolome import drift
from gutaxis.metabolome import qc
from gutaxis.metabolome import structure

log = logging.getLogger("gutaxis.metabolome")

LOG_COLUMNS = ["step", "parameter", "features_before", "features_after", "samples_before", "samples_after", "note"]
DROPPED_FEATURE_COLUMNS = ["feature_id", "step", "reason", "value"]
DROPPED_SAMPLE_COLUMNS = ["sample_id", "sample_type", "step", "reason"]


@dataclass
class ProcessedMetabolome:
    """Result of :func:`process_metabolome`.

    Attributes
    ----------
    table : pandas.DataFrame
        Study samples x kept features, processed (log2 scale unless ``log2`` is off).
    annotations : pandas.DataFrame
        Feature annotations aligned to ``table.columns``.
    log : pandas.DataFrame
        One row per step: step, parameter, features/samples before and after, note.
    dropped_features : pandas.DataFrame
        feature_id, step, reason, value (the statistic tested) + annotation columns.
    dropped_samples : pandas.DataFrame
        sample_id, sample_type, step, reason.
    qc_tables : dict of str to pandas.DataFrame
        ``pca_scores``: sample_id, sample_type, stage (before/after), pc1, pc2,
        pc1_variance_pct, pc2_variance_pct (study + QC injections; "before" = log2 of
        the raw table, half-minimum imputed; "after" = the processed values; both
        autoscaled for the PCA).
        ``qc_dispersion``: one row per stage, median QC distance to the QC centroid /
        median study distance to the study centroid (full space and PC1-PC2).
        ``qc_rsd``: feature_id, stage, n_qc, rsd (+ annotations); "before" on raw
        QC values, "after" on normalised (and batch-corrected) linear values of the
        kept features, imputed cells skipped.
        ``missingness_per_sample``: sample_id, sample_type, stage (raw: all features;
        filtered: kept features before imputation), n_features, n_missing,
        fraction_missing.
        ``missingness_per_feature``: feature_id, sample_set, n_samples, n_missing,
        fraction_missing (+ annotations), raw table.
        ``total_signal``: sample_id, sample_type, batch, injection_order, n_detected,
        total_signal_raw, total_signal_processed, in run order.
        ``normalisation_factors``: sample_id, sample_type, factor, n_features (the
        measured values the factor was computed from; 0 without normalisation).
        ``missingness_structure``: feature_id, platform, column, group, n_samples,
        n_missing, fraction_missing, status (measured / not measured) for every
        feature and group of ``structural_missingness.group_columns``.
        ``platform_missingness``: the same per platform (status not measured when
        every feature of the platform is).
        ``contrast_missingness``: per contrast and kept feature, the missing fraction
        at pre and post, their difference and a status (not measured at <t>,
        differs, similar).
        ``qc_precision``: before/after batch and drift correction: median QC RSD
        in-sample and leave-one-QC-out, replicate-injection RSD (study injections
        sharing subject and timepoint), batch R^2 of the first five QC principal
        components (empty with fewer than 3 QC injections or without log2).
        ``drift_fits``: per feature and batch, the QC-RLSC fit (n_qc, span, status,
        note, leave-one-out error); empty unless method ``qc_rlsc``.
    params : dict
        The complete parameters used.
    """

    table: pd.DataFrame
    annotations: pd.DataFrame
    log: pd.DataFrame
    dropped_features: pd.DataFrame
    dropped_samples: pd.DataFrame
    qc_tables: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)

    def output_tables(self) -> dict[str, pd.DataFrame]:
        """The workflow rule's tables by output name, except the processed table and its annotations."""
        tables = {"processing_log": self.log, "dropped_features": self.dropped_features,
                  "dropped_samples": self.dropped_samples}
        return {**tables, **{output: self.qc_tables[key] for output, key in QC_OUTPUTS.items()}}


#: output name of the workflow rule -> key of :attr:`ProcessedMetabolome.qc_tables`
QC_OUTPUTS = {
    "qc_pca": "pca_scores",
    "qc_dispersion": "qc_dispersion",
    "qc_rsd": "qc_rsd",
    "missingness_samples": "missingness_per_sample",
    "missingness_features": "missingness_per_feature",
    "total_signal": "total_signal",
    "normalisation_factors": "normalisation_factors",
    "missingness_structure": "missingness_structure",
    "platform_missingness": "platform_missingness",
    "contrast_missingness": "contrast_missingness",
    "qc_precision": "qc_precision",
    "drift_fits": "drift_fits",
}


def _with_annotations(table: pd.DataFrame, annotations: pd.DataFrame) -> pd.DataFrame:
    if annotations.shape[1] == 0:
        return table
    return table.merge(annotations, left_on="feature_id", right_index=True, how="left",
                       suffixes=("", "_annotation"))


class _Run:
    """Book-keeping of one processing run: log rows, dropped features and samples."""

    def __init__(self, x: pd.DataFrame, types: pd.Series, label: str, section: str):
        self.x, self.types, self.label, self.section = x, types, label, section
        self.log, self.dropped_features, self.dropped_samples = [], [], []

    def record(self, step, parameter, before: tuple[int, int], note: str = "") -> None:
        self.log.append(dict(zip(LOG_COLUMNS, [step, parameter, before[1], self.x.shape[1],
                                               before[0], self.x.shape[0], note])))

    def filter(self, result: FeatureFilter, parameter: str, relax: str) -> None:
        before = self.x.shape
        self.x, _ = result.apply(self.x)
        self.dropped_features.append(result.dropped)
        self.record(result.step, parameter, before)
        if self.x.shape[1] == 0:
            raise InputError(Problem(self.label, f"step {result.step}",
                                     f"no feature is left: this step removed the last {before[1]}", relax))

    def drop_samples(self, rows, step: str, reason: str) -> None:
        rows = np.asarray(rows, dtype=bool)
        ids = self.x.index[rows]
        self.dropped_samples.append(pd.DataFrame({"sample_id": ids, "sample_type": self.types[ids].to_numpy(),
                                                  "step": step, "reason": reason}))
        self.x = self.x.loc[~rows]


def process_metabolome(
    intensities: pd.DataFrame,
    samples: pd.DataFrame,
    annotations: pd.DataFrame | None = None,
    params: dict | None = None,
    *,
    intensities_file: str = "metabolome table",
    samples_file: str = "sample sheet",
    config_section: str = "metabolome",
    contrasts: list[dict] | None = None,
) -> ProcessedMetabolome:
    """Filter, impute, normalise and transform a metabolomics peak table.

    Parameters
    ----------
    intensities : pandas.DataFrame
        Injections x features raw intensities; NaN or 0 = not detected.
    samples : pandas.DataFrame
        Sample sheet (``sample_id`` column or index) with ``sample_type`` (qc, blank,
        stool, blood, tissue) for every injection, and the columns the parameters
        name (group column, ``batch``; optional ``injection_order``).
    annotations : pandas.DataFrame, optional
        Feature annotations indexed by (or with a column) ``feature_id``.
    params : dict, optional
        Partial parameters merged over :data:`DEFAULT_PARAMS`.
    intensities_file, samples_file, config_section : str
        Names used in error messages.
    contrasts : list of dict, optional
        The study's contrasts (``name``, ``pre``, ``post``): the missingness of their
        two sides is compared (``contrast_missingness`` table, warnings in the log).

    Returns
    -------
    ProcessedMetabolome

    Raises
    ------
    gutaxis.io.errors.InputError
        Bad parameters, non-numeric or negative intensities, injections missing from
        the sample sheet, or no feature / no study sample left after a step.
    """
    p = resolve_params(params, section=config_section)
    raw = validate_intensities(intensities, intensities_file)
    sheet = validate_samples(samples, raw.index, samples_file, intensities_file)
    ann = align_annotations(annotations, raw.columns, intensities_file)
    types = sheet["sample_type"]
    n_zero = int((raw == 0).to_numpy().sum())
    raw = raw.mask(raw == 0)
    run = _Run(raw, types, intensities_file, config_section)
    run.record("input", "", raw.shape, f"{n_zero} zero cells treated as missing")
    if not (~types.isin(["qc", "blank"])).any():
        raise InputError(Problem(samples_file, "column 'sample_type'",
                                 f"no study sample among the injections of {intensities_file}",
                                 "mark biological samples as stool, blood or tissue"))
    # a feature seen only in blanks has nothing to impute from once the blanks are gone
    run.filter(all_missing_filter(raw.loc[types[raw.index] != "blank"]), "study and QC injections",
               "every feature is empty in the study and QC injections: check that the table has intensities")

    section = config_section
    step = p["blank_filter"]
    if step["enabled"] and (types == "blank").any():
        run.filter(blank_filter(run.x, types, step["fold"]), f"fold={step['fold']}",
                   f"lower {section}.blank_filter.fold (now {step['fold']}) or set enabled: false")
    else:
        run.record("blank_filter", f"fold={step['fold']}", run.x.shape,
                   "skipped: disabled" if not step["enabled"] else "skipped: no blank injections")
    before = run.x.shape
    run.drop_samples(types[run.x.index] == "blank", "remove_blanks", "blank injection (used by the blank filter only)")
    run.record("remove_blanks", "", before)

    step = p["structural_missingness"]
    gaps = _structural_missingness(run, sheet, ann, step)

    step = p["missingness"]
    parameter = ("max_missing={max_missing}; rule={rule}; group_column={group_column}; strict={strict}").format(**step)
    study = ~types[run.x.index].isin(["qc"]).to_numpy()
    if step["enabled"]:
        groups = None
        if step["rule"] == "per_group":
            groups = study_groups(sheet, run.x.index[study], step["group_column"], samples_file, section)
        result = missingness_filter(run.x.loc[study], groups, step["max_missing"], step["rule"], step["strict"],
                                    not_measured=gaps.mask)
        run.filter(result, parameter, f"raise {section}.missingness.max_missing (now {step['max_missing']}) "
                   "or use rule per_group")
    else:
        run.record("missingness", parameter, run.x.shape, "skipped: disabled")

    step = p["qc_rsd"]
    is_qc = (types[run.x.index] == "qc").to_numpy()
    if step["enabled"] and is_qc.sum() >= 2:
        run.filter(rsd_filter(run.x, is_qc, step["max_rsd"]), f"max_rsd={step['max_rsd']}",
                   f"raise {section}.qc_rsd.max_rsd (now {step['max_rsd']}) or set enabled: false")
    else:
        run.record("qc_rsd", f"max_rsd={step['max_rsd']}", run.x.shape,
                   "skipped: disabled" if not step["enabled"] else f"skipped: {is_qc.sum()} QC injection(s), need 2")

    before = run.x.shape
    run.drop_samples(run.x.isna().all(axis=1).to_numpy(), "empty_samples", "all values missing in the kept features")
    run.record("empty_samples", "", before)
    if not (~types[run.x.index].isin(["qc"])).any():
        raise InputError(Problem(intensities_file, "all study samples",
                                 "no study sample has an observed value among the kept features",
                                 f"relax the {section} filters"))
    filtered = run.x
    is_qc = (types[run.x.index] == "qc").to_numpy()

    step = p["impute"]
    before = run.x.shape
    if step["method"] == "half_minimum":
        run.x = impute_half_minimum(run.x)
    elif step["method"] == "lod_fraction":
        lod = None
        if step["lod_column"] in ann.columns:
            lod = pd.to_numeric(ann[step["lod_column"]], errors="coerce")
        run.x = impute_lod_fraction(run.x, step["lod_fraction"], lod)
    else:
        run.x = impute_knn(run.x, step["knn_k"])
    # a cell of a group where the feature was not measured stays missing: no level to impute
    not_measured = gaps.mask.reindex(index=run.x.index, columns=run.x.columns, fill_value=False)
    run.x = run.x.mask(not_measured)
    detail = {"half_minimum": "", "lod_fraction": f"; fraction={step['lod_fraction']}", "knn": f"; k={step['knn_k']}"}
    n_gap = int(not_measured.to_numpy().sum())
    run.record("impute", f"method={step['method']}{detail[step['method']]}", before,
               f"{int(filtered.isna().to_numpy().sum()) - n_gap} missing cells imputed"
               + (f"; {n_gap} cells not measured left missing" if n_gap else ""))

    step = p["normalise"]
    before, notes = run.x.shape, []
    factors = pd.Series(1.0, index=run.x.index)
    measured = (_normalisation_cells(filtered, gaps.gappy_features(filtered.columns), notes)
                if step["method"] != "none" else filtered.notna())
    if step["method"] == "pqn":
        reference = step["reference"]
        if reference == "qc" and not is_qc.any():
            reference = "median"
            notes.insert(0, "no QC injections: reference = median of study samples")
        run.x, factors = pqn_normalise(run.x, reference, is_qc, measured=measured)
    elif step["method"] == "total_signal":
        run.x, factors = total_signal_normalise(run.x, measured=measured)
    elif step["method"] == "median":
        run.x, factors = median_normalise(run.x, measured=measured)
    n_used = quotient_counts(run.x, measured)
    if step["method"] != "none":
        notes.append(f"factors from {int(n_used.min())}-{int(n_used.max())} measured values per sample "
                     f"(median {float(n_used.median()):g}; normalisation_factors.tsv n_features)")
    parameter = f"method={step['method']}" + (f"; reference={step['reference']}" if step["method"] == "pqn" else "")
    run.record("normalise", parameter, before, "; ".join(notes))
    linear = run.x

    before = run.x.shape
    if p["log2"]:
        run.x = log2_transform(run.x)
    run.record("log2", str(p["log2"]), before, "" if p["log2"] else "skipped: disabled")

    step = p["batch_correction"]
    before = run.x.shape
    uncorrected, fitted = run.x, filtered.notna().reindex(index=run.x.index, columns=run.x.columns)
    correction = _batch_correct(run, sheet, step, is_qc, fitted, samples_file, section)
    note, drift_fits = correction.note, correction.fits
    parameter = f"method={step['method']}; batch_column={step['batch_column']}" + (
        f"; reference={step['reference']}" if step["method"] == "median" else
        f"; order_column={step['order_column']}; spans={','.join(map(str, step['spans']))}; min_qc={step['min_qc']}")
    run.record("batch_correction", parameter, before, note)
    precision = _precision_table(uncorrected, run.x, sheet, is_qc, fitted, step, correction, p["log2"])
    if correction.applied:  # QC RSD and total signal "after": linear scale of the corrected values
        linear = np.exp2(run.x) if p["log2"] else run.x

    before = run.x.shape
    study = ~is_qc
    if p["scale"] == "pareto":
        run.x = pareto_scale(run.x, study)
    elif p["scale"] == "auto":
        run.x = auto_scale(run.x, study)
    run.record("scale", p["scale"], before, "" if p["scale"] != "none" else "skipped: none")

    before = run.x.shape
    processed_rows = run.x
    run.drop_samples(is_qc, "output", "qc pool injection (used for filtering and normalisation, not a study sample)")
    run.record("output", "study samples only", before)

    qc_tables = _qc_tables(raw, sheet, filtered, linear, processed_rows, factors, ann, p)
    qc_tables["normalisation_factors"]["n_features"] = (
        n_used.reindex(factors.index).to_numpy() if p["normalise"]["method"] != "none" else 0)
    qc_tables.update(_structure_tables(gaps, filtered, sheet, is_qc, contrasts or [], p))
    qc_tables["qc_precision"] = precision
    qc_tables["drift_fits"] = drift_fits if drift_fits is not None else pd.DataFrame(columns=drift.FIT_COLUMNS)
    for warning in structure.contrast_warnings(qc_tables["contrast_missingness"]):
        log.warning("%s: %s", intensities_file, warning)
        run.log.append(dict(zip(LOG_COLUMNS, ["warning", "contrast missingness", run.x.shape[1], run.x.shape[1],
                                              run.x.shape[0], run.x.shape[0], warning])))
    dropped_features = pd.concat(run.dropped_features, ignore_index=True)
    dropped_samples = pd.concat(run.dropped_samples, ignore_index=True)
    steps = pd.DataFrame(run.log, columns=LOG_COLUMNS)
    for row in steps.itertuples(index=False):
        log.info("%-16s features %d -> %d, samples %d -> %d %s", row.step, row.features_before,
                 row.features_after, row.samples_before, row.samples_after, row.note)
    return ProcessedMetabolome(
        table=run.x,
        annotations=ann.reindex(run.x.columns),
        log=steps,
        dropped_features=_with_annotations(dropped_features[DROPPED_FEATURE_COLUMNS], ann),
        dropped_samples=dropped_samples[DROPPED_SAMPLE_COLUMNS],
        qc_tables=qc_tables,
        params=p,
    )


@dataclass
class _Gaps:
    """Structural missingness found by :func:`_structural_missingness`."""

    mask: pd.DataFrame  # injections x features, True = not measured
    table: pd.DataFrame  # metabolome_structure.structure_table
    platforms: pd.Series
    samples: pd.DataFrame  # injections not run on a platform (sample_platform_gaps)

    def gappy_features(self, features: pd.Index) -> np.ndarray:
        """True for the features not measured in some group (a sample-level gap does not count)."""
        rows = self.table[self.table["status"] == structure.NOT_MEASURED]
        return pd.Index(features).astype(str).isin(rows["feature_id"].astype(str))


def _groupings(sheet: pd.DataFrame, index: pd.Index, columns) -> tuple[dict, list]:
    """Group label per injection for each sheet column ('' = no group); the columns not found."""
    found, absent = {}, []
    for column in columns:
        if column not in sheet.columns:
            absent.append(column)
            continue
        labels = sheet.loc[index, column]
        text = labels.astype(str).str.strip()
        found[column] = text.where(labels.notna() & (text != ""))
    return found, absent


def _structural_missingness(run: _Run, sheet: pd.DataFrame, ann: pd.DataFrame, step: dict) -> _Gaps:
    """Find the (feature, group) cells not measured and set their few values aside (in place)."""
    platforms = structure.feature_platforms(run.x.columns, ann, step["platform"])
    empty = pd.DataFrame(False, index=run.x.index, columns=run.x.columns)
    parameter = (f"min_missing={step['min_missing']}; group_columns={','.join(step['group_columns'])}; "
                 f"platform={step['platform']}")
    if not step["enabled"]:
        run.record("structural_missingness", parameter, run.x.shape, "skipped: disabled")
        return _Gaps(empty, pd.DataFrame(columns=structure.STRUCTURE_COLUMNS), platforms,
                     pd.DataFrame(columns=structure.SAMPLE_GAP_COLUMNS))
    groupings, absent = _groupings(sheet, run.x.index, step["group_columns"])
    table = structure.structure_table(run.x.isna(), groupings, platforms, step["min_missing"])
    mask = structure.not_measured_mask(table, groupings, run.x.index, run.x.columns)
    sample_gaps, sample_mask = structure.sample_platform_gaps(run.x.isna(), platforms)
    set_aside = int((mask & run.x.notna()).to_numpy().sum())
    mask = mask | sample_mask
    run.x = run.x.mask(mask)
    notes = [f"{int(mask.to_numpy().sum())} cells not measured, never imputed: "
             f"{int((table['status'] == structure.NOT_MEASURED).sum())} feature x group combinations "
             f"(missingness_structure.tsv) and {len(sample_gaps)} injection x platform pairs with every "
             "feature of the platform missing (platform_missingness.tsv, column sample)"]
    summary = structure.platform_summary(table)
    for (column, platform), rows in summary[summary["status"] == structure.NOT_MEASURED].groupby(
            ["column", "platform"], sort=False):
        notes.append(f"platform {platform} ({int(rows['n_features'].iloc[0])} features) not measured at "
                     f"{column} {', '.join(rows['group'].astype(str))}")
    if set_aside:
        notes.append(f"{set_aside} values in those groups set aside (too few to stand for the group)")
    if absent:
        notes.append(f"column(s) {', '.join(absent)} not in the sample sheet: not checked")
    run.record("structural_missingness", parameter, run.x.shape, "; ".join(notes))
    return _Gaps(mask, table, platforms, sample_gaps)


def _normalisation_cells(filtered: pd.DataFrame, gappy: np.ndarray, notes: list) -> pd.DataFrame:
    """The cells a normalisation factor may use: measured values of features measured in every group.

    Imputed cells are assumptions; a feature with a structural gap would make the set of
    features behind a factor differ between groups (a platform missing at one visit would
    move every factor of that visit).
    """
    cells = filtered.notna()
    if gappy.any() and not gappy.all():
        cells.loc[:, gappy] = False
        notes.append(f"measured values of the {int((~gappy).sum())} features measured in every group "
                     f"({int(gappy.sum())} with a not-measured group left out)")
        lacking = ~cells.any(axis=1).to_numpy()
        if lacking.any():
            # no value on the common features: the sample's own measured values, said in the log
            cells.loc[lacking] = filtered.loc[lacking].notna()
            notes.append(f"sample(s) {listed(filtered.index[lacking])} have none of those: factor from "
                         "all their measured values")
    elif gappy.all():
        notes.append("every feature has a not-measured group: factors from all measured values")
    else:
        notes.append("measured values only (imputed cells left out)")
    return cells


def _structure_tables(gaps: _Gaps, filtered, sheet, is_qc, contrasts, p) -> dict:
    study = filtered.index[~is_qc]
    timepoints = sheet.loc[study, "timepoint"] if "timepoint" in sheet.columns else pd.Series(dtype=str)
    mask = gaps.mask.reindex(index=study, columns=filtered.columns, fill_value=False)
    contrast_table = structure.contrast_missingness(
        filtered.loc[study].isna(), timepoints, contrasts, gaps.platforms, mask,
        p["structural_missingness"]["max_difference"]) if len(timepoints) else \
        pd.DataFrame(columns=structure.CONTRAST_COLUMNS)
    return {
        "missingness_structure": gaps.table,
        "platform_missingness": structure.platform_summary(gaps.table, gaps.samples),
        "contrast_missingness": contrast_table,
    }


def _batch_labels(run: _Run, sheet, column, samples_file) -> pd.Series | None:
    """Batch per injection (text), None without the column; an empty cell is an input error."""
    if column not in sheet.columns:
        return None
    batches = sheet.loc[run.x.index, column]
    empty = batches.index[batches.isna().to_numpy() | (batches.astype(str).str.strip() == "").to_numpy()]
    if len(empty):
        raise InputError(Problem(samples_file, f"column {column!r}, sample(s) {listed(empty)}", "empty batch",
                                 "give every injection its batch"))
    return batches.astype(str)


def _injection_order(run: _Run, sheet, column, samples_file, section) -> pd.Series:
    """Injection order per injection for the drift fit; absent or non-numeric: an input error."""
    if column not in sheet.columns:
        raise InputError(Problem(samples_file, f"column {column!r}", "no injection order for the QC-RLSC drift fit",
                                 f"add the column or set {section}.batch_correction.order_column"))
    order = pd.to_numeric(sheet.loc[run.x.index, column].replace("", np.nan), errors="coerce")
    bad = order.index[order.isna().to_numpy()]
    if len(bad):
        raise InputError(Problem(samples_file, f"column {column!r}, sample(s) {listed(bad)}",
                                 "missing or non-numeric injection order", "give every injection its run position"))
    return order.astype(float)


@dataclass
class _Correction:
    """What :func:`_batch_correct` did: the log note, whether a correction was applied, the
    method's drift fits and injection order (QC-RLSC only)."""

    note: str
    applied: bool = False
    fits: pd.DataFrame | None = None
    order: pd.Series | None = None


def _batch_correct(run: _Run, sheet, step, is_qc, fitted, samples_file, section) -> _Correction:
    """Apply batch (and drift) correction in place.

    ``fitted`` marks the cells a correction may be estimated from (measured values: an
    imputed QC value would pull the fitted drift towards the imputation).
    """
    column = step["batch_column"]
    if not step["enabled"]:
        return _Correction("skipped: disabled")
    batches = _batch_labels(run, sheet, column, samples_file)
    if step["method"] == "qc_rlsc":
        order = _injection_order(run, sheet, step["order_column"], samples_file, section)
        if is_qc.sum() < step["min_qc"]:
            return _Correction(f"skipped: {int(is_qc.sum())} QC injection(s), QC-RLSC needs min_qc = {step['min_qc']}")
        one_run = batches is None
        if one_run:
            batches = pd.Series("all", index=run.x.index)
        masked = run.x.mask(~fitted.to_numpy() & is_qc[:, None])
        result = drift.qc_rlsc(masked, order, batches, is_qc, spans=tuple(step["spans"]), min_qc=step["min_qc"])
        # the QC cells left out of the fit keep their (uncorrected) values: QC tables skip them anyway
        run.x = result.table.where(result.table.notna() | run.x.isna(), run.x)
        fits = result.fits
        counts = fits.groupby("status").size().to_dict()
        no_drift = int(np.isinf(fits["span"].astype(float)).sum())
        note = (f"QC-RLSC: {counts.get('corrected', 0)} feature x batch fits corrected ({no_drift} of them "
                f"'no drift': the batch QC median predicted left-out QCs best), {counts.get('kept', 0)} kept "
                "uncorrected or median-aligned (drift_fits.tsv)" + ("; one batch (no batch column)" if one_run else ""))
        return _Correction(note, True, fits, order)
    if batches is None:
        return _Correction(f"skipped: no {column!r} column in the sample sheet")
    if batches.nunique() < 2:
        return _Correction("skipped: one batch")
    if step["reference"] == "qc":
        lacking = sorted(set(batches) - set(batches[is_qc]))
        if lacking:
            raise InputError(Problem(samples_file, f"column {column!r}, batch(es) {listed(lacking)}",
                                     "no QC injection to estimate the batch median",
                                     f"set {section}.batch_correction.reference: all"))
    run.x = batch_median_centre(run.x, batches, step["reference"], is_qc)
    return _Correction("", True)


#: columns of the QC precision summary (before / after batch and drift correction)
PRECISION_COLUMNS = ["stage", "correction", "n_qc", "n_features", "qc_rsd_in_sample", "qc_rsd_leave_one_qc_out",
                     "n_replicate_groups", "replicate_rsd", "qc_pc_batch_r2"]


def _precision_table(before, after, sheet, is_qc, fitted, step, correction: _Correction,
                     log_scale: bool) -> pd.DataFrame:
    """QC precision before and after correction: in-sample and leave-one-QC-out QC RSD (medians over
    features), replicate-injection RSD and the batch R^2 of the first five QC principal components.

    The leave-one-QC-out figure corrects each QC by a model fitted without it (re-estimated from the
    uncorrected values): the in-sample RSD after correction is optimistic, since the same QCs fitted
    and judge it.  Without a correction both equal the plain RSD, and "after" repeats "before".
    """
    if int(is_qc.sum()) < 3 or not log_scale:
        return pd.DataFrame(columns=PRECISION_COLUMNS)
    batches = sheet.loc[before.index, step["batch_column"]].astype(str) \
        if step["batch_column"] in sheet.columns else pd.Series("all", index=before.index)
    groups = _replicate_groups(sheet, before.index, is_qc)
    n_groups = int(groups.dropna().nunique())
    method = step["method"] if correction.applied else "none"
    uncorrected = before.mask(~fitted)

    def stage(name, values, how):
        masked = values.mask(~fitted)
        in_sample = drift.qc_rsd_linear(masked, is_qc)
        loqo = in_sample if how == "none" else drift.loqo_qc_rsd(
            uncorrected, correction.order if correction.order is not None else
            pd.Series(np.arange(len(before), dtype=float), index=before.index),
            batches, is_qc, how, spans=tuple(step["spans"]), min_qc=step["min_qc"])
        r2 = drift.qc_pc_batch_r2(masked, batches, is_qc).set_index("component")["batch_r2"] \
            if batches.nunique() > 1 else pd.Series({"total": np.nan})
        return {"stage": name, "correction": how, "n_qc": int(is_qc.sum()), "n_features": values.shape[1],
                "qc_rsd_in_sample": float(in_sample.median()), "qc_rsd_leave_one_qc_out": float(np.nanmedian(loqo)),
                "n_replicate_groups": n_groups,
                "replicate_rsd": float(drift.replicate_rsd(np.exp2(masked), groups).median()) if n_groups else np.nan,
                "qc_pc_batch_r2": float(r2.get("total", np.nan))}

    first = stage("before", before, "none")
    second = stage("after", after, method) if correction.applied else dict(first, stage="after")
    return pd.DataFrame([first, second], columns=PRECISION_COLUMNS)


def _replicate_groups(sheet, index, is_qc) -> pd.Series:
    """Replicate group per injection: study injections sharing subject (and timepoint) with another;
    NaN for QC pools, singletons and injections without a subject."""
    if "subject_id" not in sheet.columns:
        return pd.Series(None, index=index, dtype=object)
    subject = sheet.loc[index, "subject_id"].astype(str)
    keys = subject + "|" + sheet.loc[index, "timepoint"].astype(str) if "timepoint" in sheet.columns else subject
    labels = keys.where(~is_qc & (subject.str.strip() != "").to_numpy())
    return labels.where(labels.map(labels.value_counts()) >= 2)


def _qc_tables(raw, sheet, filtered, linear, processed, factors, ann, p) -> dict:
    types = sheet["sample_type"]
    measured = raw.loc[types[raw.index] != "blank"]
    measured = measured.loc[:, measured.notna().any(axis=0).to_numpy()]
    before_log = np.log2(impute_half_minimum(measured))
    pca_before, disp_before = qc.qc_pca(before_log, types, "before")
    pca_after, disp_after = qc.qc_pca(processed, types, "after")
    is_qc_raw = (types[raw.index] == "qc").to_numpy()
    is_qc_done = (types[linear.index] == "qc").to_numpy()
    # "after" skips the imputed cells, as "before" skips the missing ones: it measures precision
    rsd = pd.concat([qc.rsd_table(raw, is_qc_raw, "before"),
                     qc.rsd_table(linear.mask(filtered.isna()), is_qc_done, "after")], ignore_index=True)
    group_column = p["missingness"]["group_column"]
    groups = sheet[group_column] if group_column in sheet.columns else None
    return {
        "pca_scores": pd.concat([pca_before, pca_after], ignore_index=True),
        "qc_dispersion": pd.concat([disp_before, disp_after], ignore_index=True),
        "qc_rsd": _with_annotations(rsd, ann),
        "missingness_per_sample": pd.concat(
            [qc.missingness_per_sample(raw, types, "raw"), qc.missingness_per_sample(filtered, types, "filtered")],
            ignore_index=True),
        "missingness_per_feature": _with_annotations(qc.missingness_per_feature(raw, types, groups), ann),
        "total_signal": qc.total_signal_table(raw, sheet, linear),
        "normalisation_factors": pd.DataFrame({"sample_id": factors.index,
                                               "sample_type": types[factors.index].to_numpy(),
                                               "factor": factors.to_numpy(dtype=float)}),
    }
