#!/usr/bin/env python
"""Simulation study of compositional differential testing (issue 16), run by hand.

Every (method, term) of :func:`gutaxis.differential.contrast.run_contrast` that makes
calls is judged on four scenarios (``benchmarks/simcomp.py`` holds the
simulators and the scoring; ``benchmarks/README.md`` the definitions and
results):

a  blooms: 60 patients, 250 taxa, 5% up / 3% down 3-fold in everyone, 3%
   responder-only (truth in absolute abundance, ~50% zeros after sequencing);
b  dropout: 5% of taxa x 0.01 after treatment in 90% of subjects, 4 up / 4 down;
c  complete null;
d  Thriene yogurt period with pre/post swapped in a random half of subjects.

Engines: ``today`` (rCLR, paired + mixed, ANCOM-BC2 sensitivity, as the demo)
and ``new`` (CLR with ``bias_correction="mode"``; skipped with a message while
``run_contrast`` has no such keyword). The workflow's preprocessing is
reproduced: prevalence filter (min_prevalence 0.1 over the analysed samples),
then the transform (see ``gutaxis.differential.run``).

Outputs in ``--out`` (default ``benchmarks/results/compositional_sim``):
``runs_<scenario>_<engine>.tsv`` (one row per run x method x term),
``diagnostics_<scenario>_<engine>.tsv`` (per run: zeros, taxa kept, the mean
relative change of unchanged taxa), and ``summary.tsv`` / ``summary.md`` rebuilt
from every ``runs_*.tsv`` in the folder. Same seeds => byte-identical tables
(timings go to the terminal only).

Usage (from the repository root)::

    python benchmarks/sim_compositional.py --engine today --seeds 20
    python benchmarks/sim_compositional.py --engine new --scenarios a c --seeds 20
    python benchmarks/sim_compositional.py --summary-only
"""

from __future__ import annotations

import os

# one BLAS thread per worker process: the parallelism is over runs
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import dataclasses
import inspect
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "workflow" / "scripts"))

import simcomp  # noqa: E402

ALPHA = 0.1
MIN_PREVALENCE = 0.1
CLR_PSEUDOCOUNT_FRACTION = 0.5
ALL_SCENARIOS = ("a", "b", "c", "d", "e")
SCENARIO_NAMES = {**{k: s.name for k, s in simcomp.SCENARIOS.items()}, "d": "d_thriene_swap",
                  "e": "e_mars_swap"}
NULLS = ("c", "d", "e")
#: label-swap scenarios of real paired data: scenario -> (example under config/examples, the
#: contrast swapped, the environment variable that may point at the data folder)
REAL_SWAPS = {"d": ("thriene_yogurt_oats", "yogurt", "THRIENE_DATA"),
              "e": ("mmcd_mars_ibs", "t6_vs_t0", "MARS_DATA")}
RUN_KEYS = ["scenario", "engine", "seed", "method", "term", "effect_scale"]


# --------------------------------------------------------------------------
# Inputs of one run
# --------------------------------------------------------------------------

def example_data_dir(example: str, variable: str) -> Path:
    """The example's data folder (holds SOURCE.md): $<variable>, else ../shared/data/<example>
    of the repository root (as the example config) or of the folder above it (a worktree)."""
    candidates = [Path(p) for p in [os.environ.get(variable)] if p] + [
        base / "shared" / "data" / example for base in (ROOT.parent, ROOT.parent.parent)]
    for path in candidates:
        if (path / "SOURCE.md").exists():
            return path
    sys.exit(f"{example} data not found in {[str(p) for p in candidates]} "
             f"(set {variable} to the folder with SOURCE.md)")


