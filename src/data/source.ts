// A data set named by one string, as configs and the command line name them:
//   coco:ANNOTATIONS.json   (COCO captions; images under the given folder)
//   karpathy:FILE[#split]   (Karpathy's dataset_*.json; split train, val or test, default by role)
//   jsonl:MANIFEST.jsonl    (any subset of image, text and vector per line)
import { loadCocoCaptions } from './coco.js';
import { loadJsonlManifest } from './jsonl.js';
import { loadKarpathySplit, type KarpathySplit } from './karpathy.js';
import type { PairedDataset, ParseOptions } from './paired.js';

export interface DataSourceOptions extends ParseOptions {
  /** Image folder of a COCO or Karpathy data set. */
  images?: string;
  /** The Karpathy split when the spec names none. */
  defaultSplit?: KarpathySplit;
}

/**
 * Loads the data set a spec names; errors say what form is expected.
 *
 * @example
 * loadDataSource('coco:annotations/captions_val2017.json', { images: 'val2017' });
 * loadDataSource('karpathy:dataset_coco.json#test', { images: '/data/coco' });
 */
export function loadDataSource(spec: string, options: DataSourceOptions = {}): PairedDataset {
  const colon = spec.indexOf(':');
  const kind = colon > 0 ? spec.slice(0, colon) : '';
  const rest = spec.slice(colon + 1);
  const needImages = (): string => {
    if (options.images === undefined) throw new TypeError(`data '${spec}': a ${kind} data set needs its image folder (--images DIR)`);
    return options.images;
  };
  switch (kind) {
    case 'coco':
      return loadCocoCaptions(rest, needImages(), options);
    case 'karpathy': {
      const hash = rest.lastIndexOf('#');
      const file = hash >= 0 ? rest.slice(0, hash) : rest;
      const split = hash >= 0 ? rest.slice(hash + 1) : (options.defaultSplit ?? 'test');
      if (!['train', 'val', 'test'].includes(split))
        throw new TypeError(`data '${spec}': the Karpathy split must be train, val or test, got '${split}'`);
      return loadKarpathySplit(file, needImages(), split as KarpathySplit, options);
    }
    case 'jsonl':
      return loadJsonlManifest(rest, options);
    default:
      throw new TypeError(`data '${spec}': expected coco:FILE, karpathy:FILE[#split] or jsonl:FILE`);
  }
}
