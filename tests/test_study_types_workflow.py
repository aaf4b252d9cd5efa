"""Differential, integration and models for every study type: what the workflow plans.

Configs built in a tmp directory from the demo files (the demo config with another
study type), dry-run with ``snakemake -n``; the planned jobs say which analyses run:

* intervention (no response): no models job, no responders input to differential,
  integration or their figures;
* baseline-only (no contrasts): the baseline responder comparison per modality, no
  paired / contrast jobs, baseline-view integration only, baseline model sets only,
  no ``models_survival`` when the subjects table has no PFS2 columns;
* crossover: one differential job per intervention contrast, the period covariate on.

One small real run (``--cores 1``) of the baseline-only study's differential targets
checks the baseline comparison end to end.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO, run_snakemake

pytestmark = pytest.mark.workflow

DEMO = REPO / "resources" / "demo"
MODALITIES = ("taxa", "metabolites", "immune")


def _demo_config() -> dict:
    """The demo config without its tissue table (tests/test_tissue.py covers that one)."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    del config["modalities"]["tissue"]
    return config


def _copy_demo(workdir: Path) -> Path:
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    for path in DEMO.iterdir():
        if path.suffix in (".tsv", ".txt"):
            shutil.copy(path, data / path.name)
    return data


def _point_to(config: dict, data: Path) -> dict:
    """The demo config with every path in `data` (a user study stands alone)."""
    config["samples"] = str(data / "samples.tsv")
    config["subjects"] = str(data / "subjects.tsv")
    config["adverse_events"] = str(data / "adverse_events.tsv")
    for spec in config["modalities"].values():
        spec["path"] = str(data / Path(spec["path"]).name)
    return config


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def _write(table: pd.DataFrame, path: Path) -> None:
    table.to_csv(path, sep="\t", index=False)


