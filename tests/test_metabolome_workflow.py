"""Metabolomics module in the workflow: config/schema wiring, QC-figure data, and the demo run.

The ``demo_run`` tests check the processed demo tables against the planted truth
(``resources/demo/truth.tsv``): every planted metabolite survives the filters, the
planted effects keep their direction (and, for direct effects, their size) on the
processed log2 scale, the QC pools cluster after processing, and the processing log
accounts for every feature and injection.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from gutaxis.io.configuration import fill_defaults, validate_config
from gutaxis.io.errors import InputError
from gutaxis.metabolome.process import process_metabolome
from gutaxis.metabolome.params import DEFAULT_PARAMS
from gutaxis.plots import metabolome as mplots
from gutaxis.io.sheets import load_schema
from gutaxis.plots.style import apply_style
from gutaxis.io.tables import read_feature_table, read_sheet, read_tsv

MODALITY = "metabolites"
QC_TABLES = ("qc_pca", "qc_dispersion", "qc_rsd", "missingness_samples", "missingness_features",
             "total_signal", "normalisation_factors", "missingness_structure", "platform_missingness",
             "contrast_missingness", "qc_precision")
FIGURES = ("qc_pca", "qc_rsd", "missingness", "total_signal")


# --------------------------------------------------------------------------- config and schema


def test_config_section_mirrors_library_defaults(repo):
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    assert config["metabolome"] == DEFAULT_PARAMS


def test_schema_defaults_fill_the_library_defaults(repo):
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    del config["metabolome"]
    schema = load_schema("config")
    assert fill_defaults(config, schema, schema)["metabolome"] == DEFAULT_PARAMS
    # a partial section keeps the user's value and fills the rest
    config["metabolome"] = {"qc_rsd": {"max_rsd": 0.2}}
    filled = fill_defaults(config, schema, schema)["metabolome"]
    assert filled["qc_rsd"] == {"enabled": True, "max_rsd": 0.2}
    assert filled["impute"] == DEFAULT_PARAMS["impute"]


def test_bad_metabolome_config_names_every_key(repo):
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    config["metabolome"] = {"qc_rsd": {"max_rsd": 0}, "impute": {"method": "mean"}, "normalize": {}}
    with pytest.raises(InputError) as err:
        validate_config(config)
    message = str(err.value)
    for key in ("metabolome.qc_rsd.max_rsd", "metabolome.impute.method", "normalize"):
        assert key in message


def test_metabolites_modality_is_not_transformed_again(repo):
    """processed.tsv is log2 already: the metabolome modality's transform must be none."""
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    kinds = {name: spec["kind"] for name, spec in config["modalities"].items()}
    for name, kind in kinds.items():
        if kind == "metabolome":
            assert config["modalities"][name]["transform"] == "none"


# --------------------------------------------------------------------------- QC-figure data


def small_study(seed: int = 7):
    """10 subjects x (baseline, post) stool, 4 QC pools, 2 blanks, 2 batches, 40 features."""
    rng = np.random.default_rng(seed)
    study = [f"S{i:02d}_{t}" for i in range(10) for t in ("baseline", "post")]
    ids = ["BLANK1", "QC1"] + study[:10] + ["QC2", "BLANK2", "QC3"] + study[10:] + ["QC4"]
    types = {s: "stool" for s in study} | {f"QC{i}": "qc" for i in range(1, 5)} | {"BLANK1": "blank",
                                                                                   "BLANK2": "blank"}
    sheet = pd.DataFrame({
        "sample_id": ids,
        "subject_id": [s.split("_")[0] if types[s] == "stool" else "" for s in ids],
        "timepoint": [s.split("_")[1] if types[s] == "stool" else "" for s in ids],
        "sample_type": [types[s] for s in ids],
        "batch": ["B1"] * 13 + ["B2"] * 13,
        "injection_order": np.arange(1, 27),
    })
    features = [f"F{j:02d}" for j in range(40)]
    level = rng.normal(12, 1.5, 40)
    log_x = level + rng.normal(0, 0.8, (26, 40))
    qc_rows = sheet["sample_type"].eq("qc").to_numpy()
    log_x[qc_rows] = level + rng.normal(0, 0.1, (4, 40))
    x = pd.DataFrame(2.0 ** log_x, index=ids, columns=features)
    x.loc[sheet["sample_type"].eq("blank").to_numpy()] = np.nan
    x.loc["BLANK1", "F00"] = 2.0 ** 20  # a blank contaminant
    x.iloc[2:9, 1] = np.nan  # F01 missing in most baseline samples of batch 1 ...
    x.iloc[15:25, 1] = np.nan  # ... and in most post samples: dropped by missingness
    ann = pd.DataFrame({"name": [f"metabolite {j}" for j in range(40)]}, index=pd.Index(features, name="feature_id"))
    return x, sheet, ann


