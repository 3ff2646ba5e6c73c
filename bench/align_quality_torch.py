#!/usr/bin/python3
"""The PyTorch peer of issue 18, recipe (b): a deliberately plain image-text aligner on the icon
data set, at the main job's budget, to tell what the objective costs from what the pipeline costs.

CLIP's symmetric InfoNCE (Radford et al. 2021, arXiv:2103.00020) with a learnable temperature
(initial 1/0.07, logit scale capped at 100), a small CNN on 64-px images, a bag-of-words text
encoder (mean of word embeddings, then an MLP), mild augmentation (crop of 50-100% of the area,
horizontal flip, brightness/contrast/saturation jitter of +-0.2). Same data, split and budget as
`byol-align train --preset cpu-small` (3 epochs, batch 256, AdamW 1e-3, weight decay 1e-4, 10%
warm-up then cosine, one caption drawn per image per epoch, seed 0), one CPU thread.

Evaluation follows src/eval/retrieval.ts exactly (each caption belongs to its one image, ties count
against the query) and, as a second protocol, counts a caption as relevant to every image that has
a caption of the same text (`text` protocol, the one of the issue's external benchmark). It prints
one JSON line per collection and protocol and writes them all to --json.

Recipe (a), `--encoders project --run RUN_DIR`, swaps in byol-align's own encoders and head, read
from a byol-align run's modalities.json and tokenizer.json through python/byol_align_export.py's
PyTorch modules: the SmallCnn at the run's image size, the pre-LN text Transformer over the run's
WordPiece tokenizer, and one shared projector (Linear 4096, BatchNorm, ReLU, Linear 256) applied to
each modality's batch separately as byol-align's forwardViews does, with BatchNorm's running
statistics per modality as byol-align keeps them (src/align/shared_head.ts; `--mixed-statistics`
keeps one set for both, as byol-align did before); InfoNCE on the projections.
The views stay the mild ones above (byol-align's BYOL views and token views are not ported).

Run: /usr/bin/python3 bench/align_quality_torch.py --json OUT.json   (Debian's python3-torch)
"""

import argparse
import json
import math
import os
import re
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

torch.set_num_threads(1)

WORD = re.compile(r"[a-z0-9]+")


def words(caption):
    return WORD.findall(caption.lower())


def load_coco(annotations, images_dir, size, resample=Image.BILINEAR):
    """Images as uint8 [N, 3, size, size] composited on white, captions, caption -> image index."""
    with open(annotations, encoding="utf8") as f:
        coco = json.load(f)
    index = {image["id"]: i for i, image in enumerate(coco["images"])}
    pixels = np.empty((len(coco["images"]), size, size, 3), dtype=np.uint8)
    for i, image in enumerate(coco["images"]):
        rgba = Image.open(os.path.join(images_dir, image["file_name"])).convert("RGBA")
        if rgba.size != (size, size):
            rgba = rgba.resize((size, size), resample)
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        pixels[i] = np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    captions = [a["caption"] for a in coco["annotations"]]
    caption_to_image = [index[a["image_id"]] for a in coco["annotations"]]
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous(), captions, caption_to_image


class Vocabulary:
    """Words of the training captions seen at least `min_count` times; index 0 pads, 1 is unknown."""

    def __init__(self, captions, min_count=1):
        counts = {}
        for caption in captions:
            for w in words(caption):
                counts[w] = counts.get(w, 0) + 1
        self.index = {w: i + 2 for i, w in enumerate(sorted(w for w, n in counts.items() if n >= min_count))}

    def __len__(self):
        return len(self.index) + 2

    def encode(self, captions, max_words=32):
        ids = torch.zeros(len(captions), max_words, dtype=torch.long)
        for row, caption in enumerate(captions):
            tokens = [self.index.get(w, 1) for w in words(caption)][:max_words] or [1]
            ids[row, : len(tokens)] = torch.tensor(tokens)
        return ids


def conv_block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ImageEncoder(nn.Module):
    """Four conv-BN-ReLU stages of 32-64-128-256 channels, 2x2 max-pool between them, global mean, linear."""

    def __init__(self, dim):
        super().__init__()
        self.features = nn.Sequential(
            conv_block(3, 32), nn.MaxPool2d(2), conv_block(32, 64), nn.MaxPool2d(2),
            conv_block(64, 128), nn.MaxPool2d(2), conv_block(128, 256),
        )
        self.out = nn.Linear(256, dim)

    def forward(self, x):
        return self.out(self.features(x).mean((2, 3)))


