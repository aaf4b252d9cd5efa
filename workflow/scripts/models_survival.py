"""Cox models and median-split Kaplan-Meier curves of the top candidate biomarkers
(the most often selected features of the best omics feature set)."""

import sys

sys.path.insert(0, snakemake.scriptdir)

import pandas as pd

from gutaxis.io.tables import read_sheet, read_tsv, write_tsv
from gutaxis.models.survival import BiomarkerSurvivalSettings, top_biomarker_survival
from gutaxis.runner import run

FEATURE_TYPES = {"feature_set": str, "model": str, "block": str, "feature": str}


def main(smk):
    p = smk.params
    settings = BiomarkerSurvivalSettings.from_config(
        p.models, survival=p.survival, landmark_months=p.landmark_months,
        pseudocount_fraction=p.clr_pseudocount_fraction, conf_type=p.km_conf_type, modalities=p.modalities,
        baseline=p.baseline, contrasts=p.contrasts, cohorts=p.cohorts)
    performance = read_tsv(smk.input.performance, dtype={"feature_set": str, "model": str, "blocks": str})
    features = pd.concat([read_tsv(path, dtype=FEATURE_TYPES) for path in smk.input.features], ignore_index=True)
    annotations = {m: read_tsv(path, dtype=str) for m, path in zip(p.modalities_used, smk.input.annotations)}
    outputs = top_biomarker_survival(performance, features, p.feature_sets,
                                     dict(zip(p.modalities_used, smk.input.tables)), read_sheet(smk.input.samples),
                                     read_sheet(smk.input.subjects), annotations, settings)
    for name, table in outputs.items():
        write_tsv(table, smk.output[name])


run(snakemake, main)
