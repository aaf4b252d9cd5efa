"""Collect the per-feature-set model results: performance, predictions, ROC and calibration
tables, exclusions and the README that states sample sizes and the exploratory nature."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.io.tables import read_tsv, write_tsv
from gutaxis.models.summary import TEXT_COLUMNS, ModelSummarySettings, summarise_models
from gutaxis.runner import run


def main(smk):
    p = smk.params
    settings = ModelSummarySettings.from_config(
        p.models, seed=p.seed, label=p.label, set_order=p.set_order, model_order=p.model_order,
        roc_grid_points=p.roc_grid_points, calibration_bins=p.calibration_bins, conf_level=p.conf_level)
    tables = {key: [read_tsv(path, dtype=TEXT_COLUMNS) for path in smk.input[key]]
              for key in ("performance", "predictions", "excluded", "groups")}
    outputs = summarise_models(tables, settings)
    with open(smk.output.readme, "w") as handle:
        handle.write(outputs.pop("readme"))
    for name, table in outputs.items():
        write_tsv(table, smk.output[name])


run(snakemake, main)
