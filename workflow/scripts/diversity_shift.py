"""Diversity step 6: each subject's pre->post distance, by response and against between-subject distances."""

import sys

sys.path.insert(0, snakemake.scriptdir)

import pandas as pd

from gutaxis.diversity.beta import compare_shift_by_response, metric_roles, shift_vs_between, within_subject_shift
from gutaxis.diversity.design import SHIFT_TEST_COLUMNS, call_by_metric_role, shift_tests_table, study_labels
from gutaxis.io.pairing import pair_samples
from gutaxis.runner import run
from gutaxis.io.tables import read_sheet, read_square_matrix, write_tsv

SHIFT_TABLE_COLUMNS = ["contrast", "pre", "post", "metric", "subject_id", "cohort", "response", "pre_sample",
                       "post_sample", "distance", "median_between_distance", "difference"]


def main(smk):
    metric = smk.wildcards.metric
    primary, roles = metric_roles(read_sheet(smk.input.check))
    labels = study_labels(smk.input.get("responders"), smk.params.primary, smk.input.subjects)
    info = labels.set_index("subject_id")
    shifts, tests = [], []
    if roles.get(metric) == "not computed":
        # undefined for some sample pairs (beta_metrics.tsv): nothing to measure
        shifts.append(pd.DataFrame(columns=SHIFT_TABLE_COLUMNS))
        tests.append(pd.DataFrame(columns=["contrast", "pre", "post", "metric"] + SHIFT_TEST_COLUMNS))
        contrasts = []
    else:
        distances = read_square_matrix(smk.input.matrix, smk.input.matrix_ids)
        samples = read_sheet(smk.input.samples)
        samples = samples[samples["sample_id"].isin(distances.index)]
        contrasts = smk.params.contrasts
    for contrast in contrasts:
        pairs = pair_samples(samples, contrast["pre"], contrast["post"], source=smk.input.samples)
        shift = within_subject_shift(distances, pairs)
        between = shift_vs_between(distances, pairs, conf_level=smk.params.conf_level)
        # a study without response has no responder comparison
        by_response = compare_shift_by_response(shift, labels, "response") if smk.params.primary else None
        per_subject = shift.merge(between.per_subject.drop(columns="within_distance"), on="subject_id")
        per_subject.insert(1, "cohort", per_subject["subject_id"].map(info["cohort"]).fillna(""))
        per_subject.insert(2, "response", per_subject["subject_id"].map(info["response"]).fillna(""))
        front = {"contrast": contrast["name"], "pre": contrast["pre"], "post": contrast["post"], "metric": metric}
        shifts.append(pd.DataFrame(front, index=per_subject.index).join(per_subject))
        table = shift_tests_table(by_response, between.test)
        tests.append(pd.DataFrame(front, index=table.index).join(table))
    tests = call_by_metric_role(pd.concat(tests, ignore_index=True), metric, primary,
                                smk.params.significance_level)
    write_tsv(pd.concat(shifts, ignore_index=True), smk.output.shift)
    write_tsv(tests, smk.output.tests)


run(snakemake, main)
