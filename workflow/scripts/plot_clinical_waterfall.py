"""Figure: waterfall plot of the best target-lesion change, coloured by best response."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.plots.clinical import plot_waterfall, waterfall_data
from gutaxis.runner import run
from gutaxis.plots.style import apply_style, save_figure
from gutaxis.io.tables import read_sheet


def main(smk):
    apply_style(smk.params.style)
    subjects = read_sheet(smk.input.subjects)
    plotted, missing = waterfall_data(subjects, smk.params.criterion)
    fig = plot_waterfall(plotted, len(missing), smk.params.thresholds, smk.params.style, smk.params.criterion)
    save_figure(fig, smk.output.figures, smk.params.style, source_data=plotted)


run(snakemake, main)
