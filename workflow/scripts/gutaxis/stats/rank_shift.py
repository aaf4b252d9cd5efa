r"""Exact order statistics of Walsh averages and pairwise differences without building them.

The one-sample Hodges-Lehmann estimate and Tukey's interval are order
statistics of the :math:`M = n(n+1)/2` Walsh averages
:math:`(d_i + d_j)/2,\ i \le j`; the two-sample shift and its interval are
order statistics of the :math:`n_1 n_2` differences :math:`x_i - y_j`. Both
sets are *sorted matrices*: with :math:`a = d` (or :math:`x`) ascending and
:math:`b = d` (or :math:`-y`) ascending, the element :math:`a_i + b_j` grows
along every row and column (floating-point addition is monotone, so this holds for the rounded
values too). The k-th smallest element of such a matrix can be selected in
:math:`O(n \log n)` per feature without writing the matrix down (Johnson &
Mizoguchi 1978; Monahan 1984, whose Algorithm 616 does exactly this for the
Hodges-Lehmann estimator).

Per feature (a compiled loop, numba; features one after another):

1. *Band.* Every row ``i`` keeps a column interval ``[lo_i, hi_i)``: every
   element left of it is smaller than every element in it, every element right
   of it larger, and the wanted rank lies inside, so the k-th element overall is
   the :math:`(k - \#\text{left})`-th of the band. The start band is the whole
   matrix (row ``i`` of the Walsh triangle starts at column ``i``).
2. *Narrow* (Floyd & Rivest 1975 sampling in place of Monahan's single random
   pivot: fewer passes): a systematic sample of ``s`` band elements is sorted,
   and the two sample elements :math:`\sqrt{s}` places either side of the
   target's expected place become pivots. Each pivot ``p`` splits the band
   three ways, counting the elements ``< p`` and ``<= p`` with one staircase
   walk each (the cut never moves right from one row to the next:
   :math:`O(n_1 + n_2)`); comparisons are on the elements themselves, computed
   exactly as the brute force computes them (``x + (-y)`` = ``x - y``;
   ``(d_i + d_j) * 0.5``), so the counts are exact. The band keeps the side
   holding the target; if the target equals ``p`` (ties) the search ends.
   The two middle ranks of an even count are found by one search (the second
   is ``p``, or the nearest element beside the cut). The ranks wanted by the
   Hodges-Lehmann functions lie close together, so a first narrowing serves
   all of them.
3. *Select.* Once the band holds at most ``band_cap`` elements they are
   written down and sorted.

Expected cost :math:`O((n_1 + n_2 + s\log s)\log(n_1 n_2))` per rank; the
results are the very floats a full sort gives. Small problems
(:math:`\le` ``brute_max`` elements) are cheaper by brute force and take that
route (:func:`walsh_select_brute`, :func:`difference_select_brute`, grouped by
sample size), as do features holding an infinite value.

References
----------
Johnson, D. B. & Mizoguchi, T. (1978). Selecting the Kth element in X + Y and
X1 + X2 + ... + Xm. SIAM J. Comput. 7, 147-153.
Monahan, J. F. (1984). Algorithm 616: fast computation of the Hodges-Lehmann
location estimator. ACM Trans. Math. Softw. 10, 265-270.
Floyd, R. W. & Rivest, R. L. (1975). Expected time bounds for selection.
Commun. ACM 18, 165-172.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: problems with at most this many elements per feature are solved by brute force (measured
#: crossover: the direct sort wins up to ~1,000-2,000 elements, the search above)
BRUTE_MAX = 2_000
#: a band this small is written down and sorted
BAND_CAP = 1024
#: elements drawn from the band per narrowing step
SAMPLE = 256


# --------------------------------------------------------------------------
# brute force (small problems, and the reference of the tests)
# --------------------------------------------------------------------------

def _compress(values: np.ndarray, cols: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` non-missing values of each selected column, order kept."""
    sub = values[:, cols]
    keep = np.argsort(np.isnan(sub), axis=0, kind="stable")[:n]
    return np.take_along_axis(sub, keep, axis=0)


