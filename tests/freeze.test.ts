// Locking towers (src/align/freeze.ts): a tower frozen whole or all but its last blocks keeps its
// weights and BatchNorm statistics bitwise through training, gets no gradient and no optimizer
// state, stays in eval mode, and shares itself with the EMA target; checkpoints still resume.
// Locking the shared heads too (src/align/freeze_heads.ts, model.freezeHeads) keeps a locked
// modality's embeddings bitwise in every stage while another modality trains into its space.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed, randn, tensor, type Generator, type Tensor } from '../src/index.js';
import { parseSafetensors, serializeSafetensors } from '../src/engine/safetensors.js';
import { BatchNorm } from '../src/nn/batch_norm.js';
import type { Module, TensorModule } from '../src/nn/index.js';
import { AlignModel, type AlignModelOptions } from '../src/align/model.js';
import { AlignTrainer, type AlignBatch, type AlignTrainOptions } from '../src/align/train.js';
import { freezePlan, parseFreezeSetting, type FreezeSetting } from '../src/align/freeze.js';
import { ALIGNMENT_OBJECTIVES } from '../src/config/objectives.js';
import { SmallCnn } from '../src/modalities/image/small_cnn.js';
import { TextTransformer } from '../src/modalities/text/encoder.js';
import { vectorModality } from '../src/modalities/vector/index.js';
import { withName, type Modality } from '../src/modalities/modality.js';
import { resolveConfig } from '../src/config/load.js';

const N = 48;
const BATCH = 16; // 3 steps per epoch

/** Small float images [N, 3, 12, 12] with noise views, encoded by a SmallCnn (BatchNorm inside). */
function pictures(): Modality<Tensor> {
  return {
    name: 'pic',
    featureDim: 16,
    collate: async ([batch]) => batch!,
    views: (batch: Tensor, generator: Generator) => [
      batch.add(randn(batch.shape, { generator }).mul(0.1)),
      batch.add(randn(batch.shape, { generator }).mul(0.1)),
    ],
    evalInput: (batch) => batch,
    createEncoder: () => new SmallCnn({ inChannels: 3, widths: [4, 8, 16] }),
    toJSON: () => ({ name: 'pic', settings: {} }),
    close: async () => {},
  };
}

async function setup(
  freeze: FreezeSetting,
  modelOptions: AlignModelOptions = {},
): Promise<{ model: AlignModel; options: AlignTrainOptions; created: Map<string, number[]>[] }> {
  manualSeed(3);
  const images = randn([N, 3, 12, 12]);
  const flat = randn([N, 5]).toFlatArray();
  const vectors = Array.from({ length: N }, (_, i) => flat.slice(i * 5, (i + 1) * 5));
  const pic = pictures();
  const vec = withName(await vectorModality.fit({ featureDim: 16, hiddenDims: [8] }, vectors), 'vec');
  const modalities: Modality[] = [pic, vec];
  manualSeed(5);
  // Each picture encoder's weights as created (a pretrained tower's, say), before the model holds it.
  const created: Map<string, number[]>[] = [];
  const createPicEncoder = (): TensorModule => {
    const encoder = pic.createEncoder();
    created.push(snapshot(encoder));
    return encoder;
  };
  const model = new AlignModel(
    [
      { name: 'pic', create: createPicEncoder, featureDim: 16, freeze },
      { name: 'vec', create: () => vec.createEncoder(), featureDim: 16 },
    ],
    { projectionHiddenDim: 16, projectionDim: 8, predictionHiddenDim: 16, tauBase: 0.9, ...modelOptions },
  );
  async function* batches(epoch: number, fromStep: number): AsyncIterable<AlignBatch> {
    for (let step = fromStep; step < N / BATCH; step++) {
      const idx = Array.from({ length: BATCH }, (_, i) => (step * BATCH + i * (epoch + 1)) % N);
      yield {
        size: BATCH,
        inputs: new Map([
          ['pic', { batch: images.indexSelect(0, tensorOf(idx)), rows: null }],
          ['vec', { batch: await vec.collate(idx.map((i) => vectors[i]!)), rows: null }],
        ]),
      };
    }
  }
  const options: AlignTrainOptions = {
    modalities,
    batches,
    stepsPerEpoch: N / BATCH,
    epochs: 2,
    batchSize: BATCH,
    weights: { ...ALIGNMENT_OBJECTIVES.lightCrossPlusVicReg },
    optimizer: 'adamw',
    baseLr: 1e-2,
    weightDecay: 0.1,
    scaleLrByBatch: false,
    warmupSteps: 0,
    seed: 7,
  };
  return { model, options, created };
}

