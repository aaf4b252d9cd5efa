"""Main figure: module figures placed row-wise with panel letters, plus their source data."""

import sys

sys.path.insert(0, snakemake.scriptdir)

import pandas as pd

from gutaxis.plots.main import compose_panels, panel_source_data, read_panel_image
from gutaxis.runner import run
from gutaxis.plots.style import apply_style, save_figure
from gutaxis.io.tables import write_tsv


def main(smk):
    style = smk.params.style
    apply_style(style)
    images = iter(read_panel_image(path) for path in smk.input.panels)
    # the layout lists module figure stems in reading order, as the inputs are
    layout = [[[next(images) for _ in cell] for cell in row] for row in smk.params.layout]
    fig = compose_panels(layout, style, smk.params.title)
    letters = [chr(ord("A") + i) for i in range(len(smk.input.panels))]
    # keep the panels' numbers exactly as written: read as text, no reparsing of floats
    sources = [
        (letter, name, pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False))
        for letter, name, path in zip(letters, smk.params.names, smk.input.sources)
    ]
    save_figure(fig, smk.output.figures, style)
    write_tsv(panel_source_data(sources), smk.output.source)


run(snakemake, main)
