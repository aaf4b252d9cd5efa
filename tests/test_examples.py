"""The example configs on real public data (config/examples/<name>/).

For every example folder: its make_sheets.py writes the sample sheet and subjects
table from the data set's own metadata (checked against the counts the data set's
SOURCE.md gives), and ``snakemake -n`` plans the workflow with that config (the
study type it declares, a non-empty DAG). The fast examples (FULL_RUN) also run end
to end, and their headline result is checked against an independent computation on
the raw table. Each test skips, naming the path, when ../shared/data/<name> is
absent (set GUTAXIS_SHARED_DATA to use another copy).

The configs name their data as ``../shared/data/<name>/...`` relative to the
repository root; here every such path is replaced by the absolute data directory
and the sheets by the ones written into ``tmp_path``, and snakemake runs with
``tmp_path`` as its working directory, so nothing is written into the repository.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, SHARED_DATA, run_snakemake
from scipy import stats

pytestmark = pytest.mark.workflow

EXAMPLES = REPO / "config" / "examples"
NAMES = sorted(p.name for p in EXAMPLES.iterdir() if (p / "config.yaml").is_file())
#: examples small enough for a full run in the test suite (CHIKV: 86 samples x 28 subsets)
FULL_RUN = ["michlmayr_chikv_cytof_pbmc"]

#: what each make_sheets.py must write, from the data sets' SOURCE.md:
#: (biological samples, excluded samples, subjects, study type)
EXPECTED = {
    "thriene_yogurt_oats": (462, 24, 110, "crossover"),  # 22 repeat SCFA samples excluded
    "michlmayr_chikv_cytof_pbmc": (86, 0, 43, "intervention"),
    "mmcd_mars_ibs": (444, 10, 75, "intervention"),
    "ici_responders_ogu_11cohorts": (627, 0, 627, "baseline_only"),
    "hmp2_maaslin2": (1595, 0, 130, "cohort"),
}


def test_every_example_folder_is_complete():
    assert set(NAMES) == set(EXPECTED), "a new example needs its row in EXPECTED"
    for name in NAMES:
        for part in ("config.yaml", "make_sheets.py", "README.md"):
            assert (EXAMPLES / name / part).is_file(), f"{name}/{part} is missing"
        text = (EXAMPLES / name / "config.yaml").read_text()
        # the one data path, relative to the repository root
        assert f"../shared/data/{name}" in text
        readme = (EXAMPLES / name / "README.md").read_text()
        assert "## Measured" in readme and "make_sheets.py" in readme
    listing = (EXAMPLES / "README.md").read_text()
    assert "config/config.yaml" in listing and all(name in listing for name in NAMES)


def _data(name: str) -> Path:
    data = SHARED_DATA / name
    if not data.is_dir():
        pytest.skip(f"public data of example {name} not found at {data} (set GUTAXIS_SHARED_DATA)")
    return data


def _rewrite(value, prefix: str, data: Path):
    """Every string starting with the config's data prefix, made absolute."""
    if isinstance(value, dict):
        return {k: _rewrite(v, prefix, data) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite(v, prefix, data) for v in value]
    if isinstance(value, str) and value.startswith(prefix):
        return str(data) + value[len(prefix):]
    return value


