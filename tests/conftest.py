"""Test configuration: make the gutaxis library importable and locate shared data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

# Public example data lives beside the repository (../shared/data), never inside it.
SHARED_DATA = Path(os.environ.get("GUTAXIS_SHARED_DATA", REPO.parent / "shared" / "data"))


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slurm: runs the demo on a real SLURM cluster (skips when none is reachable)"
    )
    config.addinivalue_line("markers", "workflow: runs snakemake end to end on the demo study")
    config.addinivalue_line(
        "markers", "slow_example: a full workflow run of a real-data example config (deselect for quick runs)"
    )
    config.addinivalue_line("markers", "rcheck: cross-checks against an R reference (skips without Rscript)")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; skips the test cleanly when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"public example data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def run_snakemake(workdir: Path, *args: str, timeout: int = 1500) -> "subprocess.CompletedProcess":
    """Run the repository's workflow with `workdir` as working directory."""
    import subprocess

    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def make_demo_workdir(path: Path) -> Path:
    """A working directory that sees the repository's config/ and resources/ (results stay in `path`)."""
    path.mkdir(parents=True, exist_ok=True)
    for name in ("config", "resources"):
        link = path / name
        if not link.exists():
            link.symlink_to(REPO / name)
    return path


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """Run the whole demo study once (`snakemake --cores 2`) and return its working directory.

    Set GUTAXIS_DEMO_RUN to the working directory of a finished demo run to reuse it
    while developing (the fixture then only checks that nothing is left to do).
    """
    reuse = os.environ.get("GUTAXIS_DEMO_RUN")
    if reuse:
        workdir = Path(reuse)
        result = run_snakemake(workdir, "-n")
        if result.returncode != 0 or "Nothing to be done" not in result.stdout + result.stderr:
            pytest.fail(f"GUTAXIS_DEMO_RUN={reuse} is not a finished demo run:\n{result.stdout[-3000:]}")
        return workdir
    workdir = make_demo_workdir(tmp_path_factory.mktemp("demo"))
    result = run_snakemake(workdir, "--cores", "2")
    if result.returncode != 0:
        pytest.fail(f"demo run failed:\n{result.stderr[-6000:]}")
    return workdir
