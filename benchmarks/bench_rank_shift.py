"""Benchmark of the O(n log n) Hodges-Lehmann selection (gutaxis.stats.rank_shift, issue 16).

(a) The two Hodges-Lehmann functions alone, new (sorted-matrix selection) vs the
    previous brute force (every Walsh average / difference written down and
    partitioned: ``rank_shift.walsh_select_brute`` / ``difference_select_brute``,
    the old code path): one-sample at 5,000 features x 2,656 pairs, two-sample at
    5,000 features x (2,600 vs 2,600). The brute force is timed on a subset of
    features and extrapolated when the whole would take more than 5 minutes; the
    subset's results are compared with the new ones (must be equal).
(b) The whole ``gutaxis.differential.contrast.run_contrast`` on a metabolome-sized table:
    5,000 features x 5,312 samples (2,656 subjects x baseline/post, half
    responders, a three-level cohort covariate, log2-like normal values, 0.2% NaN),
    transform "none", methods paired, mixed, baseline, one thread. The time is
    split into the paired tests, their Hodges-Lehmann effect, the mixed models, the
    baseline tests and their Hodges-Lehmann shift.

Run by hand (not by pytest): ``python benchmarks/bench_rank_shift.py [--features 5000]
[--old-features 40] [--skip-a] [--skip-b]``.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
             "NUMEXPR_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"  # one thread, set before numpy is imported

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

from gutaxis.differential import contrast as differential  # noqa: E402
from gutaxis.stats import rank_shift  # noqa: E402
from gutaxis.stats.paired import _signed_rank_ci_ranks, hodges_lehmann  # noqa: E402

FIVE_MINUTES = 300.0


CPU = {}  # CPU seconds of the last _timed call per function name (one thread: ~ wall when idle)


def _timed(fn, *args, **kwargs):
    start, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    CPU[getattr(fn, "__name__", "")] = time.process_time() - cpu
    return out, time.perf_counter() - start


def _one_sample_ranks(d):
    n = (~np.isnan(d)).sum(axis=0)
    m = n * (n + 1) // 2
    q = np.array([_signed_rank_ci_ranks(int(k), 0.95) for k in n])
    return np.stack([(m - 1) // 2, m // 2, q[:, 0] - 1, q[:, 1] - 1])


def _two_sample_ranks(x, y):
    n1, n2 = (~np.isnan(x)).sum(axis=0), (~np.isnan(y)).sum(axis=0)
    m = n1 * n2
    k = np.ceil(m / 2 - 0.5 - 1.959963984540054 * np.sqrt(n1 * n2 * (n1 + n2 + 1) / 12.0))
    k = np.clip(k, 1, m).astype(np.int64)
    return np.stack([(m - 1) // 2, m // 2, k - 1, m - k])


def _compare(label, new_fn, old_fn, arrays, n_features, n_old):
    """Time new on all features, old on ``n_old`` (all if it fits in 5 minutes)."""
    new, t_new = _timed(new_fn, *arrays)
    cpu_new = CPU[new_fn.__name__]
    sub = [a[:, :n_old] for a in arrays]
    old, t_sub = _timed(old_fn, *sub)
    per_feature = t_sub / n_old
    if per_feature * n_features > FIVE_MINUTES:
        t_old, how = per_feature * n_features, f"extrapolated from {n_old} features"
    else:
        old, t_old = _timed(old_fn, *arrays)
        how = "measured on all features"
        sub = arrays
    equal = np.array_equal(np.asarray(new)[..., :sub[0].shape[1]], old, equal_nan=True)
    return dict(case=label, old_s=t_old, old_how=how, new_s=t_new, new_cpu_s=cpu_new,
                speedup=t_old / t_new, equal_on_compared=equal)


def part_a(n_features: int, n_old: int, seed: int):
    rng = np.random.default_rng(seed)
    d = rng.normal(0.2, 1.0, (2656, n_features))
    d[rng.random(d.shape) < 0.002] = np.nan
    x = rng.normal(0.3, 1.0, (2600, n_features))
    y = rng.normal(0.0, 1.0, (2600, n_features))
    rows = []
    ranks1 = _one_sample_ranks(d)
    rows.append(_compare(
        f"one-sample HL, {n_features:,} features x 2,656 pairs",
        lambda a: rank_shift.walsh_order_statistics(a, _one_sample_ranks(a)),
        lambda a: rank_shift.walsh_select_brute(a, _one_sample_ranks(a)),
        [d], n_features, n_old))
    rows.append(_compare(
        f"two-sample HL, {n_features:,} features x (2,600 vs 2,600)",
        lambda a, b: rank_shift.difference_order_statistics(a, b, _two_sample_ranks(a, b)),
        lambda a, b: rank_shift.difference_select_brute(a, b, _two_sample_ranks(a, b)),
        [x, y], n_features, n_old))
    # the public functions agree with the selections they wrap
    hl = hodges_lehmann(d[:, :50])
    sel = rank_shift.walsh_order_statistics(d[:, :50], ranks1[:, :50])
    assert np.array_equal(hl["ci_low"].to_numpy(), sel[2])
    return pd.DataFrame(rows)


def metabolome_table(n_subjects: int, n_features: int, seed: int):
    rng = np.random.default_rng(seed)
    subjects = [f"S{i:04d}" for i in range(n_subjects)]
    samples = pd.DataFrame({
        "sample_id": [f"{s}_{t}" for s in subjects for t in ("baseline", "post")],
        "subject_id": np.repeat(subjects, 2),
        "timepoint": ["baseline", "post"] * n_subjects})
    responders = pd.DataFrame({
        "subject_id": subjects,
        "dcr_recist": np.where(np.arange(n_subjects) % 2 == 0, "responder", "non_responder"),
        "cohort": rng.choice(["lung", "melanoma", "other"], n_subjects)})
    subject_effect = np.repeat(rng.normal(0, 1.0, (n_subjects, n_features)), 2, axis=0)
    post = np.tile([0.0, 1.0], n_subjects)[:, None] * rng.normal(0, 0.3, n_features)
    values = 18 + 2 * rng.normal(size=n_features) + subject_effect + post \
        + rng.normal(0, 1.0, (2 * n_subjects, n_features))
    values[rng.random(values.shape) < 0.002] = np.nan
    table = pd.DataFrame(values, index=samples["sample_id"],
                         columns=[f"M{j:05d}" for j in range(n_features)])
    return table, samples, responders


def part_b(n_features: int, seed: int):
    table, samples, responders = metabolome_table(2656, n_features, seed)
    spent, spent_cpu = {}, {}

    def clock(module, name):
        fn = getattr(module, name)

        def wrapper(*args, **kwargs):
            out, t = _timed(fn, *args, **kwargs)
            spent[name] = spent.get(name, 0.0) + t
            spent_cpu[name] = spent_cpu.get(name, 0.0) + CPU[fn.__name__]
            return out
        setattr(module, name, wrapper)
        return fn

    originals = {name: clock(differential, name) for name in
                 ("_paired_analysis", "_mixed_analysis", "_baseline_analysis",
                  "hodges_lehmann", "hodges_lehmann_shift")}
    try:
        result, total = _timed(
            differential.run_contrast, table, samples,
            {"name": "post_vs_baseline", "pre": "baseline", "post": "post"},
            transform="none", responders=responders, covariates=("cohort",),
            methods=("paired", "mixed", "baseline"))
    finally:
        for name, fn in originals.items():
            setattr(differential, name, fn)
    cpu_total = CPU["run_contrast"]
    rows = []
    for label, clocks in [("run_contrast total", (total, cpu_total))] + [
            (label, tuple(c[a] - (c[b] if b else 0.0) for c in (spent, spent_cpu)))
            for label, a, b in [
                ("paired tests (t, Wilcoxon) without HL", "_paired_analysis", "hodges_lehmann"),
                ("paired Hodges-Lehmann + CI", "hodges_lehmann", None),
                ("mixed models (lmm_time, lmm_response)", "_mixed_analysis", None),
                ("baseline tests (OLS, Mann-Whitney) without HL", "_baseline_analysis",
                 "hodges_lehmann_shift"),
                ("baseline Hodges-Lehmann shift + CI", "hodges_lehmann_shift", None)]]:
        rows.append((label, *clocks))
    parts = ("_paired_analysis", "_mixed_analysis", "_baseline_analysis")
    rows.append(("rest (validation, transform, assembly)",
                 total - sum(spent[p] for p in parts), cpu_total - sum(spent_cpu[p] for p in parts)))
    n_rows = len(result.results) if hasattr(result, "results") else np.nan
    return pd.DataFrame(rows, columns=["part", "wall_s", "cpu_s"]), n_rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=5000)
    parser.add_argument("--old-features", type=int, default=40,
                        help="features the brute force is timed on when it would take > 5 min")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-a", action="store_true")
    parser.add_argument("--skip-b", action="store_true")
    args = parser.parse_args(argv)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_colwidth", 60)

    # compiled code: load (or build) it once, outside the timings, and say how long that took
    _, t_jit = _timed(rank_shift.walsh_order_statistics, np.arange(300.0)[:, None] % 7,
                      [[0], [1000]], brute_max=0)
    _, t_jit2 = _timed(rank_shift.difference_order_statistics, np.arange(300.0)[:, None] % 7,
                       np.arange(200.0)[:, None] % 5, [[0], [1000]], brute_max=0)
    print(f"numba: first calls (cache load or compile) {t_jit + t_jit2:.2f} s")
    print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores; other jobs inflate wall time, "
          "not CPU time)")
    if not args.skip_a:
        print("\n(a) Hodges-Lehmann functions alone, one thread")
        print(part_a(args.features, args.old_features, args.seed).to_string(index=False))
    if not args.skip_b:
        print(f"\n(b) run_contrast, {args.features:,} features x 5,312 samples, one thread")
        table, n_rows = part_b(args.features, args.seed)
        print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
        print(f"result rows: {n_rows}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
