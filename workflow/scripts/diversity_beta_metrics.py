"""Diversity step 4a: is each configured β metric defined for every sample pair? Which one is primary?"""

import sys

sys.path.insert(0, snakemake.scriptdir)

import logging

from gutaxis.diversity.beta import check_metric_availability
from gutaxis.runner import run
from gutaxis.io.tables import read_feature_table, write_tsv

log = logging.getLogger("gutaxis.diversity")


def main(smk):
    table = read_feature_table(smk.input.filtered)
    check, message = check_metric_availability(table, list(smk.params.metrics), smk.params.primary,
                                               smk.params.undefined_pairs, source=smk.input.filtered)
    if message:
        log.warning(message)
    write_tsv(check, smk.output.check)


run(snakemake, main)