def build_intervention(workdir: Path) -> Path:
    """The demo as a dietary-style intervention: no responder definitions, no tumour response."""
    data = _copy_demo(workdir)
    config = _point_to(_demo_config(), data)
    config["design"]["study_type"] = "intervention"
    config["response"]["definitions"] = {}
    config["response"]["primary"] = ""
    subjects = _read(data / "subjects.tsv")
    _write(subjects.drop(columns=["best_response", "best_response_irecist", "target_lesion_change_pct"]),
           data / "subjects.tsv")
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def build_baseline_only(workdir: Path) -> Path:
    """The demo's baseline samples only (the others excluded), no contrasts, no PFS2 columns
    (a responder cohort)."""
    data = _copy_demo(workdir)
    config = _point_to(_demo_config(), data)
    config["design"]["study_type"] = "baseline_only"
    config["design"]["contrasts"] = []
    # the on-treatment samples are excluded (the omics tables stay as they are)
    samples = _read(data / "samples.tsv")
    later = (samples["timepoint"] != "baseline") & (samples["subject_id"] != "")
    samples["exclude"] = later.map({True: "yes", False: ""})
    samples["exclude_reason"] = later.map({True: "baseline-only cohort", False: ""})
    _write(samples, data / "samples.tsv")
    subjects = _read(data / "subjects.tsv")
    _write(subjects.drop(columns=["pfs2_months", "pfs2_event"]), data / "subjects.tsv")
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def build_crossover(workdir: Path) -> Path:
    """An immune-only two-period crossover from the demo's blood samples.

    Each subject's baseline and post samples are intervention A; copies of them under
    new sample ids (values scaled a little) are intervention B. Odd subjects get A in
    period 1 and B in period 2, even subjects the reverse.
    """
    data = _copy_demo(workdir)
    config = _point_to(_demo_config(), data)
    config["modalities"] = {"immune": config["modalities"]["immune"]}
    config["design"]["study_type"] = "crossover"
    config["design"]["timepoints"] = ["pre_a", "post_a", "pre_b", "post_b"]
    config["design"]["baseline"] = "pre_a"
    config["design"]["contrasts"] = [{"name": "arm_a", "pre": "pre_a", "post": "post_a"},
                                     {"name": "arm_b", "pre": "pre_b", "post": "post_b"}]
    config["response"]["definitions"] = {}
    config["response"]["primary"] = ""
    config["integration"]["modalities"] = []
    samples = _read(data / "samples.tsv")
    blood = samples[(samples["sample_type"] == "blood") & samples["timepoint"].isin(["baseline", "post"])]
    subjects = sorted(blood["subject_id"].unique())
    first = {s: i % 2 == 0 for i, s in enumerate(subjects)}
    arm_a = blood.assign(timepoint=blood["timepoint"].map({"baseline": "pre_a", "post": "post_a"}),
                         period=[("1" if first[s] else "2") for s in blood["subject_id"]])
    arm_b = blood.assign(sample_id=blood["sample_id"] + "_B",
                         timepoint=blood["timepoint"].map({"baseline": "pre_b", "post": "post_b"}),
                         period=[("2" if first[s] else "1") for s in blood["subject_id"]])
    _write(pd.concat([arm_a, arm_b], ignore_index=True), data / "samples.tsv")
    immune = pd.read_csv(data / "immune_subsets.tsv", sep="\t")
    immune = immune[immune["sample_id"].isin(blood["sample_id"])]
    copy = immune.copy()
    copy["sample_id"] = copy["sample_id"] + "_B"
    numeric = copy.columns[1:]
    copy[numeric] = copy[numeric] * 0.97
    pd.concat([immune, copy], ignore_index=True).to_csv(data / "immune_subsets.tsv", sep="\t", index=False)
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def planned_jobs(workdir: Path, config: Path, *targets: str) -> dict[str, int]:
    """rule -> number of jobs of `snakemake -n` (fails the test on a parse error)."""
    done = run_snakemake(workdir, "--configfile", str(config), "-n", "--quiet", "rules", *targets,
                         timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    text = done.stdout + done.stderr
    block = text[text.index("Job stats:"):] if "Job stats:" in text else ""
    jobs = {}
    for line in block.splitlines()[3:]:
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if match and match.group(1) != "total":
            jobs[match.group(1)] = int(match.group(2))
    return jobs


def dry_run_text(workdir: Path, config: Path, *targets: str) -> str:
    """The full `snakemake -n` listing (rules with their inputs and outputs)."""
    done = run_snakemake(workdir, "--configfile", str(config), "-n", *targets, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def intervention(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("intervention")
    return workdir, build_intervention(workdir)


@pytest.fixture(scope="module")
def baseline_only(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("baseline_only")
    return workdir, build_baseline_only(workdir)


@pytest.fixture(scope="module")
def crossover(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("crossover")
    return workdir, build_crossover(workdir)


def test_intervention_plans_no_models_and_reads_no_responder_labels(intervention):
    workdir, config = intervention
    jobs = planned_jobs(workdir, config)
    assert not [rule for rule in jobs if rule.startswith("models_") or rule.startswith("plot_models")]
    assert jobs["differential"] == len(MODALITIES)
    assert jobs["integration_mofa"] == 1
    text = dry_run_text(workdir, config)
    for rule in ("differential", "integration_mofa", "plot_integration_mofa_scores",
                 "plot_integration_immune_dynamics"):
        for block in _rule_blocks(text, rule):
            assert "responders.tsv" not in block, f"{rule} reads responders.tsv: {block}"
        assert _rule_blocks(text, rule), f"no {rule} job planned"
    assert "responder models: the study has no responder labels" in _study_plan(workdir, config)


def test_baseline_only_plans_the_baseline_comparison_and_no_paired_jobs(baseline_only):
    workdir, config = baseline_only
    jobs = planned_jobs(workdir, config)
    assert jobs["differential_baseline"] == len(MODALITIES)
    assert jobs["plot_differential_baseline_volcano"] == len(MODALITIES)
    for rule in ("differential", "plot_differential_paired", "plot_differential_heatmap",
                 "plot_differential_volcano", "integration_mofa", "integration_triads",
                 "plot_integration_immune_dynamics", "models_survival", "plot_models_km"):
        assert rule not in jobs, f"{rule} planned in a baseline-only study"
    # three blocks, one (baseline) view each
    assert jobs["integration_associations"] == 3
    text = dry_run_text(workdir, config)
    assert "associations/taxa__immune_baseline.tsv" in text
    assert "_change.tsv" not in text
    # only the baseline model sets are fitted; the change set is skipped with its reason
    fitted = set(re.findall(r"results/models/sets/(\w+)/performance\.tsv", text))
    assert fitted == {"baseline_taxa", "baseline_metabolites", "baseline_immune", "clinical",
                      "baseline_multiomics", "baseline_stacked"}
    plan = _study_plan(workdir, config)
    assert "model feature set change_multiomics: view change needs paired samples" in plan
    assert "biomarker survival models (models.survival): columns pfs2_months, pfs2_event" in plan
    # the models link their features to the baseline comparison
    feature_table = _rule_blocks(text, "models_feature_table")
    assert feature_table and "differential/taxa/baseline_response.tsv" in feature_table[0]
    # main figures 2 and 3 show the baseline comparison (PCoA by response, baseline volcanos)
    mains = _rule_blocks(text, "plot_main_figure")
    assert any("figures/diversity/taxa/baseline/pcoa_" in block
               and "figures/differential/taxa/baseline/volcano" in block for block in mains)
    assert any("figures/differential/metabolites/baseline/volcano" in block
               and "figures/differential/immune/baseline/volcano" in block for block in mains)


def test_crossover_plans_one_differential_job_per_intervention(crossover):
    workdir, config = crossover
    jobs = planned_jobs(workdir, config)
    assert jobs["differential"] == 2
    assert not [rule for rule in jobs if rule.startswith("models_")]
    text = dry_run_text(workdir, config)
    assert "results/differential/immune/arm_a.tsv" in text
    assert "results/differential/immune/arm_b.tsv" in text


def test_baseline_only_differential_runs_and_finds_no_paired_rows(baseline_only):
    """A real run of the immune baseline comparison: the responder rows only, the
    labels of responders.tsv, one row per feature and method."""
    workdir, config = baseline_only
    target = "results/differential/immune/baseline_response.tsv"
    done = run_snakemake(workdir, "--configfile", str(config), "--cores", "1", target, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    results = pd.read_csv(workdir / target, sep="\t")
    assert set(results["method"]) == {"ols", "mann_whitney"}
    assert set(results["term"]) == {"response[responder]"}
    assert set(results["contrast"]) == {"baseline"}
    immune = pd.read_csv(workdir / "data" / "immune_subsets.tsv", sep="\t")
    assert results.groupby("method")["feature"].nunique().eq(immune.shape[1] - 1).all()
    formulas = pd.read_csv(workdir / "results/differential/immune/baseline_response.formulas.tsv", sep="\t")
    assert formulas["formula"].str.startswith("feature ~ response + cohort").any()


def _study_plan(workdir: Path, config: Path) -> str:
    done = run_snakemake(workdir, "--configfile", str(config), "--cores", "1", "results/study.tsv",
                         timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return (workdir / "results" / "study.tsv").read_text()


def _rule_blocks(text: str, rule: str) -> list[str]:
    """The input lines of one rule's jobs in a dry-run listing."""
    return re.findall(rf"^(?:local)?rule {rule}:\n    input: (.*)$", text, flags=re.MULTILINE)


def test_crossover_mixed_models_adjust_for_the_period(crossover):
    """A real run of one intervention's differential job: the period is a covariate."""
    workdir, config = crossover
    target = "results/differential/immune/arm_a.tsv"
    done = run_snakemake(workdir, "--configfile", str(config), "--cores", "1", target, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    formulas = pd.read_csv(workdir / "results/differential/immune/arm_a.formulas.tsv", sep="\t")
    # the model's own formula (feature empty), then one row per feature
    lmm = formulas[formulas["feature"].isna()].set_index("model").loc["lmm_time", "formula"]
    assert lmm == "feature ~ timepoint + cohort + period + (1 | subject_id)"
    results = pd.read_csv(workdir / target, sep="\t")
    assert not results["term"].str.contains("response").any()


def test_intervention_differential_and_mofa_run_without_response(intervention):
    """A real run: no response terms, no response column in pairs.tsv, MOFA+ factors
    tested against time only, figures' source data without response groups."""
    workdir, config = intervention
    base = "results/differential/immune/post_vs_baseline"
    targets = [f"{base}.tsv", f"results/figures/{base.replace('results/', '')}/paired.png",
               "results/integration/mofa/factor_tests.tsv", "results/figures/integration/mofa_scores.png"]
    done = run_snakemake(workdir, "--configfile", str(config), "--cores", "1", *targets, timeout=1500)
    assert done.returncode == 0, done.stderr[-4000:]
    results = pd.read_csv(workdir / f"{base}.tsv", sep="\t")
    assert not results["term"].str.contains("response").any()
    assert {"paired_t", "wilcoxon", "lmm"} == set(results["method"])
    assert "response" not in pd.read_csv(workdir / f"{base}.pairs.tsv", sep="\t").columns
    tests = pd.read_csv(workdir / "results/integration/mofa/factor_tests.tsv", sep="\t")
    assert set(tests["test"]) == {"time_paired_wilcoxon"}
    for source in (f"results/figures/{base.replace('results/', '')}/paired.source.tsv",
                   "results/figures/integration/mofa_scores.source.tsv"):
        groups = set(pd.read_csv(workdir / source, sep="\t", keep_default_na=False)["response"])
        assert groups == {"all"}, source
