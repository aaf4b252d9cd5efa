"""Diversity step 6: each subject's pre->post distance, by response and against between-subject distances."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.diversity.design import study_labels
from gutaxis.diversity.shift import metric_shift
from gutaxis.runner import run
from gutaxis.io.tables import read_sheet, read_square_matrix, write_tsv


def main(smk):
    result = metric_shift(
        read_square_matrix(smk.input.matrix, smk.input.matrix_ids),
        read_sheet(smk.input.samples),
        study_labels(smk.input.get("responders"), smk.params.primary, smk.input.subjects),
        read_sheet(smk.input.check),
        smk.wildcards.metric,
        smk.params.contrasts,
        # a study without response has no responder comparison
        response=bool(smk.params.primary),
        conf_level=smk.params.conf_level,
        significance_level=smk.params.significance_level,
        source=smk.input.samples,
    )
    write_tsv(result.shift, smk.output.shift)
    write_tsv(result.tests, smk.output.tests)


run(snakemake, main)
