"""Figure: paired α diversity, one line per subject, faceted by cohort, with the test of each panel."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.plots.diversity import paired_alpha_data, plot_paired_alpha
from gutaxis.runner import run
from gutaxis.style import apply_style, save_figure
from gutaxis.tables import read_sheet, read_tsv


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
        # the main-figure panel: the first metric only
        first = [m for m in smk.params.metrics if m in set(data["metric"])][:1] or list(smk.params.metrics)[:1]
        part = data[data["metric"].isin(first)].reset_index(drop=True)
        fig = plot_paired_alpha(part, tests, first, smk.params.cohorts, smk.params.style,
                                pre=contrast["pre"], post=contrast["post"], title=smk.params.title,
                                contrast=contrast["name"], response=response)
        save_figure(fig, [smk.output.panel], smk.params.style, source_data=part)


run(snakemake, main)
