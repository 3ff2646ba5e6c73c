// The modalities a config can name. A new kind of data (audio, tables) is a folder under
// src/modalities/ with a ModalityFactory, added here or registered at run time.
import type { Modality, ModalityFactory, ModalitySpec } from './modality.js';
import { imageModality } from './image/index.js';
import { textModality } from './text/index.js';
import { vectorModality } from './vector/index.js';

const factories = new Map<string, ModalityFactory<never>>();

/** Makes a modality available to configs under factory.name; a second one of that name is an error. */
export function registerModality<Raw>(factory: ModalityFactory<Raw>): void {
  if (factories.has(factory.name)) throw new Error(`a modality named '${factory.name}' is already registered`);
  factories.set(factory.name, factory as unknown as ModalityFactory<never>);
}

/** The factory registered under `name`; the error lists the known names. */
export function modalityFactory<Raw = unknown>(name: string): ModalityFactory<Raw> {
  const factory = factories.get(name);
  if (!factory) throw new Error(`unknown modality '${name}'; registered modalities: ${[...factories.keys()].join(', ')}`);
  return factory as unknown as ModalityFactory<Raw>;
}

export function registeredModalities(): string[] {
  return [...factories.keys()];
}

/** Rebuilds a saved modality (a checkpoint's spec) with its registered factory. */
export function restoreModality<Raw = unknown>(spec: ModalitySpec): Modality<Raw> {
  return modalityFactory<Raw>(spec.name).restore(spec);
}

registerModality(imageModality);
registerModality(textModality);
registerModality(vectorModality);
