"""The PyTorch side of `npm run bench -- text`: byol-align's text tower rebuilt in torch.nn with its
weights (token and positional embeddings, nn.TransformerEncoder of pre-LN GELU layers, a final
LayerNorm, mean or [CLS] pooling), timed on the same batches of ids, in eval without autograd, one
thread. Two forwards: nn.TransformerEncoder itself (its eval fast path: for pre-LN layers the fused
layer kernel on the padded batch with the padding mask, as byol-align's fast path runs it), and that
kernel on a nested tensor of the rows without their padding (PyTorch's path for post-LN layers). Prints one JSON line of medians (CPU and wall ms
per batch) and writes the pooled features of the first forward to DIR/pooled.json.

Usage: /usr/bin/python3 bench/text_forward_torch.py DIR   (DIR holds tower.safetensors and batches.json)
"""
import json
import os
import sys
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from byol_align_export import read_safetensors  # noqa: E402  (the package's own reader)


class Tower(nn.Module):
    def __init__(self, state, heads, pooling):
        super().__init__()
        vocab, d = state["token_embedding.weight"].shape
        layers = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("layers."))
        ff = state["layers.0.linear1.weight"].shape[0]
        self.token_embedding = nn.Embedding(vocab, d, padding_idx=0)
        self.positional_embedding = nn.Parameter(torch.zeros_like(state["positional_embedding"]))
        layer = nn.TransformerEncoderLayer(d, heads, ff, activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=True)
        self.ln_final = nn.LayerNorm(d)
        self.pooling = pooling
        self.load_state_dict({("encoder." + k if k.startswith("layers.") else k): v for k, v in state.items()})

    def embed(self, ids):
        return self.token_embedding(ids) + self.positional_embedding[: ids.shape[1]]

    def pool(self, x, padding):
        x = self.ln_final(x)
        if self.pooling == "cls":
            return x[:, 0]
        real = (~padding).unsqueeze(2).to(x.dtype)
        return (x * real).sum(1) / real.sum(1)

    def forward(self, ids):
        padding = ids == 0
        return self.pool(self.encoder(self.embed(ids), src_key_padding_mask=padding), padding)

    def forward_packed(self, ids):
        padding = ids == 0
        x = torch._nested_tensor_from_mask(self.embed(ids), ~padding, mask_check=False)
        for layer in self.encoder.layers:
            a = layer.self_attn
            x = torch._transformer_encoder_layer_fwd(
                x, a.embed_dim, a.num_heads, a.in_proj_weight, a.in_proj_bias, a.out_proj.weight, a.out_proj.bias,
                True, True, layer.norm1.eps, layer.norm1.weight, layer.norm1.bias, layer.norm2.weight, layer.norm2.bias,
                layer.linear1.weight, layer.linear1.bias, layer.linear2.weight, layer.linear2.bias, None, None)
        return self.pool(x.to_padded_tensor(0.0, ids.shape + (self.ln_final.normalized_shape[0],)), padding)


def main():
    torch.set_num_threads(1)
    work = sys.argv[1]
    spec = json.load(open(os.path.join(work, "batches.json")))
    tower = Tower(read_safetensors(os.path.join(work, "tower.safetensors")), spec["heads"], spec["pooling"]).eval()
    batches = [torch.tensor(ids, dtype=torch.int64) for ids in spec["ids"]]
    times = {"encoder": ([], []), "packed": ([], [])}
    with torch.no_grad():
        pooled = [tower(ids) for ids in batches]
        for _ in range(spec["rounds"]):
            for ids in batches:
                for key, fn in (("encoder", tower.forward), ("packed", tower.forward_packed)):
                    cpu, wall = time.process_time(), time.perf_counter()
                    fn(ids)
                    times[key][0].append((time.process_time() - cpu) * 1e3)
                    times[key][1].append((time.perf_counter() - wall) * 1e3)
    with open(os.path.join(work, "pooled.json"), "w") as f:
        json.dump([p.tolist() for p in pooled], f)
    result = {"torch": torch.__version__}
    for key, (cpu, wall) in times.items():
        result[f"{key}_cpu_ms"] = float(np.median(cpu))
        result[f"{key}_wall_ms"] = float(np.median(wall))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
