"""Write results/study.tsv: the study type and every analysis skipped, with the reason."""

import sys

sys.path.insert(0, snakemake.scriptdir)

import logging

import pandas as pd

from gutaxis.runner import run
from gutaxis.io.tables import write_tsv

log = logging.getLogger("gutaxis.study")


def main(smk):
    table = pd.DataFrame(smk.params.rows, columns=["item", "value"])
    for value in table.loc[table["item"] == "skipped", "value"]:
        log.info("skipped: %s", value)
    write_tsv(table, smk.output.table)


run(snakemake, main)