function tensorOf(idx: number[]): Tensor {
  return tensor(idx, { dtype: 'int64' });
}

/** name → values of a module's parameters and buffers. */
function snapshot(module: Module): Map<string, number[]> {
  return new Map([...module.stateDict()].map(([k, t]) => [k, t.toFlatArray()]));
}

function changed(before: Map<string, number[]>, module: Module): string[] {
  return [...module.stateDict()].filter(([k, t]) => JSON.stringify(t.toFlatArray()) !== JSON.stringify(before.get(k))).map(([k]) => k);
}

test('a tower frozen whole is bitwise unchanged (weights and BatchNorm statistics), stays in eval mode, and is shared with the target', async () => {
  const { model, options, created } = await setup(true);
  const tower = model.online.tower('pic');
  assert.equal(created.length, 1, 'one tower was built: the target shares it');
  const before = created[0]!;
  const headsBefore = snapshot(model.online.projectors);
  const trainer = new AlignTrainer(model, options);
  const modes: boolean[] = [];
  await trainer.run({ afterStep: () => void modes.push(...tower.modules().map((m) => m.training)) });
  assert.equal(trainer.step, 6);
  assert.deepEqual(changed(before, tower), [], 'frozen weights or statistics changed');
  assert.ok(changed(headsBefore, model.online.projectors).length > 0, 'the heads trained');
  assert.ok(!modes.includes(true), 'the frozen tower was in training mode during a step');
  assert.ok(tower.modules().some((m) => m instanceof BatchNorm));
  assert.equal(model.target.tower('pic'), tower, 'the target holds the online tower itself');
  assert.ok(tower.parameters().every((p) => p.grad === null && !p.requiresGrad));
  // No optimizer state and no parameter group holds a frozen parameter; the rest all train.
  const optimized = new Set(trainer.optimizer.paramGroups.flatMap((g) => g.params));
  assert.ok(tower.parameters().every((p) => !optimized.has(p) && trainer.optimizer.stateOf(p) === undefined));
  assert.equal(optimized.size, model.online.parameters().length - tower.parameters().length);
  // The state dict holds the tower once, under the online network.
  const keys = [...model.stateDict().keys()];
  assert.ok(keys.some((k) => k.startsWith('online.encoders.pic.0.')));
  assert.ok(!keys.some((k) => k.startsWith('target.encoders.pic.0.')));
  assert.ok(keys.some((k) => k.startsWith('target.encoders.vec.0.')));
});

test('freezeHeads: a locked modality embeds bitwise as before in every stage; the other modality, its statistics and nothing else train', async () => {
  const { model, options } = await setup(true, { freezeHeads: true });
  const input = randn([6, 3, 12, 12]);
  const stages = ['encoder', 'projection', 'prediction', 'target-projection'] as const;
  const embed = (): number[][] => [...model.embedStages('pic', input, stages).values()].map((t) => t.toFlatArray());
  const before = embed();
  const heads = [model.online.projectors, model.online.predictors!, model.target.projectors];
  const headsBefore = heads.map(snapshot);
  const vecTower = snapshot(model.online.tower('vec'));
  const trainer = new AlignTrainer(model, options);
  const picStatistics = [model.online.sharedProjector(), model.online.sharedPredictor(), model.target.sharedProjector()].map(
    (head) => head.statistics('pic')!,
  );
  const modes: boolean[] = [];
  await trainer.run({ afterStep: () => void modes.push(...picStatistics.map((m) => m.training)) });
  assert.equal(trainer.step, 6);
  assert.deepEqual(embed(), before, "the locked modality's embeddings moved");
  assert.ok(!modes.includes(true), "the locked modality's head statistics were in training mode during a step");
  // Every shared weight stays; only the trained modality's own statistics move.
  for (const [i, head] of heads.entries()) {
    const moved = changed(headsBefore[i]!, head);
    assert.ok(moved.length > 0 && moved.every((k) => k.includes('.statistics.vec.')), `head ${i} changed ${moved.join(', ')}`);
  }
  assert.ok(changed(vecTower, model.online.tower('vec')).length > 0, 'the other tower trained');
  const optimized = new Set(trainer.optimizer.paramGroups.flatMap((g) => g.params));
  assert.deepEqual(
    model.online.parameters().filter((p) => optimized.has(p)),
    model.online.tower('vec').parameters(),
    'only the unlocked tower is optimised',
  );
  await assert.rejects(setup(true, { freezeHeads: true, sharedHeads: false }), /model\.freezeHeads .* needs model\.sharedHeads true/);
});

