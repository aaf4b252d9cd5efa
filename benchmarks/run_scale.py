"""Run the whole gutaxis workflow on simulated studies of growing size and measure every rule.

Run by hand from the repository root (not part of pytest)::

    python benchmarks/run_scale.py                                   # 200, 1,000, 5,000 samples
    python benchmarks/run_scale.py --sizes 200,1000 --workdir /tmp/gutaxis_scale
    python benchmarks/run_scale.py --collect-only --sizes 200,1000,5000   # re-read finished runs

For each size N (stool samples; N/2 subjects x baseline + post, ~12.5 % of subjects with an
extra progression sample, three cohorts; 1,500 taxa, 5,000 metabolites, 30 immune subsets):

1. ``gutaxis.demo.simulate.simulate_study`` writes the study into ``<workdir>/<N>/data``;
2. the run's config is ``config/config.yaml`` overlaid with ``benchmarks/scale_config.yaml`` and
   the simulated paths, written to ``<workdir>/<N>/config.scale.yaml``;
3. ``snakemake --snakefile <repo>/Snakefile --directory <workdir>/<N> --configfile ... --cores 2
   --keep-going --retries 0`` runs the workflow; the whole run's wall time and the peak resident
   memory of the snakemake process tree (sum over all its processes, polled by psutil every
   0.5 s) are recorded;
4. every Snakemake ``benchmark:`` file (``logs/benchmarks/**/*.tsv``: s, max_rss, ...) becomes
   one row of ``benchmarks/results/scale_rules.tsv`` (rule, wildcards, size, seconds,
   max_rss_mb); jobs of rules without ``benchmark:`` get their wall time from the Snakemake log
   (second resolution, ``source = log``) and no memory;
5. per rule and wildcards, the log-log slope of seconds (and of max RSS) against the number of
   stool samples is fitted: ``scale_exponents.tsv`` and ``scaling.png/svg``;
6. the per-module baselines (``bench_permanova.py``, ``bench_differential.py``,
   ``bench_associations.py`` and a scikit-bio ``beta_diversity`` comparison) run in the same
   invocation; their printed tables go to ``benchmarks/results/baseline_*.txt``.

Targets: ``--targets`` passes Snakemake targets (default: the workflow's default target, i.e.
everything). ``--keep`` keeps the work directories (default: results are collected, then the
simulated data and results of each size are deleted, the logs kept).
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

#: rules whose cost should grow faster than linearly with the number of samples (issue #11)
SUPERLINEAR_GROUPS = {
    "beta diversity": ("diversity_beta", "diversity_shift"),
    "PERMANOVA": ("diversity_permanova",),
    "mixed models": ("differential_mixed", "diversity_alpha_tests", "differential"),
    "integration": ("integration",),
    "models": ("models", "model_"),
}


# ---------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------
def deep_update(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_update(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def scale_config(data_dir: Path, repo: Path = REPO) -> tuple[dict, list[str]]:
    """The run's config: shipped defaults <- scale_config.yaml <- simulated paths."""
    base = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    overlay = yaml.safe_load((REPO / "benchmarks" / "scale_config.yaml").read_text()) or {}
    schema = yaml.safe_load((repo / "workflow" / "schemas" / "config.schema.yaml").read_text())
    known = set(schema.get("properties", {}))
    skipped = sorted(k for k in overlay if k not in known)
    overlay = {k: v for k, v in overlay.items() if k in known}
    config = deep_update(base, overlay)
    config["samples"] = str(data_dir / "samples.tsv")
    config["subjects"] = str(data_dir / "subjects.tsv")
    config["adverse_events"] = str(data_dir / "adverse_events.tsv")
    files = {"taxa": "metaphlan4_merged.txt", "metabolites": "metabolome_peaks.tsv",
             "immune": "immune_subsets.tsv"}
    for name, filename in files.items():
        config["modalities"][name]["path"] = str(data_dir / filename)
    # modalities of the demo config that the simulated study does not have would point at demo files
    config["modalities"] = {k: v for k, v in config["modalities"].items() if k in files}
    return config, skipped


