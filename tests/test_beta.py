"""β diversity: distances against hand/independent computations, PCoA, within-subject shift."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import pdist, squareform

from gutaxis.diversity import beta
from gutaxis.io.errors import InputError
from gutaxis.io.pairing import pair_samples, unpaired_samples


def table_from(x, prefix="s"):
    return pd.DataFrame(x, index=pd.Index([f"{prefix}{i:02d}" for i in range(len(x))], name="sample_id"),
                        columns=[f"f{j}" for j in range(x.shape[1])])


def sparse_compositions(rng, n=12, p=20):
    x = rng.gamma(0.5, size=(n, p))
    x[rng.random((n, p)) < 0.3] = 0.0
    x[:, 0] += 0.05  # every sample shares at least one feature
    return x / x.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------
# distances


def test_bray_curtis_and_jaccard_hand_worked():
    table = pd.DataFrame([[0.5, 0.5, 0.0], [0.2, 0.0, 0.8]], index=["a", "b"], columns=list("xyz"))
    bc = beta.beta_distances(table, "braycurtis").matrix
    # sum |diff| / sum(total) = (0.3 + 0.5 + 0.8) / 2
    assert bc.loc["a", "b"] == pytest.approx(0.8)
    jac = beta.beta_distances(table, "jaccard").matrix
    # present: a {x, y}, b {x, z} -> 1 - 1/3
    assert jac.loc["a", "b"] == pytest.approx(2 / 3)
    # Bray–Curtis uses relative abundances: scaling a sample changes nothing
    scaled = table.copy()
    scaled.loc["a"] *= 40
    assert beta.beta_distances(scaled, "braycurtis").matrix.loc["a", "b"] == pytest.approx(0.8)


def test_bray_curtis_and_jaccard_equal_scikit_bio():
    from skbio.diversity import beta_diversity

    rng = np.random.default_rng(7)
    x = sparse_compositions(rng, n=25, p=30)
    table = table_from(x)
    for metric, data in (("braycurtis", x), ("jaccard", x > 0)):
        ours = beta.beta_distances(table, metric).matrix.to_numpy()
        theirs = beta_diversity(metric, data, ids=list(table.index)).data
        np.testing.assert_allclose(ours, theirs, atol=1e-12, err_msg=metric)


def test_aitchison_equals_euclidean_clr_with_the_recorded_pseudocount():
    rng = np.random.default_rng(1)
    x = sparse_compositions(rng)
    table = table_from(x)
    result = beta.beta_distances(table, "aitchison")
    c = result.parameters["pseudocount"]
    assert c == pytest.approx(x[x > 0].min() / 2)
    logs = np.log(x + c)
    clr = logs - logs.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(result.matrix.to_numpy(), squareform(pdist(clr)), atol=1e-10)
    described = result.describe().set_index("parameter")
    assert float(described.loc["pseudocount", "value"]) == pytest.approx(c)
    given = beta.beta_distances(table, "aitchison", pseudocount=1e-6)
    assert given.parameters == {"transform": "clr", "pseudocount": 1e-6, "pseudocount_rule": "given"}


def test_robust_aitchison_is_euclidean_over_shared_features():
    rng = np.random.default_rng(2)
    x = sparse_compositions(rng, n=9)
    result = beta.beta_distances(table_from(x), "robust_aitchison")
    d = result.matrix.to_numpy()
    n = len(x)
    expected = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            ri = np.full(x.shape[1], np.nan)
            rj = np.full(x.shape[1], np.nan)
            oi, oj = x[i] > 0, x[j] > 0
            ri[oi] = np.log(x[i, oi]) - np.log(x[i, oi]).mean()
            rj[oj] = np.log(x[j, oj]) - np.log(x[j, oj]).mean()
            both = oi & oj
            expected[i, j] = np.sqrt(np.sum((ri[both] - rj[both]) ** 2))
    np.testing.assert_allclose(d, expected, atol=1e-9)
    # scale invariance: counts and proportions give the same distances
    counts = np.round(x * 1e4) + (x > 0)
    d_counts = beta.beta_distances(table_from(counts), "robust_aitchison").matrix.to_numpy()
    np.testing.assert_allclose(d_counts, beta.beta_distances(table_from(counts / counts.sum(1, keepdims=True)),
                                                              "robust_aitchison").matrix.to_numpy(), atol=1e-9)
    disjoint = pd.DataFrame([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], index=["a", "b", "c"])
    with pytest.raises(InputError, match="share no feature"):
        beta.beta_distances(disjoint, "robust_aitchison")


def test_bad_tables_are_reported():
    table = pd.DataFrame([[0.5, 0.5], [0.0, 0.0], [0.2, 0.8]], index=["a", "empty", "c"])
    with pytest.raises(InputError, match="no abundance"):
        beta.beta_distances(table, "braycurtis")
    with pytest.raises(InputError, match="unknown metric"):
        beta.beta_distances(table.drop("empty"), "unifrac")


# ---------------------------------------------------------------------------
# PCoA


def test_pcoa_reconstructs_euclidean_distances_and_percentages():
    rng = np.random.default_rng(3)
    coords = rng.normal(size=(15, 3)) * [3.0, 1.5, 0.5]
    ids = [f"s{i:02d}" for i in range(15)]
    d = pd.DataFrame(squareform(pdist(coords)), index=ids, columns=ids)
    result = beta.principal_coordinates(d, n_axes=3)
    np.testing.assert_allclose(squareform(pdist(result.coordinates.to_numpy())), d.to_numpy(), atol=1e-9)
    centred = coords - coords.mean(axis=0)
    eig = np.sort(np.linalg.eigvalsh(centred.T @ centred))[::-1]
    np.testing.assert_allclose(result.axes["eigenvalue"], eig, rtol=1e-9)
    assert result.axes["percent_explained"].sum() == pytest.approx(100.0)
    assert list(result.axes["axis"]) == ["PC1", "PC2", "PC3"]
    # non-Euclidean (Bray–Curtis): percentages are of the total inertia trace(G)
    x = rng.gamma(0.5, size=(20, 10))
    bc = pd.DataFrame(squareform(pdist(x, "braycurtis")))
    axes = beta.principal_coordinates(bc, n_axes=4).axes
    total = (bc.to_numpy() ** 2).sum() / (2 * 20)
    np.testing.assert_allclose(axes["proportion_explained"], axes["eigenvalue"] / total)
    assert axes["eigenvalue"].is_monotonic_decreasing
    # reproducible, including the sign of the axes
    again = beta.principal_coordinates(bc, n_axes=4)
    pd.testing.assert_frame_equal(again.coordinates, beta.principal_coordinates(bc, n_axes=4).coordinates)


# ---------------------------------------------------------------------------
# pairing and within-subject shift


def shift_trial(rng, k=16, responder_shift=2.0):
    base = rng.normal(size=(k, 5)) * 3.0
    response = np.array(["responder", "non_responder"] * (k // 2))
    step = (np.where(response == "responder", responder_shift, 0.4) + 0.01 * np.arange(k))[:, None]
    direction = rng.normal(size=(k, 5))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    post = base + step * direction
    ids = [f"P{i:02d}_b" for i in range(k)] + [f"P{i:02d}_p" for i in range(k)]
    d = pd.DataFrame(squareform(pdist(np.vstack([base, post]))), index=ids, columns=ids)
    samples = pd.DataFrame({"sample_id": ids, "subject_id": [f"P{i:02d}" for i in range(k)] * 2,
                            "timepoint": ["baseline"] * k + ["post"] * k, "sample_type": "stool"})
    subjects = pd.DataFrame({"subject_id": [f"P{i:02d}" for i in range(k)], "response": response})
    return d, samples, subjects, step[:, 0]


def test_pair_samples_and_unpaired_list():
    samples = pd.DataFrame({
        "sample_id": ["a1", "a2", "b1", "c2", "qc1", "a3"],
        "subject_id": ["A", "A", "B", "C", "", "A"],
        "timepoint": ["baseline", "post", "baseline", "post", "", "progression"],
    })
    pairs = pair_samples(samples, "baseline", "post")
    assert pairs.to_dict("records") == [{"subject_id": "A", "pre_sample": "a1", "post_sample": "a2"}]
    unpaired = unpaired_samples(samples, "baseline", "post")
    assert list(unpaired["sample_id"]) == ["b1", "c2"]
    assert unpaired.loc[0, "reason"] == "unpaired: subject has no 'post' sample"
    dup = pd.concat([samples, pd.DataFrame([{"sample_id": "a9", "subject_id": "A", "timepoint": "post"}])])
    with pytest.raises(InputError, match="a2, a9"):
        pair_samples(dup, "baseline", "post")


def test_within_subject_shift_and_responder_comparison():
    rng = np.random.default_rng(4)
    d, samples, subjects, step = shift_trial(rng)
    pairs = pair_samples(samples, "baseline", "post")
    shift = beta.within_subject_shift(d, pairs)
    np.testing.assert_allclose(shift["distance"], step, rtol=1e-9)  # planted step lengths
    out = beta.compare_shift_by_response(shift, subjects).iloc[0]
    a = shift["distance"][subjects["response"].to_numpy() == "responder"]
    b = shift["distance"][subjects["response"].to_numpy() == "non_responder"]
    # all responders moved further: U = n1 * n2 and the exact two-sided p = 2 / C(16, 8)
    assert out["u_statistic"] == len(a) * len(b)
    assert out["p_value"] == pytest.approx(2 / 12870)
    assert out["hl_shift"] == pytest.approx(np.median(a.to_numpy()[:, None] - b.to_numpy()[None, :]))
    assert out["method"].endswith("exact")
    # not evaluable subjects are counted, not tested
    partial = subjects.assign(response=np.where(np.arange(16) < 2, "", subjects["response"]))
    assert beta.compare_shift_by_response(shift, partial).iloc[0]["n_not_evaluable"] == 2


def test_shift_vs_between_subject_distances():
    rng = np.random.default_rng(5)
    d, samples, subjects, step = shift_trial(rng, responder_shift=1.0)
    pairs = pair_samples(samples, "baseline", "post")
    result = beta.shift_vs_between(d, pairs)
    per = result.per_subject.set_index("subject_id")
    pre = pairs.set_index("subject_id")["pre_sample"]
    others = [s for s in pre.index if s != "P03"]
    assert per.loc["P03", "median_between_distance"] == pytest.approx(
        np.median(d.loc[pre["P03"], pre[others]].to_numpy()))
    diff = per["difference"].to_numpy()
    test = result.test.iloc[0]
    assert test["p_value"] == pytest.approx(stats.wilcoxon(diff, method="exact").pvalue)
    assert test["p_value"] < 1e-3 and test["ci_high"] < 0  # within-subject shifts are the smaller


def _r_vegan():
    return shutil.which("Rscript") is not None and subprocess.run(
        ["Rscript", "-e", "suppressMessages(library(vegan))"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _r_vegan(), reason="Rscript with vegan not available")
@pytest.mark.rcheck
def test_bray_curtis_and_jaccard_match_vegan_on_real_data(shared_data, tmp_path):
    raw = pd.read_csv(shared_data / "hmp2_maaslin2" / "HMP2_taxonomy.tsv", sep="\t", index_col=0).iloc[:30]
    raw = raw.loc[raw.sum(axis=1) > 0]
    bc = beta.beta_distances(raw, "braycurtis").matrix
    jac = beta.beta_distances(raw, "jaccard").matrix
    raw.to_csv(tmp_path / "x.tsv", sep="\t")
    script = f"""
