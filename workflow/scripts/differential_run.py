"""Differential tests of one modality and one contrast (gutaxis.differential.contrast.run_contrast), or the
baseline responder comparison of a study without contrasts (gutaxis.differential.contrast.run_baseline)."""

import os
import sys

# BLAS threads must be fixed before numpy is first imported
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(snakemake.threads)

sys.path.insert(0, snakemake.scriptdir)

import logging

import numpy as np
import pandas as pd

from gutaxis.differential.calls import call_table
from gutaxis.differential.contrast import (UNTESTED_COLUMNS, corrected_changes, run_baseline,
                                  run_contrast)
from gutaxis.io.errors import InputError, Problem
from gutaxis.diversity.filtering import filter_features
from gutaxis.metabolome.structure import not_measured_in
from gutaxis.stats.paired import pair_samples, paired_differences
from gutaxis.runner import run
from gutaxis.io.tables import read_feature_table, read_sheet, write_feature_table, write_tsv
from gutaxis.differential.transforms import as_processed_log2, transform_table

log = logging.getLogger("gutaxis.differential")
COMPOSITIONAL = ("clr", "rclr")


def numeric_where_possible(table: pd.DataFrame, columns) -> pd.DataFrame:
    """Covariate columns of a text sheet whose every non-empty cell is a number become numbers."""
    table = table.copy()
    for col in columns:
        if col not in table.columns or col == "subject_id":
            continue
        text = table[col].replace("", np.nan)
        values = pd.to_numeric(text, errors="coerce")
        if text.notna().any() and values.notna().sum() == text.notna().sum():
            table[col] = values
    return table


def untested_before_testing(features, reasons, modality, contrast, annotations) -> pd.DataFrame:
    """Untested rows (method ``all``) of the features left out before any test."""
    untested = pd.DataFrame({
        "feature": pd.Series(features, dtype=str).to_numpy(),
        "annotation": "",
        "modality": modality,
        "contrast": contrast,
        "method": "all",
        "reason": pd.Series(reasons, dtype=str).to_numpy(),
        "n_subjects": pd.array([pd.NA] * len(features), dtype="Int64"),
        "n_pairs": pd.array([pd.NA] * len(features), dtype="Int64"),
    })
    column = next((c for c in ("name", "lineage", "annotation") if c in annotations.columns), None)
    if column is not None:
        untested["annotation"] = untested["feature"].map(annotations[column]).fillna("")
    return untested


def prevalence_filter(table, frame_ids, settings, modality, contrast, annotations):
    """Prevalence / mean-abundance filter of a composition over the analysed samples."""
    result = filter_features(table.loc[frame_ids], settings["min_prevalence"],
                             settings["min_mean_abundance"], 0.0, renormalise=False,
                             source=modality)
    kept = list(result.table.columns)
    dropped = result.dropped_features
    reasons = ("filtered before testing: " + dropped["reason"].astype(str) + " (over the samples analysed)")
    untested = untested_before_testing(dropped["feature_id"], reasons, modality, contrast, annotations)
    return table[kept], untested, result.parameters


def not_measured_filter(table, structure_file, timepoints, modality, contrast, annotations):
    """Leave out the metabolites not measured at a timepoint the analysis compares (platform gaps)."""
    if not structure_file:
        return table, pd.DataFrame(columns=UNTESTED_COLUMNS)
    reasons = not_measured_in(structure_file, timepoints, table.columns)
    untested = untested_before_testing(reasons.index, reasons.to_numpy(), modality, contrast, annotations)
    return table.drop(columns=reasons.index), untested


def compositional_options(p) -> dict:
    """Bias correction and presence tests: compositions only (proportions, 0 = not detected)."""
    if not p.compositional:
        return {"bias_correction": "none", "presence_tests": False}
    return {"bias_correction": p.settings["bias_correction"],
            "presence_tests": p.settings["presence_tests"]}


def write_common(smk, result, notes, untested_filter, post) -> pd.DataFrame:
    """The tables of a contrast and of the baseline comparison alike; returns the untested rows."""
    untested = pd.concat([untested_filter, result.untested], ignore_index=True)
    write_tsv(result.results, smk.output.results)
    write_tsv(call_table(result.results, smk.params.settings["alpha"], post,
                         smk.params.settings["plot_method"]), smk.output.calls)
    write_tsv(untested, smk.output.untested)
    write_tsv(result.formula_table(), smk.output.formulas)
    write_tsv(pd.concat([pd.DataFrame(notes, columns=["step", "message"]), result.notes],
                        ignore_index=True), smk.output.notes)
    write_tsv(result.dropped_samples, smk.output.dropped_samples)
    return untested


