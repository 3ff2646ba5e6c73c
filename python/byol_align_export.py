#!/usr/bin/env python3
"""A `byol-align export` folder in PyTorch: the network, its preprocessing, and its check.

    from PIL import Image
    from byol_align_export import load_export

    model = load_export("export/")
    images = model.encode_image([Image.open("cat.png"), Image.open("dog.jpg")])  # [2, d], l2-normalised
    query = model.encode_text("a red heart")                                    # [d]
    clips = model.encode_audio(["heart.wav"])                                   # [1, d], for models with audio
    scores = images @ query                                                     # cosine similarities

The embeddings are those `byol-align embed` returns for the same inputs: the network is rebuilt
from config.json with torch.nn modules and loads model.safetensors strictly (every name and shape
must match); images are prepared as byol-align's decoder prepares files (upright by EXIF,
transparency flattened onto config["image"]["background"], made square by config["image"]["fit"]
with the recorded resize kernel, scaled to [0, 1] and normalised with the recorded mean and std);
captions are tokenized with tokenizer.json, [CLS] first, cut to maxLength and padded with id 0;
WAV clips are decoded to mono, resampled, cut or zero-padded to config["audio"]["clipSeconds"] (or
to trainWindowSeconds, whose spectrogram is then cut to clipSeconds' frames) and turned into
normalised log-mel spectrograms as byol-align's audio modality does.

Run as a program, `python3 byol_align_export.py EXPORT_DIR` checks the export: it feeds the inputs
stored in EXPORT_DIR/check.safetensors through the network and compares the projections with those
byol-align computed; exit status 0 when they match, 1 when they do not.

Needs torch and numpy; PIL (Pillow) for encode_image. Uses the `safetensors` and `tokenizers`
packages when they are installed, and otherwise reads safetensors files and runs the WordPiece
tokenizer itself (the same normalisation, splitting and greedy longest-match as Hugging Face's
BertNormalizer, BertPreTokenizer and WordPiece, which byol-align's tokenizer.json names).

Where the two sides can differ: pixels are identical to byol-align's for images already at the
model's size (and for flattening transparency); images that need resizing go through Pillow's
kernel of the recorded name, which is close to, not bit-identical with, libvips's. One-channel
models convert colour images to grey through linear light as libvips does, within one grey level.
"""
import json
import math
import os
import struct
import sys
import unicodedata

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

EXPORT_FORMAT = "byol-align-export/1"
DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8, "BOOL": np.bool_}


def read_safetensors(path):
    """The tensors of a safetensors file by name: with the `safetensors` package if installed, else by hand."""
    try:
        from safetensors.torch import load_file
    except ImportError:
        load_file = None
    if load_file is not None:
        return load_file(path)
    # The format: an 8-byte little-endian header length, a JSON header, then the data.
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, entry in header.items():
        if entry["dtype"] not in DTYPES:
            raise ValueError(f"{path}: tensor {name} has dtype {entry['dtype']}; this reader knows {', '.join(DTYPES)}")
        begin, end = entry["data_offsets"]
        array = np.frombuffer(data[8 + n + begin : 8 + n + end], dtype=DTYPES[entry["dtype"]]).reshape(entry["shape"])
        out[name] = torch.from_numpy(array.copy())
    return out


# ---------------------------------------------------------------------------------------------
# The network: byol-align's online AlignBranch, with PyTorch's parameter names.


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


