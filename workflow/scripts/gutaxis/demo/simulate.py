"""Deterministic simulator of a paired pre/post-treatment gut microbiome-metabolome-immune trial.

:func:`simulate_study` writes a complete demo study in the raw formats gutaxis reads: a sample
sheet, a subjects table (RECIST/iRECIST, PFS2, OS), CTCAE adverse events, a merged MetaPhlAn 4
table, an untargeted metabolomics peak table with pooled QCs and blanks, flow-cytometry immune
subsets, tumour-biopsy cell densities, and the planted truth (``truth.tsv``, ``TRUTH.md``) that
the analyses should recover.

The generative model, per subject *i*, visit *v* (subject x timepoint) and feature:

* taxa: latent log abundance ``eta = mu_k + c_v (b_ik + e_vk) + effects``, with ``mu_k`` from
  the species' median abundance in a real MetaPhlAn 4 table, a subject random effect
  ``b ~ N(0, 1.2^2)`` (so a subject's visits resemble each other more than two subjects do),
  visit noise ``e ~ N(0, 0.75^2)``, and ``c_v = ALPHA_COMPRESSION`` for the non-planted taxa
  of responders' treated visits (more even communities: the planted Shannon rise), else 1.
  A species is present when the subject carries it (probability from its real prevalence)
  and it is detected at that visit; abundances are closed to 100 % minus an UNCLASSIFIED
  share (log-normal abundances on a subject-level presence mask, the usual zero-inflated
  log-normal picture of shotgun profiles).
* metabolites: ``L = mu_m + u_im + e_vm + effects + sum_k gamma_mk (eta_vk - mu_k)``; the
  measured peak area adds a per-sample dilution, a per-batch multiplicative shift and
  technical noise, and is missing below a detection limit (missing not at random).
* immune subsets: ``logit(p) = logit(p0) + v_iq + e_vq + effects + sum_m delta_qm (L_vm - mu_m)/ln 2``.
* tumour tissue (biopsies of a subset of patients): Poisson cell counts over the counted area
  with ``log2 lambda = log2 m_f + (b_if + e_vf)/ln 2 + effects + delta_f (L_vj - mu_j)/ln 2``
  (see :func:`simulate_tissue`), from a seventh stream so the other tables do not depend on it.

"Treated" visits are every timepoint after the first (post, progression). "Responder" is
disease control by RECIST 1.1 (CR, PR or SD); the NE patient counts as non-responder here.

Every random draw comes from ``numpy.random.default_rng`` streams spawned from the seed, one
stream per table, so the same seed gives byte-identical files.

References
----------
Truong DT et al. (2017) MetaPhlAn2 for enhanced metagenomic taxonomic profiling. Nat Methods
14:626 (profile format); Blanco-Miguez A et al. (2023) MetaPhlAn 4. Nat Biotechnol 41:1633.
Seymour L et al. (2017) iRECIST. Lancet Oncol 18:e143. Dieterle F et al. (2006) Probabilistic
quotient normalization. Anal Chem 78:4281 (why per-sample dilution is simulated).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gutaxis.demo import catalog
from gutaxis.io.errors import InputError, Problem
from gutaxis.models.landmark import DAYS_PER_MONTH  # the survival columns' month

LN2 = math.log(2.0)
COHORTS = (("lung", "LUN"), ("esophageal", "ESO"), ("other", "OTH"))
PROGRESSION = "progression"
MPA_VERSION = "#mpa_vJun23_CHOCOPhlAnSGB_202403"
DATA_CUTOFF = np.datetime64("2025-06-30")
RESPONDER_CLASSES = ("CR", "PR", "SD")

# ---------------------------------------------------------------------------------------------
# Planted effects (log2 fold changes unless stated). Feature ids are the canonical ones.
# ---------------------------------------------------------------------------------------------
#: taxa that change after treatment in every patient (log2 FC, treated vs baseline)
TAXA_TIME = (
    ("s__Eggerthella_lenta", 1.8),
    ("s__Bifidobacterium_longum", 1.6),
    ("s__Enterococcus_faecium", 2.4),
    ("s__Escherichia_coli", 2.0),
    ("s__Veillonella_parvula", 1.7),
    ("s__Clostridium_scindens", -2.0),
    ("s__Ruminococcus_lactaris", -1.7),
    ("s__Lachnospira_pectinoschiza", -1.6),
    ("s__Dorea_longicatena", -1.8),
    ("s__Coprococcus_comes", -1.6),
)
#: taxa that change only in responders (log2 FC in responders; 0 in non-responders)
TAXA_TIME_X_RESPONSE = (
    ("s__Anaerobutyricum_hallii", 2.0),
    ("s__Roseburia_intestinalis", 2.0),
    ("s__Clostridium_sporogenes", 2.2),
    ("s__Bifidobacterium_adolescentis", 2.0),
    ("s__Ruminococcus_gnavus", -2.0),
    ("s__Klebsiella_pneumoniae", -2.0),
)
#: taxa that differ between responders and non-responders at every visit (log2 R vs NR)
TAXA_BASELINE = (
    ("s__Collinsella_aerofaciens", 2.0),
    ("s__Bacteroides_caccae", 2.0),
    ("s__Eubacterium_siraeum", 2.0),
    ("s__Hungatella_hathewayi", -2.0),
    ("s__Streptococcus_parasanguinis", -2.0),
)
#: always-included taxa (archaea, classic gut members) besides the planted ones
TAXA_ALWAYS = (
    "s__Methanobrevibacter_smithii",
    "s__Akkermansia_muciniphila",
    "s__Ruminococcus_bromii",
    "s__Prevotella_copri_clade_A",
    "s__Phocaeicola_vulgatus",
    "s__Bacteroides_fragilis",
    "s__Eubacterium_rectale",
    "s__Blautia_wexlerae",
    "s__Enterococcus_faecalis",
    "s__Veillonella_atypica",
    "s__Bifidobacterium_bifidum",
)
#: metabolites whose log level follows taxa: name -> ((taxon, gamma), ...), gamma in
#: log2 metabolite per log2 taxon
METABOLITES_DRIVEN = (
    ("Butyric acid", (("s__Faecalibacterium_prausnitzii", 0.4), ("s__Roseburia_intestinalis", 0.35),
                      ("s__Anaerobutyricum_hallii", 0.35))),
    ("Deoxycholic acid", (("s__Clostridium_scindens", 0.8),)),
    ("Lithocholic acid", (("s__Clostridium_scindens", 0.7),)),
    ("Indole-3-propionic acid", (("s__Clostridium_sporogenes", 0.8),)),
    ("Propionic acid", (("s__Veillonella_parvula", 0.5),)),
    ("Inosine", (("s__Bifidobacterium_adolescentis", 0.7),)),
    ("Indole-3-lactic acid", (("s__Bifidobacterium_longum", 0.7),)),
    ("Tyramine", (("s__Enterococcus_faecium", 0.6),)),
)
#: metabolites with a direct treatment effect (log2 FC, treated vs baseline, everyone)
METABOLITES_TIME = (
    ("L-Kynurenine", 1.0),
    ("Citrulline", -1.2),
    ("Hypoxanthine", 1.0),
    ("L-Lactic acid", 1.3),
    ("Cholic acid", 1.0),
)
#: baseline responder signature (log2 R vs NR); None = an unannotated feature
METABOLITES_BASELINE = (
    ("Valeric acid", 1.2),
    ("Hippuric acid", 1.2),
    (None, -1.2),
)
#: immune subsets following a metabolite: (subset, metabolite, logit change per log2 metabolite)
IMMUNE_DRIVEN = (
    ("CD8+ T cells", "Butyric acid", 0.25),
    ("Ki-67+ CD8+", "Inosine", 0.30),
    ("Tregs (CD4+CD25+CD127lo)", "Deoxycholic acid", 0.25),
    ("Th17", "Lithocholic acid", -0.30),
)
#: immune baseline responder signature (logit difference R vs NR)
IMMUNE_BASELINE = (
    ("PD-1+ CD8+", 0.5),
    ("MDSC", -0.5),
)
#: tumour-biopsy cell densities (cells/mm^2 of tumour area, IHC / multiplex IF): marker ->
#: median density at baseline and SD of the tumour (subject) effect on the natural-log scale
#: (PD-L1 varies most between tumours: many are nearly negative)
TISSUE_MARKERS = (
    ("CD8+ cells", 150.0, 0.8),
    ("FOXP3+ cells", 40.0, 0.8),
    ("PD-L1+ cells", 8.0, 1.6),
    ("CD68+ cells", 200.0, 0.8),
)
#: tissue markers that change only in responders (log2 FC of the density, post vs baseline,
#: in responders; 0 in non-responders)
TISSUE_TIME_X_RESPONSE = (("CD8+ cells", 0.8),)
#: tissue markers that change after treatment in every patient (log2 FC, post vs baseline)
TISSUE_TIME = (("PD-L1+ cells", 1.0),)
#: tissue markers following a stool metabolite: (marker, metabolite, log2 density per log2 metabolite)
TISSUE_DRIVEN = (("CD8+ cells", "Butyric acid", 1.0),)
#: patients with a baseline and a post-treatment biopsy, and with a baseline biopsy only
#: (fractions of responders and of non-responders, so both groups keep paired biopsies)
TISSUE_PAIRED_FRACTION = 0.6
TISSUE_BASELINE_ONLY_FRACTION = 0.15
#: log-scale spread of densities between biopsies of one tumour (visit), natural log
TISSUE_VISIT_SD = 0.4
#: counted tumour area per biopsy (mm^2, uniform): densities are Poisson counts / area, so
#: sparse markers have exact zeros
TISSUE_AREA_MM2 = (1.0, 4.0)
#: the tissue stream is child number TISSUE_STREAM of the seed's SeedSequence: the first six
#: children (the other tables) are unchanged by its existence
TISSUE_STREAM = 6

# Diversity rise in responders' treated visits (taxa other than the planted and driving ones):
# subject and visit deviations of the log abundances shrink (a more even community; zero-mean
# per taxon, so no taxon shifts on average), carried taxa are detected more often and a few
# more transient taxa appear.
ALPHA_COMPRESSION = 0.5
ALPHA_DETECTION = 0.97  # detection of carried taxa in responders' treated visits (else 0.90)
ALPHA_GAIN = 0.05  # transient taxa in responders' treated visits (else 0.02)

# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyDesign:
    """Size and shape of the simulated study.

    Parameters
    ----------
    seed : int
        Seed of every random stream.
    n_subjects : int
        Patients, split evenly over the lung, esophageal and other cohorts.
    n_taxa : int
        Species in the MetaPhlAn table (real names first; placeholders beyond the catalog).
    n_metabolites : int
        Features in the peak table (about 10 % annotated).
    n_immune : int
        Immune subsets (columns of the immune table).
    timepoints : tuple of str
        Scheduled timepoints; the first is the pre-treatment baseline.
    progression_fraction : float
        Fraction of patients with an extra stool + blood sample at progression.
    realistic_gaps : bool
        Add the gaps of a real study: a patient without post stool, a failed stool
        metagenome, a re-sequenced stool sample.
    """

    seed: int = 20261122
    n_subjects: int = 48
    n_taxa: int = 400
    n_metabolites: int = 600
    n_immune: int = 20
    timepoints: tuple[str, ...] = ("baseline", "post")
    progression_fraction: float = 0.125
    realistic_gaps: bool = True

    def validate(self) -> None:
        """Raise :class:`InputError` listing every out-of-range setting."""
        where = "simulate_study()"
        problems = []

        def need(ok: bool, name: str, what: str, fix: str) -> None:
            if not ok:
                problems.append(Problem(where, f"argument {name}", what, fix))

        need(self.n_subjects >= 12, "n_subjects", f"{self.n_subjects} is too few", "use at least 12")
        n_planted_taxa = len(TAXA_TIME) + len(TAXA_TIME_X_RESPONSE) + len(TAXA_BASELINE) + len(TAXA_ALWAYS)
        need(self.n_taxa >= n_planted_taxa + 10, "n_taxa", f"{self.n_taxa} is too few",
             f"use at least {n_planted_taxa + 10}")
        need(self.n_metabolites >= 100, "n_metabolites", f"{self.n_metabolites} is too few", "use at least 100")
        need(self.n_immune >= 11, "n_immune", f"{self.n_immune} is too few",
             "use at least 11 (the planted subsets are among the first 11)")
        need(len(self.timepoints) >= 2 and len(set(self.timepoints)) == len(self.timepoints),
             "timepoints", f"{self.timepoints!r} is not two or more distinct names",
             "give e.g. ('baseline', 'post')")
        need(PROGRESSION not in self.timepoints, "timepoints", f"'{PROGRESSION}' is reserved",
             "use progression_fraction for progression samples")
        need(0.0 <= self.progression_fraction <= 1.0, "progression_fraction",
             f"{self.progression_fraction} is outside [0, 1]", "use a fraction such as 0.125")
        if problems:
            raise InputError(problems)


@dataclass
class SamplePlan:
    """Which samples exist: visits, stool and blood samples, metabolomics injection sequence."""

    visits: pd.DataFrame  # subject_idx, subject_id, timepoint, tp_index, treated, responder, date
    stool: pd.DataFrame  # sample_id, visit, failed, reseq
    blood: pd.DataFrame  # sample_id, visit
    injections: pd.DataFrame  # sample_id, sample_type, batch, batch_index, injection_order, visit
    sheet: pd.DataFrame = field(default_factory=pd.DataFrame)  # samples.tsv


# =============================================================================================
# Public entry point
# =============================================================================================


def simulate_study(
    out_dir,
    seed: int = 20261122,
    n_subjects: int = 48,
    n_taxa: int = 400,
    n_metabolites: int = 600,
    n_immune: int = 20,
    timepoints: tuple[str, ...] = ("baseline", "post"),
    progression_fraction: float = 0.125,
    realistic_gaps: bool = True,
) -> dict[str, Path]:
    """Simulate the demo study and write it to ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
        Output folder (created).
    seed, n_subjects, n_taxa, n_metabolites, n_immune, timepoints, progression_fraction,
    realistic_gaps
        See :class:`StudyDesign`.

    Returns
    -------
    dict of str to Path
        Written files: ``samples``, ``subjects``, ``adverse_events``, ``metaphlan``,
        ``metabolome``, ``immune``, ``tissue``, ``truth``, ``truth_md``.
    """
    design = StudyDesign(
        seed=int(seed), n_subjects=int(n_subjects), n_taxa=int(n_taxa),
        n_metabolites=int(n_metabolites), n_immune=int(n_immune),
        timepoints=tuple(timepoints), progression_fraction=float(progression_fraction),
        realistic_gaps=bool(realistic_gaps),
    )
    design.validate()
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(design.seed).spawn(6)]
    rng_subjects, rng_ae, rng_samples, rng_taxa, rng_metab, rng_immune = streams

    subjects, hidden = simulate_subjects(design, rng_subjects)
    adverse_events = simulate_adverse_events(subjects, rng_ae)
    plan = plan_samples(subjects, hidden, design, rng_samples)
    taxa = simulate_taxa(plan, design, rng_taxa)
    metab = simulate_metabolome(plan, taxa, design, rng_metab)
    immune = simulate_immune(plan, metab, design, rng_immune)
    # Tissue draws come from their own stream (spawned seventh), so the tables above are the
    # same with or without it; the biopsy rows are appended after the other sample-sheet rows.
    tissue_seed = np.random.SeedSequence(design.seed).spawn(TISSUE_STREAM + 1)[TISSUE_STREAM]
    rng_tissue = np.random.default_rng(tissue_seed)
    tissue = simulate_tissue(plan, metab, design, rng_tissue)
    plan.sheet = pd.concat([plan.sheet, tissue.sheet], ignore_index=True)
    truth = build_truth(taxa, metab, immune)
    alpha = realised_shannon_change(plan, taxa)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "samples": out / "samples.tsv",
        "subjects": out / "subjects.tsv",
        "adverse_events": out / "adverse_events.tsv",
        "metaphlan": out / "metaphlan4_merged.txt",
        "metabolome": out / "metabolome_peaks.tsv",
        "immune": out / "immune_subsets.tsv",
        "tissue": out / "tissue_densities.tsv",
        "truth": out / "truth.tsv",
        "truth_md": out / "TRUTH.md",
    }
    _write_table(plan.sheet, paths["samples"])
    _write_table(subjects, paths["subjects"])
    _write_table(adverse_events, paths["adverse_events"])
    write_metaphlan(taxa, plan, paths["metaphlan"])
    write_metabolome(metab, plan, paths["metabolome"])
    write_immune(immune, plan, paths["immune"])
    write_tissue(tissue, paths["tissue"])
    truth = _add_alpha_note(truth, alpha)
    _write_table(truth, paths["truth"])
    paths["truth_md"].write_text(truth_markdown(truth, design, alpha) + tissue_markdown(tissue, metab),
                                 encoding="utf-8")
    return paths


# =============================================================================================
# Clinical tables
# =============================================================================================


def parse_arguments(argv: list[str] | None = None, description: str = "") -> dict:
    """The command line of ``workflow/scripts/simulate_demo.py`` as keywords of :func:`simulate_study`.

    Parameters
    ----------
    argv : list of str, optional
        Default ``sys.argv[1:]``.
    description : str
        Shown by ``--help``.

    Returns
    -------
    dict
        ``out_dir`` and the design keywords (defaults: the committed demo, ``resources/demo``).
    """
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--subjects", type=int, default=48)
    parser.add_argument("--taxa", type=int, default=400)
    parser.add_argument("--metabolites", type=int, default=600)
    parser.add_argument("--immune", type=int, default=20)
    parser.add_argument("--timepoints", default="baseline,post", help="comma-separated, baseline first")
    parser.add_argument("--progression-fraction", type=float, default=0.125)
    parser.add_argument("--no-gaps", action="store_true", help="leave out the realistic gaps")
    args = parser.parse_args(argv)
    return {"out_dir": args.out, "seed": args.seed, "n_subjects": args.subjects, "n_taxa": args.taxa,
            "n_metabolites": args.metabolites, "n_immune": args.immune,
            "timepoints": tuple(t.strip() for t in args.timepoints.split(",") if t.strip()),
            "progression_fraction": args.progression_fraction, "realistic_gaps": not args.no_gaps}


def _response_counts(n: int) -> dict[str, int]:
    """Best-response mix of immunotherapy-resistant tumours: ORR ~20 %, DCR ~50 %, one NE."""
    counts = {"CR": round(0.04 * n), "PR": round(0.16 * n), "SD": round(0.30 * n), "NE": max(1, round(0.02 * n))}
    counts["PD"] = n - sum(counts.values())
    return {k: counts[k] for k in ("CR", "PR", "SD", "PD", "NE")}


def _weibull(rng: np.random.Generator, median: np.ndarray, shape: float) -> np.ndarray:
    """Weibull draws with the given medians: ``t = median (-ln U / ln 2)^(1/shape)``."""
    return median * (-np.log(rng.random(len(median))) / LN2) ** (1.0 / shape)


def simulate_subjects(design: StudyDesign, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Patients with cohort, study/dose, demographics, RECIST/iRECIST response and survival.

    Returns
    -------
    subjects : DataFrame
        The ``subjects.tsv`` columns, values already formatted as text.
    hidden : DataFrame
        Per subject (same order): ``enrolment`` (datetime64[D]), ``pfs2_true`` (months,
        uncensored), ``pfs2_event``, ``responder`` (DCR by RECIST), ``cohort``.
    """
    n = design.n_subjects
    sizes = [n // 3 + (1 if i < n % 3 else 0) for i in range(3)]
    width = max(2, len(str(max(sizes))))
    subject_id = np.array([f"{prefix}-{i:0{width}d}" for (_, prefix), size in zip(COHORTS, sizes)
                           for i in range(1, size + 1)])
    cohort_index = np.repeat(np.arange(3), sizes)
    cohort = np.array([name for name, _ in COHORTS])[cohort_index]

    # Stratified allocation: deal the response classes round-robin over the cohorts.
    rank_in_cohort = np.empty(n, dtype=np.int64)
    for c in range(3):
        members = np.flatnonzero(cohort_index == c)
        rank_in_cohort[members] = rng.permutation(len(members))
    deal_order = np.lexsort((cohort_index, rank_in_cohort))
    counts = _response_counts(n)
    best = np.empty(n, dtype=object)
    best[deal_order] = np.repeat(list(counts), list(counts.values()))
    best = best.astype(str)
    responder = np.isin(best, RESPONDER_CLASSES)

    # iRECIST: confirmed responses keep their class; some RECIST PD are pseudo-progression.
    irecist = pd.Series(best).map({"CR": "iCR", "PR": "iPR", "SD": "iSD", "NE": "NE", "PD": "iCPD"}).to_numpy()
    pd_idx = rng.permutation(np.flatnonzero(best == "PD"))
    n_pseudo, n_unconfirmed = round(0.13 * len(pd_idx)), round(0.26 * len(pd_idx))
    pseudo = np.zeros(n, dtype=bool)
    pseudo[pd_idx[:n_pseudo]] = True
    irecist[pd_idx[:n_pseudo]] = "iSD"
    irecist[pd_idx[n_pseudo:n_pseudo + n_unconfirmed]] = "iUPD"

    # Target-lesion change: PR <= -30 %, PD >= +20 % or new lesions.
    u = rng.random(n)
    change = np.full(n, np.nan)
    change[best == "CR"] = -100.0
    change[best == "PR"] = -85.0 + 54.5 * u[best == "PR"]
    change[best == "SD"] = -29.0 + 48.0 * u[best == "SD"]
    growth = (best == "PD") & ~pseudo & (rng.random(n) < 0.7)
    new_lesions = (best == "PD") & ~pseudo & ~growth
    change[growth] = 20.5 + 64.5 * u[growth]
    change[new_lesions] = -25.0 + 44.0 * u[new_lesions]
    change[pseudo] = 20.5 + 19.5 * u[pseudo]

    # Study and dose: the earlier ILDR-01 dose-finding patients are pooled in.
    n_early = round(n * 9 / 48)
    early = np.sort(rng.choice(n, n_early, replace=False))
    study = np.full(n, "ILDR-02", dtype=object)
    study[early] = "ILDR-01"
    dose = np.full(n, 2, dtype=np.int64)
    dose[early] = np.resize([1, 2, 3], n_early)

    start_01, end_01 = np.datetime64("2019-06-03"), np.datetime64("2020-12-18")
    start_02, end_02 = np.datetime64("2021-01-11"), np.datetime64("2024-10-28")
    span = np.where(study == "ILDR-01", (end_01 - start_01).astype(int), (end_02 - start_02).astype(int))
    start = np.where(study == "ILDR-01", start_01, start_02)
    enrolment = start + (rng.random(n) * span).astype("timedelta64[D]")

    age = np.clip(np.rint(rng.normal(63.0, 9.0, n)), 32, 84).astype(np.int64)
    sex = np.where(rng.random(n) < 0.68, "M", "F")
    ecog = np.searchsorted(np.cumsum([0.45, 0.50, 0.05]), rng.random(n) * 0.999999)

    # Survival: Weibull PFS2 by response, OS = PFS2 + post-progression survival,
    # administratively censored at the data cut-off.
    # Progression cannot be seen before the first restaging scan (~6-8 weeks), hence the offsets.
    pfs_offset = pd.Series(best).map({"CR": 2.8, "PR": 2.8, "SD": 1.8, "PD": 1.2, "NE": 0.3}).to_numpy()
    pfs_median = pd.Series(best).map({"CR": 15.0, "PR": 8.5, "SD": 4.0, "PD": 1.0, "NE": 0.7}).to_numpy()
    pfs2_true = pfs_offset + _weibull(rng, pfs_median, 1.3)
    pps_median = np.where(responder, 9.0, 4.5)
    pps_median[pseudo] = 10.0
    pps = _weibull(rng, pps_median, 1.1)
    pps[best == "NE"] = 0.0  # the NE patient died before the first assessment
    os_true = pfs2_true + pps
    follow_up = (DATA_CUTOFF - enrolment).astype(int) / DAYS_PER_MONTH
    pfs2_event = pfs2_true <= follow_up
    os_event = os_true <= follow_up
    pfs2 = np.round(np.minimum(pfs2_true, follow_up), 1)
    os_months = np.round(np.minimum(os_true, follow_up), 1)

    # Time on treatment: stops at progression, continues beyond it for pseudo-progression.
    treat = pfs2 * (0.75 + 0.25 * rng.random(n))
    treat[pseudo] = np.minimum(os_months[pseudo], pfs2[pseudo] * (1.5 + 1.5 * rng.random(pseudo.sum())))
    ongoing = ~pfs2_event & (rng.random(n) < 0.7)
    treat[ongoing] = pfs2[ongoing]
    treat = np.minimum(np.round(treat, 1), os_months)

    abscopal = np.where(rng.random(n) < np.where(np.isin(best, ("CR", "PR")), 0.6,
                                                 np.where(best == "SD", 0.15, 0.0)), "yes", "no")
    abscopal[(rng.random(n) < 0.06) & ~np.isin(best, ("CR", "PR"))] = "NE"
    abscopal[best == "NE"] = "NE"

    subjects = pd.DataFrame({
        "subject_id": subject_id,
        "cohort": cohort,
        "study": study,
        "dose_gy": dose.astype(str),
        "age": age.astype(str),
        "sex": sex,
        "ecog": ecog.astype(str),
        "best_response": best,
        "best_response_irecist": irecist,
        "target_lesion_change_pct": _fmt1(change),
        "pfs2_months": _fmt1(pfs2),
        "pfs2_event": pfs2_event.astype(int).astype(str),
        "os_months": _fmt1(os_months),
        "os_event": os_event.astype(int).astype(str),
        "abscopal": abscopal,
        "treatment_months": _fmt1(treat),
        "treatment_ongoing": ongoing.astype(int).astype(str),
        # day 0 of treatment: landmark times count from it (collection_date - treatment_start)
        "treatment_start": enrolment.astype("datetime64[D]").astype(str),
    })
    hidden = pd.DataFrame({
        "enrolment": enrolment, "pfs2_true": pfs2_true, "pfs2_event": pfs2_event,
        "responder": responder, "cohort": cohort,
    })
    return subjects, hidden


def _fmt1(values: np.ndarray) -> list[str]:
    return ["" if np.isnan(v) else f"{v:.1f}" for v in np.asarray(values, dtype=float)]


def simulate_adverse_events(subjects: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """CTCAE v5.0 adverse events: term incidence per patient, grade mostly 1-2, attribution.

    Returns
    -------
    DataFrame
        ``subject_id, term, grade, attribution``, one row per patient and term, sorted by
        subject then term.
    """
    terms = np.array([t for t, _, _ in catalog.ADVERSE_EVENT_TERMS])
    incidence = np.array([p for _, p, _ in catalog.ADVERSE_EVENT_TERMS])
    profile = np.array([k for _, _, k in catalog.ADVERSE_EVENT_TERMS])
    n = len(subjects)
    occurs = rng.random((n, len(terms))) < incidence
    grade_cdf = np.cumsum([0.62, 0.30, 0.07, 0.01])
    grade = 1 + np.searchsorted(grade_cdf, rng.random((n, len(terms))) * grade_cdf[-1], side="right")
    levels = np.array(["unrelated", "unlikely", "possible", "probable", "definite"])
    attribution_cdf = {
        "rt": np.cumsum([0.05, 0.10, 0.40, 0.35, 0.10]),
        "immune": np.cumsum([0.02, 0.05, 0.28, 0.45, 0.20]),
        "other": np.cumsum([0.25, 0.30, 0.30, 0.12, 0.03]),
    }
    u = rng.random((n, len(terms)))
    attribution = np.empty((n, len(terms)), dtype=np.int64)
    for kind, cdf in attribution_cdf.items():
        cols = profile == kind
        attribution[:, cols] = np.searchsorted(cdf, u[:, cols] * cdf[-1], side="right")
    rows, cols = np.nonzero(occurs)
    events = pd.DataFrame({
        "subject_id": subjects["subject_id"].to_numpy()[rows],
        "term": terms[cols],
        "grade": grade[rows, cols].astype(str),
        "attribution": levels[attribution[rows, cols]],
        "_order": rows,
    })
    return events.sort_values(["_order", "term"], kind="stable").drop(columns="_order").reset_index(drop=True)


# =============================================================================================
# Samples
# =============================================================================================


def plan_samples(subjects: pd.DataFrame, hidden: pd.DataFrame, design: StudyDesign,
                 rng: np.random.Generator) -> SamplePlan:
    """Visits, stool and blood samples, gaps, and the metabolomics injection sequence."""
    n = len(subjects)
    tps = list(design.timepoints)
    subject_id = subjects["subject_id"].to_numpy()
    enrolment = hidden["enrolment"].to_numpy()

    n_gap = max(1, round(n / 48)) if design.realistic_gaps else 0
    order = rng.permutation(n)
    no_post_stool, failed_subjects, reseq_subjects = (np.sort(order[i * n_gap:(i + 1) * n_gap]) for i in range(3))

    eligible = np.flatnonzero(hidden["pfs2_event"].to_numpy() & (hidden["pfs2_true"].to_numpy() >= 2.5))
    eligible = eligible[~np.isin(eligible, no_post_stool)]
    n_prog = min(len(eligible), round(design.progression_fraction * n))
    progressors = np.sort(rng.permutation(eligible)[:n_prog])

    # Visits: every subject at every scheduled timepoint, plus progression visits.
    v_subject = np.concatenate([np.repeat(np.arange(n), len(tps)), progressors])
    v_tp = np.concatenate([np.tile(np.arange(len(tps)), n), np.full(n_prog, len(tps))])
    jitter = rng.integers(0, 8, len(v_subject))
    offset_days = np.where(v_tp == 0, -jitter, 42 * v_tp + jitter - 7)
    prog = v_tp == len(tps)
    offset_days[prog] = np.rint(hidden["pfs2_true"].to_numpy()[v_subject[prog]] * DAYS_PER_MONTH) + jitter[prog]
    date = np.minimum(enrolment[v_subject] + offset_days.astype("timedelta64[D]"), DATA_CUTOFF)
    tp_names = np.array(tps + [PROGRESSION])
    visits = pd.DataFrame({
        "subject_idx": v_subject,
        "subject_id": subject_id[v_subject],
        "timepoint": tp_names[v_tp],
        "tp_index": v_tp,
        "treated": v_tp > 0,
        "responder": hidden["responder"].to_numpy()[v_subject],
        "date": date,
    })
    visits = visits.sort_values(["subject_idx", "tp_index"], kind="stable").reset_index(drop=True)

    stool_id = visits["subject_id"] + "_" + visits["timepoint"] + "_ST"
    blood = pd.DataFrame({"sample_id": visits["subject_id"] + "_" + visits["timepoint"] + "_BL",
                          "visit": visits.index.to_numpy()})
    keep = ~(np.isin(visits["subject_idx"], no_post_stool) & (visits["tp_index"] == 1))
    stool = pd.DataFrame({"sample_id": stool_id[keep], "visit": visits.index[keep]})
    stool["failed"] = np.isin(visits.loc[stool["visit"], "subject_idx"], failed_subjects) & (
        visits.loc[stool["visit"], "tp_index"].to_numpy() == 0)
    stool["reseq"] = False
    reseq_rows = stool[np.isin(visits.loc[stool["visit"], "subject_idx"], reseq_subjects)
                       & (visits.loc[stool["visit"], "tp_index"].to_numpy() == 1)].copy()
    reseq_rows["sample_id"] = reseq_rows["sample_id"] + "_reseq"
    reseq_rows["reseq"] = True
    stool = pd.concat([stool, reseq_rows]).sort_values("sample_id", kind="stable").reset_index(drop=True)

    injections = _injection_sequence(stool.loc[~stool["reseq"]], rng)
    plan = SamplePlan(visits=visits, stool=stool, blood=blood, injections=injections)
    plan.sheet = _sample_sheet(plan)
    return plan


def _injection_sequence(measured: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Randomised run order in batches: a blank and a pooled QC open each batch, a QC follows
    every 20 samples and closes the batch."""
    samples = measured["sample_id"].to_numpy()[rng.permutation(len(measured))]
    visit_of = dict(zip(measured["sample_id"], measured["visit"]))
    n_batches = max(2, round(len(samples) / 100))
    bwidth = len(str(n_batches))
    rows = []  # (sample_id or None for QC/blank, type, batch_index)
    for b, chunk in enumerate(np.array_split(samples, n_batches)):
        rows.append((None, "blank", b))
        rows.append((None, "qc", b))
        for start in range(0, len(chunk), 20):
            rows.extend((s, "stool", b) for s in chunk[start:start + 20])
            rows.append((None, "qc", b))
    kinds = np.array([r[1] for r in rows])
    ids = np.array([r[0] if r[0] is not None else "" for r in rows], dtype=object)
    for kind, prefix in (("qc", "QC"), ("blank", "BLANK")):
        where = np.flatnonzero(kinds == kind)
        width = max(2, len(str(len(where))))
        ids[where] = [f"{prefix}{i:0{width}d}" for i in range(1, len(where) + 1)]
    batch_index = np.array([r[2] for r in rows])
    return pd.DataFrame({
        "sample_id": ids.astype(str),
        "sample_type": kinds,
        "batch_index": batch_index,
        "batch": [f"B{b + 1:0{bwidth}d}" for b in batch_index],
        "injection_order": np.arange(1, len(rows) + 1),
        "visit": [visit_of.get(s, -1) for s in ids],
    })


def _sample_sheet(plan: SamplePlan) -> pd.DataFrame:
    """``samples.tsv``: biological samples by subject and timepoint, then QCs and blanks in run order."""
    v = plan.visits
    stool = plan.stool.assign(sample_type="stool", type_rank=0)
    blood = plan.blood.assign(sample_type="blood", type_rank=1)
    bio = pd.concat([stool[["sample_id", "visit", "sample_type", "type_rank"]],
                     blood[["sample_id", "visit", "sample_type", "type_rank"]]], ignore_index=True)
    bio["subject_idx"] = v.loc[bio["visit"], "subject_idx"].to_numpy()
    bio["tp_index"] = v.loc[bio["visit"], "tp_index"].to_numpy()
    bio = bio.sort_values(["subject_idx", "tp_index", "type_rank", "sample_id"], kind="stable")
    inj = plan.injections.set_index("sample_id")
    sheet_bio = pd.DataFrame({
        "sample_id": bio["sample_id"].to_numpy(),
        "subject_id": v.loc[bio["visit"], "subject_id"].to_numpy(),
        "timepoint": v.loc[bio["visit"], "timepoint"].to_numpy(),
        "sample_type": bio["sample_type"].to_numpy(),
        "batch": inj["batch"].reindex(bio["sample_id"]).fillna("").to_numpy(),
        "injection_order": [str(int(x)) if x == x else "" for x in
                            inj["injection_order"].reindex(bio["sample_id"]).to_numpy(dtype=float)],
        "collection_date": v.loc[bio["visit"], "date"].to_numpy().astype("datetime64[D]").astype(str),
    })
    controls = plan.injections[plan.injections["sample_type"] != "stool"]
    sheet_controls = pd.DataFrame({
        "sample_id": controls["sample_id"].to_numpy(),
        "subject_id": "",
        "timepoint": "",
        "sample_type": controls["sample_type"].to_numpy(),
        "batch": controls["batch"].to_numpy(),
        "injection_order": controls["injection_order"].astype(str).to_numpy(),
        "collection_date": "",
    })
    return pd.concat([sheet_bio, sheet_controls], ignore_index=True)


# =============================================================================================
# Taxa
# =============================================================================================


@dataclass
class TaxaSimulation:
    """Species table, per-visit latent log abundance and per-stool-sample percentages."""

    species: pd.DataFrame  # species (clade), lineage (k__..|s__..), sgb, mu, prevalence
    eta: np.ndarray  # visits x species, natural-log latent abundance
    percent: np.ndarray  # stool samples x species, % (rows sum to 100 - unclassified)
    unclassified: np.ndarray  # stool samples, %
    effects: dict = field(default_factory=dict)  # species -> {effect: log2}


def select_species(n_taxa: int, rng: np.random.Generator) -> pd.DataFrame:
    """The planted and always-included species, then the most prevalent catalog species,
    then placeholder ``<Genus>_sp_SGB<n>`` species in real genera when more are asked for."""
    table = pd.DataFrame(catalog.species_table(),
                         columns=["species", "genus", "sgb", "prevalence", "median_pct"])
    drivers = [taxon for _, links in METABOLITES_DRIVEN for taxon, _ in links]
    required = list(dict.fromkeys([s for s, _ in TAXA_TIME + TAXA_TIME_X_RESPONSE + TAXA_BASELINE]
                                   + drivers + list(TAXA_ALWAYS)))
    missing = sorted(set(required) - set(table["species"]))
    if missing:
        raise ValueError(f"planted species missing from the catalog: {missing}")
    is_required = table["species"].isin(required)
    chosen = pd.concat([table[is_required], table[~is_required]]).head(n_taxa)
    n_extra = n_taxa - len(chosen)
    if n_extra > 0:
        genus_counts = table["genus"].value_counts()
        genus_counts = genus_counts[~genus_counts.index.str.contains("unclassified|GGB|CFGB")]
        genus_counts = genus_counts.sort_index()
        genus = rng.choice(genus_counts.index.to_numpy(), n_extra, p=genus_counts.to_numpy() / genus_counts.sum())
        used = {int(s[3:].split("_")[0]) for s in table["sgb"]}
        pool = np.setdiff1d(np.arange(20000, 100000), np.fromiter(used, dtype=np.int64))
        numbers = np.sort(rng.choice(pool, n_extra, replace=False))
        extra = pd.DataFrame({
            "species": [f"s__{g[3:]}_sp_SGB{k}" for g, k in zip(genus, numbers)],
            "genus": genus,
            "sgb": [f"SGB{k}" for k in numbers],
            "prevalence": rng.uniform(0.05, 0.35, n_extra),
            "median_pct": 10 ** rng.uniform(-3.0, -1.0, n_extra),
        })
        chosen = pd.concat([chosen, extra])
    lineages = catalog.genus_lineages()
    chosen = chosen.reset_index(drop=True)
    chosen["lineage"] = [f"{lineages[g]}|{g}|{s}" for g, s in zip(chosen["genus"], chosen["species"])]
    return chosen


def simulate_taxa(plan: SamplePlan, design: StudyDesign, rng: np.random.Generator) -> TaxaSimulation:
    """Species abundances per visit and per stool sample (see module docstring for the model)."""
    species = select_species(design.n_taxa, rng)
    k = len(species)
    v = plan.visits
    n_sub = design.n_subjects
    subj = v["subject_idx"].to_numpy()
    treated = v["treated"].to_numpy()
    resp = v["responder"].to_numpy()
    resp_treated = treated & resp

    effects: dict[str, dict[str, float]] = {}
    time_l2 = np.zeros(k)
    txr_l2 = np.zeros(k)
    base_l2 = np.zeros(k)
    index = {s: i for i, s in enumerate(species["species"])}
    for target, table, name in ((time_l2, TAXA_TIME, "time"), (txr_l2, TAXA_TIME_X_RESPONSE, "time_x_response"),
                                (base_l2, TAXA_BASELINE, "baseline_response")):
        for s, l2 in table:
            target[index[s]] = l2
            effects.setdefault(s, {})[name] = l2
    planted = (time_l2 != 0) | (txr_l2 != 0) | (base_l2 != 0)
    drivers = {taxon for _, links in METABOLITES_DRIVEN for taxon, _ in links}
    core = planted | species["species"].isin(drivers).to_numpy()

    prevalence = np.clip(species["prevalence"].to_numpy(), 0.08, 0.95)
    mu = np.log(species["median_pct"].to_numpy())
    carry_probability = np.minimum(prevalence / 0.9, 0.98)
    # Planted and metabolite-driving taxa are core taxa carried by everyone and almost always
    # detected; planted taxa are left out of the evenness shift, so that their effects are
    # exactly the planted ones.
    carry_probability[core] = 1.0
    carried = rng.random((n_sub, k)) < carry_probability
    b = rng.normal(0.0, 1.2, (n_sub, k))
    e = rng.normal(0.0, 0.75, (len(v), k))
    eta = b[subj]
    eta += e
    eta *= np.where(resp_treated[:, None] & ~core, ALPHA_COMPRESSION, 1.0)
    eta += mu
    for cols, l2, where in ((time_l2 != 0, time_l2, treated), (txr_l2 != 0, txr_l2, resp_treated),
                            (base_l2 != 0, base_l2, resp)):
        eta[:, cols] += LN2 * np.outer(where, l2[cols])

    # A carried taxon is detected at 90 % of visits (more in responders' treated visits, part
    # of the diversity rise); a few others appear transiently.
    u = rng.random((len(v), k))
    detect = np.where(resp_treated[:, None], ALPHA_DETECTION, 0.90) * np.ones(k)
    detect[:, core] = 0.995
    gain = np.where(resp_treated, ALPHA_GAIN, 0.02)[:, None]
    present = np.where(carried[subj], u < detect, u < gain)

    stool = plan.stool
    sv = stool["visit"].to_numpy()
    abundance = np.exp(eta[sv]) * present[sv]
    reseq = stool["reseq"].to_numpy()
    abundance[reseq] *= np.exp(rng.normal(0.0, 0.15, (reseq.sum(), k)))
    unclassified = 100.0 * rng.beta(2.5, 10.0, len(stool))
    classified = 100.0 - unclassified
    percent = abundance / abundance.sum(axis=1, keepdims=True) * classified[:, None]
    percent[percent < 1.5e-4] = 0.0  # MetaPhlAn reports nothing below ~1e-4 %
    percent *= (classified / percent.sum(axis=1))[:, None]
    failed = stool["failed"].to_numpy()
    percent[failed] = 0.0
    unclassified[failed] = 100.0
    return TaxaSimulation(species=species.assign(mu=mu), eta=eta, percent=percent,
                          unclassified=unclassified, effects=effects)


def metaphlan_rows(taxa: TaxaSimulation) -> tuple[list[str], np.ndarray]:
    """Clade names and percent values of every rank, in merge_metaphlan_tables.py row order.

    Higher ranks are sums of their species; each t__SGB row equals its species. Rows never
    detected are left out. Order: UNCLASSIFIED, then clades in the order they are first seen
    column by column, within one column by rank (k__ ... t__) then decreasing abundance, as the
    outer merge of per-sample profiles (each sorted by rank and abundance) produces.

    Returns
    -------
    names : list of str
    values : ndarray, rows x samples, unrounded percent
    """
    lineage = taxa.species["lineage"].str.split("|")
    per_sample = np.ascontiguousarray(taxa.percent.T)  # species x samples
    names: list[str] = []
    blocks: list[np.ndarray] = []
    levels: list[np.ndarray] = []
    for level in range(7):
        prefix = lineage.str[: level + 1].str.join("|").to_numpy()
        codes, uniques = pd.factorize(prefix)
        by_clade = np.argsort(codes, kind="stable")
        starts = np.searchsorted(codes[by_clade], np.arange(len(uniques)))
        sums = np.add.reduceat(per_sample[by_clade], starts, axis=0)
        names.extend(uniques)
        blocks.append(sums)
        levels.append(np.full(len(uniques), level))
    names.extend(taxa.species["lineage"] + "|t__" + taxa.species["sgb"])
    blocks.append(per_sample)
    levels.append(np.full(per_sample.shape[0], 7))
    values = np.vstack(blocks)
    level = np.concatenate(levels)
    names_arr = np.array(names)

    rounded = np.rint(values * 1e5)
    detected = rounded.any(axis=1)
    values, rounded, level, names_arr = values[detected], rounded[detected], level[detected], names_arr[detected]
    first = np.argmax(rounded > 0, axis=1)
    first_value = rounded[np.arange(len(first)), first]
    name_rank = np.argsort(np.argsort(names_arr, kind="stable"), kind="stable")
    order = np.lexsort((name_rank, -first_value, level, first))
    unclassified = taxa.unclassified[None, :]
    return ["UNCLASSIFIED"] + list(names_arr[order]), np.vstack([unclassified, values[order]])


def write_metaphlan(taxa: TaxaSimulation, plan: SamplePlan, path: Path) -> None:
    """Write the merged MetaPhlAn 4 table: version line, ``clade_name`` header, % with 5 decimals."""
    order = np.argsort(plan.stool["sample_id"].to_numpy(), kind="stable")
    sample_ids = plan.stool["sample_id"].to_numpy()[order]
    sorted_taxa = TaxaSimulation(species=taxa.species, eta=taxa.eta, percent=taxa.percent[order],
                                 unclassified=taxa.unclassified[order])
    names, values = metaphlan_rows(sorted_taxa)
    cells = format_fixed(values, 5)
    with open(path, "wb") as fh:
        fh.write((MPA_VERSION + "\n").encode())
        fh.write(("clade_name\t" + "\t".join(sample_ids) + "\n").encode())
        for name, row in zip(names, cells):
            fh.write(name.encode() + row + b"\n")


# =============================================================================================
# Metabolome
# =============================================================================================


@dataclass
class MetabolomeSimulation:
    """Feature annotation, per-visit latent log level and the measured peak table."""

    features: pd.DataFrame  # feature_id, name, mz, rt, hmdb, kegg, kind, mu
    latent: np.ndarray  # visits x features, natural log
    intensity: np.ndarray  # features x injections (run order), NaN = not detected
    effects: list = field(default_factory=list)  # truth rows


def _feature_annotation(n_metabolites: int, rng: np.random.Generator) -> pd.DataFrame:
    required = ([m for m, _ in METABOLITES_DRIVEN] + [m for m, _ in METABOLITES_TIME]
                + [m for m, _ in METABOLITES_BASELINE if m is not None])
    known = {m[0]: m for m in catalog.METABOLITES}
    n_annotated = min(len(known), max(len(required), round(0.1 * n_metabolites)))
    names = required + [m for m in known if m not in required]
    names = names[:n_annotated]
    n_unknown = n_metabolites - n_annotated

    classes = [known[m][4] for m in names]
    rt_window = np.array([catalog.METABOLITE_CLASSES[c][0] for c in classes])
    log10_level = np.array([catalog.METABOLITE_CLASSES[c][1] for c in classes])
    annotated = pd.DataFrame({
        "name": names,
        "mz": [catalog.monoisotopic_mass(known[m][1]) + catalog.PROTON_MASS for m in names],
        "rt": rt_window[:, 0] + (rt_window[:, 1] - rt_window[:, 0]) * rng.random(n_annotated),
        "hmdb": [known[m][2] for m in names],
        "kegg": [known[m][3] for m in names],
        "log10_level": log10_level + rng.normal(0.0, 0.3, n_annotated),
        "kind": "biological",
    })
    unknown = pd.DataFrame({
        "name": "",
        "mz": np.exp(rng.uniform(np.log(70.0), np.log(1000.0), n_unknown)),
        "rt": rng.uniform(0.6, 19.5, n_unknown),
        "hmdb": "",
        "kegg": "",
        "log10_level": rng.normal(6.3, 0.7, n_unknown),
        "kind": "biological",
    })
    # Special unannotated features: mostly missing, blank contaminants, poor QC repeatability.
    n_sparse, n_contam, n_noisy = round(0.03 * n_metabolites), round(0.02 * n_metabolites), round(0.04 * n_metabolites)
    special = rng.permutation(n_unknown)
    kind = unknown["kind"].to_numpy().astype(object)
    kind[special[:n_sparse]] = "mostly_missing"
    kind[special[n_sparse:n_sparse + n_contam]] = "contaminant"
    kind[special[n_sparse + n_contam:n_sparse + n_contam + n_noisy]] = "high_rsd"
    unknown["kind"] = kind
    level = unknown["log10_level"].to_numpy()
    level[kind == "mostly_missing"] = 4.55 + rng.normal(0.0, 0.05, n_sparse)
    level[kind == "contaminant"] = rng.uniform(5.6, 6.5, n_contam)
    unknown["log10_level"] = level
    features = pd.concat([annotated, unknown], ignore_index=True)
    features["mz"] = features["mz"].round(5)
    features["rt"] = features["rt"].round(2)
    features = features.sort_values(["mz", "rt", "name"], kind="stable").reset_index(drop=True)
    width = max(4, len(str(n_metabolites)))
    features.insert(0, "feature_id", [f"FT{i:0{width}d}" for i in range(1, len(features) + 1)])
    features["mu"] = features["log10_level"] * math.log(10.0)
    features["tech_sd"] = np.where(features["kind"] == "high_rsd", 0.40, rng.uniform(0.05, 0.12, len(features)))
    return features


def simulate_metabolome(plan: SamplePlan, taxa: TaxaSimulation, design: StudyDesign,
                        rng: np.random.Generator) -> MetabolomeSimulation:
    """Latent metabolite levels per visit and measured peak areas per injection."""
    features = _feature_annotation(design.n_metabolites, rng)
    m = len(features)
    v = plan.visits
    subj = v["subject_idx"].to_numpy()
    treated = v["treated"].to_numpy()
    resp = v["responder"].to_numpy()
    mu = features["mu"].to_numpy()
    by_name = {name: i for i, name in enumerate(features["name"]) if name}
    taxon_index = {s: i for i, s in enumerate(taxa.species["species"])}
    taxon_mu = taxa.species["mu"].to_numpy()

    # Built in blocks of features: full-size temporaries are slow to allocate on small VMs.
    latent = np.empty((len(v), m))
    for cols in _blocks(m, len(v)):
        block = rng.normal(0.0, 0.8, (design.n_subjects, cols.stop - cols.start))[subj]
        block += rng.normal(0.0, 0.4, block.shape)
        block += mu[cols]
        latent[:, cols] = block

    effects = []
    fid = features["feature_id"].to_numpy()
    for name, drivers in METABOLITES_DRIVEN:
        j = by_name[name]
        for taxon, gamma in drivers:
            t = taxon_index[taxon]
            latent[:, j] += gamma * (taxa.eta[:, t] - taxon_mu[t])
            effects.append(dict(feature=fid[j], effect=f"driven_by:{taxon}", gamma=gamma, name=name, taxon=taxon))
    for name, l2 in METABOLITES_TIME:
        j = by_name[name]
        latent[:, j] += LN2 * l2 * treated
        effects.append(dict(feature=fid[j], effect="time", log2=l2, name=name))
    unannotated = np.flatnonzero((features["name"] == "") & (features["kind"] == "biological")
                                 & (features["log10_level"] > 6.8))
    for name, l2 in METABOLITES_BASELINE:
        j = by_name[name] if name is not None else int(unannotated[0])
        latent[:, j] += LN2 * l2 * resp
        effects.append(dict(feature=fid[j], effect="baseline_response", log2=l2, name=name or ""))

    # Measured peak areas (features x injections).
    inj = plan.injections
    n_batches = inj["batch_index"].max() + 1
    batch_shift = np.concatenate([[0.0, 0.25], rng.normal(0.0, 0.2, max(0, n_batches - 2))])[:n_batches]
    log_dilution = rng.normal(0.0, 0.3, int((inj["sample_type"] == "stool").sum()))
    intensity = np.empty((m, len(inj)))
    for cols in _blocks(m, len(inj)):
        intensity[cols] = _measure(latent[:, cols], features.iloc[cols], inj, batch_shift, log_dilution, rng).T
    return MetabolomeSimulation(features=features, latent=latent, intensity=intensity, effects=effects)


def _blocks(n: int, n_rows: int, cells: int = 1_000_000) -> list[slice]:
    """Column slices of at most ``cells`` cells for an ``n_rows`` x ``n`` matrix."""
    step = max(1, cells // max(n_rows, 1))
    return [slice(start, min(n, start + step)) for start in range(0, n, step)]


def _measure(latent: np.ndarray, features: pd.DataFrame, inj: pd.DataFrame, batch_shift: np.ndarray,
             log_dilution: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Peak areas (injections x features) for one block of features; NaN below detection.

    Stool injection: latent level + dilution + batch shift + technical noise. Pooled QC: the
    log of the mean stool-sample signal, then batch and technical noise. Blank: 1 % of the
    pool (carry-over) with extra noise. Contaminants (from solvents and plastics): the same
    level in every injection, a little higher in blanks.
    """
    m = latent.shape[1]
    mu = features["mu"].to_numpy()
    contaminant = (features["kind"] == "contaminant").to_numpy()
    is_stool = (inj["sample_type"] == "stool").to_numpy()
    is_qc = (inj["sample_type"] == "qc").to_numpy()
    is_blank = (inj["sample_type"] == "blank").to_numpy()
    sample_part = latent[inj.loc[is_stool, "visit"].to_numpy()]
    sample_part += log_dilution[:, None]
    pool = np.log(np.exp(sample_part).mean(axis=0))
    log_x = np.empty((len(inj), m))
    log_x[is_stool] = sample_part
    log_x[is_qc] = pool
    log_x[is_blank] = pool + math.log(0.01) + rng.normal(0.0, 0.5, (is_blank.sum(), m))
    log_x[:, contaminant] = mu[contaminant] + rng.normal(0.0, 0.3, (len(inj), contaminant.sum()))
    log_x[np.ix_(is_blank, contaminant)] += np.log(rng.uniform(0.8, 2.0, (is_blank.sum(), contaminant.sum())))
    batch_effect = batch_shift[:, None] + rng.normal(0.0, 0.05, (len(batch_shift), m))
    log_x += batch_effect[inj["batch_index"].to_numpy()]
    log_x += rng.normal(0.0, 1.0, log_x.shape) * features["tech_sd"].to_numpy()
    below = log_x < math.log(1e5)  # limit of detection
    below[is_stool] |= rng.random((is_stool.sum(), m)) < 0.005  # random dropouts
    intensity = np.exp(log_x)
    intensity[below] = np.nan
    return intensity


_POW10 = 10.0 ** np.arange(0, 23)  # exact in float64


def _round_significant(x: np.ndarray, digits: int) -> np.ndarray:
    """Round positive values to ``digits`` significant digits (NaN stays NaN).

    Multiplies or divides by an exact power of ten, so the result is the float nearest to
    the decimal number and prints without representation noise.
    """
    x = np.ascontiguousarray(x, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        exponent = np.floor(np.log10(x))
    exponent[~np.isfinite(exponent)] = digits - 1
    shift = (digits - 1 - exponent).astype(np.int64)
    np.clip(shift, -22, 22, out=shift)
    up = _POW10[np.maximum(shift, 0)]
    down = _POW10[np.maximum(-shift, 0)]
    scaled = np.rint(np.where(shift >= 0, x * up, x / down))
    return np.where(shift >= 0, scaled / up, scaled * down)


def write_metabolome(metab: MetabolomeSimulation, plan: SamplePlan, path: Path) -> None:
    """Peak table: annotation columns then one column per injection (run order); empty = not detected."""
    f = metab.features
    header = ["feature_id", "name", "mz", "rt", "hmdb", "kegg"] + list(plan.injections["sample_id"])
    cells = []
    for rows in _blocks(len(f), metab.intensity.shape[1]):
        cells += format_fixed(_round_significant(metab.intensity[rows], 6), 0)
    annotation = (f["feature_id"] + "\t" + f["name"] + "\t" + f["mz"].map("{:.5f}".format) + "\t"
                  + f["rt"].map("{:.2f}".format) + "\t" + f["hmdb"] + "\t" + f["kegg"]).to_numpy()
    with open(path, "wb") as fh:
        fh.write(("\t".join(header) + "\n").encode())
        for ann, row in zip(annotation, cells):
            fh.write(ann.encode() + row + b"\n")


# =============================================================================================
# Immune subsets
# =============================================================================================


@dataclass
class ImmuneSimulation:
    subsets: pd.DataFrame  # name, parent, base_pct
    percent: np.ndarray  # blood samples x subsets
    effects: list = field(default_factory=list)


def simulate_immune(plan: SamplePlan, metab: MetabolomeSimulation, design: StudyDesign,
                    rng: np.random.Generator) -> ImmuneSimulation:
    """Flow-cytometry subsets as % of parent, on the logit scale with subject random effects."""
    known = list(catalog.IMMUNE_SUBSETS[: design.n_immune])
    n_extra = design.n_immune - len(known)
    if n_extra > 0:
        known += [(f"CD45+ cluster {i}", "leukocytes", float(b))
                  for i, b in zip(range(len(known) + 1, design.n_immune + 1), rng.uniform(0.5, 20.0, n_extra))]
    subsets = pd.DataFrame(known, columns=["name", "parent", "base_pct"])
    q = len(subsets)
    v = plan.visits
    subj = v["subject_idx"].to_numpy()
    resp = v["responder"].to_numpy()
    p0 = subsets["base_pct"].to_numpy() / 100.0
    y = rng.normal(0.0, 0.35, (design.n_subjects, q))[subj]
    y += rng.normal(0.0, 0.25, (len(v), q))
    y += np.log(p0 / (1 - p0))
    index = {name: i for i, name in enumerate(subsets["name"])}
    by_name = {name: i for i, name in enumerate(metab.features["name"]) if name}
    mu = metab.features["mu"].to_numpy()
    fid = metab.features["feature_id"].to_numpy()
    effects = []
    for subset, metabolite, delta in IMMUNE_DRIVEN:
        j = by_name[metabolite]
        y[:, index[subset]] += delta * (metab.latent[:, j] - mu[j]) / LN2
        effects.append(dict(feature=subset, effect=f"driven_by:{fid[j]}", delta=delta, metabolite=metabolite))
    for subset, shift in IMMUNE_BASELINE:
        y[:, index[subset]] += shift * resp
        effects.append(dict(feature=subset, effect="baseline_response", delta=shift))
    percent = 100.0 / (1.0 + np.exp(-y[plan.blood["visit"].to_numpy()]))
    percent = np.clip(np.round(percent, 2), 0.01, 99.99)
    return ImmuneSimulation(subsets=subsets, percent=percent, effects=effects)


def write_samples_wide(path: Path, sample_ids, columns, values: np.ndarray, decimals: int = 2) -> None:
    """``sample_id`` + one column per feature, rows sorted by sample id, fixed decimals."""
    order = np.argsort(sample_ids, kind="stable")
    cells = format_fixed(values[order], decimals)
    with open(path, "wb") as fh:
        fh.write(("\t".join(["sample_id"] + list(columns)) + "\n").encode())
        for sample, row in zip(sample_ids[order], cells):
            fh.write(sample.encode() + row + b"\n")


def write_immune(immune: ImmuneSimulation, plan: SamplePlan, path: Path) -> None:
    """Wide table: ``sample_id`` + one column per subset (% of parent, 2 decimals)."""
    write_samples_wide(path, plan.blood["sample_id"].to_numpy(), immune.subsets["name"], immune.percent)


# =============================================================================================
# Tumour tissue
# =============================================================================================


@dataclass
class TissueSimulation:
    """Tumour-biopsy cell densities and the sample-sheet rows of the biopsies."""

    markers: pd.DataFrame  # name, median density (cells/mm^2)
    sheet: pd.DataFrame  # samples.tsv rows (sample_type tissue), sorted by subject and timepoint
    visit: np.ndarray  # visit index (row of plan.visits) of each biopsy, in sheet order
    density: np.ndarray  # biopsies x markers, cells/mm^2 (2 decimals)
    log2_expected: np.ndarray  # biopsies x markers, log2 density before counting noise
    effects: list = field(default_factory=list)  # truth rows


def _tissue_subjects(responder: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Patients with paired biopsies and with a baseline biopsy only, drawn within response groups."""
    paired, baseline_only = [], []
    for group in (np.flatnonzero(responder), np.flatnonzero(~responder)):
        order = rng.permutation(group)
        n_paired = round(TISSUE_PAIRED_FRACTION * len(group))
        n_single = round(TISSUE_BASELINE_ONLY_FRACTION * len(group))
        paired.append(order[:n_paired])
        baseline_only.append(order[n_paired:n_paired + n_single])
    return np.sort(np.concatenate(paired)), np.sort(np.concatenate(baseline_only))


def simulate_tissue(plan: SamplePlan, metab: MetabolomeSimulation, design: StudyDesign,
                    rng: np.random.Generator) -> TissueSimulation:
    r"""Cell densities (cells/mm^2) of tumour biopsies at baseline and after treatment.

    For biopsy *v* of subject *i* and marker *f* the expected log2 density is

    .. math:: \log_2 \lambda_{vf} = \log_2 m_f + (b_{if} + e_{vf}) / \ln 2
              + \beta_f T_v + \theta_f T_v R_i + \delta_f (L_{vj} - \mu_j) / \ln 2

    with the marker's median baseline density :math:`m_f` (``TISSUE_MARKERS``), subject
    :math:`b \sim N(0, s_f^2)` (:math:`s_f` 0.8; 1.6 for PD-L1) and biopsy
    :math:`e \sim N(0, 0.4^2)` effects on the natural-log scale, :math:`T_v = 1` for the
    post-treatment biopsy, :math:`R_i = 1` for responders (DCR by RECIST), the planted time
    effect :math:`\beta_f` (``TISSUE_TIME``), time x response effect :math:`\theta_f`
    (``TISSUE_TIME_X_RESPONSE``) and the slope :math:`\delta_f` on the latent log level
    :math:`L_{vj}` of a stool metabolite at the same visit (``TISSUE_DRIVEN``). The counted area
    :math:`A_v \sim U(1, 4)` mm^2, the count :math:`N_{vf} \sim \mathrm{Poisson}(\lambda_{vf} A_v)`
    and the reported density :math:`N_{vf} / A_v`, so sparse markers have exact zeros.

    Biopsies are taken at the first two scheduled timepoints (baseline and post): 60 % of
    responders and of non-responders have both, another 15 % the baseline biopsy only.
    Progression visits have none.
    """
    v = plan.visits
    n = design.n_subjects
    responder_of = v.groupby("subject_idx")["responder"].first().reindex(range(n)).to_numpy(dtype=bool)
    paired, baseline_only = _tissue_subjects(responder_of, rng)
    tp_index = v["tp_index"].to_numpy()
    wanted = (np.isin(v["subject_idx"], paired) & (tp_index <= 1)) | (
        np.isin(v["subject_idx"], baseline_only) & (tp_index == 0))
    visit = np.flatnonzero(wanted)  # plan.visits is sorted by subject then timepoint

    markers = pd.DataFrame(TISSUE_MARKERS, columns=["name", "median", "subject_sd"])
    k = len(markers)
    index = {name: j for j, name in enumerate(markers["name"])}
    subj = v["subject_idx"].to_numpy()[visit]
    treated = v["treated"].to_numpy()[visit].astype(float)
    resp = v["responder"].to_numpy()[visit].astype(float)

    b = rng.normal(0.0, 1.0, (n, k)) * markers["subject_sd"].to_numpy()
    log2_lambda = np.log2(markers["median"].to_numpy())[None, :] + (
        b[subj] + rng.normal(0.0, TISSUE_VISIT_SD, (len(visit), k))) / LN2
    effects = []
    for name, l2 in TISSUE_TIME:
        log2_lambda[:, index[name]] += l2 * treated
        effects.append(dict(feature=name, effect="time", log2=l2))
    for name, l2 in TISSUE_TIME_X_RESPONSE:
        log2_lambda[:, index[name]] += l2 * treated * resp
        effects.append(dict(feature=name, effect="time_x_response", log2=l2))
    by_name = {name: i for i, name in enumerate(metab.features["name"]) if name}
    fid = metab.features["feature_id"].to_numpy()
    mu = metab.features["mu"].to_numpy()
    for name, metabolite, delta in TISSUE_DRIVEN:
        j = by_name[metabolite]
        log2_lambda[:, index[name]] += delta * (metab.latent[visit, j] - mu[j]) / LN2
        effects.append(dict(feature=name, effect=f"driven_by:{fid[j]}", log2=delta, metabolite=metabolite))

    area = rng.uniform(*TISSUE_AREA_MM2, len(visit))
    counts = rng.poisson(np.exp2(log2_lambda) * area[:, None])
    density = np.round(counts / area[:, None], 2)

    visits = v.iloc[visit]
    ids = (visits["subject_id"] + "_" + visits["timepoint"] + "_TU").to_numpy()
    sheet = pd.DataFrame({
        "sample_id": ids,
        "subject_id": visits["subject_id"].to_numpy(),
        "timepoint": visits["timepoint"].to_numpy(),
        "sample_type": "tissue",
        "batch": "",
        "injection_order": "",
        "collection_date": visits["date"].to_numpy().astype("datetime64[D]").astype(str),
    })
    return TissueSimulation(markers=markers, sheet=sheet, visit=visit, density=density,
                            log2_expected=log2_lambda, effects=effects)


def write_tissue(tissue: TissueSimulation, path: Path) -> None:
    """Wide table: ``sample_id`` + one column per marker (cells/mm^2, 2 decimals)."""
    write_samples_wide(path, tissue.sheet["sample_id"].to_numpy(), tissue.markers["name"], tissue.density)


def tissue_truth(tissue: TissueSimulation, metab: MetabolomeSimulation) -> dict[str, float]:
    """Expected log2 changes of the tissue markers, post vs baseline, by response group.

    Sums the planted effects: the direct time (everyone) and time x response (responders)
    effects, and ``delta x`` the expected log2 change of the driving metabolite in that group
    (its own time effect plus ``gamma x`` the log2 change of its driving taxa).

    Returns
    -------
    dict
        ``"<marker>|responders"`` / ``"<marker>|non_responders"`` -> expected log2 change, and
        ``"<marker>|interaction"`` -> their difference, for every marker with an effect.
    """
    change: dict[tuple[str, str], float] = {}
    taxon_time = dict(TAXA_TIME)
    taxon_txr = dict(TAXA_TIME_X_RESPONSE)
    metabolite_time = dict(METABOLITES_TIME)
    drivers = dict(METABOLITES_DRIVEN)
    for eff in tissue.effects:
        name = eff["feature"]
        for group in ("responders", "non_responders"):
            change.setdefault((name, group), 0.0)
        if eff["effect"] == "time":
            change[(name, "responders")] += eff["log2"]
            change[(name, "non_responders")] += eff["log2"]
        elif eff["effect"] == "time_x_response":
            change[(name, "responders")] += eff["log2"]
        else:
            metabolite = eff["metabolite"]
            base = metabolite_time.get(metabolite, 0.0)
            links = drivers.get(metabolite, ())
            for group, resp in (("responders", True), ("non_responders", False)):
                m_change = base + sum(g * (taxon_time.get(t, 0.0) + (taxon_txr.get(t, 0.0) if resp else 0.0))
                                      for t, g in links)
                change[(name, group)] += eff["log2"] * m_change
    out = {f"{name}|{group}": value for (name, group), value in change.items()}
    for name in {name for name, _ in change}:
        out[f"{name}|interaction"] = change[(name, "responders")] - change[(name, "non_responders")]
    return out


def tissue_expected_log2p1(change: dict[str, float], n_draws: int = 200_000,
                           seed: int = 0) -> dict[str, float]:
    """Expected post - baseline change of ``log2(x + 1)`` per marker, by Monte Carlo.

    Draws tumours and biopsies from the generative model of :func:`simulate_tissue` (subject
    and biopsy effects, counted area, Poisson counts) with the expected log2 change ``change``
    of the marker added at the post biopsy, and averages the change of ``log2(density + 1)``,
    the scale the workflow tests (pseudocount 1 cell/mm^2 compresses low densities). The
    variation of a driving metabolite is left out: it adds correlation, and its effect on
    this mean is negligible at densities far above 1 cell/mm^2. Every key uses the same draws
    of its own generator (common random numbers), so two groups with the same planted change
    get the same value; the Monte Carlo standard error is about 0.003.

    Parameters
    ----------
    change : dict
        ``"<marker>|<group>"`` -> expected change of log2 density (a marker of
        ``TISSUE_MARKERS``; the group is only a label).

    Returns
    -------
    dict
        The same keys -> expected change on the log2(x + 1) scale.
    """
    spec = pd.DataFrame(TISSUE_MARKERS, columns=["name", "median", "subject_sd"]).set_index("name")
    out = {}
    for key in sorted(change):
        rng = np.random.default_rng(seed)  # common random numbers: groups differ by their change only
        name = key.split("|", 1)[0]
        base = math.log2(spec.loc[name, "median"]) + rng.normal(0.0, spec.loc[name, "subject_sd"], n_draws) / LN2
        pre, post = (base + rng.normal(0.0, TISSUE_VISIT_SD, n_draws) / LN2 for _ in range(2))
        post += change[key]
        values = []
        for log2_lambda in (pre, post):
            area = rng.uniform(*TISSUE_AREA_MM2, n_draws)
            values.append(np.log2(rng.poisson(np.exp2(log2_lambda) * area) / area + 1.0))
        out[key] = float(np.mean(values[1] - values[0]))
    return out


def _signed(x: float) -> str:
    return "0" if x == 0 else f"{x:+.2f}"


def tissue_markdown(tissue: TissueSimulation, metab: MetabolomeSimulation) -> str:
    """The tissue section of ``TRUTH.md`` (the tissue truth is not in ``truth.tsv``)."""
    expected = tissue_truth(tissue, metab)
    groups = {k: v for k, v in expected.items() if not k.endswith("|interaction")}
    analysis = tissue_expected_log2p1(groups)
    for name in {k.split("|", 1)[0] for k in groups}:
        analysis[f"{name}|interaction"] = analysis[f"{name}|responders"] - analysis[f"{name}|non_responders"]
    sheet = tissue.sheet
    n_paired = int((sheet.groupby("subject_id")["timepoint"].nunique() == 2).sum())
    n_single = int(sheet["subject_id"].nunique()) - n_paired
    names = [name for name in tissue.markers["name"] if f"{name}|interaction" in expected]
    zero_pct = 100.0 * (tissue.density == 0).mean(axis=0)
    rows = []
    for eff in tissue.effects:
        if eff["effect"].startswith("driven_by:"):
            what = (f"log2 density follows {eff['metabolite']} ({eff['effect'].split(':', 1)[1]}), "
                    "slope in log2 per log2 of the stool metabolite at the same visit")
            direction = "positive" if eff["log2"] > 0 else "negative"
        elif eff["effect"] == "time":
            what, direction = "post vs baseline, every patient", "up" if eff["log2"] > 0 else "down"
        else:
            what = "post vs baseline in responders (DCR by RECIST) only"
            direction = "up" if eff["log2"] > 0 else "down"
        rows.append(f"| `{eff['feature']}` | {eff['effect']} | {direction} | {eff['log2']:.4g} | {what} |")
    lines = [
        "",
        "## Tumour tissue (`tissue_densities.tsv`)",
        "",
        f"Cell densities (cells/mm^2 of tumour area, as IHC or multiplex immunofluorescence report them) "
        f"of {', '.join(tissue.markers['name'])} in tumour biopsies: {n_paired} patients have a baseline and "
        f"a post-treatment biopsy, {n_single} a baseline biopsy only (60 % and 15 % of responders and of "
        "non-responders; sample ids `<subject>_<timepoint>_TU`, sample_type `tissue`, appended after the other "
        "rows of `samples.tsv`). Log densities have a tumour (subject) effect (SD 0.8 on the natural-log scale, "
        "1.6 for PD-L1: many tumours are nearly PD-L1 negative) and a biopsy effect (SD 0.4); "
        "each density is a Poisson count over a counted area of 1-4 mm^2 divided by that area, "
        "so sparse markers have exact zeros (share of zero densities: "
        + ", ".join(f"{name} {z:.0f} %" for name, z in zip(tissue.markers["name"], zero_pct))
        + "). Drawn from their own random stream: the other files do not depend on them. These effects are "
        "not in `truth.tsv`.",
        "",
        "| feature | effect | direction | size | note |",
        "|---|---|---|---|---|",
        *rows,
        "",
        "Expected post - baseline change of log2 density (direct effects plus the driving metabolite's own "
        "expected change; the metabolite's random variation adds correlation, not a mean change):",
        "",
        "| marker | scale | responders | non-responders | time x response |",
        "|---|---|---|---|---|",
        *[f"| `{name}` | {scale} | {_signed(table[name + '|responders'])} | "
          f"{_signed(table[name + '|non_responders'])} | {_signed(table[name + '|interaction'])} |"
          for name in names for scale, table in (("log2 x", expected), ("log2(x + 1)", analysis))],
        "",
        "FOXP3+ and CD68+ densities are null, so the CD8/FOXP3 ratio rises in responders by the CD8+ change. "
        "The workflow tests log2(x + 1) (pseudocount 1 cell/mm^2), which compresses low densities and "
        "Poisson zeros: the `log2(x + 1)` rows are the changes expected on that scale (Monte Carlo, "
        "200,000 draws of the same model, `tissue_expected_log2p1`), the numbers to compare estimates with. "
        "The planted link to butyrate is the integration's check: the within-subject change of CD8+ density "
        "follows the change of stool butyrate (slope 1 log2 per log2).",
        "",
    ]
    return "\n".join(lines)


# =============================================================================================
# Truth
# =============================================================================================


def build_truth(taxa: TaxaSimulation, metab: MetabolomeSimulation, immune: ImmuneSimulation) -> pd.DataFrame:
    """Every planted effect, the effects it implies downstream, and the microbe-metabolite-immune chains.

    Columns: ``modality, feature, effect, direction, log2_effect, note``. ``log2_effect`` is a
    log2 fold change for taxa/metabolite effects, a slope (log2 per log2) for metabolite
    ``driven_by`` rows, and a logit change (per log2 metabolite for ``driven_by``) for immune rows.
    """
    rows = []

    def add(modality, feature, effect, value, note, direction=None):
        if direction is None:
            direction = "up" if value > 0 else "down"
        rows.append(dict(modality=modality, feature=feature, effect=effect, direction=direction,
                         log2_effect="" if value is None else f"{value:.4g}", note=note))

    for s, l2 in TAXA_TIME:
        add("taxa", s, "time", l2, "treated vs baseline, every patient")
    for s, l2 in TAXA_TIME_X_RESPONSE:
        add("taxa", s, "time_x_response", l2, "treated vs baseline in responders (DCR by RECIST) only")
    for s, l2 in TAXA_BASELINE:
        add("taxa", s, "baseline_response", l2, "responders vs non-responders at every visit")
    add("alpha", "shannon", "time_in_responders", None, "Shannon rises in responders' treated samples", "up")
    add("beta", "community", "time", None,
        "community shifts after treatment, carried by the time taxa (PERMANOVA within subject)", "shift")
    add("beta", "within_subject_distance", "time_x_response", None,
        "baseline-to-treated distance larger in responders (their communities are restructured)", "up")

    taxon_effect = {s: ("time", l2) for s, l2 in TAXA_TIME}
    taxon_effect.update({s: ("time_x_response", l2) for s, l2 in TAXA_TIME_X_RESPONSE})
    implied_metab: dict[str, dict[str, float]] = {}
    metab_name = {}
    for eff in metab.effects:
        fid, name = eff["feature"], eff["name"]
        metab_name[fid] = name
        if eff["effect"].startswith("driven_by:"):
            add("metabolite", fid, eff["effect"], eff["gamma"],
                f"{name}: log level follows {eff['taxon']} (slope, log2 per log2)",
                "positive" if eff["gamma"] > 0 else "negative")
            if eff["taxon"] in taxon_effect:  # a driver without its own effect implies none
                kind, l2 = taxon_effect[eff["taxon"]]
                implied_metab.setdefault(fid, {}).setdefault(kind, 0.0)
                implied_metab[fid][kind] += eff["gamma"] * l2
        else:
            what = "treated vs baseline, every patient" if eff["effect"] == "time" else \
                "responders vs non-responders at every visit"
            add("metabolite", fid, eff["effect"], eff["log2"], f"{name}: {what}" if name else what)
    for fid, kinds in implied_metab.items():
        for kind, l2 in kinds.items():
            add("metabolite", fid, kind, l2, f"{metab_name[fid]}: implied by its driving taxa")

    metab_l2 = {fid: kinds for fid, kinds in implied_metab.items()}
    for fid_row in [e for e in metab.effects if e["effect"] == "time"]:
        metab_l2.setdefault(fid_row["feature"], {})["time"] = fid_row["log2"]
    for eff in immune.effects:
        if eff["effect"].startswith("driven_by:"):
            fid = eff["effect"].split(":", 1)[1]
            add("immune", eff["feature"], eff["effect"], eff["delta"],
                f"follows {eff['metabolite']} ({fid}); logit change per log2 metabolite",
                "positive" if eff["delta"] > 0 else "negative")
        else:
            add("immune", eff["feature"], eff["effect"], eff["delta"],
                "responders vs non-responders at every visit; logit difference")
    for eff in immune.effects:
        if eff["effect"].startswith("driven_by:"):
            fid = eff["effect"].split(":", 1)[1]
            for kind, l2 in metab_l2.get(fid, {}).items():
                add("immune", eff["feature"], kind, eff["delta"] * l2,
                    f"implied by {eff['metabolite']} ({fid}); logit change")

    name_to_fid = {e["name"]: e["feature"] for e in metab.effects if e.get("name")}
    for subset, metabolite, delta in IMMUNE_DRIVEN:
        fid = name_to_fid[metabolite]
        for eff in metab.effects:
            if eff["feature"] == fid and eff["effect"].startswith("driven_by:"):
                sign = np.sign(eff["gamma"] * delta)
                add("chain", f"{eff['taxon']} -> {fid} -> {subset}", "chain", None,
                    f"{eff['taxon'][3:].replace('_', ' ')} -> {metabolite} -> {subset}",
                    "positive" if sign > 0 else "negative")
    return pd.DataFrame(rows, columns=["modality", "feature", "effect", "direction", "log2_effect", "note"])


def shannon(percent: np.ndarray) -> np.ndarray:
    """Shannon index per row, ``H = -sum p ln p`` on the closed composition (Shannon 1948)."""
    p = percent / percent.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=1)


def realised_shannon_change(plan: SamplePlan, taxa: TaxaSimulation) -> dict[str, float]:
    """Mean within-subject Shannon change (first treated timepoint minus baseline) by response group."""
    stool = plan.stool
    ok = ~stool["failed"].to_numpy() & ~stool["reseq"].to_numpy()
    v = plan.visits.loc[stool.loc[ok, "visit"]]
    h = pd.DataFrame({"subject": v["subject_idx"].to_numpy(), "tp": v["tp_index"].to_numpy(),
                      "responder": v["responder"].to_numpy(), "h": shannon(taxa.percent[ok])})
    wide = h[h["tp"] <= 1].pivot_table(index=["subject", "responder"], columns="tp", values="h").dropna()
    delta = (wide[1] - wide[0]).groupby(level="responder").mean()
    return {"responders": float(delta.get(True, np.nan)), "non_responders": float(delta.get(False, np.nan))}


def _add_alpha_note(truth: pd.DataFrame, alpha: dict[str, float]) -> pd.DataFrame:
    truth = truth.copy()
    at = (truth["modality"] == "alpha")
    truth.loc[at, "note"] = (f"mean within-subject Shannon change {alpha['responders']:+.3f} in responders, "
                             f"{alpha['non_responders']:+.3f} in non-responders")
    return truth


def truth_markdown(truth: pd.DataFrame, design: StudyDesign, alpha: dict[str, float]) -> str:
    """Short human-readable account of the planted effects (written as ``TRUTH.md``)."""
    def section(modality, effect_prefix):
        sel = truth[(truth["modality"] == modality) & truth["effect"].str.startswith(effect_prefix)]
        return "\n".join(f"| `{r.feature}` | {r.effect} | {r.direction} | {r.log2_effect} | {r.note} |"
                         for r in sel.itertuples())

    head = "| feature | effect | direction | size | note |\n|---|---|---|---|---|\n"
    chains = truth[truth["modality"] == "chain"]
    lines = [
        "# Planted truth of the simulated demo study",
        "",
        f"Generated by `gutaxis.demo.simulate.simulate_study` (seed {design.seed}, {design.n_subjects} patients, "
        f"{design.n_taxa} taxa, {design.n_metabolites} metabolite features, {design.n_immune} immune subsets). "
        "`truth.tsv` lists the same effects in machine-readable form.",
        "",
        "Responder = disease control by RECIST 1.1 (CR, PR or SD); the NE patient is not a responder. "
        "Treated = every timepoint after baseline (post and progression). Sizes: log2 fold change for taxa "
        "and metabolites, slope in log2 per log2 for `driven_by` metabolites, logit change for immune subsets "
        "(per log2 of the metabolite for `driven_by`). Every other feature is null.",
        "",
        "## Taxa (species rank, MetaPhlAn names)",
        "",
        "Log-normal abundances with a subject random effect (SD 1.2 on the natural-log scale) and visit noise "
        "(SD 0.75); effects act on the latent log abundance before closure, so relative abundances also carry "
        "the compositional echo of the planted taxa. Planted taxa and the taxa that drive metabolites are core "
        "taxa: carried by every patient and detected in 99.5 % of samples.",
        "",
        head + section("taxa", ""),
        "",
        "## Diversity",
        "",
        f"* Shannon rises in responders after treatment: in their treated samples the subject and visit "
        f"deviations of the log abundances shrink by the factor {ALPHA_COMPRESSION} (zero-mean per taxon, so "
        f"no taxon shifts on average), carried taxa are detected at {100 * ALPHA_DETECTION:.0f} % instead of "
        f"90 % and {100 * ALPHA_GAIN:.0f} % instead of 2 % of the other taxa appear. Planted and "
        f"metabolite-driving taxa are left out. Realised mean within-subject change: {alpha['responders']:+.3f} in responders, "
        f"{alpha['non_responders']:+.3f} in non-responders.",
        "* The same restructuring makes the within-subject baseline-to-treated distance larger in responders "
        "than in non-responders.",
        "* Side effect, by construction of any evenness change in compositional data: in responders' treated "
        "samples the non-planted taxa carry a little less total mass, so on the total-sum scale the planted "
        "and driving taxa gain up to ~0.5 log2 of relative share there; log-ratio (CLR) comparisons are "
        "unaffected in expectation.",
        "* β diversity shifts after treatment in every patient (the ten `time` taxa); test with a PERMANOVA "
        "that permutes within subject.",
        "",
        "## Metabolites",
        "",
        "Direct effects and taxon-driven features (the metabolite's latent log level adds gamma x the taxon's "
        "latent log-abundance deviation, so within-subject changes follow the taxon). Implied rows give the "
        "resulting time or time x response effect.",
        "",
        head + section("metabolite", ""),
        "",
        "## Immune subsets",
        "",
        head + section("immune", ""),
        "",
        "## Microbe -> metabolite -> immune chains",
        "",
        "\n".join(f"* {r.note} ({r.direction}): `{r.feature}`" for r in chains.itertuples()),
        "",
        "A driving taxon without an effect of its own (no `taxa` row) still links to its metabolite: the "
        "metabolite follows the taxon's natural visit-to-visit variation.",
        "",
        "## Baseline responder signature",
        "",
        "Five taxa, three metabolites and two immune subsets (`baseline_response` rows) differ between "
        "responders and non-responders at every visit, enough for a cross-validated penalised logistic model "
        "on baseline samples to separate them.",
        "",
        "## Not effects: measurement artefacts to be handled by QC",
        "",
        "* two or more metabolomics batches with a multiplicative shift; per-sample dilution (PQN);",
        "* features below the detection limit are empty (missing not at random); ~3 % of features are mostly "
        "missing, ~4 % have poor QC repeatability (RSD ~40 %), ~2 % are blank contaminants;",
        ("* gaps: one patient per 48 without a stool sample at the second timepoint, one failed stool "
         "metagenome (all UNCLASSIFIED) and one re-sequenced stool sample (`_reseq`, metagenomics only) per 48."
         if design.realistic_gaps else "* no gaps were added (realistic_gaps=False)."),
        "",
    ]
    return "\n".join(lines)


# =============================================================================================
# Writing
# =============================================================================================


def _write_table(df: pd.DataFrame, path: Path) -> None:
    df.to_csv(path, sep="\t", index=False, lineterminator="\n", na_rep="")


def format_fixed(values: np.ndarray, decimals: int) -> list[bytes]:
    """Format a non-negative matrix row by row as tab-prefixed text cells, fully vectorised.

    Each value is rounded to ``decimals`` places and written as Python's ``repr`` writes such a
    float (no trailing zeros, at least one decimal: ``0.5``, ``12.0``, ``0.00012``); with
    ``decimals=0`` as an integer. NaN gives an empty cell. Digits are computed with integer
    arithmetic on whole blocks of cells and the kept characters gathered with a boolean mask,
    which is an order of magnitude faster than formatting cell by cell.

    Returns
    -------
    list of bytes
        One item per row: ``b"\\tcell\\tcell..."`` (each cell preceded by a tab).
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise ValueError("values must be a 2-D matrix")
    if (values < 0).any():
        raise ValueError("format_fixed writes non-negative values only")
    n_rows, n_cols = values.shape
    scale = 10 ** decimals
    rows: list[bytes] = []
    chunk = max(1, 1_000_000 // max(n_cols, 1))
    for start in range(0, n_rows, chunk):
        v = values[start:start + chunk]
        missing = np.isnan(v)
        k = np.rint(np.where(missing, 0.0, v) * scale).astype(np.int64)
        whole, frac = np.divmod(k, scale)
        n_int = len(str(int(whole.max()))) if whole.size else 1
        width = 1 + n_int + (1 + decimals if decimals else 0)
        chars = np.empty(v.shape + (width,), dtype=np.uint8)
        keep = np.empty(v.shape + (width,), dtype=bool)
        chars[..., 0] = ord("\t")
        keep[..., 0] = True
        rest = whole.copy()
        for j in range(n_int, 0, -1):  # least significant integer digit first
            chars[..., j] = rest % 10 + ord("0")
            keep[..., j] = whole >= 10 ** (n_int - j)
            rest //= 10
        keep[..., n_int] = True
        if decimals:
            chars[..., n_int + 1] = ord(".")
            keep[..., n_int + 1] = True
            rest = frac.copy()
            significant = np.zeros(v.shape, dtype=bool)  # a non-zero digit at or right of here
            for j in range(width - 1, n_int + 1, -1):
                digit = rest % 10
                chars[..., j] = digit + ord("0")
                significant |= digit != 0
                keep[..., j] = significant
                rest //= 10
            keep[..., n_int + 2] = True
        keep[missing, 1:] = False
        flat = chars[keep].tobytes()
        ends = np.cumsum(keep.sum(axis=(1, 2)))
        starts = np.concatenate([[0], ends[:-1]])
        rows.extend(flat[s:e] for s, e in zip(starts, ends))
    return rows
