"""Integration step 3: MOFA+ latent factors on the subject x timepoint units with every modality."""

import os
import sys

# one BLAS thread: the fit adds its sums in one order, so reruns give identical tables
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

sys.path.insert(0, snakemake.scriptdir)

import logging  # noqa: E402

import pandas as pd  # noqa: E402

from gutaxis.integration.mofa import factor_tests, fit_mofa, matched_samples, mofa_views  # noqa: E402
from gutaxis.metabolome.structure import not_measured_in  # noqa: E402
from gutaxis.runner import run  # noqa: E402
from gutaxis.io.tables import read_feature_table, read_sheet, write_tsv  # noqa: E402

log = logging.getLogger("gutaxis.integration")


def main(smk):
    p = smk.params
    samples = read_sheet(smk.input.samples)
    tables = {name: read_feature_table(path) for name, path in zip(p.modalities, smk.input.tables)}
    gaps = []
    for name, path in p.structures.items():  # metabolites not measured at pre or post: not in MOFA
        reasons = not_measured_in(path, [p.pre, p.post], tables[name].columns)
        tables[name] = tables[name].drop(columns=reasons.index)
        gaps.append(pd.DataFrame({"view": name, "feature_id": reasons.index, "reason": reasons.to_numpy()}))
    matched, membership = matched_samples(samples, tables, [p.pre, p.post], samples_file=p.samples_label)
    views, dropped = mofa_views(tables, matched, scale_features=p.mofa["scale_features"],
                                max_features=p.mofa["max_features_per_view"])
    dropped = pd.concat([*gaps, dropped], ignore_index=True)
    fit = fit_mofa(views, n_factors=p.mofa["n_factors"], seed=p.seed, max_iter=p.mofa["max_iter"],
                   convergence_mode=p.mofa["convergence_mode"], min_samples=p.mofa["min_samples"])
    # no response (an intervention study): the factors are tested against time only
    responders = read_sheet(smk.input.responders).set_index("subject_id")[p.response] if p.response else None
    tests = factor_tests(fit.scores, pre=p.pre, post=p.post, response=responders)
    status = fit.status.iloc[0]
    log.info("MOFA %s on %s samples (%s subjects) %s", status["status"], status["n_samples"],
             status["n_subjects"], status["reason"])
    write_tsv(fit.status, smk.output.status)
    write_tsv(fit.variance_explained, smk.output.variance_explained)
    write_tsv(fit.scores, smk.output.factors)
    write_tsv(fit.weights, smk.output.loadings)
    write_tsv(tests, smk.output.factor_tests)
    write_tsv(membership, smk.output.samples)
    write_tsv(dropped, smk.output.dropped)


run(snakemake, main)
