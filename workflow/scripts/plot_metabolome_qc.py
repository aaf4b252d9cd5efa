"""Metabolomics QC figures (one per rule, chosen by params.figure): PCA, QC RSD, missingness, total signal."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.plots.metabolome import qc_figure
from gutaxis.runner import run
from gutaxis.plots.style import apply_style, save_figure
from gutaxis.io.tables import read_sheet, read_tsv


def main(smk):
    apply_style(smk.params.style)
    # the sample sheet is read as text, like every checked sheet; the result tables with their types
    tables = {name: (read_sheet if name == "samples" else read_tsv)(path) for name, path in smk.input.items()}
    fig, data = qc_figure(smk.params.figure, tables, smk.params)
    save_figure(fig, smk.output.figures, smk.params.style, source_data=data)


run(snakemake, main)
