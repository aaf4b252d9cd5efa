"""Benchmark: gutaxis PERMANOVA (free and within-subject) against scikit-bio's permanova.

Run by hand from the repository root:

    python benchmarks/bench_permanova.py                 # n = 2,000 and n = 5,000
    python benchmarks/bench_permanova.py --sizes 2000 --repeats 3

A paired design (n/2 subjects x 2 timepoints) with a Bray–Curtis matrix; every
method gets the same matrix and 999 permutations. Prints one row per (n, method):
seconds (best of --repeats), ratio to scikit-bio at the same n, pseudo-F, p and the
peak memory numpy allocated during one extra, untimed call (tracemalloc; the n x n
input is allocated before and not counted).
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial.distance import pdist, squareform

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

from gutaxis.diversity.permanova import permanova  # noqa: E402


def paired_bray_curtis(n: int, n_features: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    k = n // 2
    base = rng.gamma(0.5, size=(k, n_features))
    pre = base * rng.gamma(3.0, 1 / 3.0, size=(k, n_features))
    post = base * rng.gamma(3.0, 1 / 3.0, size=(k, n_features))
    post[:, :5] *= 1.3
    x = np.vstack([pre, post])
    ids = [f"S{i:05d}_pre" for i in range(k)] + [f"S{i:05d}_post" for i in range(k)]
    meta = pd.DataFrame({"timepoint": ["pre"] * k + ["post"] * k,
                         "subject_id": [f"S{i:05d}" for i in range(k)] * 2}, index=ids)
    d = squareform(pdist(x, "braycurtis"))
    return pd.DataFrame(d, index=ids, columns=ids), meta


def timed(function, repeats):
    """Best wall time of `repeats` plain runs, then one more run under tracemalloc for the peak."""
    best, result = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    tracemalloc.start()
    function()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return best, result, peak


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 5000])
    parser.add_argument("--permutations", type=int, default=999)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-skbio-above", type=int, default=2000,
                        help="run scikit-bio only up to this n (it is the slow one)")
    args = parser.parse_args(argv)

    from skbio import DistanceMatrix
    from skbio.stats.distance import permanova as skbio_permanova

    # warm-up: imports, numba compilation of scikit-bio's kernels, BLAS threads
    d_small, meta_small = paired_bray_curtis(60)
    skbio_permanova(DistanceMatrix(d_small.to_numpy(), list(d_small.index)), meta_small["timepoint"].to_numpy(),
                    permutations=9, seed=0)
    permanova(d_small, meta_small, ["timepoint"], strata="subject_id", permutations=9)

    rows = []
    for n in args.sizes:
        d, meta = paired_bray_curtis(n)
        reference = np.nan
        if n <= args.skip_skbio_above:
            dm = DistanceMatrix(d.to_numpy(), list(d.index))
            grouping = meta["timepoint"].to_numpy()
            seconds, result, peak = timed(lambda: skbio_permanova(dm, grouping, permutations=args.permutations,
                                                                  seed=1), args.repeats)
            reference = seconds
            rows.append([n, "scikit-bio permanova (free)", seconds, 1.0, result["test statistic"],
                         result["p-value"], peak / 2**20])
        for label, strata in (("gutaxis permanova (free)", None),
                              ("gutaxis permanova (within subject)", "subject_id")):
            seconds, result, peak = timed(lambda: permanova(d, meta, ["timepoint"], strata=strata,
                                                            permutations=args.permutations, seed=1),
                                          args.repeats)
            rows.append([n, label, seconds, seconds / reference if np.isfinite(reference) else np.nan,
                         result.loc[0, "pseudo_f"], result.loc[0, "p_value"], peak / 2**20])
        del d
    table = pd.DataFrame(rows, columns=["n", "method", "seconds", "ratio_to_skbio", "pseudo_f", "p_value",
                                        "peak_numpy_mib"])
    with pd.option_context("display.width", 160, "display.max_columns", 10):
        print(f"permutations = {args.permutations}, best of {args.repeats} runs")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


if __name__ == "__main__":
    main()
