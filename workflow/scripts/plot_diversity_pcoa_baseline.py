"""Figure: PCoA of the baseline samples of one β metric, coloured by response, with the baseline PERMANOVA."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.plots.diversity import pcoa_baseline_data, plot_pcoa_baseline
from gutaxis.runner import run
from gutaxis.plots.style import apply_style, save_figure
from gutaxis.io.tables import read_tsv


def main(smk):
    apply_style(smk.params.style)
    coordinates = read_tsv(smk.input.coordinates, dtype={"sample_id": str, "subject_id": str, "timepoint": str,
                                                         "cohort": str, "response": str})
    data = pcoa_baseline_data(coordinates, smk.params.axes, smk.params.baseline, response=smk.params.response)
    fig = plot_pcoa_baseline(data, read_tsv(smk.input.axes), read_tsv(smk.input.permanova), smk.params.axes,
                             smk.wildcards.metric, smk.params.style, title=smk.params.title,
                             response=smk.params.response)
    save_figure(fig, smk.output.figures, smk.params.style, source_data=data)


run(snakemake, main)
