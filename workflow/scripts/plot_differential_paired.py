"""Figure: paired pre/post plots (one line per subject) of the top features, small multiples."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.plots.differential import paired_data, plot_paired
from gutaxis.runner import run
from gutaxis.plots.style import apply_style, save_figure
from gutaxis.io.tables import read_feature_table, read_tsv


def main(smk):
    apply_style(smk.params.style)
    p = smk.params
    results = read_tsv(smk.input.results, dtype={"feature": str, "annotation": str})
    transformed = read_feature_table(smk.input.transformed)
    pairs = read_tsv(smk.input.pairs, dtype=str, keep_default_na=False)
    data = paired_data(results, transformed, pairs, p.method, p.contrast["post"], p.n_features)
    fig = plot_paired(data, p.style, p.method, p.alpha, pre=p.contrast["pre"],
                      post=p.contrast["post"], scale_label=p.scale_label, title=p.title)
    save_figure(fig, smk.output.figures, p.style, source_data=data)
    if "panel" in smk.output.keys():
        # the main-figure panel: the first row (the four features with the smallest p)
        part = data[data["panel"].isin(sorted(data["panel"].unique())[:4])].reset_index(drop=True)
        fig = plot_paired(part, p.style, p.method, p.alpha, pre=p.contrast["pre"],
                          post=p.contrast["post"], scale_label=p.scale_label, title=p.title)
        save_figure(fig, [smk.output.panel], p.style, source_data=part)


run(snakemake, main)
