"""Figure: volcano panels (effect vs -log10 p), one per test family of one modality and contrast."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.plots.differential import plot_volcano, volcano_data
from gutaxis.runner import run
from gutaxis.style import apply_style, save_figure
from gutaxis.tables import read_tsv


def main(smk):
    apply_style(smk.params.style)
    results = read_tsv(smk.input.results, dtype={"feature": str, "annotation": str})
    data = volcano_data(results, smk.params.alpha, smk.params.n_labels)
    fig = plot_volcano(data, smk.params.style, smk.params.alpha, pre=smk.params.contrast["pre"],
                       scale_label=smk.params.scale_label, title=smk.params.title)
    save_figure(fig, smk.output.figures, smk.params.style, source_data=data)


run(snakemake, main)
