#!/usr/bin/python3
"""The PyTorch side of `npm run bench -- align`: byol-align's default alignment training step in
PyTorch, from the same initial weights, on the same thread count.

bench/align.ts builds the byol-align model of the `cpu-small` preset, writes it before training as a
`byol-align export` folder (config.json, tokenizer.json, model.safetensors: the online network's
initial weights) and adds bench.json (the views, loss weights, optimizer settings, EMA schedule,
step counts, threads and data set), then runs this script on that folder. Here the network is
python/byol_align_export.py's OnlineNetwork (SmallCnn, the pre-LN text Transformer, the shared
projector and predictor with BatchNorm statistics per modality) loaded strictly from
model.safetensors, so every parameter name and shape must match byol-align's. The step is
src/align/train.ts's:

  - two views per modality, made on tensors as byol-align makes them (the ports below of
    src/modalities/image/augment.ts and color.ts, and of src/modalities/text/views.ts: the same
    operations with the same parameters in the same order; the random numbers differ);
  - each modality's two views through the online network in one batch, and through the EMA target
    (training mode, no gradient), as AlignModel.forwardViews does; with bench.json's precision
    'bf16', both forwards under torch.autocast('cpu', dtype=torch.bfloat16) and their outputs cast
    to float32 before the losses, as AlignTrainer does with train.precision bf16;
  - the objective of src/align/loss.ts with bench.json's weights (the default lightCrossPlusVicReg:
    BYOL's cross term, src/byol/loss.ts, and VICReg's invariance, variance and covariance terms,
    src/align/vicreg.ts);
  - the guard byol-align runs before every update (each term and every gradient's norm read back
    and checked finite), AdamW in its multi-tensor (foreach) form as src/optim/adam.ts runs it,
    with biases and norms out of weight decay and the warm-up-cosine rate (src/byol/optimizer.ts);
  - the EMA of every floating-point parameter and buffer with τ on BYOL's cosine (src/byol/ema.ts),
    and the collapse monitor byol-align logs (src/eval/collapse.ts).

The data: the first (warm-up + timed) × batch images of the data set in a seeded order, decoded
with Pillow as byol-align decodes files (byol_align_export.image_pixels), one caption drawn for each
and tokenized with the run's tokenizer.json, batched before the clock starts: the figure is the
step's, with data that costs nothing to wait for.

bench.json's device ('cpu', 'cuda:N'; `npm run bench -- align --device`) is where the networks, the
views and the step run; each batch is copied there from pinned memory without blocking, as
byol-align copies it, and the clock reads after torch.cuda.synchronize().

Data-parallel (`npm run bench -- dist`): with WORLD_SIZE > 1 in the environment (and RANK,
MASTER_ADDR, MASTER_PORT, as torchrun sets them), each process is one rank of a Gloo process group
and trains its slice of every batch, as a PyTorch user would: the online network's forward in
DistributedDataParallel with its defaults (25 MB buckets, buffers broadcast from rank 0 every
step), BatchNorm on each rank's own rows (PyTorch's SyncBatchNorm refuses CPU tensors), and the
losses over the global batch, the outputs gathered with a gradient as VICReg's reference code does
(FullGatherLayer; byol-align gathers them the same way, src/distributed/global_outputs.ts). Every
rank prints its JSON line; the timed steps start after a barrier.

Usage: /usr/bin/python3 bench/align_torch.py FOLDER   (Debian's python3-torch; prints one JSON line)
"""
import copy
import json
import math
import os
import random
import sys
import time

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import byol_align_export as export  # noqa: E402


