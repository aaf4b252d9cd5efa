"""Figure: heatmap of the worst CTCAE grade per patient, by term and group."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.plots.clinical import ae_heatmap_data, plot_ae_heatmap
from gutaxis.runner import run
from gutaxis.plots.style import apply_style, save_figure
from gutaxis.io.tables import read_tsv


def main(smk):
    apply_style(smk.params.style)
    worst = read_tsv(smk.input.worst_grade, dtype={"group": str})
    group_var = "+".join(smk.params.grouping) if smk.params.grouping else "overall"
    cells, n_hidden = ae_heatmap_data(worst, group_var, smk.params.cohorts, smk.params.subset)
    fig = plot_ae_heatmap(cells, n_hidden, smk.params.style, smk.params.subset)
    save_figure(fig, smk.output.figures, smk.params.style, source_data=cells)


run(snakemake, main)
