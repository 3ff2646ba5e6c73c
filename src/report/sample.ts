// The report's sample: a few hundred image–caption pairs embedded in the run's retrieval space, as
// plain rows for the map and the retrieval examples.
import { cat, noGrad, tidy, F, type Tensor } from '../engine/index.js';
import { PairedImageLoader } from '../data/loader.js';
import type { PairedItem } from '../data/paired.js';
import type { Modality } from '../modalities/modality.js';
import type { EmbeddingStage } from '../align/model.js';
import type { RetrievalSpace } from '../align/evaluate.js';
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

const STAGES: Record<RetrievalSpace, { query: EmbeddingStage; gallery: EmbeddingStage }> = {
  projection: { query: 'projection', gallery: 'projection' },
  encoder: { query: 'encoder', gallery: 'encoder' },
  pairing: { query: 'prediction', gallery: 'target-projection' },
};

/** Embeds `items` (each with an image and a caption) in `space`. */
export async function embedSample(loaded: LoadedModel, items: PairedItem[], space: RetrievalSpace): Promise<EmbeddedSample> {
  const image = loaded.modalities.find((m) => m.name === 'image');
  const text = loaded.modalities.find((m) => m.name === 'text') as Modality<string> | undefined;
  if (!image || !text) throw new Error('the report map needs a model with image and text modalities');
  const { config, model } = loaded;
  const { query, gallery } = STAGES[space];
  // Both stages from one evalInput; tidy frees the input and keeps the returned pair.
  const embedBoth = (modality: Modality, batch: Tensor): [Tensor, Tensor] =>
    noGrad(() =>
      tidy(() => {
        const input = modality.evalInput(batch);
        return [F.normalize(model.embed(modality.name, input, query)), F.normalize(model.embed(modality.name, input, gallery))];
      }),
    );
  const loader = new PairedImageLoader(
    { items, source: 'report', skipped: {} },
    { batchSize: 128, size: config.image.size, channels: config.image.channels, fit: config.image.fit, shuffle: false, dropLast: false },
  );
  const imageQuery: Tensor[] = [];
  const imageGallery: Tensor[] = [];
  try {
    for await (const b of loader.epoch(0)) {
      const [q, g] = embedBoth(image, b.images);
      imageQuery.push(q);
      imageGallery.push(g);
      b.images.dispose();
    }
  } finally {
    await loader.close();
  }
  const ids = await text.collate(items.map((i) => i.captions[0]!));
  const [textQuery, textGallery] = embedBoth(text, ids);
  ids.dispose();
  const toRows = (parts: Tensor[]): number[][] => {
    const all = cat(parts);
    for (const p of parts) p.dispose();
    const out = rows(all);
    all.dispose();
    return out;
  };
  return {
    items,
    imageQuery: toRows(imageQuery),
    imageGallery: toRows(imageGallery),
    textQuery: toRows([textQuery]),
    textGallery: toRows([textGallery]),
  };
}

/** Gallery indices by decreasing dot product with `query`. */
export function ranking(query: number[], gallery: number[][]): number[] {
  const scores = gallery.map((g) => g.reduce((s, x, i) => s + x * query[i]!, 0));
  return scores.map((_, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b);
}