def walsh_select_brute(d: np.ndarray, ranks: np.ndarray,
                       max_elements: int = 4_000_000) -> np.ndarray:
    r"""Order statistics of the Walsh averages by writing them all down.

    Parameters
    ----------
    d : ndarray, shape (n, F)
        Values; NaN drops that value for that feature.
    ranks : ndarray of int, shape (K, F)
        0-based ranks wanted per feature, each in ``[0, n_f(n_f+1)/2)``.
    max_elements : int
        Walsh averages held in memory at once (features are chunked).

    Returns
    -------
    ndarray, shape (K, F)
        The ``ranks``-th smallest of :math:`(d_i + d_j) \cdot 0.5,\ i \le j`
        (NaN where a feature has no value).
    """
    d = np.asarray(d, dtype=float)
    ranks = np.asarray(ranks)
    n_obs = (~np.isnan(d)).sum(axis=0)
    out = np.full(ranks.shape, np.nan)
    for n in np.unique(n_obs):
        n = int(n)
        if n == 0:
            continue
        cols = np.flatnonzero(n_obs == n)
        m = n * (n + 1) // 2
        kth = np.unique(ranks[:, cols])
        step = max(1, max_elements // m)
        for begin in range(0, cols.size, step):
            chunk = cols[begin:begin + step]
            rows = np.ascontiguousarray(_compress(d, chunk, n).T)
            walsh = np.empty((chunk.size, m))
            offset = 0
            for i in range(n):  # contiguous writes, one row of the triangle at a time
                np.add(rows[:, i:i + 1], rows[:, i:], out=walsh[:, offset:offset + n - i])
                offset += n - i
            walsh *= 0.5
            walsh.partition(kth, axis=1)
            out[:, chunk] = np.take_along_axis(walsh, ranks[:, chunk].T, axis=1).T
    return out


def difference_select_brute(x: np.ndarray, y: np.ndarray, ranks: np.ndarray,
                            max_elements: int = 4_000_000) -> np.ndarray:
    """Order statistics of all differences ``x_i - y_j`` by writing them all down.

    Parameters
    ----------
    x, y : ndarray, shape (n1, F) and (n2, F)
        Values of the two samples; NaN drops that value for that feature.
    ranks : ndarray of int, shape (K, F)
        0-based ranks wanted per feature, each in ``[0, n1_f n2_f)``.
    max_elements : int
        Differences held in memory at once (features are chunked).

    Returns
    -------
    ndarray, shape (K, F)
        NaN where a sample of the feature is empty.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ranks = np.asarray(ranks)
    n1 = (~np.isnan(x)).sum(axis=0)
    n2 = (~np.isnan(y)).sum(axis=0)
    out = np.full(ranks.shape, np.nan)
    pairs = np.unique(np.stack([n1, n2]), axis=1)
    for a, b in pairs.T:
        a, b = int(a), int(b)
        if a == 0 or b == 0:
            continue
        cols = np.flatnonzero((n1 == a) & (n2 == b))
        m = a * b
        kth = np.unique(ranks[:, cols])
        step = max(1, max_elements // m)
        x_all = _compress(x, cols, a)
        y_all = _compress(y, cols, b)
        for begin in range(0, cols.size, step):
            part = slice(begin, begin + step)
            diffs = (x_all[:, None, part] - y_all[None, :, part]).reshape(m, -1).T.copy()
            diffs.partition(kth, axis=1)
            c = cols[part]
            out[:, c] = np.take_along_axis(diffs, ranks[:, c].T, axis=1).T
    return out


# --------------------------------------------------------------------------
# the sorted-matrix selection (compiled)
# --------------------------------------------------------------------------

@njit(cache=True)
def _cut(a, b, scale, start, lo, hi, p, strict, out):
    """Per row, the first band column whose element is ``>= p`` (``> p`` if not strict).

    One staircase walk: the cut never moves right from one row to the next,
    so the walk costs :math:`O(n_1 + n_2)`. Returns how many elements of the
    whole matrix lie left of the cuts (a pivot outside the band's values
    gives the band's own edge).
    """
    j = b.size
    total = 0
    for i in range(a.size):
        if hi[i] < j:
            j = hi[i]
        ai = a[i]
        if strict:
            while j > lo[i] and (ai + b[j - 1]) * scale >= p:
                j -= 1
        else:
            while j > lo[i] and (ai + b[j - 1]) * scale > p:
                j -= 1
        c = j if j > lo[i] else lo[i]
        out[i] = c
        total += c - start[i]
    return total


@njit(cache=True)
def _max_left(a, b, scale, start, cut):
    """Largest element left of the cuts (-inf if there is none)."""
    best = -np.inf
    for i in range(a.size):
        if cut[i] > start[i]:
            v = (a[i] + b[cut[i] - 1]) * scale
            if v > best:
                best = v
    return best


@njit(cache=True)
def _min_right(a, b, scale, cut):
    """Smallest element at or right of the cuts (+inf if there is none)."""
    best = np.inf
    for i in range(a.size):
        if cut[i] < b.size:
            v = (a[i] + b[cut[i]]) * scale
            if v < best:
                best = v
    return best


@njit(cache=True)
def _band(start, lo, hi, widths):
    """Band size, elements left of the band, and the cumulative row widths."""
    size = 0
    below = 0
    for i in range(lo.size):
        size += hi[i] - lo[i]
        below += lo[i] - start[i]
        widths[i] = size
    return size, below


@njit(cache=True)
def _pivots(a, b, scale, lo, hi, widths, size, below, k_first, k_last, draws):
    """Two band elements expected just below rank ``k_first`` and above ``k_last``.

    A systematic sample of the band (row-major positions ``(t + U) size / s``)
    is sorted; the pivots sit :math:`\\sqrt{s}` places (about two standard
    errors) outside the targets' expected places (Floyd & Rivest 1975),
    clipped to the sample: every pivot is an element of the band, so a
    three-way split by it always shrinks the band.
    """
    sample = draws.size
    shift = np.random.random()
    i = 0
    for t in range(sample):
        u = int((t + shift) * (size / sample))
        if u >= size:
            u = size - 1
        while widths[i] <= u:
            i += 1
        draws[t] = (a[i] + b[lo[i] + u - (widths[i] - (hi[i] - lo[i]))]) * scale
    draws.sort()
    half = int(np.sqrt(sample)) + 1
    g_lo = int((k_first - below) * (sample / size)) - half
    g_hi = int((k_last - below + 1) * (sample / size)) + half
    return draws[min(max(g_lo, 0), sample - 1)], draws[min(max(g_hi, 0), sample - 1)]


@njit(cache=True)
def _shared_band(a, b, scale, start, lo, hi, k_min, k_max, band_cap, work, cut, draws):
    """Narrow the band around all ranks ``[k_min, k_max]`` while it halves each step."""
    previous = -1
    while True:
        size, below = _band(start, lo, hi, work)
        if size <= band_cap or (previous >= 0 and 2 * size > previous):
            return
        previous = size
        p_lo, p_hi = _pivots(a, b, scale, lo, hi, work, size, below, k_min, k_max, draws)
        if _cut(a, b, scale, start, lo, hi, p_lo, False, cut) <= k_min:
            lo[:] = cut
        if _cut(a, b, scale, start, lo, hi, p_hi, True, cut) > k_max:
            hi[:] = cut


@njit(cache=True)
def _kth_pair(a, b, scale, start, lo, hi, k, k2, band_cap, work, cut, draws):
    """Elements of ranks ``k`` and ``k2`` (0-based, ``k2`` in {k, k + 1}).

    Every pivot splits the band three ways (Monahan 1984): below it, equal
    to it, above it; ties therefore end the search instead of stalling it.
    """
    while True:
        size, below = _band(start, lo, hi, work)
        if size <= band_cap:
            values = np.empty(size)
            t = 0
            for i in range(a.size):
                for j in range(lo[i], hi[i]):
                    values[t] = (a[i] + b[j]) * scale
                    t += 1
            values.sort()
            if k2 - below < size:
                return values[k - below], values[k2 - below]
            return values[k - below], _min_right(a, b, scale, hi)
        p_lo, p_hi = _pivots(a, b, scale, lo, hi, work, size, below, k, k2, draws)
        for p in (p_lo, p_hi):
            n_lt = _cut(a, b, scale, start, lo, hi, p, True, cut)
            if k < n_lt:
                if k2 < n_lt:
                    hi[:] = cut
                    break
                return _max_left(a, b, scale, start, cut), p  # k2 = n_lt: the first p
            n_le = _cut(a, b, scale, start, lo, hi, p, False, cut)
            if k < n_le:
                if k2 < n_le:
                    return p, p
                return p, _min_right(a, b, scale, cut)  # k2 = n_le: just above p
            lo[:] = cut


@njit(cache=True)
def _select_features(a_all, b_all, n1, n2, scale, triangular, first, second, band_cap,
                     sample, seed):
    """Ranks ``first`` and ``second`` (T, F) of every feature's implicit matrix."""
    np.random.seed(seed)
    n_target, n_feat = first.shape
    out1 = np.full((n_target, n_feat), np.nan)
    out2 = np.full((n_target, n_feat), np.nan)
    draws = np.empty(sample)
    for f in range(n_feat):
        a = a_all[f, :n1[f]]
        b = a if triangular else b_all[f, :n2[f]]
        rows = a.size
        start = np.zeros(rows, np.int64)
        if triangular:
            start = np.arange(rows)
        work = np.empty(rows, np.int64)
        cut = np.empty(rows, np.int64)
        lo = start.copy()
        hi = np.full(rows, b.size, np.int64)
        if n_target > 1:  # the ranks wanted lie close together: narrow once for all
            _shared_band(a, b, scale, start, lo, hi, first[:, f].min(), second[:, f].max(),
                         band_cap, work, cut, draws)
        for t in range(n_target):
            out1[t, f], out2[t, f] = _kth_pair(a, b, scale, start, lo.copy(), hi.copy(),
                                               first[t, f], second[t, f], band_cap, work,
                                               cut, draws)
    return out1, out2


def _select(a, b, n1, n2, scale, triangular, ranks, band_cap, sample, seed):
    """Rows of ``ranks`` (K, F), adjacent ranks answered by one search."""
    targets = _pair_targets(ranks)
    first = np.array([np.minimum(ranks[i], ranks[j]) for i, j in targets])
    second = np.array([np.maximum(ranks[i], ranks[j]) for i, j in targets])
    v1, v2 = _select_features(a, b, n1, n2, scale, triangular, first, second, band_cap,
                              sample, seed)
    out = np.empty(ranks.shape)
    for t, (i, j) in enumerate(targets):
        out[i] = np.where(ranks[i] == first[t], v1[t], v2[t])
        out[j] = np.where(ranks[j] == first[t], v1[t], v2[t])
    return out


def _pair_targets(ranks: np.ndarray):
    """Group rows of ``ranks`` (K, F) into targets of one rank or two adjacent ranks."""
    targets, k = [], 0
    while k < ranks.shape[0]:
        if k + 1 < ranks.shape[0] and (np.abs(ranks[k + 1] - ranks[k]) <= 1).all():
            targets.append((k, k + 1))
            k += 2
        else:
            targets.append((k, k))
            k += 1
    return targets


def _sorted_rows(values: np.ndarray) -> np.ndarray:
    """Columns sorted ascending (NaN last), one feature per row, C-contiguous."""
    return np.ascontiguousarray(np.sort(values, axis=0).T)


def walsh_order_statistics(d, ranks, brute_max: int = BRUTE_MAX, band_cap: int = BAND_CAP,
                           sample: int = SAMPLE, seed: int = 0,
                           max_elements: int = 4_000_000) -> np.ndarray:
    r"""Order statistics of the Walsh averages :math:`(d_i + d_j)/2,\ i \le j`, per feature.

    Parameters
    ----------
    d : array_like, shape (n, F)
        Values; NaN drops that value for that feature (``n_f`` values left).
    ranks : array_like of int, shape (K, F)
        0-based ranks wanted, each in :math:`[0, n_f(n_f+1)/2)`.
    brute_max : int
        Features with at most this many Walsh averages are solved by writing
        them all down (:func:`walsh_select_brute`; faster there).
    band_cap, sample, seed
        Speed only, the result does not depend on them: a band of at most
        ``band_cap`` elements is sorted; ``sample`` elements drawn per step
        (random generator seeded with ``seed``).
    max_elements : int
        Elements held in memory at once by the brute-force route.

    Returns
    -------
    ndarray, shape (K, F)
        Exactly the elements a full sort of ``(d_i + d_j) * 0.5`` gives; NaN
        where a feature has no value. :math:`O(n \log n)` per feature
        (Monahan 1984; Johnson & Mizoguchi 1978; see the module docstring).
    """
    d = np.asarray(d, dtype=float)
    if d.ndim == 1:
        d = d[:, None]
    ranks = np.asarray(ranks, dtype=np.int64).reshape(-1, d.shape[1])
    n = (~np.isnan(d)).sum(axis=0)
    m = n * (n + 1) // 2
    finite = ~np.isinf(d).any(axis=0)
    fast = (m > brute_max) & finite
    out = np.full(ranks.shape, np.nan)
    slow = np.flatnonzero(~fast)
    if slow.size:
        out[:, slow] = walsh_select_brute(d[:, slow], ranks[:, slow], max_elements)
    cols = np.flatnonzero(fast)
    if cols.size:
        a = _sorted_rows(d[:, cols])
        out[:, cols] = _select(a, a, n[cols], n[cols], 0.5, True, ranks[:, cols], band_cap,
                               sample, seed)
    return out


def difference_order_statistics(x, y, ranks, brute_max: int = BRUTE_MAX,
                                band_cap: int = BAND_CAP, sample: int = SAMPLE,
                                seed: int = 0, max_elements: int = 4_000_000) -> np.ndarray:
    r"""Order statistics of the differences :math:`x_i - y_j` (all pairs), per feature.

    Parameters
    ----------
    x, y : array_like, shape (n1, F) and (n2, F)
        The two samples; NaN drops that value for that feature.
    ranks : array_like of int, shape (K, F)
        0-based ranks wanted, each in :math:`[0, n_{1f} n_{2f})`.
    brute_max : int
        Features with at most this many differences are solved by writing them
        all down (:func:`difference_select_brute`).
    band_cap, sample, seed
        As :func:`walsh_order_statistics`.

    Returns
    -------
    ndarray, shape (K, F)
        Exactly the elements a full sort of ``x_i - y_j`` gives (computed as
        ``x_i + (-y_j)``, the same float); NaN where a sample is empty.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.ndim == 1:
        x, y = x[:, None], y[:, None]
    ranks = np.asarray(ranks, dtype=np.int64).reshape(-1, x.shape[1])
    n1 = (~np.isnan(x)).sum(axis=0)
    n2 = (~np.isnan(y)).sum(axis=0)
    finite = ~(np.isinf(x).any(axis=0) | np.isinf(y).any(axis=0))
    fast = (n1 * n2 > brute_max) & finite
    out = np.full(ranks.shape, np.nan)
    slow = np.flatnonzero(~fast)
    if slow.size:
        out[:, slow] = difference_select_brute(x[:, slow], y[:, slow], ranks[:, slow],
                                                max_elements)
    cols = np.flatnonzero(fast)
    if cols.size:
        a = _sorted_rows(x[:, cols])
        b = _sorted_rows(-y[:, cols])  # x - y computed as x + (-y): the same float
        out[:, cols] = _select(a, b, n1[cols], n2[cols], 1.0, False, ranks[:, cols],
                               band_cap, sample, seed)
    return out
