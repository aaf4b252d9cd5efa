"""Metabolomics QC figures (one per rule, chosen by params.figure): PCA, QC RSD, missingness, total signal."""

import sys

sys.path.insert(0, snakemake.scriptdir)

import pandas as pd

from gutaxis.plots import metabolome as plots
from gutaxis.runner import run
from gutaxis.plots.style import apply_style, save_figure
from gutaxis.io.tables import read_sheet, read_tsv


def pca(smk):
    data = plots.pca_plot_data(read_tsv(smk.input.scores), read_sheet(smk.input.samples))
    fig = plots.plot_qc_pca(data, read_tsv(smk.input.dispersion), smk.params.style, smk.params.title)
    return fig, data


def rsd(smk):
    data = plots.rsd_plot_data(read_tsv(smk.input.rsd))
    fig = plots.plot_qc_rsd(data, smk.params.qc_rsd["max_rsd"], smk.params.style,
                            enabled=smk.params.qc_rsd["enabled"], title=smk.params.title)
    return fig, data


def missingness(smk):
    per_sample = plots.missingness_sample_data(read_tsv(smk.input.per_sample), read_sheet(smk.input.samples))
    per_feature = plots.missingness_feature_data(read_tsv(smk.input.per_feature), read_tsv(smk.input.dropped))
    fig = plots.plot_missingness(per_sample, per_feature, smk.params.missingness, smk.params.style,
                                 smk.params.title)
    source = pd.concat([per_sample.assign(panel="per injection"),
                              per_feature.assign(panel="per feature")], ignore_index=True)
    return fig, source[["panel"] + [c for c in source.columns if c != "panel"]]


def total_signal(smk):
    data = plots.total_signal_data(read_tsv(smk.input.total_signal))
    fig = plots.plot_total_signal(data, smk.params.style, smk.params.normalisation, smk.params.title)
    return fig, data


FIGURES = {"pca": pca, "rsd": rsd, "missingness": missingness, "total_signal": total_signal}


def main(smk):
    apply_style(smk.params.style)
    fig, data = FIGURES[smk.params.figure](smk)
    save_figure(fig, smk.output.figures, smk.params.style, source_data=data)


run(snakemake, main)
