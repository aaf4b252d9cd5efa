"""Write the checked sample, subject and adverse-event sheets, and the samples the sheet excludes."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.runner import run
from gutaxis.io.sheets import load_sheets
from gutaxis.io.tables import write_tsv


def main(smk):
    sheets = load_sheets(smk.params.config)
    write_tsv(sheets["samples"], smk.output.samples)
    write_tsv(sheets["subjects"], smk.output.subjects)
    write_tsv(sheets["adverse_events"], smk.output.adverse_events)
    write_tsv(sheets["excluded"], smk.output.excluded)


run(snakemake, main)
