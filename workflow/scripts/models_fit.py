"""Nested cross-validation of every estimator on one feature set, with the permutation test."""

import sys

sys.path.insert(0, snakemake.scriptdir)

import logging
import time

import numpy as np
import pandas as pd

from gutaxis.models.features import build_model_data, view_timepoints
from gutaxis.models.fit import (GROUP_COLUMNS, feature_stability, group_performance, nested_cv,
                            performance_row, permutation_test, settings_from_config)
from gutaxis.runner import run
from gutaxis.metabolome.structure import not_measured_in
from gutaxis.io.tables import read_feature_table, read_sheet, write_tsv

log = logging.getLogger("gutaxis.models")


def main(smk):
    p = smk.params
    options, settings = settings_from_config(p.models, p.seed, smk.threads, p.clr_pseudocount_fraction)
    tables = {m: read_feature_table(path) for m, path in zip(p.blocks, smk.input.tables)}
    used = view_timepoints(p.spec, p.baseline, p.contrasts)
    for m, path in p.structures.items():  # metabolites not measured at a timepoint the set uses
        reasons = not_measured_in(path, used, tables[m].columns)
        if len(reasons):
            tables[m] = tables[m].drop(columns=reasons.index)
            log.warning("%s: %d %s feature(s) left out: %s", p.feature_set, len(reasons), m,
                        "; ".join(f"{f}: {why}" for f, why in reasons.items()))
    data = build_model_data(
        p.feature_set, p.spec, tables, read_sheet(smk.input.samples), read_sheet(smk.input.subjects),
        read_sheet(smk.input.responders), p.label, p.modalities, baseline=p.baseline,
        contrasts=p.contrasts, cohorts=p.cohorts, min_per_class=p.models["min_per_class"],
        min_folds=0 if settings.loo or settings.validation != "stratified" else int(settings.outer_folds),
        landmark={"months": p.models["landmark_months"], "time": p.models["survival"]["time"],
                  "event": p.models["survival"]["event"]},
        validation_group=(p.models["validation"]["group"]
                          if settings.validation != "stratified" else ""))
    if data.landmark is not None:
        log.warning("%s: on-treatment feature set, %s; %d subject(s) left out before it", data.name,
                    data.landmark.label(), len(data.landmark.excluded))
    log.info("%s: %d rows, %d subjects (%d responders), %d input features, %d excluded",
             data.name, len(data.rows), data.rows["subject_id"].nunique(), int(data.y.sum()),
             data.n_features, data.excluded["subject_id"].nunique())
    performance, predictions, features, repeats, nulls, folds, groups = [], [], [], [], [], [], []
    for model in p.estimators:
        start = time.perf_counter()
        result = nested_cv(data, model, options, settings)
        permutation = None
        if p.permutation_test and model in p.models["permutation_estimators"] and p.models["permutations"] > 0:
            permutation = permutation_test(result, options, p.models["permutations"],
                                           p.models["permutation_repeats"])
            nulls.append(pd.DataFrame({"feature_set": data.name, "model": model,
                                       "permutation": np.arange(1, permutation["null"].size + 1),
                                       "auroc": permutation["null"]}))
        groups.append(group_performance(result))
        performance.append(performance_row(result, permutation, groups[-1]))
        predictions.append(result.predictions)
        features.append(feature_stability(result))
        repeats.append(result.repeats.assign(feature_set=data.name, model=model))
        folds.append(result.params.assign(feature_set=data.name, model=model))
        log.info("%s / %s: AUROC %.3f in %.1f s", data.name, model, performance[-1]["auroc_mean"],
                 time.perf_counter() - start)
    write_tsv(pd.DataFrame(performance), smk.output.performance)
    write_tsv(pd.concat(predictions, ignore_index=True), smk.output.predictions)
    write_tsv(pd.concat(features, ignore_index=True), smk.output.features)
    repeats = pd.concat(repeats, ignore_index=True)
    write_tsv(repeats[["feature_set", "model"] + [c for c in repeats.columns if c not in ("feature_set", "model")]],
              smk.output.repeats)
    folds = pd.concat(folds, ignore_index=True)
    write_tsv(folds[["feature_set", "model", "repeat", "fold", "best_params"]], smk.output.folds)
    write_tsv(pd.concat(nulls, ignore_index=True) if nulls else
              pd.DataFrame(columns=["feature_set", "model", "permutation", "auroc"]), smk.output.permutations)
    write_tsv(data.excluded, smk.output.excluded)
    groups = [g for g in groups if not g.empty]
    write_tsv(pd.concat(groups, ignore_index=True) if groups else pd.DataFrame(columns=GROUP_COLUMNS),
              smk.output.groups)


run(snakemake, main)
