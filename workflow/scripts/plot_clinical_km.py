"""Figure: Kaplan-Meier curves of PFS2 and OS with censor marks and numbers at risk."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.plots.clinical import km_data, plot_km
from gutaxis.runner import run
from gutaxis.plots.style import apply_style, save_figure
from gutaxis.io.tables import read_tsv


def main(smk):
    apply_style(smk.params.style)
    curves = read_tsv(smk.input.curves, dtype={"group": str})
    survival = read_tsv(smk.input.survival, dtype={"group": str})
    group_var = "+".join(smk.params.grouping) if smk.params.grouping else "overall"
    data = km_data(curves, group_var, smk.params.cohorts, max_months=smk.params.max_months)
    fig = plot_km(data, survival, group_var, smk.params.style)
    save_figure(fig, smk.output.figures, smk.params.style, source_data=data)


run(snakemake, main)
