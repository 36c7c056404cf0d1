"""The ``mamba_scan`` projector: bidirectional Mamba over all frame patches, 4x4 pooling, MLP.

Parameter names follow the official module (``mambaModel_h.layers.0.mixer.A_log``,
``mambaModel_h.norm_f.weight``, ``readout.0.weight`` ...), so the projector weights of an official
checkpoint (``model.mm_projector.*``) load after stripping that prefix. The Mamba block is the
Vision-Mamba "v2" bidirectional variant: one set of SSM parameters per direction, shared input
and output projections, the two directions summed. The selective scan is plain PyTorch (a
chunked closed form of the recurrence); ``mamba_ssm``'s CUDA kernel is used when installed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _kernel_scan():
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except ImportError:
        return None
    return selective_scan_fn


def selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    z: torch.Tensor,
    delta_bias: torch.Tensor,
    chunk: int | None = None,
) -> torch.Tensor:
    """Mamba's selective scan, ``y = SSM(u) * silu(z)``, for u/delta/z (b, d, l), A (d, n), B/C (b, n, l).

    The recurrence ``h_t = exp(dt_t A) h_{t-1} + dt_t B_t u_t`` is evaluated in two levels so that
    the Python loops are short: a scan over the steps of a chunk (all chunks at once), a scan
    over chunk boundaries carrying the state, then the carried state decayed into every step.
    Only exponentials of non-positive numbers appear, so it is as stable as the plain loop.
    """
    dtype = u.dtype
    u, delta, B, C, z = (t.float() for t in (u, delta, B, C, z))
    delta = F.softplus(delta + delta_bias.float()[None, :, None])
    batch, dim, length = u.shape
    states = A.shape[1]
    size = chunk or max(1, math.isqrt(length))
    chunks = -(-length // size)
    pad = chunks * size - length
    step_log = delta.unsqueeze(-1) * A.float()[None, :, None, :]  # (b, d, l, n), <= 0
    drive = (delta * u).unsqueeze(-1) * B.transpose(1, 2).unsqueeze(1)  # (b, d, l, n)
    if pad:
        step_log = F.pad(step_log, (0, 0, 0, pad))
        drive = F.pad(drive, (0, 0, 0, pad))
    # time-major layout (step, b, d, chunk, n) so the step loop reads and writes contiguous slabs
    step_log = step_log.view(batch, dim, chunks, size, states).permute(3, 0, 1, 2, 4).contiguous()
    drive = drive.view(batch, dim, chunks, size, states).permute(3, 0, 1, 2, 4).contiguous()
    step_decay = step_log.exp()
    local = torch.empty_like(drive)
    running = drive.new_zeros(batch, dim, chunks, states)
    for t in range(size):
        running = torch.addcmul(drive[t], step_decay[t], running)
        local[t] = running
    within = torch.cumsum(step_log, dim=0).exp()  # decay from a chunk's start to each of its steps
    carried = [drive.new_zeros(batch, dim, states)]
    for c in range(chunks - 1):
        carried.append(torch.addcmul(local[-1, :, :, c], within[-1, :, :, c], carried[-1]))
    full = torch.addcmul(local, within, torch.stack(carried, dim=2).unsqueeze(0))
    full = full.permute(1, 2, 3, 0, 4).reshape(batch, dim, chunks * size, states)[:, :, :length]
    y = torch.einsum("bdln,bnl->bdl", full, C) + u * D.float()[None, :, None]
    return (y * F.silu(z)).to(dtype)


class RMSNorm(nn.Module):
    """Root-mean-square norm with a weight and no bias (as mamba_ssm's RMSNorm)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (normed * self.weight.float()).to(x.dtype)


class BiMamba(nn.Module):
    """Bidirectional Mamba mixer (Vision Mamba ``bimamba_type="v2"``), d_state 16, d_conv 4, expand 2."""

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2) -> None:
        super().__init__()
        self.d_inner = expand * d_model
        self.d_state = d_state
        self.dt_rank = math.ceil(d_model / 16)
        self.in_proj = nn.Linear(d_model, self.d_inner * 2, bias=False)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)
        for suffix in ("", "_b"):
            conv = nn.Conv1d(self.d_inner, self.d_inner, d_conv, groups=self.d_inner, padding=d_conv - 1)
            setattr(self, f"conv1d{suffix}", conv)
            setattr(self, f"x_proj{suffix}", nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False))
            setattr(self, f"dt_proj{suffix}", nn.Linear(self.dt_rank, self.d_inner, bias=True))
            a_init = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(self.d_inner, 1)
            setattr(self, f"A{suffix}_log", nn.Parameter(a_init.log()))
            setattr(self, f"D{suffix}", nn.Parameter(torch.ones(self.d_inner)))
        self._init_dt()

    def _init_dt(self, dt_min: float = 1e-3, dt_max: float = 0.1) -> None:
        """Mamba's initialisation of the step size (matters only for random-weight models)."""
        with torch.no_grad():
            for proj in (self.dt_proj, self.dt_proj_b):
                nn.init.uniform_(proj.weight, -self.dt_rank**-0.5, self.dt_rank**-0.5)
                dt = torch.exp(torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
                proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))

    def _direction(self, xz: torch.Tensor, suffix: str) -> torch.Tensor:
        conv: nn.Conv1d = getattr(self, f"conv1d{suffix}")
        x_proj: nn.Linear = getattr(self, f"x_proj{suffix}")
        dt_proj: nn.Linear = getattr(self, f"dt_proj{suffix}")
        a_log: torch.Tensor = getattr(self, f"A{suffix}_log")
        d_skip: torch.Tensor = getattr(self, f"D{suffix}")
        length = xz.shape[-1]
        x, z = xz.chunk(2, dim=1)
        x = F.silu(conv(x)[..., :length])
        dt, b_in, c_in = x_proj(x.transpose(1, 2)).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = (dt @ dt_proj.weight.t()).transpose(1, 2)
        A = -torch.exp(a_log.float())
        args = (x, delta.contiguous(), A, b_in.transpose(1, 2).contiguous(), c_in.transpose(1, 2).contiguous())
        kernel = _kernel_scan() if x.is_cuda else None
        if kernel is not None:
            return kernel(*args, D=d_skip.float(), z=z.contiguous(), delta_bias=dt_proj.bias.float(),
                          delta_softplus=True)
        return selective_scan(*args, D=d_skip, z=z, delta_bias=dt_proj.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        xz = self.in_proj(hidden).transpose(1, 2)
        forward = self._direction(xz, "")
        backward = self._direction(xz.flip(-1), "_b")
        return self.out_proj((forward + backward.flip(-1)).transpose(1, 2))


class MambaBlock(nn.Module):
    """Pre-norm residual block: ``mixer(norm(residual))`` (the add is deferred to the next norm)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.mixer = BiMamba(dim)
        self.norm = RMSNorm(dim)

    def forward(self, hidden: torch.Tensor, residual: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        residual = hidden if residual is None else residual + hidden
        return self.mixer(self.norm(residual)), residual


class MambaStack(nn.Module):
    """``depth`` Mamba blocks and a final RMSNorm over ``hidden + residual``."""

    def __init__(self, dim: int, depth: int = 1) -> None:
        super().__init__()
        self.layers = nn.ModuleList(MambaBlock(dim) for _ in range(depth))
        self.norm_f = RMSNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden, residual = x, None
        for layer in self.layers:
            hidden, residual = layer(hidden, residual)
        return self.norm_f(hidden + residual)


class MambaScanProjector(nn.Module):
    """``(b, frames, patches, vision_width)`` -> ``(b, frames * pooled_patches, lm_width)``."""

    def __init__(self, vision_width: int, lm_width: int, mamba_depth: int = 1, mlp_depth: int = 2,
                 pool: int = 4) -> None:
        super().__init__()
        self.pool = pool
        self.mambaModel_h = MambaStack(vision_width, mamba_depth)
        layers: list[nn.Module] = [nn.Linear(vision_width, lm_width)]
        for _ in range(1, mlp_depth):
            layers += [nn.GELU(), nn.Linear(lm_width, lm_width)]
        self.readout = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        batch, frames, patches, width = features.shape
        side = math.isqrt(patches)
        if side * side != patches:
            raise ValueError(f"mamba_scan needs a square patch grid, got {patches} patches per frame")
        scanned = self.mambaModel_h(features.reshape(batch, frames * patches, width))
        grid = scanned.reshape(batch, frames, side, side, width).permute(0, 4, 1, 2, 3)
        pooled = F.avg_pool3d(grid, kernel_size=(1, self.pool, self.pool), stride=(1, self.pool, self.pool))
        tokens = pooled.flatten(2).transpose(1, 2)
        return self.readout(tokens)
