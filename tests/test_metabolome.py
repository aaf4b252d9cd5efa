"""process_metabolome: step order, log, dropped tables, errors, and real public data."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from gutaxis.io.errors import InputError
from gutaxis.metabolome.process import (
    DEFAULT_PARAMS,
    batch_median_centre,
    blank_filter,
    impute_half_minimum,
    log2_transform,
    missingness_filter,
    pareto_scale,
    pqn_normalise,
    process_metabolome,
    rsd_filter,
)

NA = np.nan


def make_study(seed: int = 0):
    """20 study samples (baseline/post), 6 QC pools, 3 blanks, 2 batches, planted problems."""
    rng = np.random.default_rng(seed)
    study_ids = [f"S{i:02d}" for i in range(20)]
    qc_ids, blank_ids = [f"QC{i}" for i in range(6)], [f"BL{i}" for i in range(3)]
    ids = study_ids + qc_ids + blank_ids
    good = [f"good{j}" for j in range(8)]
    features = good + ["blank_level", "patchy", "noisy_qc", "empty", "baseline_only"]
    reference = rng.lognormal(8, 1, len(features))
    dilution = rng.uniform(0.5, 2.0, 20)
    study = dilution[:, None] * reference * rng.lognormal(0, 0.2, (20, len(features)))
    qc = reference * rng.lognormal(0, 0.05, (6, len(features)))
    blank = np.full((3, len(features)), NA)
    x = pd.DataFrame(np.vstack([study, qc, blank]), index=ids, columns=features)
    x.loc[blank_ids, "blank_level"] = x.loc[study_ids, "blank_level"].median()
    x.loc[blank_ids, "good0"] = 0.01 * reference[0]
    x.loc[study_ids[::2], "patchy"] = NA  # 50% missing in both groups
    x.loc[qc_ids, "noisy_qc"] *= rng.lognormal(0, 0.8, 6)
    x["empty"] = NA
    x.loc[study_ids[10:], "baseline_only"] = NA  # missing in every post sample
    x.loc[["S01", "S05", "QC2"], "good3"] = NA  # some scattered non-detects
    x.loc["S07", "good5"] = 0.0  # a zero = not detected
    sheet = pd.DataFrame(
        {
            "sample_id": ids,
            "subject_id": [f"P{i % 10}" for i in range(20)] + [""] * 9,
            "timepoint": ["baseline"] * 10 + ["post"] * 10 + [""] * 9,
            "sample_type": ["stool"] * 20 + ["qc"] * 6 + ["blank"] * 3,
            "batch": ["b1"] * 5 + ["b2"] * 5 + ["b1"] * 5 + ["b2"] * 5 + ["b1", "b2"] * 3 + ["b1"] * 3,
        }
    )
    rng_order = np.random.default_rng(seed + 1).permutation(len(ids)) + 1
    sheet["injection_order"] = rng_order
    batch_shift = np.where(sheet["batch"] == "b2", 1.2, 1.0)[:, None]
    x = x * batch_shift
    annotations = pd.DataFrame(
        {"name": [f"metabolite {f}" for f in features], "mz": np.linspace(100, 400, len(features)),
         "hmdb": [f"HMDB{j:07d}" for j in range(len(features))]},
        index=pd.Index(features, name="feature_id"),
    )
    return x, sheet, annotations, dilution


@pytest.fixture
def study():
    return make_study()


def test_planted_problems_are_dropped_by_their_step(study):
    x, sheet, ann, _ = study
    result = process_metabolome(x, sheet, ann)
    dropped = result.dropped_features.set_index("feature_id")
    assert dropped["step"].to_dict() == {
        "empty": "all_missing", "blank_level": "blank_filter", "patchy": "missingness", "noisy_qc": "qc_rsd"
    }
    assert dropped.loc["empty", "reason"] == "all values missing"
    assert dropped.loc["patchy", "value"] == 0.5
    assert dropped.loc["blank_level", "name"] == "metabolite blank_level"  # annotations carried
    kept = [f"good{j}" for j in range(8)] + ["baseline_only"]
    assert list(result.table.columns) == kept
    assert list(result.table.index) == [f"S{i:02d}" for i in range(20)]
    assert not result.table.isna().to_numpy().any()
    pd.testing.assert_frame_equal(result.annotations, ann.loc[kept])
    assert (result.table.index.name, result.table.columns.name) == ("sample_id", "feature_id")


def test_empty_sample_and_blank_only_feature(study):
    x, sheet, ann, _ = study
    x = x.assign(blank_only=NA)
    x.loc[["BL0", "BL1"], "blank_only"] = 50.0
    x.loc["S12"] = NA
    result = process_metabolome(x, sheet, None)
    dropped = result.dropped_features.set_index("feature_id")
    assert dropped.loc["blank_only", "reason"] == "all values missing"
    samples = result.dropped_samples.set_index("sample_id")
    assert samples.loc["S12", "step"] == "empty_samples"
    assert "S12" not in result.table.index and len(result.table) == 19


def test_lod_fraction_imputation_uses_annotation_lod(study):
    x, sheet, ann, _ = study
    ann = ann.assign(lod=np.where(ann.index == "good3", 40.0, NA))
    params = {"impute": {"method": "lod_fraction", "lod_fraction": 0.5}, "normalise": {"method": "none"},
              "log2": False}
    result = process_metabolome(x, sheet, ann, params)
    assert result.table.loc["S01", "good3"] == 20.0  # 0.5 x the declared LOD
    observed = x.loc[x.index.str.startswith(("S", "QC")), "good5"].replace(0, NA)
    assert result.table.loc["S07", "good5"] == 0.5 * observed.min()  # no LOD: 0.5 x minimum
    assert result.log.set_index("step").loc["impute", "parameter"] == "method=lod_fraction; fraction=0.5"


def test_overall_rule_drops_group_specific_feature(study):
    x, sheet, ann, _ = study
    result = process_metabolome(x, sheet, ann, {"missingness": {"rule": "overall"}})
    assert "baseline_only" not in result.table.columns
    assert result.dropped_features.set_index("feature_id").loc["baseline_only", "step"] == "missingness"


def test_log_is_consistent_and_samples_are_accounted_for(study):
    x, sheet, ann, _ = study
    result = process_metabolome(x, sheet, ann)
    log = result.log
    assert log["step"].tolist() == [
        "input", "all_missing", "blank_filter", "remove_blanks", "structural_missingness", "missingness", "qc_rsd",
        "empty_samples",
        "impute", "normalise", "log2", "batch_correction", "scale", "output",
    ]
    assert (log["features_after"].iloc[:-1].to_numpy() == log["features_before"].iloc[1:].to_numpy()).all()
    assert (log["samples_after"].iloc[:-1].to_numpy() == log["samples_before"].iloc[1:].to_numpy()).all()
    assert log.iloc[0][["features_before", "samples_before"]].tolist() == [13, 29]
    assert log.iloc[-1][["features_after", "samples_after"]].tolist() == [9, 20]
    assert "1 zero cells" in log.iloc[0]["note"]
    dropped = result.dropped_samples
    assert sorted(dropped.loc[dropped["step"] == "remove_blanks", "sample_id"]) == ["BL0", "BL1", "BL2"]
    assert sorted(dropped.loc[dropped["step"] == "output", "sample_id"]) == [f"QC{i}" for i in range(6)]
    n_features_dropped = log.iloc[0]["features_before"] - log.iloc[-1]["features_after"]
    assert len(result.dropped_features) == n_features_dropped


def test_orchestrator_equals_the_pure_steps_in_documented_order(study):
    x, sheet, ann, _ = study
    params = {"batch_correction": {"enabled": True, "reference": "qc"}, "scale": "pareto"}
    result = process_metabolome(x, sheet, ann, params)
    s = sheet.set_index("sample_id")
    types = s["sample_type"]
    raw = x.mask(x == 0).drop(columns="empty")
    raw, _ = blank_filter(raw, types, 3.0).apply(raw)
    raw = raw.loc[types[raw.index] != "blank"]
    study_rows = (types[raw.index] != "qc").to_numpy()
    raw, _ = missingness_filter(raw.loc[study_rows], s.loc[raw.index[study_rows], "timepoint"]).apply(raw)
    qc_mask = (types[raw.index] == "qc").to_numpy()
    raw, _ = rsd_filter(raw, qc_mask, 0.3).apply(raw)
    # PQN from the measured values only (the imputed cells form no quotient)
    normalised, _ = pqn_normalise(impute_half_minimum(raw), "qc", qc_mask, measured=raw.notna())
    corrected = batch_median_centre(log2_transform(normalised), s.loc[raw.index, "batch"], "qc", qc_mask)
    expected = pareto_scale(corrected, ~qc_mask).loc[~qc_mask]
    pd.testing.assert_frame_equal(result.table, expected, check_names=False, rtol=1e-12)


def test_pqn_recovers_planted_dilution(study):
    x, sheet, ann, dilution = study
    result = process_metabolome(x, sheet, ann)
    factors = result.qc_tables["normalisation_factors"].set_index("sample_id")["factor"]
    batch_shift = np.where(sheet["batch"].iloc[:20] == "b2", 1.2, 1.0)
    ratio = factors.iloc[:20].to_numpy() / (dilution * batch_shift)
    # QC reference mixes both batches, so factors are planted dilution x batch shift / a constant
    assert np.std(np.log(ratio)) < 0.15
    assert np.corrcoef(np.log(factors.iloc[:20]), np.log(dilution * batch_shift))[0, 1] > 0.95


def test_batch_correction_shrinks_qc_dispersion(study):
    x, sheet, ann, _ = study
    plain = process_metabolome(x, sheet, ann)
    corrected = process_metabolome(x, sheet, ann, {"batch_correction": {"enabled": True}})
    d_plain = plain.qc_tables["qc_dispersion"].set_index("stage")["dispersion_ratio"]
    d_corr = corrected.qc_tables["qc_dispersion"].set_index("stage")["dispersion_ratio"]
    assert d_corr["after"] < d_plain["after"]
    rsd = corrected.qc_tables["qc_rsd"]
    after = rsd[rsd["stage"] == "after"].set_index("feature_id")
    before = rsd[rsd["stage"] == "before"].set_index("feature_id").loc[after.index]
    assert (after["rsd"] < before["rsd"]).all()  # batch shift removed
    assert after.loc["good3", "n_qc"] == 5  # the imputed QC value is not counted
    assert "mz" in rsd.columns


def test_qc_tables_shapes(study):
    x, sheet, ann, _ = study
    tables = process_metabolome(x, sheet, ann).qc_tables
    assert set(tables) == {"pca_scores", "qc_dispersion", "qc_rsd", "missingness_per_sample",
                           "missingness_per_feature", "total_signal", "normalisation_factors",
                           "missingness_structure", "platform_missingness", "contrast_missingness",
                           "qc_precision", "drift_fits"}
    pca = tables["pca_scores"]
    assert pca.groupby("stage").size().to_dict() == {"after": 26, "before": 26}
    assert (pca.loc[pca["sample_id"].str.startswith("QC"), "sample_type"] == "qc").all()
    total = tables["total_signal"]
    assert total["injection_order"].tolist() == sorted(total["injection_order"])
    assert len(total) == 29
    assert total.loc[total["sample_type"] == "blank", "total_signal_processed"].isna().all()


def test_deterministic_and_defaults_untouched(study):
    x, sheet, ann, _ = study
    before = copy.deepcopy(DEFAULT_PARAMS)
    params = {"impute": {"method": "knn", "knn_k": 3}, "scale": "auto"}
    a = process_metabolome(x, sheet, ann, params)
    b = process_metabolome(x, sheet, ann, params)
    pd.testing.assert_frame_equal(a.table, b.table)
    for key in a.qc_tables:
        pd.testing.assert_frame_equal(a.qc_tables[key], b.qc_tables[key])
    assert DEFAULT_PARAMS == before
    assert a.params["impute"]["knn_k"] == 3 and a.params["qc_rsd"]["max_rsd"] == 0.3


# --- bad inputs -----------------------------------------------------------------------


def test_non_numeric_intensity_names_file_feature_and_sample(study):
    x, sheet, ann, _ = study
    x = x.astype(object)
    x.loc["S03", "good2"] = "n.d."
    with pytest.raises(InputError) as err:
        process_metabolome(x, sheet, ann, intensities_file="stool_metabolome.tsv")
    message = str(err.value)
    assert "stool_metabolome.tsv" in message and "'good2'" in message and "S03" in message
    assert "'n.d.'" in message and "Fix:" in message


def test_negative_intensity_is_an_input_error(study):
    x, sheet, ann, _ = study
    x.loc["S04", "good1"] = -5.0
    with pytest.raises(InputError, match="negative intensity"):
        process_metabolome(x, sheet, ann)


def test_qc_injection_missing_from_sheet(study):
    x, sheet, ann, _ = study
    with pytest.raises(InputError) as err:
        process_metabolome(x, sheet[sheet["sample_id"] != "QC4"], ann, samples_file="samples.tsv")
    message = str(err.value)
    assert "samples.tsv" in message and "QC4" in message and "sample_type qc" in message


def test_no_feature_left_names_step_and_parameter(study):
    x, sheet, ann, _ = study
    with pytest.raises(InputError) as err:
        process_metabolome(x, sheet, ann, {"qc_rsd": {"max_rsd": 0.001}})
    message = str(err.value)
    assert "step qc_rsd" in message and "metabolome.qc_rsd.max_rsd" in message


def test_bad_params_reported_together(study):
    x, sheet, ann, _ = study
    with pytest.raises(InputError) as err:
        process_metabolome(x, sheet, ann, {"qc_rsd": {"max_rsd": -1}, "scale": "log", "bogus": 1,
                                           "impute": {"knn_k": 2.5}})
    assert len(err.value.problems) == 4
    assert "metabolome.scale" in str(err.value) and "metabolome.bogus" in str(err.value)


def test_group_column_absent(study):
    x, sheet, ann, _ = study
    with pytest.raises(InputError, match="'arm'"):
        process_metabolome(x, sheet, ann, {"missingness": {"group_column": "arm"}})


def test_batch_without_qc_needs_reference_all(study):
    x, sheet, ann, _ = study
    sheet = sheet.copy()
    sheet.loc[sheet["sample_id"].isin(["S00", "S01"]), "batch"] = "b3"
    with pytest.raises(InputError, match="reference: all"):
        process_metabolome(x, sheet, ann, {"batch_correction": {"enabled": True}})
    ok = process_metabolome(x, sheet, ann, {"batch_correction": {"enabled": True, "reference": "all"}})
    assert ok.log.set_index("step").loc["batch_correction", "note"] == ""


# --- real public data -----------------------------------------------------------------


def load_cimcb(shared_data):
    folder = shared_data / "cimcb_gastric_cancer_nmr"
    data = pd.read_csv(folder / "Data_sheet.tsv", sep="\t")
    peaks = pd.read_csv(folder / "Peak_sheet.tsv", sep="\t").set_index("Name")
    x = data.set_index("SampleID").filter(regex=r"^M\d+$")
    sheet = pd.DataFrame({
        "sample_id": data["SampleID"],
        "sample_type": np.where(data["SampleType"] == "QC", "qc", "blood"),  # urine; a study sample here
        "timepoint": data["Class"],
        "injection_order": data["Idx"],
    })
    return x, sheet, peaks


def test_cimcb_tutorial_filter_keeps_52_peaks(shared_data):
    x, sheet, peaks = load_cimcb(shared_data)
    is_qc = (sheet["sample_type"] == "qc").to_numpy()
    # tutorial: 100*sd(ddof=1)/mean over the 17 QC rows (NA skipped) < 20, and % missing over all
    # 140 rows < 10, both strict
    rsd = rsd_filter(x, is_qc, max_rsd=0.20)
    missing = missingness_filter(x, max_missing=0.10, rule="overall", strict=True)
    np.testing.assert_allclose(100 * rsd.value, peaks.loc[x.columns, "QC_RSD"], rtol=1e-12)
    np.testing.assert_allclose(100 * missing.value, peaks.loc[x.columns, "Perc_missing"], rtol=1e-12)
    kept = x.columns[(rsd.keep & missing.keep).to_numpy()]
    published = peaks.index[(peaks["QC_RSD"] < 20) & (peaks["Perc_missing"] < 10)]
    assert len(kept) == 52
    assert list(kept) == list(published)


def test_cimcb_through_the_orchestrator(shared_data):
    x, sheet, peaks = load_cimcb(shared_data)
    ann = peaks.rename(columns={"Label": "name"})[["name"]]
    result = process_metabolome(x, sheet, ann, {
        "missingness": {"rule": "overall", "max_missing": 0.10, "strict": True},
        "qc_rsd": {"max_rsd": 0.20},
    })
    assert result.table.shape == (123, 52)
    assert result.annotations["name"].notna().all()
    log = result.log.set_index("step")
    assert log.loc["qc_rsd", "features_after"] == 52


def load_mtbls79(shared_data):
    folder = shared_data / "mtbls79_dims_qc_metax"
    table = pd.read_csv(folder / "MTBLS79.txt", sep="\t")
    mz = table["name"].astype(float)
    x = table.drop(columns="name").T
    x.columns = [f"mz{v:.5f}" for v in mz]
    samples = pd.read_csv(folder / "MTBLS79_sampleList.txt", sep="\t")
    sheet = pd.DataFrame({
        "sample_id": samples["sample"],
        "subject_id": samples["sample"].str.slice(8),  # C05 re-injected across batches
        "class": samples["class"],
        "sample_type": np.where(samples["class"].isna(), "qc", "blood"),  # metaX: QC rows have class NA
        "batch": samples["sample"].str.slice(0, 7),  # the batch column collapses 01-04 and 07-08
        "injection_order": samples["order"],
    })
    ann = pd.DataFrame({"mz": mz.to_numpy()}, index=x.columns)
    return x, sheet, ann


@pytest.fixture(scope="module")
def mtbls79_default(shared_data):
    x, sheet, ann = load_mtbls79(shared_data)
    return x, sheet, ann, process_metabolome(x, sheet, ann, {"missingness": {"group_column": "class"}})


def test_mtbls79_full_default_pipeline(mtbls79_default):
    x, sheet, ann, result = mtbls79_default
    log = result.log.set_index("step")
    # independent recount: zeros are non-detects; rule per class; QC RSD < 30% on raw QC values
    raw = x.mask(x == 0)
    is_qc = sheet.set_index("sample_id")["sample_type"].reindex(x.index) == "qc"
    classes = sheet.set_index("sample_id")["class"].reindex(x.index)
    present = raw.notna().groupby(classes).mean().max() >= 0.8
    qc = raw[is_qc]
    stable = qc.std(ddof=1) / qc.mean() < 0.3
    assert log.loc["missingness", "features_after"] == present.sum()
    assert log.loc["qc_rsd", "features_after"] == (present & stable).sum()
    assert result.table.shape == (134, (present & stable).sum())
    assert log.loc["blank_filter", "note"] == "skipped: no blank injections"
    assert not result.table.isna().to_numpy().any()
    dispersion = result.qc_tables["qc_dispersion"].set_index("stage")["dispersion_ratio"]
    assert dispersion["after"] < dispersion["before"]


def test_mtbls79_batch_correction(mtbls79_default):
    x, sheet, ann, plain = mtbls79_default
    params = {"missingness": {"group_column": "class"}, "batch_correction": {"enabled": True}}
    result = process_metabolome(x, sheet, ann, params)
    assert result.log.set_index("step").loc["batch_correction", "note"] == ""
    rsd = {r: t.qc_tables["qc_rsd"].query("stage == 'after'")["rsd"].median() for r, t in
           (("plain", plain), ("corrected", result))}
    assert rsd["corrected"] < rsd["plain"]


def test_mtbls79_qc_rlsc_reports_honest_precision(mtbls79_default):
    """Drift correction on: the leave-one-QC-out RSD falls but stays above the in-sample one,
    batch leaves the QC principal components, and the 20 re-injected samples give a replicate RSD."""
    x, sheet, ann, plain = mtbls79_default
    params = {"missingness": {"group_column": "class"},
              "batch_correction": {"enabled": True, "method": "qc_rlsc"}}
    result = process_metabolome(x, sheet, ann, params)
    precision = result.qc_tables["qc_precision"].set_index("stage")
    before, after = precision.loc["before"], precision.loc["after"]
    assert after["correction"] == "qc_rlsc" and before["correction"] == "none"
    assert before["qc_rsd_leave_one_qc_out"] == pytest.approx(before["qc_rsd_in_sample"])
    assert after["qc_rsd_leave_one_qc_out"] < 0.125 < before["qc_rsd_leave_one_qc_out"]  # raw 0.157
    assert after["qc_rsd_in_sample"] < after["qc_rsd_leave_one_qc_out"]  # in-sample is optimistic
    assert before["qc_pc_batch_r2"] > 0.5 and after["qc_pc_batch_r2"] <= 0.05
    assert after["n_replicate_groups"] == 20 and np.isfinite(after["replicate_rsd"])
    fits = result.qc_tables["drift_fits"]
    assert len(fits) == result.table.shape[1] * 8
    assert set(fits["status"]) <= {"corrected", "kept"}
    assert "QC-RLSC" in result.log.set_index("step").loc["batch_correction", "note"]
    # the study samples are corrected too: the processed table differs from the uncorrected one
    assert not np.allclose(result.table.to_numpy(), plain.table.to_numpy())


def test_qc_rlsc_needs_an_injection_order(study):
    x, sheet, ann, _ = study
    params = {"batch_correction": {"enabled": True, "method": "qc_rlsc", "min_qc": 3}}
    with pytest.raises(InputError, match="injection order"):
        process_metabolome(x, sheet.drop(columns="injection_order"), ann, params)
    result = process_metabolome(x, sheet, ann, params)
    assert result.qc_tables["drift_fits"]["batch"].nunique() == 2


def test_mars_ibs_full_default_pipeline(shared_data):
    folder = shared_data / "mmcd_mars_ibs"
    x = pd.read_csv(folder / "mtb.tsv", sep="\t", index_col="Sample")
    meta = pd.read_csv(folder / "metadata.tsv", sep="\t")
    ann = pd.read_csv(folder / "mtb.map.tsv", sep="\t", index_col="Compound").rename(
        columns={"Compound.Name": "name", "HMDB": "hmdb", "KEGG": "kegg"})
    sheet = pd.DataFrame({"sample_id": meta["Sample"], "subject_id": meta["Subject"].astype(str),
                          "timepoint": meta["Timepoint"].astype(str), "sample_type": "stool"})
    result = process_metabolome(x, sheet, ann)
    log = result.log.set_index("step")
    present = x.mask(x == 0).notna().groupby(sheet.set_index("sample_id")["timepoint"]).mean().max() >= 0.8
    assert log.loc["missingness", "features_after"] == present.sum()
    assert log.loc["qc_rsd", "note"].startswith("skipped")
    assert log.loc["normalise", "note"].startswith("no QC injections")
    assert result.table.shape == (len(x), present.sum())
    # the tryptophan panel was not run at T3, T4, T6 and some samples not on a platform at all:
    # exactly those cells stay missing, every other one is imputed
    tp = sheet.set_index("sample_id")["timepoint"].reindex(result.table.index)
    trp = result.table.columns.str.startswith("Tryptophan_")
    assert result.table.loc[tp.isin(["3", "4", "6"]).to_numpy()].loc[:, trp].isna().all().all()
    platform = result.table.columns.str.split("_").str[0]
    raw = x.reindex(index=result.table.index, columns=result.table.columns)
    whole = raw.isna().T.groupby(platform).transform("all").T  # sample not run on the platform
    gap = whole | pd.DataFrame(np.outer(tp.isin(["3", "4", "6"]), trp), index=raw.index, columns=raw.columns)
    pd.testing.assert_frame_equal(result.table.isna(), gap, check_names=False)
    assert result.annotations["hmdb"].notna().sum() > 0


def test_resolve_params_merges_sections_and_keeps_defaults():
    from gutaxis.metabolome.params import resolve_params

    p = resolve_params({"qc_rsd": {"max_rsd": 0.2}, "blank_filter": None, "scale": "auto"})
    assert p["qc_rsd"] == {"enabled": True, "max_rsd": 0.2}
    assert p["blank_filter"] == DEFAULT_PARAMS["blank_filter"]
    assert p["scale"] == "auto" and p["impute"] == DEFAULT_PARAMS["impute"]
    with pytest.raises(InputError, match=r"metabolome\.impute\.methd: unknown key"):
        resolve_params({"impute": {"methd": "knn"}})
