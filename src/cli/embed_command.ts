// `byol-align embed`: embeddings of new images, texts or vectors, to stdout or a file.
import { embedInputs, readEmbedInputs } from '../run/embed_run.js';
import { embeddingFiles, jsonlText, writeEmbeddings } from '../run/embedding_files.js';
import { checkOutputFile } from '../run/run_dir.js';
import {
  choiceOption,
  deviceOption,
  pluginOption,
  requiredOption,
  stringOption,
  UsageError,
  type CommandSpec,
  type OptionValues,
} from './options.js';
import { threadsOption } from './train_command.js';
import { checkpointOption, loadModelFor } from './eval_command.js';

export const embedSpec: CommandSpec = {
  name: 'embed',
  summary: 'Embed images, texts or vectors into the shared space (l2-normalised).',
  options: {
    checkpoint: checkpointOption,
    modality: { type: 'string', value: 'M', help: 'image, text or vector (or another registered modality)' },
    input: {
      type: 'string',
      value: 'FILE|DIR',
      help: 'image: a folder of images or one image; text: .txt (one per line) or .jsonl {"id","text"}; vector: .jsonl {"id","vector"}; a plug-in\'s modality M: its own reader, else .jsonl {"id","M"}',
    },
    out: {
      type: 'string',
      short: 'o',
      value: 'FILE',
      help: '.jsonl ({"id","embedding"} per line; default: stdout), .npy (+ FILE.ids.txt) or .safetensors',
    },
    space: { type: 'string', value: 'S', help: 'projection or encoder (default: the space the run retrieves best in)' },
    force: { type: 'boolean', help: 'overwrite an existing --out file' },
    threads: threadsOption,
    device: deviceOption,
    plugin: pluginOption,
  },
};

export async function embedCommand(values: OptionValues): Promise<number> {
  const modality = requiredOption(values, embedSpec, 'modality');
  const input = requiredOption(values, embedSpec, 'input');
  const out = stringOption(values, 'out');
  const space = choiceOption(values, 'space', ['projection', 'encoder'] as const);
  if (out !== undefined) {
    if (!/\.(jsonl|npy|safetensors)$/i.test(out)) throw new UsageError(`--out must end in .jsonl, .npy or .safetensors, got '${out}'`);
    for (const f of embeddingFiles(out)) checkOutputFile(f, values.force === true); // before the work, not after it
  }
  const loaded = await loadModelFor(values, embedSpec);
  try {
    const inputs = readEmbedInputs(modality, input, { allowOutsideImages: loaded.config.data.allowOutsideImages });
    const result = await embedInputs(loaded, modality, inputs, { space });
    if (out === undefined) process.stdout.write(jsonlText(result.ids, result.embeddings));
    else {
      writeEmbeddings(out, result.ids, result.embeddings, { force: values.force === true });
      process.stderr.write(
        `wrote ${result.ids.length} ${modality} embeddings of width ${result.embeddings.shape[1]} (${result.space} space) to ${out}\n`,
      );
    }
  } finally {
    await Promise.all(loaded.modalities.map((m) => m.close()));
  }
  return 0;
}
