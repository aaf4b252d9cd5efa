"""Figures of the responder models: ROC curves, feature stability, calibration, Kaplan-Meier."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.plots.models import models_figures
from gutaxis.plots.style import apply_style, save_figure
from gutaxis.runner import run


def main(smk):
    apply_style(smk.params.style)
    for output, fig, data in models_figures(smk.input, smk.params, panel="panel" in smk.output.keys()):
        paths = smk.output[output]
        save_figure(fig, [paths] if isinstance(paths, str) else paths, smk.params.style, source_data=data)


run(snakemake, main)
