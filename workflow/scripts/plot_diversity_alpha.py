"""Figure: paired α diversity, one line per subject, faceted by cohort, with the test of each panel."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.plots.diversity import (paired_alpha_data, paired_alpha_panel_data, panel_metric, plot_paired_alpha,
                                     plot_paired_alpha_by_response)
from gutaxis.runner import run
from gutaxis.plots.style import apply_style, save_figure
from gutaxis.io.tables import read_sheet, read_tsv


def main(smk):
    apply_style(smk.params.style)
    contrast = smk.params.contrast
    response = smk.params.response
    data = paired_alpha_data(read_sheet(smk.input.alpha), smk.params.metrics, contrast["pre"], contrast["post"],
                             response=response)
    tests = read_tsv(smk.input.tests)
    fig = plot_paired_alpha(data, tests, smk.params.metrics, smk.params.cohorts, smk.params.style,
                            pre=contrast["pre"], post=contrast["post"], title=smk.params.title,
                            contrast=contrast["name"], response=response)
    save_figure(fig, smk.output.figures, smk.params.style, source_data=data)
    if "panel" in smk.output.keys():
        # the main-figure panel: one metric, one panel per response group
        first = panel_metric(data, smk.params.metrics)
        part = paired_alpha_panel_data(data, tests, first, contrast=contrast["name"], response=response)
        fig = plot_paired_alpha_by_response(part, tests, first, smk.params.style, pre=contrast["pre"],
                                            post=contrast["post"], title=smk.params.title,
                                            contrast=contrast["name"], response=response)
        save_figure(fig, [smk.output.panel], smk.params.style, source_data=part)


run(snakemake, main)
