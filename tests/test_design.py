"""Study types, the study plan, sample exclusion and a config that stands alone.

Unit tests build the tiny valid study of tests/data/good in a tmp dir and change one
thing; the workflow tests dry-run the repository's Snakefile on it.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import run_snakemake
from gutaxis.io.design import plan_study
from gutaxis.io.errors import InputError
from gutaxis.clinical.response import label_column_responders, responder_labels
from gutaxis.io.study import load_study, validate_study

GOOD = Path(__file__).resolve().parent / "data" / "good"


@pytest.fixture
def study_dir(tmp_path, monkeypatch):
    shutil.copytree(GOOD, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def good_config() -> dict:
    return yaml.safe_load((GOOD / "config.yaml").read_text())


def edit_sheet(path: Path, change) -> None:
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    table = change(table)
    table.to_csv(path, sep="\t", index=False)


def problems_of(config: dict) -> str:
    with pytest.raises(InputError) as caught:
        load_study(config)
    assert all(p.fix for p in caught.value.problems)
    return str(caught.value)


# --------------------------------------------------------------------------- study types


def test_oncology_plan_has_every_analysis(study_dir):
    plan = load_study(good_config())["plan"]
    assert plan.study_type == "oncology"
    assert plan.response == "dcr_recist" or plan.response in plan.definitions
    assert plan.has_response and plan.paired
    assert set(plan.survival_endpoints) == {"PFS2", "OS"}
    assert [c["name"] for c in plan.contrasts] == ["post_vs_baseline"]
    # the tiny study records everything but the adverse-event-free parts are none
    assert not any(analysis.startswith("response") for analysis, _ in plan.skipped)


def test_intervention_has_no_response_and_says_so(study_dir):
    config = good_config()
    config["design"]["study_type"] = "intervention"
    plan = load_study(config)["plan"]
    assert plan.response is None and not plan.definitions
    assert plan.paired
    reasons = dict(plan.skipped)
    assert "intervention" in reasons["response analyses"]
    assert "skipped: response analyses" in plan.summary()
    assert ("skipped", "response analyses: a study of type intervention has no tumour response") in set(
        map(tuple, plan.table().to_numpy())
    )


def test_intervention_runs_without_response_columns(study_dir):
    edit_sheet(study_dir / "subjects.tsv",
               lambda t: t.drop(columns=["best_response", "best_response_irecist", "target_lesion_change_pct"]))
    config = good_config()
    config["design"]["study_type"] = "intervention"
    plan = load_study(config)["plan"]
    assert plan.response is None
    assert plan.patient_plots == frozenset()


def test_oncology_without_its_response_column_points_to_intervention(study_dir):
    edit_sheet(study_dir / "subjects.tsv", lambda t: t.drop(columns=["best_response"]))
    message = problems_of(good_config())
    assert "column 'best_response'" in message
    assert "design.study_type to intervention" in message


def test_baseline_only_refuses_contrasts_and_skips_pairs(study_dir):
    config = good_config()
    config["design"]["study_type"] = "baseline_only"
    assert "a baseline-only study has no paired contrasts" in problems_of(config)
    config["design"]["contrasts"] = []
    plan = load_study(config)["plan"]
    assert not plan.paired and plan.has_response
    assert any(a.startswith("paired analyses") for a, _ in plan.skipped)


def test_paired_study_needs_a_contrast(study_dir):
    config = good_config()
    config["design"]["contrasts"] = []
    assert "needs at least one paired contrast" in problems_of(config)


def test_survival_endpoint_without_its_columns_is_skipped(study_dir):
    edit_sheet(study_dir / "subjects.tsv", lambda t: t.drop(columns=["pfs2_months", "pfs2_event"]))
    plan = load_study(good_config())["plan"]
    assert "PFS2" not in plan.survival_endpoints and "OS" in plan.survival_endpoints
    assert "pfs2_months, pfs2_event" in dict(plan.skipped)["survival endpoint PFS2"]


# --------------------------------------------------------------------------- crossover


def crossover_sheet(table: pd.DataFrame, periods: dict) -> pd.DataFrame:
    table["period"] = [periods.get(tp, "") if s else "" for tp, s in zip(table["timepoint"], table["subject_id"])]
    return table


def test_crossover_needs_a_period_column(study_dir):
    config = good_config()
    config["design"]["study_type"] = "crossover"
    assert "a crossover study needs the period of every sample" in problems_of(config)


def test_crossover_contrast_within_one_period(study_dir):
    config = good_config()
    config["design"]["study_type"] = "crossover"
    edit_sheet(study_dir / "samples.tsv", lambda t: crossover_sheet(t, {"baseline": "1", "post": "1"}))
    plan = load_study(config)["plan"]
    assert plan.period == "period"
    # pre and post of a contrast in different periods: not a within-period change
    edit_sheet(study_dir / "samples.tsv", lambda t: crossover_sheet(t, {"baseline": "1", "post": "2"}))
    message = problems_of(config)
    assert "are in different periods" in message and "column 'period'" in message


# --------------------------------------------------------------------------- responder label columns


def test_label_column_responders_by_hand():
    labels = label_column_responders(pd.Series([" R", "NR", "", "NA", "R "]), ["R"], ["NR"])
    assert list(labels) == ["responder", "non_responder", "", "", "responder"]


def test_label_column_definition_plans_and_labels(study_dir):
    edit_sheet(study_dir / "subjects.tsv",
               lambda t: t.assign(response=["R", "NR", "NR", ""]).drop(columns=["best_response"]))
    config = good_config()
    config["response"] = {"definitions": {"rnr": {"column": "response", "responder": ["R"],
                                                  "non_responder": ["NR"]}}, "primary": ""}
    plan = load_study(config)["plan"]
    assert plan.response == "rnr" and plan.recist_definitions == {}
    assert "ORR and DCR" in dict(plan.skipped)
    subjects = pd.read_csv(study_dir / "subjects.tsv", sep="\t", dtype=str, keep_default_na=False)
    table = responder_labels(subjects, plan.definitions)
    assert dict(zip(table["subject_id"], table["rnr"])) == {
        "L1": "responder", "L2": "non_responder", "E1": "non_responder", "E2": ""}


# --------------------------------------------------------------------------- exclusion


def test_excluded_samples_leave_every_table(study_dir):
    edit_sheet(study_dir / "samples.tsv", lambda t: t.assign(
        exclude=["yes" if s == "L1_post_ST" else "" for s in t["sample_id"]],
        exclude_reason=["not prepared as instructed" if s == "L1_post_ST" else "" for s in t["sample_id"]]))
    study = validate_study(good_config())
    excluded = study["sheets"]["excluded"]
    assert list(excluded["sample_id"]) == ["L1_post_ST"]
    assert excluded["reason"].iloc[0] == "excluded in the sample sheet: not prepared as instructed"
    assert "L1_post_ST" not in set(study["sheets"]["samples"]["sample_id"])
    for name in ("taxa", "metabolites"):
        imported = study["modalities"][name]
        assert "L1_post_ST" not in imported.table.index
        # excluded on purpose is not "dropped": it is reported once, in qc/samples.tsv
        assert "L1_post_ST" not in set(imported.dropped["id"])


def test_exclusion_without_a_reason_is_refused(study_dir):
    edit_sheet(study_dir / "samples.tsv",
               lambda t: t.assign(exclude=["yes" if s == "L1_post_ST" else "" for s in t["sample_id"]]))
    message = problems_of(good_config())
    assert "L1_post_ST" in message and "reason" in message


# --------------------------------------------------------------------------- the workflow


RENAMED = {"mpa": "taxa", "peaks": "metabolites", "flow": "immune"}


def renamed_study(tmp_path: Path) -> Path:
    shutil.copytree(GOOD, tmp_path, dirs_exist_ok=True)
    config = good_config()
    config["modalities"] = {new: config["modalities"][old] for new, old in RENAMED.items()}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


@pytest.mark.workflow
def test_renamed_modalities_plan_exactly_their_own(tmp_path):
    workdir = renamed_study(tmp_path)
    result = run_snakemake(workdir, "-n", "--configfile", str(workdir / "study.yaml"))
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    planned = set(re.findall(r"results/import/([^/.\s]+)\.tsv", out))
    assert planned == set(RENAMED)
    assert "gutaxis: study type oncology" in out


@pytest.mark.workflow
def test_demo_path_left_in_a_user_config_is_one_line(tmp_path):
    workdir = renamed_study(tmp_path)
    config = yaml.safe_load((workdir / "study.yaml").read_text())
    config["modalities"]["flow"]["path"] = "resources/demo/immune_subsets.tsv"
    (workdir / "study.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(workdir, "-n", "--configfile", str(workdir / "study.yaml"))
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if "resources/demo/" in line]
    assert len(lines) == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr


def test_no_survival_endpoints_skip_survival(study_dir):
    config = good_config()
    config["clinical"] = {"survival_endpoints": {}}
    plan = load_study(config)["plan"]
    assert plan.survival_endpoints == {}
    assert dict(plan.skipped)["survival analyses"] == "clinical.survival_endpoints is empty"


def test_an_excluded_row_needs_no_declared_timepoint_or_known_subject(study_dir):
    # a flare visit of a withdrawn subject, excluded: no fake timepoint, no fake subject
    edit_sheet(study_dir / "samples.tsv", lambda t: pd.concat([t, pd.DataFrame([{
        "sample_id": "X9_flare_ST", "subject_id": "X9", "timepoint": "flare", "sample_type": "stool",
        "exclude": "Yes", "exclude_reason": "flare visit of a withdrawn subject"}])], ignore_index=True).fillna(""))
    study = load_study(good_config())
    assert list(study["sheets"]["excluded"]["sample_id"]) == ["X9_flare_ST"]
    # a kept row after the excluded one is still named by its own line of the file
    edit_sheet(study_dir / "samples.tsv", lambda t: pd.concat([t, pd.DataFrame([{
        "sample_id": "L1_late_ST", "subject_id": "L1", "timepoint": "late", "sample_type": "stool",
        "exclude": "no", "exclude_reason": ""}])], ignore_index=True).fillna(""))
    n_lines = len((study_dir / "samples.tsv").read_text().splitlines())
    message = problems_of(good_config())
    assert f"line {n_lines} (L1_late_ST)" in message and "flare" not in message
    # an excluded row may not reuse another row's id
    edit_sheet(study_dir / "samples.tsv", lambda t: t.assign(
        sample_id=t["sample_id"].where(t["sample_id"] != "X9_flare_ST", "L1_post_ST")).iloc[:-1])
    assert "an excluded sample shares its id with another row" in problems_of(good_config())


def test_crossover_timepoint_labels_shared_by_both_periods_are_refused(study_dir):
    # every sample repeated in a second period under the same labels: the duplicate rule
    # would otherwise pair a period-1 pre sample with a period-2 post sample
    def two_periods(t):
        first = t.assign(period=["1" if s else "" for s in t["subject_id"]])
        second = first[first["subject_id"] != ""].assign(
            sample_id=lambda x: x["sample_id"] + "_p2", period="2")
        return pd.concat([first, second], ignore_index=True)

    edit_sheet(study_dir / "samples.tsv", two_periods)
    config = good_config()
    config["design"]["study_type"] = "crossover"
    message = problems_of(config)
    assert "hold samples of more than one period" in message and "label the timepoints by intervention" in message


def test_crossover_periods_written_as_numbers_are_one_period(study_dir):
    # a spreadsheet writes 1.0; a hand-typed sheet 01: both are period 1
    edit_sheet(study_dir / "samples.tsv", lambda t: t.assign(
        period=[("1.0" if tp == "baseline" else "01") if s else "" for tp, s in zip(t["timepoint"], t["subject_id"])]))
    config = good_config()
    config["design"]["study_type"] = "crossover"
    study = load_study(config)
    periods = study["sheets"]["samples"]
    assert set(periods.loc[periods["subject_id"] != "", "period"]) == {"1"}


def test_crossover_covariate_that_the_period_determines_is_refused(study_dir):
    # cohort = randomised sequence: lung takes the intervention in period 1, esophageal in 2
    edit_sheet(study_dir / "samples.tsv", lambda t: t.assign(
        period=[("1" if s.startswith("L") else "2") if s else "" for s in t["subject_id"]]))
    config = good_config()
    config["design"]["study_type"] = "crossover"
    config["differential"] = {"covariates": ["cohort"]}
    message = problems_of(config)
    assert "the period is determined by 'cohort'" in message and "period_covariate: false" in message
    config["differential"] = {"covariates": []}
    assert load_study(config)["plan"].period == "period"


def test_a_stale_response_primary_does_not_stop_a_study_without_response(study_dir):
    config = good_config()
    config["response"] = {"primary": "orr_recist_old"}
    assert "'orr_recist_old' is not one of response.definitions" in problems_of(config)
    config["design"]["study_type"] = "intervention"
    assert load_study(config)["plan"].response is None