# ---------------------------------------------------------------------------------------------
# running one size
# ---------------------------------------------------------------------------------------------
class TreeMemory(threading.Thread):
    """Poll the resident memory of a process and all its descendants."""

    def __init__(self, pid: int, every: float = 0.5):
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.peak_total = 0
        self.peak_single = 0
        self.loads: list[float] = []
        self.stop = threading.Event()

    def run(self):
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self.stop.is_set():
            total = 0
            try:
                procs = [root] + root.children(recursive=True)
            except psutil.Error:
                break
            for proc in procs:
                try:
                    rss = proc.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                self.peak_single = max(self.peak_single, rss)
            self.peak_total = max(self.peak_total, total)
            self.loads.append(os.getloadavg()[0])
            self.stop.wait(self.every)


def simulate(size: int, data_dir: Path, args) -> float:
    from gutaxis.demo.simulate import simulate_study

    if (data_dir / "TRUTH.md").exists():
        return float("nan")
    start = time.perf_counter()
    simulate_study(data_dir, seed=args.seed, n_subjects=size // 2, n_taxa=args.taxa,
                   n_metabolites=args.metabolites, n_immune=args.immune)
    return time.perf_counter() - start


def run_size(size: int, args) -> dict:
    wd = Path(args.workdir) / str(size)
    data_dir = wd / "data"
    wd.mkdir(parents=True, exist_ok=True)
    simulate_seconds = simulate(size, data_dir, args)
    for name in ("config", "resources"):  # the Snakefile's configfile: and the demo resources
        link = wd / name
        if not link.exists():
            link.symlink_to(Path(args.repo) / name)
    config, skipped = scale_config(data_dir.resolve(), Path(args.repo))
    for key in skipped:
        print(f"[{size}] scale_config.yaml key {key!r} is not in the config schema yet: left out")
    config_path = wd / "config.scale.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = ["snakemake", "--snakefile", str(Path(args.repo) / "Snakefile"), "--directory", str(wd),
           "--configfile", str(config_path), "--cores", str(args.cores), "--keep-going",
           "--retries", "0", "--rerun-incomplete"] + list(args.targets)
    print(f"[{size}] {' '.join(cmd)}", flush=True)
    log_path = wd / "snakemake.log"
    if (wd / ".snakemake" / "locks").exists() and any((wd / ".snakemake" / "locks").iterdir()):
        # a previous run of this size was killed: release its lock, keep its finished outputs
        subprocess.run(cmd + ["--unlock"], cwd=wd, capture_output=True)
    start = time.perf_counter()
    with open(log_path, "a") as log:  # a resumed run appends; earlier jobs' lines stay parseable
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=wd)
        memory = TreeMemory(proc.pid)
        memory.start()
        try:
            code = proc.wait(timeout=args.timeout_minutes * 60)
            status = "ok" if code == 0 else f"failed (exit {code})"
        except subprocess.TimeoutExpired:
            import psutil

            children = psutil.Process(proc.pid).children(recursive=True)
            proc.terminate()  # snakemake stops scheduling; its running jobs are ended below
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
            for child in children:  # jobs left orphaned by the stopped scheduler
                try:
                    child.terminate()
                except psutil.Error:
                    pass
            status = f"timeout after {args.timeout_minutes} min"
        memory.stop.set()
        memory.join()
    wall = time.perf_counter() - start
    samples = pd.read_csv(data_dir / "samples.tsv", sep="\t")
    summary = {
        "size": size,
        "stool_samples": int((samples["sample_type"] == "stool").sum()),
        "subjects": size // 2,
        "status": status,
        "wall_seconds": round(wall, 1),
        "simulate_seconds": round(simulate_seconds, 1),
        "peak_tree_rss_mb": round(memory.peak_total / 2**20, 1),
        "peak_process_rss_mb": round(memory.peak_single / 2**20, 1),
        # the machine may be shared: a 1-minute load average above --cores means other work
        # competed for the CPUs and wall times are inflated accordingly
        "mean_load_1min": round(float(np.mean(memory.loads)), 2) if memory.loads else float("nan"),
        "failed_rules": ",".join(failed_rules(log_path.read_text(errors="replace"))),
    }
    (wd / "run_summary.json").write_text(json.dumps(summary, indent=1))
    print(f"[{size}] {status}: {wall:.0f} s, peak tree RSS {summary['peak_tree_rss_mb']:.0f} MB", flush=True)
    return summary


