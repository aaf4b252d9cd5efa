"""One differential job: a modality's table prepared and tested for one contrast, or for the
baseline responder comparison of a study without contrasts, with every table the rule writes.

Preparation, each step recorded in ``notes``: the subjects' samples at the analysed
timepoints; the metabolites not measured at a compared timepoint left out (platform gaps,
``missingness_structure.tsv``); compositions filtered by prevalence and mean abundance over
the analysed samples; the modality's transform (the CLR pseudocount a fraction of the
smallest non-zero value of the filtered table). Then :func:`gutaxis.differential.contrast.run_contrast`
or :func:`~gutaxis.differential.contrast.run_baseline`, and for a contrast the pairs and the
within-subject changes the figures draw (for compositions, of the log-ratio to the
reference the paired tests used).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from gutaxis.differential.calls import call_table
from gutaxis.differential.contrast import (UNTESTED_COLUMNS, ContrastSettings, corrected_changes,
                                           run_baseline, run_contrast)
from gutaxis.differential.transforms import TransformResult, as_processed_log2, transform_table
from gutaxis.diversity.filtering import filter_features
from gutaxis.io.errors import InputError, Problem
from gutaxis.io.pairing import pair_samples
from gutaxis.io.tables import as_numbers
from gutaxis.metabolome.structure import not_measured_in
from gutaxis.stats.paired import paired_differences

log = logging.getLogger("gutaxis.differential")


@dataclass(frozen=True)
class DifferentialJob:
    """What one job of the ``differential`` or ``differential_baseline`` rule analyses.

    Attributes
    ----------
    modality : str
    contrast : dict or None
        ``name, pre, post`` of the contrast; None for the baseline responder comparison.
    timepoints : tuple of str
        The mixed models' timepoints of the contrast (the reference level first).
    baseline, baseline_name : str
        Timepoint and ``contrast`` label of the baseline comparison.
    transform : str
        The modality's transform (:func:`gutaxis.differential.transforms.transform_table`).
    transform_options : dict
    clr_pseudocount_fraction : float
        CLR pseudocount as a fraction of the smallest non-zero value of the filtered table.
    processed_log2 : bool
        The table holds log2 intensities already (processed metabolome).
    min_prevalence, min_mean_abundance : float
        Prevalence filter of compositions.
    plot_method : str
        The method whose calls lead the calls table.
    response_column : str
        Primary responder definition; empty when the study has no response.
    samples_label : str
        The sample sheet's name in messages.
    testing : ContrastSettings
        How the tests run.
    """

    modality: str
    contrast: dict | None
    timepoints: tuple
    baseline: str | None
    baseline_name: str
    transform: str
    transform_options: Mapping
    clr_pseudocount_fraction: float
    processed_log2: bool
    min_prevalence: float
    min_mean_abundance: float
    plot_method: str
    response_column: str
    samples_label: str
    testing: ContrastSettings

    @classmethod
    def from_params(cls, params) -> "DifferentialJob":
        """The job from the rule's params (``settings`` = the config's ``differential``
        section; bias correction and presence tests for compositions only, where 0 means
        not detected)."""
        section = params.settings
        compositional = {} if params.compositional else {"bias_correction": "none",
                                                         "presence_tests": False}
        testing = ContrastSettings.from_config(
            section, response_column=params.response_column, modality=params.modality,
            sensitivity=params.sensitivity, file_table=params.table_label,
            file_samples=params.samples_label, **compositional)
        return cls(modality=params.modality,
                   contrast=dict(params.contrast) if params.contrast else None,
                   timepoints=tuple(getattr(params, "timepoints", ()) or ()),
                   baseline=getattr(params, "baseline", None),
                   baseline_name=getattr(params, "baseline_name", "baseline"),
                   transform=params.transform, transform_options=dict(params.transform_options),
                   clr_pseudocount_fraction=params.clr_pseudocount_fraction,
                   processed_log2=bool(params.processed_log2),
                   min_prevalence=section["min_prevalence"],
                   min_mean_abundance=section["min_mean_abundance"],
                   plot_method=section["plot_method"], response_column=params.response_column,
                   samples_label=params.samples_label, testing=testing)

    @property
    def name(self) -> str:
        """The ``contrast`` label of every row."""
        return self.contrast["name"] if self.contrast else self.baseline_name


@dataclass(frozen=True)
class DifferentialRun:
    """Every table one job writes.

    Attributes
    ----------
    tables : dict
        Output name of the rule -> table (TSV): ``results, calls, untested, formulas,
        notes, dropped_samples`` and, for a contrast, ``model_fits, coefficients, pairs,
        changes``.
    transformed : pandas.DataFrame
        Samples x features on the tested scale (a feature table).
    """

    tables: dict
    transformed: pd.DataFrame


#: transforms of compositions: the prevalence filter applies to them only
COMPOSITIONAL = ("clr", "rclr")


def numeric_covariates(table: pd.DataFrame, columns) -> pd.DataFrame:
    """The sheet with each covariate column whose every non-empty cell is a number as
    numbers (:func:`gutaxis.io.tables.as_numbers`); the others unchanged."""
    table = table.copy()
    for column in columns:
        if column in table.columns and column != "subject_id":
            numbers = as_numbers(table[column])
            if numbers is not None:
                table[column] = numbers
    return table


def untested_before_testing(features, reasons, job: DifferentialJob, annotations) -> pd.DataFrame:
    """Untested rows (method ``all``) of the features left out before any test."""
    untested = pd.DataFrame({
        "feature": pd.Series(features, dtype=str).to_numpy(),
        "annotation": "",
        "modality": job.modality,
        "contrast": job.name,
        "method": "all",
        "reason": pd.Series(reasons, dtype=str).to_numpy(),
        "n_subjects": pd.array([pd.NA] * len(features), dtype="Int64"),
        "n_pairs": pd.array([pd.NA] * len(features), dtype="Int64"),
    })
    column = next((c for c in ("name", "lineage", "annotation") if c in annotations.columns), None)
    if column is not None:
        untested["annotation"] = untested["feature"].map(annotations[column]).fillna("")
    return untested


def _analysed_samples(table, samples, job: DifferentialJob):
    """The table's samples of subjects at the analysed timepoints, the timepoints the
    analysis compares, and the contrast with its mixed-model timepoints present."""
    sheet = samples.set_index("sample_id")
    in_table = sheet.loc[sheet.index.isin(table.index)]
    present = set(in_table.loc[in_table["subject_id"] != "", "timepoint"])
    contrast = dict(job.contrast) if job.contrast else None
    if contrast is None:
        needed = timepoints = [job.baseline]
        what = f"the baseline responder comparison at '{job.baseline}'"
    else:
        needed = [contrast["pre"], contrast["post"]]
        timepoints = [t for t in job.timepoints if t in present]
        what = f"contrast '{contrast['name']}'"
        contrast["timepoints"] = timepoints
    for timepoint in needed:
        if timepoint not in present:
            raise InputError(Problem(
                job.samples_label, f"timepoint '{timepoint}'",
                f"no sample of modality '{job.modality}' at this timepoint of {what}",
                "check the sample sheet or the contrast"))
    analysed = in_table.index[in_table["timepoint"].isin(timepoints)
                              & (in_table["subject_id"] != "")]
    return table.loc[table.index.isin(analysed)], needed, timepoints, contrast


def _filtered(table, structure_file, needed, job: DifferentialJob, annotations, notes):
    """The table without the features not measured at a compared timepoint and, for
    compositions, without the rare ones; their untested rows."""
    untested = [pd.DataFrame(columns=UNTESTED_COLUMNS)]
    if structure_file:
        reasons = not_measured_in(structure_file, needed, table.columns)
        untested = [untested_before_testing(reasons.index, reasons.to_numpy(), job, annotations)]
        table = table.drop(columns=reasons.index)
        if len(reasons):
            notes.append(("filter", f"{len(reasons)} features not measured at "
                                    f"{' or '.join(needed)} left out (missingness_structure.tsv "
                                    "of the metabolome module)"))
    if job.transform not in COMPOSITIONAL:
        notes.append(("filter", f"no prevalence filter for transform '{job.transform}'"))
        return table, untested[0]
    result = filter_features(table, job.min_prevalence, job.min_mean_abundance, 0.0,
                             renormalise=False, source=job.modality)
    dropped = result.dropped_features
    reasons = ("filtered before testing: " + dropped["reason"].astype(str)
               + " (over the samples analysed)")
    untested.append(untested_before_testing(dropped["feature_id"], reasons, job, annotations))
    params = result.parameters
    notes.append(("filter", f"kept {params['n_features_kept']} of {params['n_features_in']} "
                            f"features (min_prevalence {job.min_prevalence:g}, "
                            f"min_mean_abundance {job.min_mean_abundance:g})"))
    return table[list(result.table.columns)], pd.concat(untested, ignore_index=True)


def _transformed(table, job: DifferentialJob, notes) -> TransformResult:
    """The modality's transform of the filtered table."""
    options = dict(job.transform_options)
    if job.transform == "clr":
        positive = table.to_numpy()[table.to_numpy() > 0]
        smallest = float(positive.min()) if positive.size else 1.0
        options["pseudocount"] = job.clr_pseudocount_fraction * smallest
        notes.append(("transform", f"CLR pseudocount = clr_pseudocount_fraction "
                                   f"{job.clr_pseudocount_fraction:g} x the smallest non-zero "
                                   f"value of the filtered table ({smallest:.6g})"))
    transformed = transform_table(table, job.transform, file=job.testing.file_table, **options)
    if job.processed_log2 and job.transform == "none":
        transformed = as_processed_log2(transformed)
    notes.append(("transform", transformed.description))
    log.info("%s / %s: %s", job.modality, job.name, transformed.description)
    return transformed


