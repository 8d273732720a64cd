"""Stage 1: sparse autoencoders whose decoder columns are the topic atoms.

Four architectures share one interface (:class:`SparseAutoencoder`)::

    a = encode(preprocess(x))            # (B, n_atoms) sparse, non-negative activations
    x_hat = decode(a) = W_dec a + b_dec  # reconstruction in the preprocessed space

- ``topk``       keep the k largest pre-activations of every sample.
- ``batchtopk``  keep the k·B largest pre-activations of the whole batch; at inference
                 one global threshold θ* (EMA during training, calibrated at the end).
- ``relu``       ReLU with an L1 penalty λ·Σ_k a_k‖d_k‖ (λ warmed up linearly).
- ``jumprelu``   per-feature thresholds trained with a straight-through estimator
                 towards a target L0.

Training losses live in ``training_forward``; the loop around them is ``sae/train.py``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from saetm.sae.config import ARCHITECTURES, INPUT_NORMS, SAEConfig  # noqa: F401 (defined without torch)
from saetm.sae.distributed import global_batch_topk, global_fired, global_residual_variance, training_group
from saetm.sae.encode import encode_activations  # noqa: F401 (saetm.sae.models.encode_activations: documented)


class SparseAutoencoder(nn.Module):
    """Shared parameters and maths; subclasses define ``encode`` and ``training_forward``.

    Parameters: ``W_enc (F, d)``, ``b_enc (F,)``, ``W_dec (d, F)`` (unit-norm columns =
    atoms), ``b_dec (d,)``. Training state: ``samples_since_fired (F,)`` (not saved with
    the model) and ``dead_after`` (samples; set by the trainer).
    """

    def __init__(self, config: SAEConfig, seed: int = 0):
        super().__init__()
        self.config = config
        d, n = config.d_in, config.n_atoms
        gen = torch.Generator().manual_seed(seed)
        W_dec = torch.randn(d, n, generator=gen)
        W_dec /= W_dec.norm(dim=0, keepdim=True)
        self.W_dec = nn.Parameter(W_dec)
        self.W_enc = nn.Parameter(W_dec.T.clone())
        self.b_enc = nn.Parameter(torch.zeros(n))
        self.b_dec = nn.Parameter(torch.zeros(d))
        self.register_buffer("samples_since_fired", torch.zeros(n, dtype=torch.long), persistent=False)
        self.dead_after = 10_000_000

    # ----- the model ---------------------------------------------------------------
    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """Raw embeddings (B, d) -> the space the SAE works in (stored normalisation)."""
        if self.config.input_norm == "l2":
            return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return x * (self.config.input_scale or 1.0)

    def pre_acts(self, x: torch.Tensor) -> torch.Tensor:
        """h = ReLU(W_enc (x − b_dec) + b_enc): (B, F)."""
        # Same maths with b_dec folded into the bias: x needs no gradient, which saves
        # the (B, F) x (F, d) backward product that would only serve b_dec's gradient.
        return F.relu(F.linear(x, self.W_enc, self.b_enc - self.W_enc @ self.b_dec))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Inference activations (B, F), dense storage, mostly zeros."""
        raise NotImplementedError

    def decode(self, a: torch.Tensor) -> torch.Tensor:
        return a @ self.W_dec.T + self.b_dec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def training_forward(self, x: torch.Tensor, step: int) -> tuple[torch.Tensor, dict]:
        """Loss on a preprocessed batch and detached diagnostics (mse, l0, ...)."""
        raise NotImplementedError

    # ----- training helpers --------------------------------------------------------
    @torch.no_grad()
    def normalize_decoder(self) -> None:
        self.W_dec /= self.W_dec.norm(dim=0, keepdim=True).clamp_min(1e-12)

    @torch.no_grad()
    def remove_parallel_grads(self) -> None:
        """Drop the gradient component along each (unit) decoder column: the step then
        rotates atoms instead of growing them, which the renormalisation would undo."""
        if self.W_dec.grad is not None:
            parallel = (self.W_dec.grad * self.W_dec).sum(dim=0, keepdim=True)
            self.W_dec.grad -= parallel * self.W_dec

    @torch.no_grad()
    def init_b_dec(self, x: torch.Tensor, iters: int = 50) -> None:
        """b_dec = geometric median of a preprocessed batch (Weiszfeld iterations)."""
        median = x.mean(dim=0)
        for _ in range(iters):
            w = 1.0 / (x - median).norm(dim=-1).clamp_min(1e-8)
            new = (w[:, None] * x).sum(dim=0) / w.sum()
            if (new - median).norm() < 1e-7:
                median = new
                break
            median = new
        self.b_dec.copy_(median)

    @torch.no_grad()
    def init_from_batch(self, x: torch.Tensor) -> None:
        """Data-dependent initialisation before the first step (x preprocessed)."""
        self.init_b_dec(x)

    @torch.no_grad()
    def track_firing(self, fired: torch.Tensor, n_samples: int) -> None:
        """fired: (F,) bool, features active anywhere in a batch of n_samples (training on
        several processes: in the global batch, so AuxK sees the dead features one process would)."""
        if self.training and training_group():
            fired, n_samples = global_fired(fired), n_samples * torch.distributed.get_world_size()
        self.samples_since_fired += n_samples
        self.samples_since_fired[fired] = 0

    def sparsity_scale(self, step: int) -> float:
        """Linear warm-up of the sparsity penalty (ReLU, JumpReLU) over sparsity_warmup_steps."""
        warm = self.config.sparsity_warmup_steps or 0
        return 1.0 if warm <= 0 else min(1.0, (step + 1) / warm)

    def dead_mask(self) -> torch.Tensor:
        return self.samples_since_fired >= self.dead_after

    def finalize(self, x: torch.Tensor) -> None:
        """Called once after training with a preprocessed calibration sample."""