def failed_rules(log_text: str) -> list[str]:
    return sorted(set(re.findall(r"Error in rule (\w+):", log_text)))


# ---------------------------------------------------------------------------------------------
# collecting
# ---------------------------------------------------------------------------------------------
TIMESTAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")


def parse_jobs(log_text: str) -> pd.DataFrame:
    """One row per job of a Snakemake log: rule, wildcards, benchmark, start, end (datetimes)."""
    jobs: dict[str, dict] = {}
    stamp = None
    current = None
    for line in log_text.splitlines():
        line = line.rstrip()
        m = TIMESTAMP.match(line)
        if m:
            stamp = dt.datetime.strptime(" ".join(m.group(1).split()), "%a %b %d %H:%M:%S %Y")
            continue
        m = re.match(r"^(?:local)?rule (\w+):$", line)
        if m:
            current = {"rule": m.group(1), "start": stamp, "wildcards": "", "benchmark": ""}
            continue
        if current is not None:
            m = re.match(r"^\s+(jobid|wildcards|benchmark): (.*)$", line)
            if m:
                key, value = m.groups()
                if key == "jobid":
                    jobs[value] = current
                else:
                    current[key] = value
                continue
            if not line.startswith(" "):
                current = None
        m = re.match(r"^Finished jobid: (\d+)", line) or re.match(r"^Finished job (\d+)\.", line)
        if m and m.group(1) in jobs:
            jobs[m.group(1)]["end"] = stamp
    rows = [dict(job, jobid=int(k)) for k, job in jobs.items() if k.isdigit()]
    return pd.DataFrame(rows, columns=["jobid", "rule", "wildcards", "benchmark", "start", "end"])


def read_summary(wd: Path, size: int) -> dict | None:
    """The run's summary; for a run that was killed or is still going, what its files say."""
    if (wd / "run_summary.json").exists():
        return json.loads((wd / "run_summary.json").read_text())
    if not (wd / "snakemake.log").exists():
        return None
    samples = pd.read_csv(wd / "data" / "samples.tsv", sep="\t")
    return {"size": size, "stool_samples": int((samples["sample_type"] == "stool").sum()),
            "subjects": size // 2, "status": "incomplete (killed or still running)",
            "failed_rules": ",".join(failed_rules((wd / "snakemake.log").read_text(errors="replace")))}


def collect(size: int, args) -> pd.DataFrame:
    wd = Path(args.workdir) / str(size)
    summary = read_summary(wd, size)
    log_text = (wd / "snakemake.log").read_text(errors="replace")
    jobs = parse_jobs(log_text)
    rows = []
    by_benchmark = {}
    for job in jobs.itertuples():
        if job.benchmark:
            by_benchmark[str(Path(job.benchmark))] = job
    seen = set()
    for path in sorted((wd / "logs" / "benchmarks").rglob("*.tsv")):
        rel = str(path.relative_to(wd))
        job = by_benchmark.get(rel)
        bench = pd.read_csv(path, sep="\t")
        rule = job.rule if job is not None else path.stem
        wildcards = job.wildcards if job is not None else ""
        rows.append({"rule": rule, "wildcards": wildcards, "size": size,
                     "stool_samples": summary["stool_samples"],
                     "seconds": float(bench["s"].iloc[-1]),
                     "cpu_seconds": float(bench["cpu_time"].iloc[-1]) if "cpu_time" in bench else np.nan,
                     "max_rss_mb": float(bench["max_rss"].iloc[-1]),
                     "source": "benchmark", "benchmark": rel})
        seen.add(rel)
    for job in jobs.itertuples():
        if job.benchmark and str(Path(job.benchmark)) in seen:
            continue
        if job.rule in ("all", "figures") or pd.isna(job.end) or job.start is None:
            continue
        rows.append({"rule": job.rule, "wildcards": job.wildcards, "size": size,
                     "stool_samples": summary["stool_samples"],
                     "seconds": float((job.end - job.start).total_seconds()),
                     "cpu_seconds": np.nan, "max_rss_mb": np.nan, "source": "log", "benchmark": ""})
    return pd.DataFrame(rows, columns=["rule", "wildcards", "size", "stool_samples", "seconds", "cpu_seconds",
                                       "max_rss_mb", "source", "benchmark"])


