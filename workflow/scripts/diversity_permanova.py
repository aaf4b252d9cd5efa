"""Diversity step 5: PERMANOVA (time within subject; response, cohort and both at baseline) + PERMDISP."""

import sys

sys.path.insert(0, snakemake.scriptdir)

import pandas as pd

from gutaxis.diversity_design import call_by_metric_role, subject_labels
from gutaxis.permanova import standard_beta_tests
from gutaxis.runner import run
from gutaxis.tables import read_sheet, read_square_matrix, write_tsv


def _front(table, contrast, metric):
    table = table.assign(contrast=contrast["name"], pre=contrast["pre"], post=contrast["post"], metric=metric)
    front = ["contrast", "pre", "post", "metric"]
    return table[front + [c for c in table.columns if c not in front]]


def main(smk):
    distances = read_square_matrix(smk.input.matrix, smk.input.matrix_ids)
    samples = read_sheet(smk.input.samples)
    subjects = subject_labels(read_sheet(smk.input.responders), smk.params.primary, smk.input.responders)
    metric = smk.wildcards.metric
    parts = {"permanova": [], "permdisp": [], "groups": [], "notes": []}
    for contrast in smk.params.contrasts:
        result = standard_beta_tests(
            distances, samples, subjects, contrast["pre"], contrast["post"],
            response_column="response", cohort_column="cohort",
            sequential_terms=smk.params.sequential_terms,
            permutations=smk.params.permutations, seed=smk.params.seed,
        )
        parts["permanova"].append(_front(result.permanova, contrast, metric))
        parts["permdisp"].append(_front(result.permdisp, contrast, metric))
        parts["groups"].append(_front(result.group_distances, contrast, metric))
        parts["notes"].append(_front(result.notes, contrast, metric))
    level = smk.params.significance_level
    primary = smk.params.primary_metric
    permanova = call_by_metric_role(pd.concat(parts["permanova"], ignore_index=True), metric, primary, level)
    permdisp = call_by_metric_role(pd.concat(parts["permdisp"], ignore_index=True), metric, primary, level)
    write_tsv(permanova, smk.output.permanova)
    write_tsv(permdisp, smk.output.permdisp)
    write_tsv(pd.concat(parts["groups"], ignore_index=True), smk.output.group_distances)
    write_tsv(pd.concat(parts["notes"], ignore_index=True), smk.output.notes)


run(snakemake, main)
