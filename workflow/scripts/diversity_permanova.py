"""Diversity step 5: PERMANOVA (time within subject; response, cohort and both at baseline) + PERMDISP."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.diversity.design import study_labels
from gutaxis.diversity.permanova import BetaTestSettings, metric_beta_tests
from gutaxis.runner import run
from gutaxis.io.tables import read_sheet, read_square_matrix, write_tsv


def main(smk):
    p = smk.params
    settings = BetaTestSettings.from_config(p, p.seed, response=bool(p.primary), period=p.period,
                                            baseline_only=not p.contrasts)
    result = metric_beta_tests(
        read_square_matrix(smk.input.matrix, smk.input.matrix_ids),
        read_sheet(smk.input.samples),
        study_labels(smk.input.get("responders"), p.primary, smk.input.subjects),
        read_sheet(smk.input.check),
        smk.wildcards.metric,
        p.contrasts,
        p.baseline,
        settings,
        p.significance_level,
    )
    for name, table in result.tables().items():
        write_tsv(table, smk.output[name])


run(snakemake, main)
