"""Speed of QC-RLSC drift correction: 5,000 features x 5,000 injections, span chosen by LOO CV.

Run by hand from the repository root (2 cores):

    python benchmarks/bench_drift.py [--features 5000] [--injections 5000] [--batches 8] [--loqo]

Simulated log2 table: 8 batches, a pooled QC every 8th injection (plus one at each batch
end), a smooth per-feature drift in every batch plus batch offsets plus noise, ~10 % of
the cells missing.  Times :func:`gutaxis.metabolome.drift.qc_rlsc` (span grid
0.25-1.0, span per feature) and reports peak memory (tracemalloc: numpy allocations
of the call; ru_maxrss: the whole process).  ``--loqo`` also times the leave-one-QC-out
RSD (nested span choice), which is not part of the 60 s target.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from gutaxis.metabolome.drift import loqo_qc_rsd, qc_rlsc, qc_rsd_linear  # noqa: E402


def simulate(n_features: int, n_injections: int, n_batches: int, seed: int = 20261206):
    rng = np.random.default_rng(seed)
    order = np.arange(1, n_injections + 1, dtype=float)
    batch = np.minimum((order - 1) * n_batches // n_injections, n_batches - 1).astype(int)
    position = order - np.array([order[batch == k].min() for k in range(n_batches)])[batch]
    length = np.array([np.sum(batch == k) for k in range(n_batches)])[batch]
    qc = (position % 8 == 0) | (position == length - 1)
    phase = rng.uniform(0, 2 * np.pi, (n_batches, n_features))
    amplitude = rng.uniform(0.1, 0.5, (n_batches, n_features))
    offset = rng.normal(0, 0.4, (n_batches, n_features))
    u = (position / length)[:, None]
    drift = amplitude[batch] * np.sin(2 * np.pi * u + phase[batch]) + offset[batch]
    y = rng.normal(12, 2, n_features)[None, :] + drift + rng.normal(0, 0.05, (n_injections, n_features))
    y[rng.random(y.shape) < 0.10] = np.nan
    index = [f"inj{i:05d}" for i in range(n_injections)]
    table = pd.DataFrame(y, index=index, columns=[f"f{j:05d}" for j in range(n_features)])
    return (table, pd.Series(order, index=index), pd.Series([f"b{k:02d}" for k in batch], index=index),
            pd.Series(qc, index=index))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=5000)
    parser.add_argument("--injections", type=int, default=5000)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--loqo", action="store_true")
    args = parser.parse_args(argv)
    table, order, batches, qc = simulate(args.features, args.injections, args.batches)
    print(f"{args.injections} injections ({int(qc.sum())} QC, {args.batches} batches) x {args.features} features, "
          f"{table.isna().to_numpy().mean():.1%} missing")
    tracemalloc.start()
    start, cpu = time.perf_counter(), time.process_time()
    result = qc_rlsc(table, order, batches, qc)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"qc_rlsc: {seconds:.1f} s wall, {cpu:.1f} s CPU, load average {os.getloadavg()[0]:.1f}, "
          f"peak traced memory {peak / 2**20:,.0f} MiB "
          f"(input table {table.to_numpy().nbytes / 2**20:,.0f} MiB), "
          f"process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")
    fits = result.fits
    print(f"corrected {int((fits['status'] == 'corrected').sum())} / {len(fits)} feature-batches; "
          f"spans {fits['span'].value_counts().sort_index().to_dict()}")
    print(f"in-sample QC RSD median: raw {qc_rsd_linear(table, qc).median():.4f}, "
          f"corrected {qc_rsd_linear(result.table, qc).median():.4f} "
          f"(noise sd 0.05 log2 = RSD ~{0.05 * np.log(2):.4f})")
    if args.loqo:
        start, cpu = time.perf_counter(), time.process_time()
        loqo = loqo_qc_rsd(table, order, batches, qc, "qc_rlsc")
        print(f"loqo_qc_rsd(qc_rlsc): {time.perf_counter() - start:.1f} s wall, {time.process_time() - cpu:.1f} s CPU, "
              f"median {loqo.median():.4f}")


if __name__ == "__main__":
    main()
