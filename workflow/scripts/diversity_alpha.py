"""Diversity step 2: α diversity of every sample, with its subject, timepoint, cohort and response."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.diversity.alpha import COUNT_METRICS, alpha_diversity
from gutaxis.diversity.design import sample_metadata, study_labels, tidy_alpha
from gutaxis.runner import run
from gutaxis.io.tables import read_feature_table, read_sheet, write_tsv


def main(smk):
    table = read_feature_table(smk.input.filtered)
    parameters = dict(read_sheet(smk.input.parameters).itertuples(index=False, name=None))
    counts = parameters["count_metrics"] == "computed"
    depth = smk.params.rarefaction_depth or None
    result = alpha_diversity(table, counts=counts, rarefaction_depth=depth, source=smk.input.filtered)
    # a study without response has no responders table: every response is empty
    labels = study_labels(smk.input.get("responders"), smk.params.primary, smk.input.subjects)
    metadata = sample_metadata(read_sheet(smk.input.samples), labels, table.index, smk.input.samples,
                               period=smk.params.period or None)
    missing = {m: parameters["count_metrics"] for m in COUNT_METRICS}
    write_tsv(tidy_alpha(result.values, result.not_computed, metadata, smk.params.metrics, missing),
              smk.output.alpha)


run(snakemake, main)
