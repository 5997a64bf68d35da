"""Sparse algebra of state estimation: factorising the gain matrix and the diagonal of H G^-1 H^T.

G = H^T W H is symmetric positive definite when the meters make the grid observable. SuperLU with
diagonal pivots on a fill-reducing symmetric order gives G[q][:, q] = L D L^T. The normalised
residuals need only the diagonal of H G^-1 H^T, which needs G^-1 only where two states share a
meter, inside the pattern of L + L^T: the Takahashi recursion computes G^-1 on that pattern from L
and D alone (Erisman & Tinney 1975), so G^-1 (20,000 x 20,000 dense on a 10,000-bus feeder) is
never formed. SuperLU drops entries that cancel to zero (many do at flat start), so the pattern is
taken from a factorisation of the same structure with random positive values.

The quadratic form h G^-1 h^T of a nearly critical meter (one whose reading the others nearly
determine, G^-1 h^T ~ sigma^2) cancels to a small Omega and loses digits; those rows are solved for
directly (G x = h^T), as the dense formula does, which keeps them as accurate as it.

`null_space_reach` finds the states a meter set leaves undetermined (observability, and where a
stealthy attacker with limited access can move the state) without a dense SVD.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import SuperLU, splu

BLOCK = 256  # right-hand sides per solve of the nearly critical rows


def _ldl(G: sp.spmatrix, order: str) -> SuperLU:
    """SuperLU of a symmetric G with diagonal pivots: L unit lower, U = D L^T."""
    try:
        lu = splu(sp.csc_matrix(G), permc_spec=order, diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    except RuntimeError as exc:  # "Factor is exactly singular"
        raise np.linalg.LinAlgError(str(exc)) from exc
    if not np.array_equal(lu.perm_r, lu.perm_c):
        raise np.linalg.LinAlgError("gain matrix is not positive definite")
    return lu


def factorise(G: sp.spmatrix) -> SuperLU:
    """The factorisation of a symmetric positive definite G; LinAlgError when G is singular (unobservable)."""
    return _ldl(G, "MMD_AT_PLUS_A")


def _positions(A: sp.csc_matrix, B: sp.csc_matrix) -> np.ndarray:
    """Index into A.data of every stored entry of B (B's pattern within A's; both CSC, sorted)."""
    n = A.shape[0]
    keys = np.repeat(np.arange(n, dtype=np.int64), np.diff(A.indptr)) * n + A.indices
    want = np.repeat(np.arange(n, dtype=np.int64), np.diff(B.indptr)) * n + B.indices
    at = np.searchsorted(keys, want)
    if not np.array_equal(keys[np.minimum(at, len(keys) - 1)], want):
        raise np.linalg.LinAlgError("factor entry outside the symbolic pattern")
    return at


@lru_cache(maxsize=8)
def _symbolic(indptr: bytes, indices: bytes, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The pattern (CSC indptr, indices) of L for a lower-triangular pattern in elimination order: the factor
    of the same structure with random positive values, diagonally dominant (no entry cancels); cached, as a
    run's pattern holds from step to step."""
    rows, starts = np.frombuffer(indices, np.int64), np.frombuffer(indptr, np.int64)
    lower = sp.csc_matrix((np.random.default_rng(0).uniform(0.5, 1.0, len(rows)), rows, starts), shape=(n, n))
    dominant = lower + lower.T + sp.diags(np.asarray(lower.sum(axis=0)).ravel() * 2 + 1.0)
    L = sp.csc_matrix(_ldl(dominant, "NATURAL").L)
    L.sort_indices()
    return L.indptr, L.indices


