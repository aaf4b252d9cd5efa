"""Diversity step 1: prevalence / mean-abundance filter of a taxonomy table, renormalisation recorded."""

import sys

sys.path.insert(0, snakemake.scriptdir)

import logging

import pandas as pd

from gutaxis.diversity.design import count_input
from gutaxis.diversity.filtering import filter_features
from gutaxis.runner import run
from gutaxis.io.tables import read_feature_table, read_sheet, write_feature_table, write_tsv

log = logging.getLogger("gutaxis.diversity")


def main(smk):
    table = read_feature_table(smk.input.table)
    counts, why_not_counts = count_input(read_sheet(smk.input.notes), table)
    # counts stay counts (Chao1 and rarefied richness need them); compositions are closed again
    result = filter_features(
        table,
        min_prevalence=smk.params.min_prevalence,
        min_mean_abundance=smk.params.min_mean_abundance,
        detection_limit=smk.params.detection_limit,
        renormalise=not counts,
        source=smk.input.table,
    )
    log.info("kept %d of %d features and %d of %d samples", result.parameters["n_features_kept"],
             result.parameters["n_features_in"], result.parameters["n_samples_kept"],
             result.parameters["n_samples_in"])
    write_feature_table(result.table, smk.output.filtered)
    write_tsv(result.dropped_features, smk.output.dropped_features)
    write_tsv(result.dropped_samples, smk.output.dropped_samples)
    write_tsv(result.renormalisation, smk.output.renormalisation)
    parameters = dict(result.parameters)
    parameters["units"] = "counts" if counts else "relative abundance"
    parameters["count_metrics"] = "computed" if counts else why_not_counts
    write_tsv(pd.DataFrame({"parameter": list(parameters), "value": [str(v) for v in parameters.values()]}),
              smk.output.parameters)


run(snakemake, main)