suppressMessages(library(vegan))
x <- as.matrix(read.delim("{tmp_path}/x.tsv", row.names = 1, check.names = FALSE))
write.table(as.matrix(vegdist(decostand(x, "total"), "bray")), "{tmp_path}/bc.tsv", sep = "\\t", quote = FALSE)
write.table(as.matrix(vegdist(x, "jaccard", binary = TRUE)), "{tmp_path}/jac.tsv", sep = "\\t", quote = FALSE)
"""
    path = tmp_path / "check.R"
    path.write_text(script)
    done = subprocess.run(["Rscript", str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for ours, name in ((bc, "bc"), (jac, "jac")):
        r = pd.read_csv(tmp_path / f"{name}.tsv", sep="\t", index_col=0)
        np.testing.assert_allclose(ours.loc[r.index.astype(str), r.index.astype(str)].to_numpy(), r.to_numpy(),
                                   atol=1e-10)


# ---------------------------------------------------------------------------
# metric availability (issue 15 item 9)


def hand_sparse_table():
    """s0 and s1 share nothing, s3 shares nothing with anyone: 4 of 6 pairs undefined."""
    x = np.array([[1.0, 0.0, 0.0, 0.0],
                  [0.0, 1.0, 0.0, 0.0],
                  [1.0, 1.0, 0.0, 0.0],
                  [0.0, 0.0, 1.0, 1.0]])
    return table_from(x / x.sum(axis=1, keepdims=True))


def test_undefined_pairs_equal_a_hand_count():
    table = hand_sparse_table()
    count, examples = beta.undefined_pairs(table, "robust_aitchison")
    assert count == 4
    assert examples == [("s00", "s01"), ("s00", "s03"), ("s01", "s03"), ("s02", "s03")]
    for metric in ("braycurtis", "jaccard", "aitchison"):
        assert beta.undefined_pairs(table, metric) == (0, [])
    with pytest.raises(InputError, match="4 sample pairs share no feature"):
        beta.beta_distances(table, "robust_aitchison")
    d = beta.beta_distances(table, "robust_aitchison", allow_undefined=True).matrix.to_numpy()
    undefined = np.isnan(d[np.triu_indices(4, 1)])
    assert undefined.sum() == 4 and not np.isnan(d[0, 2])


def test_metric_check_falls_back_to_the_first_defined_metric_with_one_message():
    table = hand_sparse_table()
    metrics = ["robust_aitchison", "jaccard", "braycurtis", "aitchison"]
    check, message = beta.check_metric_availability(table, metrics, "robust_aitchison", "fallback")
    roles = dict(zip(check["metric"], check["role"]))
    assert roles == {"robust_aitchison": "not computed", "jaccard": "primary", "braycurtis": "sensitivity",
                     "aitchison": "sensitivity"}
    assert check.set_index("metric").loc["robust_aitchison", "n_pairs_undefined"] == 4
    assert "4 of 6 sample pairs" in message and "jaccard, braycurtis, aitchison" in message
    assert message.count("\n") == 0
    assert beta.metric_roles(check)[0] == "jaccard"
    # a defined primary stays primary; the undefined sensitivity metric is only left out
    check, _ = beta.check_metric_availability(table, metrics, "aitchison", "fallback")
    assert beta.metric_roles(check)[0] == "aitchison"
    with pytest.raises(InputError, match="4 of 6 sample pairs") as err:
        beta.check_metric_availability(table, metrics, "robust_aitchison", "stop")
    assert "diversity.undefined_pairs: fallback" in str(err.value)
    with pytest.raises(InputError, match="add aitchison"):
        beta.check_metric_availability(table, ["robust_aitchison"], "robust_aitchison", "fallback")


def test_metric_check_is_silent_when_every_pair_is_defined():
    rng = np.random.default_rng(21)
    table = table_from(sparse_compositions(rng))
    check, message = beta.check_metric_availability(table, list(beta.BETA_METRICS), "robust_aitchison")
    assert message == "" and (check["n_pairs_undefined"] == 0).all()
    assert dict(zip(check["metric"], check["role"]))["robust_aitchison"] == "primary"


def test_undefined_pairs_count_matches_a_loop_on_random_sparse_tables():
    rng = np.random.default_rng(22)
    x = (rng.random((25, 12)) < 0.12) * rng.random((25, 12))
    x[x.sum(axis=1) == 0, 0] = 1.0
    table = table_from(x)
    expected = sum(1 for i in range(25) for j in range(i + 1, 25) if not ((x[i] > 0) & (x[j] > 0)).any())
    assert expected > 0
    assert beta.undefined_pairs(table, "robust_aitchison")[0] == expected