def prepare(name: str, tmp_path: Path) -> Path:
    """Sheets from make_sheets.py and a config pointing at them and at the data; returns the config."""
    data = _data(name)
    sheets = tmp_path / "sheets"
    result = subprocess.run([sys.executable, str(EXAMPLES / name / "make_sheets.py"), "--data", str(data),
                             "--out", str(sheets)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    config = yaml.safe_load((EXAMPLES / name / "config.yaml").read_text())
    config = _rewrite(config, f"../shared/data/{name}", data)
    config["samples"] = str(sheets / "samples.tsv")
    config["subjects"] = str(sheets / "subjects.tsv")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.mark.parametrize("name", NAMES)
def test_make_sheets_follows_the_data_sets_metadata(name, tmp_path):
    prepare(name, tmp_path)
    samples = pd.read_csv(tmp_path / "sheets/samples.tsv", sep="\t", dtype=str, keep_default_na=False)
    subjects = pd.read_csv(tmp_path / "sheets/subjects.tsv", sep="\t", dtype=str, keep_default_na=False)
    n_samples, n_excluded, n_subjects, study_type = EXPECTED[name]
    assert len(samples) == n_samples and samples["sample_id"].is_unique
    assert len(subjects) == n_subjects and subjects["subject_id"].is_unique
    assert set(samples["subject_id"]) <= set(subjects["subject_id"])
    excluded = samples.get("exclude", pd.Series("", index=samples.index)) == "yes"
    assert int(excluded.sum()) == n_excluded
    if n_excluded:
        assert (samples.loc[excluded, "exclude_reason"].str.len() > 10).all()
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert config["design"]["study_type"] == study_type
    # analysed samples carry a declared timepoint; excluded ones need not (MARS flares)
    assert set(samples.loc[~excluded, "timepoint"]) <= set(config["design"]["timepoints"])
    assert set(subjects["cohort"]) <= set(config["design"]["cohorts"])
    if study_type == "crossover":
        # each subject: both interventions, pre and post of one intervention in one period
        sides = samples.assign(arm=samples["timepoint"].str.split("_").str[0])
        periods = sides.groupby(["subject_id", "arm"])["period"].nunique()
        assert (periods == 1).all()
        assert (sides.groupby("subject_id")["arm"].nunique() == 2).all()
    if name == "thriene_yogurt_oats":
        authors = excluded & ~samples["exclude_reason"].str.startswith("repeat SCFA")
        assert set(samples.loc[authors, "sample_id"]) == {"JH379", "JH380"}
        scfa = pd.read_csv(_data(name) / "scfa_long.tsv", sep="\t", usecols=["Client Sample ID"])
        assert set(samples["scfa_id"]) <= set(scfa["Client Sample ID"].astype(str))
    if study_type == "baseline_only":
        assert set(samples["timepoint"]) == {"baseline"}
        assert set(subjects["response"]) == {"R", "NR"}


@pytest.mark.parametrize("name", NAMES)
def test_example_dry_run_plans_the_study(name, tmp_path):
    config = prepare(name, tmp_path)
    result = run_snakemake(tmp_path, "-n", "--configfile", str(config), timeout=900)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    study_type = EXPECTED[name][3]
    assert f"study type {study_type}" in out
    total = re.search(r"^total\s+(\d+)", out, flags=re.MULTILINE)
    assert total and int(total.group(1)) > 5, out[-2000:]
    if study_type in ("intervention", "crossover"):
        # no response, so no responder models and no responder table figures
        assert "models_fit" not in out
    if study_type == "baseline_only":
        assert "models_fit" in out and "diversity_permanova" in out
    if study_type == "cohort":
        # the formula models only: nothing that assumes pairs or one sample per subject
        assert "differential_model" in out
        assert not re.search(r"^(differential|diversity_\w+|integration_\w+|models_fit)\s", out,
                             flags=re.MULTILINE)


#: samples each modality keeps after import (the sheet's samples minus the excluded ones)
IMPORTED = {
    "thriene_yogurt_oats": {"taxa": 438, "scfa": 437},  # one SCFA sample has no value
    "michlmayr_chikv_cytof_pbmc": {"immune": 86},
    "mmcd_mars_ibs": {"taxa": 434, "metabolites": 434},
    "ici_responders_ogu_11cohorts": {"taxa": 627},
    "hmp2_maaslin2": {"taxa": 1595},
}


@pytest.mark.parametrize("name", NAMES)
def test_example_tables_import_with_the_config_options(name, tmp_path):
    """Each modality read with its configured importer options (what the import jobs will do),
    without running the workflow: an option the importer does not know fails here."""
    from gutaxis.io.sheets import split_excluded
    from gutaxis.io.study import import_modality
    from gutaxis.io.tables import read_sheet

    config = yaml.safe_load(prepare(name, tmp_path).read_text())
    sheet, excluded, problems = split_excluded(read_sheet(config["samples"]), config["samples"])
    assert not problems
    assert set(config["modalities"]) == set(IMPORTED[name])
    for modality, spec in config["modalities"].items():
        spec = {"options": {}, "min_total": 0.0, **spec}
        imported = import_modality(spec, sheet, config["samples"], config["design"]["duplicates"],
                                   excluded["sample_id"])
        assert imported.table.shape[0] == IMPORTED[name][modality], modality
        assert not set(imported.table.index) & set(excluded["sample_id"])
        if spec["kind"] == "taxonomy" and imported.notes.get("units") != "counts":
            assert np.allclose(imported.table.sum(axis=1), 1.0)


def _logit(p):
    return np.log(p / (1 - p))


@pytest.mark.slow_example
@pytest.mark.parametrize("name", FULL_RUN)
def test_fast_example_runs_end_to_end(name, tmp_path):
    config = prepare(name, tmp_path)
    result = run_snakemake(tmp_path, "--cores", "2", "--configfile", str(config), timeout=1800)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    assert "Nothing to be done" in (r := run_snakemake(tmp_path, "-n", "--configfile", str(config))).stdout + r.stderr
    study = pd.read_csv(tmp_path / "results/study.tsv", sep="\t", dtype=str)
    assert study.loc[study["item"] == "study_type", "value"].tolist() == ["intervention"]

    # CHIKV: convalescent - acute on the logit scale, checked against scipy on the raw table
    raw = pd.read_csv(_data(name) / "assigment_subset_frequencies.csv").drop(columns=["Unnamed: 0"])
    raw = raw.set_index("CellSubset")
    sheet = pd.read_csv(tmp_path / "sheets/samples.tsv", sep="\t", dtype=str)
    acute = sheet[sheet["timepoint"] == "acute"].set_index("subject_id")["sample_id"]
    conv = sheet[sheet["timepoint"] == "convalescent"].set_index("subject_id")["sample_id"]
    pairs = acute.index.intersection(conv.index)
    results = pd.read_csv(tmp_path / "results/differential/immune/convalescent_vs_acute.tsv", sep="\t")
    # subsets with no zero cell (the logit is then exact, no clipping); sign from the publication:
    # monocytes and pDC expand in the acute phase (fall at convalescence), naive CD8 and memory B rise
    for subset, sign in (("Monocyte (CD14+ CD16+)", -1), ("Monocyte (CD14+ CD16-)", -1),
                         ("CD8+ T Cell (Naive)", 1), ("B Cell (Memory)", 1)):
        pre = raw.loc[subset, acute[pairs]].to_numpy(float)
        post = raw.loc[subset, conv[pairs]].to_numpy(float)
        assert (pre > 0).all() and (post > 0).all()
        row = results[(results["feature"] == subset) & (results["method"] == "wilcoxon")].iloc[0]
        expected = stats.wilcoxon(_logit(post), _logit(pre)).pvalue
        assert row["p"] == pytest.approx(expected, rel=1e-6)
        assert np.sign(row["effect"]) == sign and row["q"] < 1e-4
        t_row = results[(results["feature"] == subset) & (results["method"] == "paired_t")].iloc[0]
        assert t_row["effect"] == pytest.approx(np.mean(_logit(post) - _logit(pre)), rel=1e-9)
        assert t_row["p"] == pytest.approx(stats.ttest_rel(_logit(post), _logit(pre)).pvalue, rel=1e-6)

    # nothing in the figures or the report pretends there is a response
    for source in (tmp_path / "results/figures").rglob("*.source.tsv"):
        text = source.read_text()
        assert "Not evaluable" not in text and "no pairs" not in text, source
    report = run_snakemake(tmp_path, "--configfile", str(config), "--report", str(tmp_path / "report.zip"))
    assert report.returncode == 0, report.stderr[-3000:]
    assert "WARNING" not in report.stderr, report.stderr[-3000:]
    assert (tmp_path / "report.zip").stat().st_size > 0


@pytest.mark.slow_example
def test_mars_metabolome_invents_no_change(tmp_path):
    """MARS T6 - T0 (issue: 32 of 38 metabolites called, the tryptophan panel imputed at T6).

    The tryptophan panel was not run at T3, T4 and T6: none of its features may be tested at T6
    (each listed "not measured at T6"), the NMR calls may exceed by at most one those of a paired
    t test on the raw, unimputed log2 concentrations, and MOFA may not load an unmeasured block.
    """
    name = "mmcd_mars_ibs"
    config = prepare(name, tmp_path)
    targets = ["results/differential/metabolites/t6_vs_t0.tsv", "results/integration/mofa/loadings.tsv",
               "results/integration/associations/taxa__metabolites_T6.tsv"]
    result = run_snakemake(tmp_path, *targets, "--cores", "2", "--configfile", str(config), timeout=1800)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    results = pd.read_csv(tmp_path / "results/differential/metabolites/t6_vs_t0.tsv", sep="\t")
    untested = pd.read_csv(tmp_path / "results/differential/metabolites/t6_vs_t0.untested.tsv", sep="\t")
    raw = pd.read_csv(_data(name) / "mtb.tsv", sep="\t", index_col="Sample")
    tryptophan = [c for c in raw.columns if c.startswith("Tryptophan_")]
    assert len(tryptophan) == 12
    assert not results["feature"].str.startswith("Tryptophan_").any()
    reasons = untested.set_index("feature").loc[tryptophan, "reason"]
    assert reasons.str.startswith("not measured at T6").all()

    # NMR: the workflow's paired calls against a paired t test on the raw log2 values (BH over NMR)
    sheet = pd.read_csv(tmp_path / "sheets/samples.tsv", sep="\t", dtype=str, keep_default_na=False)
    sheet = sheet[sheet["exclude"] != "yes"]
    at = {t: sheet[sheet["timepoint"] == t].set_index("subject_id")["sample_id"] for t in ("T0", "T6")}
    pairs = at["T0"].index.intersection(at["T6"].index)
    nmr = [c for c in raw.columns if c.startswith("NMR_")]
    d = np.log2(raw.loc[at["T6"][pairs], nmr].to_numpy()) - np.log2(raw.loc[at["T0"][pairs], nmr].to_numpy())
    p = np.array([stats.ttest_1samp(col[~np.isnan(col)], 0.0).pvalue for col in d.T])
    raw_calls = int((stats.false_discovery_control(p) < 0.1).sum())
    for method in ("paired_t", "wilcoxon"):
        rows = results[(results["method"] == method) & results["feature"].isin(nmr)]
        assert len(rows) == len(nmr)
        assert int((rows["q"] < 0.1).sum()) <= raw_calls + 1, method
    # the mixed model's T6 term against the same model on the raw log2 values (statsmodels, Wald z)
    import statsmodels.formula.api as smf

    subjects = pd.read_csv(tmp_path / "sheets/subjects.tsv", sep="\t", dtype=str).set_index("subject_id")
    visits = sheet.set_index("sample_id")
    p_raw = []
    for feature in nmr:
        frame = pd.DataFrame({"y": np.log2(raw.loc[visits.index, feature]), "tp": visits["timepoint"],
                              "s": visits["subject_id"]})
        frame["cohort"] = subjects.loc[frame["s"], "cohort"].to_numpy()
        frame = frame.dropna()
        fit = smf.mixedlm("y ~ C(tp, Treatment('T0')) + cohort", frame, groups=frame["s"]).fit(reml=True)
        p_raw.append(fit.pvalues["C(tp, Treatment('T0'))[T.T6]"])
    raw_lmm_calls = int((stats.false_discovery_control(np.array(p_raw)) < 0.1).sum())
    lmm = results[(results["method"] == "lmm") & (results["term"] == "timepoint[T6]") & results["feature"].isin(nmr)]
    assert int((lmm["q"] < 0.1).sum()) <= raw_lmm_calls + 1

    # MOFA: the unmeasured panel is left out with its reason, and no block dominates the metabolites
    dropped = pd.read_csv(tmp_path / "results/integration/mofa/dropped_features.tsv", sep="\t")
    assert set(tryptophan) <= set(dropped.loc[dropped["reason"].str.startswith("not measured"), "feature_id"])
    loadings = pd.read_csv(tmp_path / "results/integration/mofa/loadings.tsv", sep="\t")
    assert not loadings["feature_id"].isin(tryptophan).any()
    variance = pd.read_csv(tmp_path / "results/integration/mofa/variance_explained.tsv", sep="\t")
    per_factor = variance[(variance["view"] == "metabolites") & (variance["factor"] != "all")]
    assert per_factor["variance_explained"].max() < 0.2  # was 0.387: factor 1 = the imputed panel
    # the T6 association view leaves the panel out with the same reason
    view = pd.read_csv(tmp_path / "results/integration/associations/taxa__metabolites_T6.dropped.tsv", sep="\t")
    gaps = view[view["reason"].str.startswith("not measured at T6")]
    assert sorted(gaps["id"]) == sorted(tryptophan)


@pytest.mark.slow_example
def test_hmp2_formula_model_recovers_maaslin2(tmp_path):
    """MaAsLin 2's own test model through the workflow (issue 18): TSS + AST, diagnosis +
    three dysbiosis flags + antibiotics + age, random intercepts for site and subject, BH over
    the model. Against MaAsLin 2's expected_results_run1.tsv (207 associations at q <= 0.25):
    at least 95 % recovered at q <= 0.25, signs agree on at least 99 %, coefficient Spearman
    at least 0.99."""
    name = "hmp2_maaslin2"
    config = prepare(name, tmp_path)
    target = "results/differential/taxa/models/maaslin2_run1.tsv"
    result = run_snakemake(tmp_path, target, "--cores", "2", "--configfile", str(config), timeout=1800)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    ours = pd.read_csv(tmp_path / target, sep="\t", keep_default_na=False, na_values=[""])
    expected = pd.read_csv(_data(name) / "reference_results/expected_results_run1.tsv", sep="\t")
    # MaAsLin 2 writes species names with dots for spaces and hyphens
    ours["key"] = (ours["feature"].str.replace(r"[ -]", ".", regex=True) + "|" + ours["variable"]
                   + "|" + ours["value"].astype(str))
    expected["key"] = expected["feature"] + "|" + expected["metadata"] + "|" + expected["value"].astype(str)
    both = expected.merge(ours, on="key", how="left", validate="one_to_one")
    assert both["effect"].notna().all(), both.loc[both["effect"].isna(), "key"].tolist()
    recall = float((both["q"] <= 0.25).mean())
    sign = float((np.sign(both["coef"]) == np.sign(both["effect"])).mean())
    rho = stats.spearmanr(both["coef"], both["effect"])[0]
    assert recall >= 0.95 and sign >= 0.99 and rho >= 0.99, (recall, sign, rho)
    # every feature's fitted formula is written, with both random intercepts
    formulas = pd.read_csv(tmp_path / "results/differential/taxa/models/maaslin2_run1.formulas.tsv", sep="\t")
    assert formulas["formula"].str.endswith("+ (1 | site) + (1 | subject_id)").all()
    dropped = pd.read_csv(tmp_path / "results/differential/taxa/models/maaslin2_run1.dropped_samples.tsv",
                          sep="\t")
    assert len(dropped) == 19 and dropped["reason"].str.startswith("missing").all()


def test_ici_leave_one_cohort_out_table_is_committed():
    """Issue 19: the ICI example's per-cohort held-out AUROC beside the published log ratio's."""
    table = pd.read_csv(EXAMPLES / "ici_responders_ogu_11cohorts" / "per_cohort_auroc.tsv", sep="\t")
    held_out = table[table["workflow_auroc"].notna() & (table["cohort"] != "pooled")]
    assert len(held_out) == 11 and held_out["workflow_n"].sum() == 627
    assert ((held_out["workflow_low"] <= held_out["workflow_auroc"])
            & (held_out["workflow_auroc"] <= held_out["workflow_high"])).all()
    config = yaml.safe_load((EXAMPLES / "ici_responders_ogu_11cohorts" / "config.yaml").read_text())
    assert config["models"]["validation"] == {"design": "leave_one_group_out", "group": "cohort"}
