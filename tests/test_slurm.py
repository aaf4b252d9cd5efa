"""The demo study on a real SLURM cluster, through `profiles/slurm`, gives the same tables.

The test copies `profiles/slurm/config.yaml` with exactly the two lines the README asks a
newcomer to edit filled in (account and partition, read from the cluster), runs the whole
demo with `--workflow-profile <that copy>`, and asserts that every SLURM job completed
under that account and partition and that every `results/**/*.tsv` (then every figure)
is byte-identical to the local run's (`demo_run`).

It skips, saying why, when no SLURM cluster answers (no `sbatch`/`sinfo`, controller
down, no partition up, plugin missing). CI starts a single-node cluster first
(`.ci/start-slurm.sh`). Knobs for running it on a real cluster:

- `GUTAXIS_SLURM_ACCOUNT`, `GUTAXIS_SLURM_PARTITION`: what to put in the two lines
  (default: the first account of the user in `sacctmgr`, the default partition in `sinfo`);
- `GUTAXIS_SLURM_TMP`: a directory on a filesystem the compute nodes see (default: pytest's
  temporary directory, which on most clusters is node-local);
- `GUTAXIS_SLURM_JOBS`: `--jobs` (default 4: the jobs run on the submitting host count
  too, and a finished SLURM job is only seen at the next status poll, so a couple of jobs
  queued behind the two that fill the CI node's 2 CPUs keep it busy).

Without slurmdbd (`sacct` fails) the run adds `--slurm-status-command squeue`, the line the
profile documents for such sites.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import REPO, make_demo_workdir

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]

# a hung run (the executor's classic failure) is interrupted after this; measured on the
# 2-CPU test machine under load from other jobs: 24 min with --jobs 2
SLURM_TIMEOUT = 45 * 60
PROFILE = REPO / "profiles" / "slurm" / "config.yaml"


def _run(cmd: list[str], timeout: int = 60) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as err:
        return subprocess.CompletedProcess(cmd, 1, "", str(err))


def slurm_unreachable_reason() -> str | None:
    """None when a SLURM cluster answers here, else why not (the skip message)."""
    for tool in ("sbatch", "squeue", "sinfo", "scancel"):
        if shutil.which(tool) is None:
            return (f"no SLURM cluster reachable: `{tool}` is not installed "
                    "(CI starts a local one with .ci/start-slurm.sh)")
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return "snakemake-executor-plugin-slurm is not installed (pip install -r requirements.txt)"
    sinfo = _run(["sinfo", "-h", "-o", "%P %a %T"], timeout=30)
    if sinfo.returncode != 0:
        return f"no SLURM cluster reachable: `sinfo` failed: {sinfo.stderr.strip()[:300]}"
    usable = [line for line in sinfo.stdout.splitlines()
              if len(line.split()) == 3 and line.split()[1] == "up"
              and line.split()[2].rstrip("*~#!%$@^-") in ("idle", "mixed", "allocated", "completing")]
    if not usable:
        return f"no SLURM partition is up with a usable node (sinfo: {sinfo.stdout.strip()[:300]!r})"
    return None


def sacct_works() -> bool:
    return shutil.which("sacct") is not None and _run(["sacct", "-n", "-X", "-S", "now-1hours"]).returncode == 0


def default_partition() -> str | None:
    names = _run(["sinfo", "-h", "-o", "%P"]).stdout.split()
    for name in names:
        if name.endswith("*"):
            return name.rstrip("*")
    return names[0] if names else None


def cpus_per_node(partition: str | None) -> int | None:
    """The fewest CPUs of a node in the partition (rules asking for more are capped to it)."""
    listed = _run(["sinfo", "-h", "-o", "%c"] + (["-p", partition] if partition else []))
    counts = [int(c) for c in re.findall(r"\d+", listed.stdout)]
    return min(counts) if counts else None


def user_account() -> str | None:
    if shutil.which("sacctmgr") is None:
        return None
    listed = _run(["sacctmgr", "-n", "-P", "show", "assoc", f"user={getpass.getuser()}", "format=account"])
    accounts = [a.strip() for a in listed.stdout.splitlines() if a.strip()] if listed.returncode == 0 else []
    return accounts[0] if accounts else None


def edited_profile(directory: Path, account: str | None, partition: str | None) -> Path:
    """profiles/slurm with the two README lines filled in, as a newcomer would edit it."""
    text = PROFILE.read_text()
    for key, value in (("slurm_account", account), ("slurm_partition", partition)):
        pattern = re.compile(rf"^(\s*)# ({key}): \"[^\"]*\"", re.MULTILINE)
        assert len(pattern.findall(text)) == 1, (
            f"profiles/slurm/config.yaml must have exactly one commented `# {key}: \"...\"` line "
            "(the README tells users to edit it)")
        if value is not None:
            text = pattern.sub(lambda m: f'{m.group(1)}{m.group(2)}: "{value}"', text)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.yaml").write_text(text)
    return directory


def result_tables(workdir: Path) -> dict[str, Path]:
    return {p.relative_to(workdir).as_posix(): p for p in sorted((workdir / "results").rglob("*.tsv"))
            if not p.name.startswith(".")}


def run_until_done(cmd: list[str], log: Path, timeout: int) -> int:
    """Run snakemake in its own session; on timeout interrupt it (it cancels its SLURM jobs)."""
    with open(log, "w") as sink:
        process = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)  # Snakemake scancels its jobs on interrupt
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
        # belt and braces: jobs of this run carry the run id as their name
        run_id = re.search(r"SLURM run ID: (\S+)", log.read_text(errors="replace"))
        if run_id:
            _run(["scancel", "--name", run_id.group(1)])
        pytest.fail(f"the SLURM run did not finish in {timeout} s:\n" + log.read_text(errors="replace")[-6000:])


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """Skip, saying why, when no SLURM cluster answers.

    Requested before `demo_run` (same scope: pytest sets them up in the order of the test's
    arguments), so a machine without SLURM skips without running the demo locally first.
    """
    reason = slurm_unreachable_reason()
    if reason:
        pytest.skip(reason)


def test_demo_on_slurm_gives_the_local_tables(slurm_cluster, demo_run, tmp_path):
    account = os.environ.get("GUTAXIS_SLURM_ACCOUNT") or user_account()
    partition = os.environ.get("GUTAXIS_SLURM_PARTITION") or default_partition()
    base = Path(os.environ.get("GUTAXIS_SLURM_TMP") or tmp_path)
    scratch = Path(tempfile.mkdtemp(prefix="gutaxis-slurm-", dir=base))
    profile = edited_profile(scratch / "profile", account, partition)
    workdir = make_demo_workdir(scratch / "run")
    log = scratch / "snakemake.log"

    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(workdir), "--workflow-profile", str(profile),
           "--jobs", os.environ.get("GUTAXIS_SLURM_JOBS", "4"),
           # the profile's 20 s suits a busy cluster; the test cluster answers at once
           "--slurm-init-seconds-before-status-checks", "2"]
    # the CI node has 2 CPUs; a rule asking for more would pend forever (real clusters
    # set `max-threads` in the profile if they need to)
    node_cpus = cpus_per_node(partition)
    if node_cpus:
        cmd += ["--max-threads", str(node_cpus)]
    with_sacct = sacct_works()
    if not with_sacct:
        cmd += ["--slurm-status-command", "squeue"]

    started = time.monotonic()
    returncode = run_until_done(cmd, log, SLURM_TIMEOUT)
    elapsed = time.monotonic() - started
    output = log.read_text(errors="replace")
    assert returncode == 0, f"the SLURM run failed (exit {returncode}):\n{output[-6000:]}"
    print(f"demo on SLURM: {elapsed:.0f} s wall (account={account}, partition={partition}, "
          f"status via {'sacct' if with_sacct else 'squeue'})")

    # the jobs really went through SLURM, under the account and partition of the two lines
    job_ids = re.findall(r"submitted with SLURM jobid (\d+)", output)
    assert job_ids, "no job was submitted to SLURM"
    if with_sacct:
        accounting = {}
        for _ in range(30):  # slurmdbd may lag a few seconds behind the controller
            listed = _run(["sacct", "-n", "-X", "-P", "-j", ",".join(job_ids), "-o", "JobID,State,Account,Partition"])
            accounting = {row.split("|")[0]: row.split("|")[1:] for row in listed.stdout.splitlines() if row}
            if set(job_ids) <= set(accounting):
                break
            time.sleep(1)
        assert set(job_ids) <= set(accounting), f"sacct does not list jobs {sorted(set(job_ids) - set(accounting))}"
        for job_id in job_ids:
            state, job_account, job_partition = accounting[job_id]
            assert state == "COMPLETED", f"SLURM job {job_id}: {state}"
            if account:
                assert job_account == account, f"SLURM job {job_id} ran under account {job_account!r}"
            if partition:
                assert job_partition == partition, f"SLURM job {job_id} ran in partition {job_partition!r}"

    # same tables, byte for byte
    local, remote = result_tables(demo_run), result_tables(workdir)
    assert local, "the local demo run wrote no tables"
    assert set(remote) == set(local), (
        f"only local: {sorted(set(local) - set(remote))}; only on SLURM: {sorted(set(remote) - set(local))}")
    differing = [name for name in local if local[name].read_bytes() != remote[name].read_bytes()]
    assert not differing, f"tables differ between the local and the SLURM run: {differing}"
    # figures too: save_figure clears the dates and software fields
    figures = [p.relative_to(workdir).as_posix() for p in sorted((workdir / "results").rglob("*"))
               if p.is_file() and not p.name.startswith(".") and p.suffix != ".tsv"]
    differing = [name for name in figures
                 if not (demo_run / name).is_file() or (demo_run / name).read_bytes() != (workdir / name).read_bytes()]
    assert not differing, f"figures differ between the local and the SLURM run (tables are identical): {differing}"
