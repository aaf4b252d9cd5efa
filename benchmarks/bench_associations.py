"""Benchmark the block association kernels against a per-pair scipy loop.

Run by hand (not part of pytest)::

    python benchmarks/bench_associations.py            # 1,500 taxa x 5,000 metabolites x 400 samples
    python benchmarks/bench_associations.py --small    # quick smoke run

Each method runs in its own subprocess so that its peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``, which includes the interpreter,
numpy and the simulated input) is its own.  Seconds are wall-clock time of the
computation only (data simulation excluded), the fastest of ``--repeat`` runs
(the machine may be shared).  The scipy baseline times
``scipy.stats.spearmanr`` over a random ``--loop-fraction`` of the pairs and
extrapolates linearly to all pairs; ``ratio`` is that extrapolated time divided
by the method's time.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))


def simulate(n_samples, n_taxa, n_metabolites, seed):
    """Tie-heavy taxa (zero-inflated counts) and continuous metabolites, with cohorts."""
    rng = np.random.default_rng(seed)
    index = pd.Index([f"S{i:05d}" for i in range(n_samples)], name="subject_id")
    counts = rng.poisson(0.1 + rng.gamma(0.5, 4.0, n_taxa), (n_samples, n_taxa)).astype(float)
    taxa = pd.DataFrame(counts, index=index, columns=[f"taxon_{j:05d}" for j in range(n_taxa)])
    mets = rng.lognormal(0.0, 1.0, (n_samples, n_metabolites))
    mets[:, :50] *= np.exp(2.0 * np.log1p(counts[:, :50]))  # a few true links
    metabolites = pd.DataFrame(mets, index=index, columns=[f"met_{j:05d}" for j in range(n_metabolites)])
    covariates = pd.DataFrame({"cohort": rng.choice(["lung", "esophageal", "other"], n_samples)}, index=index)
    return taxa, metabolites, covariates


def worker(args):
    from scipy import stats

    from gutaxis.integration.associations import associate_blocks

    taxa, metabolites, covariates = simulate(args.n_samples, args.n_taxa, args.n_metabolites, args.seed)
    pairs = args.n_taxa * args.n_metabolites
    calls = {
        "block": lambda: associate_blocks(taxa, metabolites),
        "block_partial": lambda: associate_blocks(taxa, metabolites, covariates, max_q=0.05),
        "block_permutation": lambda: associate_blocks(
            taxa, metabolites, covariates, n_perm=args.n_perm, seed=args.seed,
            strata=covariates["cohort"], max_q=0.05),
    }
    if args.worker in calls:
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            res = calls[args.worker]()
            times.append(time.perf_counter() - start)
            written = len(res.table)
            pairs = res.summary["pairs_tested"]
            del res
        print(json.dumps({"seconds": min(times), "all_seconds": times, "pairs": pairs,
                          "written": int(written),
                          "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
        return
    if args.worker == "scipy_loop":
        rng = np.random.default_rng(args.seed)
        n_loop = max(1, int(round(pairs * args.loop_fraction)))
        chosen = rng.choice(pairs, n_loop, replace=False)
        ia, ib = np.divmod(chosen, args.n_metabolites)
        a_values, b_values = taxa.to_numpy(), metabolites.to_numpy()
        start = time.perf_counter()
        for i, j in zip(ia, ib):
            stats.spearmanr(a_values[:, i], b_values[:, j])
        elapsed = time.perf_counter() - start
        print(json.dumps({"seconds": elapsed * pairs / n_loop, "measured_seconds": elapsed,
                          "measured_pairs": int(n_loop), "pairs": pairs,
                          "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
        return


def run(method, args, **overrides):
    opts = vars(args) | overrides
    cmd = [sys.executable, __file__, "--worker", method]
    for key in ("n_samples", "n_taxa", "n_metabolites", "seed", "loop_fraction", "n_perm", "repeat"):
        cmd += [f"--{key.replace('_', '-')}", str(opts[key])]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-samples", type=int, default=400)
    parser.add_argument("--n-taxa", type=int, default=1500)
    parser.add_argument("--n-metabolites", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--loop-fraction", type=float, default=0.01)
    parser.add_argument("--n-perm", type=int, default=999)
    parser.add_argument("--repeat", type=int, default=3, help="runs per block method; the fastest is reported")
    parser.add_argument("--small", action="store_true", help="150 x 500 x 100, for a smoke run")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.small:
        args.n_samples, args.n_taxa, args.n_metabolites = 100, 150, 500
    if args.worker:
        worker(args)
        return

    rows = []
    loop = run("scipy_loop", args)
    rows.append(("scipy.stats.spearmanr loop (extrapolated from "
                 f"{loop['measured_pairs']:,} pairs, {loop['measured_seconds']:.1f} s)",
                 loop["pairs"], loop["seconds"], loop["peak_mb"], 1.0, float("nan")))
    for method, label in (("block", "block Spearman + BH, full table"),
                          ("block_partial", "block partial Spearman (cohort) + BH, q<=0.05 written")):
        r = run(method, args)
        rows.append((label, r["pairs"], r["seconds"], r["peak_mb"], loop["seconds"] / r["seconds"], r["written"]))
    # permutations cost one matrix product per permutation: shown at demo-like size
    demo = dict(n_samples=48, n_taxa=200, n_metabolites=500)
    r = run("block_permutation", args, **demo)
    rows.append((f"block partial Spearman, {args.n_perm} stratified permutations "
                 f"({demo['n_taxa']} x {demo['n_metabolites']} x {demo['n_samples']})",
                 r["pairs"], r["seconds"], r["peak_mb"], float("nan"), r["written"]))

    table = pd.DataFrame(rows, columns=["method", "pairs_tested", "seconds", "peak_mb", "ratio", "rows_written"])
    table["rows_written"] = table["rows_written"].astype("Int64")
    print(f"n_samples={args.n_samples} n_taxa={args.n_taxa} n_metabolites={args.n_metabolites} "
          f"(ratio = extrapolated scipy loop time / method time)")
    with pd.option_context("display.width", 200, "display.max_colwidth", 90):
        print(table.to_string(index=False, float_format=lambda v: f"{v:,.2f}"))


if __name__ == "__main__":
    main()