@pytest.fixture(scope="module")
def small_result():
    x, sheet, ann = small_study()
    return process_metabolome(x, sheet, ann, DEFAULT_PARAMS), sheet


def test_missingness_feature_data_gives_each_feature_its_fate(small_result):
    result, _ = small_result
    data = mplots.missingness_feature_data(result.qc_tables["missingness_per_feature"], result.dropped_features)
    fate = data.set_index("feature_id")["fate"]
    assert set(fate.index) == set(result.table.columns) | set(result.dropped_features["feature_id"])
    assert (fate[result.table.columns] == "kept").all()
    dropped = result.dropped_features.set_index("feature_id")["step"]
    assert fate["F01"] == "dropped: missingness" and dropped["F01"] == "missingness"
    assert fate["F00"] == "dropped: other filter" and dropped["F00"] == "blank_filter"
    # percentages are the table's fractions over the study samples
    study = result.qc_tables["missingness_per_feature"].query("sample_set == 'study samples'")
    assert np.allclose(data["pct_missing"].to_numpy(), 100 * study["fraction_missing"].to_numpy())


def test_pca_plot_data_joins_batches_and_orders_stages(small_result):
    result, sheet = small_result
    data = mplots.pca_plot_data(result.qc_tables["pca_scores"], sheet)
    assert list(data["stage"].unique()) == ["before", "after"]
    batch = sheet.set_index("sample_id")["batch"]
    assert (data["batch"].to_numpy() == batch[data["sample_id"]].to_numpy()).all()
    assert (data.loc[data["kind"] == "qc", "sample_type"] == "qc").all()
    assert data.groupby("stage")["kind"].apply(lambda k: (k == "qc").sum()).to_dict() == {"after": 4, "before": 4}


def test_batch_order_and_colours():
    assert mplots.batch_levels(["B10", "B2", "B1", "none"]) == ["B1", "B2", "B10"]
    many = [f"B{i}" for i in range(1, 21)]
    colours = mplots.batch_colours({}, many)
    # neighbouring batches in the run differ even when colours repeat
    assert all(colours[a] != colours[b] for a, b in zip(many, many[1:]))
    few = mplots.batch_colours({}, ["B1", "B2", "B3"])
    assert len({few[b] for b in ("B1", "B2", "B3")}) == 3


def test_dispersion_ratio_needs_two_qc_pools():
    """One QC pool sits on its own centroid: no spread, so no ratio (not a perfect 0)."""
    from gutaxis.metabolome.qc import qc_pca

    rng = np.random.default_rng(3)
    x = pd.DataFrame(rng.normal(10, 1, (6, 5)), index=[f"s{i}" for i in range(6)])
    types = pd.Series(["qc", "stool", "stool", "stool", "stool", "stool"], index=x.index)
    _, dispersion = qc_pca(x, types, "after")
    assert np.isnan(dispersion["dispersion_ratio"].iloc[0])
    assert np.isnan(dispersion["dispersion_ratio_pc12"].iloc[0])
    assert dispersion["study_median_distance"].iloc[0] > 0
    types.iloc[1] = "qc"
    _, dispersion = qc_pca(x, types, "after")
    assert dispersion["dispersion_ratio"].iloc[0] > 0


def test_run_position_falls_back_to_table_order():
    assert mplots.run_position(pd.Series([5.0, 1.0, 3.0])).tolist() == [5.0, 1.0, 3.0]
    assert mplots.run_position(pd.Series([5.0, np.nan, 3.0])).tolist() == [1.0, 2.0, 3.0]


def test_plots_draw_what_the_tables_say(small_result, repo):
    result, sheet = small_result
    style = fill_defaults({}, load_schema("config")["properties"]["style"], load_schema("config"))
    apply_style(style)
    qc = result.qc_tables
    pca = mplots.pca_plot_data(qc["pca_scores"], sheet)
    fig = mplots.plot_qc_pca(pca, qc["qc_dispersion"], style, "Metabolome 'm'")
    titles = [ax.get_title() for ax in fig.axes]
    for stage, title in zip(("before", "after"), titles):
        ratio = qc["qc_dispersion"].set_index("stage").loc[stage, "dispersion_ratio"]
        assert f"{ratio:.2f}" in title
    # the QC pools are drawn once per panel, as their own collection
    n_qc = [len(c.get_offsets()) for c in fig.axes[0].collections]
    assert sorted(n_qc) == [4, 20]

    rsd = mplots.rsd_plot_data(qc["qc_rsd"])
    fig = mplots.plot_qc_rsd(rsd, 0.3, style)
    after = rsd.query("stage == 'after'")["rsd_pct"].dropna()
    legend = " ".join(t.get_text() for t in fig.axes[0].get_legend().get_texts())
    assert f"{int((after < 30).sum())} of {len(after)} features < 30%" in legend

    total = mplots.total_signal_data(qc["total_signal"])
    assert total["run_position"].is_monotonic_increasing
    fig = mplots.plot_total_signal(total, style, "pqn")
    assert len(fig.axes) == 2

    samples = mplots.missingness_sample_data(qc["missingness_per_sample"], sheet)
    features = mplots.missingness_feature_data(qc["missingness_per_feature"], result.dropped_features)
    fig = mplots.plot_missingness(samples, features, DEFAULT_PARAMS["missingness"], style)
    heights = sum(p.get_height() for p in fig.axes[1].patches)
    assert heights == len(features)


