"""Differential tests of one modality and one contrast, or the baseline responder comparison of a
study without contrasts: gutaxis.differential.run.run_differential."""

import os
import sys

# BLAS threads must be fixed before numpy is first imported
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(snakemake.threads)

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.differential.run import DifferentialJob, run_differential
from gutaxis.io.tables import read_feature_table, read_sheet, write_feature_table, write_tsv
from gutaxis.runner import run


def main(smk):
    job = DifferentialJob.from_params(smk.params)
    # metabolome modalities only: an empty input (other kinds) is an empty list, not a path
    structure = smk.input.structure if isinstance(getattr(smk.input, "structure", None), str) else ""
    result = run_differential(
        job, read_feature_table(smk.input.table),
        annotations=read_sheet(smk.input.features).set_index("feature_id"),
        samples=read_sheet(smk.input.samples), subjects=read_sheet(smk.input.subjects),
        # no response (an intervention study): the response analyses are left out
        responders=read_sheet(smk.input.responders) if job.response_column else None,
        structure_file=structure, responders_file=smk.input.responders)
    for name, table in result.tables.items():
        write_tsv(table, getattr(smk.output, name))
    write_feature_table(result.transformed, smk.output.transformed)


run(snakemake, main)
