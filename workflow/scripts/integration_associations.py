"""Integration step 2: (partial) Spearman association block of two modalities in one view."""

import os
import sys

# BLAS threads = the rule's threads, set before numpy loads
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(snakemake.threads)

sys.path.insert(0, snakemake.scriptdir)

import logging  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from gutaxis.integration.association_display import strongest_submatrix  # noqa: E402
from gutaxis.integration.associations import associate_blocks, covariate_basis  # noqa: E402
from gutaxis.metabolome.structure import not_measured_in  # noqa: E402
from gutaxis.io.subject_covariates import subject_covariates  # noqa: E402
from gutaxis.runner import run  # noqa: E402
from gutaxis.io.tables import read_feature_table, read_sheet, read_tsv, write_tsv  # noqa: E402
from gutaxis.integration.views import build_views  # noqa: E402

log = logging.getLogger("gutaxis.integration")

TABLE_COLUMNS = ["feature_a", "feature_b", "rho", "p", "q", "n", "block", "view"]


def main(smk):
    p = smk.params
    samples = read_sheet(smk.input.samples)
    subjects = read_sheet(smk.input.subjects)
    table_a = read_feature_table(smk.input.a)
    table_b = read_feature_table(smk.input.b)
    views = build_views(samples, table_a, table_b, pre=p.pre, post=p.post, name_a=p.modality_a,
                        name_b=p.modality_b, samples_file=p.samples_label)
    a, b = views.views[smk.wildcards.view]
    membership = views.membership[views.membership["view"] == smk.wildcards.view]
    not_used = membership[~membership["used"]]
    subject_drops = pd.DataFrame({"kind": "subject", "id": not_used["subject_id"], "reason": not_used["reason"]})
    # metabolites not measured at a timepoint of this view (a platform not run): left out, with the reason
    view = smk.wildcards.view
    used = [p.pre, p.post] if view == "change" else [view]
    gaps = []
    for name, side in ((p.modality_a, "a"), (p.modality_b, "b")):
        if name not in p.structures:
            continue
        reasons = not_measured_in(p.structures[name], used, (a if side == "a" else b).columns)
        if side == "a":
            a = a.drop(columns=reasons.index)
        else:
            b = b.drop(columns=reasons.index)
        gaps.append(pd.DataFrame({"kind": "feature", "id": reasons.index, "reason": reasons.to_numpy()}))
    subject_drops = pd.concat([subject_drops, *gaps], ignore_index=True)

    covariates = None
    if p.method == "partial_spearman" and p.covariates:
        covariates = subject_covariates(subjects, p.covariates, a.index, p.subjects_label)
    strata = None
    if p.n_perm > 0 and p.permutation_strata:
        strata = subject_covariates(subjects, [p.permutation_strata], a.index, p.subjects_label).iloc[:, 0]

    complete = a.index if covariates is None else covariates.index[covariates.notna().all(axis=1)]
    k = covariate_basis(None if covariates is None else covariates.loc[complete], len(complete))[0].shape[1] - 1
    summary = {"block": smk.wildcards.block, "view": smk.wildcards.view, "modality_a": p.modality_a,
               "modality_b": p.modality_b, "requested_method": p.method,
               "covariates": ";".join(p.covariates) if covariates is not None else ""}
    if len(complete) - 2 - k < 1:
        reason = (f"{len(complete)} subject(s) in view {smk.wildcards.view} with {k} covariate term(s): "
                  "too few for a correlation test")
        log.warning("%s: not tested: %s", smk.wildcards.block, reason)
        table = pd.DataFrame(columns=TABLE_COLUMNS)
        dropped = subject_drops
        summary.update(status="not_tested", reason=reason, n=len(complete))
        heatmap = strongest_submatrix(table)
    else:
        result = associate_blocks(
            a, b, covariates, n_perm=p.n_perm, seed=p.seed, strata=strata, missing="drop",
            source_a=f"{p.modality_a} ({smk.wildcards.view} view)",
            source_b=f"{p.modality_b} ({smk.wildcards.view} view)",
        )
        full = result.table
        labels_a = read_tsv(smk.input.features_a, dtype=str).set_index("feature_id")["label"]
        labels_b = read_tsv(smk.input.features_b, dtype=str).set_index("feature_id")["label"]
        heatmap = strongest_submatrix(full, n_pairs=p.heatmap["n_pairs"], max_features=p.heatmap["max_features"],
                                      labels_a=labels_a, labels_b=labels_b)
        keep = np.ones(len(full), dtype=bool)
        if p.max_q < 1:
            keep &= full["q"].to_numpy() <= p.max_q
        table = full[keep]
        if p.top_k:
            table = table.head(p.top_k)
        table = table.assign(block=smk.wildcards.block, view=smk.wildcards.view)[TABLE_COLUMNS]
        dropped = pd.concat([subject_drops, result.dropped], ignore_index=True)
        summary.update(status="tested", reason="")
        summary.update(result.summary)
        summary.update(pairs_written=len(table), max_q=p.max_q, top_k=p.top_k,
                       n_q_below_0_05=int((full["q"] < 0.05).sum()), n_q_below_0_1=int((full["q"] < 0.1).sum()))
        log.info("%s %s: %d subjects, %d pairs tested, %d with q < 0.05, %d written", smk.wildcards.block,
                 smk.wildcards.view, result.summary["n"], result.summary["pairs_tested"],
                 summary["n_q_below_0_05"], len(table))
    write_tsv(table, smk.output.table)
    write_tsv(dropped[["kind", "id", "reason"]], smk.output.dropped)
    write_tsv(pd.DataFrame([summary]), smk.output.summary)
    write_tsv(heatmap, smk.output.heatmap)


run(snakemake, main)
