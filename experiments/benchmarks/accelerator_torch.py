"""The PyTorch side of `accelerator.py`: the MoCoV2 step (torchvision ResNet) and the UNet fine-tuning step
(segmentation_models_pytorch), each with its augmentation on the device, AMP bf16 and channels_last.

Both augment on the device with the same operations as cemjax's recipes (docs/method.md §2 and §4): one
bilinear resampling per view for rotation + resized crop + flips (`F.affine_grid` / `F.grid_sample`), then the
photometry (MoCoV2: brightness/contrast in a random order, 13-tap Gaussian blur p 0.5, Gaussian noise p 0.5;
fine-tuning: brightness/contrast p 0.5, the mask sampled nearest). The draws follow the same distributions; the
transforms are not bit-identical to cemjax's (torch rotates in normalised coordinates of a square frame), which
changes nothing in the work done. BatchNorm uses whole-batch statistics (one GPU, no shuffle-BN groups).

A built step is a `run(n)` that performs n steps and waits for the device; `info` holds its notes and memory.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F

BLUR_TAPS = 13


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def synchronize(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def reset_peak(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)


def peak_bytes(dev: torch.device) -> int | None:
    """Peak bytes held by PyTorch tensors on `dev` since `reset_peak` (None on CPU)."""
    return int(torch.cuda.max_memory_allocated(dev)) if dev.type == "cuda" else None


def _amp(dev: torch.device):
    """AMP bf16 on CUDA; float32 on CPU (tiny runs), which CPUs without bf16 units run many times faster."""
    return torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda")


def _uniform(gen, n: int, lo: float, hi: float, dev) -> torch.Tensor:
    return torch.rand(n, device=dev, generator=gen) * (hi - lo) + lo


def _coin(gen, n: int, p: float, dev) -> torch.Tensor:
    return torch.rand(n, device=dev, generator=gen) < p


def _box(gen, n: int, scale, ratio, dev):
    """A RandomResizedCrop box per sample in normalised coordinates of the frame ([-1, 1]²): half-sides
    (w, h) as fractions of the frame's, centre (cx, cy), the box inside the frame."""
    area = _uniform(gen, n, *scale, dev)
    r = torch.exp(_uniform(gen, n, math.log(ratio[0]), math.log(ratio[1]), dev))
    w, h = torch.sqrt(area * r).clamp(max=1.0), torch.sqrt(area / r).clamp(max=1.0)
    return w, h, _uniform(gen, n, -1, 1, dev) * (1 - w), _uniform(gen, n, -1, 1, dev) * (1 - h)


def _flips_and_angle(gen, n: int, p_rotate: float, dev):
    sign = lambda: torch.where(_coin(gen, n, 0.5, dev), -1.0, 1.0)  # noqa: E731
    angle = torch.where(_coin(gen, n, p_rotate, dev), _uniform(gen, n, -math.pi, math.pi, dev), 0.0)
    return sign(), sign(), torch.cos(angle), torch.sin(angle)


