"""Diversity step 4: one β-diversity distance matrix and its principal coordinates."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.diversity.beta import metric_ordination
from gutaxis.diversity.design import study_labels
from gutaxis.runner import run
from gutaxis.io.tables import read_feature_table, read_sheet, write_square_matrix, write_tsv


def main(smk):
    result = metric_ordination(
        read_feature_table(smk.input.filtered),
        read_sheet(smk.input.check),
        smk.wildcards.metric,
        read_sheet(smk.input.samples),
        study_labels(smk.input.get("responders"), smk.params.primary, smk.input.subjects),
        pseudocount=smk.params.pseudocount,
        n_axes=smk.params.n_axes,
        period=smk.params.period or None,
        source=smk.input.filtered,
        samples_file=smk.input.samples,
    )
    distances = result.distances
    write_tsv(distances.matrix, smk.output.distances, index=True)
    write_square_matrix(distances.matrix, smk.output.matrix, smk.output.matrix_ids)
    write_tsv(distances.describe(), smk.output.parameters)
    write_tsv(result.coordinates, smk.output.coordinates)
    write_tsv(result.axes, smk.output.axes)


run(snakemake, main)
