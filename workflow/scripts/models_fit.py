"""Nested cross-validation of every estimator on one feature set, with the permutation test."""

import sys

sys.path.insert(0, snakemake.scriptdir)

from gutaxis.io.tables import read_feature_table, read_sheet, write_tsv
from gutaxis.models.fit import FeatureSetSettings, fit_feature_set
from gutaxis.runner import run


def main(smk):
    p = smk.params
    settings = FeatureSetSettings.from_config(
        p.models, seed=p.seed, n_jobs=smk.threads, pseudocount_fraction=p.clr_pseudocount_fraction,
        label=p.label, modalities=p.modalities, baseline=p.baseline, contrasts=p.contrasts, cohorts=p.cohorts)
    tables = {m: read_feature_table(path) for m, path in zip(p.blocks, smk.input.tables)}
    outputs = fit_feature_set(p.feature_set, p.spec, tables, read_sheet(smk.input.samples),
                              read_sheet(smk.input.subjects), read_sheet(smk.input.responders),
                              estimators=p.estimators, permutation_test=p.permutation_test,
                              structures=p.structures, settings=settings)
    for name, table in outputs.items():
        write_tsv(table, smk.output[name])


run(snakemake, main)
