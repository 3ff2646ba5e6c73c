"""Which pairing teaches a spoken caption's meaning fastest? A PyTorch study (docs/audio.md).

The audio tower in byol-align learns from the modalities an item also has. This script asks, with
everything else fixed, how much the *kind* of partner matters: a BYOL-A encoder (the same layers as
src/modalities/audio/encoder.ts, 16 channels, 2-s crops, SpecAugment-style masks) plus a trainable
head regresses (loss 2 - 2 cos) fixed 256-d targets in the projection space of an image-text run:
  text     the text embedding of the very caption the clip speaks (a transcript)
  randcap  the embedding of a caption of the same item drawn at random each step (what the
           manifest gives: an item's captions, one of which was spoken)
  image    the item's image embedding
then retrieves, for the test split's clips (concepts unseen in training), the test images and
captions (Recall@10, hit if the item's own image / any of its captions is in the top 10; chance
10/2651 = 0.377%). A study, not the library: the library's own runs are in docs/audio.md.

Inputs (the run is bench/results/speech/run.sh's stage2-noaudio; WORK a scratch folder):
  /usr/bin/python3 bench/results/speech/audio_targets_study.py inputs WORK    # the files embedded below
  node dist/src/cli/main.js embed --checkpoint runs/speech-stage2-noaudio --modality text --space projection \
    --input WORK/texts.jsonl -o WORK/text.npy        # every clip's caption (id cN) and every test caption (tID_J)
  ... --input WORK/trcaps.jsonl -o WORK/trcaps.npy   # every caption of the training items with audio (ID_J)
  ... --modality image --input WORK/testimg -o WORK/img.npy; --input WORK/trainimg -o WORK/trimg.npy
      (folders of links ID.png to the items' images)
  /usr/bin/python3 bench/results/speech/audio_targets_study.py features WORK   # log-mels of every clip
  /usr/bin/python3 bench/results/speech/audio_targets_study.py train WORK tgt=text|randcap|image [ep=6 C=16 sec=2 th=1]
      [fd=512 head=own|locked run=speech-stage2-noaudio crop=random|start loss=cos|mse]   (head=locked: the run's shared projector, locked as
      model.freezeHeads locks it, behind a Linear neck from the FC width fd to its input width; crop=start
      trains on each clip's first `sec` seconds, as the library's audio.crop=start, instead of a window drawn
      from its first 4 s; loss=mse regresses the unnormalised targets as the library's VICReg invariance term)
"""
import json
import os
import sys
import time
import wave

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', '..', 'python'))
import audio_reference  # noqa: E402  (the mel filterbank of tests/fixtures/audio)

DATA = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'data', 'icons-speech')
LOG_FLOOR = float(np.log(1.19e-7))


def inputs(work):
    """The captions and image folders that `byol-align embed` turns into the targets and galleries."""
    rows = [json.loads(line) for line in open(os.path.join(DATA, 'clips.jsonl'))]
    train_items = [json.loads(line) for line in open(os.path.join(DATA, 'train.jsonl'))]
    test_items = [json.loads(line) for line in open(os.path.join(DATA, 'test_all.jsonl'))]
    with_audio = {r['id'] for r in rows if r['split'] == 'train'}
    with open(os.path.join(work, 'texts.jsonl'), 'w') as f:
        for i, r in enumerate(rows):
            f.write(json.dumps({'id': f'c{i}', 'text': r['caption']}) + '\n')
        for t in test_items:
            for j, caption in enumerate(t['text']):
                f.write(json.dumps({'id': f't{t["id"]}_{j}', 'text': caption}) + '\n')
    with open(os.path.join(work, 'trcaps.jsonl'), 'w') as f:
        for t in train_items:
            if t['id'] in with_audio:
                for j, caption in enumerate(t.get('text', [])):
                    f.write(json.dumps({'id': f'{t["id"]}_{j}', 'text': caption}) + '\n')
    for folder, items in (('testimg', test_items), ('trainimg', [t for t in train_items if t['id'] in with_audio])):
        os.makedirs(os.path.join(work, folder), exist_ok=True)
        for t in items:
            link = os.path.join(work, folder, f'{t["id"]}.png')
            if 'image' in t and not os.path.lexists(link):
                os.symlink(os.path.abspath(os.path.join(DATA, t['image'])), link)


