"""Figure: volcano panels (effect vs -log10 p), one per test family of one modality and contrast."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.plots.differential import plot_volcano, volcano_data
from gutaxis.runner import run
from gutaxis.plots.style import apply_style, save_figure
from gutaxis.io.tables import read_tsv


def main(smk):
    apply_style(smk.params.style)
    results = read_tsv(smk.input.results, dtype={"feature": str, "annotation": str})
    data = volcano_data(results, smk.params.alpha, smk.params.n_labels)
    fig = plot_volcano(data, smk.params.style, smk.params.alpha, pre=smk.params.contrast["pre"],
                       scale_label=smk.params.scale_label, title=smk.params.title)
    save_figure(fig, smk.output.figures, smk.params.style, source_data=data)
    if "panel" in smk.output.keys():
        # the main-figure panel: one column, the plot method's test on time
        family = (data["method"] == smk.params.method) & (data["term"] == f"timepoint[{smk.params.contrast['post']}]")
        if not family.any() and len(data):
            family = (data["method"] == data["method"].iloc[0]) & (data["term"] == data["term"].iloc[0])
        part = data[family].reset_index(drop=True)
        style = {**smk.params.style, "figure": {**smk.params.style.get("figure", {}), "width": "single"}}
        fig = plot_volcano(part, style, smk.params.alpha, pre=smk.params.contrast["pre"],
                           scale_label=smk.params.scale_label, title=smk.params.title)
        save_figure(fig, [smk.output.panel], style, source_data=part)


run(snakemake, main)
