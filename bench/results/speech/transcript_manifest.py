"""The spoken icon set's training manifest with each clip paired with its transcript (docs/audio.md).

data/icons-speech/train.jsonl lists, for an item with a clip and captions, all of the item's
captions; the clip speaks one of them (data/icons-speech/clips.jsonl says which). This writes
train_transcripts.jsonl, the same items with the same modalities, where such an item's `text` is
only the caption its clip speaks. Items without a clip, or without text, are unchanged: no item
gains a modality, and no caption is added that the item did not have.

With --transcript-only it writes train_audio_transcripts.jsonl instead, where the audio's only
partner is its transcript: every item with a clip lists the caption the clip speaks as its text
(clips.jsonl has one for every clip, also where the item lists no captions) and loses its image.
Items without a clip are unchanged. A study of the audio's partner, not the data set's design.
Usage: /usr/bin/python3 bench/results/speech/transcript_manifest.py [--transcript-only]   (after npm run data:speech)
"""
import json
import os
import sys

DATA = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'data', 'icons-speech')

spoken = {}
for line in open(os.path.join(DATA, 'clips.jsonl')):
    clip = json.loads(line)
    if clip['split'] == 'train':
        spoken[clip['id']] = clip['caption']

transcript_only = sys.argv[1:] == ['--transcript-only']
name = 'train_audio_transcripts.jsonl' if transcript_only else 'train_transcripts.jsonl'
changed = 0
with open(os.path.join(DATA, name), 'w') as out:
    for line in open(os.path.join(DATA, 'train.jsonl')):
        item = json.loads(line)
        if 'audio' in item and transcript_only:
            item['text'] = [spoken[item['id']]]
            item.pop('image', None)
            changed += 1
        elif 'audio' in item and item.get('text'):
            caption = spoken[item['id']]
            if caption not in item['text']:
                raise SystemExit(f"item {item['id']}: its clip speaks {caption!r}, which is not one of its captions")
            item['text'] = [caption]
            changed += 1
        out.write(json.dumps(item) + '\n')
what = 'items with a clip now pair it with its transcript alone' if transcript_only else 'items with a clip and captions now list its transcript alone'
print(f'wrote {os.path.join(DATA, name)}: {changed} {what}')
