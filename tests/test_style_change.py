"""A journal asks for another font size and palette: only plot jobs rerun, no statistic changes.

Runs on a copy of the session's demo run (``demo_run``), so other tests keep an
untouched result tree. The repository config is never modified: the new style
comes from a second ``--configfile`` that Snakemake merges over the first.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import run_snakemake

pytestmark = pytest.mark.workflow

STYLE_OVERRIDE = {
    "style": {
        "font_size": 7,
        "title_size": 8,
        "palette": {
            "cohort": {"lung": "#D55E00", "esophageal": "#56B4E9", "other": "#CC79A7"},
            "response": {"responder": "#0072B2", "non_responder": "#E69F00"},
        },
    }
}

# Rules that are not plots but may legitimately be scheduled: the target rules.
TARGET_RULES = {"all", "figures"}


def _digests(paths) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def _statistics_tables(workdir: Path) -> list[Path]:
    results = workdir / "results"
    figures = results / "figures"
    return sorted(p.relative_to(workdir) for p in results.rglob("*.tsv") if figures not in p.parents)


def _figure_files(workdir: Path) -> list[Path]:
    figures = workdir / "results" / "figures"
    return sorted(
        p.relative_to(workdir) for p in figures.rglob("*") if p.is_file() and p.suffix in {".pdf", ".svg", ".png", ".tiff"}
    )


def _planned_jobs(stdout: str) -> dict[str, int]:
    """Rule -> job count from the dry run's "Job stats" table ({} when nothing is to be done)."""
    jobs: dict[str, int] = {}
    in_table = False
    for line in stdout.splitlines():
        if line.startswith("Job stats:"):
            in_table = True
            jobs = {}
            continue
        if not in_table:
            continue
        match = re.fullmatch(r"(\S+)\s+(\d+)", line.strip())
        if match and match.group(1) != "total":
            jobs[match.group(1)] = int(match.group(2))
        elif match and match.group(1) == "total":
            in_table = False
    return jobs


@pytest.fixture(scope="module")
def restyled(demo_run, tmp_path_factory):
    """A copy of the demo run, its file digests, the dry-run plan and the rerun under the new style."""
    workdir = tmp_path_factory.mktemp("style") / "wd"
    shutil.copytree(demo_run, workdir, symlinks=True, ignore=shutil.ignore_patterns("locks", "incomplete"))
    override = workdir / "style_override.yaml"
    override.write_text(yaml.safe_dump(STYLE_OVERRIDE))
    configfiles = ["--configfile", str(workdir / "config" / "config.yaml"), str(override)]

    baseline = run_snakemake(workdir, "-n", "--cores", "2")
    assert baseline.returncode == 0, baseline.stderr[-3000:]

    plan = run_snakemake(workdir, "-n", "--cores", "2", *configfiles)
    assert plan.returncode == 0, plan.stderr[-3000:]

    tables, figures = _statistics_tables(workdir), _figure_files(workdir)
    tables_before = _digests(workdir / p for p in tables)
    figures_before = _digests(workdir / p for p in figures)

    rerun = run_snakemake(workdir, "--cores", "2", *configfiles)
    assert rerun.returncode == 0, rerun.stderr[-6000:]
    return {
        "workdir": workdir,
        "baseline": _planned_jobs(baseline.stdout + baseline.stderr),
        "plan": _planned_jobs(plan.stdout + plan.stderr),
        "tables": tables,
        "tables_before": tables_before,
        "tables_after": _digests(workdir / p for p in tables),
        "figures_before": figures_before,
        "figures_after": _digests(workdir / p for p in figures),
    }


def test_copied_demo_is_complete(restyled):
    # without a style change nothing is out of date, so the plan below is the style's doing
    assert restyled["baseline"] == {}


def test_style_change_plans_plot_jobs_only(restyled):
    plan = restyled["plan"]
    plot_jobs = {rule: n for rule, n in plan.items() if rule.startswith("plot_")}
    others = sorted(set(plan) - set(plot_jobs) - TARGET_RULES)
    assert plot_jobs, f"a style change planned no plot job at all: {plan}"
    assert not others, f"a style change would rerun non-plot rules (they must not take style params): {others}"


def test_statistics_tables_byte_identical_after_rerun(restyled):
    assert len(restyled["tables"]) > 10, "the demo produced suspiciously few result tables"
    changed = [p for p, digest in restyled["tables_before"].items() if restyled["tables_after"][p] != digest]
    assert not changed, f"statistics tables changed with the style: {changed}"


def test_figures_were_redrawn(restyled):
    before, after = restyled["figures_before"], restyled["figures_after"]
    svgs = [p for p in before if p.endswith(".svg")]
    assert svgs, "the demo wrote no SVG figure"
    unchanged = [p for p in svgs if before[p] == after[p]]
    assert not unchanged, f"figures not redrawn under the new style: {unchanged}"


def test_new_font_size_reaches_the_svg(restyled):
    # svg.fonttype none keeps text as <text> with the font size in its style
    svg = restyled["workdir"] / "results" / "figures" / "qc" / "sampling.svg"
    text = svg.read_text()
    assert "<text" in text
    assert re.search(r"font(-size)?:\s*7px|font:\s*7px", text) or "7px" in text


# --------------------------------------------------------------------------- one figure's override

PANEL_OVERRIDE = {"style": {"overrides": {"main/figure1": {"panels": ["A", "C"], "title": False}}}}


@pytest.fixture(scope="module")
def panel_dropped(demo_run, tmp_path_factory):
    """A copy of the demo run with panel B (the Kaplan-Meier curves) dropped from main figure 1."""
    workdir = tmp_path_factory.mktemp("panels") / "wd"
    shutil.copytree(demo_run, workdir, symlinks=True, ignore=shutil.ignore_patterns("locks", "incomplete"))
    override = workdir / "panel_override.yaml"
    override.write_text(yaml.safe_dump(PANEL_OVERRIDE))
    configfiles = ["--configfile", str(workdir / "config" / "config.yaml"), str(override)]
    figures = _figure_files(workdir)
    before = _digests(workdir / p for p in figures)
    plan = run_snakemake(workdir, "-n", "--cores", "2", *configfiles)
    assert plan.returncode == 0, plan.stderr[-3000:]
    rerun = run_snakemake(workdir, "--cores", "2", *configfiles)
    assert rerun.returncode == 0, rerun.stderr[-6000:]
    return {
        "workdir": workdir,
        "plan": _planned_jobs(plan.stdout + plan.stderr),
        "before": before,
        "after": _digests(workdir / p for p in figures),
    }


def test_dropping_a_panel_reruns_only_that_main_figure(panel_dropped):
    plan = panel_dropped["plan"]
    assert {rule: n for rule, n in plan.items() if rule not in TARGET_RULES} == {"plot_main_figure": 1}, plan
    changed = sorted(p for p, digest in panel_dropped["before"].items() if panel_dropped["after"][p] != digest)
    assert changed and all(Path(p).parent.name == "main" and Path(p).stem == "figure1" for p in changed), changed


def test_dropped_panel_is_gone_from_the_figure_and_its_source_data(panel_dropped):
    source = panel_dropped["workdir"] / "results" / "figures" / "main" / "figure1.source.tsv"
    panels = {}
    for line in source.read_text().splitlines()[1:]:
        letter, figure = line.split("\t")[:2]
        panels[letter] = figure
    # the kept panels are lettered again from A
    assert panels == {"A": "clinical/waterfall", "B": "clinical/swimmer"}
