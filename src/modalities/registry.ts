// The modalities a config can name. A new kind of data (audio, tables) is a folder under
// src/modalities/ with a ModalityFactory, added here, or a user's module registered at run time
// (src/modalities/plugins.ts, docs/modalities.md).
import type { MediaFileKind } from '../data/paired.js';
import type { Modality, ModalityFactory, ModalitySpec } from './modality.js';
import { imageModality } from './image/index.js';
import { textModality } from './text/index.js';
import { vectorModality } from './vector/index.js';
import { audioModality } from './audio/index.js';

const factories = new Map<string, ModalityFactory<never>>();

/**
 * Makes a modality available to configs, data and checkpoints under factory.name; a second one of
 * that name is an error. Runs fit the registered modalities in the order they were registered.
 *
 * @example
 * registerModality({ name: 'tone', rawItems: (item) => (item.extra?.tone === undefined ? [] : [item.extra.tone]), fit, restore });
 */
export function registerModality<Raw>(factory: ModalityFactory<Raw>): void {
  const name: unknown = factory?.name;
  // The name is a config section, a JSONL field and a key of the model's weights.
  if (typeof name !== 'string' || !/^[A-Za-z][A-Za-z0-9_]*$/.test(name))
    throw new TypeError(`registerModality: the name must be a letter then letters, digits or _, got ${JSON.stringify(name)}`);
  for (const method of ['rawItems', 'fit', 'restore'] as const) {
    if (typeof factory[method] !== 'function') throw new TypeError(`registerModality: modality '${name}' has no ${method}() function`);
  }
  if (factories.has(factory.name)) throw new Error(`a modality named '${factory.name}' is already registered`);
  factories.set(factory.name, factory as unknown as ModalityFactory<never>);
}

/** The factory registered under `name`; the error lists the known names. */
export function modalityFactory<Raw = unknown>(name: string): ModalityFactory<Raw> {
  const factory = factories.get(name);
  if (!factory) throw new Error(`unknown modality '${name}'; registered modalities: ${[...factories.keys()].join(', ')}`);
  return factory as unknown as ModalityFactory<Raw>;
}

/** The registered names, in registration order: image, text, vector, then plug-ins. */
export function registeredModalities(): string[] {
  return [...factories.keys()];
}

/** The registered plug-ins whose JSONL field names files, by field: what loading checks them for (ParseOptions.mediaFields). */
export function registeredMediaFields(): Record<string, MediaFileKind> {
  return Object.fromEntries([...factories].flatMap(([name, f]) => (f.mediaFiles ? [[name, f.mediaFiles]] : [])));
}

/** Rebuilds a saved modality (a checkpoint's spec) with its registered factory. */
export function restoreModality<Raw = unknown>(spec: ModalitySpec): Modality<Raw> {
  return modalityFactory<Raw>(spec.name).restore(spec);
}

registerModality(imageModality);
registerModality(textModality);
registerModality(vectorModality);
registerModality(audioModality);
