"""Figure: forest plot of ORR and DCR with exact CIs, overall and per group."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.plots.clinical import forest_data, plot_forest
from gutaxis.runner import run
from gutaxis.plots.style import apply_style, save_figure
from gutaxis.io.tables import read_tsv


def main(smk):
    apply_style(smk.params.style)
    response = read_tsv(smk.input.response, dtype={"group": str})
    data = forest_data(response, smk.params.groupings, smk.params.cohorts)
    fig = plot_forest(data, smk.params.style, smk.params.conf_level)
    save_figure(fig, smk.output.figures, smk.params.style, source_data=data)


run(snakemake, main)
