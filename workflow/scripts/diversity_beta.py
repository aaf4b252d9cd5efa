"""Diversity step 4: one β-diversity distance matrix and its principal coordinates."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.beta import beta_distances, principal_coordinates
from gutaxis.diversity_design import sample_metadata, subject_labels
from gutaxis.runner import run
from gutaxis.tables import read_feature_table, read_sheet, write_square_matrix, write_tsv


def main(smk):
    table = read_feature_table(smk.input.filtered)
    metric = smk.wildcards.metric
    distances = beta_distances(table, metric, pseudocount=smk.params.pseudocount, source=smk.input.filtered)
    write_tsv(distances.matrix, smk.output.distances, index=True)
    write_square_matrix(distances.matrix, smk.output.matrix, smk.output.matrix_ids)
    write_tsv(distances.describe(), smk.output.parameters)
    pcoa = principal_coordinates(distances.matrix, n_axes=smk.params.n_axes)
    labels = subject_labels(read_sheet(smk.input.responders), smk.params.primary, smk.input.responders)
    metadata = sample_metadata(read_sheet(smk.input.samples), labels, pcoa.coordinates.index, smk.input.samples)
    coordinates = metadata.join(pcoa.coordinates.reset_index(drop=True))
    write_tsv(coordinates.sort_values("sample_id", kind="stable"), smk.output.coordinates)
    write_tsv(pcoa.axes.assign(metric=metric)[["metric"] + list(pcoa.axes.columns)], smk.output.axes)


run(snakemake, main)
