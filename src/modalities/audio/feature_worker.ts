// The audio feature thread's side of feature_thread.ts: each request's clips through the audio
// modality's own normalisedLogMel, one featuriser per set of settings, one libtorch thread (the
// trainer's step has the others).
import { parentPort } from 'node:worker_threads';
import { setNumThreads } from '../../engine/index.js';
import { AudioDecodeError } from './decode.js';
import { AudioModality } from './index.js';
import type { FeatureError, FeatureReply, FeatureRequest } from './feature_thread.js';

const port = parentPort!;
// OpenMP's thread count is a per-thread setting: this thread sets its own.
setNumThreads(1);
const modalities = new Map<string, AudioModality>();

function errorOf(error: unknown): FeatureError {
  if (error instanceof AudioDecodeError)
    return { name: error.name, message: error.message, file: error.file, problem: error.problem, index: error.index };
  return error instanceof Error ? { name: error.name, message: error.message } : { name: 'Error', message: String(error) };
}

port.on('message', ({ id, settings, normalization, items }: FeatureRequest) => {
  try {
    const key = JSON.stringify([settings, normalization]);
    let modality = modalities.get(key);
    if (modality === undefined) {
      // A process rarely has more than one or two; a long-lived one that fits many stays small.
      if (modalities.size >= 8) modalities.clear();
      modalities.set(key, (modality = new AudioModality(settings, normalization)));
    }
    const values = modality.normalizedLogMel(items);
    port.postMessage({ id, values } satisfies FeatureReply);
  } catch (error) {
    port.postMessage({ id, error: errorOf(error) } satisfies FeatureReply);
  }
});