def log(message):
    print(f"[align_torch] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Image views: src/modalities/image/augment.ts and color.ts.


def rand(shape, g):
    """Uniform [0, 1) numbers from the view generator, on its device."""
    return torch.rand(shape, generator=g, device=g.device)


def uniform(n, low, high, g):
    return rand(n, g) * (high - low) + low


def coin(n, p, g):
    return (rand(n, g) < p).reshape(-1, 1, 1, 1)


def per_image(factor):
    return factor.reshape(-1, 1, 1, 1)


def grayscale(x):
    if x.shape[1] == 1:
        return x
    r, g, b = x.split(1, 1)
    return r * 0.299 + g * 0.587 + b * 0.114


def blend(x, other, factor):
    f = per_image(factor)
    return (x * f + other * (1 - f)).clamp(0, 1)


def adjust_brightness(x, factor):
    return (x * per_image(factor)).clamp(0, 1)


def adjust_contrast(x, factor):
    return blend(x, grayscale(x).mean((1, 2, 3), keepdim=True), factor)


def adjust_saturation(x, factor):
    return x if x.shape[1] == 1 else blend(x, grayscale(x), factor)


def rgb_to_hsv(x):
    r, g, b = (c.squeeze(1) for c in x.split(1, 1))
    maxc, minc = x.amax(1), x.amin(1)
    flat = maxc == minc  # grey pixels have no hue
    chroma = maxc - minc
    one = torch.ones_like(maxc)
    s = chroma / torch.where(flat, one, maxc)
    divisor = torch.where(flat, one, chroma)
    rc, gc, bc = (maxc - r) / divisor, (maxc - g) / divisor, (maxc - b) / divisor
    is_r = maxc == r
    is_g = (maxc == g) & ~is_r
    is_b = ~(is_r | (maxc == g))
    h = is_r.float() * (bc - gc) + is_g.float() * (rc - bc + 2) + is_b.float() * (gc - rc + 4)
    return (h / 6 + 1).remainder(1), s, maxc


def hsv_to_rgb(h, s, v):
    sector = (h * 6).floor()
    f = h * 6 - sector
    i = sector.long().remainder(6)
    p = (v * (1 - s)).clamp(0, 1)
    q = (v * (1 - s * f)).clamp(0, 1)
    t = (v * (1 - s * (1 - f))).clamp(0, 1)
    # One-hot over the six sectors picks each channel's value: [N, 6, H, W].
    mask = (i.unsqueeze(1) == torch.arange(6, device=v.device).reshape(1, 6, 1, 1)).to(v.dtype)

    def pick(*values):
        return (torch.stack(values, 1) * mask).sum(1, keepdim=True)

    return torch.cat([pick(v, q, p, p, t, v), pick(t, v, v, q, p, p), pick(p, p, t, v, v, q)], 1)


def adjust_hue(x, shift):
    if x.shape[1] == 1:
        return x
    h, s, v = rgb_to_hsv(x)
    return hsv_to_rgb((h + per_image(shift).squeeze(1)).remainder(1), s, v)


def random_resized_crop_flip(x, c, g):
    n, ch, h, w = x.shape
    area = uniform(n, c["cropScale"][0], c["cropScale"][1], g)
    ratio = uniform(n, math.log(c["cropRatio"][0]), math.log(c["cropRatio"][1]), g).exp()
    crop_w = (area * ratio * (h / w)).sqrt().clamp(0, 1)
    crop_h = (area / ratio * (w / h)).sqrt().clamp(0, 1)
    cx = (rand(n, g) * 2 - 1) * (1 - crop_w)
    cy = (rand(n, g) * 2 - 1) * (1 - crop_h)
    flip = (rand(n, g) < c["flipP"]).float() * -2 + 1
    z = torch.zeros(n, device=x.device)
    theta = torch.stack([crop_w * flip, z, cx, z, crop_h, cy], 1).reshape(n, 2, 3)
    grid = F.affine_grid(theta, [n, ch, c["size"], c["size"]], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def color_jitter(x, c, g):
    n = x.shape[0]
    steps = []
    if c["brightness"] > 0:
        f = uniform(n, max(0, 1 - c["brightness"]), 1 + c["brightness"], g)
        steps.append(lambda t, f=f: adjust_brightness(t, f))
    if c["contrast"] > 0:
        f = uniform(n, max(0, 1 - c["contrast"]), 1 + c["contrast"], g)
        steps.append(lambda t, f=f: adjust_contrast(t, f))
    if c["saturation"] > 0:
        f = uniform(n, max(0, 1 - c["saturation"]), 1 + c["saturation"], g)
        steps.append(lambda t, f=f: adjust_saturation(t, f))
    if c["hue"] > 0:
        f = uniform(n, -c["hue"], c["hue"], g)
        steps.append(lambda t, f=f: adjust_hue(t, f))
    # One order of the four per batch, as byol-align draws it.
    jittered = x
    for i in rand(len(steps), g).argsort().tolist():
        jittered = steps[i](jittered)
    return torch.where(coin(n, c["colorJitterP"], g), jittered, x)


def random_grayscale(x, p, g):
    if x.shape[1] == 1:
        return x.clone()
    return torch.where(coin(x.shape[0], p, g), grayscale(x).expand_as(x), x)


def js_round(v):
    """Math.round of JavaScript (halves up), which byol-align's kernel size uses."""
    return math.floor(v + 0.5)


def random_gaussian_blur(x, p, sigma_range, g):
    n, ch, h, w = x.shape
    apply = coin(n, p, g)
    sigma = uniform(n, sigma_range[0], sigma_range[1], g)
    radius = max(1, js_round(0.1 * min(h, w)) // 2)
    offsets = torch.arange(-radius, radius + 1, device=x.device).float()
    kernel = (offsets.square().unsqueeze(0) / (sigma.square() * -2).unsqueeze(1)).exp()
    kernel = kernel / kernel.sum(1, keepdim=True)
    per_channel = kernel.unsqueeze(1).expand(n, ch, 2 * radius + 1).reshape(n * ch, 1, 1, 2 * radius + 1)
    planes = x.reshape(1, n * ch, h, w)
    horizontal = F.conv2d(F.pad(planes, (radius, radius, 0, 0), mode="reflect"), per_channel, groups=n * ch)
    vertical = F.conv2d(F.pad(horizontal, (0, 0, radius, radius), mode="reflect"), per_channel.transpose(2, 3), groups=n * ch)
    return torch.where(apply, vertical.reshape(n, ch, h, w), x)


def random_solarize(x, p, g):
    return torch.where(coin(x.shape[0], p, g), torch.where(x >= 0.5, 1 - x, x), x)


def image_view(images, c, g):
    """augmentView: uint8 [N, C, H, W] → float [N, C, size, size], normalised."""
    x = images.float() / 255
    x = random_resized_crop_flip(x, c, g)
    x = color_jitter(x, c, g)
    x = random_grayscale(x, c["grayscaleP"], g)
    x = random_gaussian_blur(x, c["blurP"], c["blurSigma"], g)
    x = random_solarize(x, c["solarizeP"], g)
    if len(c["mean"]) == 0:
        return x.clone()
    mean, std = (torch.tensor(c[k], device=x.device).reshape(1, -1, 1, 1) for k in ("mean", "std"))
    return (x - mean) / std


# ---------------------------------------------------------------------------------------------
# Text views: src/modalities/text/views.ts ([CLS] first, padding on the right, never moved).


def text_tokens(ids, special):
    return (ids != special["pad"]) & (ids != special["cls"])


def close_up(ids, remove, special):
    length = ids.shape[1]
    kept = (ids != special["pad"]) & ~remove
    position = torch.arange(length, device=ids.device).unsqueeze(0)
    order = torch.where(kept, position, position + length).argsort(1)  # kept first, in order
    return ids.gather(1, order).masked_fill(position >= kept.sum(1, keepdim=True), special["pad"])


def spare_one(chosen, text, like, g):
    everything = chosen.sum(1, keepdim=True) == text.sum(1, keepdim=True)
    spared = rand(like.shape, g).masked_fill(~text, -1).argmax(1, keepdim=True)
    position = torch.arange(like.shape[1], device=like.device).unsqueeze(0)
    return chosen & ~(everything & (position == spared))


def delete_span(ids, p, max_fraction, g, special):
    if p == 0 or max_fraction == 0:
        return ids.clone()
    n = ids.shape[0]
    text = text_tokens(ids, special)
    count = text.sum(1, keepdim=True).float()
    max_span = (count * max_fraction).floor().minimum(count - 1)
    apply = (rand([n, 1], g) < p) & (max_span >= 1)
    span = (rand([n, 1], g) * max_span).floor() + 1
    start = (rand([n, 1], g) * (count - span + 1)).floor()
    rank = text.long().cumsum(1) - 1
    in_span = (rank >= start) & (rank < start + span)
    return close_up(ids, text & in_span & apply, special)


def drop_tokens(ids, rate, g, special):
    if rate == 0:
        return ids.clone()
    text = text_tokens(ids, special)
    drop = (rand(ids.shape, g) < rate) & text
    return close_up(ids, spare_one(drop, text, ids, g), special)


def shuffle_locally(ids, p, window, g, special):
    if p == 0 or window == 0:
        return ids.clone()
    n, length = ids.shape
    text = text_tokens(ids, special)
    position = torch.arange(length, device=ids.device).unsqueeze(0).float()
    apply = (rand([n, 1], g) < p).float()
    noise = rand(ids.shape, g) * (window + 1) * apply
    pad_key = position + (length + window + 1)
    key = torch.where(text, position + noise, torch.where(ids == special["pad"], pad_key, position))
    return ids.gather(1, key.argsort(1))


def mask_tokens(ids, rate, g, special):
    if rate == 0:
        return ids.clone()
    text = text_tokens(ids, special)
    masked = (rand(ids.shape, g) < rate) & text
    return ids.masked_fill(spare_one(masked, text, ids, g), special["mask"])


def text_view(ids, c, g, special):
    x = delete_span(ids, c["spanDeletionP"], c["spanMaxFraction"], g, special)
    x = drop_tokens(x, c["tokenDropoutRate"], g, special)
    x = shuffle_locally(x, c["shuffleP"], c["shuffleWindow"], g, special)
    return mask_tokens(x, c["maskRate"], g, special)


# ---------------------------------------------------------------------------------------------
# The objective: src/byol/loss.ts, src/align/vicreg.ts, src/align/loss.ts.


def regression(q, z):
    return (2 - 2 * (F.normalize(q, dim=1) * F.normalize(z.detach(), dim=1)).sum(1)).mean()


def symmetric_byol(q1, q2, z1, z2):
    return regression(q1, z2) + regression(q2, z1)


def variance_term(z, gamma=1.0, eps=1e-4):
    return (gamma - (z.var(0, unbiased=True) + eps).sqrt()).relu().mean()


def covariance_term(z):
    n, d = z.shape
    centred = z - z.mean(0, keepdim=True)
    cov = centred.t().mm(centred) / (n - 1)
    diagonal = centred.square().sum(0) / (n - 1)
    return (cov.square().sum() - diagonal.square().sum()) / d


def invariance_term(a, b):
    return (a - b).square().mean()


def alignment_loss(outputs, weights):
    """The weighted sum and each term's values, in alignmentLoss's order; a weight of 0 skips its term."""
    if weights.get("infoNceWeight", 0) > 0:
        raise ValueError("bench.json: infoNceWeight > 0, but InfoNCE is not ported here (the default objective has none)")
    names = list(outputs)
    ordered = [(m, n) for m in names for n in names if n != m]
    unordered = [(m, n) for i, m in enumerate(names) for n in names[i + 1 :]]
    terms = [
        ("intraWeight", lambda: [symmetric_byol(*outputs[m]["q"], *outputs[m]["z"]) for m in names]),
        ("crossWeight", lambda: [symmetric_byol(*outputs[m]["q"], *outputs[n]["z"]) for m, n in ordered]),
        (
            "invarianceWeight",
            lambda: [
                (invariance_term(outputs[m]["p"][0], outputs[n]["p"][1]) + invariance_term(outputs[m]["p"][1], outputs[n]["p"][0])) / 2
                for m, n in unordered
            ],
        ),
        ("varianceWeight", lambda: [(variance_term(outputs[m]["p"][0]) + variance_term(outputs[m]["p"][1])) / 2 for m in names]),
        ("covarianceWeight", lambda: [(covariance_term(outputs[m]["p"][0]) + covariance_term(outputs[m]["p"][1])) / 2 for m in names]),
    ]
    weighted, values = [], []
    for key, compute in terms:
        weight = weights.get(key, 0)
        if weight == 0:
            continue
        term = compute()
        values += term
        if term:
            weighted.append(sum(term[1:], term[0]) * weight)
    return sum(weighted[1:], weighted[0]), values


# ---------------------------------------------------------------------------------------------
# Schedules: src/optim/schedule.ts (warm-up then cosine) and src/byol/ema.ts (τ).


def lr_at(step, o):
    peak, warmup, total = o["peakLr"], o["warmupSteps"], o["totalSteps"]
    if step < warmup:
        return peak * step / warmup
    if o["lrSchedule"] == "constant" or total == warmup:
        return peak
    progress = min(step - warmup, total - warmup) / (total - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * progress))


def tau_at(step, total, ema):
    if ema["tauSchedule"] == "constant" or total <= 0:
        return ema["tauBase"]
    progress = min(max(step / total, 0), 1)
    return 1 - (1 - ema["tauBase"]) * (math.cos(math.pi * progress) + 1) / 2


# ---------------------------------------------------------------------------------------------
# The networks: OnlineNetwork of the export, and its EMA target.


def project(net, name, features):
    return net.projectors["shared"](features, name) if net.shared else net.projectors[name](features)


def predict(net, name, projections):
    return net.predictors["shared"](projections, name) if net.shared else net.predictors[name](projections)


def ema_target(online):
    """A copy of the online network without predictors: no gradient, BatchNorm statistics moved only by the EMA."""
    target = copy.deepcopy(online)
    target.predictors = None
    for p in target.parameters():
        p.requires_grad_(False)
    for m in target.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = 0.0
    return target


def optimizer_for(online, o):
    """AdamW (or Adam) as src/byol/optimizer.ts makes it: biases and 1-d parameters without weight decay."""
    regular, excluded = [], []
    for name, p in online.named_parameters():
        (excluded if p.ndim < 2 or name == "bias" or name.endswith(".bias") else regular).append(p)
    groups = [{"params": regular}, {"params": excluded, "weight_decay": 0.0}]
    if o["optimizer"] == "adamw":
        return torch.optim.AdamW(groups, lr=o["peakLr"], weight_decay=o["weightDecay"], foreach=True)
    if o["optimizer"] == "adam":
        return torch.optim.Adam(groups, lr=o["peakLr"], weight_decay=o["weightDecay"], foreach=True)
    raise ValueError(f"bench.json: optimizer {o['optimizer']!r} is not ported here; expected 'adamw' or 'adam'")


class OnlineForward(nn.Module):
    """The online network's part of a step as one module, so that DistributedDataParallel, which
    averages the gradients of what its forward ran, can wrap it: each modality's views through the
    encoder, the projector and the predictor."""

    def __init__(self, online):
        super().__init__()
        self.online = online

    def forward(self, inputs):
        out = {}
        for name, both in inputs.items():
            p = project(self.online, name, self.online.encoders[name](both))
            out[name] = (p, predict(self.online, name, p))
        return out


class FullGatherLayer(torch.autograd.Function):
    """VICReg's all_gather with a gradient (facebookresearch/vicreg, main_vicreg.py): every rank's
    rows; backward sums the ranks' gradients and keeps this rank's slice."""

    @staticmethod
    def forward(ctx, x):
        output = [torch.zeros_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(output, x)
        return tuple(output)

    @staticmethod
    def backward(ctx, *grads):
        all_gradients = torch.stack(grads)
        dist.all_reduce(all_gradients)
        return all_gradients[dist.get_rank()]


def gather_rows(x, with_grad):
    """[n, d] on every rank → [world·n, d], the ranks' rows in rank order."""
    if with_grad:
        return torch.cat(FullGatherLayer.apply(x))
    parts = [torch.zeros_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x)
    return torch.cat(parts)


def global_outputs(local, n):
    """Each output's two views over the global batch: every modality's online outputs in one
    gather with a gradient and the target's in one without, as byol-align gathers them."""
    names = list(local)

    def gathered(key, with_grad):
        # Per modality [2n, d] (view 1's rows, then view 2's) → columns side by side, gathered,
        # then each rank's view 1 rows and view 2 rows put together.
        widths = [local[m][key].shape[1] for m in names]
        rows = gather_rows(torch.cat([local[m][key] for m in names], dim=1), with_grad)
        per_rank = rows.split(2 * n)
        views = [torch.cat([r[:n] for r in per_rank]), torch.cat([r[n:] for r in per_rank])]
        columns = [v.split(widths, dim=1) for v in views]
        return {m: (columns[0][i], columns[1][i]) for i, m in enumerate(names)}

    p, q, z = gathered("p", True), gathered("q", True), gathered("z", False)
    return {m: {"p": p[m], "q": q[m], "z": z[m]} for m in names}


# ---------------------------------------------------------------------------------------------
# The data.


def load_batches(exported, bench, steps):
    """`steps` batches of (uint8 images [B, C, size, size], token ids [B, L]) from the data set."""
    batch = bench["batchSize"]
    with open(bench["data"]["annotations"], encoding="utf8") as f:
        coco = json.load(f)
    captions = {}
    for a in coco["annotations"]:
        captions.setdefault(a["image_id"], []).append(a["caption"])
    images = [im for im in coco["images"] if im["id"] in captions]
    rng = random.Random(bench["seed"])
    rng.shuffle(images)
    chosen = [images[i % len(images)] for i in range(steps * batch)]
    log(f"decoding {len(chosen)} of the {len(images)} images with Pillow ...")
    settings = exported.config["image"]
    pixels = torch.stack([export.image_pixels(os.path.join(bench["data"]["images"], im["file_name"]), settings) for im in chosen])
    texts = [rng.choice(captions[im["id"]]) for im in chosen]
    return [(pixels[k * batch : (k + 1) * batch], exported.text_input(texts[k * batch : (k + 1) * batch])) for k in range(steps)]


# ---------------------------------------------------------------------------------------------


def main(argv):
    if len(argv) != 1:
        print(f"usage: {os.path.basename(sys.argv[0])} FOLDER\n\n{__doc__}", file=sys.stderr)
        return 2
    folder = argv[0]
    with open(os.path.join(folder, "bench.json"), encoding="utf8") as f:
        bench = json.load(f)
    torch.set_num_threads(bench["threads"])
    warmup, timed = bench["warmupSteps"], bench["timedSteps"]
    optimization, ema, weights = bench["optimization"], bench["ema"], bench["weights"]
    views, special = bench["views"], bench["specialIds"]
    precision = bench.get("precision", "fp32")
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"bench.json: precision {precision!r} is not run here; expected 'fp32' or 'bf16'")
    device = torch.device(bench.get("device", "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"bench.json: device {device} asks for CUDA, but torch {torch.__version__} here has none (torch.cuda.is_available() is False)")
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        if bench["batchSize"] % world != 0:
            raise ValueError(f"WORLD_SIZE {world} does not divide the batch of {bench['batchSize']}")
        dist.init_process_group("gloo", rank=rank, world_size=world)

    exported = export.load_export(folder)  # strict: every name and shape of byol-align's online network
    online = exported.network.to(device).train()
    target = ema_target(online)
    forward = DistributedDataParallel(OnlineForward(online)) if world > 1 else OnlineForward(online)
    parameters = sum(p.numel() for p in online.parameters())
    optimizer = optimizer_for(online, optimization)
    named = list(online.named_parameters())
    online_state = online.state_dict()
    pairs = [(t, online_state[k]) for k, t in target.state_dict().items()]
    floats = [(t, s) for t, s in pairs if t.is_floating_point()]
    counters = [(t, s) for t, s in pairs if not t.is_floating_point()]
    batches = load_batches(exported, bench, warmup + timed)
    if world > 1:
        share = bench["batchSize"] // world
        batches = [(images[rank * share : (rank + 1) * share], ids[rank * share : (rank + 1) * share]) for images, ids in batches]
    view_generator = torch.Generator(device=device)

    def step(k, images, ids):
        # Every draw of step k from (seed, k), as byol-align seeds its steps.
        torch.manual_seed(bench["seed"] * 1_000_003 + 2 * k)
        view_generator.manual_seed(bench["seed"] * 1_000_003 + 2 * k + 1)
        # Copied to the device as byol-align copies each batch (pinned, non-blocking on CUDA).
        images, ids = (t.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else t for t in (images, ids))
        inputs = {
            "image": [image_view(images, c, view_generator) for c in views["image"]],
            "text": [text_view(ids, c, view_generator, special) for c in views["text"]],
        }
        for group in optimizer.param_groups:
            group["lr"] = lr_at(k, optimization)
        optimizer.zero_grad(set_to_none=True)
        # Under bf16 the forward runs in autocast and its outputs become float32 for the losses.
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            both = {name: torch.cat(views) for name, views in inputs.items()}
            online_out = forward(both)
            with torch.no_grad():
                target_out = {name: project(target, name, target.encoders[name](x)) for name, x in both.items()}
        n = next(iter(inputs.values()))[0].shape[0]
        local = {name: {"p": p.float(), "q": q.float(), "z": target_out[name].float()} for name, (p, q) in online_out.items()}
        if world > 1:
            outputs = global_outputs(local, n)
        else:
            outputs = {name: {key: t.split(n) for key, t in o.items()} for name, o in local.items()}
        total, values = alignment_loss(outputs, weights)
        total.backward()
        # byol-align's guard before the update: the terms and every gradient's norm, read back once.
        grads = [p.grad for _, p in named if p.grad is not None]
        checked = torch.cat([torch.stack([total.detach()] + [v.detach() for v in values]), torch.stack(torch._foreach_norm(grads))]).tolist()
        if not all(math.isfinite(v) for v in checked):
            raise FloatingPointError(f"step {k + 1}: a loss term or a gradient is not finite")
        optimizer.step()
        tau = tau_at(k, optimization["totalSteps"], ema)
        with torch.no_grad():
            torch._foreach_mul_([t for t, _ in floats], tau)
            torch._foreach_add_([t for t, _ in floats], [s for _, s in floats], alpha=1 - tau)
            for t, s in counters:
                t.copy_(s)
            for o in outputs.values():
                F.normalize(o["p"][0].detach().float(), dim=1).std(0).mean().item()  # the collapse monitor
        return checked[0]

    seconds, first_loss = 0.0, None
    for k, (images, ids) in enumerate(batches):
        if world > 1 and k == warmup:
            dist.barrier()  # the timed steps start on every rank at once
        synchronize()
        started = time.perf_counter()
        loss = step(k, images, ids)
        synchronize()
        if k >= warmup:
            seconds += time.perf_counter() - started
        if first_loss is None:
            first_loss = loss
    print(
        json.dumps(
            {
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "precision": precision,
                "device": str(device),
                "parameters": parameters,
                "parameter_tensors": len(named),
                "first_loss": first_loss,
                "rank": rank,
                "world_size": world,
                "pairs_per_s": timed * bench["batchSize"] / seconds,
                "ms_per_step": seconds / timed * 1e3,
            }
        )
    )
    if world > 1:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
