"""Diversity step 5: PERMANOVA (time within subject; response, cohort and both at baseline) + PERMDISP."""

import sys

sys.path.insert(0, snakemake.scriptdir)

import pandas as pd

from gutaxis.diversity.beta import metric_roles
from gutaxis.diversity.design import call_by_metric_role, study_labels
from gutaxis.diversity.permanova import (GROUP_DISTANCE_COLUMNS, NOTE_COLUMNS, PERMANOVA_COLUMNS, PERMDISP_COLUMNS,
                               standard_beta_tests)
from gutaxis.runner import run
from gutaxis.io.tables import read_sheet, read_square_matrix, write_tsv


def _front(table, contrast, metric):
    table = table.assign(contrast=contrast["name"], pre=contrast["pre"], post=contrast["post"], metric=metric)
    front = ["contrast", "pre", "post", "metric"]
    return table[front + [c for c in table.columns if c not in front]]


def main(smk):
    metric = smk.wildcards.metric
    primary, roles = metric_roles(read_sheet(smk.input.check))
    samples = read_sheet(smk.input.samples)
    subjects = study_labels(smk.input.get("responders"), smk.params.primary, smk.input.subjects)
    response = "response" if smk.params.primary else None
    contrasts = list(smk.params.contrasts)
    baseline_only = not contrasts
    if baseline_only:
        # a baseline-only study: the baseline tests alone, in rows of contrast "baseline"
        contrasts = [{"name": "baseline", "pre": smk.params.baseline, "post": ""}]
    parts = {"permanova": [], "permdisp": [], "groups": [], "notes": []}
    if roles.get(metric) == "not computed":
        reason = "metric undefined for some sample pairs (beta_metrics.tsv); not tested"
        empty = {"permanova": PERMANOVA_COLUMNS, "permdisp": PERMDISP_COLUMNS, "groups": GROUP_DISTANCE_COLUMNS}
        for contrast in contrasts:
            for part, columns in empty.items():
                parts[part].append(_front(pd.DataFrame(columns=columns), contrast, metric))
            parts["notes"].append(_front(pd.DataFrame([["all", metric, reason]], columns=NOTE_COLUMNS),
                                         contrast, metric))
    else:
        distances = read_square_matrix(smk.input.matrix, smk.input.matrix_ids)
        for contrast in contrasts:
            result = standard_beta_tests(
                distances, samples, subjects, contrast["pre"], contrast["post"] or None,
                response_column=response, cohort_column="cohort",
                sequential_terms=smk.params.sequential_terms,
                permutations=smk.params.permutations, seed=smk.params.seed,
                covariates=[smk.params.period] if smk.params.period else [],
                response_within_cohort=baseline_only,
            )
            parts["permanova"].append(_front(result.permanova, contrast, metric))
            parts["permdisp"].append(_front(result.permdisp, contrast, metric))
            parts["groups"].append(_front(result.group_distances, contrast, metric))
            parts["notes"].append(_front(result.notes, contrast, metric))
    level = smk.params.significance_level
    permanova = call_by_metric_role(pd.concat(parts["permanova"], ignore_index=True), metric, primary, level)
    permdisp = call_by_metric_role(pd.concat(parts["permdisp"], ignore_index=True), metric, primary, level)
    write_tsv(permanova, smk.output.permanova)
    write_tsv(permdisp, smk.output.permdisp)
    write_tsv(pd.concat(parts["groups"], ignore_index=True), smk.output.group_distances)
    write_tsv(pd.concat(parts["notes"], ignore_index=True), smk.output.notes)


run(snakemake, main)