def log_log_slopes(rows: pd.DataFrame, column: str) -> tuple[float, float]:
    """Slope of log(column) on log(stool_samples): least squares over all sizes, and between the two
    largest; NaN with fewer than two positive values. ``rows`` sorted by stool_samples."""
    ok = rows[(rows[column] > 0) & rows[column].notna()]
    if len(ok) < 2:
        return np.nan, np.nan
    x, y = np.log(ok["stool_samples"].to_numpy(float)), np.log(ok[column].to_numpy(float))
    return float(np.polyfit(x, y, 1)[0]), float((y[-1] - y[-2]) / (x[-1] - x[-2]))


def fit_exponents(rules: pd.DataFrame) -> pd.DataFrame:
    """Log-log slope of seconds and of max RSS against stool samples, per rule and wildcards.

    ``exponent_seconds`` is the least-squares slope over all sizes; ``exponent_seconds_top`` the
    slope between the two largest sizes, which is less flattened by the fixed start-up cost
    (~1-3 s of Python imports per job) that dominates the small sizes.
    """
    out = []
    for (rule, wildcards, source), group in rules.groupby(["rule", "wildcards", "source"], sort=True):
        group = group.sort_values("stool_samples")
        row = {"rule": rule, "wildcards": wildcards, "source": source, "n_sizes": len(group)}
        for _, g in group.iterrows():
            row[f"seconds_{g['size']}"] = g["seconds"]
            row[f"cpu_seconds_{g['size']}"] = g["cpu_seconds"]
            row[f"max_rss_mb_{g['size']}"] = g["max_rss_mb"]
        for column, name in (("seconds", "exponent_seconds"), ("cpu_seconds", "exponent_cpu"),
                             ("max_rss_mb", "exponent_rss")):
            row[name], row[name + "_top"] = log_log_slopes(group, column)
        out.append(row)
    table = pd.DataFrame(out)
    first = ["rule", "wildcards", "source", "n_sizes", "exponent_seconds", "exponent_seconds_top",
             "exponent_cpu", "exponent_cpu_top", "exponent_rss", "exponent_rss_top"]
    return table[first + [c for c in table.columns if c not in first]] if len(table) else table


def group_of(rule: str) -> str | None:
    for group, prefixes in SUPERLINEAR_GROUPS.items():
        if any(rule.startswith(p) for p in prefixes):
            return group
    return None


def _spread_labels(values: np.ndarray, min_ratio: float = 1.22) -> np.ndarray:
    """Label positions on a log axis: the values, pushed apart to at least ``min_ratio`` each."""
    order = np.argsort(values)
    out = np.asarray(values, dtype=float).copy()
    for previous, current in zip(order[:-1], order[1:]):
        out[current] = max(out[current], out[previous] * min_ratio)
    return out


