"""β diversity: distance matrices, PCoA and the within-subject pre→post shift.

References
----------
Bray, J. R. & Curtis, J. T. (1957). An ordination of the upland forest communities of
southern Wisconsin. Ecol. Monogr. 27, 325-349.
Jaccard, P. (1912). The distribution of the flora in the alpine zone. New Phytol. 11.
Aitchison, J. (1986). The Statistical Analysis of Compositional Data. Chapman & Hall.
Martino, C. et al. (2019). A novel sparse compositional technique reveals microbial
perturbations (DEICODE). mSystems 4, e00016-19.
Gower, J. C. (1966). Biometrika 53, 325-338 (principal coordinates).
Legendre, P. & Legendre, L. (2012). Numerical Ecology, 3rd ed., section 9.3.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from skbio import DistanceMatrix
from skbio.diversity import beta_diversity
from skbio.stats.composition import clr, rclr
from skbio.stats.ordination import pcoa as skbio_pcoa

from gutaxis.diversity.alpha import NON_RESPONDER, RESPONDER, mann_whitney, wilcoxon_signed_rank
from gutaxis.io.errors import InputError, Problem, ProblemCollector
from gutaxis.diversity.design import abundance_values, metric_roles, sample_metadata
from gutaxis.diversity.permanova import distance_array

BETA_METRICS = ("braycurtis", "jaccard", "aitchison", "robust_aitchison")
SHIFT_COLUMNS = ["subject_id", "pre_sample", "post_sample", "distance"]
RESPONSE_SHIFT_COLUMNS = [
    "comparison", "n_responder", "n_non_responder", "n_not_evaluable", "median_responder",
    "median_non_responder", "hl_shift", "u_statistic", "p_value", "method",
]
BETWEEN_COLUMNS = ["subject_id", "within_distance", "median_between_distance", "difference"]
BETWEEN_TEST_COLUMNS = [
    "comparison", "n_subjects", "median_within", "median_between", "hl_estimate", "ci_low", "ci_high",
    "conf_level", "v_statistic", "p_value", "method",
]


@dataclass(frozen=True)
class DistanceResult:
    """A distance matrix and how it was made.

    Attributes
    ----------
    matrix : DataFrame
        Sample x sample, index and columns ``sample_id`` in the table's order.
    metric : str
    parameters : dict
        Everything needed to reproduce it (e.g. the pseudocount actually used).
    """

    matrix: pd.DataFrame
    metric: str
    parameters: dict = field(default_factory=dict)

    def describe(self) -> pd.DataFrame:
        """The parameters as a tidy table ``metric, parameter, value``."""
        rows = [[self.metric, key, str(value)] for key, value in self.parameters.items()]
        return pd.DataFrame(rows, columns=["metric", "parameter", "value"])


def _abundances(table: pd.DataFrame, source: str) -> np.ndarray:
    problems = ProblemCollector()
    x = abundance_values(table, source, problems)
    if not problems.problems:  # every cell finite and >= 0
        empty = x.sum(axis=1) <= 0
        if empty.any():
            problems.add(source, "samples " + ", ".join(map(str, table.index[empty][:8])),
                         f"{int(empty.sum())} samples have no abundance",
                         "drop empty samples first (the filter step lists them)")
    if table.index.duplicated().any():
        problems.add(source, "sample ids", "sample ids are duplicated", "keep one row per sample")
    if table.shape[0] < 2:
        problems.add(source, "whole table", "fewer than two samples", "β diversity needs two or more samples")
    problems.raise_if_any()
    return x


def _squared_to_distance(squared: np.ndarray) -> np.ndarray:
    squared = 0.5 * (squared + squared.T)
    np.fill_diagonal(squared, 0.0)
    return np.sqrt(np.clip(squared, 0.0, None))


def resolve_pseudocount(x: np.ndarray, pseudocount) -> tuple[float, str]:
    """The pseudocount value and the rule that gave it.

    ``"half_minimum"`` is half the smallest non-zero value of the table (on the
    scale of the input); a number is used as given.
    """
    if isinstance(pseudocount, str):
        if pseudocount != "half_minimum":
            raise InputError(Problem("config", "key 'pseudocount'", f"unknown rule {pseudocount!r}",
                                     "use a positive number or 'half_minimum'"))
        positive = x[x > 0]
        return float(positive.min() / 2.0), "half the smallest non-zero value of the table"
    value = float(pseudocount)
    if not value > 0:
        raise InputError(Problem("config", "key 'pseudocount'", f"value {pseudocount!r} is not positive",
                                 "use a positive number or 'half_minimum'"))
    return value, "given"


def beta_distances(
    table: pd.DataFrame,
    metric: str,
    pseudocount: float | str = "half_minimum",
    source: str = "feature table",
    allow_undefined: bool = False,
) -> DistanceResult:
    """Distance matrix between samples.

    - ``braycurtis``: on relative abundances (rows closed to 1),
      :math:`d = \\sum_k |p_{ik} - p_{jk}| / \\sum_k (p_{ik} + p_{jk})` (scikit-bio).
    - ``jaccard``: on presence/absence (value > 0), :math:`1 - |A\\cap B|/|A\\cup B|`
      (one matrix product; equal to scikit-bio's ``jaccard``).
    - ``aitchison``: Euclidean distance between CLR vectors,
      :math:`\\mathrm{clr}(x)_k = \\ln(x_k + c) - \\overline{\\ln(x + c)}`, with the
      pseudocount c written in ``parameters`` (default: half the smallest non-zero
      value of the table).
    - ``robust_aitchison``: robust CLR (scikit-bio ``rclr``: logs of the non-zero
      entries centred on their own mean; zeros stay missing, nothing is imputed),
      then the Euclidean distance over the features observed (non-zero) in *both*
      samples, :math:`d_{ij}^2 = \\sum_{k: x_{ik}>0, x_{jk}>0} (r_{ik} - r_{jk})^2`.
      These are the entries DEICODE/Gemelli's matrix completion is fitted to; we do
      not run that low-rank completion (OptSpace), so the matrix need not be
      Euclidean-embeddable (PCoA may show negative eigenvalues). Two samples that
      share no feature are an input error, or NaN with ``allow_undefined``
      (see :func:`undefined_pairs`).

    Parameters
    ----------
    table : DataFrame
        Samples x features (index ``sample_id``), relative abundances or counts.
    metric : {"braycurtis", "jaccard", "aitchison", "robust_aitchison"}
    pseudocount : float or "half_minimum"
        For ``aitchison`` only.
    source : str
        Name of the table in error messages.
    allow_undefined : bool
        Write NaN for the pairs where the metric is undefined instead of stopping
        (robust Aitchison of samples that share no feature).

    Returns
    -------
    DistanceResult
    """
    if metric not in BETA_METRICS:
        raise InputError(Problem("config", "key 'beta_metrics'", f"unknown metric {metric!r}",
                                 f"use one of {', '.join(BETA_METRICS)}"))
    x = _abundances(table, source)
    ids = [str(i) for i in table.index]
    params: dict = {}
    if metric == "braycurtis":
        closed = x / x.sum(axis=1, keepdims=True)
        d = beta_diversity("braycurtis", closed, ids=ids, validate=False).data
        params["input"] = "relative abundances (rows closed to 1)"
    elif metric == "jaccard":
        # |A n B| for all pairs at once; exact in float64 for any realistic feature count
        present = (x > 0).astype(float)
        shared = present @ present.T
        sizes = present.sum(axis=1)
        d = 1.0 - shared / (sizes[:, None] + sizes[None, :] - shared)
        np.fill_diagonal(d, 0.0)
        params["input"] = "presence/absence (value > 0)"
    elif metric == "aitchison":
        value, rule = resolve_pseudocount(x, pseudocount)
        z = clr(x + value)
        norms = np.einsum("ij,ij->i", z, z)
        d = _squared_to_distance(norms[:, None] + norms[None, :] - 2.0 * z @ z.T)
        params.update(transform="clr", pseudocount=value, pseudocount_rule=rule)
    else:
        r = rclr(x)
        observed = ~np.isnan(r)
        r0 = np.where(observed, r, 0.0)
        m = observed.astype(float)
        shared = m @ m.T
        lonely = np.argwhere(np.triu(shared == 0, k=1))
        if len(lonely) and not allow_undefined:
            raise InputError(Problem(source, ", ".join(f"({ids[i]}, {ids[j]})" for i, j in lonely[:5]),
                                     f"{len(lonely)} sample pairs share no feature: robust Aitchison "
                                     "distance is undefined",
                                     "drop near-empty samples or relax the feature filter"))
        part = (r0 * r0) @ m.T
        d = _squared_to_distance(part + part.T - 2.0 * r0 @ r0.T)
        params.update(transform="rclr (scikit-bio), zeros left missing",
                      distance="Euclidean over features non-zero in both samples",
                      min_shared_features=int(shared.min()))
        if len(lonely):
            d[shared == 0] = np.nan
            params["undefined_pairs"] = len(lonely)
    matrix = pd.DataFrame(np.asarray(d, dtype=float), index=pd.Index(ids, name="sample_id"),
                          columns=pd.Index(ids, name="sample_id"))
    return DistanceResult(matrix, metric, params)


#: columns of ``results/diversity/<modality>/beta_metrics.tsv``
METRIC_CHECK_COLUMNS = [
    "metric", "configured_role", "role", "n_samples", "n_pairs", "n_pairs_undefined", "example_pairs", "note",
]
#: what to do when a configured metric is undefined for some sample pairs
UNDEFINED_PAIR_CHOICES = ("fallback", "stop")


def undefined_pairs(table: pd.DataFrame, metric: str) -> tuple[int, list[tuple[str, str]]]:
    """Number of sample pairs for which `metric` is undefined, and the first few of them.

    - ``robust_aitchison``: the distance is taken over the features non-zero in
      *both* samples; two samples that share no non-zero feature have none, so
      :math:`d_{ij}` is undefined when :math:`\\sum_k [x_{ik}>0][x_{jk}>0] = 0`
      (counted for all pairs at once from :math:`M M'`, M the presence matrix).
    - ``braycurtis`` and ``jaccard``: undefined only when both samples are empty
      (0/0); ``aitchison`` (with a pseudocount) is defined for every pair.

    Parameters
    ----------
    table : DataFrame
        Samples x features (non-negative).
    metric : str
        One of :data:`BETA_METRICS`.

    Returns
    -------
    count : int
        Undefined pairs i < j.
    examples : list of (str, str)
        Up to five of them, in table order.
    """
    x = table.to_numpy(dtype=float)
    ids = [str(i) for i in table.index]
    present = x > 0
    if metric == "robust_aitchison":
        m = present.astype(float)
        undefined = (m @ m.T) == 0
    elif metric in ("braycurtis", "jaccard"):
        empty = ~present.any(axis=1)
        undefined = empty[:, None] & empty[None, :]
    else:
        undefined = np.zeros((len(ids), len(ids)), dtype=bool)
    pairs = np.argwhere(np.triu(undefined, k=1))
    return int(len(pairs)), [(ids[i], ids[j]) for i, j in pairs[:5]]


def check_metric_availability(
    table: pd.DataFrame,
    metrics: list[str],
    primary: str,
    on_undefined: str = "fallback",
    source: str = "feature table",
) -> tuple[pd.DataFrame, str]:
    """Which configured β metrics are defined for every sample pair, and which one is primary.

    Every metric of `metrics` is checked with :func:`undefined_pairs`. When one is
    undefined for some pairs, one message gives the count and names the metrics
    defined for all pairs; then, with ``on_undefined = "fallback"``, the undefined
    metrics are not computed and, if the primary metric is one of them, the first
    fully defined metric of `metrics` (configured order) becomes the primary one;
    with ``"stop"`` an :class:`InputError` carries the message.

    Parameters
    ----------
    table : DataFrame
        The filtered samples x features table.
    metrics : list of str
        ``diversity.beta_metrics`` (in order).
    primary : str
        ``diversity.primary_metric``.
    on_undefined : {"fallback", "stop"}
    source : str
        Name of the table in messages.

    Returns
    -------
    table : DataFrame
        :data:`METRIC_CHECK_COLUMNS`, one row per metric; ``role`` is ``primary``,
        ``sensitivity`` or ``not computed``.
    message : str
        The one message (empty when every metric is defined for every pair).
    """
    if on_undefined not in UNDEFINED_PAIR_CHOICES:
        raise InputError(Problem("config", "key 'diversity.undefined_pairs'", f"unknown choice {on_undefined!r}",
                                 f"use one of {', '.join(UNDEFINED_PAIR_CHOICES)}"))
    n = table.shape[0]
    n_pairs = n * (n - 1) // 2
    counts = {metric: undefined_pairs(table, metric) for metric in metrics}
    defined = [m for m in metrics if counts[m][0] == 0]
    undefined = [m for m in metrics if counts[m][0] > 0]
    used = primary
    message = ""
    if undefined:
        what = "; ".join(f"{m} is undefined for {counts[m][0]:,} of {n_pairs:,} sample pairs "
                         f"(e.g. {counts[m][1][0][0]} and {counts[m][1][0][1]})" for m in undefined)
        why = ("samples that share no non-zero feature" if "robust_aitchison" in undefined
               else "pairs of empty samples")
        works = ", ".join(defined) if defined else "none of diversity.beta_metrics"
        if on_undefined == "stop" or not defined:
            fix = (f"use a metric defined for every pair as diversity.primary_metric ({works}), or set "
                   "diversity.undefined_pairs: fallback" if defined else
                   "add aitchison (defined for every pair) to diversity.beta_metrics")
            raise InputError(Problem(source, "sample pairs", f"{what} ({why}); metrics defined for every "
                                     f"pair: {works}", fix))
        if primary in undefined:
            used = defined[0]
        message = (f"{source}: {what} ({why}); metrics defined for every pair: {works}. "
                   f"diversity.undefined_pairs is fallback: {', '.join(undefined)} not computed"
                   + (f", {used} is the primary metric instead of {primary}" if used != primary else "")
                   + ". Fix (to keep the configured metric): relax the feature filter or drop near-empty "
                   "samples")
    rows = []
    for metric in metrics:
        count, examples = counts[metric]
        role = "not computed" if count else ("primary" if metric == used else "sensitivity")
        note = ""
        if count:
            note = "undefined for some sample pairs; not computed (diversity.undefined_pairs: fallback)"
        elif metric == used and used != primary:
            note = f"primary in place of {primary} (undefined for some sample pairs)"
        rows.append([metric, "primary" if metric == primary else "sensitivity", role, n, n_pairs, count,
                     "; ".join(f"{a}|{b}" for a, b in examples), note])
    return pd.DataFrame(rows, columns=METRIC_CHECK_COLUMNS), message


@dataclass(frozen=True)
class PcoaResult:
    """Principal coordinates.

    Attributes
    ----------
    coordinates : DataFrame
        Index ``sample_id``, columns ``PC1..PCk``.
    axes : DataFrame
        ``axis, eigenvalue, proportion_explained, percent_explained``.
    """

    coordinates: pd.DataFrame
    axes: pd.DataFrame


def principal_coordinates(distances, n_axes: int = 10) -> PcoaResult:
    """PCoA (scikit-bio ``pcoa``, eigendecomposition of Gower's centred matrix).

    Proportion explained by axis k is :math:`\\lambda_k / \\operatorname{tr}(G)`, the
    eigenvalue over the total inertia :math:`\\operatorname{tr}(G) = \\frac1n\\sum_{i<j}
    d_{ij}^2` (which counts negative eigenvalues of non-Euclidean distances, as ape's
    ``pcoa`` relative eigenvalues). Only the leading `n_axes` eigenpairs are computed.

    Parameters
    ----------
    distances : DataFrame or skbio.DistanceMatrix
    n_axes : int
        Capped at n - 1.

    Returns
    -------
    PcoaResult
    """
    ids, d = distance_array(distances)
    n = len(ids)
    k = max(1, min(int(n_axes), n - 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = skbio_pcoa(DistanceMatrix(d, ids), method="eigh", dimensions=k)
    eigenvalues = np.asarray(result.eigvals, dtype=float)[:k]
    total = float(np.square(d).sum() / (2.0 * n))
    names = [f"PC{i + 1}" for i in range(k)]
    coords = np.asarray(result.samples, dtype=float)[:, :k]
    # skbio's eigenvectors have an arbitrary sign; fix it so outputs are reproducible
    signs = np.sign(coords[np.abs(coords).argmax(axis=0), np.arange(k)])
    coords = coords * np.where(signs == 0, 1.0, signs)
    coordinates = pd.DataFrame(coords, index=pd.Index(ids, name="sample_id"), columns=names)
    axes = pd.DataFrame({"axis": names, "eigenvalue": eigenvalues,
                         "proportion_explained": eigenvalues / total,
                         "percent_explained": 100.0 * eigenvalues / total})
    return PcoaResult(coordinates, axes)


#: columns of the PCoA axes table of a metric that gets no PCoA
AXES_COLUMNS = ["axis", "eigenvalue", "proportion_explained", "percent_explained"]


@dataclass(frozen=True)
class MetricOrdination:
    """One β metric's :class:`DistanceResult` (``distances``) and principal coordinates as the
    workflow writes them: ``coordinates`` holds each sample's metadata
    (:func:`gutaxis.diversity.design.sample_metadata`) then ``PC1..PCk``, sorted by sample id
    (no PC columns for a metric that is not computed); ``axes`` is ``metric`` + :data:`AXES_COLUMNS`."""

    distances: DistanceResult
    coordinates: pd.DataFrame
    axes: pd.DataFrame


def metric_ordination(table: pd.DataFrame, check: pd.DataFrame, metric: str, samples: pd.DataFrame,
                      labels: pd.DataFrame, *, pseudocount: float | str = "half_minimum", n_axes: int = 10,
                      period: str | None = None, source: str = "feature table",
                      samples_file: str = "samples.tsv") -> MetricOrdination:
    """:func:`beta_distances` and :func:`principal_coordinates` of one metric, with each sample's metadata.

    A metric that ``beta_metrics.tsv`` (`check`) marks as not computed keeps NaN
    for the pairs where it is undefined and gets no PCoA.

    Parameters
    ----------
    table : DataFrame
        The filtered samples x features table.
    check : DataFrame
        ``beta_metrics.tsv``.
    metric : str
    samples, labels : DataFrame
        Checked sample sheet and :func:`gutaxis.diversity.design.study_labels`.
    pseudocount : float or "half_minimum"
    n_axes : int
    period : str, optional
        Sample-sheet column of a crossover's periods.
    source, samples_file : str
        Names of the table and the sample sheet in messages.

    Returns
    -------
    MetricOrdination
    """
    computed = metric_roles(check)[1].get(metric) != "not computed"
    distances = beta_distances(table, metric, pseudocount=pseudocount, source=source, allow_undefined=not computed)
    if computed:
        pcoa = principal_coordinates(distances.matrix, n_axes=n_axes)
        coordinates, axes = pcoa.coordinates, pcoa.axes
    else:
        coordinates = pd.DataFrame(index=distances.matrix.index)
        axes = pd.DataFrame(columns=AXES_COLUMNS)
    metadata = sample_metadata(samples, labels, coordinates.index, samples_file, period=period)
    coordinates = metadata.join(coordinates.reset_index(drop=True)).sort_values("sample_id", kind="stable")
    return MetricOrdination(distances, coordinates, axes.assign(metric=metric)[["metric"] + list(axes.columns)])


def within_subject_shift(distances, pairs: pd.DataFrame) -> pd.DataFrame:
    """Distance between each subject's pre and post sample.

    Parameters
    ----------
    distances : DataFrame or skbio.DistanceMatrix
    pairs : DataFrame
        ``subject_id, pre_sample, post_sample`` (:func:`gutaxis.io.pairing.pair_samples`).

    Returns
    -------
    DataFrame
        Columns :data:`SHIFT_COLUMNS`, sorted by subject.
    """
    ids, d = distance_array(distances)
    position = {s: i for i, s in enumerate(ids)}
    absent = sorted({s for s in pd.concat([pairs["pre_sample"], pairs["post_sample"]]).astype(str)
                     if s not in position})
    if absent:
        raise InputError(Problem("sample pairs", "samples " + ", ".join(absent[:8]),
                                 f"{len(absent)} paired samples are not in the distance matrix",
                                 "pair only samples that passed filtering"))
    pre = np.array([position[s] for s in pairs["pre_sample"].astype(str)], dtype=int)
    post = np.array([position[s] for s in pairs["post_sample"].astype(str)], dtype=int)
    out = pd.DataFrame({"subject_id": pairs["subject_id"].astype(str).to_numpy(),
                        "pre_sample": pairs["pre_sample"].astype(str).to_numpy(),
                        "post_sample": pairs["post_sample"].astype(str).to_numpy(),
                        "distance": d[pre, post]}, columns=SHIFT_COLUMNS)
    return out.sort_values("subject_id", kind="stable").reset_index(drop=True)


def compare_shift_by_response(
    shift: pd.DataFrame,
    subjects: pd.DataFrame,
    response_column: str = "response",
) -> pd.DataFrame:
    """Mann–Whitney test of the pre→post distance, responders vs non-responders.

    As R's ``wilcox.test(x, y)`` (:func:`gutaxis.diversity.alpha.mann_whitney`): exact when both
    groups have fewer than 50 subjects and there are no ties, otherwise the normal
    approximation with tie and continuity correction; two-sided.
    ``u_statistic`` is the Mann–Whitney U of the responders (R's W);
    ``hl_shift`` the Hodges–Lehmann shift, the median of all responder minus
    non-responder differences.

    Parameters
    ----------
    shift : DataFrame
        :func:`within_subject_shift` output.
    subjects : DataFrame
        ``subject_id`` and `response_column` (``responder``/``non_responder``/empty).

    Returns
    -------
    DataFrame
        One row, columns :data:`RESPONSE_SHIFT_COLUMNS`.
    """
    if response_column not in subjects.columns:
        raise InputError(Problem("subjects", f"column '{response_column}'", "the column is missing",
                                 f"add '{response_column}' to the subjects table"))
    labels = subjects.set_index(subjects["subject_id"].astype(str))[response_column]
    response = shift["subject_id"].astype(str).map(labels)
    a = shift.loc[response == RESPONDER, "distance"].to_numpy(float)
    b = shift.loc[response == NON_RESPONDER, "distance"].to_numpy(float)
    n_other = int(len(shift) - len(a) - len(b))
    result = mann_whitney(a, b)
    row = ["responder vs non_responder", len(a), len(b), n_other, result["median_a"], result["median_b"],
           result["hl_shift"], result["u_statistic"], result["p_value"], result["method"]]
    return pd.DataFrame([row], columns=RESPONSE_SHIFT_COLUMNS)


@dataclass(frozen=True)
class WithinBetween:
    """Within-subject shift against between-subject distances.

    Attributes
    ----------
    per_subject : DataFrame (:data:`BETWEEN_COLUMNS`)
    test : DataFrame (:data:`BETWEEN_TEST_COLUMNS`), one row
    """

    per_subject: pd.DataFrame
    test: pd.DataFrame


def shift_vs_between(distances, pairs: pd.DataFrame, conf_level: float = 0.95) -> WithinBetween:
    """Is a subject's pre→post distance smaller than its distance to other subjects?

    For subject i with samples :math:`a_i` (pre) and :math:`b_i` (post):
    within :math:`w_i = d(a_i, b_i)`; between :math:`m_i = \\operatorname{median}_{j\\ne i}
    d(a_i, a_j)`, the median distance of its baseline sample to the other subjects'
    baseline samples. The differences :math:`w_i - m_i` are tested with the
    Wilcoxon signed-rank test and summarised by the Hodges–Lehmann estimate
    (:func:`gutaxis.diversity.alpha.wilcoxon_signed_rank`). The :math:`m_i` share samples, so
    the test is descriptive rather than exact.

    Parameters
    ----------
    distances : DataFrame or skbio.DistanceMatrix
    pairs : DataFrame
        ``subject_id, pre_sample, post_sample``.
    conf_level : float

    Returns
    -------
    WithinBetween
    """
    shift = within_subject_shift(distances, pairs)
    ids, d = distance_array(distances)
    position = {s: i for i, s in enumerate(ids)}
    pre = np.array([position[s] for s in shift["pre_sample"]], dtype=int)
    between = d[np.ix_(pre, pre)].astype(float)
    np.fill_diagonal(between, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        median_between = np.nanmedian(between, axis=1) if len(pre) > 1 else np.full(len(pre), np.nan)
    within = shift["distance"].to_numpy(float)
    per_subject = pd.DataFrame({"subject_id": shift["subject_id"], "within_distance": within,
                                "median_between_distance": median_between,
                                "difference": within - median_between}, columns=BETWEEN_COLUMNS)
    result = wilcoxon_signed_rank(within - median_between, conf_level)
    test = pd.DataFrame([["within-subject minus median between-subject baseline distance",
                          result["n"], float(np.median(within)) if len(within) else np.nan,
                          float(np.nanmedian(median_between)) if len(pre) > 1 else np.nan,
                          result["hl_estimate"], result["ci_low"], result["ci_high"], result["conf_level"],
                          result["v_statistic"], result["p_value"], result["method"]]],
                        columns=BETWEEN_TEST_COLUMNS)
    return WithinBetween(per_subject, test)
