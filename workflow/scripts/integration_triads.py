"""Integration step 4: microbe -> metabolite -> immune triads on within-subject changes, by mediation analysis."""

import os
import sys

# one BLAS thread per process: the mediation fits run in a process pool of the rule's threads
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.integration.triads import axis_triad_tables  # noqa: E402
from gutaxis.integration.views import StudySheets  # noqa: E402
from gutaxis.io.tables import read_feature_table, read_sheet, read_tsv, write_tsv  # noqa: E402
from gutaxis.runner import run  # noqa: E402

LINK_TYPES = {"feature_a": str, "feature_b": str}


def main(smk):
    p = smk.params
    study = StudySheets(read_sheet(smk.input.samples), read_sheet(smk.input.subjects) if p.covariates else None,
                        p.pre, p.post, p.samples_label, p.subjects_label)
    tables = {name: read_feature_table(path)
              for name, path in zip(p.modalities, (smk.input.microbes, smk.input.metabolites, smk.input.immune))}
    outputs = axis_triad_tables(study, tables, read_tsv(smk.input.links_xm, dtype=LINK_TYPES),
                                read_tsv(smk.input.links_my, dtype=LINK_TYPES), covariates=p.covariates,
                                config=p.triads, seed=p.seed, n_jobs=smk.threads)
    for name, table in outputs.items():
        write_tsv(table, smk.output[name])


run(snakemake, main)