test('all but the last block: the first blocks are bitwise unchanged, the last trains', async () => {
  const { model, options } = await setup({ allButLast: 1 });
  const tower = model.online.tower('pic') as SmallCnn;
  const [first, second, last] = tower.blocks() as [Module, Module, Module];
  const before = [snapshot(first), snapshot(second), snapshot(last)];
  const trainer = new AlignTrainer(model, options);
  await trainer.run();
  assert.deepEqual(changed(before[0]!, first), []);
  assert.deepEqual(changed(before[1]!, second), []);
  // The last block's convolution, BatchNorm weight and bias, and its running statistics move.
  assert.deepEqual(changed(before[2]!, last).sort(), [
    '0.weight',
    '1.bias',
    '1.num_batches_tracked',
    '1.running_mean',
    '1.running_var',
    '1.weight',
  ]);
  assert.notEqual(model.target.tower('pic'), tower, 'a partly frozen tower has its own EMA target');
  const optimized = new Set(trainer.optimizer.paramGroups.flatMap((g) => g.params));
  for (const p of [...first.parameters(), ...second.parameters()])
    assert.ok(!optimized.has(p) && trainer.optimizer.stateOf(p) === undefined);
  for (const p of last.parameters()) assert.ok(optimized.has(p) && trainer.optimizer.stateOf(p) !== undefined);
});

test('a frozen run saved part way and resumed equals the uninterrupted run, bitwise', async () => {
  const straight = await setup(true);
  const whole = new AlignTrainer(straight.model, straight.options);
  const wholeLog = await whole.run();
  const first = await setup(true);
  const part1 = new AlignTrainer(first.model, first.options);
  const log1 = await part1.run({ stopAfter: 4 });
  const { tensors, meta } = part1.stateDict();
  const saved = parseSafetensors(serializeSafetensors(tensors, { trainer: JSON.stringify(meta) }));
  const second = await setup(true);
  const part2 = new AlignTrainer(second.model, second.options);
  part2.loadStateDict({ tensors: saved.tensors, meta: JSON.parse(saved.metadata.trainer!) });
  const log2 = await part2.run();
  assert.deepEqual(
    [...log1, ...log2].map((r) => r.terms),
    wholeLog.map((r) => r.terms),
  );
  const flat = (m: Map<string, Tensor>): Record<string, number[]> => Object.fromEntries([...m].map(([k, t]) => [k, t.toFlatArray()]));
  assert.deepEqual(flat(part2.stateDict().tensors), flat(whole.stateDict().tensors));
});

test('allButLast needs an encoder with blocks() and a count within them; errors name the setting', () => {
  const adapter: TensorModule = vectorModality.restore({ name: 'vector', settings: { dim: 4 } }).createEncoder();
  assert.throws(
    () => freezePlan(adapter, { allButLast: 1 }, 'vector.freeze'),
    /vector\.freeze: \{ allButLast: 1 \} needs an encoder that lists its blocks.*use true or false/,
  );
  assert.doesNotThrow(() => freezePlan(adapter, true, 'vector.freeze'));
  const cnn = new SmallCnn();
  assert.throws(() => freezePlan(cnn, { allButLast: 4 }, 'image.freeze'), /image\.freeze: allButLast must be an integer from 1 to 3/);
  assert.throws(() => parseFreezeSetting({ allButLast: 0 }, 'text.freeze'), /text\.freeze: expected true, false or \{ allButLast: N \}/);
  assert.throws(() => resolveConfig({ overrides: ['image.freeze=sometimes'] }), /image\.freeze/);
  assert.deepEqual(resolveConfig({ overrides: ['text.freeze={allButLast: 2}'] }).text.freeze, { allButLast: 2 });
});

test("a text Transformer's allButLast freezes the embeddings and earlier layers; the last layers and the final norm train", () => {
  const encoder = new TextTransformer({ vocabSize: 20, maxLength: 8, dModel: 8, layers: 3, heads: 2 });
  const plan = freezePlan(encoder, { allButLast: 1 }, 'text.freeze');
  const names = (frozen: boolean): string[] =>
    encoder
      .namedParameters()
      .filter(([, p]) => plan.frozen.has(p) === frozen)
      .map(([n]) => n);
  assert.ok(names(true).includes('token_embedding.weight') && names(true).includes('positional_embedding'));
  assert.ok(names(true).every((n) => !n.startsWith('layers.2.') && !n.startsWith('ln_final.')));
  assert.ok(names(false).length > 0 && names(false).every((n) => n.startsWith('layers.2.') || n.startsWith('ln_final.')));
  assert.deepEqual(plan.evalModules, encoder.blocks().slice(0, 2).concat(plan.evalModules.slice(2)));
});