def selected_inverse(lu: SuperLU, coupled: sp.spmatrix) -> tuple[sp.csr_matrix, np.ndarray]:
    """G[q][:, q]^-1 (symmetric, sparse) on every pair of `coupled` (a pattern of G, states in G's order)
    and q, by the Takahashi recursion Z[S, j] = -Z[S, S] l_j, Z_jj = 1/d_j - l_j . Z[S, j] over the
    rows S of L[:, j] below the diagonal, from the last column to the first."""
    q = np.argsort(lu.perm_c)  # G[q][:, q] = L U
    n = len(q)
    pattern = sp.tril(sp.csc_matrix(coupled, dtype=float)[q][:, q], format="csc")
    pattern.sort_indices()
    indptr, indices = _symbolic(pattern.indptr.astype(np.int64).tobytes(),
                                pattern.indices.astype(np.int64).tobytes(), n)
    symbolic = sp.csc_matrix((np.ones(len(indices)), indices, indptr), shape=(n, n))
    L = sp.csc_matrix(lu.L)
    L.sort_indices()
    lvals = np.zeros(symbolic.nnz)
    lvals[_positions(symbolic, L)] = L.data
    d = lu.U.diagonal()
    indptr, indices = symbolic.indptr, symbolic.indices
    Z = np.zeros(symbolic.nnz)
    for j in range(n - 1, -1, -1):
        lo, hi = indptr[j], indptr[j + 1]  # first entry: the unit diagonal
        rows, l = indices[lo + 1:hi], lvals[lo + 1:hi]
        s = len(rows)
        block = np.empty((s, s))
        for a, k in enumerate(rows):  # Z[rows][:, rows] from the columns already done
            klo, khi = indptr[k], indptr[k + 1]
            col = Z[klo + np.searchsorted(indices[klo:khi], rows[a:])]
            block[a:, a] = col
            block[a, a:] = col
        z = -block @ l
        Z[lo + 1:hi] = z
        Z[lo] = 1.0 / d[j] - l @ z
    lower = sp.csc_matrix((Z, indices, indptr), shape=(n, n))
    return (lower + sp.tril(lower, -1).T).tocsr(), q


def quadratic_diagonal(lu: SuperLU, H: sp.spmatrix, exact_above: np.ndarray) -> np.ndarray:
    """diag(H G^-1 H^T) from G's factorisation; rows whose value reaches `exact_above` (nearly critical
    meters) solved for directly."""
    H = sp.csr_matrix(H)
    Z, q = selected_inverse(lu, abs(H).T @ abs(H))
    Hq = H[:, q]
    out = np.asarray((Hq @ Z).multiply(Hq).sum(axis=1)).ravel()
    near = np.flatnonzero(out >= exact_above)
    for start in range(0, len(near), BLOCK):
        rows = H[near[start:start + BLOCK]]
        x = lu.solve(np.asfortranarray(rows.T.toarray()))
        out[near[start:start + BLOCK]] = np.asarray(rows.multiply(x.T).sum(axis=1)).ravel()
    return out


def null_space_reach(H: sp.spmatrix, eps: tuple[float, ...] = (1e-20, 1e-14), seed: int = 0) -> np.ndarray:
    """Columns (states) that the null space of H reaches: the states the rows of H cannot determine.

    With H's columns scaled to unit norm, x = e (H^T H + e I)^-1 y keeps y's null-space part and
    shrinks the rest by e / sigma^2; three applications to random vectors leave the null-space
    part alone, nonzero on every state it reaches (above 1e-12; what is left of the rest is below
    (e / sigma_min^2)^3). Each is one solve of the augmented system [[I, H], [H^T, -e I]], whose
    condition is H's, not its square's, so e = 1e-20 can sit far below the smallest squared singular
    value of an observable meter set. Where H has an exact null space that e vanishes beside the
    unit entries and the system is singular; the next e (1e-14) then also counts states determined
    only to ~1e-7 of their column norm.
    """
    m, n = H.shape
    norm = np.sqrt(np.asarray(sp.csr_matrix(H).multiply(H).sum(axis=0)).ravel())
    Hs = sp.csr_matrix(H) @ sp.diags(1.0 / np.where(norm > 0, norm, 1.0))
    for e in eps:
        try:
            lu = splu(sp.bmat([[sp.eye(m), Hs], [Hs.T, -e * sp.eye(n)]], format="csc"))
            break
        except RuntimeError:  # "Factor is exactly singular"
            continue
    else:
        raise np.linalg.LinAlgError("augmented system singular at every regularisation")
    x = np.random.default_rng(seed).normal(size=(n, 4))
    for _ in range(3):
        x = lu.solve(np.vstack([np.zeros((m, 4)), -e * x]))[m:]
    return (np.abs(x).max(axis=1) > 1e-12) | (norm == 0)
