"""Integration step 4: microbe -> metabolite -> immune triads on within-subject changes, by mediation analysis."""

import os
import sys

# one BLAS thread per process: the mediation fits run in a process pool of the rule's threads
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

sys.path.insert(0, snakemake.scriptdir)

import logging  # noqa: E402

import pandas as pd  # noqa: E402

from gutaxis.runner import run  # noqa: E402
from gutaxis.io.subject_covariates import subject_covariates  # noqa: E402
from gutaxis.io.tables import read_feature_table, read_sheet, read_tsv, write_tsv  # noqa: E402
from gutaxis.integration.triads import axis_triads  # noqa: E402
from gutaxis.integration.views import build_views  # noqa: E402

log = logging.getLogger("gutaxis.integration")

DATA_COLUMNS = ["rank", "microbe", "metabolite", "immune", "subject_id",
                "microbe_change", "metabolite_change", "immune_change"]


def change_blocks(samples, tables, names, pre, post, samples_label):
    """The change (post - pre) matrices of the three modalities on the subjects that have all three."""
    xm = build_views(samples, tables[0], tables[1], pre=pre, post=post, name_a=names[0], name_b=names[1],
                     samples_file=samples_label).views["change"]
    my = build_views(samples, tables[1], tables[2], pre=pre, post=post, name_a=names[1], name_b=names[2],
                     samples_file=samples_label).views["change"]
    subjects = xm[0].index.intersection(my[0].index).sort_values()
    return xm[0].loc[subjects], xm[1].loc[subjects], my[1].loc[subjects]


def main(smk):
    p = smk.params
    samples = read_sheet(smk.input.samples)
    tables = [read_feature_table(path) for path in (smk.input.microbes, smk.input.metabolites, smk.input.immune)]
    microbes, metabolites, immune = change_blocks(samples, tables, p.modalities, p.pre, p.post, p.samples_label)
    links_xm = read_tsv(smk.input.links_xm, dtype={"feature_a": str, "feature_b": str})
    links_my = read_tsv(smk.input.links_my, dtype={"feature_a": str, "feature_b": str})
    covariates = None
    if p.covariates:
        covariates = subject_covariates(read_sheet(smk.input.subjects), p.covariates, microbes.index,
                                        p.subjects_label)
    t = p.triads
    result = axis_triads(
        microbes, metabolites, immune, links_xm, links_my, covariates,
        max_q=t["link_max_q"], rule=t["rule"], max_triads=t["max_triads"], n_rep=t["n_rep"],
        seed=p.seed, scale=t["scale"], alpha=1 - t["conf_level"], n_jobs=smk.threads,
    )
    table = result.table
    table.insert(0, "rank", range(1, len(table) + 1))
    summary = dict(result.summary, microbes=p.modalities[0], metabolites=p.modalities[1],
                   immune=p.modalities[2], view="change", pre=p.pre, post=p.post,
                   covariates=";".join(p.covariates), fdr_level=t["fdr_level"],
                   n_called=int((table["acme_q"] < t["fdr_level"]).sum()))
    log.info("%d candidate triads, %d tested, %d with ACME q < %g", summary["n_candidates"],
             summary["n_tested"], summary["n_called"], t["fdr_level"])

    top = table.head(t["plot_top"])
    data = []
    for row in top.itertuples(index=False):
        data.append(pd.DataFrame({
            "rank": row.rank, "microbe": row.microbe, "metabolite": row.metabolite, "immune": row.immune,
            "subject_id": microbes.index, "microbe_change": microbes[row.microbe].to_numpy(),
            "metabolite_change": metabolites[row.metabolite].to_numpy(),
            "immune_change": immune[row.immune].to_numpy(),
        }))
    data = pd.concat(data, ignore_index=True) if data else pd.DataFrame(columns=DATA_COLUMNS)
    write_tsv(table, smk.output.triads)
    write_tsv(result.candidates, smk.output.candidates)
    write_tsv(pd.DataFrame([summary]), smk.output.summary)
    write_tsv(data[DATA_COLUMNS], smk.output.data)


run(snakemake, main)