def _resample(x: torch.Tensor, theta: torch.Tensor, size: int, mode: str, padding: str) -> torch.Tensor:
    grid = F.affine_grid(theta, [x.shape[0], x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode=padding, align_corners=False)


def _blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur [B, 1, H, W] with σ per sample (σ 0: identity), reflect borders."""
    b = x.shape[0]
    k = torch.arange(BLUR_TAPS, device=x.device, dtype=x.dtype) - BLUR_TAPS // 2
    s = sigma.clamp(min=1e-3)[:, None]
    taps = torch.where(sigma[:, None] > 0, torch.exp(-0.5 * (k / s) ** 2), (k == 0).to(x.dtype))
    taps = taps / taps.sum(1, keepdim=True)
    pad = BLUR_TAPS // 2
    y = F.pad(x.transpose(0, 1), (pad, pad, pad, pad), mode="reflect")  # [1, B, H + 2p, W + 2p]
    y = F.conv2d(y, taps[:, None, None, :], groups=b)
    y = F.conv2d(y, taps[:, None, :, None], groups=b)
    return y.transpose(0, 1)


def moco_views(images: torch.Tensor, size: int, mean: float, std: float, gen) -> torch.Tensor:
    """One MoCoV2 view per sample: uint8 [B, 1, H, W] (square) → float32 [B, 1, size, size], normalised."""
    n, dev = images.shape[0], images.device
    x = images.float() / 255.0
    w, h, cx, cy = _box(gen, n, (0.2, 1.0), (3 / 4, 4 / 3), dev)
    fx, fy, cos, sin = _flips_and_angle(gen, n, 0.5, dev)
    theta = torch.stack([torch.stack([cos * w * fx, -sin * h * fy, cos * cx - sin * cy], 1),
                         torch.stack([sin * w * fx, cos * h * fy, sin * cx + cos * cy], 1)], 1)  # fmt: skip
    x = _resample(x, theta, size, "bilinear", "zeros")
    b = _uniform(gen, n, 0.6, 1.4, dev)[:, None, None, None]
    c = _uniform(gen, n, 0.6, 1.4, dev)[:, None, None, None]
    bright = lambda y: (y * b).clamp(0, 1)  # noqa: E731
    contrast = lambda y: (c * y + (1 - c) * y.mean((1, 2, 3), keepdim=True)).clamp(0, 1)  # noqa: E731
    x = torch.where(_coin(gen, n, 0.5, dev)[:, None, None, None], bright(contrast(x)), contrast(bright(x)))
    x = _blur(x, torch.where(_coin(gen, n, 0.5, dev), _uniform(gen, n, 0.1, 2.0, dev), 0.0))
    log_var = _uniform(gen, n, math.log(1e-5), math.log(1e-4), dev)
    noise_std = torch.where(_coin(gen, n, 0.5, dev), torch.exp(0.5 * log_var), 0.0)[:, None, None, None]
    x = (x + noise_std * torch.randn(x.shape, device=dev, generator=gen)).clamp(0, 1)
    return ((x - mean) / std).contiguous(memory_format=torch.channels_last)


def seg_views(images: torch.Tensor, masks: torch.Tensor, size: int, mean: float, std: float, gen):
    """Fine-tuning crops: uint8 [B, 1, H, W] images and masks → (float32 [B, 1, size, size] normalised,
    float32 {0, 1} masks [B, 1, size, size])."""
    n, dev = images.shape[0], images.device
    w, h, cx, cy = _box(gen, n, (0.08, 1.0), (0.5, 1.5), dev)
    fx, fy, cos, sin = _flips_and_angle(gen, n, 0.5, dev)
    theta = torch.stack([torch.stack([w * cos * fx, -w * sin * fy, cx], 1),
                         torch.stack([h * sin * fx, h * cos * fy, cy], 1)], 1)  # fmt: skip
    x = _resample(images.float() / 255.0, theta, size, "bilinear", "reflection")
    m = _resample(masks.float(), theta, size, "nearest", "reflection")
    jitter = _coin(gen, n, 0.5, dev)
    alpha = torch.where(jitter, _uniform(gen, n, 0.7, 1.3, dev), 1.0)[:, None, None, None]
    beta = torch.where(jitter, _uniform(gen, n, -0.3, 0.3, dev), 0.0)[:, None, None, None]
    x = (alpha * x + beta).clamp(0, 1)
    fmt = torch.channels_last
    return ((x - mean) / std).contiguous(memory_format=fmt), m.contiguous(memory_format=fmt)


def _sgd(params, lr: float, dev):
    try:
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=1e-4, fused=dev.type == "cuda")
    except (RuntimeError, TypeError):  # a build without the fused kernel
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=1e-4, foreach=True)


def _resnet(depth: int, embed_dim: int, dev) -> torch.nn.Module:
    """torchvision ResNet with a 1-channel stem and MoCoV2's MLP head, channels_last on `dev`."""
    import torchvision

    net = getattr(torchvision.models, f"resnet{depth}")(num_classes=embed_dim)
    net.conv1 = torch.nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    width = net.fc.in_features
    net.fc = torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, embed_dim))
    return net.to(dev, memory_format=torch.channels_last)


