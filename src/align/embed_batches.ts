// Embedding many batches of one modality: the one loop behind evaluation (every stage a set of
// retrieval spaces needs, from one forward pass per batch), `embed` and the report's sample.
// Batches are collated on the CPU and copied to the model's device; the embeddings stay there.
import { autocast, cat, F, keep, tidy, type Tensor } from '../engine/index.js';
import type { Modality } from '../modalities/modality.js';
import type { AlignModel, EmbeddingStage } from './model.js';
import { modelDevice, onDevice } from './device.js';

/**
 * Each stage's embeddings of every batch, concatenated in order, on the model's device; each batch
 * (a modality's collated form, on any device) is disposed once embedded. With `normalize`, every
 * row has unit length. With `precision: 'bfloat16'` the forward runs under autocast (matmuls and
 * convolutions in bfloat16, norms in float32) and the embeddings come back float32: on a CPU with
 * bfloat16 arithmetic a third less time for the text tower and head, within 5e-5 of float32's
 * cosine (bench/RESULTS.md, issue 14).
 *
 * @example
 * const byStage = await embedBatches(model, text, captionBatches, ['projection', 'encoder']);
 * byStage.get('projection'); // [N, d]
 */
export async function embedBatches(
  model: AlignModel,
  modality: Modality,
  batches: AsyncIterable<Tensor> | Iterable<Tensor>,
  stages: readonly EmbeddingStage[],
  options: { normalize?: boolean; precision?: 'float32' | 'bfloat16' } = {},
): Promise<Map<EmbeddingStage, Tensor>> {
  const parts = new Map<EmbeddingStage, Tensor[]>(stages.map((s) => [s, []]));
  const device = modelDevice(model);
  for await (const batch of batches) {
    const embedded = tidy(() => {
      const input = modality.evalInput(onDevice(batch, device));
      const forward = () => model.embedStages(modality.name, input, stages);
      const byStage = options.precision === 'bfloat16' ? autocast('bfloat16', device, forward) : forward();
      return new Map(
        [...byStage].map(([s, t]) => {
          const out = options.precision === 'bfloat16' ? t.float() : t; // autocast's outputs are bfloat16
          return [s, options.normalize ? F.normalize(out) : out];
        }),
      );
    });
    for (const [stage, t] of embedded) parts.get(stage)!.push(keep(t));
    batch.dispose();
  }
  const out = new Map<EmbeddingStage, Tensor>();
  for (const [stage, list] of parts) {
    if (list.length === 0) throw new Error(`no ${modality.name} batches to embed`);
    out.set(stage, keep(cat(list)));
    for (const t of list) t.dispose();
  }
  return out;
}

/** A modality's raw items collated in batches of `batchSize`, in order. */
export async function* collatedBatches<T>(modality: Modality<T>, items: readonly T[], batchSize: number): AsyncIterable<Tensor> {
  for (let i = 0; i < items.length; i += batchSize) yield await modality.collate(items.slice(i, i + batchSize));
}