def plot_scaling(rules: pd.DataFrame, stem: Path) -> None:
    """Per rule (jobs summed; memory: the largest job) against stool samples, log-log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bench = rules[rules["source"] == "benchmark"]
    if bench.empty:
        return
    per_rule = (bench.groupby(["rule", "stool_samples"], sort=True)
                .agg(seconds=("seconds", "sum"), cpu_seconds=("cpu_seconds", "sum"),
                     max_rss_mb=("max_rss_mb", "max")).reset_index())
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.6), constrained_layout=True)
    colours = plt.get_cmap("tab10")
    groups = list(SUPERLINEAR_GROUPS)
    x_all = np.sort(per_rule["stool_samples"].unique())
    for ax, column, label in ((axes[0], "seconds", "wall time, jobs of a rule summed (s)"),
                              (axes[1], "cpu_seconds", "CPU time, jobs of a rule summed (s)"),
                              (axes[2], "max_rss_mb", "peak memory of a rule's largest job (MB)")):
        ends = []
        for rule, g in per_rule.groupby("rule"):
            g = g.sort_values("stool_samples")
            group = group_of(rule)
            style = (dict(color=colours(groups.index(group)), lw=1.4, marker="o", ms=3, zorder=3)
                     if group else dict(color="0.75", lw=0.8, marker=".", ms=2, zorder=2))
            ax.plot(g["stool_samples"], g[column], **style)
            if group and g["stool_samples"].iloc[-1] == x_all.max() and g[column].iloc[-1] > 0:
                ends.append((rule, float(g[column].iloc[-1]), style["color"]))
        if ends:
            positions = _spread_labels(np.array([v for _, v, _ in ends]))
            for (rule, value, colour), y in zip(ends, positions):
                ax.annotate(rule, (x_all.max(), value), xytext=(x_all.max() * 1.25, y),
                            textcoords="data", fontsize=6, va="center", color=colour,
                            arrowprops=dict(arrowstyle="-", color=colour, lw=0.4))
        if len(x_all) >= 2 and column != "max_rss_mb":
            y0 = float(np.nanmedian(per_rule.loc[per_rule["stool_samples"] == x_all[0], column]))
            for slope, ls in ((1, ":"), (2, "--")):
                ax.plot(x_all, y0 * (x_all / x_all[0]) ** slope, color="k", ls=ls, lw=0.7,
                        label=f"slope {slope} (reference)")
        if column == "max_rss_mb":
            ax.axhline(8192, color="firebrick", lw=0.8, ls="--", label="8 GB target")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("stool samples (log scale)", fontsize=8)
        ax.set_ylabel(label, fontsize=8)
        ax.tick_params(which="both", labelsize=7)
        ax.set_xlim(x_all.min() * 0.8, x_all.max() * 6)
    handles = [plt.Line2D([], [], color=colours(i), marker="o", ms=3, lw=1.4, label=g) for i, g in enumerate(groups)]
    handles.append(plt.Line2D([], [], color="0.75", lw=0.8, marker=".", label="other rules"))
    ref_handles, _ = axes[0].get_legend_handles_labels()
    mem_handles, _ = axes[2].get_legend_handles_labels()
    fig.legend(handles=handles + ref_handles + mem_handles, loc="outside lower center", ncol=9, fontsize=7,
               frameon=False)
    fig.suptitle("gutaxis rules vs study size (1,500 taxa, 5,000 metabolites, 30 immune subsets; --cores 2)",
                 fontsize=9)
    for ext in ("png", "svg"):
        fig.savefig(f"{stem}.{ext}", dpi=150)
    plt.close(fig)


def per_rule_table(rules: pd.DataFrame) -> pd.DataFrame:
    """Per rule and size: jobs, summed wall and CPU seconds, largest max RSS of a job (MB)."""
    grouped = rules.groupby(["rule", "size"], sort=True)
    table = grouped.agg(jobs=("seconds", "size"), wall_s=("seconds", "sum"), cpu_s=("cpu_seconds", "sum"),
                        max_rss_mb=("max_rss_mb", "max")).reset_index()
    wide = table.pivot(index="rule", columns="size")
    wide.columns = [f"{name} @{size}" for name, size in wide.columns]
    sizes = sorted(table["size"].unique())
    order = [f"{name} @{size}" for name in ("jobs", "wall_s", "cpu_s", "max_rss_mb") for size in sizes]
    return wide[order].reset_index()


def rule_exponents(rules: pd.DataFrame) -> pd.DataFrame:
    """Log-log slope of a rule's summed CPU and wall seconds against stool samples, all sizes and top two."""
    summed = (rules.groupby(["rule", "stool_samples"], sort=True)
              .agg(wall=("seconds", "sum"), cpu=("cpu_seconds", "sum")).reset_index())
    out = []
    for rule, g in summed.groupby("rule", sort=True):
        g = g.sort_values("stool_samples")
        row = {"rule": rule, "group": group_of(rule) or "", "n_sizes": len(g)}
        for column in ("cpu", "wall"):
            row[f"exponent_{column}"], row[f"exponent_{column}_top"] = log_log_slopes(g, column)
        out.append(row)
    return pd.DataFrame(out)


