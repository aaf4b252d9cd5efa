"""Figure: PCoA of one β metric: thin arrows per subject, bold arrows of the response groups' centroids."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.plots.diversity import PcoaView, pcoa_arrow_data, pcoa_centroids, pcoa_source, plot_pcoa_arrows
from gutaxis.runner import run
from gutaxis.plots.style import apply_style, save_figure
from gutaxis.io.tables import read_tsv


def main(smk):
    apply_style(smk.params.style)
    view = PcoaView.from_params(smk.params, smk.wildcards.metric)
    coordinates = read_tsv(smk.input.coordinates, dtype={"sample_id": str, "subject_id": str, "timepoint": str,
                                                         "cohort": str, "response": str})
    data = pcoa_arrow_data(coordinates, view.axes_pair, view.pre, view.post, response=view.response)
    centroids = pcoa_centroids(data, view.pre, view.post)
    fig = plot_pcoa_arrows(data, read_tsv(smk.input.axes), read_tsv(smk.input.permanova), view, centroids=centroids)
    # the samples and the group centroids the bold arrows join
    save_figure(fig, smk.output.figures, smk.params.style, source_data=pcoa_source(data, centroids))


run(snakemake, main)
