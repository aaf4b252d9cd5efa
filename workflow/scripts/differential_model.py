"""One formula model (differential.models) of one modality: gutaxis.differential.models.fit_formula_model."""

import os
import sys

# BLAS threads must be fixed before numpy is first imported
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(snakemake.threads)

sys.path.insert(0, snakemake.scriptdir)

import logging

from gutaxis.differential.models import ModelSettings, ModelSpec, fit_formula_model, with_response
from gutaxis.runner import run
from gutaxis.io.tables import read_feature_table, read_sheet, write_tsv

log = logging.getLogger("gutaxis.differential")


def main(smk):
    p = smk.params
    spec = ModelSpec.from_config(p.model)
    table = read_feature_table(smk.input.table)
    annotations = read_sheet(smk.input.features).set_index("feature_id")
    names = next((annotations[c] for c in ("name", "lineage", "annotation") if c in annotations), None)
    subjects = read_sheet(smk.input.subjects)
    if p.response_column:
        subjects = with_response(subjects, read_sheet(smk.input.responders), p.response_column)
    result = fit_formula_model(table, read_sheet(smk.input.samples), subjects, spec,
                               annotations=names, settings=ModelSettings.from_params(p))
    for name in ("results", "untested", "fits", "formulas", "dropped_samples", "notes"):
        write_tsv(getattr(result, name), getattr(smk.output, name))
    for step, message in result.notes.itertuples(index=False):
        log.info("%s: %s", step, message)
    log.info("%s: %d rows, %d called", spec.name, len(result.results),
             int((result.results["direction"] != "").sum()))


run(snakemake, main)
