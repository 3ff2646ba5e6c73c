// Modalities from a user's own modules: `--plugin MODULE` on the command line, or `plugins:
// [MODULE, ...]` in a config. Importing a plug-in module registers its modalities
// (registerModality); the command imports the plug-ins before it validates the config, and a run
// records them (as absolute paths) in its saved config, so that --resume, eval, embed, export and
// report import them again.
import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/** A plug-in that is not a module path or package name, or cannot be imported. */
export class PluginError extends Error {
  override readonly name = 'PluginError';
}

/** The plug-ins imported so far, by resolved specifier. */
const imported = new Set<string>();

/** A file path has a slash or ends in .js, .mjs or .cjs; anything else is a package name. */
const isPath = (specifier: string): boolean => /[\\/]/.test(specifier) || /\.[mc]?js$/.test(specifier);

/**
 * A plug-in as the config records it: a file path made absolute against `baseDir` (the config
 * file's folder, or the working folder for --plugin), a package name as it is.
 *
 * @example
 * resolvePluginSpecifier('./tone.mjs', '/home/me/runs'); // '/home/me/runs/tone.mjs'
 */
export function resolvePluginSpecifier(specifier: string, baseDir: string): string {
  if (typeof specifier !== 'string' || specifier.trim() === '')
    throw new PluginError(`a plug-in must be a module path or package name, got ${JSON.stringify(specifier)}`);
  return isPath(specifier) ? resolve(baseDir, specifier) : specifier;
}

/** True once `specifier` (as resolvePluginSpecifier gives it) has been imported by {@link importModalityPlugins}. */
export function isPluginImported(specifier: string): boolean {
  return imported.has(specifier);
}

/** The URL to import: an absolute path's file URL, or a package resolved from the working folder (else from here). */
function moduleUrl(specifier: string): string {
  if (isAbsolute(specifier)) return pathToFileURL(specifier).href;
  try {
    return pathToFileURL(createRequire(join(process.cwd(), 'package.json')).resolve(specifier)).href;
  } catch {
    return specifier;
  }
}

/**
 * Imports each plug-in module once (in order), so that its registerModality() calls run. A module
 * that cannot be imported is a PluginError naming it.
 *
 * @example
 * await importModalityPlugins([resolvePluginSpecifier('./tone.mjs', process.cwd())]);
 */
export async function importModalityPlugins(specifiers: readonly string[]): Promise<void> {
  for (const specifier of specifiers) {
    if (imported.has(specifier)) continue;
    try {
      await import(moduleUrl(specifier));
    } catch (err) {
      throw new PluginError(`plug-in ${specifier}: cannot import it (${(err as Error)?.message ?? String(err)})`, { cause: err });
    }
    imported.add(specifier);
  }
}
