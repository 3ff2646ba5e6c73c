#!/usr/bin/env python3
"""Loads a `byol-align export` directory into an equivalent PyTorch module and checks it.

    python3 scripts/load_export.py EXPORT_DIR

rebuilds the online network (encoders with their necks, projectors, predictors) from
EXPORT_DIR/config.json with torch.nn modules, loads EXPORT_DIR/model.safetensors into it
(strictly: every name and shape must match), runs the inputs of EXPORT_DIR/check.safetensors
and compares the projections with those byol-align computed. Exit status 0 when they match.

As a library: `model = load(EXPORT_DIR)`, then `model.embed('text', ids)` gives projections;
inputs are what byol-align's modalities feed their encoders (normalised pixels [N, C, H, W] with
config["image"]["mean"/"std"], token ids [N, L] from EXPORT_DIR/tokenizer.json with [CLS] first
and 0 as padding, or vectors [N, dim]). Needs only torch and numpy (safetensors read by hand).
Encoders: small-cnn and resnet18 for images, the text Transformer, the vector MLP.
"""
import json
import struct
import sys

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8, "BOOL": np.bool_}


def read_safetensors(path):
    """The tensors of a safetensors file, by name (the format: 8-byte header length, JSON header, data)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        array = np.frombuffer(data[8 + n + begin : 8 + n + end], dtype=DTYPES[entry["dtype"]]).reshape(entry["shape"])
        out[name] = torch.from_numpy(array.copy())
    return out


class SmallCnn(nn.Module):
    def __init__(self, in_channels, widths=(32, 64, 128)):
        super().__init__()
        c = in_channels
        for i, w in enumerate(widths):
            self.add_module(f"block{i + 1}", nn.Sequential(nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU()))
            c = w
        self.count = len(widths)

    def forward(self, x):
        for i in range(self.count):
            x = getattr(self, f"block{i + 1}")(x)
            if i < self.count - 1:
                x = F.max_pool2d(x, 2)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


class TextTransformer(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.pooling = s["pooling"]
        self.token_embedding = nn.Embedding(s["vocabSize"], s["dModel"], padding_idx=0)
        self.positional_embedding = nn.Parameter(torch.zeros(s["maxLength"], s["dModel"]))
        self.dropout = nn.Dropout(s["dropout"])
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                s["dModel"], s["heads"], s["dimFeedforward"], s["dropout"], activation="gelu", batch_first=True, norm_first=True
            )
            for _ in range(s["layers"])
        )
        self.ln_final = nn.LayerNorm(s["dModel"])

    def forward(self, ids):
        padding = ids == 0
        x = self.dropout(self.token_embedding(ids) + self.positional_embedding[: ids.shape[1]])
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=padding)
        x = self.ln_final(x)
        if self.pooling == "cls":
            return x[:, 0]
        real = (~padding).unsqueeze(2).to(x.dtype)
        return (x * real).sum(1) / real.sum(1)


class BasicBlock(nn.Module):
    def __init__(self, in_c, out_c, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_c, out_c, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_c)
        self.conv2 = nn.Conv2d(out_c, out_c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_c)
        self.shortcut = (
            nn.Sequential(nn.Conv2d(in_c, out_c, 1, stride=stride, bias=False), nn.BatchNorm2d(out_c))
            if stride != 1 or in_c != out_c
            else nn.Identity()
        )

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + self.shortcut(x))


class CifarResNet18(nn.Module):
    def __init__(self, in_channels, width_multiplier):
        super().__init__()
        widths = [max(1, round(w * width_multiplier)) for w in (64, 128, 256, 512)]
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]))
        c = widths[0]
        for i, w in enumerate(widths):
            self.add_module(f"layer{i + 1}", nn.Sequential(BasicBlock(c, w, 1 if i == 0 else 2), BasicBlock(w, w, 1)))
            c = w

    def forward(self, x):
        h = F.relu(self.stem(x))
        for i in range(4):
            h = getattr(self, f"layer{i + 1}")(h)
        return F.adaptive_avg_pool2d(h, 1).flatten(1)


def vector_adapter(s):
    layers, width = [], s["dim"]
    for hidden in s["hiddenDims"]:
        layers += [nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, s["featureDim"]))
    return nn.Sequential(*layers)


def norm_layer(kind, width):
    if kind == "batch":
        return nn.BatchNorm1d(width)
    if kind == "layer":
        return nn.LayerNorm(width)
    if kind == "group":
        return nn.GroupNorm(32 if width % 32 == 0 else 1, width)
    return nn.Identity()


def mlp_head(inputs, hidden, outputs, norm):
    return nn.Sequential(nn.Linear(inputs, hidden), norm_layer(norm, hidden), nn.ReLU(), nn.Linear(hidden, outputs))


def encoder(m):
    s = m["settings"]
    if m["kind"] == "image":
        if s["encoder"] == "resnet18":
            return CifarResNet18(s["channels"], s["widthMultiplier"])
        return SmallCnn(s["channels"])
    if m["kind"] == "text":
        return TextTransformer(s)
    if m["kind"] == "vector":
        return vector_adapter(s)
    raise SystemExit(f"load_export.py: unknown modality kind {m['kind']}")


class OnlineNetwork(nn.Module):
    """byol-align's AlignBranch: encoder (+ neck) per modality, then shared or per-modality heads."""

    def __init__(self, config):
        super().__init__()
        heads = config["heads"]
        self.shared = heads["sharedHeads"]
        width = max(m["featureDim"] for m in config["modalities"])
        self.encoders = nn.ModuleDict()
        for m in config["modalities"]:
            neck = nn.Linear(m["featureDim"], width) if self.shared and m["featureDim"] != width else nn.Identity()
            self.encoders[m["name"]] = nn.Sequential(encoder(m), neck)
        names = ["shared"] if self.shared else [m["name"] for m in config["modalities"]]
        dims = {m["name"]: m["featureDim"] for m in config["modalities"]}
        p, h, q, norm = heads["projectionDim"], heads["projectionHiddenDim"], heads["predictionHiddenDim"], heads["headNorm"]
        self.projectors = nn.ModuleDict({n: mlp_head(width if self.shared else dims[n], h, p, norm) for n in names})
        self.predictors = nn.ModuleDict({n: mlp_head(p, q, p, norm) for n in names})

    def embed(self, modality, x, stage="projection"):
        head = "shared" if self.shared else modality
        z = self.encoders[modality](x)
        if stage == "encoder":
            return z
        z = self.projectors[head](z)
        return z if stage == "projection" else self.predictors[head](z)


def load(directory):
    with open(f"{directory}/config.json") as f:
        config = json.load(f)
    model = OnlineNetwork(config)
    model.load_state_dict(read_safetensors(f"{directory}/model.safetensors"), strict=True)
    return model.eval()


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    directory = sys.argv[1]
    model = load(directory)
    check = read_safetensors(f"{directory}/check.safetensors")
    worst = 0.0
    with torch.no_grad():
        for key in sorted(k for k in check if k.endswith(".input")):
            name = key[: -len(".input")]
            expected = check[f"{name}.projection"]
            got = model.embed(name, check[key])
            diff = (got - expected).abs().max().item()
            scale = expected.abs().max().item()
            print(f"{name}: {tuple(expected.shape)} projections, max abs difference {diff:.3g} (values up to {scale:.3g})")
            worst = max(worst, diff / max(scale, 1e-6))
    ok = worst < 1e-4
    print("match" if ok else f"MISMATCH: relative difference {worst:.3g}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