# --------------------------------------------------------------------------- demo run


@pytest.fixture(scope="module")
def demo(demo_run):
    out = demo_run / "results" / "metabolome" / MODALITY
    truth = pd.read_csv(demo_run / "resources" / "demo" / "truth.tsv", sep="\t")
    # the truth file may call the modality "metabolite" or "metabolites"
    truth = truth[truth["modality"].isin([MODALITY, MODALITY.rstrip("s")])]
    assert not truth.empty, "no metabolite rows in the demo truth"
    return {
        "dir": out,
        "run": demo_run,
        "processed": read_feature_table(out / "processed.tsv"),
        "features": read_tsv(out / "features.tsv", dtype={"feature_id": str}),
        "log": read_tsv(out / "processing_log.tsv", keep_default_na=False),
        "dropped_features": read_tsv(out / "dropped_features.tsv", dtype={"feature_id": str}),
        "dropped_samples": read_tsv(out / "dropped_samples.tsv", dtype={"sample_id": str}),
        "imported": read_feature_table(demo_run / "results" / "import" / f"{MODALITY}.tsv"),
        "samples": read_sheet(demo_run / "results" / "inputs" / "samples.tsv").set_index("sample_id"),
        "responders": read_sheet(demo_run / "results" / "clinical" / "responders.tsv").set_index("subject_id"),
        "truth": truth,
    }


@pytest.mark.workflow
def test_demo_outputs_exist(demo):
    for name in ("processed", "features", "processing_log", "dropped_features", "dropped_samples") + QC_TABLES:
        assert (demo["dir"] / f"{name}.tsv").stat().st_size > 0, name
    figures = demo["run"] / "results" / "figures" / "metabolome" / MODALITY
    for stem in FIGURES:
        for fmt in ("pdf", "svg", "png"):
            assert (figures / f"{stem}.{fmt}").stat().st_size > 0
        assert (figures / f"{stem}.source.tsv").stat().st_size > 0


@pytest.mark.workflow
def test_demo_has_no_structural_gap_and_reports_precision(demo):
    """The demo measures every feature at every visit: nothing is left missing after processing."""
    structure = pd.read_csv(demo["dir"] / "missingness_structure.tsv", sep="\t")
    assert (structure["status"] == "measured").all() and set(structure["column"]) == {"timepoint", "batch"}
    assert not demo["processed"].isna().to_numpy().any()
    precision = pd.read_csv(demo["dir"] / "qc_precision.tsv", sep="\t").set_index("stage")
    assert list(precision.index) == ["before", "after"]
    factors = pd.read_csv(demo["dir"] / "normalisation_factors.tsv", sep="\t")
    assert (factors["n_features"] > 0).all()


@pytest.mark.workflow
def test_demo_processed_table_holds_study_stool_samples_only(demo):
    table, samples = demo["processed"], demo["samples"]
    assert table.shape[0] > 0 and table.shape[1] > 0
    assert (samples.loc[table.index, "sample_type"] == "stool").all()
    # every stool sample of the import is there; every QC pool and blank is listed as dropped
    imported = demo["imported"].index
    stool = imported[samples.loc[imported, "sample_type"].eq("stool").to_numpy()]
    assert set(table.index) == set(stool)
    technical = set(imported) - set(stool)
    assert set(demo["dropped_samples"]["sample_id"]) == technical
    assert not table.isna().to_numpy().any()
    assert np.isfinite(table.to_numpy()).all()


@pytest.mark.workflow
def test_demo_annotations_follow_the_kept_features(demo):
    features = demo["features"]
    assert features["feature_id"].tolist() == demo["processed"].columns.tolist()
    for column in ("name", "mz", "rt", "hmdb", "kegg"):
        assert column in features.columns
    imported = read_tsv(demo["run"] / "results" / "import" / f"{MODALITY}.features.tsv",
                        dtype={"feature_id": str}).set_index("feature_id")
    kept = features.set_index("feature_id")
    pd.testing.assert_series_equal(kept["name"], imported.loc[kept.index, "name"])
    assert np.allclose(kept["mz"], imported.loc[kept.index, "mz"])


