"""Figure: PCoA of one β metric: thin arrows per subject, bold arrows of the response groups' centroids."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.plots.diversity import pcoa_arrow_data, pcoa_centroids, pcoa_source, plot_pcoa_arrows
from gutaxis.runner import run
from gutaxis.plots.style import apply_style, save_figure
from gutaxis.io.tables import read_tsv


def main(smk):
    apply_style(smk.params.style)
    contrast = smk.params.contrast
    coordinates = read_tsv(smk.input.coordinates, dtype={"sample_id": str, "subject_id": str, "timepoint": str,
                                                         "cohort": str, "response": str})
    axes = read_tsv(smk.input.axes)
    data = pcoa_arrow_data(coordinates, smk.params.axes, contrast["pre"], contrast["post"],
                           response=smk.params.response)
    centroids = pcoa_centroids(data, contrast["pre"], contrast["post"])
    fig = plot_pcoa_arrows(data, axes, read_tsv(smk.input.permanova), smk.params.axes, smk.wildcards.metric,
                           contrast["pre"], contrast["post"], smk.params.style, title=smk.params.title,
                           contrast=contrast["name"], response=smk.params.response, centroids=centroids)
    # the samples and the group centroids the bold arrows join
    save_figure(fig, smk.output.figures, smk.params.style, source_data=pcoa_source(data, centroids))


run(snakemake, main)
