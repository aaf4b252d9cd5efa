"""Integration figures (one per rule, chosen by params.figure): immune dynamics, heatmap, network, MOFA+, triads."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.plots.integration import integration_figures
from gutaxis.plots.style import apply_style, save_figure
from gutaxis.runner import run


def main(smk):
    apply_style(smk.params.style)
    drawn = integration_figures(smk.input, smk.params, smk.wildcards, panel="panel" in smk.output.keys())
    for output, fig, data in drawn:
        paths = smk.output[output]
        save_figure(fig, [paths] if isinstance(paths, str) else paths, smk.params.style, source_data=data)


run(snakemake, main)
