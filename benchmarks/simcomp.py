"""Simulators and scoring of the compositional simulation study (issue 16).

Library-free on purpose (numpy and pandas only): the truth is planted here, in
ABSOLUTE abundance, and the differential engine of ``workflow/scripts/gutaxis``
sees only the relative abundances that come out of :func:`sequence`. Nothing
here imports the engine, so the simulator cannot share a mistake with it.

Model of one paired trial (``n_subjects`` patients, samples ``baseline`` and
``post``)::

    log A[i,t,j] = mu[j] + g[c(i),j] + b[i,j] + L[i,t] + e[i,t,j] + delta[i,t,j]

* ``mu[j] ~ N(0, sd_mu)``: log-normal mean abundances (heavy-tailed on the
  original scale: with sd_mu = 2.5 the taxa span ~4 decades);
* ``g[c,j] ~ N(0, sd_cohort)``: cohort effect on the baseline level;
* ``b[i,j] ~ N(0, sd_subject)``: subject random effect, the same at both
  timepoints (what pairing removes);
* ``L[i,t] ~ N(0, sd_load)``: total microbial load of a sample (cancels in the
  composition; it is why relative and absolute change differ even without
  effects);
* ``e[i,t,j] ~ N(0, sd_noise)``: within-subject noise;
* ``delta``: the planted effects at ``post`` (0 at baseline);
* carriage: subject i carries taxon j with probability ``p[j] ~ U(carriage)``;
  a taxon not carried is absent (A = 0) at both timepoints.

Sequencing: relative abundances ``A / sum(A)`` are sampled by a multinomial of
depth ``D[i,t] ~ round(LogNormal(log depth, sd_depth))`` and returned as
count / depth, so rare taxa fall below detection (about half the entries are 0
with the defaults).

References: the zero-inflated log-normal design follows the simulation
studies of LinDA (Zhou et al. 2022, Genome Biol 23:95) and ANCOM-BC (Lin &
Peddada 2020, Nat Commun 11:3514): absolute abundances, a multinomial
sequencing step, most taxa unchanged.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

PRE, POST = "baseline", "post"
RESPONDER, NON_RESPONDER = "responder", "non_responder"
#: effect classes of a taxon (column ``effect_class`` of the truth)
CLASSES = ("none", "up3_all", "down3_all", "responder_only", "dropout")
#: classes pooled for the "3-fold in everyone" power column
POWER_CLASSES = {"3fold_all": ("up3_all", "down3_all"), "responder_only": ("responder_only",),
                 "dropout": ("dropout",)}
PRESENCE_DIRECTIONS = ("lost", "gained", "more_lost", "more_gained", "less_prevalent",
                       "more_prevalent")
PRESENCE_HINTS = ("mcnemar", "fisher", "presence", "prevalence", "logistic", "detect")


@dataclass(frozen=True)
class Scenario:
    """Exact parameters of one simulated scenario (defaults: scenario (a))."""

    name: str
    n_subjects: int = 60
    n_taxa: int = 250
    sd_mu: float = 2.5
    sd_cohort: float = 0.5
    sd_subject: float = 1.0
    sd_load: float = 0.5
    sd_noise: float = 0.5
    carriage: tuple = (0.5, 1.0)
    depth: float = 10000.0
    sd_depth: float = 0.5
    fold: float = 3.0
    frac_up: float = 0.05
    frac_down: float = 0.03
    frac_responder: float = 0.03
    frac_dropout: float = 0.0
    n_ordinary_up: int = 0
    n_ordinary_down: int = 0
    dropout_factor: float = 0.01
    dropout_share: float = 0.9
    #: effect taxa are drawn among the ``eligible_top`` most abundant taxa (by mu)
    eligible_top: int = 150
    #: dropout taxa among the ``dropout_top`` most abundant (detected at baseline)
    dropout_top: int = 100
    notes: str = field(default="", compare=False)


SCENARIOS = {
    "a": Scenario("a_blooms", notes="5% up 3-fold and 3% down 3-fold in everyone, "
                  "3% responder-only 3-fold (half up, half down)"),
    "b": Scenario("b_dropout", frac_up=0.0, frac_down=0.0, frac_responder=0.0, frac_dropout=0.05,
                  n_ordinary_up=4, n_ordinary_down=4,
                  notes="5% of taxa x 0.01 at post in 90% of subjects, 4 up and 4 down 3-fold"),
    "c": Scenario("c_null", frac_up=0.0, frac_down=0.0, frac_responder=0.0,
                  notes="no change at all"),
}


@dataclass(frozen=True)
class SimulatedTrial:
    """What the engine sees (relative abundances and sheets) and the truth."""

    relative: pd.DataFrame   # samples x taxa, rows sum to 1
    absolute: pd.DataFrame   # samples x taxa (truth; never given to the engine)
    samples: pd.DataFrame    # sample_id, subject_id, timepoint
    responders: pd.DataFrame  # subject_id, response, cohort
    truth: pd.DataFrame      # per taxon: effect_class, sign (+1/-1/0)


def _n(frac: float, n: int) -> int:
    return int(np.floor(frac * n + 0.5))


def plant_effects(scenario: Scenario, mu: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Choose the changed taxa and their class and sign.

    Effect taxa are drawn without replacement among the ``eligible_top`` most
    abundant taxa (so that most pass the prevalence filter); dropout taxa among
    the ``dropout_top`` most abundant (so that they are detected at baseline
    and their loss is visible).
    """
    n = mu.size
    order = np.argsort(-mu, kind="stable")
    effect_class = np.array(["none"] * n, dtype=object)
    sign = np.zeros(n, dtype=int)
    n_drop = _n(scenario.frac_dropout, n)
    if n_drop:
        chosen = rng.choice(order[:scenario.dropout_top], n_drop, replace=False)
        effect_class[chosen], sign[chosen] = "dropout", -1
    free = np.array([j for j in order[:scenario.eligible_top] if effect_class[j] == "none"])
    n_up = _n(scenario.frac_up, n) + scenario.n_ordinary_up
    n_down = _n(scenario.frac_down, n) + scenario.n_ordinary_down
    n_resp = _n(scenario.frac_responder, n)
    chosen = rng.choice(free, n_up + n_down + n_resp, replace=False)
    up, down, resp = chosen[:n_up], chosen[n_up:n_up + n_down], chosen[n_up + n_down:]
    effect_class[up], sign[up] = "up3_all", 1
    effect_class[down], sign[down] = "down3_all", -1
    effect_class[resp] = "responder_only"
    sign[resp] = np.where(np.arange(resp.size) % 2 == 0, 1, -1)
    return pd.DataFrame({"effect_class": effect_class, "sign": sign})


