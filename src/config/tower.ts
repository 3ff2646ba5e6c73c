// Settings every modality's section has besides its own: whether its tower (encoder) is locked, in
// whole or all but its last blocks (src/align/freeze.ts), and whether training makes augmented
// views of it. They belong to the run, not to the modality, so they are taken out of the section
// before the modality is fitted (towerSettings, modalityOwnSettings) and never reach a plug-in.
import { z } from 'zod';
import type { FreezeSetting } from '../align/freeze.js';

/** The generic keys of a modality's section. */
export const TOWER_KEYS = ['freeze', 'views'] as const;

/** The zod shape of the generic keys, spread into each modality's section (and a plug-in's). */
export const towerShape = {
  freeze: z
    .union([z.boolean(), z.strictObject({ allButLast: z.number().int().positive() })])
    .default(false)
    .describe(
      "Lock the modality's encoder: true (all of it; LiT), false, or { allButLast: N }: only its last N blocks (and what follows them) train. Frozen weights get no gradient, no optimizer state and no weight decay; their BatchNorm stays in eval mode; a tower frozen whole is its own EMA target (docs/pretrained.md).",
    ),
  views: z
    .boolean()
    .default(true)
    .describe(
      "false: both of the modality's training views are its un-augmented input (as eval sees it). With the tower frozen whole, its features are then computed once and cached (train.featureCache).",
    ),
};

/** A modality's generic settings, with defaults. */
export interface TowerSettings {
  freeze: FreezeSetting;
  views: boolean;
}

/** The generic settings of a section (`{}` when the run's config has none for the modality). */
export function towerSettings(section: Record<string, unknown>): TowerSettings {
  return {
    freeze: (section.freeze as FreezeSetting | undefined) ?? false,
    views: (section.views as boolean | undefined) ?? true,
  };
}

/** The section without the generic keys: what the modality's factory is fitted with. */
export function modalityOwnSettings(section: Record<string, unknown>): Record<string, unknown> {
  const own = { ...section };
  for (const key of TOWER_KEYS) delete own[key];
  return own;
}

/** A plug-in's section schema with the generic keys added, when it is an object schema (else as it is). */
export function withTowerKeys(schema: z.ZodType<Record<string, unknown>>): z.ZodType<Record<string, unknown>> {
  return schema instanceof z.ZodObject ? (schema.extend(towerShape) as unknown as z.ZodType<Record<string, unknown>>) : schema;
}
