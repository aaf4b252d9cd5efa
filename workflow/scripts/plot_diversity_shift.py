"""Figure: each subject's pre->post distance by response, one panel per β metric, with the Mann-Whitney test."""

import sys

sys.path.insert(0, snakemake.scriptdir)

import pandas as pd

from gutaxis.plots.diversity import plot_shift, shift_plot_data
from gutaxis.runner import run
from gutaxis.plots.style import apply_style, save_figure
from gutaxis.io.tables import read_tsv


def main(smk):
    apply_style(smk.params.style)
    contrast = smk.params.contrast
    text = {"subject_id": str, "cohort": str, "response": str, "pre_sample": str, "post_sample": str}
    data = shift_plot_data([read_tsv(p, dtype=text) for p in smk.input.shift], contrast["name"],
                           response=smk.params.response)
    tests = pd.concat([read_tsv(p) for p in smk.input.tests], ignore_index=True)
    fig = plot_shift(data, tests, smk.params.metrics, smk.params.style, title=smk.params.title,
                     contrast=contrast["name"], response=smk.params.response)
    save_figure(fig, smk.output.figures, smk.params.style, source_data=data)


run(snakemake, main)