def _mse(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    return (x - x_hat).pow(2).sum(dim=-1).mean()


class _TopKFamily(SparseAutoencoder):
    """TopK and BatchTopK: MSE + AuxK loss; subclasses choose which activations survive."""

    def select(self, h: torch.Tensor) -> torch.Tensor:
        """Training-time activations: h with all but the kept entries zeroed."""
        raise NotImplementedError

    def training_forward(self, x, step):
        h = self.pre_acts(x)
        a = self.select(h)
        x_hat = self.decode(a)
        mse = _mse(x, x_hat)
        active = a > 0
        self.track_firing(active.any(dim=0), x.shape[0])
        aux = self.aux_loss(x, (x - x_hat).detach())
        loss = mse + self.config.aux_coef * aux
        info = {"loss": loss.detach(), "mse": mse.detach(), "aux": aux.detach(),
                "l0": active.sum(dim=-1).float().mean(), "dead": self.dead_mask().sum()}
        return loss, info

    def aux_loss(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """AuxK: the top-aux_k dead features reconstruct the residual (normalised by its
        variance, as in OpenAI's implementation). Costs O(n_dead), nothing when none are dead."""
        dead = torch.nonzero(self.dead_mask()).squeeze(1)
        if dead.numel() == 0:
            return x.new_zeros(())
        W = self.W_enc[dead]
        h = F.relu(F.linear(x, W, self.b_enc[dead] - W @ self.b_dec))
        vals, idx = h.topk(min(self.config.aux_k, dead.numel()), dim=-1)
        a = torch.zeros_like(h).scatter(1, idx, vals)
        recon = a @ self.W_dec[:, dead].T
        denom = (global_residual_variance(residual) if training_group()  # several processes: the global batch's
                 else (residual - residual.mean(dim=0)).pow(2).sum(dim=-1).mean())
        return (_mse(residual, recon) / denom.clamp_min(1e-12)).nan_to_num(0.0)


class TopKSAE(_TopKFamily):
    def select(self, h):
        vals, idx = h.topk(self.config.k, dim=-1)
        return torch.zeros_like(h).scatter(1, idx, vals)

    def encode(self, x):
        return self.select(self.pre_acts(x))


def batch_topk_mask(h: torch.Tensor, n_keep: int) -> torch.Tensor:
    """Bool mask of the n_keep largest positive entries of h (B, F), exact.

    A flat top-k over all B·F values is slow. The n_keep-th largest of each row's top-m
    candidates is a lower bound for the true cut-off, so every winner is among the few
    entries above that bound, and a top-k over those alone is exact.
    """
    B, n = h.shape
    m = min(n, 2 * math.ceil(n_keep / B))
    candidates = h.topk(m, dim=-1).values.flatten()
    bound = candidates.topk(min(n_keep, candidates.numel())).values[-1]
    rows, cols = torch.nonzero(h >= bound if bound > 0 else h > 0, as_tuple=True)
    if rows.numel() > n_keep:
        keep = h[rows, cols].topk(n_keep).indices
        rows, cols = rows[keep], cols[keep]
    mask = torch.zeros_like(h, dtype=torch.bool)
    mask[rows, cols] = True
    return mask


class BatchTopKSAE(_TopKFamily):
    """Training keeps the k·B largest pre-activations of the batch; inference keeps
    h > θ* with one global threshold (buffer ``threshold``; −1 = unset)."""

    threshold_beta = 0.999

    def __init__(self, config, seed=0):
        super().__init__(config, seed)
        self.register_buffer("threshold", torch.tensor(-1.0))

    def select(self, h):
        n_keep, smallest = self.config.k * h.shape[0], None
        if self.training and training_group():  # several processes: the k·B largest of the global batch
            n_global = n_keep * torch.distributed.get_world_size()
            mask, smallest = global_batch_topk(h, n_global, batch_topk_mask(h, min(n_global, h.numel())))
        else:
            mask = batch_topk_mask(h, n_keep)
        a = torch.where(mask, h, 0.0)
        if self.training:
            with torch.no_grad():  # EMA of the smallest kept activation
                smallest = smallest if smallest is not None else h[mask].min() if mask.any() else h.new_zeros(())
                if self.threshold < 0:
                    self.threshold.copy_(smallest)
                else:
                    self.threshold.lerp_(smallest, 1 - self.threshold_beta)
        return a

    def encode(self, x):
        h = self.pre_acts(x)
        if self.threshold < 0:  # never trained: fall back to per-sample top-k
            vals, idx = h.topk(self.config.k, dim=-1)
            return torch.zeros_like(h).scatter(1, idx, vals)
        return F.threshold(h, float(self.threshold), 0.0)

    @torch.no_grad()
    def finalize(self, x, chunk: int = 1024):
        """Calibrate θ* so the mean L0 on the sample x is exactly k (valid after any
        training length, unlike an EMA that has not converged)."""
        n_keep = self.config.k * x.shape[0]
        n = self.config.n_atoms
        m = min(n, 8 * self.config.k)
        while True:
            cand = torch.cat([self.pre_acts(x[i:i + chunk]).topk(m, dim=-1).values for i in range(0, len(x), chunk)])
            top = cand.flatten().topk(min(n_keep + 1, cand.numel())).values
            if m == n or not bool((cand[:, -1] > top[-1]).any()):
                break
            m = n  # some sample holds more than m winners: redo exactly
        if top.numel() <= n_keep:  # fewer candidates than requested (tiny n_atoms)
            self.threshold.fill_(0.0)
            return
        self.threshold.copy_(0.5 * (top[n_keep - 1] + top[n_keep].clamp_min(0)))


class ReLUSAE(SparseAutoencoder):
    """Loss ‖x − x̂‖² + λ·Σ_k a_k‖d_k‖, λ warmed up linearly from 0 (avoids early dead atoms)."""

    def encode(self, x):
        return self.pre_acts(x)

    def training_forward(self, x, step):
        a = self.pre_acts(x)
        mse = _mse(x, self.decode(a))
        l1 = (a * self.W_dec.norm(dim=0)).sum(dim=-1).mean()
        loss = mse + self.config.l1_coef * self.sparsity_scale(step) * l1
        active = a > 0
        self.track_firing(active.any(dim=0), x.shape[0])
        info = {"loss": loss.detach(), "mse": mse.detach(), "l1": l1.detach(),
                "l0": active.sum(dim=-1).float().mean(), "dead": self.dead_mask().sum()}
        return loss, info


def _rectangle(u: torch.Tensor) -> torch.Tensor:
    return ((u > -0.5) & (u < 0.5)).to(u.dtype)


class _JumpReLUFn(torch.autograd.Function):
    """z·H(z − θ); dθ via the rectangle-kernel pseudo-derivative (Rajamanoharan et al. 2024)."""

    @staticmethod
    def forward(ctx, z, theta, bandwidth):
        ctx.save_for_backward(z, theta)
        ctx.bandwidth = bandwidth
        return torch.where(z > theta, z, 0.0)

    @staticmethod
    def backward(ctx, grad):
        z, theta = ctx.saved_tensors
        eps = ctx.bandwidth
        grad_theta = (-(theta / eps) * _rectangle((z - theta) / eps) * grad).sum(dim=0)
        return torch.where(z > theta, grad, 0.0), grad_theta, None


class _StepFn(torch.autograd.Function):
    """H(z − θ) with the same pseudo-derivative for θ; no gradient to z."""

    @staticmethod
    def forward(ctx, z, theta, bandwidth):
        ctx.save_for_backward(z, theta)
        ctx.bandwidth = bandwidth
        return (z > theta).to(z.dtype)

    @staticmethod
    def backward(ctx, grad):
        z, theta = ctx.saved_tensors
        eps = ctx.bandwidth
        grad_theta = (-(1.0 / eps) * _rectangle((z - theta) / eps) * grad).sum(dim=0)
        return torch.zeros_like(z), grad_theta, None


class JumpReLUSAE(SparseAutoencoder):
    """Per-feature thresholds θ = exp(log_threshold); loss = MSE + c·(L0/target − 1)²."""

    def __init__(self, config, seed=0):
        super().__init__(config, seed)
        self.log_threshold = nn.Parameter(torch.full((config.n_atoms,), math.log(1e-3)))

    @torch.no_grad()
    def init_from_batch(self, x):
        """Also start each threshold at the quantile where the feature fires on a
        fraction target_l0/F of the batch, so L0 starts at the target instead of F/2."""
        super().init_from_batch(x)
        rank = math.ceil((1.0 - min(1.0, self.config.target_l0 / self.config.n_atoms)) * len(x))
        theta = self.pre_acts(x).kthvalue(min(max(rank, 1), len(x)), dim=0).values.clamp_min(1e-3)
        self.log_threshold.copy_(theta.log())

    def encode(self, x):
        h = self.pre_acts(x)
        return torch.where(h > self.log_threshold.exp(), h, 0.0)

    def training_forward(self, x, step):
        h = self.pre_acts(x)
        theta = self.log_threshold.exp()
        a = _JumpReLUFn.apply(h, theta, self.config.bandwidth)
        mse = _mse(x, self.decode(a))
        l0 = _StepFn.apply(h, theta, self.config.bandwidth).sum(dim=-1).mean()
        sparsity = (l0 / self.config.target_l0 - 1).pow(2)
        loss = mse + self.config.l0_coef * self.sparsity_scale(step) * sparsity
        self.track_firing((a > 0).any(dim=0), x.shape[0])
        info = {"loss": loss.detach(), "mse": mse.detach(), "l0": l0.detach(), "dead": self.dead_mask().sum()}
        return loss, info


_CLASSES = {"topk": TopKSAE, "batchtopk": BatchTopKSAE, "relu": ReLUSAE, "jumprelu": JumpReLUSAE}


def build_sae(config: SAEConfig, seed: int = 0) -> SparseAutoencoder:
    """A freshly initialised SAE of ``config.arch`` (seeded; same seed → same weights)."""
    return _CLASSES[config.arch](config, seed)
