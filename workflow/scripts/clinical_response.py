"""ORR and DCR with exact CIs per grouping, and the abscopal-effect incidence."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.clinical.response import study_response
from gutaxis.runner import run
from gutaxis.io.tables import read_sheet, write_tsv


def main(smk):
    result = study_response(read_sheet(smk.input.subjects), smk.params.definitions, smk.params.groupings,
                            not_evaluable=smk.params.not_evaluable, conf_level=smk.params.conf_level,
                            file=smk.params.subjects_label)
    write_tsv(result.response, smk.output.response)
    write_tsv(result.abscopal, smk.output.abscopal)


run(snakemake, main)
