"""The integration module in the workflow: the demo run's association blocks, MOFA+ tables, triads and figures.

Checked against the demo's planted truth (``resources/demo/truth.tsv``, rows with
effect ``chain``: microbe -> metabolite -> immune chains) and against independent
computations: statsmodels' BH on each file's p values, and mediation fits of random
unplanted triads on the demo's change data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from statsmodels.stats.multitest import multipletests

from gutaxis.integration.associations import bh_fdr
from gutaxis.io.configuration import validate_config
from gutaxis.integration.mofa import FACTOR_TEST_COLUMNS
from gutaxis.io.tables import read_feature_table, read_sheet
from gutaxis.integration.triads import TRIAD_COLUMNS, mediate_triad
from gutaxis.integration.views import build_views

pytestmark = pytest.mark.workflow

BLOCKS = ("taxa__metabolites", "taxa__immune", "metabolites__immune")
ASSOCIATION_COLUMNS = ["feature_a", "feature_b", "rho", "p", "q", "n", "block", "view"]
FIGURES = ["immune_dynamics", "network", "triads", "mofa_variance", "mofa_scores"] + [
    f"heatmap_{block}_change" for block in BLOCKS]


@pytest.fixture(scope="module")
def config(demo_run):
    with open(demo_run / "config" / "config.yaml") as handle:
        return validate_config(yaml.safe_load(handle))


@pytest.fixture(scope="module")
def results(demo_run):
    return demo_run / "results"


@pytest.fixture(scope="module")
def views(config):
    contrast = config["design"]["contrasts"][0]
    return [contrast["pre"], contrast["post"], "change"]


@pytest.fixture(scope="module")
def truth(demo_run) -> pd.DataFrame:
    return pd.read_csv(demo_run / "resources" / "demo" / "truth.tsv", sep="\t", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def planted_chains(truth) -> set:
    chains = truth[truth["effect"] == "chain"]["feature"]
    return {tuple(part.strip() for part in chain.split("->")) for chain in chains}


def read(path, **kwargs) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", **kwargs)


def test_association_tables_have_the_columns_and_per_file_bh(results, views):
    for block in BLOCKS:
        for view in views:
            path = results / "integration" / "associations" / f"{block}_{view}.tsv"
            table = read(path, dtype={"feature_a": str, "feature_b": str})
            summary = read(path.with_suffix(".summary.tsv")).iloc[0]
            assert list(table.columns) == ASSOCIATION_COLUMNS, path.name
            assert (table["block"] == block).all() and (table["view"] == view).all()
            assert summary["status"] == "tested" and summary["method"] == "partial_spearman"
            # the default config writes every pair, so q must be BH over this file's p values
            assert len(table) == summary["pairs_tested"] == summary["features_a_tested"] * summary["features_b_tested"]
            np.testing.assert_allclose(table["q"], multipletests(table["p"], method="fdr_bh")[1], rtol=1e-8)
            assert table["rho"].between(-1, 1).all() and (table["n"] == summary["n"]).all()
            assert table["p"].is_monotonic_increasing
            assert not table.duplicated(["feature_a", "feature_b"]).any()


def test_planted_links_are_the_strongest_change_links(results):
    """Planted taxon -> metabolite (driven_by) and metabolite -> immune links lead their change blocks."""
    xm = read(results / "integration" / "associations" / "taxa__metabolites_change.tsv", dtype=str)
    my = read(results / "integration" / "associations" / "metabolites__immune_change.tsv", dtype=str)
    top_my = set(zip(my["feature_a"].head(4), my["feature_b"].head(4)))
    assert top_my == {("FT0334", "Ki-67+ CD8+"), ("FT0055", "CD8+ T cells"), ("FT0394", "Th17"),
                      ("FT0408", "Tregs (CD4+CD25+CD127lo)")}
    assert ("s__Bifidobacterium_adolescentis", "FT0334") in set(zip(xm["feature_a"].head(5), xm["feature_b"].head(5)))


def test_planted_chains_rank_first_and_unplanted_triads_are_not_called(results, planted_chains, config):
    triads = read(results / "integration" / "triads.tsv", dtype={"microbe": str, "metabolite": str, "immune": str})
    assert list(triads.columns) == ["rank"] + TRIAD_COLUMNS
    fdr = config["integration"]["triads"]["fdr_level"]
    is_planted = [tuple(t) in planted_chains for t in triads[["microbe", "metabolite", "immune"]].itertuples(index=False)]
    tested_planted = triads[is_planted]
    # Of the 6 planted chains, the demo's change data carry 3 whose two links both pass the
    # link screen (scindens -> DCA -> Tregs, scindens -> LCA -> Th17, B. adolescentis -> inosine
    # -> Ki-67+ CD8+); the three butyrate chains (three taxa sharing one metabolite, slopes
    # 0.35-0.4) have no taxon-butyrate change link with q < 0.1, so they are never candidates.
    assert len(tested_planted) >= 3
    # k = the number of planted chains tested: they occupy the top k ranks
    k = len(tested_planted)
    assert sorted(tested_planted["rank"]) == list(range(1, k + 1))
    assert (tested_planted["acme_q"] < fdr).all()
    unplanted_called = triads[~np.array(is_planted) & (triads["acme_q"] < fdr).to_numpy()]
    assert len(unplanted_called) == 0, unplanted_called


def test_random_unplanted_triads_are_not_called_at_fdr_10(results, truth, config):
    """Mediation of random triads of features without any planted effect finds nothing at BH 10%."""
    samples = read_sheet(results / "inputs" / "samples.tsv")
    prepared = results / "integration" / "prepared"
    taxa, metabolites, immune = (read_feature_table(prepared / f"{m}.tsv") for m in ("taxa", "metabolites", "immune"))
    contrast = config["design"]["contrasts"][0]
    xm = build_views(samples, taxa, metabolites, pre=contrast["pre"], post=contrast["post"]).views["change"]
    my = build_views(samples, metabolites, immune, pre=contrast["pre"], post=contrast["post"]).views["change"]
    subjects = xm[0].index.intersection(my[0].index)
    named = set(truth["feature"]) | {e.split(":", 1)[1] for e in truth["effect"] if e.startswith("driven_by:")}
    null_x = [f for f in taxa.columns if f not in named]
    null_m = [f for f in metabolites.columns if f not in named]
    null_y = [f for f in immune.columns if f not in named]
    rng = np.random.default_rng(20261122)
    p = []
    for _ in range(10):
        x, m, y = (xm[0].loc[subjects, rng.choice(null_x)], xm[1].loc[subjects, rng.choice(null_m)],
                   my[1].loc[subjects, rng.choice(null_y)])
        z = [(v - v.mean()) / v.std() for v in (x.to_numpy(), m.to_numpy(), y.to_numpy())]
        p.append(mediate_triad(*z, n_rep=200, seed=int(rng.integers(1 << 31)))["acme_p"])
    assert (bh_fdr(np.array(p)) >= 0.1).all(), p


def test_mofa_tables(results, config):
    mofa = results / "integration" / "mofa"
    status = read(mofa / "status.tsv", keep_default_na=False).iloc[0]
    assert status["status"] == "fitted", status["reason"]
    assert status["n_samples"] >= config["integration"]["mofa"]["min_samples"]
    k = config["integration"]["mofa"]["n_factors"]
    assert status["n_factors"] == k and status["seed"] == config["seed"]
    variance = read(mofa / "variance_explained.tsv")
    views = status["views"].split(";")
    assert views == ["taxa", "metabolites", "immune"]
    assert len(variance) == (k + 1) * len(views)
    per = variance[variance["factor"] != "all"].pivot(index="factor", columns="view", values="variance_explained")
    total = variance[variance["factor"] == "all"].set_index("view")["variance_explained"]
    assert (total <= 1).all() and (total >= per.max().reindex(total.index)).all()
    # factors are ordered by total variance explained over the views
    assert per.sum(axis=1).loc[[f"Factor{i + 1}" for i in range(k)]].is_monotonic_decreasing
    factors = read(mofa / "factors.tsv", dtype={"subject_id": str})
    assert len(factors) == status["n_samples"] * k
    tests = read(mofa / "factor_tests.tsv")
    assert list(tests.columns) == FACTOR_TEST_COLUMNS and len(tests) == 2 * k
    loadings = read(mofa / "loadings.tsv", dtype={"feature_id": str})
    assert set(loadings["view"]) == set(views) and (loadings["abs_rank"] >= 1).all()


def test_figures_and_their_source_data(results, config):
    figures = results / "figures" / "integration"
    for stem in FIGURES:
        for fmt in config["style"]["formats"]:
            assert (figures / f"{stem}.{fmt}").stat().st_size > 0, stem
        assert (figures / f"{stem}.source.tsv").exists(), stem
    heat = read(results / "integration" / "associations" / "metabolites__immune_change.heatmap.tsv", dtype=str)
    assert heat.groupby("feature_a")["row_order"].nunique().eq(1).all()
    data = read(results / "integration" / "triads_data.tsv", dtype={"subject_id": str})
    triads = read(results / "integration" / "triads.tsv")
    assert set(data["rank"]) == set(triads["rank"].head(config["integration"]["triads"]["plot_top"]))