@pytest.mark.workflow
def test_demo_processing_log_chains_and_accounts_for_every_feature(demo):
    log = demo["log"]
    assert log["features_after"].iloc[:-1].tolist() == log["features_before"].iloc[1:].tolist()
    assert log["samples_after"].iloc[:-1].tolist() == log["samples_before"].iloc[1:].tolist()
    assert log["features_before"].iloc[0] == demo["imported"].shape[1]
    assert log["samples_before"].iloc[0] == demo["imported"].shape[0]
    assert log["features_after"].iloc[-1] == demo["processed"].shape[1]
    assert log["samples_after"].iloc[-1] == demo["processed"].shape[0]
    dropped = demo["dropped_features"]
    assert not dropped["feature_id"].duplicated().any()
    assert set(dropped["feature_id"]).isdisjoint(demo["processed"].columns)
    assert set(dropped["feature_id"]) | set(demo["processed"].columns) == set(demo["imported"].columns)
    # each filter's log row counts exactly the features it lists as dropped
    steps = log.set_index("step")
    for step, n in dropped["step"].value_counts().items():
        assert steps.loc[step, "features_before"] - steps.loc[step, "features_after"] == n
    assert {"blank_filter", "missingness", "qc_rsd"} <= set(dropped["step"])


@pytest.mark.workflow
def test_demo_qc_pools_cluster_after_processing(demo):
    dispersion = read_tsv(demo["dir"] / "qc_dispersion.tsv").set_index("stage")
    assert dispersion.loc["after", "dispersion_ratio"] < dispersion.loc["before", "dispersion_ratio"]
    assert dispersion.loc["after", "dispersion_ratio"] < 0.5
    assert dispersion.loc["after", "dispersion_ratio_pc12"] < dispersion.loc["before", "dispersion_ratio_pc12"]
    rsd = read_tsv(demo["dir"] / "qc_rsd.tsv", dtype={"feature_id": str})
    median = rsd.groupby("stage")["rsd"].median()
    assert median["after"] < median["before"]


@pytest.mark.workflow
def test_demo_planted_metabolites_survive_the_filters(demo):
    planted = set(demo["truth"]["feature"])
    assert planted <= set(demo["processed"].columns), sorted(planted - set(demo["processed"].columns))


def _paired_change(demo) -> pd.DataFrame:
    table, samples = demo["processed"], demo["samples"]
    meta = samples.loc[table.index, ["subject_id", "timepoint"]]
    pre = table[meta["timepoint"].eq("baseline").to_numpy()].set_axis(
        meta.loc[meta["timepoint"] == "baseline", "subject_id"].to_numpy())
    post = table[meta["timepoint"].eq("post").to_numpy()].set_axis(
        meta.loc[meta["timepoint"] == "post", "subject_id"].to_numpy())
    both = pre.index.intersection(post.index)
    return post.loc[both] - pre.loc[both]


@pytest.mark.workflow
def test_demo_planted_effects_keep_direction_and_size(demo):
    truth, change = demo["truth"], _paired_change(demo)
    assert len(change) >= 40
    label = demo["responders"]["dcr_recist"]
    is_responder = change.index.map(label).to_numpy() == "responder"
    table, samples = demo["processed"], demo["samples"]
    baseline = table[samples.loc[table.index, "timepoint"].eq("baseline").to_numpy()]
    baseline_responder = samples.loc[baseline.index, "subject_id"].map(label).to_numpy() == "responder"
    for row in truth.itertuples():
        if row.effect == "time":
            estimate = change[row.feature].mean()
        elif row.effect == "time_x_response":
            estimate = change.loc[is_responder, row.feature].mean() - change.loc[~is_responder, row.feature].mean()
        elif row.effect == "baseline_response":
            estimate = baseline.loc[baseline_responder, row.feature].mean() - baseline.loc[
                ~baseline_responder, row.feature].mean()
        else:
            continue  # driven_by slopes are the integration module's to recover
        assert np.sign(estimate) == np.sign(row.log2_effect), (row.feature, row.effect, estimate)
        if "implied" not in row.note:  # direct effects: the size survives too
            assert abs(estimate - row.log2_effect) < 0.5, (row.feature, row.effect, estimate)
            if row.effect == "time":
                assert stats.ttest_1samp(change[row.feature], 0.0).pvalue < 1e-3


@pytest.mark.workflow
def test_demo_processing_adds_no_spurious_time_effect(demo):
    change = _paired_change(demo).drop(columns=list(set(demo["truth"]["feature"])))
    p = stats.ttest_1samp(change, 0.0).pvalue
    assert np.mean(p < 0.01) < 0.05
