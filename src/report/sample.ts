// The report's sample: a few hundred image–caption pairs embedded in the run's retrieval space, as
// plain rows for the map and the retrieval examples.
import type { Tensor } from '../engine/index.js';
import { decodedImages } from '../data/manifest_loader.js';
import type { PairedItem } from '../data/paired.js';
import type { Modality } from '../modalities/modality.js';
import { SPACE_STAGES, type RetrievalSpace } from '../align/evaluate.js';
import { collatedBatches, embedBatches } from '../align/embed_batches.js';
import type { LoadedModel } from '../run/model_setup.js';

/**
 * Normalised embeddings of the sample's images and first captions. A query is compared with the
 * other side's gallery rows: in the 'pairing' space the query's prediction against the gallery's
 * target projection (as src/align/evaluate.ts does), in the others one stage on both sides.
 */
export interface EmbeddedSample {
  items: PairedItem[];
  imageQuery: number[][];
  imageGallery: number[][];
  textQuery: number[][];
  textGallery: number[][];
}

/** Up to n items spread evenly over the data set (deterministic). */
export function spread<T>(items: T[], n: number): T[] {
  if (items.length <= n) return items;
  return Array.from({ length: n }, (_, i) => items[Math.floor((i * items.length) / n)]!);
}

function rows(t: Tensor): number[][] {
  const [n, d] = t.shape as [number, number];
  const flat = t.toFlatArray();
  return Array.from({ length: n }, (_, i) => flat.slice(i * d, (i + 1) * d));
}

/** Embeds `items` (each with an image and a caption) in `space`. */
export async function embedSample(loaded: LoadedModel, items: PairedItem[], space: RetrievalSpace): Promise<EmbeddedSample> {
  const image = loaded.modalities.find((m) => m.name === 'image');
  const text = loaded.modalities.find((m) => m.name === 'text') as Modality<string> | undefined;
  if (!image || !text) throw new Error('the report map needs a model with image and text modalities');
  const { config, model } = loaded;
  const { query, gallery } = SPACE_STAGES[space];
  const stages = [query, gallery];
  const decode = { size: config.image.size, channels: config.image.channels, fit: config.image.fit };
  const images = await embedBatches(model, image, decodedImages({ items, source: 'report', skipped: {} }, decode, 128), stages, {
    normalize: true,
  });
  const captions = await embedBatches(
    model,
    text,
    collatedBatches(
      text,
      items.map((i) => i.captions[0]!),
      512,
    ),
    stages,
    { normalize: true },
  );
  try {
    return {
      items,
      imageQuery: rows(images.get(query)!),
      imageGallery: rows(images.get(gallery)!),
      textQuery: rows(captions.get(query)!),
      textGallery: rows(captions.get(gallery)!),
    };
  } finally {
    for (const t of [...images.values(), ...captions.values()]) t.dispose();
  }
}

/** Gallery indices by decreasing dot product with `query`. */
export function ranking(query: number[], gallery: number[][]): number[] {
  const scores = gallery.map((g) => g.reduce((s, x, i) => s + x * query[i]!, 0));
  return scores.map((_, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b);
}
