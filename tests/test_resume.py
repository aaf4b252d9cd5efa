"""Kill and resume: a demo run killed with SIGKILL part-way finishes when rerun with the
default profile, with results byte-identical to an uninterrupted run, and no partially
written file is ever taken as complete.

How: every module of a finished demo run but its figures is copied
into a fresh directory, so the run has the plot jobs left (CI time); it starts in
its own process group; once some jobs have finished and
others are running, the whole group (Snakemake and the job scripts it started) gets
SIGKILL, as when a login session or a node dies. At that moment every result file that
exists and is not marked incomplete in `.snakemake/incomplete/` must already equal the
uninterrupted run's file: complete, not partial (the scripts write to a hidden temporary
name and rename). A half-written table planted at the final name of a killed job's output
shows the second safety net: Snakemake refuses to use it without `--rerun-incomplete`.
SIGKILL also leaves Snakemake's lock, so the recovery is `snakemake --unlock`, then the
run again with `--workflow-profile profiles/default` (which sets `rerun-incomplete`); it
must succeed and reproduce every file under `results/` byte for byte.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, make_demo_workdir, run_snakemake

pytestmark = pytest.mark.workflow

# Kill once this many jobs have finished (the demo has ~40) and at least one is running.
KILL_AFTER_FINISHED = 6
KILL_WAIT_TIMEOUT = 900


def result_files(workdir: Path, pattern: str = "*.tsv") -> dict[str, Path]:
    """Relative path -> file for every `results/**/<pattern>` (hidden temporary files excluded)."""
    root = workdir / "results"
    return {
        path.relative_to(workdir).as_posix(): path
        for path in sorted(root.rglob(pattern))
        if path.is_file() and not path.name.startswith(".")
    }


def incomplete_outputs(workdir: Path) -> set[str]:
    """Output paths Snakemake has marked incomplete (jobs started and not finished).

    The file-based persistence stores one marker per output under `.snakemake/incomplete/`,
    named by the URL-safe base64 of the path (split into `@`-prefixed directories when
    longer than a file name may be).
    """
    root = workdir / ".snakemake" / "incomplete"
    paths = set()
    if not root.is_dir():
        return paths
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            marker = Path(dirpath, name).relative_to(root)
            if marker.name == "migration_underway":
                continue
            encoded = "".join(part.lstrip("@") for part in marker.parts)
            paths.add(base64.urlsafe_b64decode(encoded.encode()).decode())
    return paths


def finished_jobs(log: Path) -> int:
    """Jobs finished so far, from the console: one line per finished job
    ("[10:42:07] 37/113 done: <rule>", gutaxis.console)."""
    if not log.exists():
        return 0
    return len(re.findall(r"\] \d+/\d+ done: ", log.read_text(errors="replace")))


def start_and_kill(workdir: Path, log: Path) -> tuple[int, set[str]]:
    """Start the demo run, SIGKILL its process group mid-run; return (finished, incomplete)."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(workdir), "--cores", "2"]
    with open(log, "w") as sink:
        process = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + KILL_WAIT_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"the run ended (exit {process.returncode}) before it could be killed:\n"
                            + log.read_text()[-4000:])
            if finished_jobs(log) >= KILL_AFTER_FINISHED and incomplete_outputs(workdir):
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"fewer than {KILL_AFTER_FINISHED} jobs finished in {KILL_WAIT_TIMEOUT} s")
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.wait(timeout=60)
    # the job scripts were in the same process group; give the kernel a moment to reap them
    time.sleep(0.5)
    return finished_jobs(log), incomplete_outputs(workdir)


# Upstream modules copied from the finished demo run before the killed run starts, so the
# test interrupts the last part of the DAG (the figures) and CI does
# not pay for a third full demo run.
SEEDED_MODULES = ("inputs", "import", "qc", "clinical", "metabolome", "diversity", "differential",
                  "integration", "models")


def seed_from_finished_run(finished: Path, workdir: Path) -> None:
    """Copy the upstream results (with their mtimes) and Snakemake's metadata of a finished
    run: the rerun then has only the downstream jobs left, as a run killed late would."""
    for module in SEEDED_MODULES:
        source = finished / "results" / module
        if source.is_dir():
            shutil.copytree(source, workdir / "results" / module, copy_function=shutil.copy2)
    metadata = finished / ".snakemake" / "metadata"
    if metadata.is_dir():
        shutil.copytree(metadata, workdir / ".snakemake" / "metadata", copy_function=shutil.copy2)


