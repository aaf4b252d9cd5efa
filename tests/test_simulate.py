"""Tests of the demo-study simulator (gutaxis.demo.simulate) and of the committed resources/demo files.

The committed demo is checked by parsing its files directly (no simulator internals), so the
planted effects are verified the way an analysis would see them.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gutaxis.io.errors import InputError
from gutaxis.demo.simulate import format_fixed, simulate_study

DEMO_SEED = 20261122
SMALL = dict(n_subjects=24, n_taxa=120, n_metabolites=150, n_immune=12)
RANKS = ("k__", "p__", "c__", "o__", "f__", "g__", "s__", "t__")
SUBJECT_COLUMNS = [
    "subject_id", "cohort", "study", "dose_gy", "age", "sex", "ecog", "best_response",
    "best_response_irecist", "target_lesion_change_pct", "pfs2_months", "pfs2_event", "os_months",
    "os_event", "abscopal", "treatment_months", "treatment_ongoing", "treatment_start",
]


# ---------------------------------------------------------------------------------------------
# fixtures and readers
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("small")
    return simulate_study(out, seed=7, **SMALL)


@pytest.fixture(scope="module")
def demo(repo):
    path = repo / "resources" / "demo"
    if not (path / "metaphlan4_merged.txt").exists():
        pytest.fail("resources/demo is missing; regenerate it (see resources/demo/README.md)")
    return path


def read_mpa(path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", skiprows=1, index_col=0)


def rank_of(clade: str) -> str:
    return "UNCLASSIFIED" if clade == "UNCLASSIFIED" else clade.rsplit("|", 1)[-1][:3]


def species_fractions(path) -> pd.DataFrame:
    """Species rows as fractions of the classified part; samples x species; failed samples dropped."""
    mpa = read_mpa(path)
    sp = mpa[[rank_of(c) == "s__" for c in mpa.index]]
    sp.index = [c.rsplit("|", 1)[-1] for c in sp.index]
    sp = sp.loc[:, sp.sum() > 0]
    return (sp / sp.sum()).T


def sample_sheet(path) -> pd.DataFrame:
    return pd.read_csv(path / "samples.tsv", sep="\t", dtype=str, keep_default_na=False)


def subjects_table(path) -> pd.DataFrame:
    return pd.read_csv(path / "subjects.tsv", sep="\t", keep_default_na=False, na_values=[""])


def responders(path) -> pd.Series:
    s = subjects_table(path).set_index("subject_id")
    return s["best_response"].isin(["CR", "PR", "SD"])


def paired(sheet: pd.DataFrame, sample_type: str, available) -> pd.DataFrame:
    """subject_id, baseline sample, post sample for subjects with both samples available."""
    rows = sheet[(sheet["sample_type"] == sample_type) & sheet["sample_id"].isin(list(available))]
    rows = rows[~rows["sample_id"].str.endswith("_reseq")]
    wide = rows.pivot(index="subject_id", columns="timepoint", values="sample_id")
    return wide[["baseline", "post"]].dropna()


# ---------------------------------------------------------------------------------------------
# determinism
# ---------------------------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_files(small, tmp_path):
    again = simulate_study(tmp_path, seed=7, **SMALL)
    assert set(again) == set(small)
    for key, path in small.items():
        assert path.read_bytes() == again[key].read_bytes(), key


def test_different_seed_gives_different_data(small, tmp_path):
    other = simulate_study(tmp_path, seed=8, **SMALL)
    for key in ("subjects", "metaphlan", "metabolome", "immune", "tissue"):
        assert small[key].read_bytes() != other[key].read_bytes(), key


def test_committed_demo_equals_fresh_simulation_with_documented_seed(demo, tmp_path):
    fresh = simulate_study(tmp_path, seed=DEMO_SEED)
    for key, path in fresh.items():
        committed = demo / path.name
        assert committed.exists(), f"{committed} missing"
        assert committed.read_bytes() == path.read_bytes(), (
            f"{path.name} differs from a fresh simulation: regenerate with "
            "python workflow/scripts/simulate_demo.py --out resources/demo --seed 20261122")
    readme = (demo / "README.md").read_text()
    assert "--seed 20261122" in readme


def test_committed_demo_is_small(demo):
    total = sum(p.stat().st_size for p in demo.iterdir() if p.is_file())
    assert total < 5 * 1024 * 1024


# ---------------------------------------------------------------------------------------------
# MetaPhlAn format
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["small", "demo"])
def test_metaphlan_merged_table_format(source, request):
    path = request.getfixturevalue("small")["metaphlan"] if source == "small" else \
        request.getfixturevalue("demo") / "metaphlan4_merged.txt"
    lines = path.read_text().splitlines()
    assert re.fullmatch(r"#mpa_vJun23_CHOCOPhlAnSGB_\d{6}", lines[0])
    assert lines[1].startswith("clade_name\t")
    assert lines[2].startswith("UNCLASSIFIED\t")
    number = re.compile(r"\d+\.\d{1,5}")  # as merge_metaphlan_tables.py writes floats: no exponent
    for line in lines[2:]:
        assert all(number.fullmatch(x) for x in line.split("\t")[1:]), line[:80]

    mpa = read_mpa(path)
    ranks = pd.Series([rank_of(c) for c in mpa.index], index=mpa.index)
    assert set(RANKS) <= set(ranks)
    assert mpa.index.is_unique
    assert mpa.columns.is_unique and list(mpa.columns) == sorted(mpa.columns)
    classified = 100.0 - mpa.loc["UNCLASSIFIED"]
    for rank in RANKS:
        sums = mpa[ranks == rank].sum()
        tol = 1e-5 * (ranks == rank).sum() + 1e-9
        np.testing.assert_allclose(sums, classified, atol=tol, err_msg=rank)
    # parent = sum of its direct children, for every clade with children
    parent_of = pd.Series([c.rsplit("|", 1)[0] if "|" in c else "" for c in mpa.index], index=mpa.index)
    children = mpa[parent_of != ""].groupby(parent_of[parent_of != ""]).sum()
    parents = mpa.loc[children.index]
    tol = 1e-5 * (parent_of.value_counts().reindex(children.index).to_numpy()[:, None] + 1)
    assert (np.abs(parents.to_numpy() - children.to_numpy()) <= tol).all()
    # each t__SGB row equals its species
    t_rows = mpa[ranks == "t__"]
    assert (t_rows.to_numpy() == mpa.loc[[c.rsplit("|", 1)[0] for c in t_rows.index]].to_numpy()).all()
    assert (mpa.loc[[c for c in mpa.index if "|t__" in c]].index.str.fullmatch(r".*\|t__SGB\d+(_group)?")).all()


def test_metaphlan_row_order_is_merge_order(small):
    """Rows appear in the order an outer merge of per-sample profiles produces."""
    mpa = read_mpa(small["metaphlan"]).drop("UNCLASSIFIED")
    values = mpa.to_numpy()
    first = np.argmax(values > 0, axis=1)
    assert (np.diff(first) >= 0).all()
    level = np.array([RANKS.index(rank_of(c)) for c in mpa.index])
    for col in np.unique(first):
        block = first == col
        assert (np.diff(level[block]) >= 0).all()
        for lv in np.unique(level[block]):
            v = values[block & (level == lv), col]
            assert (np.diff(v) <= 0).all()


def test_metaphlan_has_realistic_sparsity_dominance_and_subject_structure(demo):
    frac = species_fractions(demo / "metaphlan4_merged.txt")
    prevalence = (frac > 0).mean()
    assert (prevalence < 0.3).mean() > 0.4  # many rare species
    assert ((prevalence > 0.05) & (prevalence < 0.9)).mean() > 0.5
    dominant = frac.max(axis=1)
    assert 0.10 <= dominant.median() <= 0.40
    # Bray-Curtis: a subject's samples resemble each other more than two subjects' samples
    sheet = sample_sheet(demo).set_index("sample_id")
    subject = sheet.loc[frac.index, "subject_id"].to_numpy()
    x = frac.to_numpy()
    bc = np.abs(x[:, None, :] - x[None, :, :]).sum(-1) / (x[:, None, :] + x[None, :, :]).sum(-1)
    iu = np.triu_indices(len(x), 1)
    same = (subject[:, None] == subject[None, :])[iu]
    assert bc[iu][same].mean() < bc[iu][~same].mean() - 0.15


def test_placeholder_species_beyond_the_catalog(tmp_path):
    paths = simulate_study(tmp_path, seed=3, n_subjects=12, n_taxa=520, n_metabolites=100, n_immune=11)
    mpa = read_mpa(paths["metaphlan"])
    species = [c for c in mpa.index if rank_of(c) == "s__"]
    placeholders = [c for c in species if "_sp_SGB" in c]
    assert placeholders
    for clade in placeholders:
        genus = clade.split("|")[5][3:]
        assert re.fullmatch(rf"s__{genus}_sp_SGB\d+", clade.split("|")[6])
    sgb = [c.rsplit("|t__", 1)[1] for c in mpa.index if "|t__" in c]
    assert len(sgb) == len(set(sgb))


# ---------------------------------------------------------------------------------------------
# clinical tables
# ---------------------------------------------------------------------------------------------


def test_subjects_table_vocabularies_and_consistency(demo):
    s = subjects_table(demo)
    assert list(s.columns) == SUBJECT_COLUMNS
    assert len(s) == 48 and s["subject_id"].is_unique
    assert s["cohort"].value_counts().to_dict() == {"lung": 16, "esophageal": 16, "other": 16}
    assert set(s["best_response"]) <= {"CR", "PR", "SD", "PD", "NE"}
    assert (s["best_response"] == "NE").sum() == 1
    orr = s["best_response"].isin(["CR", "PR"]).mean()
    dcr = s["best_response"].isin(["CR", "PR", "SD"]).mean()
    assert 0.10 <= orr <= 0.30 and 0.40 <= dcr <= 0.60
    allowed = {"CR": {"iCR"}, "PR": {"iPR"}, "SD": {"iSD"}, "PD": {"iUPD", "iCPD", "iSD"}, "NE": {"NE"}}
    assert all(i in allowed[r] for r, i in zip(s["best_response"], s["best_response_irecist"]))
    assert ((s["best_response"] == "PD") & (s["best_response_irecist"] == "iSD")).any()  # pseudo-progression
    change = s["target_lesion_change_pct"]
    assert (change[s["best_response"].isin(["CR", "PR"])] <= -30).all()
    assert (change[s["best_response"] == "CR"] == -100).all()
    assert change[s["best_response"] == "SD"].between(-30, 20, inclusive="neither").all()
    assert (change[s["best_response"] == "PD"] >= 20).mean() > 0.5
    assert change[s["best_response"] == "NE"].isna().all()
    assert (s["os_months"] >= s["pfs2_months"]).all()
    assert (s["treatment_months"] <= s["os_months"]).all()
    assert (s["pfs2_months"] > 0).all()
    for col in ("pfs2_event", "os_event", "treatment_ongoing"):
        assert set(s[col]) <= {0, 1}
    assert not ((s["pfs2_event"] == 0) & (s["os_event"] == 1)).any()  # death is a PFS2 event
    assert set(s["abscopal"]) <= {"yes", "no", "NE"}
    assert set(s["sex"]) <= {"M", "F"} and set(s["ecog"]) <= {0, 1, 2}
    early = s[s["study"] == "ILDR-01"]
    assert 0 < len(early) < len(s) and set(early["dose_gy"]) == {1, 2, 3}
    assert set(s.loc[s["study"] == "ILDR-02", "dose_gy"]) == {2}
    # responders live longer: median PFS2 of disease control exceeds that of progression
    assert s.loc[s["best_response"].isin(["CR", "PR"]), "pfs2_months"].median() > \
        s.loc[s["best_response"] == "PD", "pfs2_months"].median()


def test_adverse_events_use_ctcae_vocabulary(demo):
    ae = pd.read_csv(demo / "adverse_events.tsv", sep="\t")
    assert list(ae.columns) == ["subject_id", "term", "grade", "attribution"]
    assert set(ae["subject_id"]) <= set(subjects_table(demo)["subject_id"])
    assert {"Diarrhea", "Fatigue", "Lymphocyte count decreased"} <= set(ae["term"])
    assert set(ae["grade"]) <= {1, 2, 3, 4, 5}
    assert (ae["grade"] <= 2).mean() > 0.8 and (ae["grade"] == 3).any()
    assert set(ae["attribution"]) <= {"unrelated", "unlikely", "possible", "probable", "definite"}
    assert not ae.duplicated(["subject_id", "term"]).any()


# ---------------------------------------------------------------------------------------------
# sample sheet, tables agree, gaps
# ---------------------------------------------------------------------------------------------


def test_sample_sheet_and_tables_agree(demo):
    sheet = sample_sheet(demo)
    assert list(sheet.columns) == ["sample_id", "subject_id", "timepoint", "sample_type", "batch",
                                   "injection_order", "collection_date"]
    assert sheet["sample_id"].is_unique
    assert set(sheet["sample_type"]) == {"stool", "blood", "tissue", "qc", "blank"}
    controls = sheet[sheet["sample_type"].isin(["qc", "blank"])]
    assert (controls["subject_id"] == "").all() and (controls["timepoint"] == "").all()
    assert 6 <= (sheet["sample_type"] == "qc").sum() <= 10
    assert 1 <= (sheet["sample_type"] == "blank").sum() <= 2
    assert set(sheet["timepoint"]) - {""} == {"baseline", "post", "progression"}
    stool = sheet[sheet["sample_type"] == "stool"]
    assert set(read_mpa(demo / "metaphlan4_merged.txt").columns) == set(stool["sample_id"])
    peaks = pd.read_csv(demo / "metabolome_peaks.tsv", sep="\t", nrows=1)
    assert list(peaks.columns[:6]) == ["feature_id", "name", "mz", "rt", "hmdb", "kegg"]
    injected = sheet[sheet["injection_order"] != ""].sort_values(
        "injection_order", key=lambda c: c.astype(int))
    assert list(peaks.columns[6:]) == list(injected["sample_id"])
    assert set(injected["batch"]) == {"B1", "B2"}
    assert sorted(injected["injection_order"].astype(int)) == list(range(1, len(injected) + 1))
    immune = pd.read_csv(demo / "immune_subsets.tsv", sep="\t")
    assert set(immune["sample_id"]) == set(sheet.loc[sheet["sample_type"] == "blood", "sample_id"])
    assert immune.iloc[:, 1:].apply(lambda c: c.between(0, 100)).all().all()
    assert {"CD8+ T cells", "Tregs (CD4+CD25+CD127lo)", "Ki-67+ CD8+"} <= set(immune.columns)


def test_realistic_gaps_exist(demo):
    sheet = sample_sheet(demo)
    stool = sheet[sheet["sample_type"] == "stool"]
    blood = sheet[sheet["sample_type"] == "blood"]
    no_post_stool = set(blood.loc[blood["timepoint"] == "post", "subject_id"]) - set(
        stool.loc[stool["timepoint"] == "post", "subject_id"])
    assert len(no_post_stool) == 1
    mpa = read_mpa(demo / "metaphlan4_merged.txt")
    failed = [c for c in mpa.columns if mpa[c].drop("UNCLASSIFIED").eq(0).all()]
    assert len(failed) == 1 and mpa.loc["UNCLASSIFIED", failed[0]] == 100.0
    assert failed[0] in set(stool["sample_id"])
    reseq = stool[stool["sample_id"].str.endswith("_reseq")]
    assert len(reseq) == 1
    twin = stool[(stool["subject_id"] == reseq["subject_id"].iloc[0])
                 & (stool["timepoint"] == reseq["timepoint"].iloc[0])]
    assert len(twin) == 2
    progression = sheet[sheet["timepoint"] == "progression"]
    by_type = progression.groupby("sample_type")["subject_id"].apply(set)
    assert by_type["stool"] == by_type["blood"] and 4 <= len(by_type["stool"]) <= 8


# ---------------------------------------------------------------------------------------------
# planted effects, seen in the raw files
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_taxa(demo):
    frac = species_fractions(demo / "metaphlan4_merged.txt")
    pairs = paired(sample_sheet(demo), "stool", frac.index)
    return frac, pairs, pd.read_csv(demo / "truth.tsv", sep="\t"), responders(demo)


def test_truth_features_exist_in_the_tables(demo):
    truth = pd.read_csv(demo / "truth.tsv", sep="\t")
    assert list(truth.columns) == ["modality", "feature", "effect", "direction", "log2_effect", "note"]
    species = set(species_fractions(demo / "metaphlan4_merged.txt").columns)
    metabolites = set(pd.read_csv(demo / "metabolome_peaks.tsv", sep="\t", usecols=[0])["feature_id"])
    immune = set(pd.read_csv(demo / "immune_subsets.tsv", sep="\t", nrows=0).columns[1:])
    known = {"taxa": species, "metabolite": metabolites, "immune": immune}
    for row in truth.itertuples():
        if row.modality in known:
            assert row.feature in known[row.modality], row.feature
            if row.effect.startswith("driven_by:"):
                source = row.effect.split(":", 1)[1]
                assert source in (species if row.modality == "metabolite" else metabolites)
    chains = truth[truth["modality"] == "chain"]
    assert len(chains) >= 4
    for chain in chains["feature"]:
        taxon, metabolite, subset = chain.split(" -> ")
        assert taxon in species and metabolite in metabolites and subset in immune
    counts = truth[truth["modality"] == "taxa"]["effect"].value_counts()
    assert counts["time"] == 10 and counts["time_x_response"] == 6 and counts["baseline_response"] == 5
    assert {"alpha", "beta"} <= set(truth["modality"])


def test_time_taxa_change_in_the_planted_direction_within_subjects(demo_taxa):
    frac, pairs, truth, _ = demo_taxa
    for row in truth[(truth["modality"] == "taxa") & (truth["effect"] == "time")].itertuples():
        before = frac.loc[pairs["baseline"], row.feature].to_numpy()
        after = frac.loc[pairs["post"], row.feature].to_numpy()
        both = (before > 0) & (after > 0)
        log_ratio = np.log2(after[both] / before[both])
        assert both.sum() >= 30
        assert (np.sign(log_ratio) == np.sign(row.log2_effect)).mean() > 0.7, row.feature


def test_interaction_taxa_change_more_in_responders(demo_taxa):
    frac, pairs, truth, resp = demo_taxa
    is_resp = resp.loc[pairs.index].to_numpy()
    for row in truth[(truth["modality"] == "taxa") & (truth["effect"] == "time_x_response")].itertuples():
        before = frac.loc[pairs["baseline"], row.feature].to_numpy()
        after = frac.loc[pairs["post"], row.feature].to_numpy()
        both = (before > 0) & (after > 0)
        with np.errstate(divide="ignore"):
            log_ratio = np.log2(after / np.where(before > 0, before, np.nan))
        gap = np.nanmean(log_ratio[both & is_resp]) - np.nanmean(log_ratio[both & ~is_resp])
        assert np.sign(gap) == np.sign(row.log2_effect) and abs(gap) > 0.7, row.feature


def test_baseline_signature_separates_responders(demo_taxa, demo):
    frac, pairs, truth, resp = demo_taxa
    is_resp = resp.loc[pairs.index].to_numpy()
    for row in truth[(truth["modality"] == "taxa") & (truth["effect"] == "baseline_response")].itertuples():
        x = np.log2(frac.loc[pairs["baseline"], row.feature].to_numpy() + 1e-6)
        auc = stats.mannwhitneyu(x[is_resp], x[~is_resp]).statistic / (is_resp.sum() * (~is_resp).sum())
        assert (auc - 0.5) * np.sign(row.log2_effect) > 0.15, row.feature
    immune = pd.read_csv(demo / "immune_subsets.tsv", sep="\t", index_col=0)
    blood = paired(sample_sheet(demo), "blood", immune.index)
    is_resp = resp.loc[blood.index].to_numpy()
    for row in truth[(truth["modality"] == "immune") & (truth["effect"] == "baseline_response")].itertuples():
        x = immune.loc[blood["baseline"], row.feature].to_numpy()
        assert np.sign(x[is_resp].mean() - x[~is_resp].mean()) == np.sign(row.log2_effect)


def test_shannon_rises_in_responders_only(demo_taxa):
    frac, pairs, _, resp = demo_taxa

    def shannon(p):
        p = p[p > 0]
        return -(p * np.log(p)).sum()

    h = frac.apply(shannon, axis=1, raw=True)
    change = h.loc[pairs["post"]].to_numpy() - h.loc[pairs["baseline"]].to_numpy()
    is_resp = resp.loc[pairs.index].to_numpy()
    assert change[is_resp].mean() > 0.2
    assert change[is_resp].mean() - change[~is_resp].mean() > 0.2
    assert stats.wilcoxon(change[is_resp]).pvalue < 0.05


def test_metabolite_and_immune_links_follow_their_drivers(demo, demo_taxa):
    frac, _, truth, _ = demo_taxa
    sheet = sample_sheet(demo)
    peaks = pd.read_csv(demo / "metabolome_peaks.tsv", sep="\t", index_col=0).iloc[:, 5:]
    immune = pd.read_csv(demo / "immune_subsets.tsv", sep="\t", index_col=0)
    stool = paired(sheet, "stool", set(peaks.columns) & set(frac.index))
    log_peaks = np.log2(peaks)
    for row in truth[(truth["modality"] == "metabolite") & truth["effect"].str.startswith("driven_by:")].itertuples():
        taxon = row.effect.split(":", 1)[1]
        d_taxon = np.log2(frac.loc[stool["post"], taxon].to_numpy() + 1e-6) - np.log2(
            frac.loc[stool["baseline"], taxon].to_numpy() + 1e-6)
        d_metab = log_peaks.loc[row.feature, stool["post"]].to_numpy() - log_peaks.loc[
            row.feature, stool["baseline"]].to_numpy()
        ok = np.isfinite(d_metab)
        rho = stats.spearmanr(d_taxon[ok], d_metab[ok])[0]
        assert rho > 0.3, (row.feature, taxon, rho)
    for row in truth[(truth["modality"] == "metabolite") & (truth["effect"] == "time")].itertuples():
        peak = log_peaks.loc[row.feature]
        d = peak[stool["post"]].to_numpy() - peak[stool["baseline"]].to_numpy()
        assert np.sign(np.nanmedian(d)) == np.sign(row.log2_effect), row.feature
    # immune subsets follow their metabolite: within-subject changes correlate (logit scale)
    st = sheet[(sheet["sample_type"] == "stool") & sheet["sample_id"].isin(peaks.columns)]
    st = st.set_index(["subject_id", "timepoint"])["sample_id"]
    bl = sheet[sheet["sample_type"] == "blood"].set_index(["subject_id", "timepoint"])["sample_id"]
    visits = st.index.intersection(bl.index)
    logit = np.log(immune / (100 - immune))
    for row in truth[(truth["modality"] == "immune") & truth["effect"].str.startswith("driven_by:")].itertuples():
        fid = row.effect.split(":", 1)[1]
        m = log_peaks.loc[fid, st.loc[visits].to_numpy()].to_numpy()
        y = logit.loc[bl.loc[visits].to_numpy(), row.feature].to_numpy()
        ok = np.isfinite(m)
        rho = stats.spearmanr(m[ok], y[ok])[0]
        assert rho * np.sign(row.log2_effect) > 0.4, (row.feature, fid, rho)


def test_metabolome_has_qc_missingness_batch_and_blank_structure(demo):
    sheet = sample_sheet(demo).set_index("sample_id")
    peaks = pd.read_csv(demo / "metabolome_peaks.tsv", sep="\t", index_col=0)
    annotation, x = peaks.iloc[:, :5], peaks.iloc[:, 5:]
    kind = sheet.loc[x.columns, "sample_type"]
    batch = sheet.loc[x.columns, "batch"]
    samples = x.loc[:, (kind == "stool").to_numpy()]
    # ~60 annotated with real identifiers
    named = annotation["name"].notna()
    assert 50 <= named.sum() <= 80
    assert annotation.loc[named, "hmdb"].str.fullmatch(r"HMDB\d{7}").all()
    butyrate = annotation[annotation["name"] == "Butyric acid"].iloc[0]
    assert butyrate["hmdb"] == "HMDB0000039" and butyrate["kegg"] == "C00246"
    assert math.isclose(butyrate["mz"], 88.05243 + 1.00728, abs_tol=1e-4)  # [M+H]+
    # missing not at random: low-abundance features are missing more often
    missing = samples.isna().mean(axis=1)
    level = np.log(samples).median(axis=1)
    assert stats.spearmanr(level, missing, nan_policy="omit")[0] < -0.3
    assert (missing > 0.8).sum() >= 5 and 0.02 < samples.isna().to_numpy().mean() < 0.2
    # pooled QCs are tight within a batch; a few features repeat poorly
    qc = x.loc[:, (kind == "qc").to_numpy()]
    qc_batch = batch[kind == "qc"]
    rsd = pd.concat([qc.loc[:, (qc_batch == b).to_numpy()].pipe(lambda q: q.std(axis=1) / q.mean(axis=1))
                     for b in sorted(set(qc_batch))], axis=1).mean(axis=1)
    assert 0.03 < rsd.median() < 0.15 and (rsd > 0.3).sum() >= 10
    # batch B2 reads higher than B1
    log_s = np.log2(samples)
    b = batch[kind == "stool"].to_numpy()
    shift = (log_s.loc[:, b == "B2"].median(axis=1) - log_s.loc[:, b == "B1"].median(axis=1)).median()
    assert shift > 0.1
    # blanks: mostly low, a few contaminants as high as the samples
    blank = x.loc[:, (kind == "blank").to_numpy()].mean(axis=1)
    ratio = blank / samples.mean(axis=1)
    assert (ratio.fillna(0) < 0.1).mean() > 0.8 and (ratio > 0.5).sum() >= 5


# ---------------------------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------------------------


def test_format_fixed_matches_python_repr_of_rounded_floats():
    rng = np.random.default_rng(0)
    values = np.round(rng.lognormal(0.0, 3.0, (40, 30)), 5)
    values[values < 1e-4] = 0.0
    values[:, 0] = [100.0, 0.0, 12.5, 0.1, 0.00012] + [1.0] * 35
    values[3, 3] = np.nan
    rows = format_fixed(values, 5)
    for i, row in enumerate(rows):
        expected = "".join("\t" if np.isnan(v) else "\t" + repr(float(v)) for v in values[i])
        assert row.decode() == expected
    ints = format_fixed(np.array([[0.0, 7.0, 1234567.0, np.nan]]), 0)
    assert ints == [b"\t0\t7\t1234567\t"]


def test_invalid_design_is_reported_with_the_argument_named(tmp_path):
    with pytest.raises(InputError) as err:
        simulate_study(tmp_path, n_subjects=3, n_taxa=5, timepoints=("baseline",))
    message = str(err.value)
    assert "n_subjects" in message and "n_taxa" in message and "timepoints" in message
    assert not any(tmp_path.iterdir())


# ---------------------------------------------------------------------------------------------
# tumour tissue: biopsy cell densities from their own random stream
# ---------------------------------------------------------------------------------------------


def tissue_changes(paths) -> tuple[pd.DataFrame, pd.Series]:
    """Per subject with both biopsies: post - baseline of log2(density + 1); and responder flags."""
    dens = pd.read_csv(paths["tissue"], sep="\t", index_col=0)
    sheet = pd.read_csv(paths["samples"], sep="\t", dtype=str, keep_default_na=False).set_index("sample_id")
    values = np.log2(dens + 1.0)
    values["subject"] = sheet.loc[values.index, "subject_id"].to_numpy()
    values["tp"] = sheet.loc[values.index, "timepoint"].to_numpy()
    wide = values.pivot(index="subject", columns="tp")
    change = pd.DataFrame({c: wide[(c, "post")] - wide[(c, "baseline")] for c in dens.columns}).dropna()
    subjects = pd.read_csv(paths["subjects"], sep="\t").set_index("subject_id")
    return change, subjects["best_response"].isin(["CR", "PR", "SD"]).reindex(change.index)


def test_tissue_stream_leaves_every_other_file_unchanged(small, tmp_path, monkeypatch):
    """Other tissue settings (more biopsies, other effects) change the tissue file and the appended
    sheet rows only: the tissue draws come from their own stream."""
    import gutaxis.demo.simulate as sim

    monkeypatch.setattr(sim, "TISSUE_PAIRED_FRACTION", 0.9)
    monkeypatch.setattr(sim, "TISSUE_TIME_X_RESPONSE", (("CD8+ cells", 3.0),))
    other = simulate_study(tmp_path, seed=7, **SMALL)
    for key in ("subjects", "adverse_events", "metaphlan", "metabolome", "immune", "truth"):
        assert other[key].read_bytes() == small[key].read_bytes(), key
    assert other["tissue"].read_bytes() != small["tissue"].read_bytes()
    before = sample_sheet(small["samples"].parent)
    after = sample_sheet(other["samples"].parent)
    non_tissue = before[before["sample_type"] != "tissue"]
    assert before.iloc[:len(non_tissue)].equals(non_tissue)  # biopsies are appended rows
    assert after.iloc[:len(non_tissue)].equals(non_tissue)
    assert (after["sample_type"] == "tissue").sum() > (before["sample_type"] == "tissue").sum()


def test_tissue_biopsies_are_a_paired_subset_in_both_response_groups(demo):
    sheet = sample_sheet(demo)
    assert list(sheet["sample_type"].iloc[-64:].unique()) == ["tissue"]  # appended after the controls
    tissue = sheet[sheet["sample_type"] == "tissue"]
    dens = pd.read_csv(demo / "tissue_densities.tsv", sep="\t", index_col=0)
    assert list(dens.columns) == ["CD8+ cells", "FOXP3+ cells", "PD-L1+ cells", "CD68+ cells"]
    assert set(dens.index) == set(tissue["sample_id"])
    assert (tissue["sample_id"] == tissue["subject_id"] + "_" + tissue["timepoint"] + "_TU").all()
    assert set(tissue["timepoint"]) == {"baseline", "post"}
    per_subject = tissue.groupby("subject_id")["timepoint"].apply(frozenset)
    paired = per_subject[per_subject == frozenset({"baseline", "post"})].index
    baseline_only = per_subject[per_subject == frozenset({"baseline"})].index
    assert len(paired) + len(baseline_only) == len(per_subject)  # never a post biopsy alone
    assert len(paired) == 28 and len(baseline_only) == 8
    resp = responders(demo)
    assert resp[paired].sum() == 14 and (~resp[paired]).sum() == 14
    assert (dens >= 0).all().all() and dens.notna().all().all()
    assert (dens["PD-L1+ cells"] == 0).any()  # PD-L1-negative biopsies: exact zeros
    assert (dens["CD8+ cells"] > 0).all()


def test_tissue_planted_effects_match_the_truth_on_the_analysis_scale(tmp_path):
    """A large simulated study: mean within-subject change of log2(density + 1) per response group
    equals the documented expectation (planted effects plus the butyrate link, Monte Carlo on
    the log2(x + 1) scale) within four standard errors; FOXP3+ and CD68+ do not change."""
    import gutaxis.demo.simulate as sim

    paths = simulate_study(tmp_path, seed=11, n_subjects=480, n_taxa=120, n_metabolites=150, n_immune=12)
    change, resp = tissue_changes(paths)
    assert resp.sum() >= 140 and (~resp).sum() >= 140
    planted = {"CD8+ cells": (2.2, 0.0), "PD-L1+ cells": (1.0, 1.0), "FOXP3+ cells": (0.0, 0.0),
               "CD68+ cells": (0.0, 0.0)}  # log2 change (responders, non-responders), from TRUTH.md
    spec = {f"{m}|{g}": v for m, (r, n) in planted.items() for g, v in (("responders", r), ("non_responders", n))}
    expected = sim.tissue_expected_log2p1(spec)
    for marker in planted:
        for group, mask in (("responders", resp), ("non_responders", ~resp)):
            x = change.loc[mask, marker]
            se = x.std(ddof=1) / math.sqrt(len(x))
            assert abs(x.mean() - expected[f"{marker}|{group}"]) < 4 * se, (marker, group, x.mean())
    cd8 = change["CD8+ cells"]
    diff = cd8[resp].mean() - cd8[~resp].mean()
    se = math.sqrt(cd8[resp].var() / resp.sum() + cd8[~resp].var() / (~resp).sum())
    assert abs(diff - 2.2) < 4 * se and diff / se > 8  # the time x response effect, clearly detectable
    # the compression of log2(x + 1) is real for the sparse PD-L1, negligible for CD8+
    assert expected["PD-L1+ cells|responders"] < 0.95 and expected["CD8+ cells|responders"] > 2.15


def test_tissue_truth_sums_the_planted_effects(demo):
    """TRUTH.md gives the expected CD8+ and PD-L1+ changes, computed by hand from the constants:
    CD8+ in responders 0.8 + 1.0 x (0.4 x 0 + 0.35 x 2.0 + 0.35 x 2.0) = 2.2 (butyrate's drivers:
    F. prausnitzii without an effect, R. intestinalis and A. hallii +2.0 in responders)."""
    text = (demo / "TRUTH.md").read_text()
    assert "| `CD8+ cells` | log2 x | +2.20 | 0 | +2.20 |" in text
    assert "| `PD-L1+ cells` | log2 x | +1.00 | +1.00 | 0 |" in text
    assert "## Tumour tissue (`tissue_densities.tsv`)" in text