def markdown_table(table: pd.DataFrame, digits: int = 3) -> str:
    def cell(v):
        if isinstance(v, (float, np.floating)):
            if np.isnan(v):
                return ""
            return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.{digits}g}"
        return str(v)

    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + " --- |" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def write_summary(runs: pd.DataFrame, rules: pd.DataFrame, path: Path) -> None:
    """The measured tables of this run as Markdown (pasted into benchmarks/README.md)."""
    parts = ["## Runs", markdown_table(runs.drop(columns=[c for c in ("loads",) if c in runs])),
             "## Per rule (jobs summed; max RSS of the largest job)", markdown_table(per_rule_table(rules)),
             "## Scaling exponents (log-log slope of summed seconds vs stool samples)",
             markdown_table(rule_exponents(rules))]
    path.write_text("\n\n".join(parts) + "\n")


# ---------------------------------------------------------------------------------------------
# side-by-side baselines
# ---------------------------------------------------------------------------------------------
def beta_baseline(n_samples: int = 2000, n_taxa: int = 1500, seed: int = 0) -> pd.DataFrame:
    """Our β distances next to scikit-bio's ``beta_diversity`` where ours is not a plain call of it.

    Bray-Curtis is scikit-bio's own call (ratio 1 by construction) and is not repeated. Jaccard is
    compared with ``beta_diversity("jaccard")`` on presence/absence, Aitchison with
    ``beta_diversity("euclidean")`` on the CLR table; robust Aitchison has no scikit-bio
    equivalent and is compared with ``beta_diversity`` given the same distance as a Python
    callable, timed on 300 samples and extrapolated by n^2.
    """
    from skbio.diversity import beta_diversity
    from skbio.stats.composition import clr, rclr

    from gutaxis.diversity.beta import beta_distances

    rng = np.random.default_rng(seed)
    present = rng.random((n_samples, n_taxa)) < rng.uniform(0.05, 0.9, n_taxa)
    x = rng.lognormal(0, 2, (n_samples, n_taxa)) * present
    x[:, 0] += 1e-3  # every sample non-empty, every pair shares a feature
    x /= x.sum(axis=1, keepdims=True)
    ids = [f"S{i:05d}" for i in range(n_samples)]
    table = pd.DataFrame(x, index=pd.Index(ids, name="sample_id"))
    rows = []

    def timed(fn):
        start = time.perf_counter()
        value = fn()
        return time.perf_counter() - start, value

    for metric, baseline in (
        ("jaccard", lambda: beta_diversity("jaccard", x > 0, ids=ids, validate=False).data),
        ("aitchison", lambda: beta_diversity("euclidean", clr(x + ours_pc), ids=ids, validate=False).data),
    ):
        ours_pc = float(x[x > 0].min()) / 2
        t_ours, ours = timed(lambda: beta_distances(table, metric, pseudocount=ours_pc).matrix.to_numpy())
        t_base, base = timed(baseline)
        rows.append({"metric": metric, "n_samples": n_samples, "n_taxa": n_taxa,
                     "baseline": f"skbio beta_diversity({'jaccard' if metric == 'jaccard' else 'euclidean on clr'})",
                     "gutaxis_seconds": t_ours, "baseline_seconds": t_base,
                     "speedup": t_base / t_ours, "max_abs_diff": float(np.abs(ours - base).max()),
                     "baseline_extrapolated": False})
    t_ours, _ = timed(lambda: beta_distances(table, "robust_aitchison").matrix)
    m = 300
    r = rclr(x[:m])

    def robust(u, v):
        ok = ~np.isnan(u) & ~np.isnan(v)
        return float(np.sqrt(((u[ok] - v[ok]) ** 2).sum()))

    t_small, base = timed(lambda: beta_diversity(robust, r, ids=ids[:m], validate=False).data)
    ours_small = beta_distances(table.iloc[:m], "robust_aitchison").matrix.to_numpy()
    rows.append({"metric": "robust_aitchison", "n_samples": n_samples, "n_taxa": n_taxa,
                 "baseline": "skbio beta_diversity(callable nan-Euclidean on rclr)",
                 "gutaxis_seconds": t_ours, "baseline_seconds": t_small * (n_samples / m) ** 2,
                 "speedup": t_small * (n_samples / m) ** 2 / t_ours,
                 "max_abs_diff": float(np.abs(ours_small - base).max()), "baseline_extrapolated": True})
    return pd.DataFrame(rows)