def test_a_killed_run_resumes_to_byte_identical_tables(demo_run, tmp_path):
    reference = result_files(demo_run)  # tables
    assert reference, "the uninterrupted demo run wrote no tables"

    workdir = make_demo_workdir(tmp_path / "killed")
    seed_from_finished_run(demo_run, workdir)
    started = time.monotonic()
    finished, incomplete = start_and_kill(workdir, tmp_path / "killed.log")
    assert finished >= KILL_AFTER_FINISHED
    # jobs were running at the kill: the test really interrupted something
    assert incomplete, "no job was running when the run was killed"

    # --- no partial file looks complete -------------------------------------------------
    after_kill = result_files(workdir, "*")
    tables_after_kill = {name for name in after_kill if name.endswith(".tsv")}
    assert tables_after_kill, "nothing was written before the kill"
    assert tables_after_kill < set(reference), "the kill came too late: every table was already written"
    for name, path in after_kill.items():
        if name in incomplete:
            continue  # Snakemake knows this one is unfinished and will recreate it
        reference_file = demo_run / name
        assert reference_file.is_file(), f"{name}: written by the killed run but not by the full run"
        assert path.read_bytes() == reference_file.read_bytes(), (
            f"{name} exists after the kill, is not marked incomplete, and differs from the "
            "uninterrupted run: a partial file would be taken as complete")
    # killed writers leave at most a hidden temporary file (".<name>.<random>.tmp")
    leftovers = sorted(p.relative_to(workdir).as_posix() for p in (workdir / "results").rglob(".*"))

    # --- Snakemake's incomplete tracking catches a writer that is not atomic ---------------
    # Plant what a non-atomic writer would leave: half of a table, at its final name, for
    # an output of a killed job. Without rerun-incomplete Snakemake refuses to go on.
    candidates = sorted(name for name in incomplete if name.endswith(".tsv") and name in reference)
    assert candidates, f"no table among the outputs marked incomplete: {sorted(incomplete)}"
    planted = candidates[0]
    content = reference[planted].read_bytes()
    (workdir / planted).parent.mkdir(parents=True, exist_ok=True)
    (workdir / planted).write_bytes(content[: len(content) // 2])
    strict = run_snakemake(workdir, "-n", "--workflow-profile", "none")
    assert strict.returncode != 0
    assert "incomplete" in (strict.stdout + strict.stderr).lower()
    assert planted in strict.stdout + strict.stderr

    # --- the rerun finishes the work ------------------------------------------------------
    # SIGKILL left Snakemake's lock behind: the documented recovery is --unlock, then the
    # same command again
    unlock = run_snakemake(workdir, "--unlock")
    assert unlock.returncode == 0, unlock.stderr[-4000:]
    rerun = run_snakemake(workdir, "--workflow-profile", str(REPO / "profiles" / "default"), "--cores", "2")
    assert rerun.returncode == 0, rerun.stderr[-6000:]
    resumed = result_files(workdir)
    elapsed = time.monotonic() - started
    print(f"killed after {finished} finished jobs ({len(incomplete)} outputs marked incomplete, "
          f"{len(tables_after_kill)} tables on disk, {len(leftovers)} temporary files left); "
          f"planted a half-written {planted}; kill + resume took {elapsed:.0f} s")

    assert set(resumed) == set(reference), (
        f"missing after resume: {sorted(set(reference) - set(resumed))}; "
        f"extra: {sorted(set(resumed) - set(reference))}")
    differing = [name for name in reference if resumed[name].read_bytes() != reference[name].read_bytes()]
    assert not differing, f"tables differ from the uninterrupted run: {differing}"
    # figures too: save_figure clears the dates and software fields
    figures = result_files(workdir, "*")
    differing = [name for name, path in figures.items()
                 if not name.endswith(".tsv") and path.read_bytes() != (demo_run / name).read_bytes()]
    assert not differing, f"figures differ from the uninterrupted run (tables are identical): {differing}"

    # and nothing is left to do
    dry = run_snakemake(workdir, "-n")
    assert dry.returncode == 0, dry.stderr[-4000:]
    assert "Nothing to be done" in dry.stdout + dry.stderr