def features(work):
    """log-mel (64 bands, hop 10 ms) of each clip's first 4 s, float16, floor-padded."""
    torch.set_num_threads(1)
    rows = [json.loads(line) for line in open(os.path.join(DATA, 'clips.jsonl'))]
    fb = audio_reference.mel_filterbank().float()
    window = torch.hann_window(400)
    out = torch.full((len(rows), 64, 401), LOG_FLOOR, dtype=torch.float16)
    lens = []
    for i, r in enumerate(rows):
        w = wave.open(os.path.join(DATA, r['file']))
        x = torch.from_numpy(np.frombuffer(w.readframes(w.getnframes()), dtype='<i2').astype(np.float32) / 32768)
        x = audio_reference.sinc_resample(x, w.getframerate(), 16000).float()[: 4 * 16000]
        s = torch.stft(x, 1024, hop_length=160, win_length=400, window=window, center=True, pad_mode='reflect', return_complex=True)
        m = torch.log(fb.t() @ (s.abs() ** 2) + 1.19e-7)
        out[i, :, : m.shape[1]] = m.half()
        lens.append(m.shape[1])
    torch.save({'feats': out, 'lens': torch.tensor(lens), 'rows': rows}, os.path.join(work, 'feats.pt'))


def load_npy(work, name):
    ids = open(os.path.join(work, f'{name}.npy.ids.txt')).read().split()
    ids = [os.path.basename(i).split('.')[0] for i in ids]
    return {k: j for j, k in enumerate(ids)}, ids, torch.from_numpy(np.load(os.path.join(work, f'{name}.npy'))).float()


def read_safetensors(path, prefix):
    """The float32 tensors of a safetensors file whose names start with prefix, by the rest of the name."""
    raw = open(path, 'rb').read()
    size = int.from_bytes(raw[:8], 'little')
    header = json.loads(raw[8:8 + size])
    out = {}
    for name, meta in header.items():
        if name.startswith(prefix) and meta.get('dtype') == 'F32':
            start, end = meta['data_offsets']
            values = np.frombuffer(raw[8 + size + start:8 + size + end], dtype='<f4').copy()
            out[name[len(prefix):]] = torch.from_numpy(values).reshape(meta['shape'])
    return out


def locked_head(checkpoint):
    """The shared projector of a byol-align run, locked: its weights and BatchNorm's scale and shift
    fixed, BatchNorm's statistics fresh and the audio's own (model.freezeHeads in the library)."""
    w = read_safetensors(checkpoint, 'model.online.projectors.shared.')
    head = nn.Sequential(nn.Linear(w['0.weight'].shape[1], w['0.weight'].shape[0]), nn.BatchNorm1d(w['0.weight'].shape[0]), nn.ReLU(),
                         nn.Linear(w['3.weight'].shape[1], w['3.weight'].shape[0]))
    with torch.no_grad():
        for key in ('0.weight', '0.bias', '1.weight', '1.bias', '3.weight', '3.bias'):
            layer, param = key.split('.')
            getattr(head[int(layer)], param).copy_(w[key])
    for p in head.parameters():
        p.requires_grad_(False)
    return head


class Encoder(nn.Module):
    """BYOL-A's encoder (three conv blocks, two FC layers of width fd, mean + max over time) and a
    head to 256: a trainable one (head=own), or a run's locked shared projector behind a Linear neck
    to its input width when fd differs from it (head=locked)."""

    def __init__(self, channels, fd=512, checkpoint=None):
        super().__init__()
        layers, c_in = [], 1
        for _ in range(3):
            layers += [nn.Conv2d(c_in, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(), nn.MaxPool2d(2)]
            c_in = channels
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Linear(channels * 8, fd), nn.ReLU(), nn.Dropout(0.3), nn.Linear(fd, fd), nn.ReLU())
        if checkpoint is None:
            self.head = nn.Sequential(nn.Linear(fd, 1024), nn.BatchNorm1d(1024), nn.ReLU(), nn.Linear(1024, 256))
        else:
            locked = locked_head(checkpoint)
            width = locked[0].in_features
            self.head = nn.Sequential(nn.Linear(fd, width), locked) if fd != width else locked

    def forward(self, x):
        x = self.fc(self.conv(x).permute(0, 3, 2, 1).flatten(2))
        return self.head(x.mean(1) + x.amax(1))


