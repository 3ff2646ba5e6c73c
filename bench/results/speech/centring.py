"""Does the audio's bunching hold back audio as the query? Recall@10 on the test split, raw and with
each modality's embeddings centred on their own mean (an analysis, not a library feature;
docs/audio.md).

Inputs: `byol-align embed --space projection -o WORK/{a,i,t}.npy` of a run on the test clips
(data/icons-speech/speech/test), the test images (a folder of links ID.png, as
audio_targets_study.py makes) and the test captions (a JSONL of {"id": "tID_J", "text"}, as in
audio_targets_study.py's texts.jsonl).
Usage: /usr/bin/python3 bench/results/speech/centring.py WORK
"""
import os
import sys

import numpy as np


def load(work, name):
    x = np.load(os.path.join(work, f'{name}.npy'))
    ids = [os.path.basename(line.strip()).split('.')[0] for line in open(os.path.join(work, f'{name}.npy.ids.txt'))]
    return x, ids


def recall_at_10(queries, query_ids, gallery, gallery_owner):
    """Percent of queries whose own item is among the gallery's 10 nearest by cosine."""
    def unit(x):
        return x / np.linalg.norm(x, axis=1, keepdims=True)
    top = np.argsort(-(unit(queries) @ unit(gallery).T), axis=1, kind='stable')[:, :10]  # ties: first in the gallery
    return 100 * np.mean([any(gallery_owner[j] == query_ids[n] for j in top[n]) for n in range(len(query_ids))])


work = sys.argv[1]
a, audio_ids = load(work, 'a')
i, image_ids = load(work, 'i')
t, caption_ids = load(work, 't')
caption_owner = [c[1:].split('_')[0] for c in caption_ids]
for name, f in (('raw', lambda x: x), ('centred', lambda x: x - x.mean(0))):
    A, I, T = f(a), f(i), f(t)
    cells = {
        'audio->image': recall_at_10(A, audio_ids, I, image_ids),
        'audio->text': recall_at_10(A, audio_ids, T, caption_owner),
        'image->audio': recall_at_10(I, image_ids, A, audio_ids),
        'text->audio': recall_at_10(T, caption_owner, A, audio_ids),
        'image->text': recall_at_10(I, image_ids, T, caption_owner),
        'text->image': recall_at_10(T, caption_owner, I, image_ids),
    }
    print(name, ' '.join(f'{k} {v:.2f}' for k, v in cells.items()))
