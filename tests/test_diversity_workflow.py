"""The diversity module on the demo study: outputs, planted effects found, nulls not called."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats
from scipy.spatial.distance import braycurtis

from gutaxis.io.configuration import validate_config
from gutaxis.io.pairing import pair_samples
from gutaxis.io.tables import read_feature_table, read_sheet

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def config(demo_run):
    return validate_config(yaml.safe_load((demo_run / "config" / "config.yaml").read_text()))


@pytest.fixture(scope="module")
def modality(config):
    names = sorted(m for m, spec in config["modalities"].items() if spec["kind"] == "taxonomy")
    assert names, "the demo config has no taxonomy modality"
    return names[0]


@pytest.fixture(scope="module")
def out(demo_run, modality):
    return demo_run / "results" / "diversity" / modality


@pytest.fixture(scope="module")
def level(config):
    return config["diversity"]["significance_level"]


@pytest.fixture(scope="module")
def truth(demo_run):
    return read_sheet(demo_run / "resources" / "demo" / "truth.tsv")


def tsv(path):
    return pd.read_csv(path, sep="\t")


def test_every_output_exists(demo_run, out, config, modality):
    metrics = config["diversity"]["beta_metrics"]
    tables = ["filtered", "dropped_features", "dropped_samples", "renormalisation", "filter_parameters",
              "alpha", "alpha_tests", "alpha_mixed"]
    paths = [out / f"{name}.tsv" for name in tables]
    for metric in metrics:
        paths += [out / "distances" / f"{metric}.tsv", out / "distances" / f"{metric}.parameters.tsv",
                  out / "pcoa" / f"{metric}.tsv", out / "pcoa" / f"{metric}.axes.tsv",
                  out / "permanova" / f"{metric}.tsv", out / "permanova" / f"{metric}.notes.tsv",
                  out / "permdisp" / f"{metric}.tsv", out / "shift" / f"{metric}.tsv",
                  out / "shift" / f"{metric}.tests.tsv"]
    figures = demo_run / "results" / "figures" / "diversity" / modality
    for contrast in config["design"]["contrasts"]:
        for stem in ["alpha_paired", "shift"] + [f"pcoa_{m}" for m in metrics]:
            paths += [figures / contrast["name"] / f"{stem}.{fmt}" for fmt in config["style"]["formats"]]
            paths.append(figures / contrast["name"] / f"{stem}.source.tsv")
    missing = [str(p) for p in paths if not p.is_file() or p.stat().st_size == 0]
    assert not missing


def test_filter_is_recorded(demo_run, out, modality, config):
    imported = read_feature_table(demo_run / "results" / "import" / f"{modality}.tsv")
    filtered = read_feature_table(out / "filtered.tsv")
    dropped = tsv(out / "dropped_features.tsv")
    assert set(filtered.columns) | set(dropped["feature_id"]) == set(imported.columns)
    assert not set(filtered.columns) & set(dropped["feature_id"])
    assert (dropped["reason"].str.len() > 0).all()
    settings = config["diversity"]
    below = (dropped["prevalence"] < settings["min_prevalence"]) | (
        dropped["mean_abundance"] < settings["min_mean_abundance"])
    assert below.all()
    # kept features pass both thresholds, computed here from the import
    kept = imported[filtered.columns]
    assert ((kept > settings["detection_limit"]).mean() >= settings["min_prevalence"]).all()
    assert (kept.mean() >= settings["min_mean_abundance"]).all()
    np.testing.assert_allclose(filtered.sum(axis=1), 1.0, rtol=1e-9)
    renorm = tsv(out / "renormalisation.tsv").set_index("sample_id")
    np.testing.assert_allclose(renorm.loc[filtered.index, "retained_fraction"],
                               kept.loc[filtered.index].sum(axis=1), rtol=1e-6)


def test_alpha_table_has_every_sample_metric_and_reason(demo_run, out, config):
    filtered = read_feature_table(out / "filtered.tsv")
    alpha = read_sheet(out / "alpha.tsv")
    metrics = config["diversity"]["alpha_metrics"]
    assert len(alpha) == len(filtered) * len(metrics)
    assert set(alpha["sample_id"]) == set(filtered.index)
    values = pd.to_numeric(alpha["value"], errors="coerce")
    assert (alpha.loc[values.isna(), "reason"] != "").all()
    # MetaPhlAn gives percentages: count metrics are not computed, and the table says why
    for metric in ("chao1", "rarefied_richness"):
        if metric in metrics:
            rows = alpha[alpha["metric"] == metric]
            assert values[rows.index].isna().all()
            assert rows["reason"].str.contains("read counts").all()
    # Shannon (natural log) and richness by hand from the filtered table
    shannon = alpha[alpha["metric"] == "shannon"].set_index("sample_id")["value"].astype(float)
    p = filtered.to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        by_hand = -np.nansum(np.where(p > 0, p * np.log(p), 0.0), axis=1)
    np.testing.assert_allclose(shannon.loc[filtered.index], by_hand, rtol=1e-9)
    richness = alpha[alpha["metric"] == "observed_richness"].set_index("sample_id")["value"].astype(float)
    np.testing.assert_array_equal(richness.loc[filtered.index], (p > 0).sum(axis=1))
    # metadata agree with the checked sheets
    samples = read_sheet(demo_run / "results" / "inputs" / "samples.tsv").set_index("sample_id")
    responders = read_sheet(demo_run / "results" / "clinical" / "responders.tsv").set_index("subject_id")
    first = alpha.drop_duplicates("sample_id").set_index("sample_id")
    assert (first["timepoint"] == samples.loc[first.index, "timepoint"]).all()
    primary = config["response"]["primary"]
    assert (first["response"] == responders.loc[first["subject_id"], primary].to_numpy()).all()


def _contrast_rows(table, config):
    contrast = config["design"]["contrasts"][0]
    return table[table["contrast"] == contrast["name"]], contrast


def test_planted_alpha_rise_in_responders_is_found(out, config, truth, level):
    planted = truth[(truth["modality"] == "alpha") & (truth["effect"] == "time_in_responders")]
    assert len(planted) == 1 and planted["direction"].item() == "up"
    metric = planted["feature"].item()
    tests, contrast = _contrast_rows(tsv(out / "alpha_tests.tsv"), config)
    row = tests[(tests["metric"] == metric) & (tests["group_by"] == "response")
                & (tests["group"] == "responder")].iloc[0]
    assert row["p_value"] < level
    assert row["hl_estimate"] > 0 and row["ci_low"] > 0
    # the same p from scipy on the differences read back from alpha.tsv
    alpha = read_sheet(out / "alpha.tsv")
    alpha = alpha[(alpha["metric"] == metric) & (alpha["response"] == "responder")]
    wide = alpha.pivot(index="subject_id", columns="timepoint", values="value").astype(float)
    d = (wide[contrast["post"]] - wide[contrast["pre"]]).dropna().to_numpy()
    assert len(d) == row["n_pairs"]
    # R's wilcox.test rule: exact null distribution below 50 pairs without ties or zeros
    exact = len(d) < 50 and len(np.unique(np.abs(d))) == len(d) and (d != 0).all()
    expected = stats.wilcoxon(d, method="exact" if exact else "asymptotic", correction=not exact)
    assert row["p_value"] == pytest.approx(expected.pvalue, rel=1e-9)
    mixed, _ = _contrast_rows(tsv(out / "alpha_mixed.tsv"), config)
    term = f"timepoint[{contrast['post']}]:response[responder]"
    interaction = mixed[(mixed["metric"] == metric) & (mixed["term"] == term)].iloc[0]
    assert interaction["formula_fitted"] == f"{metric} ~ timepoint * response + cohort + (1|subject)"
    assert interaction["estimate"] > 0 and interaction["p_value"] < level


def test_no_alpha_change_is_called_in_non_responders(out, config, level):
    tests, contrast = _contrast_rows(tsv(out / "alpha_tests.tsv"), config)
    non = tests[(tests["group_by"] == "response") & (tests["group"] == "non_responder")]
    assert len(non) >= 5 and (non["n_pairs"] >= 10).all()
    assert (non["p_value"] >= level).all(), non[["metric", "p_value"]]
    assert not non["significant"].astype(str).eq("True").any()
    # in the mixed model the reference group is the non-responders: their change is timepoint[post]
    mixed, _ = _contrast_rows(tsv(out / "alpha_mixed.tsv"), config)
    time_term = mixed[mixed["term"] == f"timepoint[{contrast['post']}]"]
    assert len(time_term) == len(non)
    assert (time_term["p_value"] >= level).all(), time_term[["metric", "p_value"]]


def test_beta_shift_over_time_is_found_with_within_subject_permutations(out, config, truth, level):
    assert ((truth["modality"] == "beta") & (truth["effect"] == "time")).any()
    for metric in ("braycurtis", "aitchison"):
        table, contrast = _contrast_rows(tsv(out / "permanova" / f"{metric}.tsv"), config)
        time = table[(table["test"] == "time_within_subject") & (table["term"] == "timepoint")].iloc[0]
        assert time["p_value"] < level, metric
        assert time["permutation_scheme"].startswith("within subject_id")
        assert time["permutations"] == config["diversity"]["permutations"]
        assert 0 < time["r2"] < 1 and time["pseudo_f"] > 0
        permdisp = tsv(out / "permdisp" / f"{metric}.tsv")
        assert set(table["test"]) <= set(permdisp["test"])  # PERMDISP beside every PERMANOVA


def _called(table):
    return table["called"].astype(str).eq("True")


def test_primary_metric_calls_the_planted_beta_effects_and_nothing_else(out, config, truth):
    """TRUTH.md: the community shifts over time in every patient, differs by response at
    every visit (baseline_response taxa) and is restructured more in responders; no
    cohort effect is planted, so the primary metric must not call one."""
    primary = config["diversity"]["primary_metric"]
    assert ((truth["modality"] == "beta") & (truth["effect"] == "time_x_response")).any()
    assert (truth["effect"] == "baseline_response").any()
    permanova, _ = _contrast_rows(tsv(out / "permanova" / f"{primary}.tsv"), config)
    tested = permanova[permanova["p_value"].notna()].set_index(["test", "term"])
    assert set(tested["role"]) == {"primary"}
    assert _called(tested).loc[("time_within_subject", "timepoint")]
    assert _called(tested).loc[("response_at_baseline", "response")]
    assert _called(tested).loc[("sequential_at_baseline", "response")]
    for test in ("cohort_at_baseline", "sequential_at_baseline"):
        assert not _called(tested).loc[(test, "cohort")], tested.loc[(test, "cohort"), "p_value"]
    shift, _ = _contrast_rows(tsv(out / "shift" / f"{primary}.tests.tsv"), config)
    by_response = shift.set_index("test").loc["responder_vs_non_responder"]
    assert str(by_response["called"]) == "True", by_response["p_value"]
    assert by_response["median_a"] > by_response["median_b"]  # responders shift further


def test_sensitivity_metrics_report_p_but_make_no_call(out, config):
    primary = config["diversity"]["primary_metric"]
    others = [m for m in config["diversity"]["beta_metrics"] if m != primary]
    assert others
    for metric in others:
        for path in (out / "permanova" / f"{metric}.tsv", out / "shift" / f"{metric}.tests.tsv",
                     out / "permdisp" / f"{metric}.tsv"):
            table = pd.read_csv(path, sep="\t", keep_default_na=False, dtype=str)
            assert set(table["role"]) == {"sensitivity"}, path
            assert table["called"].eq("").all(), path
            assert table["significant"].isin(["True", "False", ""]).all(), path


def test_pcoa_variance_and_coordinates(out, config):
    filtered = read_feature_table(out / "filtered.tsv")
    for metric in config["diversity"]["beta_metrics"]:
        axes = tsv(out / "pcoa" / f"{metric}.axes.tsv")
        assert axes["percent_explained"].sum() <= 100.0 + 1e-9
        assert (np.diff(axes["eigenvalue"].to_numpy()) <= 1e-12).all()
        coordinates = tsv(out / "pcoa" / f"{metric}.tsv")
        assert sorted(coordinates["sample_id"].astype(str)) == sorted(filtered.index)


def test_distances_match_a_direct_computation(out):
    filtered = read_feature_table(out / "filtered.tsv")
    matrix = pd.read_csv(out / "distances" / "braycurtis.tsv", sep="\t", index_col=0)
    a, b = filtered.index[0], filtered.index[-1]
    assert matrix.loc[a, b] == pytest.approx(braycurtis(filtered.loc[a], filtered.loc[b]), rel=1e-9)
    parameters = tsv(out / "distances" / "aitchison.parameters.tsv").set_index("parameter")["value"]
    x = filtered.to_numpy()
    assert float(parameters["pseudocount"]) == pytest.approx(x[x > 0].min() / 2, rel=1e-8)


def test_shift_has_one_row_per_paired_subject(demo_run, out, config):
    filtered = read_feature_table(out / "filtered.tsv")
    samples = read_sheet(demo_run / "results" / "inputs" / "samples.tsv")
    samples = samples[samples["sample_id"].isin(filtered.index)]
    for contrast in config["design"]["contrasts"]:
        pairs = pair_samples(samples, contrast["pre"], contrast["post"])
        for metric in config["diversity"]["beta_metrics"]:
            shift = tsv(out / "shift" / f"{metric}.tsv")
            shift = shift[shift["contrast"] == contrast["name"]]
            assert list(shift["subject_id"]) == list(pairs["subject_id"])
            matrix = pd.read_csv(out / "distances" / f"{metric}.tsv", sep="\t", index_col=0)
            expected = [matrix.loc[p, q] for p, q in zip(pairs["pre_sample"], pairs["post_sample"])]
            np.testing.assert_allclose(shift["distance"], expected, rtol=1e-9)
            tests = tsv(out / "shift" / f"{metric}.tests.tsv")
            by_response = tests[(tests["contrast"] == contrast["name"])
                                & (tests["test"] == "responder_vs_non_responder")].iloc[0]
            r = shift.loc[shift["response"] == "responder", "distance"]
            nr = shift.loc[shift["response"] == "non_responder", "distance"]
            # R's wilcox.test rule: exact below 50 per group without ties
            exact = len(r) < 50 and len(nr) < 50 and len(np.unique(np.r_[r, nr])) == len(r) + len(nr)
            expected = stats.mannwhitneyu(r, nr, method="exact" if exact else "asymptotic")
            assert by_response["statistic"] == pytest.approx(expected.statistic)
            assert by_response["p_value"] == pytest.approx(expected.pvalue, rel=1e-9)


def test_figures_show_the_tables(demo_run, out, modality, config):
    contrast = config["design"]["contrasts"][0]
    figures = demo_run / "results" / "figures" / "diversity" / modality / contrast["name"]
    source = tsv(figures / "alpha_paired.source.tsv")
    alpha = read_sheet(out / "alpha.tsv")
    alpha = alpha[alpha["metric"].isin(config["diversity"]["alpha_plot_metrics"])]
    values = alpha.set_index(["metric", "sample_id"])["value"].astype(float)
    np.testing.assert_allclose(source["pre_value"],
                               values.loc[list(zip(source["metric"], source["pre_sample"]))], rtol=1e-9)
    pcoa = tsv(figures / f"pcoa_{config['diversity']['beta_metrics'][0]}.source.tsv")
    assert set(pcoa["timepoint"]) == {contrast["pre"], contrast["post"]}


# ---------------------------------------------------------------------------
# other study types: what the dry run plans (no demo run needed)


def _study_workdir(tmp_path, repo, study_type):
    """A user's study built from the demo files: stool samples and the taxa table only."""
    import shutil

    data = tmp_path / "data"
    data.mkdir(parents=True)
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    samples = pd.read_csv(repo / "resources" / "demo" / "samples.tsv", sep="\t", dtype=str, keep_default_na=False)
    samples = samples[samples["sample_type"] == "stool"]
    if study_type == "baseline_only":
        samples = samples[samples["timepoint"] == config["design"]["baseline"]]
        config["design"]["contrasts"] = []
    samples.to_csv(data / "samples.tsv", sep="\t", index=False)
    shutil.copy(repo / "resources" / "demo" / "subjects.tsv", data / "subjects.tsv")
    shutil.copy(repo / "resources" / "demo" / "metaphlan4_merged.txt", data / "taxa.txt")
    config["design"]["study_type"] = study_type
    config.update(samples="data/samples.tsv", subjects="data/subjects.tsv", adverse_events="")
    config["modalities"] = {"taxa": dict(config["modalities"]["taxa"], path="data/taxa.txt")}
    for section in ("models", "integration", "metabolome"):  # their demo settings name other modalities
        config.pop(section, None)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return tmp_path


