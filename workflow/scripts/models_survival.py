"""Cox models and median-split Kaplan-Meier curves of the top candidate biomarkers
(the most often selected features of the best omics feature set)."""

import sys

sys.path.insert(0, snakemake.scriptdir)

import logging

import pandas as pd

from gutaxis.models.features import assemble_rows, feature_set_landmark
from gutaxis.models.summary import best_feature_set, biomarker_values, top_biomarkers
from gutaxis.models.survival import CURVE_COLUMNS, SURVIVAL_COLUMNS, biomarker_survival
from gutaxis.runner import run
from gutaxis.io.tables import read_feature_table, read_sheet, read_tsv, write_tsv

log = logging.getLogger("gutaxis.models")


def main(smk):
    p = smk.params
    surv = p.survival
    performance = read_tsv(smk.input.performance, dtype={"feature_set": str, "model": str, "blocks": str})
    features = pd.concat([read_tsv(path, dtype={"feature_set": str, "model": str, "block": str,
                                                "feature": str}) for path in smk.input.features],
                         ignore_index=True)
    best = best_feature_set(performance)
    empty = (pd.DataFrame(columns=SURVIVAL_COLUMNS), pd.DataFrame(columns=CURVE_COLUMNS))
    if best is None or surv["top_k"] == 0:
        log.info("no omics feature set or top_k = 0: no biomarker tested")
        write_tsv(empty[0], smk.output.survival)
        write_tsv(empty[1], smk.output.curves)
        return
    top = top_biomarkers(features, best["feature_set"], best["model"], surv["top_k"])
    spec = p.feature_sets[best["feature_set"]]
    tables = {m: read_feature_table(path) for m, path in zip(p.modalities_used, smk.input.tables)
              if m in spec.get("blocks", [])}
    subjects = read_sheet(smk.input.subjects)
    X, rows, blocks, _ = assemble_rows(best["feature_set"], spec, tables, read_sheet(smk.input.samples),
                                       subjects, p.modalities, baseline=p.baseline,
                                       contrasts=p.contrasts, cohorts=p.cohorts)
    samples = read_sheet(smk.input.samples)
    # an on-treatment set: time to event from its landmark, not from treatment start
    mark = feature_set_landmark(spec, tables, samples, subjects, rows, baseline=p.baseline,
                                contrasts=p.contrasts,
                                settings={"months": p.landmark_months, "time": surv["time"],
                                          "event": surv["event"]})
    landmark = mark.months if mark is not None else float("nan")
    if mark is not None:
        log.warning("%s is an on-treatment feature set: %s", best["feature_set"], mark.label())
    values = biomarker_values(X, rows, blocks, list(zip(top["block"], top["feature"])),
                              min_prevalence=p.models["min_prevalence"],
                              pseudocount_fraction=p.clr_pseudocount_fraction,
                              logit_epsilon=p.models["logit_epsilon"])
    table, curves = biomarker_survival(values, subjects, time_column=surv["time"],
                                       event_column=surv["event"], covariates=surv["covariates"],
                                       endpoint=surv["endpoint"], conf_level=p.models["conf_level"],
                                       conf_type=p.km_conf_type, landmark_months=landmark)
    # a top feature can fall below the prevalence filter over all subjects: say so, keep the row
    missing = [f for f in top["feature"] if f not in values.columns]
    if missing:
        table = pd.concat([table, pd.DataFrame({
            "endpoint": surv["endpoint"], "feature": missing,
            "note": "below models.min_prevalence over all subjects: not tested"})], ignore_index=True)
    context = top.set_index("feature")[["rank", "block"]]
    table["feature_set"] = best["feature_set"]
    table["model"] = best["model"]
    table["rank"] = context["rank"].reindex(table["feature"]).to_numpy()
    table["block"] = context["block"].reindex(table["feature"]).to_numpy()
    names = {}
    for modality, path in zip(p.modalities_used, smk.input.annotations):
        annotation = read_tsv(path, dtype=str)
        if "name" in annotation.columns:
            names[modality] = annotation.set_index("feature_id")["name"]
    table["annotation"] = [names.get(b, pd.Series(dtype=str)).get(f, "")
                           for b, f in zip(table["block"], table["feature"])]
    table = table.sort_values("rank", kind="stable")[SURVIVAL_COLUMNS]
    write_tsv(table, smk.output.survival)
    write_tsv(curves, smk.output.curves)


run(snakemake, main)
