"""`snakemake --report report.zip` builds on the demo and holds every figure and the study description."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path

import pytest
import yaml

from conftest import run_snakemake

pytestmark = pytest.mark.workflow


def _figure_files(workdir: Path) -> list[Path]:
    """Every figure file the demo built under results/figures."""
    return sorted(
        p for p in (workdir / "results" / "figures").rglob("*") if p.is_file() and p.suffix in {".png", ".svg", ".pdf", ".tiff"}
    )


@pytest.fixture(scope="module")
def report_archive(demo_run, tmp_path_factory) -> tuple[Path, zipfile.ZipFile]:
    workdir = tmp_path_factory.mktemp("report") / "wd"
    shutil.copytree(demo_run, workdir, symlinks=True, ignore=shutil.ignore_patterns("locks", "incomplete"))
    result = run_snakemake(workdir, "--report", "report.zip", timeout=900)
    assert result.returncode == 0, result.stderr[-6000:]
    archive = zipfile.ZipFile(workdir / "report.zip")
    yield workdir, archive
    archive.close()


def test_report_contains_every_figure(report_archive):
    workdir, archive = report_archive
    figures = _figure_files(workdir)
    assert figures, "the demo wrote no figure"
    # compare by content, whatever layout the report plugin gives the archive
    stored = {hashlib.sha256(archive.read(n)).hexdigest() for n in archive.namelist() if not n.endswith("/")}
    missing = [str(p.relative_to(workdir)) for p in figures if hashlib.sha256(p.read_bytes()).hexdigest() not in stored]
    assert not missing, f"figures missing from report.zip: {missing}"
    assert any("main" in p.parts and p.name.startswith("figure") for p in figures), "no main figure built"


def test_report_contains_the_study_description(report_archive):
    workdir, archive = report_archive
    index = [n for n in archive.namelist() if n.endswith("report.html")]
    assert index, f"no report.html in the archive: {archive.namelist()[:20]}"
    html = archive.read(index[0]).decode("utf-8", errors="replace")
    config = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    # the workflow description is rendered with the config values filled in
    assert config["study_name"] in html
    assert "Methods" in html
    assert "{{" not in html.split("<script")[0], "unrendered Jinja left in the description"


def test_report_figures_are_readable_images(report_archive):
    _, archive = report_archive
    pngs = [n for n in archive.namelist() if n.endswith(".png")]
    assert pngs, "no PNG figure in report.zip"
    for name in pngs:
        assert archive.read(name)[:8] == b"\x89PNG\r\n\x1a\n", name