def _planned(workdir, *targets):
    from conftest import run_snakemake

    result = run_snakemake(workdir, *targets, "-n", "--configfile", str(workdir / "config.yaml"))
    assert result.returncode == 0, result.stderr[-3000:]
    text = result.stdout + result.stderr
    stats = text.split("Job stats:", 1)[1].split("\n\n", 1)[0].splitlines()[3:]
    jobs = {line.split()[0]: int(line.split()[1]) for line in stats if line.strip()}
    return jobs, text


def test_intervention_study_plans_paired_diversity_without_responders(tmp_path, repo):
    workdir = _study_workdir(tmp_path, repo, "intervention")
    jobs, text = _planned(workdir)
    metrics = 4  # the demo config's beta_metrics
    for rule, count in {"diversity_alpha_tests": 1, "diversity_beta_metrics": 1, "diversity_beta": metrics,
                        "diversity_permanova": metrics, "diversity_shift": metrics, "plot_diversity_alpha": 1,
                        "plot_diversity_pcoa": metrics, "plot_diversity_shift": 1}.items():
        assert jobs.get(rule) == count, (rule, jobs)
    assert "diversity_alpha_baseline" not in jobs and "plot_diversity_pcoa_baseline" not in jobs
    assert "skipped: response analyses" in text
    # the diversity tables of a study without response do not need the responders table
    targets = ["results/diversity/taxa/alpha_tests.tsv", "results/diversity/taxa/shift/braycurtis.tests.tsv",
               "results/diversity/taxa/permanova/braycurtis.tsv",
               "results/figures/diversity/taxa/post_vs_baseline/shift.png"]
    jobs, _ = _planned(workdir, *targets)
    assert "clinical_responders" not in jobs and jobs["diversity_shift"] == metrics


def test_baseline_only_study_plans_baseline_diversity_and_no_shift(tmp_path, repo):
    workdir = _study_workdir(tmp_path, repo, "baseline_only")
    jobs, text = _planned(workdir)
    metrics = 4
    for rule, count in {"diversity_alpha": 1, "diversity_alpha_baseline": 1, "diversity_beta_metrics": 1,
                        "diversity_beta": metrics, "diversity_permanova": metrics,
                        "plot_diversity_pcoa_baseline": metrics}.items():
        assert jobs.get(rule) == count, (rule, jobs)
    for rule in ("diversity_alpha_tests", "diversity_shift", "plot_diversity_alpha", "plot_diversity_shift",
                 "plot_diversity_pcoa"):
        assert rule not in jobs, (rule, jobs)
    assert "skipped: paired analyses (within-subject changes, shifts" in text
    jobs, _ = _planned(workdir, "results/diversity/taxa/alpha_baseline_tests.tsv")
    assert "clinical_responders" in jobs  # baseline-only studies compare responders