BASELINE_SCRIPTS = {
    "permanova": ["bench_permanova.py", "--sizes", "2000", "5000", "--repeats", "1"],
    "differential": ["bench_differential.py"],
    "associations": ["bench_associations.py", "--repeat", "1"],
}


def run_baselines(results: Path) -> None:
    for name, cmd in BASELINE_SCRIPTS.items():
        print(f"[baseline] {name}: {' '.join(cmd)}", flush=True)
        start = time.perf_counter()
        out = subprocess.run([sys.executable, str(REPO / "benchmarks" / cmd[0])] + cmd[1:],
                             capture_output=True, text=True, cwd=REPO)
        text = (f"# python benchmarks/{' '.join(cmd)}   ({time.perf_counter() - start:.0f} s, "
                f"exit {out.returncode})\n" + out.stdout + (out.stderr[-3000:] if out.returncode else ""))
        (results / f"baseline_{name}.txt").write_text(text)
        print(text, flush=True)
    print("[baseline] beta_diversity", flush=True)
    beta = beta_baseline()
    beta.to_csv(results / "baseline_beta.tsv", sep="\t", index=False, float_format="%.4g")
    print(beta.to_string(index=False), flush=True)


# ---------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="200,1000,5000", help="stool samples, comma-separated")
    parser.add_argument("--workdir", default="/tmp/gutaxis_scale")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--targets", nargs="*", default=[], help="Snakemake targets (default: all)")
    parser.add_argument("--keep", action="store_true", help="keep data and results of every size")
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--taxa", type=int, default=1500)
    parser.add_argument("--metabolites", type=int, default=5000)
    parser.add_argument("--immune", type=int, default=30)
    parser.add_argument("--timeout-minutes", type=float, default=60.0, help="per size")
    parser.add_argument("--collect-only", action="store_true", help="only re-read finished runs")
    parser.add_argument("--no-baselines", action="store_true", help="skip the side-by-side baselines")
    parser.add_argument("--baselines-only", action="store_true", help="only the side-by-side baselines")
    parser.add_argument("--results", default=str(RESULTS))
    parser.add_argument("--repo", default=str(REPO),
                        help="workflow to run (default: this repository; e.g. a frozen copy of it)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    if args.baselines_only:
        run_baselines(results)
        return 0

    summaries, tables = [], []
    for size in sizes:
        wd = Path(args.workdir) / str(size)
        if not args.collect_only:
            run_size(size, args)
        summary = read_summary(wd, size)
        if summary is None:
            print(f"[{size}] no run in {wd}: skipped")
            continue
        summaries.append(summary)
        tables.append(collect(size, args))
        if not args.keep and not args.collect_only:
            for sub in ("data", "results"):
                shutil.rmtree(wd / sub, ignore_errors=True)
    if not tables:
        return 1
    rules = pd.concat(tables, ignore_index=True).sort_values(["rule", "wildcards", "size"], kind="stable")
    runs = pd.DataFrame(summaries)
    rules.drop(columns="benchmark").to_csv(results / "scale_rules.tsv", sep="\t", index=False, float_format="%.4g")
    runs.to_csv(results / "scale_runs.tsv", sep="\t", index=False)
    exponents = fit_exponents(rules)
    exponents.to_csv(results / "scale_exponents.tsv", sep="\t", index=False, float_format="%.3g")
    plot_scaling(rules, results / "scaling")
    rule_exponents(rules).to_csv(results / "scale_rule_exponents.tsv", sep="\t", index=False, float_format="%.3g")
    write_summary(runs, rules, results / "scale_summary.md")
    with pd.option_context("display.width", 200, "display.max_rows", 500, "display.max_colwidth", 40):
        print(runs.to_string(index=False))
        print()
        print(exponents.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    if not args.no_baselines and not args.collect_only:
        run_baselines(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