def train(work, args):
    torch.manual_seed(0)
    np.random.seed(0)
    channels, epochs, seconds, threads, kind = int(args.get('C', 16)), int(args.get('ep', 6)), float(args.get('sec', 2)), int(args.get('th', 1)), args['tgt']
    torch.set_num_threads(threads)
    d = torch.load(os.path.join(work, 'feats.pt'))
    feats, lens, rows = d['feats'], d['lens'], d['rows']
    mean, std = feats[:2000].float().mean(), feats[:2000].float().std()
    tix, tids, temb = load_npy(work, 'text')
    iix, _, iemb = load_npy(work, 'img')
    train_rows = [i for i, r in enumerate(rows) if r['split'] == 'train']
    test_rows = [i for i, r in enumerate(rows) if r['split'] == 'test']
    if kind == 'text':
        def target(i):
            return temb[tix[f'c{i}']]
    elif kind == 'randcap':
        _, cids, cemb = load_npy(work, 'trcaps')
        caps = {}
        for j, k in enumerate(cids):
            caps.setdefault(k.rsplit('_', 1)[0], []).append(j)
        train_rows = [i for i in train_rows if rows[i]['id'] in caps]

        def target(i):
            own = caps[rows[i]['id']]
            return cemb[own[np.random.randint(len(own))]]
    elif kind == 'image':
        rix, _, remb = load_npy(work, 'trimg')
        train_rows = [i for i in train_rows if rows[i]['id'] in rix]

        def target(i):
            return remb[rix[rows[i]['id']]]
    else:
        raise SystemExit(f'tgt must be text, randcap or image, got {kind}')
    frames = int(seconds * 100) + 1
    random_crop = args.get('crop', 'random') == 'random'  # crop=start: the first `sec` seconds, as the library's audio.crop
    mse = args.get('loss', 'cos') == 'mse'  # loss=mse: the library's VICReg invariance term on unnormalised projections
    checkpoint = None
    if args.get('head', 'own') == 'locked':
        run = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'runs', args.get('run', 'speech-stage2-noaudio'), 'checkpoints')
        checkpoint = os.path.join(run, sorted(os.listdir(run))[-1])
    model = Encoder(channels, int(args.get('fd', 512)), checkpoint)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], 1e-3, weight_decay=1e-4)
    steps = epochs * (len(train_rows) // 128)

    def batch(idx, augment):
        x = (feats[idx].float() - mean) / std
        if not augment:
            return x[:, None, :, :frames]
        out = torch.empty(len(idx), 64, frames)
        for j, i in enumerate(idx):
            start = np.random.randint(0, max(1, min(int(lens[i]), 401) - frames + 1)) if random_crop else 0
            out[j] = x[j, :, start:start + frames]
            f0 = np.random.randint(0, 56)
            out[j, f0:f0 + np.random.randint(0, 8)] = 0
            t0 = np.random.randint(0, frames - 20)
            out[j, :, t0:t0 + np.random.randint(0, 20)] = 0
        return out[:, None]

    def evaluate():
        model.eval()
        with torch.no_grad():
            a = F.normalize(torch.cat([model(batch(test_rows[k:k + 256], False)) for k in range(0, len(test_rows), 256)]), dim=1)
        model.train()
        top = (a @ F.normalize(iemb, dim=1).t()).topk(10, 1).indices
        to_image = np.mean([iix[rows[q]['id']] in top[n].tolist() for n, q in enumerate(test_rows)])
        test_caps = [k for k in tids if k.startswith('t')]
        owner = [k[1:].split('_')[0] for k in test_caps]
        top = (a @ F.normalize(temb[[tix[k] for k in test_caps]], dim=1).t()).topk(10, 1).indices
        to_text = np.mean([any(owner[j] == rows[q]['id'] for j in top[n].tolist()) for n, q in enumerate(test_rows)])
        return 100 * to_image, 100 * to_text

    step = 0
    for epoch in range(epochs):
        t0, total, perm = time.time(), 0.0, np.random.permutation(train_rows)
        for k in range(0, len(perm) - 127, 128):
            idx = perm[k:k + 128]
            for g in opt.param_groups:
                g['lr'] = 1e-3 * min(1, step / (0.05 * steps)) * 0.5 * (1 + np.cos(np.pi * step / steps))
            out, want = model(batch(idx, True)), torch.stack([target(i) for i in idx])
            loss = F.mse_loss(out, want) if mse else (2 - 2 * F.cosine_similarity(out, want, dim=1)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            total += loss.item()
        r = evaluate()
        print(f'tgt {kind} epoch {epoch + 1}: loss {total / (len(perm) // 128):.3f} audio->image R@10 {r[0]:.2f} ({r[0] / 0.377:.1f}x chance) '
              f'audio->text R@10 {r[1]:.2f} ({r[1] / 0.377:.1f}x) {time.time() - t0:.0f} s', flush=True)


if __name__ == '__main__':
    if len(sys.argv) < 3 or sys.argv[1] not in ('inputs', 'features', 'train'):
        raise SystemExit(__doc__)
    if sys.argv[1] == 'inputs':
        inputs(sys.argv[2])
    elif sys.argv[1] == 'features':
        features(sys.argv[2])
    else:
        train(sys.argv[2], dict(a.split('=', 1) for a in sys.argv[3:]))
