"""Diversity step 3 of a baseline-only study: α diversity at baseline, responders vs non-responders."""

import sys

sys.path.insert(0, snakemake.scriptdir)

import pandas as pd

from gutaxis.diversity.alpha import BASELINE_TEST_COLUMNS, baseline_alpha_models, baseline_alpha_tests
from gutaxis.diversity.design import call_significant, read_alpha
from gutaxis.runner import run
from gutaxis.io.tables import write_tsv


def main(smk):
    values, samples, subjects = read_alpha(smk.input.alpha)
    level = smk.params.significance_level
    baseline = smk.params.baseline
    if smk.params.response:
        tests = baseline_alpha_tests(values, samples, subjects, baseline, "response", "cohort")
    else:
        tests = pd.DataFrame(columns=BASELINE_TEST_COLUMNS)
    tests["significant"] = call_significant(tests["p_value"], level)
    write_tsv(tests.assign(timepoint=baseline)[["timepoint"] + list(tests.columns)], smk.output.tests)
    models = baseline_alpha_models(values, samples, subjects, baseline, "response", "cohort")
    models["significant"] = call_significant(models["p_value"], level,
                                             ~models["term"].isin(["Intercept", "residual_variance"]))
    write_tsv(models.assign(timepoint=baseline)[["timepoint"] + list(models.columns)], smk.output.models)


run(snakemake, main)
