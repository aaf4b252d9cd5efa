"""Diversity step 3: paired Wilcoxon / Hodges-Lehmann tests and mixed models of the α metrics."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.diversity.alpha import alpha_change_tests
from gutaxis.diversity.design import read_alpha
from gutaxis.runner import run
from gutaxis.io.tables import write_tsv


def main(smk):
    p = smk.params
    result = alpha_change_tests(read_alpha(smk.input.alpha), p.contrasts, p.timepoints, p.baseline,
                                response=p.response, period=bool(p.period), conf_level=p.conf_level,
                                significance_level=p.significance_level)
    write_tsv(result.tests, smk.output.tests)
    write_tsv(result.mixed, smk.output.mixed)


run(snakemake, main)
