"""Collect the per-feature-set model results: performance, predictions, ROC and calibration
tables, exclusions and the README that states sample sizes and the exploratory nature."""

import sys

sys.path.insert(0, snakemake.scriptdir)

import pandas as pd

from gutaxis.models.summary import best_feature_set, calibration_table, readme_text, roc_table
from gutaxis.models.fit import GROUP_COLUMNS, PERFORMANCE_COLUMNS, PREDICTION_COLUMNS
from gutaxis.runner import run
from gutaxis.io.tables import read_tsv, write_tsv


def _stack(paths, columns=None, **kwargs):
    frames = [read_tsv(p, **kwargs) for p in paths]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)


def main(smk):
    p = smk.params
    text = {"feature_set": str, "model": str, "subject_id": str, "label": str, "timepoint": str,
            "cohort": str, "blocks": str, "outer_folds": str, "best_params": str, "reason": str,
            "validation_group": str, "group": str, "validation": str, "note": str, "view": str}
    performance = _stack(smk.input.performance, PERFORMANCE_COLUMNS, dtype=text)
    order = {name: i for i, name in enumerate(p.set_order)}
    performance = performance.assign(_set=performance["feature_set"].map(order),
                                     _model=performance["model"].map({m: i for i, m in enumerate(p.model_order)}))
    performance = performance.sort_values(["_set", "_model"], kind="stable").drop(columns=["_set", "_model"])
    best = best_feature_set(performance)
    performance["best"] = False
    if best is not None:
        performance.loc[best.name, "best"] = True
    predictions = _stack(smk.input.predictions, PREDICTION_COLUMNS, dtype=text)
    excluded = _stack(smk.input.excluded, ["feature_set", "subject_id", "reason"], dtype=text)
    write_tsv(performance.reset_index(drop=True), smk.output.performance)
    write_tsv(predictions, smk.output.predictions)
    write_tsv(excluded, smk.output.excluded)
    write_tsv(_stack(smk.input.groups, GROUP_COLUMNS, dtype=text), smk.output.groups)
    write_tsv(roc_table(predictions, p.roc_grid_points, p.conf_level), smk.output.roc)
    write_tsv(calibration_table(predictions, p.calibration_bins, p.conf_level), smk.output.calibration)
    settings = {key: p.models[key] for key in ("outer_folds", "outer_repeats", "inner_folds", "permutations")}
    settings["seed"] = p.seed
    with open(smk.output.readme, "w") as handle:
        handle.write(readme_text(performance, excluded, label=p.label, settings=settings, best=best))


run(snakemake, main)
