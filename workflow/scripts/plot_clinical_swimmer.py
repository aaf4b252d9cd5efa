"""Figure: swimmer plot of time on treatment, best response and ongoing treatment."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.plots.clinical import plot_swimmer, swimmer_data
from gutaxis.runner import run
from gutaxis.plots.style import apply_style, save_figure
from gutaxis.io.tables import read_sheet


def main(smk):
    apply_style(smk.params.style)
    data = swimmer_data(read_sheet(smk.input.subjects), smk.params.criterion, smk.params.cohorts,
                        smk.params.max_patients)
    fig = plot_swimmer(data, smk.params.style, smk.params.criterion)
    save_figure(fig, smk.output.figures, smk.params.style, source_data=data)


run(snakemake, main)