class BertLayer(nn.Module):
    """transformers' BertLayer in eval mode: post-LN self-attention and feed-forward, exact GELU."""

    def __init__(self, c):
        super().__init__()
        h, eps = c["hidden_size"], c["layer_norm_eps"]
        self.heads = c["num_attention_heads"]
        self.attention = nn.Module()
        self.attention.self = nn.Module()
        for name in ("query", "key", "value"):
            setattr(self.attention.self, name, nn.Linear(h, h))
        self.attention.output = nn.Module()
        self.attention.output.dense = nn.Linear(h, h)
        self.attention.output.LayerNorm = nn.LayerNorm(h, eps=eps)
        self.intermediate = nn.Module()
        self.intermediate.dense = nn.Linear(h, c["intermediate_size"])
        self.output = nn.Module()
        self.output.dense = nn.Linear(c["intermediate_size"], h)
        self.output.LayerNorm = nn.LayerNorm(h, eps=eps)

    def forward(self, x, additive_mask):
        n, length, h = x.shape
        a = self.attention.self
        split = lambda t: t.reshape(n, length, self.heads, h // self.heads).permute(0, 2, 1, 3)  # noqa: E731
        q, k, v = split(a.query(x)), split(a.key(x)), split(a.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(h // self.heads) + additive_mask
        context = (scores.softmax(-1) @ v).permute(0, 2, 1, 3).reshape(n, length, h)
        attended = self.attention.output.LayerNorm(self.attention.output.dense(context) + x)
        return self.output.LayerNorm(self.output.dense(F.gelu(self.intermediate.dense(attended))) + attended)


class BertEncoder(nn.Module):
    """transformers' BertModel (pooler left out) with its parameter names, pooled by mean or [CLS] (src/modalities/text/bert.ts)."""

    def __init__(self, c, pooling, pad_id):
        super().__init__()
        self.pooling, self.pad_id = pooling, pad_id
        h = c["hidden_size"]
        self.embeddings = nn.Module()
        self.embeddings.word_embeddings = nn.Embedding(c["vocab_size"], h, padding_idx=c["pad_token_id"])
        self.embeddings.position_embeddings = nn.Embedding(c["max_position_embeddings"], h)
        self.embeddings.token_type_embeddings = nn.Embedding(c["type_vocab_size"], h)
        self.embeddings.LayerNorm = nn.LayerNorm(h, eps=c["layer_norm_eps"])
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList(BertLayer(c) for _ in range(c["num_hidden_layers"]))

    def forward(self, ids):
        e = self.embeddings
        real = ids != self.pad_id
        x = e.word_embeddings(ids) + e.token_type_embeddings.weight[0] + e.position_embeddings.weight[: ids.shape[1]]
        x = e.LayerNorm(x)
        additive_mask = torch.zeros(real.shape, dtype=x.dtype).masked_fill(~real, float("-inf"))[:, None, None, :]
        for layer in self.encoder.layer:
            x = layer(x, additive_mask)
        if self.pooling == "cls":
            return x[:, 0]
        weights = real.unsqueeze(2).to(x.dtype)
        return (x * weights).sum(1) / weights.sum(1)


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


class ImagenetBlock(nn.Module):
    """torchvision's BasicBlock (two 3×3) or Bottleneck (1×1, 3×3 with the stride, 1×1 ×4), names and all."""

    def __init__(self, in_c, planes, stride, bottleneck):
        super().__init__()
        out_c = planes * 4 if bottleneck else planes
        shapes = [(in_c, planes, 1, 1), (planes, planes, 3, stride), (planes, out_c, 1, 1)] if bottleneck else [(in_c, planes, 3, stride), (planes, planes, 3, 1)]
        self.count = len(shapes)
        for i, (a, b, k, st) in enumerate(shapes):
            self.add_module(f"conv{i + 1}", nn.Conv2d(a, b, k, stride=st, padding=k // 2, bias=False))
            self.add_module(f"bn{i + 1}", nn.BatchNorm2d(b))
        self.downsample = (
            nn.Sequential(nn.Conv2d(in_c, out_c, 1, stride=stride, bias=False), nn.BatchNorm2d(out_c)) if stride != 1 or in_c != out_c else None
        )

    def forward(self, x):
        h = x
        for i in range(self.count):
            h = getattr(self, f"bn{i + 1}")(getattr(self, f"conv{i + 1}")(h))
            if i < self.count - 1:
                h = F.relu(h)
        return F.relu(h + (self.downsample(x) if self.downsample is not None else x))


class ImagenetResNet(nn.Module):
    """torchvision's resnet18/34/50 without `fc`: the pooled features (src/modalities/image/resnet_imagenet.ts)."""

    def __init__(self, depth, in_channels):
        super().__init__()
        blocks, bottleneck = {18: ([2, 2, 2, 2], False), 34: ([3, 4, 6, 3], False), 50: ([3, 4, 6, 3], True)}[depth]
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        in_c = 64
        for i, planes in enumerate((64, 128, 256, 512)):
            stage = []
            for j in range(blocks[i]):
                stage.append(ImagenetBlock(in_c, planes, 2 if i > 0 and j == 0 else 1, bottleneck))
                in_c = planes * 4 if bottleneck else planes
            self.add_module(f"layer{i + 1}", nn.Sequential(*stage))

    def forward(self, x):
        h = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, stride=2, padding=1)
        for i in range(4):
            h = getattr(self, f"layer{i + 1}")(h)
        return F.adaptive_avg_pool2d(h, 1).flatten(1)


IMAGENET_DEPTHS = {"resnet18-imagenet": 18, "resnet34": 34, "resnet50": 50}


def vector_adapter(s):
    layers, width = [], s["dim"]
    for hidden in s["hiddenDims"]:
        layers += [nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, s["featureDim"]))
    return nn.Sequential(*layers)


class ByolaAudioEncoder(nn.Module):
    """BYOL-A's audio encoder (src/modalities/audio/encoder.ts): three conv blocks, per-step MLP, max + mean over time."""

    def __init__(self, s):
        super().__init__()
        c = 1
        for i in range(3):
            self.add_module(f"block{i + 1}", nn.Sequential(nn.Conv2d(c, s["channels"], 3, padding=1, bias=False), nn.BatchNorm2d(s["channels"]), nn.ReLU()))
            c = s["channels"]
        d = s["featureDim"]
        self.fc = nn.Sequential(nn.Linear(c * (s["nMels"] // 8), d), nn.ReLU(), nn.Dropout(s["dropout"]), nn.Linear(d, d), nn.ReLU())

    def forward(self, x):
        for i in range(3):
            x = F.max_pool2d(getattr(self, f"block{i + 1}")(x), 2)
        n, c, f, t = x.shape
        per_step = self.fc(x.permute(0, 3, 2, 1).reshape(n, t, f * c))
        return per_step.amax(1) + per_step.mean(1)


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


class ModalityBatchNorm1d(nn.Module):
    """BatchNorm1d with shared weight and bias and running statistics per modality (src/align/shared_head.ts)."""

    def __init__(self, modalities, width):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.bias = nn.Parameter(torch.zeros(width))
        self.statistics = nn.ModuleDict({m: nn.BatchNorm1d(width, affine=False) for m in modalities})

    def forward(self, x, modality):
        return self.statistics[modality](x) * self.weight + self.bias


class SharedHead(nn.Module):
    """Linear, norm, ReLU, Linear shared by every modality; with BatchNorm the statistics are the modality's."""

    def __init__(self, modalities, inputs, hidden, outputs, norm):
        super().__init__()
        self.add_module("0", nn.Linear(inputs, hidden))
        self.add_module("1", ModalityBatchNorm1d(modalities, hidden) if norm == "batch" else norm_layer(norm, hidden))
        self.add_module("2", nn.ReLU())
        self.add_module("3", nn.Linear(hidden, outputs))

    def forward(self, x, modality):
        h, norm = getattr(self, "0")(x), getattr(self, "1")
        h = norm(h, modality) if isinstance(norm, ModalityBatchNorm1d) else norm(h)
        return getattr(self, "3")(F.relu(h))


def encoder(m):
    s = m["settings"]
    if m["kind"] == "image":
        if s["encoder"] in IMAGENET_DEPTHS:
            return ImagenetResNet(IMAGENET_DEPTHS[s["encoder"]], s["channels"])
        if s["encoder"] == "resnet18":
            return CifarResNet18(s["channels"], s["widthMultiplier"])
        if s["encoder"] == "small-cnn":
            return SmallCnn(s["channels"])
        raise ValueError(f"config.json: image encoder {s['encoder']!r} is unknown; known: small-cnn, resnet18, {', '.join(IMAGENET_DEPTHS)}")
    if m["kind"] == "text":
        if s.get("encoder") == "bert":
            return BertEncoder(m["bert"], s["pooling"], m["padId"])
        return TextTransformer(s)
    if m["kind"] == "vector":
        return vector_adapter(s)
    if m["kind"] == "audio":
        return ByolaAudioEncoder(s)
    raise ValueError(f"config.json: modality {m['name']!r} has kind {m['kind']!r}; known: image, text, vector, audio")


class OnlineNetwork(nn.Module):
    """byol-align's AlignBranch: encoder (+ neck) per modality, then shared or per-modality heads."""

    def __init__(self, config):
        super().__init__()
        heads = config["heads"]
        self.shared = heads["sharedHeads"]
        # The shared heads' input width: model.headInputDim where set, else the widest tower's.
        width = heads.get("headInputDim") or max(m["featureDim"] for m in config["modalities"])
        self.encoders = nn.ModuleDict()
        for m in config["modalities"]:
            neck = nn.Linear(m["featureDim"], width) if self.shared and m["featureDim"] != width else nn.Identity()
            self.encoders[m["name"]] = nn.Sequential(encoder(m), neck)
        dims = {m["name"]: m["featureDim"] for m in config["modalities"]}
        p, h, q, norm = heads["projectionDim"], heads["projectionHiddenDim"], heads["predictionHiddenDim"], heads["headNorm"]
        if self.shared:
            modalities = [m["name"] for m in config["modalities"]]
            self.projectors = nn.ModuleDict({"shared": SharedHead(modalities, width, h, p, norm)})
            self.predictors = nn.ModuleDict({"shared": SharedHead(modalities, p, q, p, norm)})
        else:
            self.projectors = nn.ModuleDict({n: mlp_head(dims[n], h, p, norm) for n in dims})
            self.predictors = nn.ModuleDict({n: mlp_head(p, q, p, norm) for n in dims})

    def embed(self, modality, x, stage="projection"):
        """The model input `x` of `modality` at `stage`: 'encoder', 'projection' or 'prediction' (not normalised)."""
        if stage not in ("encoder", "projection", "prediction"):
            raise ValueError(f"embed: stage is {stage!r}; expected 'encoder', 'projection' or 'prediction'")
        head = "shared" if self.shared else modality
        z = self.encoders[modality](x)
        if stage == "encoder":
            return z
        z = self.projectors[head](z, modality) if self.shared else self.projectors[head](z)
        if stage == "projection":
            return z
        return self.predictors[head](z, modality) if self.shared else self.predictors[head](z)


# ---------------------------------------------------------------------------------------------
# Text: the tokenizer.json byol-align trains (a Hugging Face WordPiece tokenizer).


def _is_control(c):
    return c not in "\t\n\r" and unicodedata.category(c) in ("Cc", "Cf", "Cn", "Co", "Cs")


def _is_whitespace(c):
    return c in "\t\n\r " or unicodedata.category(c) == "Zs"


def _is_punctuation(c):
    o = ord(c)
    ascii_punctuation = 33 <= o <= 47 or 58 <= o <= 64 or 91 <= o <= 96 or 123 <= o <= 126
    return ascii_punctuation or unicodedata.category(c).startswith("P")


def _is_chinese(c):
    o = ord(c)
    return (
        0x4E00 <= o <= 0x9FFF
        or 0x3400 <= o <= 0x4DBF
        or 0x20000 <= o <= 0x2A6DF
        or 0x2A700 <= o <= 0x2B73F
        or 0x2B740 <= o <= 0x2B81F
        or 0x2B920 <= o <= 0x2CEAF
        or 0xF900 <= o <= 0xFAFF
        or 0x2F800 <= o <= 0x2FA1F
    )


class WordPieceTokenizer:
    """The subset of Hugging Face `tokenizers` that byol-align's tokenizer.json uses, in pure Python.

    BertNormalizer (clean_text, handle_chinese_chars, strip_accents, lowercase), BertPreTokenizer
    (split on whitespace, each punctuation character its own word), WordPiece (greedy longest match,
    continuation pieces prefixed, a word with an unmatched rest becomes the unknown token), and a
    TemplateProcessing post-processor that puts special tokens around the pieces. Added tokens
    ([CLS], [MASK], ...) written in the text are matched first, as the library does.
    """

    def __init__(self, spec, path="tokenizer.json"):
        model, normalizer = spec.get("model") or {}, spec.get("normalizer") or {}
        if model.get("type") != "WordPiece":
            raise ValueError(f"{path}: model.type is {model.get('type')!r}; without the `tokenizers` package only WordPiece is supported")
        if normalizer.get("type") not in ("BertNormalizer", None) or (spec.get("pre_tokenizer") or {}).get("type") not in ("BertPreTokenizer", None):
            raise ValueError(f"{path}: needs the `tokenizers` package (pip install tokenizers): normalizer or pre_tokenizer is not BERT's")
        self.vocab = model["vocab"]
        self.unk = self.vocab[model["unk_token"]]
        self.prefix = model.get("continuing_subword_prefix", "##")
        self.max_chars = model.get("max_input_chars_per_word", 100)
        self.normalizer = normalizer
        self.added = sorted((t["content"] for t in spec.get("added_tokens", [])), key=len, reverse=True)
        self.template = self._template(spec.get("post_processor"), path)

    def _template(self, post, path):
        if post is None:
            return [("A", None)]
        if post.get("type") != "TemplateProcessing":
            raise ValueError(f"{path}: post_processor.type is {post.get('type')!r}; without the `tokenizers` package only TemplateProcessing is supported")
        pieces = []
        for piece in post["single"]:
            if "Sequence" in piece:
                pieces.append(("A", None))
            else:
                pieces.append(("special", post["special_tokens"][piece["SpecialToken"]["id"]]["ids"]))
        return pieces

    def _normalize(self, text):
        n = self.normalizer
        if n.get("clean_text", True):
            text = "".join(" " if _is_whitespace(c) else c for c in text if c not in "\0\ufffd" and not _is_control(c))
        if n.get("handle_chinese_chars", True):
            text = "".join(f" {c} " if _is_chinese(c) else c for c in text)
        lowercase = n.get("lowercase", True)
        strip_accents = n.get("strip_accents")
        if strip_accents if strip_accents is not None else lowercase:
            text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
        return text.lower() if lowercase else text

    @staticmethod
    def _words(text):
        words, current = [], ""
        for c in text:
            if _is_whitespace(c) or _is_punctuation(c):
                if current:
                    words.append(current)
                current = ""
                if _is_punctuation(c):
                    words.append(c)
            else:
                current += c
        if current:
            words.append(current)
        return words

    def _word_ids(self, word):
        if len(word) > self.max_chars:
            return [self.unk]
        ids, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else self.prefix + word[start:end]
                if piece in self.vocab:
                    ids.append(self.vocab[piece])
                    break
                end -= 1
            if end == start:
                return [self.unk]
            start = end
        return ids

    def _split_added(self, text):
        """The text as (is_added_token, part) pairs, leftmost-longest added token first."""
        parts, rest = [], text
        while rest:
            hits = [(rest.find(t), -len(t), t) for t in self.added if t and rest.find(t) >= 0]
            if not hits:
                parts.append((False, rest))
                break
            at, _, token = min(hits)
            if at > 0:
                parts.append((False, rest[:at]))
            parts.append((True, token))
            rest = rest[at + len(token) :]
        return parts

    def encode(self, text, max_length=None):
        """The ids of one text, special tokens included; with max_length the text is cut so that the
        special tokens stay (as the library's truncation does: a cut text keeps its [SEP])."""
        ids = []
        for is_added, part in self._split_added(text):
            if is_added:
                ids.append(self.vocab[part])
                continue
            for word in self._words(self._normalize(part)):
                ids.extend(self._word_ids(word))
        if max_length is not None:
            specials = sum(len(special) for kind, special in self.template if kind != "A")
            ids = ids[: max(0, max_length - specials)]
        out = []
        for kind, special in self.template:
            out.extend(ids if kind == "A" else special)
        return out if max_length is None else out[:max_length]


def load_tokenizer(path):
    """tokenizer.json as an object with encode(text) -> ids: Hugging Face `tokenizers` if installed, else WordPieceTokenizer."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        Tokenizer = None
    if Tokenizer is not None:
        tokenizer = Tokenizer.from_file(path)
        # A pretrained model's file may fix padding (all-MiniLM-L6-v2 pads to 128); the caller pads.
        tokenizer.no_padding()

        class HuggingFace:
            library = "tokenizers"

            def encode(self, text, max_length=None):
                if max_length is None:
                    tokenizer.no_truncation()
                else:
                    tokenizer.enable_truncation(max_length)
                return tokenizer.encode(text, add_special_tokens=True).ids[:max_length]

        return HuggingFace()
    with open(path, encoding="utf-8") as f:
        wordpiece = WordPieceTokenizer(json.load(f), path)
    wordpiece.library = "byol_align_export.WordPieceTokenizer"
    return wordpiece


# ---------------------------------------------------------------------------------------------
# Images: what byol-align's decoder (sharp/libvips) does to a file.


def _srgb_to_linear(c):
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(y):
    return np.where(y <= 0.0031308, 12.92 * y, 1.055 * np.power(np.maximum(y, 0), 1 / 2.4) - 0.055)


def image_pixels(image, settings):
    """One PIL image (or a path) → uint8 tensor [C, size, size] as byol-align decodes files, by the export's config["image"]."""
    from PIL import Image, ImageOps

    if isinstance(image, (str, os.PathLike)):
        image = Image.open(image)
    if not isinstance(image, Image.Image):
        raise TypeError(f"encode_image: an item is {type(image).__name__}; expected a PIL image or an image file path")
    size, channels, fit = settings["size"], settings["channels"], settings["fit"]
    resampling = getattr(Image, "Resampling", Image)
    kernels = {"nearest": resampling.NEAREST, "linear": resampling.BILINEAR, "cubic": resampling.BICUBIC, "lanczos3": resampling.LANCZOS}
    if settings["resizeKernel"] not in kernels:
        raise ValueError(f"config.json: image.resizeKernel is {settings['resizeKernel']!r}; known: {', '.join(kernels)}")
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # libvips flattens with integer pixels and truncates: (fg·a + bg·(255 − a)) / 255.
        rgba = np.asarray(image.convert("RGBA"), dtype=np.int64)
        background = np.array([int(settings["background"][i : i + 2], 16) for i in (1, 3, 5)], dtype=np.int64)
        alpha = rgba[..., 3:]
        image = Image.fromarray(((rgba[..., :3] * alpha + background * (255 - alpha)) // 255).astype(np.uint8), "RGB")
    elif image.mode != "L" or channels == 3:
        image = image.convert("RGB")
    if image.size != (size, size):
        if fit == "cover":
            image = ImageOps.fit(image, (size, size), method=kernels[settings["resizeKernel"]], centering=(0.5, 0.5))
        elif fit == "fill":
            image = image.resize((size, size), kernels[settings["resizeKernel"]])
        else:
            raise ValueError(f"config.json: image.fit is {fit!r}; expected 'cover' or 'fill'")
    pixels = np.asarray(image)
    if channels == 1 and pixels.ndim == 3:
        # libvips's 'b-w': luminance Y of linear-light sRGB (Rec. 709 weights), encoded back as sRGB.
        y = _srgb_to_linear(pixels / 255.0) @ np.array([0.2126, 0.7152, 0.0722])
        pixels = np.clip(np.round(_linear_to_srgb(y) * 255), 0, 255).astype(np.uint8)
    pixels = pixels[:, :, None] if pixels.ndim == 2 else pixels
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))


# ---------------------------------------------------------------------------------------------
# Audio: what byol-align's audio modality does to a WAV file (src/modalities/audio/): decode to mono,
# resample (torchaudio's sinc_interp_hann), crop or zero-pad to the clip length, log-mel, normalise.

WAV_FORMATS = {1: "pcm", 3: "float"}


def read_wav(path):
    """A PCM or float WAV file → (mono float64 samples in [-1, 1], sample rate); channels averaged."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 12 or data[:4] not in (b"RIFF", b"RIFX") or data[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a RIFF/RIFX WAVE file")
    order = "<" if data[:4] == b"RIFF" else ">"
    at, fmt, samples = 12, None, None
    while at + 8 <= len(data):
        chunk, size = data[at : at + 4], struct.unpack(order + "I", data[at + 4 : at + 8])[0]
        body = data[at + 8 : at + 8 + size]
        if chunk == b"fmt ":
            code, channels, rate = struct.unpack(order + "HHI", body[:8])
            bits = struct.unpack(order + "H", body[14:16])[0]
            if code == 0xFFFE and len(body) >= 26:
                code = struct.unpack(order + "H", body[24:26])[0]
            fmt = (code, channels, rate, bits)
        elif chunk == b"data":
            samples = body
        at += 8 + size + (size & 1)
    if fmt is None or samples is None:
        raise ValueError(f"{path}: no fmt or data chunk")
    code, channels, rate, bits = fmt
    if WAV_FORMATS.get(code) == "float" and bits in (32, 64):
        x = np.frombuffer(samples[: len(samples) // (bits // 8) * (bits // 8)], dtype=np.dtype(f"{order}f{bits // 8}")).astype(np.float64)
    elif WAV_FORMATS.get(code) == "pcm" and bits == 8:
        x = (np.frombuffer(samples, dtype=np.uint8).astype(np.float64) - 128) / 128
    elif WAV_FORMATS.get(code) == "pcm" and bits in (16, 32):
        x = np.frombuffer(samples[: len(samples) // (bits // 8) * (bits // 8)], dtype=np.dtype(f"{order}i{bits // 8}")).astype(np.float64) / 2 ** (bits - 1)
    elif WAV_FORMATS.get(code) == "pcm" and bits == 24:
        b = np.frombuffer(samples[: len(samples) // 3 * 3], dtype=np.uint8).reshape(-1, 3).astype(np.int64)
        lo, hi = (b[:, 0] | b[:, 1] << 8, b[:, 2]) if order == "<" else (b[:, 2] | b[:, 1] << 8, b[:, 0])
        x = (np.where(hi >= 128, hi - 256, hi) * 65536 + lo) / 2**23
    else:
        raise ValueError(f"{path}: WAV format code {code} with {bits} bits; this module reads PCM (8, 16, 24, 32 bits) and float (32, 64)")
    frames = len(x) // channels
    return x[: frames * channels].reshape(frames, channels).mean(1), rate


def sinc_resample(x, orig, new, lowpass_filter_width=6, rolloff=0.99):
    """torchaudio.functional.resample (sinc_interp_hann) of a 1-d float64 tensor, as src/modalities/audio/resample.ts."""
    if orig == new:
        return x
    g = math.gcd(orig, new)
    orig, new = orig // g, new // g
    base = min(orig, new) * rolloff
    width = math.ceil(lowpass_filter_width * orig / base)
    idx = torch.arange(-width, width + orig, dtype=torch.float64)[None, None] / orig
    t = (torch.arange(0, -new, -1, dtype=torch.float64)[:, None, None] / new + idx) * base
    t = t.clamp(-lowpass_filter_width, lowpass_filter_width)
    window = torch.cos(t * math.pi / lowpass_filter_width / 2) ** 2
    t = t * math.pi
    kernels = torch.where(t == 0, torch.tensor(1.0, dtype=torch.float64), t.sin() / t) * window * (base / orig)
    padded = F.pad(x[None, None], (width, width + orig))
    out = F.conv1d(padded, kernels, stride=orig).transpose(1, 2).reshape(-1)
    return out[: math.ceil(new * x.shape[-1] / orig)]


def mel_filterbank(s):
    """torchaudio's melscale_fbanks (HTK, no normalisation): float32 [nFft/2 + 1, nMels]."""
    n_freqs = s["nFft"] // 2 + 1
    hz = torch.linspace(0, s["sampleRate"] // 2, n_freqs, dtype=torch.float64)
    mel = lambda f: 2595.0 * math.log10(1.0 + f / 700.0)  # noqa: E731
    edges = 700.0 * (10.0 ** (torch.linspace(mel(s["fMin"]), mel(s["fMax"]), s["nMels"] + 2, dtype=torch.float64) / 2595.0) - 1.0)
    rising = (hz[:, None] - edges[None, :-2]) / (edges[1:-1] - edges[:-2])
    falling = (edges[None, 2:] - hz[:, None]) / (edges[2:] - edges[1:-1])
    return torch.clamp(torch.min(rising, falling), min=0.0).float()


def audio_clip(item, s):
    """A WAV path or (samples, rate) → float32 [window samples]: resampled, cropped ('start'/'centre'),
    zero-padded; the window is trainWindowSeconds where set (audio_input cuts clipSeconds out of it), else clipSeconds."""
    x, rate = read_wav(item) if isinstance(item, (str, os.PathLike)) else item
    x = sinc_resample(torch.as_tensor(np.asarray(x, dtype=np.float64)), int(rate), s["sampleRate"])
    length = round(s.get("trainWindowSeconds", s["clipSeconds"]) * s["sampleRate"])
    start = (x.shape[0] - length) // 2 if x.shape[0] > length and s["crop"] == "centre" else 0
    out = torch.zeros(length, dtype=torch.float32)
    kept = x[start : start + length].float()
    out[: kept.shape[0]] = kept
    return out


def log_mel(waveforms, s):
    """float32 [N, samples] → log-mel [N, nMels, frames] as src/modalities/audio/log_mel.ts (float32 throughout)."""
    window = torch.hann_window(s["windowLength"])
    spectrum = torch.stft(waveforms, s["nFft"], s["hopLength"], s["windowLength"], window, center=True, pad_mode="reflect", return_complex=True)
    return (mel_filterbank(s).t() @ spectrum.abs().square()).add(2**-23).log()


# ---------------------------------------------------------------------------------------------
# The export.


class ExportedModel:
    """An export folder: the network (`.network`), `.config`, and encoders into the retrieval space."""

    def __init__(self, directory):
        self.directory = directory
        with open(os.path.join(directory, "config.json"), encoding="utf-8") as f:
            self.config = json.load(f)
        if self.config.get("format") != EXPORT_FORMAT:
            raise ValueError(f"{directory}/config.json: format is {self.config.get('format')!r}; this module reads {EXPORT_FORMAT}")
        self.network = OnlineNetwork(self.config)
        self.network.load_state_dict(read_safetensors(os.path.join(directory, "model.safetensors")), strict=True)
        self.network.eval()
        text = self.config.get("text")
        self.tokenizer = load_tokenizer(os.path.join(directory, text["tokenizer"])) if text else None

    def _kind(self, kind):
        names = [m["name"] for m in self.config["modalities"] if m["kind"] == kind]
        if not names:
            raise ValueError(f"{self.directory}: the model has no {kind} modality; it has {', '.join(m['name'] for m in self.config['modalities'])}")
        return names[0]

    def image_input(self, images):
        """PIL images (or paths) → the image encoder's input: float [N, C, size, size], normalised."""
        settings = self.config["image"]
        x = torch.stack([image_pixels(image, settings) for image in images]).float() / 255
        if len(settings["mean"]) > 0:
            mean = torch.tensor(settings["mean"]).reshape(1, -1, 1, 1)
            std = torch.tensor(settings["std"]).reshape(1, -1, 1, 1)
            x = (x - mean) / std
        return x

    def text_input(self, texts):
        """Texts → token ids int64 [N, L]: [CLS] first (and [SEP] last with a BERT tokenizer), cut to maxLength
        keeping the special tokens, id 0 padding to maxLength or the longest row."""
        settings = self.config["text"]
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"encode_text: texts[{i}] is {type(t).__name__}; expected a string")
        rows = [self.tokenizer.encode(t, settings["maxLength"]) for t in texts]
        width = settings["maxLength"] if settings["padding"] == "max" else max([1] + [len(r) for r in rows])
        ids = torch.full((len(rows), width), settings["padId"], dtype=torch.int64)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r, dtype=torch.int64)
        return ids

    def audio_input(self, clips):
        """WAV paths (or (samples, rate) pairs) → the audio encoder's input: float [N, 1, nMels, frames], normalised."""
        s = self.config["audio"]
        waveforms = torch.stack([audio_clip(c, s) for c in clips])
        x = (log_mel(waveforms, s) - s["mean"]) / s["std"]
        # The library's evalInput: clipSeconds' frames from the start (or the middle) of the window's.
        frames = round(s["clipSeconds"] * s["sampleRate"]) // s["hopLength"] + 1
        start = (x.shape[2] - frames) // 2 if s["crop"] == "centre" else 0
        return x[:, :, start : start + frames].unsqueeze(1)

    def _encode(self, kind, items, make_input, space, batch_size):
        single = not isinstance(items, (list, tuple))
        items = [items] if single else list(items)
        name = self._kind(kind)
        space = space or self.config.get("space", "projection")
        parts = []
        with torch.no_grad():
            for i in range(0, len(items), batch_size):
                parts.append(F.normalize(self.network.embed(name, make_input(items[i : i + batch_size]), space), dim=1))
        out = torch.cat(parts) if parts else torch.zeros((0, 0))
        return out[0] if single else out

    def encode_image(self, images, space=None, batch_size=256):
        """A PIL image (→ [d]) or a list of them (→ [N, d]), l2-normalised in `space` (default: the export's)."""
        return self._encode("image", images, self.image_input, space, batch_size)

    def encode_text(self, texts, space=None, batch_size=256):
        """A string (→ [d]) or a list of them (→ [N, d]), l2-normalised in `space` (default: the export's)."""
        return self._encode("text", texts, self.text_input, space, batch_size)

    def encode_audio(self, clips, space=None, batch_size=256):
        """A WAV path or (samples, rate) pair (→ [d]) or a list of them (→ [N, d]), l2-normalised in `space`."""
        # One clip is a path or a (samples, rate) pair; anything else is a list of clips.
        single = isinstance(clips, (str, os.PathLike)) or (isinstance(clips, tuple) and len(clips) == 2 and np.isscalar(clips[1]))
        out = self._encode("audio", [clips] if single else list(clips), self.audio_input, space, batch_size)
        return out[0] if single else out


def load_export(directory):
    """The export in `directory` (written by `byol-align export`), ready to encode."""
    return ExportedModel(directory)


def check(directory, out=sys.stdout):
    """Compares the network's projections of check.safetensors' inputs with byol-align's; True when they match."""
    path = os.path.join(directory, "check.safetensors")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no check file (the export was written without check samples)")
    network = load_export(directory).network
    stored = read_safetensors(path)
    worst = 0.0
    with torch.no_grad():
        for key in sorted(k for k in stored if k.endswith(".input")):
            name = key[: -len(".input")]
            expected = stored[f"{name}.projection"]
            got = network.embed(name, stored[key])
            diff = (got - expected).abs().max().item()
            scale = expected.abs().max().item()
            print(f"{name}: {tuple(expected.shape)} projections, max abs difference {diff:.3g} (values up to {scale:.3g})", file=out)
            worst = max(worst, diff / max(scale, 1e-6))
    ok = worst < 1e-4
    print("match" if ok else f"MISMATCH: relative difference {worst:.3g}", file=out)
    return ok


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(f"usage: {os.path.basename(sys.argv[0])} EXPORT_DIR\n\n{__doc__}", file=sys.stderr)
        return 2
    return 0 if check(argv[0]) else 1


if __name__ == "__main__":
    sys.exit(main())
