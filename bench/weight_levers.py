"""Variants of the document weights' mixture (``topics/docweights.py``) for ``min_support.py --weights``.

Each variant reruns the von Mises–Fisher mixture's EM of ``docweights.fit_mixture`` on a
fitted model's θ_topic and document directions, densely (all documents at once, float64),
and changes one thing:

- ``base``: the mixture as shipped until saetm 0.10 (t = 0.05, 10 rounds, weights on θ's
  support) — a check that this dense rerun gives the NMI of a model fitted with 10 rounds;
- ``ml``: the concentration κ = 1/t shared by all topics estimated in every round from the
  mean resultant length r̄ = Σ_c ‖Σ_d W_dc x̂_d‖ / Σ_dc W_dc (Banerjee et al. 2005:
  κ ≈ r̄(D − r̄²)/(1 − r̄²), D the embedding dimension), starting from θ's centroids;
- ``mlclip``: that κ clipped to t ∈ [0.03, 0.08];
- ``mltopic``: one κ_c per topic from its own r̄_c (the vMF normaliser log C_D(κ_c) then
  enters the posterior), clipped like ``mlclip``; ``mltopicraw``: not clipped;
- ``all``: the argmax over all T topics (p = s/T off θ's support) instead of θ's support;
- ``iterN``: N rounds of EM instead of 10 (e.g. ``iter30``; ``iter20`` is the default since);
- ``convX``: EM until no topic's ρ changes by more than the fraction X in a round (at most
  ``MAX_ROUNDS``; e.g. ``conv0.001``);
- ``tX``: a fixed temperature X (e.g. ``t0.04``);
- ``wB``: the documents' words as a second view with weight B (``topics/docwords.py``: IDF-weighted
  incidence ŵ against word centroids ν fitted by the same EM; 20 rounds; ``wBtX``: with t = X).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

T_RANGE = (0.03, 0.08)
MAX_ROUNDS = 200


def unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n > 0, n, 1.0)


def kappa_of(r: np.ndarray, dim: int) -> np.ndarray:
    """Banerjee et al.'s approximation of the vMF concentration from mean resultant length(s) r."""
    r = np.clip(r, 1e-6, 1 - 1e-6)
    return r * (dim - r ** 2) / (1 - r ** 2)


def log_normaliser(kappa: np.ndarray, dim: int) -> np.ndarray:
    """log C_D(κ) = (D/2 − 1) log κ − (D/2) log 2π − log I_{D/2−1}(κ)."""
    from scipy.special import ive

    v = dim / 2 - 1
    return v * np.log(kappa) - dim / 2 * np.log(2 * np.pi) - (np.log(ive(v, kappa)) + kappa)


def weights(theta_topic, directions: np.ndarray, variant: str, smoothing: float = 0.5,
            temperature: float = 0.05, rounds: int = 10, doc_words=None) -> tuple[np.ndarray, dict]:
    """(W ``(n, T)`` dense rows summing to 1 or 0, info {"t": final temperature(s)}) of ``variant``."""
    from saetm.topics.docweights import update_priors

    if variant.startswith("iter"):
        rounds = int(variant[4:])
    tol = None
    if variant.startswith("conv"):
        tol, rounds = float(variant[4:]), MAX_ROUNDS
    if variant.startswith("t") and variant[1:2].isdigit():
        temperature = float(variant[1:])
    strength = 0.0
    if variant.startswith("w") and variant[1:2].isdigit():
        spec, _, t = variant[1:].partition("t")
        strength, rounds = float(spec), 20
        temperature = float(t) if t else temperature
        from saetm.topics import docwords

        Wd = docwords.directions(doc_words, docwords.idf_of(doc_words))
    X = unit(np.asarray(directions, dtype=np.float64))
    dim = X.shape[1]
    theta = sp.csr_matrix(theta_topic, dtype=np.float64)
    s = np.asarray(theta.sum(axis=1)).ravel()
    theta_hat = sp.csr_matrix(sp.diags(np.divide(1.0, s, out=np.zeros_like(s), where=s > 0)) @ theta)
    theta_hat.eliminate_zeros()
    P0 = theta_hat.toarray()
    n, T = P0.shape
    has = s > 0
    P = P0.copy()
    P[has] = (1 - smoothing) * P[has] + smoothing / T
    support = P0 > 0
    sums = P0.T @ X
    mu = unit(sums)
    mass = P0.sum(axis=0)
    kappa = np.full(T, 1.0 / temperature)
    rho = np.ones(T)

    def estimate(sums, mass):
        if variant in ("ml", "mlclip"):
            r = np.linalg.norm(sums, axis=1).sum() / mass.sum()
            k = np.full(T, kappa_of(np.array([r]), dim)[0])
        else:  # mltopic
            r = np.linalg.norm(sums, axis=1) / np.maximum(mass, 1e-12)
            k = kappa_of(r, dim)
        if variant in ("mlclip", "mltopic"):
            k = np.clip(k, 1 / T_RANGE[1], 1 / T_RANGE[0])
        return k

    nu = None

    def posterior(mu, rho, kappa):
        logit = (X @ mu.T) * kappa
        if strength:
            logit = logit + strength * np.asarray(Wd @ nu.T) * kappa
        if variant.startswith("mltopic"):
            logit = logit + log_normaliser(kappa, dim)
        logit -= logit.max(axis=1, keepdims=True)
        L = P * rho * np.exp(logit)
        Z = L.sum(axis=1, keepdims=True)
        return L / np.where(Z > 0, Z, 1.0)

    ml = variant in ("ml", "mlclip", "mltopic", "mltopicraw")
    if ml:
        kappa = estimate(sums, mass)
    if strength:
        nu = unit(np.asarray(Wd.T @ P0).T)
    done = 1
    for _ in range(rounds - 1):
        L = posterior(mu, rho, kappa)
        mass, sums = L.sum(axis=0), L.T @ X
        mu = unit(sums)
        if strength:
            nu = unit(np.asarray(Wd.T @ L).T)
        if ml:
            kappa = estimate(sums, mass)
        old, rho = rho, update_priors(theta_hat, mass, rho, smoothing)
        done += 1
        if tol is not None and np.max(np.abs(rho / old - 1)) <= tol:
            break
    W = posterior(mu, rho, kappa)
    if variant != "all":
        W = W * support
        Z = W.sum(axis=1, keepdims=True)
        W = W / np.where(Z > 0, Z, 1.0)
    t = 1.0 / kappa
    return W, {"t_min": float(t.min()), "t_max": float(t.max()), "rounds": done}
