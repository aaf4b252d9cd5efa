"""Diversity step 1: prevalence / mean-abundance filter of a taxonomy table, renormalisation recorded."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.diversity.filtering import filter_taxonomy
from gutaxis.runner import run
from gutaxis.io.tables import read_feature_table, read_sheet, write_feature_table, write_tsv


def main(smk):
    table = read_feature_table(smk.input.table)
    result = filter_taxonomy(table, read_sheet(smk.input.notes), smk.params, source=smk.input.table)
    write_feature_table(result.table, smk.output.filtered)
    write_tsv(result.dropped_features, smk.output.dropped_features)
    write_tsv(result.dropped_samples, smk.output.dropped_samples)
    write_tsv(result.renormalisation, smk.output.renormalisation)
    write_tsv(result.parameter_table(), smk.output.parameters)


run(snakemake, main)