def example_sheet_builder(example: str):
    """The example's own make_sheets.py, loaded under a name of its own (two examples' modules
    share the file name)."""
    import importlib.util

    sys.path.insert(0, str(ROOT / "config" / "examples"))  # their shared sheet_cli
    path = ROOT / "config" / "examples" / example / "make_sheets.py"
    spec = importlib.util.spec_from_file_location(f"make_sheets_{example}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@lru_cache(maxsize=2)
def example_inputs(scenario: str):
    """Taxa table, sheets and contrast of a real example, read as its config says: the sheets
    by the example's make_sheets.py, the table by the workflow's importer with the config's
    `modalities.taxa` spec (its ../shared/data/<example> prefix replaced by the data folder).
    Excluded samples are left out."""
    import yaml
    from gutaxis.io.study import import_modality

    example, contrast_name, variable = REAL_SWAPS[scenario]
    data = example_data_dir(example, variable)
    config = yaml.safe_load((ROOT / "config" / "examples" / example / "config.yaml").read_text())
    spec = dict(config["modalities"]["taxa"])
    spec["path"] = str(data / Path(spec["path"]).relative_to(f"../shared/data/{example}"))
    contrast = next(c for c in config["design"]["contrasts"] if c["name"] == contrast_name)
    samples, subjects = example_sheet_builder(example).build(data)
    excluded = samples.loc[samples["exclude"] == "yes", "sample_id"]
    imported = import_modality(spec, samples, "samples.tsv", "error", excluded)
    kept = samples[(samples["exclude"] != "yes")
                   & samples["timepoint"].isin([contrast["pre"], contrast["post"]])]
    return (imported.table, kept[["sample_id", "subject_id", "timepoint"]].reset_index(drop=True),
            subjects, dict(contrast))


def build_inputs(scenario: str, seed: int) -> dict:
    """Table (relative), sheets, contrast and truth of one run."""
    if scenario in REAL_SWAPS:
        table, samples, subjects, contrast = example_inputs(scenario)
        rng = np.random.default_rng([seed, sum(map(ord, SCENARIO_NAMES[scenario]))])
        samples, _ = simcomp.swap_half(samples, contrast["pre"], contrast["post"], rng)
        truth = pd.DataFrame({"effect_class": "none", "sign": 0}, index=table.columns)
        return dict(table=table, samples=samples, subjects=subjects, responders=None,
                    contrast=contrast, truth=truth)
    trial = simcomp.simulate(simcomp.SCENARIOS[scenario], seed)
    contrast = {"name": "post_vs_baseline", "pre": simcomp.PRE, "post": simcomp.POST}
    return dict(table=trial.relative, samples=trial.samples, subjects=None,
                responders=trial.responders, contrast=contrast, truth=trial.truth)


def analysed_table(table: pd.DataFrame, samples: pd.DataFrame, contrast: dict) -> pd.DataFrame:
    """Samples at the contrast's two timepoints with a subject (gutaxis.differential.run)."""
    sheet = samples.set_index("sample_id")
    ok = sheet.index[sheet["timepoint"].isin([contrast["pre"], contrast["post"]])
                     & (sheet["subject_id"].astype(str) != "")]
    return table.loc[table.index.isin(ok)]


def prevalence_filtered(table: pd.DataFrame) -> pd.DataFrame:
    """The workflow's prevalence filter (gutaxis.differential.run, compositions)."""
    from gutaxis.diversity.filtering import filter_features

    return filter_features(table, MIN_PREVALENCE, 0.0, 0.0, renormalise=False,
                           source="simulated table").table


def clr_options(table: pd.DataFrame) -> dict:
    """CLR pseudocount as gutaxis.differential.run: fraction x smallest non-zero value."""
    values = table.to_numpy()
    positive = values[values > 0]
    return {"pseudocount": CLR_PSEUDOCOUNT_FRACTION * (float(positive.min()) if positive.size
                                                       else 1.0)}


def engine_keywords() -> set:
    """Keywords run_contrast takes: its parameters and, since issue 21, the attributes of
    ContrastSettings it accepts as keyword overrides."""
    from gutaxis.differential import contrast

    keywords = set(inspect.signature(contrast.run_contrast).parameters)
    settings = getattr(contrast, "ContrastSettings", None)
    if settings is not None:
        keywords |= {f.name for f in dataclasses.fields(settings)}
    return keywords


def new_engine_available() -> bool:
    return "bias_correction" in engine_keywords()


def call_engine(engine: str, inputs: dict, filtered: pd.DataFrame, new_sensitivity: str | None):
    """run_contrast as the workflow calls it for taxa (demo settings); returns results
    and a note."""
    from gutaxis.differential.contrast import run_contrast
    from gutaxis.io.errors import InputError
    from gutaxis.differential.transforms import transform_table

    responders = inputs["responders"]
    common = dict(responders=responders, response_column="response", covariates=("cohort",),
                  subjects=inputs["subjects"], modality="taxa", alpha=ALPHA, min_pairs=5,
                  min_group_size=3, methods=("paired", "mixed"),
                  wilcoxon_options={"zero_method": "wilcox"}, effect="hodges_lehmann",
                  confidence=0.95, mixed_df="between_within", ancombc2_max_subjects=300)
    if engine == "today":
        transformed = transform_table(filtered, "rclr")
        result = run_contrast(filtered, inputs["samples"], inputs["contrast"], transformed,
                              sensitivity="ancombc2", **common)
        return result.results, ""
    transformed = transform_table(filtered, "clr", **clr_options(filtered))
    keywords = engine_keywords()
    common.pop("ancombc2_max_subjects")  # gone with ANCOM-BC2 in the new engine
    # the workflow's default since the new engine: a pair below detection twice is a zero change
    common["wilcoxon_options"] = {"zero_method": "zsplit"}
    if "presence_tests" in keywords:
        common["presence_tests"] = True
    if new_sensitivity is not None:
        common["sensitivity"] = new_sensitivity
    try:
        result = run_contrast(filtered, inputs["samples"], inputs["contrast"], transformed,
                              bias_correction="mode", **common)
        return result.results, ""
    except InputError as err:
        if new_sensitivity is None or "sensitivity" not in str(err):
            raise
        common.pop("sensitivity")
        result = run_contrast(filtered, inputs["samples"], inputs["contrast"], transformed,
                              bias_correction="mode", **common)
        return result.results, f"sensitivity {new_sensitivity!r} refused, ran without: {err}"


def one_run(job: tuple) -> tuple[pd.DataFrame, dict, float]:
    """Simulate, preprocess, test and score one (scenario, engine, seed)."""
    scenario, engine, seed, new_sensitivity = job
    start = time.perf_counter()
    from gutaxis.differential.transforms import transform_table

    inputs = build_inputs(scenario, seed)
    table = analysed_table(inputs["table"], inputs["samples"], inputs["contrast"])
    filtered = prevalence_filtered(table)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results, note = call_engine(engine, inputs, filtered, new_sensitivity)
    truth = inputs["truth"]
    kept = filtered.columns
    rows = []
    results = results.assign(effect_scale=results["effect_scale"].fillna("").astype(str))
    for (method, term, scale), part in results.groupby(["method", "term", "effect_scale"],
                                                       sort=True):
        kind = simcomp.term_kind(term)
        if scenario in REAL_SWAPS:
            kind = "null"  # nothing is true under the label swap
        score = simcomp.score_family(part, truth, kept, kind)
        rows.append({"scenario": SCENARIO_NAMES[scenario], "engine": engine, "seed": seed,
                     "method": method, "term": term, "effect_scale": scale, **score})
    runs = pd.DataFrame(rows)

    untouched = truth.index[(truth["effect_class"] == "none") & truth.index.isin(kept)]
    diag = {"scenario": SCENARIO_NAMES[scenario], "engine": engine, "seed": seed,
            "n_samples": len(table), "zero_fraction": float((table.to_numpy() == 0).mean()),
            "n_taxa": table.shape[1], "n_kept": len(kept), "note": note}
    if scenario not in REAL_SWAPS:
        for name, tr in (("rclr", transform_table(filtered, "rclr")),
                         ("clr", transform_table(filtered, "clr", **clr_options(filtered)))):
            shift, negative = simcomp.relative_shift(tr.values, inputs["samples"], untouched)
            diag[f"untouched_mean_{name}_change"] = shift
            diag[f"untouched_{name}_negative_fraction"] = negative
    return runs, diag, time.perf_counter() - start


# --------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------

def summarise(out: Path) -> pd.DataFrame:
    """Mean FDR, mean calls, share of runs with <= 1 call and mean power per
    scenario x engine x method x term, from every runs_*.tsv in ``out``."""
    files = sorted(out.glob("runs_*.tsv"))
    if not files:
        return pd.DataFrame()
    runs = pd.concat([pd.read_csv(f, sep="\t", keep_default_na=False,
                                  na_values=["", "nan", "NaN"]) for f in files],
                     ignore_index=True)
    runs["effect_scale"] = runs["effect_scale"].fillna("")
    keys = ["scenario", "engine", "method", "term", "effect_scale"]
    agg = {"n_runs": ("seed", "size"), "mean_tested": ("n_tested", "mean"),
           "mean_calls": ("calls", "mean"), "mean_false": ("false_calls", "mean"),
           "mean_fdr": ("fdr", "mean"), "mean_fdr_any_change": ("fdr_any_change", "mean"),
           "share_le1_call": ("calls_le1", "mean")}
    for name in simcomp.POWER_CLASSES:
        agg[f"power_{name}"] = (f"power_{name}", "mean")
        agg[f"n_{name}"] = (f"n_{name}", "mean")
    summary = runs.groupby(keys, sort=True).agg(**agg).reset_index()
    null = summary["scenario"].isin([SCENARIO_NAMES[k] for k in NULLS])
    summary["target"] = np.where(null, "<= 1 call in >= 90% of runs", "mean FDR <= 0.10")
    summary["meets"] = np.where(null, summary["share_le1_call"] >= 0.9,
                                summary["mean_fdr"] <= 0.10)
    summary["meets"] = np.where(summary["meets"], "yes", "NO")
    return summary


def _fmt(x, digits=2):
    if isinstance(x, str):
        return x
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "-"
    return f"{x:.{digits}f}"


def short_scale(row) -> str:
    """The effect scale of a new-engine row, up to its first ':' (e.g. 'clr, bias-corrected')."""
    if row["engine"] == "today" or not row["effect_scale"]:
        return ""
    return f" ({str(row['effect_scale']).split(':')[0]})"


def markdown(summary: pd.DataFrame) -> str:
    """The summary as a markdown table (one row per scenario x engine x method x term)."""
    head = ("| scenario | engine | method | term | runs | mean calls | mean FDR | runs with <= 1 call "
            "| power 3-fold all | power responder-only | power dropout | target met |")
    lines = [head, "|" + " --- |" * 12]
    for _, r in summary.iterrows():
        lines.append("| " + " | ".join([
            r["scenario"], r["engine"], r["method"] + short_scale(r),
            f"`{r['term']}`", str(int(r["n_runs"])), _fmt(r["mean_calls"], 1),
            _fmt(r["mean_fdr"]), f"{100 * r['share_le1_call']:.0f}%",
            _fmt(r["power_3fold_all"]), _fmt(r["power_responder_only"]),
            _fmt(r["power_dropout"]), r["meets"]]) + " |")
    return "\n".join(lines) + "\n"


def write_summary(out: Path) -> pd.DataFrame:
    summary = summarise(out)
    if summary.empty:
        return summary
    summary.to_csv(out / "summary.tsv", sep="\t", index=False, float_format="%.6g")
    (out / "summary.md").write_text(markdown(summary))
    diags = sorted(out.glob("diagnostics_*.tsv"))
    if diags:
        d = pd.concat([pd.read_csv(f, sep="\t") for f in diags], ignore_index=True)
        cols = [c for c in d.columns if c.startswith("untouched_") or c in
                ("zero_fraction", "n_kept")]
        d.groupby(["scenario", "engine"])[cols].mean().reset_index().to_csv(
            out / "diagnostics_summary.tsv", sep="\t", index=False, float_format="%.6g")
    return summary


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenarios", nargs="+", default=list(ALL_SCENARIOS), choices=ALL_SCENARIOS)
    p.add_argument("--seeds", type=int, default=20, help="seeds 0 .. N-1 per scenario (20)")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--engine", choices=("today", "new", "both"), default="today")
    p.add_argument("--out", type=Path, default=HERE / "results" / "compositional_sim")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (2)")
    p.add_argument("--new-sensitivity", default="",
                   help="sensitivity= passed to the new engine (default: its own default; a "
                        "refused value is retried without, with a note)")
    p.add_argument("--engine-root", type=Path, default=None,
                   help="repository whose workflow/scripts/gutaxis is tested (default: this "
                        "one), e.g. a checkout of the new engine")
    p.add_argument("--summary-only", action="store_true",
                   help="rebuild summary.tsv / summary.md from the runs_*.tsv present")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.summary_only:
        print(write_summary(args.out).to_string())
        return
    if args.engine_root is not None:
        sys.path.insert(0, str(args.engine_root.resolve() / "workflow" / "scripts"))
    import gutaxis  # noqa: E402
    print(f"engine code: {Path(gutaxis.__file__).parent}", file=sys.stderr)
    sensitivity = args.new_sensitivity or None
    engines = ["today", "new"] if args.engine == "both" else [args.engine]
    if "new" in engines and not new_engine_available():
        print("engine 'new' skipped: gutaxis.differential.contrast.run_contrast has no keyword "
              "'bias_correction' yet (the bias-corrected engine is not in this checkout)",
              file=sys.stderr)
        engines.remove("new")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    for engine in engines:
        for scenario in args.scenarios:
            jobs = [(scenario, engine, s, sensitivity) for s in seeds]
            start = time.perf_counter()
            runs, diags, times = [], [], []
            with ProcessPoolExecutor(max_workers=args.jobs) as pool:
                for r, d, t in pool.map(one_run, jobs):
                    runs.append(r)
                    diags.append(d)
                    times.append(t)
                    print(f"{SCENARIO_NAMES[scenario]} {engine} seed {d['seed']}: "
                          f"{t:.1f} s, {int(r['calls'].sum())} calls", file=sys.stderr,
                          flush=True)
            tag = f"{SCENARIO_NAMES[scenario]}_{engine}"
            runs = pd.concat(runs, ignore_index=True).sort_values(RUN_KEYS, kind="mergesort")
            runs.to_csv(args.out / f"runs_{tag}.tsv", sep="\t", index=False, float_format="%.6g")
            pd.DataFrame(diags).sort_values("seed").to_csv(
                args.out / f"diagnostics_{tag}.tsv", sep="\t", index=False, float_format="%.6g")
            print(f"{tag}: {len(jobs)} runs, {time.perf_counter() - start:.0f} s wall, "
                  f"median {np.median(times):.1f} s per run", file=sys.stderr, flush=True)
    summary = write_summary(args.out)
    if not summary.empty:
        print(markdown(summary))


if __name__ == "__main__":
    main()
