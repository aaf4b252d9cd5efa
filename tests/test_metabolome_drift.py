"""QC-RLSC drift correction and QC precision measures against brute force and planted drift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA

from gutaxis.metabolome.drift import (
    DEFAULT_SPANS,
    FIT_COLUMNS,
    leave_one_out_median,
    local_linear_fit,
    loqo_qc_rsd,
    qc_pc_batch_r2,
    qc_rlsc,
    qc_rsd_linear,
    replicate_rsd,
    replicate_rsd_table,
)

NOISE = 0.04  # log2 sd of the planted measurement noise


# --- independent reference implementations ----------------------------------------------


def brute_local_fit(t0: float, t_qc: np.ndarray, y: np.ndarray, span: float) -> float:
    """Weighted least squares of y on (1, t - t0) with the documented tricube neighbourhood.

    Written from the definition, one point and one feature at a time: distances sorted,
    the q-th smallest (q = floor(span n)) is the bandwidth; span > 1 scales the largest.
    Missing y keep their place in the neighbourhood but drop out of the fit.
    """
    d = np.abs(t_qc - t0)
    n = len(t_qc)
    h = sorted(d)[min(max(int(np.floor(span * n + 1e-9)), 1), n) - 1] if span <= 1 else span * d.max()
    w = np.array([(1 - (dk / h) ** 3) ** 3 if dk < h else 0.0 for dk in d])
    use = np.isfinite(y) & (w > 0)
    if use.sum() < 2 or len(np.unique(t_qc[use])) < 2:
        return np.nan
    x = np.column_stack([np.ones(use.sum()), t_qc[use] - t0])
    sw = np.sqrt(w[use])
    coef, *_ = np.linalg.lstsq(x * sw[:, None], y[use] * sw, rcond=None)
    return coef[0]


def brute_loo_sse(t_qc: np.ndarray, y: np.ndarray, span: float) -> float:
    """Sum of squared errors, each observed QC predicted by refitting without its value.

    span = inf is the no-drift model: the median of the other QC values.
    """
    total = 0.0
    for k in np.flatnonzero(np.isfinite(y)):
        without = y.copy()
        without[k] = np.nan
        if np.isinf(span):
            pred = np.nanmedian(without)
        else:
            pred = brute_local_fit(t_qc[k], t_qc, without, span)
        if not np.isfinite(pred):
            return np.inf
        total += (y[k] - pred) ** 2
    return total


def plain_rsd(linear: np.ndarray) -> float:
    v = linear[np.isfinite(linear)]
    return np.std(v, ddof=1) / np.mean(v)


# --- simulated runs ---------------------------------------------------------------------


def simulate(n_batches=3, per_batch=40, n_features=30, qc_every=3, drift=True, missing=0.0, seed=7):
    """Log2 table with smooth per-batch drift (quadratic + sine), batch offsets, noise."""
    rng = np.random.default_rng(seed)
    n = n_batches * per_batch
    order = np.arange(1, n + 1, dtype=float)
    batch = np.repeat(np.arange(n_batches), per_batch)
    position = np.tile(np.arange(per_batch), n_batches)
    qc = (position % qc_every == 0) | (position == per_batch - 1)
    u = position[:, None] / (per_batch - 1)
    base = rng.normal(14, 1.5, n_features)
    curve = np.zeros((n, n_features))
    if drift:
        a = rng.uniform(-0.8, 0.8, (n_batches, n_features))
        phase = rng.uniform(0, 2 * np.pi, (n_batches, n_features))
        offset = rng.normal(0, 0.5, (n_batches, n_features))
        curve = a[batch] * (u - 0.5) ** 2 + 0.3 * np.sin(np.pi * u + phase[batch]) + offset[batch]
    noise = rng.normal(0, NOISE, (n, n_features))
    y = base + curve + noise
    if missing:
        y[rng.random(y.shape) < missing] = np.nan
    index = [f"i{k:03d}" for k in range(n)]
    table = pd.DataFrame(y, index=index, columns=[f"f{j:02d}" for j in range(n_features)])
    truth = pd.DataFrame(base + noise, index=index, columns=table.columns)
    return (table, pd.Series(order, index=index), pd.Series([f"b{k}" for k in batch], index=index),
            pd.Series(qc, index=index), truth)


@pytest.fixture(scope="module")
def planted():
    return simulate()


# --- the smoother -----------------------------------------------------------------------


@pytest.mark.parametrize("span", [0.5, 0.8, 1.0, 1.7])
def test_local_fit_equals_brute_force_weighted_least_squares(span):
    rng = np.random.default_rng(3)
    t_qc = np.sort(rng.choice(np.arange(1, 60), 11, replace=False)).astype(float)
    y = rng.normal(0, 1, (11, 3)) + 0.05 * t_qc[:, None]
    y[2, 1] = y[7, 1] = np.nan  # missing QC values drop out of one feature's fit
    t_eval = np.array([t_qc[0], 4.5, 17.0, t_qc[5], 33.3, t_qc[-1]])
    fast = local_linear_fit(t_eval, t_qc, y, span)
    for j in range(3):
        for i, t0 in enumerate(t_eval):
            expected = brute_local_fit(t0, t_qc, y[:, j], span)
            if np.isfinite(expected):
                assert fast[i, j] == pytest.approx(expected, rel=1e-9, abs=1e-9)
            else:
                assert np.isnan(fast[i, j])


@pytest.mark.parametrize("span", [0.5, 1.0])
def test_leave_one_out_equals_refit_without_the_value(span):
    rng = np.random.default_rng(4)
    t_qc = np.sort(rng.choice(np.arange(1, 80), 12, replace=False)).astype(float)
    y = rng.normal(0, 1, (12, 2)) + np.sin(t_qc / 10)[:, None]
    y[5, 0] = np.nan
    loo = local_linear_fit(t_qc, t_qc, y, span, leave_out_diagonal=True)
    for k in range(12):
        for j in range(2):
            without = y[:, j].copy()
            without[k] = np.nan
            expected = brute_local_fit(t_qc[k], t_qc, without, span)
            assert loo[k, j] == pytest.approx(expected, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("drift,median_candidate", [(True, True), (True, False), (False, True)])
def test_span_is_the_brute_force_leave_one_out_minimiser_pooled_over_batches(drift, median_candidate):
    table, order, batches, qc, _ = simulate(n_features=6, missing=0.05, drift=drift, seed=11)
    result = qc_rlsc(table, order, batches, qc, median_candidate=median_candidate)
    fits = result.fits.set_index(["feature_id", "batch"])
    models = list(DEFAULT_SPANS) + ([np.inf] if median_candidate else [])
    picked = []
    for feature in table.columns:
        sse = np.zeros(len(models))
        for batch in sorted(batches.unique()):
            rows = (batches == batch).to_numpy() & qc.to_numpy()
            t_qc, y = order[rows].to_numpy(), table.loc[rows, feature].to_numpy()
            sse += [brute_loo_sse(t_qc, y, s) for s in models]
        best = max(i for i in range(len(sse)) if sse[i] == sse.min())  # ties -> larger span
        assert fits.loc[feature, "span"].unique().tolist() == [models[best]]
        picked.append(models[best])
        # loo_mse is that model's brute-force error in each batch
        for batch in sorted(batches.unique()):
            rows = (batches == batch).to_numpy() & qc.to_numpy()
            y = table.loc[rows, feature].to_numpy()
            expected = brute_loo_sse(order[rows].to_numpy(), y, models[best]) / np.isfinite(y).sum()
            assert fits.loc[(feature, batch), "loo_mse"] == pytest.approx(expected, rel=1e-8)
    # planted drift: LOESS wins; no drift: the median wins for most features
    assert (np.isinf(picked).mean() > 0.5) == (not drift)


def test_correction_is_observed_minus_curve_plus_qc_median_by_hand():
    table, order, batches, qc, _ = simulate(n_features=2, seed=12)
    result = qc_rlsc(table, order, batches, qc, spans=(0.8,))
    feature = table.columns[1]
    level = table.loc[qc.to_numpy(), feature].median()
    rows = (batches == "b1").to_numpy()
    t_qc = order[rows & qc.to_numpy()].to_numpy()
    y_qc = table.loc[rows & qc.to_numpy(), feature].to_numpy()
    for name in table.index[rows][[0, 5, 17, 39]]:
        t0 = np.clip(order[name], t_qc.min(), t_qc.max())
        expected = table.loc[name, feature] - brute_local_fit(t0, t_qc, y_qc, 0.8) + level
        assert result.table.loc[name, feature] == pytest.approx(expected, rel=1e-10)


# --- planted drift ----------------------------------------------------------------------


def test_planted_drift_and_batch_offsets_are_removed(planted):
    table, order, batches, qc, truth = planted
    raw_rsd = qc_rsd_linear(table, qc).median()
    result = qc_rlsc(table, order, batches, qc)
    assert (result.fits["status"] == "corrected").all()
    noise_rsd = NOISE * np.log(2)
    in_sample = qc_rsd_linear(result.table, qc).median()
    honest = loqo_qc_rsd(table, order, batches, qc, "qc_rlsc").median()
    assert raw_rsd > 5 * noise_rsd  # the planted drift dominates before correction
    assert 0.7 * noise_rsd < in_sample < 1.2 * noise_rsd
    assert noise_rsd < honest < 1.5 * noise_rsd
    # study samples: the corrected values equal base + noise up to a per-feature constant
    study = ~qc.to_numpy()
    error = (result.table - truth).loc[study]
    spread = (error - error.median()).abs().to_numpy()
    assert np.median(spread) < NOISE
    assert qc_pc_batch_r2(table, batches, qc).iloc[-1]["batch_r2"] > 0.5
    assert qc_pc_batch_r2(result.table, batches, qc).iloc[-1]["batch_r2"] < 0.1


def test_qc_rlsc_beats_batch_centring_on_planted_drift(planted):
    table, order, batches, qc, _ = planted
    rlsc = loqo_qc_rsd(table, order, batches, qc, "qc_rlsc").median()
    median = loqo_qc_rsd(table, order, batches, qc, "median").median()
    none = loqo_qc_rsd(table, order, batches, qc, "none").median()
    assert rlsc < 0.5 * median < none


def test_no_drift_correction_does_not_inflate_precision():
    table, order, batches, qc, _ = simulate(drift=False, seed=21)
    raw = loqo_qc_rsd(table, order, batches, qc, "none").median()
    honest = loqo_qc_rsd(table, order, batches, qc, "qc_rlsc").median()
    assert honest < 1.2 * raw
    corrected = qc_rlsc(table, order, batches, qc).table
    assert (corrected - table).abs().median().median() < 0.5 * NOISE


def test_leave_one_out_rsd_exceeds_in_sample_rsd_on_noise():
    table, order, batches, qc, _ = simulate(drift=False, seed=22)
    in_sample = qc_rsd_linear(qc_rlsc(table, order, batches, qc).table, qc)
    honest = loqo_qc_rsd(table, order, batches, qc, "qc_rlsc")
    assert honest.median() > in_sample.median()
    assert (honest > in_sample).mean() > 0.8


# --- missing values and failed fits -----------------------------------------------------


def test_nan_cells_stay_nan_and_nothing_else_is_lost():
    table, order, batches, qc, _ = simulate(missing=0.1, seed=23)
    result = qc_rlsc(table, order, batches, qc)
    assert result.table.index.equals(table.index) and result.table.columns.equals(table.columns)
    np.testing.assert_array_equal(result.table.isna().to_numpy(), table.isna().to_numpy())


def test_feature_with_too_few_qcs_keeps_its_values_median_aligned_and_is_reported():
    table, order, batches, qc, _ = simulate(n_features=3, seed=24)
    in_b1_qc = ((batches == "b1") & qc).to_numpy()
    table.loc[table.index[np.flatnonzero(in_b1_qc)[3:]], "f02"] = np.nan  # 3 QC values left in b1
    table.loc[in_b1_qc, "f01"] = np.nan  # no QC value in b1
    result = qc_rlsc(table, order, batches, qc, min_qc=5)
    fits = result.fits.set_index(["feature_id", "batch"])
    assert fits.loc[("f02", "b1"), "status"] == "kept" and fits.loc[("f02", "b1"), "n_qc"] == 3
    assert "min_qc=5" in fits.loc[("f02", "b1"), "note"] and np.isnan(fits.loc[("f02", "b1"), "span"])
    assert fits.loc[("f02", "b0"), "status"] == "corrected"
    rows = (batches == "b1").to_numpy()
    shift = table.loc[qc.to_numpy(), "f02"].median() - table.loc[in_b1_qc, "f02"].median()
    np.testing.assert_allclose(result.table.loc[rows, "f02"], table.loc[rows, "f02"] + shift, rtol=1e-12)
    assert fits.loc[("f01", "b1"), "status"] == "kept" and "left as is" in fits.loc[("f01", "b1"), "note"]
    pd.testing.assert_series_equal(result.table.loc[rows, "f01"], table.loc[rows, "f01"])
    assert list(result.fits.columns) == FIT_COLUMNS and len(result.fits) == 3 * 3


def test_span_without_a_defined_curve_is_never_chosen():
    # 3 QCs per batch: span 0.25 puts one QC in each neighbourhood (no line); 1.5 all three
    table, order, batches, qc, _ = simulate(n_features=2, per_batch=12, qc_every=6, seed=25)
    assert ((batches == "b0") & qc).sum() == 3
    fits = qc_rlsc(table, order, batches, qc, spans=(0.25,), min_qc=3, median_candidate=False).fits
    assert (fits["status"] == "kept").all() and fits["note"].str.startswith("no span").all()
    fits = qc_rlsc(table, order, batches, qc, spans=(0.25, 1.5), min_qc=3, median_candidate=False).fits
    assert (fits["status"] == "corrected").all() and (fits["span"] == 1.5).all()
    fits = qc_rlsc(table, order, batches, qc, spans=(0.25,), min_qc=3).fits  # the median is always defined
    assert (fits["status"] == "corrected").all() and np.isinf(fits["span"]).all()
    assert fits["note"].str.startswith("no drift").all()


def test_repeated_qc_injection_order_in_a_batch_is_refused():
    table, order, batches, qc, _ = simulate(n_features=2, seed=25)
    qc_rows = np.flatnonzero(qc.to_numpy())
    order.iloc[qc_rows[1]] = order.iloc[qc_rows[0]]
    with pytest.raises(ValueError, match="repeats among the QC injections"):
        qc_rlsc(table, order, batches, qc)


def test_deterministic():
    table, order, batches, qc, _ = simulate(missing=0.05, seed=26)
    a = qc_rlsc(table, order, batches, qc)
    b = qc_rlsc(table.copy(), order.copy(), batches.copy(), qc.copy())
    assert a.table.to_numpy().tobytes() == b.table.to_numpy().tobytes()
    pd.testing.assert_frame_equal(a.fits, b.fits)
    r1 = loqo_qc_rsd(table, order, batches, qc, "qc_rlsc")
    r2 = loqo_qc_rsd(table, order, batches, qc, "qc_rlsc")
    assert r1.to_numpy().tobytes() == r2.to_numpy().tobytes()


def test_rows_in_any_order_give_the_same_correction():
    table, order, batches, qc, _ = simulate(missing=0.05, seed=27)
    shuffled = np.random.default_rng(0).permutation(len(table))
    a = qc_rlsc(table, order, batches, qc).table
    b = qc_rlsc(table.iloc[shuffled], order.iloc[shuffled], batches.iloc[shuffled], qc.iloc[shuffled]).table
    pd.testing.assert_frame_equal(a, b.loc[a.index], rtol=1e-10)


def test_bad_inputs_are_refused():
    table, order, batches, qc, _ = simulate(n_features=2, seed=28)
    with pytest.raises(ValueError, match="min_qc"):
        qc_rlsc(table, order, batches, qc, min_qc=2)
    with pytest.raises(ValueError, match="spans"):
        qc_rlsc(table, order, batches, qc, spans=(0.5, -1))
    with pytest.raises(ValueError, match="infinite"):
        qc_rlsc(table.replace(table.iloc[0, 0], -np.inf), order, batches, qc)
    with pytest.raises(ValueError, match="batch"):
        qc_rlsc(table, order, batches.where(batches != "b2"), qc)
    with pytest.raises(ValueError, match="method"):
        loqo_qc_rsd(table, order, batches, qc, "loess")


# --- leave-one-QC-out RSD against brute force -------------------------------------------


def brute_loqo_rsd(table, order, batches, qc, method, **kwargs):
    """Delete one QC value at a time and correct it with what is left.

    For qc_rlsc a probe row (value 0, not a QC) at the deleted QC's order and batch
    reads the correction the function applies there: corrected = y_k + probe.
    """
    out = {}
    qc_rows = np.flatnonzero(qc.to_numpy())
    for feature in table.columns:
        values = []
        for k in qc_rows:
            y_k = table.iloc[k][feature]
            if not np.isfinite(y_k):
                continue
            without = table[[feature]].copy()
            without.iloc[k, 0] = np.nan
            same = (batches == batches.iloc[k]).to_numpy() & qc.to_numpy()
            if method == "median":
                others = without.loc[same, feature].dropna()
                level = without.loc[qc.to_numpy(), feature].median()
                values.append(y_k - others.median() + level if len(others) else y_k)
            else:
                probe = pd.DataFrame({feature: [0.0]}, index=["probe"])
                data = pd.concat([without, probe])
                o = pd.concat([order, pd.Series({"probe": order.iloc[k]})])
                b = pd.concat([batches, pd.Series({"probe": batches.iloc[k]})])
                q = pd.concat([qc, pd.Series({"probe": False})])
                corrected = qc_rlsc(data, o, b, q, **kwargs).table.loc["probe", feature]
                values.append(y_k + corrected)
        out[feature] = plain_rsd(np.exp2(np.array(values)))
    return pd.Series(out)


@pytest.mark.parametrize("method,kwargs", [
    ("median", {}),
    ("qc_rlsc", {}),
    ("qc_rlsc", {"median_candidate": False}),
    ("qc_rlsc", {"span_scope": "feature_batch", "min_qc": 4}),
    ("qc_rlsc", {"span_scope": "feature_batch", "min_qc": 4, "median_candidate": False}),
])
def test_loqo_rsd_equals_deleting_each_qc_and_refitting(method, kwargs):
    table, order, batches, qc, _ = simulate(n_batches=3, per_batch=24, n_features=5, missing=0.08, seed=29)
    b0_qc = np.flatnonzero(((batches == "b0") & qc).to_numpy())
    table.iloc[b0_qc[:4], 4] = np.nan  # f04 has exactly 5 QC values in b0: leaving one out
    table.iloc[b0_qc[4:], 4] = 14.0 + 0.01 * np.arange(len(b0_qc) - 4)  # falls below min_qc=5
    assert np.isfinite(table.iloc[b0_qc, 4]).sum() == 5
    fast = loqo_qc_rsd(table, order, batches, qc, method, **kwargs)
    slow = brute_loqo_rsd(table, order, batches, qc, method, **kwargs)
    np.testing.assert_allclose(fast.to_numpy(), slow.to_numpy(), rtol=1e-9)


def test_loqo_none_is_the_plain_linear_rsd():
    table, order, batches, qc, _ = simulate(n_features=4, missing=0.1, seed=30)
    fast = loqo_qc_rsd(table, order, batches, qc, "none")
    for feature in table.columns:
        assert fast[feature] == pytest.approx(plain_rsd(np.exp2(table.loc[qc.to_numpy(), feature].to_numpy())))


def test_leave_one_out_median_equals_a_loop():
    rng = np.random.default_rng(31)
    v = rng.normal(0, 1, (9, 40))
    v[rng.random(v.shape) < 0.3] = np.nan
    v[:, 0] = np.nan
    v[:8, 1] = np.nan  # one observed value: nothing left without it
    fast = leave_one_out_median(v)
    for k in range(9):
        for j in range(40):
            others = np.delete(v[:, j], k) if np.isfinite(v[k, j]) else v[:, j]
            others = others[np.isfinite(others)]
            expected = np.median(others) if len(others) else np.nan
            np.testing.assert_equal(fast[k, j], expected)


# --- replicates and QC PCA --------------------------------------------------------------


def test_replicate_rsd_by_hand():
    linear = pd.DataFrame({"a": [10, 12, 14, 5, 7, 100, 3], "b": [1, 1, 1, np.nan, 2, 9, 4]},
                          index=list("pqrstuv"))
    groups = pd.Series(["S1", "S1", "S1", "S2", "S2", "S3", np.nan], index=linear.index)
    table = replicate_rsd_table(linear, groups)
    assert table.index.tolist() == ["S1", "S2"]  # S3 has one injection, v no group
    assert table.loc["S1", "a"] == pytest.approx(2 / 12)
    assert table.loc["S2", "a"] == pytest.approx(np.std([5, 7], ddof=1) / 6)
    assert table.loc["S1", "b"] == 0 and np.isnan(table.loc["S2", "b"])  # one observed value
    rsd = replicate_rsd(linear, groups)
    assert rsd["a"] == pytest.approx(np.median([2 / 12, np.std([5, 7], ddof=1) / 6]))
    assert rsd["b"] == 0


def test_qc_pc_batch_r2_matches_sklearn_pca_and_anova():
    table, order, batches, qc, _ = simulate(n_features=12, seed=32)
    out = qc_pc_batch_r2(table, batches, qc, n_components=3)
    x = table.loc[qc.to_numpy()].to_numpy()
    z = (x - x.mean(axis=0)) / x.std(axis=0, ddof=1)
    pca = PCA(n_components=3, svd_solver="full").fit(z)
    scores = pca.transform(z)
    labels = batches[qc].to_numpy()
    for c in range(3):
        s = scores[:, c]
        between = sum((labels == g).sum() * (s[labels == g].mean() - s.mean()) ** 2 for g in np.unique(labels))
        assert out.loc[c, "batch_r2"] == pytest.approx(between / np.sum((s - s.mean()) ** 2), rel=1e-8)
        assert out.loc[c, "explained_variance"] == pytest.approx(pca.explained_variance_ratio_[c], rel=1e-8)
    v, r2 = out["explained_variance"][:3], out["batch_r2"][:3]
    assert out.iloc[-1]["batch_r2"] == pytest.approx(np.sum(v * r2) / np.sum(v))
    assert out["component"].tolist() == ["PC1", "PC2", "PC3", "total"]
