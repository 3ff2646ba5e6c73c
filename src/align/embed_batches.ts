// Embedding many batches of one modality: the one loop behind evaluation (every stage a set of
// retrieval spaces needs, from one forward pass per batch), `embed` and the report's sample.
// Batches are collated on the CPU and copied to the model's device; the embeddings stay there.
import { cat, F, keep, tidy, type Tensor } from '../engine/index.js';
import type { Modality } from '../modalities/modality.js';
import type { AlignModel, EmbeddingStage } from './model.js';
import { modelDevice, onDevice } from './device.js';

/**
 * Each stage's embeddings of every batch, concatenated in order, on the model's device; each batch
 * (a modality's collated form, on any device) is disposed once embedded. With `normalize`, every
 * row has unit length.
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
  options: { normalize?: boolean } = {},
): Promise<Map<EmbeddingStage, Tensor>> {
  const parts = new Map<EmbeddingStage, Tensor[]>(stages.map((s) => [s, []]));
  const device = modelDevice(model);
  for await (const batch of batches) {
    const embedded = tidy(() => {
      const byStage = model.embedStages(modality.name, modality.evalInput(onDevice(batch, device)), stages);
      return options.normalize ? new Map([...byStage].map(([s, t]) => [s, F.normalize(t)])) : byStage;
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
