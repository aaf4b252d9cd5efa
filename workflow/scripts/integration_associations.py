"""Integration step 2: (partial) Spearman association block of two modalities in one view."""

import os
import sys

# BLAS threads = the rule's threads, set before numpy loads
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(snakemake.threads)

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.integration.associations import ViewAssociationSettings, association_view  # noqa: E402
from gutaxis.integration.views import StudySheets  # noqa: E402
from gutaxis.io.tables import read_feature_table, read_sheet, read_tsv, write_tsv  # noqa: E402
from gutaxis.runner import run  # noqa: E402


def main(smk):
    p = smk.params
    study = StudySheets(read_sheet(smk.input.samples), read_sheet(smk.input.subjects), p.pre, p.post,
                        p.samples_label, p.subjects_label)
    tables = {p.modality_a: read_feature_table(smk.input.a), p.modality_b: read_feature_table(smk.input.b)}
    labels = [read_tsv(path, dtype=str).set_index("feature_id")["label"]
              for path in (smk.input.features_a, smk.input.features_b)]
    outputs = association_view(study, tables, labels, block=smk.wildcards.block, view=smk.wildcards.view,
                               structures=p.structures,
                               settings=ViewAssociationSettings.from_config(p, seed=p.seed))
    for name, table in outputs.items():
        write_tsv(table, smk.output[name])


run(snakemake, main)
