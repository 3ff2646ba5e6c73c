"""The PyTorch side of `npm run bench -- byol`: the same BYOL training step as byol-align's
(SmallCnn encoder, 4096→256 BatchNorm heads, both views in one batched pass, symmetric loss,
Adam, EMA of parameters and BatchNorm statistics), with the same batched tensor augmentations.

Usage: /usr/bin/python3 bench/byol_torch.py THREADS STEPS   (prints one JSON line)
"""
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class SmallCnn(nn.Module):
    def __init__(self, in_channels=1, widths=(32, 64, 128)):
        super().__init__()
        blocks, c = [], in_channels
        for w in widths:
            blocks.append(nn.Sequential(nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU()))
            c = w
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x):
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i < len(self.blocks) - 1:
                x = F.max_pool2d(x, 2)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


def mlp(i, hidden=4096, out=256):
    return nn.Sequential(nn.Linear(i, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, out))


def uniform(n, lo, hi, g):
    return torch.rand(n, generator=g) * (hi - lo) + lo


def coin(n, p, g):
    return (torch.rand(n, generator=g) < p).view(-1, 1, 1, 1)


def augment(images, size, blur_p, solarize_p, g):
    """Mirror of src/modalities/image/augment.ts for one-channel images."""
    x = images.float() / 255
    n, c, h, w = x.shape
    area = uniform(n, 0.08, 1.0, g)
    ratio = uniform(n, math.log(3 / 4), math.log(4 / 3), g).exp()
    cw = (area * ratio * (h / w)).sqrt().clamp(0, 1)
    ch = (area / ratio * (w / h)).sqrt().clamp(0, 1)
    cx = (torch.rand(n, generator=g) * 2 - 1) * (1 - cw)
    cy = (torch.rand(n, generator=g) * 2 - 1) * (1 - ch)
    flip = (torch.rand(n, generator=g) < 0.5).float() * -2 + 1
    z = torch.zeros(n)
    theta = torch.stack([cw * flip, z, cx, z, ch, cy], 1).view(n, 2, 3)
    x = F.grid_sample(x, F.affine_grid(theta, [n, c, size, size], align_corners=False), mode="bilinear", padding_mode="border", align_corners=False)
    # colour jitter with p = 0.8 (brightness, contrast; saturation and hue are no-ops on grey images)
    b = uniform(n, 0.6, 1.4, g).view(-1, 1, 1, 1)
    k = uniform(n, 0.6, 1.4, g).view(-1, 1, 1, 1)
    order = torch.rand(4, generator=g).argsort()
    jittered = x
    for i in order.tolist():
        if i == 0:
            jittered = (jittered * b).clamp(0, 1)
        elif i == 1:
            mean = jittered.mean((1, 2, 3), keepdim=True)
            jittered = (jittered * k + mean * (1 - k)).clamp(0, 1)
    x = torch.where(coin(n, 0.8, g), jittered, x)
    x = x.clone()  # grayscale: already grey (kept for the same op count as byol-align)
    apply = coin(n, blur_p, g)
    sigma = uniform(n, 0.1, 2.0, g)
    radius = max(1, int(round(0.1 * min(size, size))) // 2)
    offsets = torch.arange(-radius, radius + 1).float()
    kernel = (offsets.square().unsqueeze(0) / (sigma.square() * -2).unsqueeze(1)).exp()
    kernel = kernel / kernel.sum(1, keepdim=True)
    per = kernel.unsqueeze(1).expand(n, c, 2 * radius + 1).reshape(n * c, 1, 1, 2 * radius + 1)
    planes = x.reshape(1, n * c, size, size)
    hor = F.conv2d(F.pad(planes, (radius, radius, 0, 0), mode="reflect"), per, groups=n * c)
    ver = F.conv2d(F.pad(hor, (0, 0, radius, radius), mode="reflect"), per.transpose(2, 3), groups=n * c)
    x = torch.where(apply, ver.reshape(n, c, size, size), x)
    x = torch.where(coin(n, solarize_p, g), torch.where(x >= 0.5, 1 - x, x), x)
    return (x - 0.5) / 0.5


def regression(p, z):
    return (2 - 2 * (F.normalize(p, dim=1) * F.normalize(z.detach(), dim=1)).sum(1)).mean()


def main():
    threads, steps = int(sys.argv[1]), int(sys.argv[2])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    batch = 256
    images = torch.randint(0, 256, (batch * 4, 1, 28, 28), dtype=torch.uint8)
    online = nn.ModuleDict({"encoder": SmallCnn(), "projector": mlp(128), "predictor": mlp(256)})
    target = nn.ModuleDict({"encoder": SmallCnn(), "projector": mlp(128)})
    target.load_state_dict({k: v for k, v in online.state_dict().items() if not k.startswith("predictor")})
    for p in target.parameters():
        p.requires_grad_(False)
    for m in target.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.momentum = 0.0
    opt = torch.optim.Adam(online.parameters(), lr=3e-4)
    g = torch.Generator().manual_seed(1)
    online_state = online.state_dict()
    pairs = [(t, online_state[k]) for k, t in target.state_dict().items()]
    floats = [(t, s) for t, s in pairs if t.is_floating_point()]
    counters = [(t, s) for t, s in pairs if not t.is_floating_point()]

    def step(i):
        idx = torch.randperm(images.shape[0], generator=g)[:batch]
        x = images[idx]
        v1 = augment(x, 28, 1.0, 0.0, g)
        v2 = augment(x, 28, 0.1, 0.2, g)
        opt.zero_grad(set_to_none=True)
        both = torch.cat([v1, v2])
        z = online["projector"](online["encoder"](both))
        q = online["predictor"](z)
        with torch.no_grad():
            zt = target["projector"](target["encoder"](both))
        q1, q2 = q.split(batch)
        z1, z2 = zt.split(batch)
        loss = regression(q1, z2) + regression(q2, z1)
        loss.backward()
        opt.step()
        tau = 1 - (1 - 0.99) * (math.cos(math.pi * i / steps) + 1) / 2
        with torch.no_grad():
            torch._foreach_mul_([t for t, _ in floats], tau)
            torch._foreach_add_([t for t, _ in floats], [s for _, s in floats], alpha=1 - tau)
            for t, s in counters:
                t.copy_(s)
            F.normalize(z.detach(), dim=1).std(0).mean().item()  # the collapse monitor, as byol-align logs it
        return loss.item()

    for i in range(3):
        step(i)
    start = time.perf_counter()
    for i in range(steps):
        step(i)
    elapsed = time.perf_counter() - start
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "images_per_s": steps * batch / elapsed, "ms_per_step": elapsed / steps * 1e3}))


if __name__ == "__main__":
    main()
