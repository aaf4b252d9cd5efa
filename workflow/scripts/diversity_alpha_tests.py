"""Diversity step 3: paired Wilcoxon / Hodges-Lehmann tests and mixed models of the α metrics."""

import sys

sys.path.insert(0, snakemake.scriptdir)

import pandas as pd

from gutaxis.diversity.alpha import alpha_mixed_models, paired_alpha_tests
from gutaxis.diversity.design import call_significant, full_design_timepoints, read_alpha
from gutaxis.runner import run
from gutaxis.io.tables import write_tsv


def main(smk):
    values, samples, subjects = read_alpha(smk.input.alpha)
    level = smk.params.significance_level
    # without response the model is metric ~ timepoint + cohort (+ period) + (1|subject)
    options = {"response": smk.params.response, "covariates": ["period"] if smk.params.period else []}
    tests, models = [], []
    for contrast in smk.params.contrasts:
        pre, post = contrast["pre"], contrast["post"]
        table = paired_alpha_tests(values, samples, subjects, pre, post, "response", "cohort",
                                   conf_level=smk.params.conf_level)
        tests.append(table.assign(contrast=contrast["name"], pre=pre, post=post))
        fitted = alpha_mixed_models(values, samples, subjects, [pre, post], "response", "cohort", **options)
        models.append(fitted.assign(contrast=contrast["name"], timepoints=f"{pre}, {post}"))
    # the full design: every timepoint with data, baseline as the reference
    timepoints = full_design_timepoints(smk.params.timepoints, smk.params.baseline, samples["timepoint"])
    if len(timepoints) > 2:
        fitted = alpha_mixed_models(values, samples, subjects, timepoints, "response", "cohort", **options)
        models.append(fitted.assign(contrast="all_timepoints", timepoints=", ".join(timepoints)))
    tests = pd.concat(tests, ignore_index=True)
    tests["significant"] = call_significant(tests["p_value"], level)
    front = ["contrast", "pre", "post"]
    write_tsv(tests[front + [c for c in tests.columns if c not in front]], smk.output.tests)
    models = pd.concat(models, ignore_index=True)
    # the intercept's p (mean = 0) answers no question; variance rows have no p
    models["significant"] = call_significant(models["p_value"], level, models["term"] != "Intercept")
    front = ["contrast", "timepoints"]
    write_tsv(models[front + [c for c in models.columns if c not in front]], smk.output.mixed)


run(snakemake, main)