def simulate_absolute(scenario: Scenario, rng: np.random.Generator):
    """Absolute abundances (2 x n_subjects samples x taxa), sheets and truth."""
    n_sub, n_tax = scenario.n_subjects, scenario.n_taxa
    taxa = [f"taxon_{j:03d}" for j in range(n_tax)]
    subjects = [f"P{i:03d}" for i in range(n_sub)]
    response = np.where(np.arange(n_sub) < n_sub // 2, RESPONDER, NON_RESPONDER)
    # cohorts balanced within each response group
    cohort_idx = np.arange(n_sub) % 2
    cohort = np.where(cohort_idx == 0, "cohort_1", "cohort_2")

    mu = rng.normal(0.0, scenario.sd_mu, n_tax)
    truth = plant_effects(scenario, mu, rng)
    g = rng.normal(0.0, scenario.sd_cohort, (2, n_tax))
    b = rng.normal(0.0, scenario.sd_subject, (n_sub, n_tax))
    carriage_p = rng.uniform(*scenario.carriage, n_tax)
    carried = rng.random((n_sub, n_tax)) < carriage_p
    log_fold = np.log(scenario.fold)

    delta = np.zeros((n_sub, n_tax))
    cls, sgn = truth["effect_class"].to_numpy(), truth["sign"].to_numpy()
    everyone = np.isin(cls, ("up3_all", "down3_all"))
    delta[:, everyone] = sgn[everyone] * log_fold
    resp_taxa = cls == "responder_only"
    delta[np.ix_(response == RESPONDER, resp_taxa)] = sgn[resp_taxa] * log_fold
    drop_taxa = np.flatnonzero(cls == "dropout")
    if drop_taxa.size:
        hit = rng.random((n_sub, drop_taxa.size)) < scenario.dropout_share
        delta[:, drop_taxa] = np.where(hit, np.log(scenario.dropout_factor), 0.0)

    blocks = []
    for t, effect in ((PRE, 0.0), (POST, 1.0)):
        load = rng.normal(0.0, scenario.sd_load, (n_sub, 1))
        noise = rng.normal(0.0, scenario.sd_noise, (n_sub, n_tax))
        log_a = mu + g[cohort_idx] + b + load + noise + effect * delta
        blocks.append(np.where(carried, np.exp(log_a), 0.0))
    absolute = np.vstack(blocks)
    sample_ids = [f"{s}_{t}" for t in (PRE, POST) for s in subjects]
    samples = pd.DataFrame({"sample_id": sample_ids, "subject_id": subjects * 2,
                            "timepoint": [PRE] * n_sub + [POST] * n_sub})
    responders = pd.DataFrame({"subject_id": subjects, "response": response, "cohort": cohort})
    truth.index = pd.Index(taxa, name="feature")
    truth["mu"] = mu
    return pd.DataFrame(absolute, index=sample_ids, columns=taxa), samples, responders, truth


def sequence(absolute: pd.DataFrame, depth: float, sd_depth: float,
             rng: np.random.Generator) -> pd.DataFrame:
    r"""Relative abundances after multinomial sequencing.

    .. math:: D_s = \mathrm{round}(e^{\log d + \sigma z_s}),\quad
              c_s \sim \mathrm{Multinomial}(D_s, A_s / \textstyle\sum_f A_{sf}),\quad
              r_s = c_s / D_s

    Reference: the sequencing step of Lin & Peddada (2020), Nat Commun 11:3514.
    """
    a = absolute.to_numpy(dtype=float)
    p = a / a.sum(axis=1, keepdims=True)
    d = np.maximum(1000, np.round(np.exp(np.log(depth) + sd_depth * rng.standard_normal(len(a)))))
    counts = rng.multinomial(d.astype(np.int64), p)
    return pd.DataFrame(counts / counts.sum(axis=1, keepdims=True), index=absolute.index,
                        columns=absolute.columns)


def simulate(scenario: Scenario, seed: int) -> SimulatedTrial:
    """One trial of ``scenario``; the same ``(scenario, seed)`` gives the same trial."""
    rng = np.random.default_rng([seed, sum(map(ord, scenario.name))])
    absolute, samples, responders, truth = simulate_absolute(scenario, rng)
    relative = sequence(absolute, scenario.depth, scenario.sd_depth, rng)
    return SimulatedTrial(relative, absolute, samples, responders, truth)


def swap_half(samples: pd.DataFrame, pre: str, post: str, rng: np.random.Generator):
    """Swap the ``pre``/``post`` labels in a random half of the subjects with both.

    A null by construction: the expected paired change of every feature is 0.
    Returns the relabelled sheet and the swapped subjects.
    """
    both = samples[samples["timepoint"].isin([pre, post])]
    counts = both.groupby("subject_id")["timepoint"].nunique()
    paired = np.sort(counts.index[counts == 2].astype(str))
    swapped = set(rng.choice(paired, paired.size // 2, replace=False))
    out = samples.copy()
    hit = out["subject_id"].astype(str).isin(swapped) & out["timepoint"].isin([pre, post])
    out.loc[hit, "timepoint"] = out.loc[hit, "timepoint"].map({pre: post, post: pre})
    return out, sorted(swapped)


# --------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------

def term_kind(term: str) -> str:
    """``time`` (the post term), ``interaction`` (time x response) or ``other``."""
    if term.startswith("timepoint[") and ":" not in term:
        return "time"
    if term.startswith("timepoint[") and "response[" in term:
        return "interaction"
    return "other"


def is_presence(method: str, directions) -> bool:
    """A presence/absence family: method named so, or any lost/gained call."""
    return (any(h in method.lower() for h in PRESENCE_HINTS)
            or bool(np.isin(np.asarray(directions, dtype=object), PRESENCE_DIRECTIONS).any()))


def truth_sign(truth: pd.DataFrame, kind: str, presence: bool) -> pd.Series:
    """Expected sign of a true call per taxon for one family (0 = no change).

    time: every changed taxon (changed in any subject group), for abundance and
    presence alike (detection follows the absolute abundance: a 3-fold bloom is
    detected more often, a dropout less); interaction: the responder-only taxa
    (abundance; no presence changes differently in responders by design, so
    none for presence); other terms (e.g. the LMM baseline response term): none,
    nothing differs at baseline. The dropout power column still counts the
    dropouts only.
    """
    cls, sign = truth["effect_class"], truth["sign"]
    if presence and kind != "time":
        keep = pd.Series(False, index=truth.index)
    elif kind == "time":
        keep = cls != "none"
    elif kind == "interaction":
        keep = cls == "responder_only"
    else:
        keep = pd.Series(False, index=truth.index)
    return sign.where(keep, 0)


def call_sign(direction: pd.Series) -> np.ndarray:
    """+1 for up / gained / more_gained / more_prevalent, -1 for down / lost / more_lost /
    less_prevalent, 0 for none or a direction not understood (scored as a false call)."""
    text = direction.fillna("none").astype(str)
    plus = text.str.endswith(("up", "gained")) | (text == "more_prevalent")
    minus = text.str.endswith(("down", "lost")) | (text == "less_prevalent")
    return np.where(plus, 1, np.where(minus, -1, 0))


def score_family(rows: pd.DataFrame, truth: pd.DataFrame, kept: pd.Index, kind: str) -> dict:
    """Calls, false calls, FDR and power of one method x term in one run.

    A call is a row whose ``direction`` is not ``none``. It is true when the
    taxon truly changed for this term AND in the called direction; every other
    call is false. FDR = false / calls (0 without calls); ``fdr_any_change`` counts a
    presence call as right when the absolute abundance changed in its direction
    (any class; the same as ``fdr`` for abundance rows). Power of a class =
    taxa of the class that passed the prevalence filter (``kept``) and were
    called in the right direction / taxa of the class that passed the filter.
    """
    presence = is_presence(str(rows["method"].iloc[0]), rows["direction"])
    expected = truth_sign(truth, kind, presence)
    called = rows[rows["direction"].fillna("none") != "none"]
    sign = call_sign(called["direction"])
    exp = expected.reindex(called["feature"]).fillna(0).to_numpy(int)
    correct = (exp != 0) & (exp == sign)
    n_calls = int(len(called))
    # presence calls judged leniently too: right when the taxon's absolute abundance
    # changed in the called direction, whatever its class (a 3-fold bloom raises detection)
    any_change = truth_sign(truth, kind, False).reindex(called["feature"]).fillna(0).to_numpy(int)
    false_any = int(n_calls - ((any_change != 0) & (any_change == sign)).sum())
    out = {"presence": presence, "n_tested": int(rows["feature"].nunique()),
           "n_true_kept": int((expected.reindex(kept) != 0).sum()),
           "calls": n_calls, "false_calls": int(n_calls - correct.sum()),
           "fdr": float((n_calls - correct.sum()) / n_calls) if n_calls else 0.0,
           "calls_le1": n_calls <= 1, "false_calls_any_change": false_any,
           "fdr_any_change": float(false_any / n_calls) if n_calls else 0.0}
    right = set(called["feature"][correct])
    cls = truth["effect_class"].reindex(kept)
    for name, members in POWER_CLASSES.items():
        pool = cls.index[cls.isin(members) & (expected.reindex(kept) != 0)]
        out[f"n_{name}"] = int(len(pool))
        out[f"power_{name}"] = (float(np.mean([f in right for f in pool])) if len(pool)
                                else float("nan"))
    return out


def relative_shift(transformed: pd.DataFrame, samples: pd.DataFrame, taxa) -> tuple[float, float]:
    """Mean over ``taxa`` of the mean paired change (post - baseline, NaN-skipping)
    of a transformed table, and the fraction of those taxa whose mean change is < 0."""
    sheet = samples.set_index("sample_id")
    pre = sheet.index[sheet["timepoint"] == PRE]
    post = sheet.index[sheet["timepoint"] == POST]
    subj_pre = sheet.loc[pre, "subject_id"].to_numpy()
    post_by_subject = pd.Series(post, index=sheet.loc[post, "subject_id"].to_numpy())
    post = post_by_subject.reindex(subj_pre).to_numpy()
    cols = [t for t in taxa if t in transformed.columns]
    d = transformed.loc[post, cols].to_numpy(float) - transformed.loc[pre, cols].to_numpy(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a taxon with no complete pair
        m = np.nanmean(d, axis=0)
    m = m[np.isfinite(m)]
    return float(m.mean()), float((m < 0).mean())