def main(smk):
    p = smk.params
    settings = p.settings
    # a paired contrast, or None: the baseline responder comparison of a study without contrasts
    contrast = dict(p.contrast) if p.contrast else None
    modality = p.modality
    table = read_feature_table(smk.input.table)
    annotations = read_sheet(smk.input.features).set_index("feature_id")
    samples = read_sheet(smk.input.samples)
    subjects = numeric_where_possible(read_sheet(smk.input.subjects), settings["covariates"])
    # no response (an intervention study): the response analyses are left out
    responders = read_sheet(smk.input.responders) if p.response_column else None
    if responders is not None and p.response_column not in responders.columns:
        raise InputError(Problem(smk.input.responders, f"column '{p.response_column}'",
                                 "the primary response definition has no column",
                                 "set response.primary to one of response.definitions"))

    sheet = samples.set_index("sample_id")
    in_table = sheet.loc[sheet.index.isin(table.index)]
    present = set(in_table.loc[in_table["subject_id"] != "", "timepoint"])
    if contrast is None:
        name, needed_timepoints, timepoints = p.baseline_name, [p.baseline], [p.baseline]
        what = f"the baseline responder comparison at '{p.baseline}'"
    else:
        name, needed_timepoints = contrast["name"], [contrast["pre"], contrast["post"]]
        timepoints = [t for t in p.timepoints if t in present]
        what = f"contrast '{contrast['name']}'"
    for needed in needed_timepoints:
        if needed not in present:
            raise InputError(Problem(
                p.samples_label, f"timepoint '{needed}'",
                f"no sample of modality '{modality}' at this timepoint of {what}",
                "check the sample sheet or the contrast"))
    if contrast is not None:
        contrast["timepoints"] = timepoints
    analysed = in_table.index[in_table["timepoint"].isin(timepoints)
                              & (in_table["subject_id"] != "")]
    table = table.loc[table.index.isin(analysed)]
    notes = [("samples", f"{len(table)} samples at timepoints {', '.join(timepoints)}")]

    # metabolome modalities only: an empty input (other kinds) is an empty list, not a path
    structure = smk.input.structure if isinstance(getattr(smk.input, "structure", None), str) else ""
    table, untested_filter = not_measured_filter(table, structure, needed_timepoints, modality, name,
                                                 annotations)
    if len(untested_filter):
        notes.append(("filter", f"{len(untested_filter)} features not measured at {' or '.join(needed_timepoints)} "
                                "left out (missingness_structure.tsv of the metabolome module)"))
    if p.transform in COMPOSITIONAL:
        table, untested_prevalence, params = prevalence_filter(
            table, table.index, settings, modality, name, annotations)
        untested_filter = pd.concat([untested_filter, untested_prevalence], ignore_index=True)
        notes.append(("filter", f"kept {params['n_features_kept']} of {params['n_features_in']} "
                                f"features (min_prevalence {settings['min_prevalence']:g}, "
                                f"min_mean_abundance {settings['min_mean_abundance']:g})"))
    else:
        notes.append(("filter", f"no prevalence filter for transform '{p.transform}'"))

    options = dict(p.transform_options)
    if p.transform == "clr":
        positive = table.to_numpy()[table.to_numpy() > 0]
        smallest = float(positive.min()) if positive.size else 1.0
        options["pseudocount"] = p.clr_pseudocount_fraction * smallest
        notes.append(("transform", f"CLR pseudocount = clr_pseudocount_fraction "
                                   f"{p.clr_pseudocount_fraction:g} x the smallest non-zero value "
                                   f"of the filtered table ({smallest:.6g})"))
    transformed = transform_table(table, p.transform, file=p.table_label, **options)
    if p.processed_log2 and p.transform == "none":
        transformed = as_processed_log2(transformed)
    notes.append(("transform", transformed.description))
    log.info("%s / %s: %s", modality, name, transformed.description)

    if contrast is None:
        result = run_baseline(
            table, samples, p.baseline, transformed, responders=responders,
            response_column=p.response_column, covariates=settings["covariates"],
            subjects=subjects, annotations=annotations, modality=modality,
            alpha=settings["alpha"], min_group_size=settings["min_group_size"],
            effect=settings["effect"], confidence=settings["confidence"], name=name,
            sensitivity=p.sensitivity, **compositional_options(p),
            file_table=p.table_label, file_samples=p.samples_label)
        write_common(smk, result, notes, untested_filter, None)
        write_feature_table(transformed.values, smk.output.transformed)
        log.info("%d result rows", len(result.results))
        return

    result = run_contrast(
        table, samples, contrast, transformed, responders=responders,
        response_column=p.response_column, covariates=settings["covariates"],
        subjects=subjects, annotations=annotations, modality=modality,
        alpha=settings["alpha"], min_pairs=settings["min_pairs"],
        min_group_size=settings["min_group_size"], methods=settings["methods"],
        wilcoxon_options={"zero_method": settings["wilcoxon_zero_method"]},
        effect=settings["effect"], confidence=settings["confidence"],
        sensitivity=p.sensitivity, mixed_df=settings["mixed_df"],
        random_effects=settings["random_effects"], **compositional_options(p),
        file_table=p.table_label, file_samples=p.samples_label)

    untested = write_common(smk, result, notes, untested_filter, contrast["post"])
    write_tsv(result.model_fits, smk.output.model_fits)
    write_tsv(result.coefficients, smk.output.coefficients)

    pairs = pair_samples(samples, contrast["pre"], contrast["post"], sample_ids=table.index,
                         file=p.samples_label).pairs
    if responders is not None:
        labels = responders.set_index("subject_id")
        pairs["cohort"] = pairs["subject_id"].map(labels["cohort"]).fillna("")
        response = pairs["subject_id"].map(labels[p.response_column]).fillna("")
        pairs["response"] = response.where(response != "", "not_evaluable")
    else:
        # no response column at all: the figures then show no response groups
        cohorts = subjects.set_index("subject_id")["cohort"] if "cohort" in subjects else {}
        pairs["cohort"] = pairs["subject_id"].map(cohorts).fillna("")
    write_tsv(pairs, smk.output.pairs)
    values = transformed.values
    reference = result.references.get(("paired_t", f"timepoint[{contrast['post']}]"))
    if reference is None:
        changes = paired_differences(values, pairs)
    else:
        # compositions: the log-ratio to the reference of the paired tests, so the heatmap and
        # the paired plots show what was tested (bias-corrected), not the relative CLR
        changes = corrected_changes(table, values, reference, pairs)
        values = values - reference[values.columns].to_numpy()
    write_tsv(changes.rename_axis(columns=None).reset_index(), smk.output.changes)
    write_feature_table(values, smk.output.transformed)
    log.info("%d result rows, %d untested rows, %d pairs", len(result.results), len(untested),
             len(pairs))


run(snakemake, main)
