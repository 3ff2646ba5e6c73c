"""The spoken icon set's training manifest with each clip paired with its transcript (docs/audio.md).

data/icons-speech/train.jsonl lists, for an item with a clip and captions, all of the item's
captions; the clip speaks one of them (data/icons-speech/clips.jsonl says which). This writes
train_transcripts.jsonl, the same items with the same modalities, where such an item's `text` is
only the caption its clip speaks. Items without a clip, or without text, are unchanged: no item
gains a modality, and no caption is added that the item did not have.
Usage: /usr/bin/python3 bench/results/speech/transcript_manifest.py   (after npm run data:speech)
"""
import json
import os

DATA = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'data', 'icons-speech')

spoken = {}
for line in open(os.path.join(DATA, 'clips.jsonl')):
    clip = json.loads(line)
    if clip['split'] == 'train':
        spoken[clip['id']] = clip['caption']

changed = 0
with open(os.path.join(DATA, 'train_transcripts.jsonl'), 'w') as out:
    for line in open(os.path.join(DATA, 'train.jsonl')):
        item = json.loads(line)
        if 'audio' in item and item.get('text'):
            caption = spoken[item['id']]
            if caption not in item['text']:
                raise SystemExit(f"item {item['id']}: its clip speaks {caption!r}, which is not one of its captions")
            item['text'] = [caption]
            changed += 1
        out.write(json.dumps(item) + '\n')
print(f'wrote {os.path.join(DATA, "train_transcripts.jsonl")}: {changed} items with a clip and captions now list its transcript alone')
