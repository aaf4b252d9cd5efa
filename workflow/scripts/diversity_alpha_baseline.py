"""Diversity step 3 of a baseline-only study: α diversity at baseline, responders vs non-responders."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.diversity.alpha import baseline_alpha_comparison
from gutaxis.diversity.design import read_alpha
from gutaxis.io.tables import write_tsv
from gutaxis.runner import run


def main(smk):
    values, samples, subjects = read_alpha(smk.input.alpha)
    tests, models = baseline_alpha_comparison(values, samples, subjects, smk.params.baseline,
                                              bool(smk.params.response), smk.params.significance_level)
    write_tsv(tests, smk.output.tests)
    write_tsv(models, smk.output.models)


run(snakemake, main)
