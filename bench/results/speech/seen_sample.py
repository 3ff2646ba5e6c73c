"""A test-sized sample of the training items themselves, to tell "learned nothing" from "does not generalise".

Writes data/icons-speech/train_seen_sample.jsonl: 2,651 items (the size of test_all.jsonl) drawn with
seed 0 from data/icons-speech/train_transcripts.jsonl among those with an image, text and a clip, as
they are there (the text is the clip's transcript). `byol-align eval` on it retrieves clips that a
run trained on (docs/audio.md).
Usage: /usr/bin/python3 bench/results/speech/seen_sample.py   (after transcript_manifest.py)
"""
import json
import os
import random

DATA = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'data', 'icons-speech')

items = [json.loads(line) for line in open(os.path.join(DATA, 'train_transcripts.jsonl'))]
full = [item for item in items if item.get('image') and item.get('text') and item.get('audio')]
random.seed(0)
with open(os.path.join(DATA, 'train_seen_sample.jsonl'), 'w') as out:
    for item in random.sample(full, 2651):
        out.write(json.dumps(item) + '\n')
print(f'wrote {os.path.join(DATA, "train_seen_sample.jsonl")}: 2651 of the {len(full)} training items with all three')
