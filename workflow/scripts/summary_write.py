"""results/summary.md from the tables the study wrote (gutaxis.summary.summary_markdown)."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.runner import run
from gutaxis.summary import SummaryTables, landing_rst, summary_markdown
from gutaxis.io.tables import read_tsv


def main(smk):
    text = summary_markdown(smk.params.title, read_tsv(smk.input.study, dtype=str),
                            read_tsv(smk.input.samples, dtype=str), SummaryTables.read(smk.input, smk.params))
    with open(smk.output.summary, "w") as handle:
        handle.write(text)
    with open(smk.params.description) as handle:
        description = handle.read()
    with open(smk.output.landing, "w") as handle:
        handle.write(landing_rst(text, description))


run(snakemake, main)
