"""Diversity step 4: one β-diversity distance matrix and its principal coordinates."""

import sys

sys.path.insert(0, snakemake.scriptdir)

import pandas as pd

from gutaxis.diversity.beta import beta_distances, metric_roles, principal_coordinates
from gutaxis.diversity.design import sample_metadata, study_labels
from gutaxis.runner import run
from gutaxis.io.tables import read_feature_table, read_sheet, write_square_matrix, write_tsv


def main(smk):
    table = read_feature_table(smk.input.filtered)
    metric = smk.wildcards.metric
    _, roles = metric_roles(read_sheet(smk.input.check))
    computed = roles.get(metric) != "not computed"
    # a metric undefined for some pairs (beta_metrics.tsv) keeps NaN there and gets no PCoA
    distances = beta_distances(table, metric, pseudocount=smk.params.pseudocount, source=smk.input.filtered,
                               allow_undefined=not computed)
    write_tsv(distances.matrix, smk.output.distances, index=True)
    write_square_matrix(distances.matrix, smk.output.matrix, smk.output.matrix_ids)
    write_tsv(distances.describe(), smk.output.parameters)
    labels = study_labels(smk.input.get("responders"), smk.params.primary, smk.input.subjects)
    samples = read_sheet(smk.input.samples)
    if computed:
        pcoa = principal_coordinates(distances.matrix, n_axes=smk.params.n_axes)
        coordinates, axes = pcoa.coordinates, pcoa.axes
    else:
        coordinates = pd.DataFrame(index=distances.matrix.index)
        axes = pd.DataFrame(columns=["axis", "eigenvalue", "proportion_explained", "percent_explained"])
    metadata = sample_metadata(samples, labels, coordinates.index, smk.input.samples,
                               period=smk.params.period or None)
    coordinates = metadata.join(coordinates.reset_index(drop=True))
    write_tsv(coordinates.sort_values("sample_id", kind="stable"), smk.output.coordinates)
    write_tsv(axes.assign(metric=metric)[["metric"] + list(axes.columns)], smk.output.axes)


run(snakemake, main)
