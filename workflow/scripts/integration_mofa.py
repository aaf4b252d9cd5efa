"""Integration step 3: MOFA+ latent factors on the subject x timepoint units with every modality."""

import os
import sys

# one BLAS thread: the fit adds its sums in one order, so reruns give identical tables
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.integration.mofa import latent_factor_tables  # noqa: E402
from gutaxis.integration.views import StudySheets  # noqa: E402
from gutaxis.io.tables import read_feature_table, read_sheet, write_tsv  # noqa: E402
from gutaxis.runner import run  # noqa: E402


def main(smk):
    p = smk.params
    study = StudySheets(read_sheet(smk.input.samples), None, p.pre, p.post, p.samples_label)
    tables = {name: read_feature_table(path) for name, path in zip(p.modalities, smk.input.tables)}
    # no response (an intervention study): the factors are tested against time only
    response = read_sheet(smk.input.responders).set_index("subject_id")[p.response] if p.response else None
    outputs = latent_factor_tables(study, tables, p.structures, response, config=p.mofa, seed=p.seed)
    for name, table in outputs.items():
        write_tsv(table, smk.output[name])


run(snakemake, main)