class TextEncoder(nn.Module):
    """Mean of the caption's word embeddings (padding left out), then Linear-ReLU-Linear."""

    def __init__(self, vocab_size, width, dim):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, width, padding_idx=0)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.ReLU(inplace=True), nn.Linear(width, dim))

    def forward(self, ids):
        mask = (ids != 0).unsqueeze(-1).float()
        mean = (self.embedding(ids) * mask).sum(1) / mask.sum(1).clamp(min=1)
        return self.mlp(mean)


MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def normalise(uint8_images):
    return (uint8_images.float() / 255 - MEAN) / STD


def augment(uint8_images, generator, min_area=0.5, jitter=0.2):
    """Per image: a crop of min_area-100% of the area (aspect 3/4-4/3) resized back, a flip with p 0.5,
    brightness, contrast and saturation factors in [1 - jitter, 1 + jitter]; then normalised."""
    x = uint8_images.float() / 255
    n = x.shape[0]
    rand = lambda *shape: torch.rand(*shape, generator=generator)  # noqa: E731
    area = min_area + (1 - min_area) * rand(n)
    log_ratio = (rand(n) * 2 - 1) * math.log(4 / 3)
    ratio = torch.exp(log_ratio)
    width = torch.sqrt(area * ratio).clamp(max=1)
    height = torch.sqrt(area / ratio).clamp(max=1)
    cx = (1 - width) * (rand(n) * 2 - 1)
    cy = (1 - height) * (rand(n) * 2 - 1)
    flip = torch.where(rand(n) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = width * flip
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = height
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, x.shape, align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    factor = lambda: (1 + (rand(n) * 2 - 1) * jitter).view(n, 1, 1, 1)  # noqa: E731
    x = x * factor()
    gray = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    x = (x - gray.mean((2, 3), keepdim=True)) * factor() + gray.mean((2, 3), keepdim=True)
    gray = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    x = (x - gray) * factor() + gray
    return (x.clamp(0, 1) - MEAN) / STD


class Aligner(nn.Module):
    def __init__(self, vocab_size, dim=256, text_width=256):
        super().__init__()
        self.image = ImageEncoder(dim)
        self.text = TextEncoder(vocab_size, text_width, dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_image(self, x, stage="projection"):
        return self.image(x)

    def encode_text(self, ids, stage="projection"):
        return self.text(ids)


class ProjectAligner(nn.Module):
    """Recipe (a): byol-align's SmallCnn and text Transformer, one shared projector, as a run's modalities.json sets them."""

    def __init__(self, run_dir, mixed_statistics=False, dim=256, hidden=4096):
        super().__init__()
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
        import byol_align_export as export

        with open(os.path.join(run_dir, "modalities.json"), encoding="utf8") as f:
            specs = {m["name"]: m["settings"] for m in json.load(f)}
        self.image_settings, self.text_settings = specs["image"], specs["text"]
        self.image = export.SmallCnn(self.image_settings["channels"])
        self.text = export.TextTransformer(self.text_settings)
        if mixed_statistics:
            shared = export.mlp_head(128, hidden, dim, "batch")
            self.projector = lambda y, modality: shared(y)
            self.shared_projector = shared
        else:
            self.projector = export.SharedHead(["image", "text"], 128, hidden, dim, "batch")
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_image(self, x, stage="projection"):
        y = self.image(x)
        return y if stage == "encoder" else self.projector(y, "image")

    def encode_text(self, ids, stage="projection"):
        y = self.text(ids)
        return y if stage == "encoder" else self.projector(y, "text")


class WordPieceIds:
    """A run's tokenizer.json as ids [N, L]: [CLS] first, cut to maxLength, padded with 0 to the longest."""

    def __init__(self, run_dir, max_length, vocab_size):
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
        import byol_align_export as export

        self.tokenizer = export.load_tokenizer(os.path.join(run_dir, "tokenizer.json"))
        self.max_length = max_length
        self.vocab_size = vocab_size

    def __len__(self):
        return self.vocab_size

    def encode(self, captions):
        rows = [self.tokenizer.encode(c)[: self.max_length] for c in captions]
        ids = torch.zeros(len(rows), max(len(r) for r in rows), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
        return ids


def info_nce(image_embeddings, text_embeddings, logit_scale):
    logits = logit_scale.exp().clamp(max=100) * F.normalize(image_embeddings, dim=1) @ F.normalize(text_embeddings, dim=1).T
    labels = torch.arange(logits.shape[0])
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def lr_at(step, total, base, warmup_fraction=0.1):
    warmup = max(1, round(total * warmup_fraction))
    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def ranks(queries, gallery, query_relevant):
    """1-based rank of each query's best relevant gallery item; ties count against the query
    (src/eval/retrieval.ts). query_relevant: bool [Nq, G]."""
    similarity = queries @ gallery.T
    best = similarity.masked_fill(~query_relevant, -math.inf).amax(1, keepdim=True)
    return ((similarity >= best) & ~query_relevant).sum(1) + 1


def summarise(r):
    r = r.double()
    recall = lambda k: float(100 * (r <= k).double().mean())  # noqa: E731
    sorted_ranks = torch.sort(r).values
    mid = len(r) // 2
    medr = float(sorted_ranks[mid]) if len(r) % 2 else math.floor((float(sorted_ranks[mid - 1]) + float(sorted_ranks[mid])) / 2)
    return {"r1": recall(1), "r5": recall(5), "r10": recall(10), "medr": medr, "meanr": float(r.mean())}


def relevance(captions, caption_to_image, n_images, protocol):
    """bool [Nc, Ni]: caption c is relevant to image i (its own image; with 'text', also every image
    that has a caption of the same text)."""
    own = torch.zeros(len(captions), n_images, dtype=torch.bool)
    own[torch.arange(len(captions)), torch.tensor(caption_to_image)] = True
    if protocol == "own":
        return own
    by_text = {}
    for c, text in enumerate(captions):
        by_text.setdefault(text, []).append(c)
    relevant = own.clone()
    for group in by_text.values():
        if len(group) > 1:
            relevant[group] = own[group].any(0, keepdim=True).expand(len(group), -1)
    return relevant


def retrieval(image_embeddings, text_embeddings, captions, caption_to_image, protocol):
    images = F.normalize(image_embeddings.double(), dim=1)
    texts = F.normalize(text_embeddings.double(), dim=1)
    relevant = relevance(captions, caption_to_image, images.shape[0], protocol)
    i2t = summarise(ranks(images, texts, relevant.T))
    t2i = summarise(ranks(texts, images, relevant))
    rsum = sum(d[k] for d in (i2t, t2i) for k in ("r1", "r5", "r10"))
    return {"i2t": i2t, "t2i": t2i, "rsum": rsum, "n_images": images.shape[0], "n_captions": texts.shape[0]}


def hubness(image_embeddings, text_embeddings):
    """How concentrated nearest neighbours are: the most captions that share one nearest image, how many
    images are anyone's nearest, and the length of the mean unit embedding per modality."""
    images = F.normalize(image_embeddings.double(), dim=1)
    texts = F.normalize(text_embeddings.double(), dim=1)
    nearest = (texts @ images.T).argmax(1)
    counts = torch.bincount(nearest, minlength=images.shape[0])
    return {
        "max_captions_per_nearest_image": int(counts.max()),
        "images_ever_nearest": int((counts > 0).sum()),
        "mean_unit_image_norm": float(images.mean(0).norm()),
        "mean_unit_text_norm": float(texts.mean(0).norm()),
    }


@torch.no_grad()
def embed(model, vocab, pixels, captions, stage="projection", batch=512):
    model.eval()
    images = torch.cat([model.encode_image(normalise(pixels[i : i + batch]), stage) for i in range(0, len(pixels), batch)])
    texts = torch.cat([model.encode_text(vocab.encode(captions[i : i + batch]), stage) for i in range(0, len(captions), batch)])
    return images, texts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", default="data/icons/captions_train.json")
    parser.add_argument("--images", default="data/icons/images")
    parser.add_argument(
        "--eval", action="append",
        help="LABEL:ANNOTATIONS:IMAGES (default icons:data/icons/captions_test.json:data/icons/images "
        "and other:data/icons-other/captions_other.json:data/icons-other/images)",
    )
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, help="train this many steps instead of --epochs")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--min-area", type=float, default=0.5)
    parser.add_argument("--jitter", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--encoders", choices=("plain", "project"), default="plain", help="recipe (b) plain, or (a) byol-align's")
    parser.add_argument("--run", help="with --encoders project: the byol-align run whose modalities.json and tokenizer.json to use")
    parser.add_argument("--mixed-statistics", action="store_true", help="(a): one set of BatchNorm statistics for both modalities (byol-align before the fix)")
    parser.add_argument("--json", help="write every result line here as one JSON object")
    args = parser.parse_args()
    evals = args.eval or [
        "icons:data/icons/captions_test.json:data/icons/images",
        "other:data/icons-other/captions_other.json:data/icons-other/images",
    ]
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)

    if args.encoders == "project":
        if args.run is None:
            parser.error("--encoders project needs --run RUN_DIR (a byol-align run: modalities.json, tokenizer.json)")
        model = ProjectAligner(args.run, args.mixed_statistics, args.dim)
        args.size = model.image_settings["size"]
        resample = Image.LANCZOS  # sharp's default kernel, which byol-align's decoder resizes with
    else:
        resample = Image.BILINEAR
    start = time.time()
    pixels, captions, caption_to_image = load_coco(args.train, args.images, args.size, resample)
    captions_of = [[] for _ in range(len(pixels))]
    for caption, image in zip(captions, caption_to_image):
        captions_of[image].append(caption)
    vocab = Vocabulary(captions) if args.encoders == "plain" else WordPieceIds(args.run, model.text_settings["maxLength"], model.text_settings["vocabSize"])
    print(f"train: {len(pixels)} images, {len(captions)} captions, {len(vocab)} words; loaded in {time.time() - start:.0f} s", flush=True)

    if args.encoders == "plain":
        model = Aligner(len(vocab), args.dim)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    rest = [p for n, p in model.named_parameters() if p.ndim <= 1]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": rest, "weight_decay": 0}], lr=args.lr
    )
    steps_per_epoch = len(pixels) // args.batch_size
    total = args.steps or steps_per_epoch * args.epochs
    step = 0
    train_start = time.time()
    while step < total:
        order = torch.randperm(len(pixels), generator=generator)
        for b in range(steps_per_epoch):
            if step >= total:
                break
            rows = order[b * args.batch_size : (b + 1) * args.batch_size]
            chosen = [captions_of[i][int(torch.randint(len(captions_of[i]), (1,), generator=generator))] for i in rows.tolist()]
            model.train()
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, total, args.lr)
            image_embeddings = model.encode_image(augment(pixels[rows], generator, args.min_area, args.jitter))
            loss = info_nce(image_embeddings, model.encode_text(vocab.encode(chosen)), model.logit_scale)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if step % 20 == 0 or step == total:
                elapsed = time.time() - train_start
                print(f"step {step}/{total} loss {loss.item():.4f} scale {model.logit_scale.exp().item():.1f} "
                      f"{step * args.batch_size / elapsed:.0f} items/s", flush=True)
    train_seconds = time.time() - train_start

    results = []
    for spec in evals:
        label, annotations, images_dir = spec.split(":")
        test_pixels, test_captions, test_caption_to_image = load_coco(annotations, images_dir, args.size, resample)
        for stage, protocol in [("projection", "own"), ("projection", "text"), ("encoder", "own")]:
            if stage == "encoder" and args.encoders == "plain":
                continue
            image_embeddings, text_embeddings = embed(model, vocab, test_pixels, test_captions, stage)
            line = {
                "run": "peer-b" if args.encoders == "plain" else "peer-a",
                "collection": label,
                "space": stage,
                "protocol": protocol,
                **retrieval(image_embeddings, text_embeddings, test_captions, test_caption_to_image, protocol),
            }
            if protocol == "own":
                line["hubness"] = hubness(image_embeddings, text_embeddings)
            line.update({"steps": total, "batch_size": args.batch_size, "train_seconds": round(train_seconds), "threads": 1})
            print(json.dumps(line), flush=True)
            results.append(line)
    if args.json:
        with open(args.json, "w", encoding="utf8") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    sys.exit(main())
