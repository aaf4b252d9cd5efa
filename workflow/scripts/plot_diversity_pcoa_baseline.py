"""Figure: PCoA of the baseline samples of one β metric, coloured by response, with the baseline PERMANOVA."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.plots.diversity import PcoaView, pcoa_baseline_data, plot_pcoa_baseline
from gutaxis.runner import run
from gutaxis.plots.style import apply_style, save_figure
from gutaxis.io.tables import read_tsv


def main(smk):
    apply_style(smk.params.style)
    view = PcoaView.from_params(smk.params, smk.wildcards.metric)
    coordinates = read_tsv(smk.input.coordinates, dtype={"sample_id": str, "subject_id": str, "timepoint": str,
                                                         "cohort": str, "response": str})
    data = pcoa_baseline_data(coordinates, view.axes_pair, view.pre, response=view.response)
    fig = plot_pcoa_baseline(data, read_tsv(smk.input.axes), read_tsv(smk.input.permanova), view)
    save_figure(fig, smk.output.figures, smk.params.style, source_data=data)


run(snakemake, main)
