"""The clinical-endpoints module in the workflow: the demo run's tables and figures.

The expected values are computed here independently of the library, from the demo's
raw ``resources/demo/subjects.tsv`` and ``adverse_events.tsv`` (counts, scipy's beta
quantiles for Clopper-Pearson, a direct product-limit estimate, R's survfit when present).
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from gutaxis.clinical.tables import KM_PLOT_COLUMNS
from gutaxis.io.configuration import validate_config
from gutaxis.clinical.response import ABSCOPAL_COLUMNS, RATE_COLUMNS
from gutaxis.clinical.safety import AE_COLUMNS, WORST_GRADE_COLUMNS
from gutaxis.clinical.survival import SURVIVAL_TABLE_COLUMNS, kaplan_meier

pytestmark = pytest.mark.workflow

FIGURES = ("waterfall", "swimmer", "forest", "km", "ae_heatmap")


def read(path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"group": str}, keep_default_na=False, na_values=[""])


@pytest.fixture(scope="module")
def config(demo_run):
    with open(demo_run / "config" / "config.yaml") as handle:
        return validate_config(yaml.safe_load(handle))


@pytest.fixture(scope="module")
def raw_subjects(demo_run) -> pd.DataFrame:
    return pd.read_csv(demo_run / "resources" / "demo" / "subjects.tsv", sep="\t", dtype=str,
                       keep_default_na=False)


@pytest.fixture(scope="module")
def results(demo_run):
    return demo_run / "results"


def test_tables_have_the_documented_columns(results, config):
    clinical = results / "clinical"
    assert read(clinical / "response.tsv").columns.tolist() == RATE_COLUMNS
    assert read(clinical / "abscopal.tsv").columns.tolist() == ABSCOPAL_COLUMNS
    assert read(clinical / "survival.tsv").columns.tolist() == SURVIVAL_TABLE_COLUMNS
    assert read(clinical / "km_curves.tsv").columns.tolist() == KM_PLOT_COLUMNS
    assert read(clinical / "adverse_events.tsv").columns.tolist() == AE_COLUMNS
    assert read(clinical / "adverse_events_worst_grade.tsv").columns.tolist() == WORST_GRADE_COLUMNS
    assert read(clinical / "subject_warnings.tsv").columns.tolist() == ["file", "subject_id", "column", "what",
                                                                        "fix"]
    definitions = list(config["response"]["definitions"])
    assert read(clinical / "responders.tsv").columns.tolist() == ["subject_id", "cohort", *definitions]


def test_responders_one_row_per_subject_with_each_definition(results, config, raw_subjects):
    responders = pd.read_csv(results / "clinical" / "responders.tsv", sep="\t", dtype=str, keep_default_na=False)
    checked = pd.read_csv(results / "inputs" / "subjects.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert sorted(responders["subject_id"]) == sorted(checked["subject_id"])
    assert responders["subject_id"].is_unique
    codes = {("recist", "ORR"): {"CR", "PR"}, ("recist", "DCR"): {"CR", "PR", "SD"},
             ("irecist", "ORR"): {"iCR", "iPR"}, ("irecist", "DCR"): {"iCR", "iPR", "iSD"}}
    column = {"recist": "best_response", "irecist": "best_response_irecist"}
    raw = raw_subjects.set_index("subject_id")
    for name, definition in config["response"]["definitions"].items():
        response = raw.loc[responders["subject_id"], column[definition["criterion"]]].to_numpy()
        expected = np.where(np.isin(response, list(codes[(definition["criterion"], definition["endpoint"])])),
                            "responder", "non_responder")
        expected[response == "NE"] = ""
        assert responders[name].tolist() == expected.tolist(), name
    assert (responders["cohort"].to_numpy() == raw.loc[responders["subject_id"], "cohort"].to_numpy()).all()


def test_overall_orr_dcr_equal_independent_counts_with_exact_ci(results, config, raw_subjects):
    response = read(results / "clinical" / "response.tsv")
    overall = response[response["group_var"] == "overall"].set_index(["criterion", "endpoint"])
    include = config["response"]["not_evaluable"] == "include"
    for criterion, column, orr, dcr in (("recist", "best_response", {"CR", "PR"}, {"CR", "PR", "SD"}),
                                        ("irecist", "best_response_irecist", {"iCR", "iPR"}, {"iCR", "iPR", "iSD"})):
        codes = raw_subjects[column]
        n = len(codes) if include else int((codes != "NE").sum())
        for endpoint, positive in (("ORR", orr), ("DCR", dcr)):
            x = int(codes.isin(positive).sum())
            row = overall.loc[(criterion, endpoint)]
            assert row["n_responders"] == x and row["n_denominator"] == n
            assert row["n_not_evaluable"] == int((codes == "NE").sum())
            assert row["rate"] == pytest.approx(x / n, abs=1e-9)
            low = stats.beta.ppf(0.025, x, n - x + 1) if x > 0 else 0.0
            high = stats.beta.ppf(0.975, x + 1, n - x) if x < n else 1.0
            assert row["ci_low"] == pytest.approx(low, abs=1e-8)
            assert row["ci_high"] == pytest.approx(high, abs=1e-8)
            assert row["not_evaluable_handling"] == config["response"]["not_evaluable"]
    # the cohort rows partition the study
    cohorts = response[(response["group_var"] == "cohort") & (response["criterion"] == "recist")
                       & (response["endpoint"] == "DCR")]
    assert cohorts["n_total"].sum() == len(raw_subjects)
    assert set(cohorts["group"]) == set(raw_subjects["cohort"])
    assert set(response["group_var"]) == {"overall", "cohort", "study+dose_gy"}


def test_abscopal_incidence_counts(results, raw_subjects):
    abscopal = read(results / "clinical" / "abscopal.tsv")
    overall = abscopal[abscopal["group_var"] == "overall"].iloc[0]
    assert overall["n_yes"] == int((raw_subjects["abscopal"] == "yes").sum())
    assert overall["n_not_evaluable"] == int((raw_subjects["abscopal"] == "NE").sum())
    assert 0 <= overall["ci_low"] <= overall["rate"] <= overall["ci_high"] <= 1


def median_from_curve(times: np.ndarray, surv: np.ndarray) -> float:
    """First time S(t) <= 1/2; where S sits exactly at 1/2, the midpoint to the next drop (R's survfit)."""
    reached = np.flatnonzero(surv <= 0.5 + 1e-12)
    if reached.size == 0:
        return np.nan
    first = reached[0]
    lower = np.flatnonzero(surv < surv[first] - 1e-12)
    if abs(surv[first] - 0.5) < 1e-12 and lower.size:
        return float((times[first] + times[lower[0]]) / 2)
    return float(times[first])


def product_limit(time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The product-limit estimate at each event time, computed directly."""
    event_times = np.unique(time[event == 1])
    factors = [1 - np.sum((time == t) & (event == 1)) / np.sum(time >= t) for t in event_times]
    return event_times, np.cumprod(factors)


def test_overall_pfs2_median_equals_kaplan_meier_on_the_subjects_table(results, config, raw_subjects):
    survival = read(results / "clinical" / "survival.tsv")
    spec = config["clinical"]["survival_endpoints"]["PFS2"]
    time = raw_subjects[spec["time"]].astype(float).to_numpy()
    event = raw_subjects[spec["event"]].astype(int).to_numpy()
    rows = survival[(survival["endpoint"] == "PFS2") & (survival["group_var"] == "overall")].set_index("quantity")
    curve = kaplan_meier(time, event)
    from_library = median_from_curve(curve["time"].to_numpy(), curve["survival"].to_numpy())
    direct = median_from_curve(*product_limit(time, event))
    assert from_library == pytest.approx(direct)
    assert rows.loc["median", "estimate"] == pytest.approx(direct)
    assert rows.loc["n", "estimate"] == len(time) and rows.loc["n_events", "estimate"] == event.sum()
    for landmark in config["clinical"]["landmarks"]:
        event_times, surv = product_limit(time, event)
        expected = surv[event_times <= landmark][-1] if (event_times <= landmark).any() else 1.0
        got = survival[(survival["endpoint"] == "PFS2") & (survival["group_var"] == "overall")
                       & (survival["quantity"] == "survival") & (survival["time"] == landmark)]["estimate"]
        assert float(got.iloc[0]) == pytest.approx(expected)


@pytest.mark.rcheck
def test_overall_pfs2_median_and_ci_match_r_survfit(results, config, raw_subjects, tmp_path):
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript not installed")
    if subprocess.run(["Rscript", "-e", "library(survival)"], capture_output=True).returncode != 0:
        pytest.skip("R package 'survival' not installed")
    conf_type = config["clinical"]["km_conf_type"]
    raw_subjects[["pfs2_months", "pfs2_event"]].to_csv(tmp_path / "pfs2.csv", index=False)
    code = f"""
    suppressMessages(library(survival)); options(digits = 17)
    d <- read.csv("{tmp_path / 'pfs2.csv'}")
    fit <- survfit(Surv(pfs2_months, pfs2_event) ~ 1, data = d, conf.type = "{conf_type}",
                   conf.int = {config["clinical"]["conf_level"]})
    t <- summary(fit)$table
    cat(t["median"], t[grep("LCL", names(t))], t[grep("UCL", names(t))], sep = "\\n")
    """
    done = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    r_median, r_low, r_high = (float(v) if v != "NA" else np.nan for v in done.stdout.split())
    survival = read(results / "clinical" / "survival.tsv")
    row = survival[(survival["endpoint"] == "PFS2") & (survival["group_var"] == "overall")
                   & (survival["quantity"] == "median")].iloc[0]
    np.testing.assert_allclose([row["estimate"], row["ci_low"], row["ci_high"]], [r_median, r_low, r_high],
                               rtol=1e-9, equal_nan=True)


def test_numbers_at_risk_under_the_km_plot_are_direct_counts(results, raw_subjects):
    curves = read(results / "clinical" / "km_curves.tsv")
    ticks = curves[(curves["record"] == "at_risk") & (curves["group_var"] == "overall")]
    columns = {"PFS2": "pfs2_months", "OS": "os_months"}
    for endpoint, rows in ticks.groupby("endpoint"):
        time = raw_subjects[columns[endpoint]].astype(float).to_numpy()
        assert rows["n_risk"].tolist() == [int(np.sum(time >= t)) for t in rows["time"]]
        assert rows["time"].iloc[0] == 0 and rows["time"].iloc[-1] >= time.max()
    by_cohort = curves[(curves["record"] == "at_risk") & (curves["group_var"] == "cohort") & (curves["time"] == 0)]
    for endpoint, rows in by_cohort.groupby("endpoint"):
        assert rows.set_index("group")["n_risk"].to_dict() == raw_subjects["cohort"].value_counts().to_dict()
    censored = curves[(curves["record"] == "step") & (curves["group_var"] == "overall")
                      & (curves["endpoint"] == "PFS2")]["n_censor"].sum()
    assert censored == int((raw_subjects["pfs2_event"] == "0").sum())


def test_adverse_event_incidence_equals_patient_counts(results, demo_run, raw_subjects):
    events = pd.read_csv(demo_run / "resources" / "demo" / "adverse_events.tsv", sep="\t", dtype=str)
    table = read(results / "clinical" / "adverse_events.tsv")
    overall = table[(table["group_var"] == "overall") & (table["subset"] == "all")].set_index("term")
    assert overall.loc["Any AE", "n_patients_any_grade"] == events["subject_id"].nunique()
    severe = events[events["grade"].astype(int) >= 3]
    assert overall.loc["Any AE", "n_patients_grade3plus"] == severe["subject_id"].nunique()
    assert (overall["n_patients_in_group"] == len(raw_subjects)).all()
    for term, rows in events.groupby("term"):
        assert overall.loc[term, "n_patients_any_grade"] == rows["subject_id"].nunique()
    if "attribution" in events.columns:
        related = events[events["attribution"].isin(["possible", "probable", "definite"])]
        subset = table[(table["group_var"] == "overall") & (table["subset"] == "treatment_related")]
        assert subset.set_index("term").loc["Any AE", "n_patients_any_grade"] == related["subject_id"].nunique()


def test_every_configured_figure_format_exists(results, config):
    formats = config["style"]["formats"]
    for name in FIGURES:
        for fmt in formats:
            path = results / "figures" / "clinical" / f"{name}.{fmt}"
            assert path.is_file() and path.stat().st_size > 1000, path
        source = results / "figures" / "clinical" / f"{name}.source.tsv"
        assert source.is_file() and len(read(source)) > 0, source
    if "svg" in formats:  # text stays editable
        assert "<text" in (results / "figures" / "clinical" / "km.svg").read_text()


def test_a_survival_time_missing_for_one_subject_stops_the_rule_with_a_clear_message(repo, tmp_path):
    # The sheet schema lets an empty optional cell through ("not recorded"); the survival
    # rule then finds PFS2 recorded for every subject but one and says so, without a traceback.
    shutil.copytree(repo / "tests" / "data" / "good", tmp_path, dirs_exist_ok=True)
    subjects = pd.read_csv(tmp_path / "subjects.tsv", sep="\t", dtype=str, keep_default_na=False)
    subjects.loc[subjects["subject_id"] == "L2", "pfs2_months"] = ""
    subjects.to_csv(tmp_path / "subjects.tsv", sep="\t", index=False)
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"), "--directory", str(tmp_path),
         "--configfile", str(tmp_path / "config.yaml"), "--cores", "1", "results/clinical/survival.tsv"],
        capture_output=True, text=True, timeout=600)
    assert done.returncode != 0
    assert "subjects.tsv: column 'pfs2_months', subject L2" in done.stderr
    assert "PFS2 time is missing" in done.stderr and "Fix:" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