def _labelled_pairs(samples, contrast, sample_ids, responders, subjects, job) -> pd.DataFrame:
    """The contrast's pairs with each subject's cohort and response (``not_evaluable``
    without a label); without a response column, the cohort alone (figures then show
    no response groups)."""
    pairs = pair_samples(samples, contrast["pre"], contrast["post"], sample_ids=sample_ids,
                         source=job.samples_label)
    if responders is not None:
        labels = responders.set_index("subject_id")
        pairs["cohort"] = pairs["subject_id"].map(labels["cohort"]).fillna("")
        response = pairs["subject_id"].map(labels[job.response_column]).fillna("")
        pairs["response"] = response.where(response != "", "not_evaluable")
    else:
        cohorts = subjects.set_index("subject_id")["cohort"] if "cohort" in subjects else {}
        pairs["cohort"] = pairs["subject_id"].map(cohorts).fillna("")
    return pairs


def run_differential(job: DifferentialJob, table: pd.DataFrame, annotations: pd.DataFrame,
                     samples: pd.DataFrame, subjects: pd.DataFrame,
                     responders: pd.DataFrame | None = None, structure_file: str = "",
                     responders_file: str = "responders.tsv") -> DifferentialRun:
    """Prepare and test one modality's table for one job.

    Parameters
    ----------
    job : DifferentialJob
    table : pandas.DataFrame
        Samples x features of the modality (the analysis table).
    annotations : pandas.DataFrame
        The feature sheet, indexed by ``feature_id``.
    samples, subjects : pandas.DataFrame
        The checked sheets (text cells); covariate columns of ``subjects`` that hold
        numbers are tested as numbers.
    responders : pandas.DataFrame, optional
        The responder labels; None when the study has no response.
    structure_file : str
        ``missingness_structure.tsv`` of a metabolome modality, else empty.
    responders_file : str
        The responders table's name in messages.

    Returns
    -------
    DifferentialRun

    Raises
    ------
    InputError
        No primary response column, a compared timepoint without samples, or any input
        problem of the tests.
    """
    if responders is not None and job.response_column not in responders.columns:
        raise InputError(Problem(responders_file, f"column '{job.response_column}'",
                                 "the primary response definition has no column",
                                 "set response.primary to one of response.definitions"))
    subjects = numeric_covariates(subjects, job.testing.covariates)
    table, needed, timepoints, contrast = _analysed_samples(table, samples, job)
    notes = [("samples", f"{len(table)} samples at timepoints {', '.join(timepoints)}")]
    table, untested_filter = _filtered(table, structure_file, needed, job, annotations, notes)
    transformed = _transformed(table, job, notes)
    data = dict(responders=responders, subjects=subjects, annotations=annotations,
                settings=job.testing)
    if contrast is None:
        result = run_baseline(table, samples, job.baseline, transformed, name=job.name, **data)
    else:
        result = run_contrast(table, samples, contrast, transformed, **data)
    untested = pd.concat([untested_filter, result.untested], ignore_index=True)
    post = contrast["post"] if contrast else None
    tables = {
        "results": result.results,
        "calls": call_table(result.results, job.testing.alpha, post, job.plot_method),
        "untested": untested,
        "formulas": result.formula_table(),
        "notes": pd.concat([pd.DataFrame(notes, columns=["step", "message"]), result.notes],
                           ignore_index=True),
        "dropped_samples": result.dropped_samples,
    }
    values = transformed.values
    if contrast is not None:
        pairs = _labelled_pairs(samples, contrast, table.index, responders, subjects, job)
        reference = result.references.get(("paired_t", f"timepoint[{post}]"))
        if reference is None:
            changes = paired_differences(values, pairs)
        else:
            # compositions: the log-ratio to the reference of the paired tests, so the heatmap
            # and the paired plots show what was tested (bias-corrected), not the relative CLR
            changes = corrected_changes(table, values, reference, pairs)
            values = values - reference[values.columns].to_numpy()
        tables |= {"model_fits": result.model_fits, "coefficients": result.coefficients,
                   "pairs": pairs,
                   "changes": changes.rename_axis(columns=None).reset_index()}
        log.info("%d result rows, %d untested rows, %d pairs", len(result.results),
                 len(untested), len(pairs))
    else:
        log.info("%d result rows", len(result.results))
    return DifferentialRun(tables, values)
