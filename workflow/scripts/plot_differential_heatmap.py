"""Figure: heatmap of within-subject changes of the called features, subjects grouped by cohort and response."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.plots.differential import heatmap_data, plot_heatmap
from gutaxis.runner import run
from gutaxis.plots.style import apply_style, save_figure
from gutaxis.io.tables import read_tsv


def main(smk):
    apply_style(smk.params.style)
    p = smk.params
    results = read_tsv(smk.input.results, dtype={"feature": str, "annotation": str})
    changes = read_tsv(smk.input.changes, dtype={"subject_id": str})
    pairs = read_tsv(smk.input.pairs, dtype=str, keep_default_na=False)
    data = heatmap_data(results, changes, pairs, p.alpha, p.method, p.contrast["post"],
                        p.max_features, p.cohorts)
    fig = plot_heatmap(data, p.style, p.alpha, p.method, pre=p.contrast["pre"],
                       post=p.contrast["post"], scale_label=p.scale_label, title=p.title)
    save_figure(fig, smk.output.figures, p.style, source_data=data)


run(snakemake, main)
