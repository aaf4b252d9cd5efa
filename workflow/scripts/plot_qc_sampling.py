"""Figure: samples per subject, timepoint and modality."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.plots.qc import plot_sampling, sampling_grid
from gutaxis.runner import run
from gutaxis.plots.style import apply_style, save_figure
from gutaxis.io.tables import read_sheet, write_tsv


def main(smk):
    apply_style(smk.params.style)
    status = read_sheet(smk.input.samples)
    subjects = read_sheet(smk.input.subjects)
    grid = sampling_grid(status, subjects, smk.params.timepoints)
    fig = plot_sampling(grid, smk.params.cohorts, smk.params.timepoints, smk.params.style, smk.params.title)
    save_figure(fig, smk.output.figures, smk.params.style)
    write_tsv(grid, smk.output.source)


run(snakemake, main)
