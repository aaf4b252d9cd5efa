"""Figure: PCoA of one β metric with an arrow from each subject's pre to its post sample."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.plots.diversity import pcoa_arrow_data, plot_pcoa_arrows
from gutaxis.runner import run
from gutaxis.style import apply_style, save_figure
from gutaxis.tables import read_tsv


def main(smk):
    apply_style(smk.params.style)
    contrast = smk.params.contrast
    coordinates = read_tsv(smk.input.coordinates, dtype={"sample_id": str, "subject_id": str, "timepoint": str,
                                                         "cohort": str, "response": str})
    axes = read_tsv(smk.input.axes)
    data = pcoa_arrow_data(coordinates, smk.params.axes, contrast["pre"], contrast["post"],
                           response=smk.params.response)
    fig = plot_pcoa_arrows(data, axes, read_tsv(smk.input.permanova), smk.params.axes, smk.wildcards.metric,
                           contrast["pre"], contrast["post"], smk.params.style, title=smk.params.title,
                           contrast=contrast["name"], response=smk.params.response)
    save_figure(fig, smk.output.figures, smk.params.style, source_data=data)


run(snakemake, main)