def moco_step(depth: int, size: int, queue: int, images_u8, norms, *, compile_model: bool, embed_dim: int = 128,
              momentum: float = 0.999, temperature: float = 0.2):  # fmt: skip
    """The MoCoV2 step on uint8 [B, H, W, 1] patches (numpy): both views, key encoder by momentum on a shuffled
    batch, InfoNCE against the queue [K, D] (float32), SGD(0.9, wd 1e-4), enqueue. → (run(n), info)."""
    dev = device()
    reset_peak(dev)
    batch = images_u8.shape[0]
    images = torch.from_numpy(images_u8).permute(0, 3, 1, 2).contiguous().to(dev)  # [B, 1, H, W]
    net = _resnet(depth, embed_dim, dev)
    key_net = copy.deepcopy(net).requires_grad_(False)
    q_params, k_params = list(net.parameters()), list(key_net.parameters())
    query, key = (torch.compile(net), torch.compile(key_net)) if compile_model else (net, key_net)
    opt = _sgd(q_params, 0.015 * batch / 128, dev)
    bank = F.normalize(torch.randn(queue, embed_dim, device=dev), dim=1)
    labels = torch.zeros(batch, dtype=torch.long, device=dev)
    gen = torch.Generator(device=dev).manual_seed(0)
    state = {"ptr": 0}

    def step():
        view_q, view_k = moco_views(images, size, *norms, gen), moco_views(images, size, *norms, gen)
        with torch.no_grad():
            torch._foreach_mul_(k_params, momentum)
            torch._foreach_add_(k_params, q_params, alpha=1 - momentum)
            order = torch.randperm(batch, device=dev, generator=gen)
            with _amp(dev):
                shuffled = key(view_k[order])
            k = torch.empty_like(shuffled, dtype=torch.float32).index_copy_(0, order, F.normalize(shuffled.float()))
        with _amp(dev):
            out = query(view_q)
        q = F.normalize(out.float(), dim=1)
        logits = torch.cat([(q * k).sum(1, keepdim=True), q @ bank.T], 1) / temperature
        loss = F.cross_entropy(logits, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        bank[state["ptr"] : state["ptr"] + batch] = k
        state["ptr"] = (state["ptr"] + batch) % queue

    def run(n: int) -> None:
        for _ in range(n):
            step()
        synchronize(dev)

    return run, {"device": dev}


def load_smp():
    """segmentation_models_pytorch, or None where it is not installed (it is the fine-tuning row's baseline
    only, an optional dependency)."""
    try:
        import segmentation_models_pytorch
    except ImportError:
        return None
    return segmentation_models_pytorch


def smp_step(smp, encoder: str, crop: int, images_u8, masks_u8, norms, *, total_steps: int = 10**6):
    """smp.Unet(encoder, in_channels=1, classes=1) fine-tuning step on uint8 [B, C, C, 1] crops: augmentation,
    BCE-with-logits, AdamW(0.003, wd 0.1) + OneCycleLR, as the reference trains. → (run(n), info)."""
    dev = device()
    reset_peak(dev)
    to_dev = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).contiguous().to(dev)  # noqa: E731
    images, masks = to_dev(images_u8), to_dev(masks_u8)
    model = smp.Unet(encoder, encoder_weights=None, in_channels=1, classes=1)
    model = model.to(dev, memory_format=torch.channels_last).train()
    try:
        opt = torch.optim.AdamW(model.parameters(), lr=0.003, weight_decay=0.1, fused=dev.type == "cuda")
    except (RuntimeError, TypeError):
        opt = torch.optim.AdamW(model.parameters(), lr=0.003, weight_decay=0.1, foreach=True)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, 0.003, total_steps=total_steps)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    gen = torch.Generator(device=dev).manual_seed(0)

    def step():
        x, m = seg_views(images, masks, crop, *norms, gen)
        with _amp(dev):
            logits = model(x)
        loss = loss_fn(logits.float(), m)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()

    def run(n: int) -> None:
        for _ in range(n):
            step()
        synchronize(dev)

    return run, {"device": dev}
