import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { tensor, tidy, type Tensor } from '../src/index.js';
import {
  SGD,
  Adam,
  AdamW,
  LARS,
  Optimizer,
  LrScheduler,
  clipGradNorm,
  larsParamGroups,
  splitBiasAndNorm,
  scaleLr,
  warmupCosine,
  warmupCosineLr,
  type GroupHyperparameters,
  type OptimizerStateDict,
} from '../src/optim/index.js';
import { openScopeSize } from '../src/engine/scope.js';
import { trainingOptimizer, type OptimizerName } from '../src/byol/optimizer.js';
import { assertClose } from './helpers.js';

// ---- reference runs recorded from PyTorch by scripts/fixtures/optim_fixtures.py ----

interface Run {
  optimizer: 'SGD' | 'Adam' | 'AdamW';
  defaults: Record<string, unknown>;
  biasGroup: Record<string, unknown>;
  partial: boolean;
  init: { W: number[]; b: number[] };
  xs: number[][];
  c: number[];
  after: { W: number[]; b: number[] }[];
}

const fixture = (name: string): unknown => JSON.parse(readFileSync(new URL(`../../tests/fixtures/optim/${name}`, import.meta.url), 'utf8'));
const runs = (fixture('optimizers.json') as { runs: Record<string, Run> }).runs;

/** PyTorch's keyword names → ours. */
function camel(options: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(options).map(([k, v]) => [k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()), v]));
}

type AnyOptimizer = Optimizer<GroupHyperparameters>;

function makeOptimizer(run: Run, W: Tensor, b: Tensor): AnyOptimizer {
  const groups = run.partial ? [W, b] : [{ params: [W] }, { params: [b], ...camel(run.biasGroup) }];
  const defaults = camel(run.defaults);
  switch (run.optimizer) {
    case 'SGD':
      return new SGD(groups as never, defaults as { lr: number }) as unknown as AnyOptimizer;
    case 'Adam':
      return new Adam(groups as never, defaults) as unknown as AnyOptimizer;
    case 'AdamW':
      return new AdamW(groups as never, defaults) as unknown as AnyOptimizer;
  }
}

function params(run: Run): { W: Tensor; b: Tensor } {
  return {
    W: tensor(run.init.W, { dtype: 'float64', shape: [3, 4] }).requiresGrad_(true),
    b: tensor(run.init.b, { dtype: 'float64' }).requiresGrad_(true),
  };
}

/** One step of the fixture's loss sum(c·(W x_t + b)²), as the reference script computes it. */
function trainStep(run: Run, t: number, W: Tensor, b: Tensor, opt: AnyOptimizer): void {
  tidy(() => {
    const x = tensor(run.xs[t]!, { dtype: 'float64' });
    const c = tensor(run.c, { dtype: 'float64' });
    opt.zeroGrad();
    W.matmul(x).add(b).square().mul(c).sum().backward();
    if (run.partial && t % 2 === 1) b.grad = null;
    opt.step();
  });
}

for (const [name, run] of Object.entries(runs)) {
  test(`${run.optimizer} matches PyTorch step by step: ${name}`, () => {
    const { W, b } = params(run);
    const opt = makeOptimizer(run, W, b);
    run.after.forEach((expected, t) => {
      trainStep(run, t, W, b, opt);
      try {
        assertClose(W, expected.W, 1e-10, 1e-10);
        assertClose(b, expected.b, 1e-10, 1e-10);
      } catch (err) {
        throw new Error(`after step ${t + 1}: ${(err as Error).message}`);
      }
    });
  });
}

// ---- state dicts ----

function roundTripThroughJson(state: OptimizerStateDict): OptimizerStateDict {
  return { tensors: state.tensors, meta: JSON.parse(JSON.stringify(state.meta)) as OptimizerStateDict['meta'] };
}

for (const name of ['adam_partial', 'adamw_amsgrad', 'sgd_weight_decay']) {
  test(`resuming from a state dict equals training straight through: ${name}`, () => {
    const run = runs[name]!;
    const straight = params(run);
    const straightOpt = makeOptimizer(run, straight.W, straight.b);
    for (let t = 0; t < 5; t++) trainStep(run, t, straight.W, straight.b, straightOpt);

    const first = params(run);
    const firstOpt = makeOptimizer(run, first.W, first.b);
    for (let t = 0; t < 3; t++) trainStep(run, t, first.W, first.b, firstOpt);
    const saved = roundTripThroughJson(firstOpt.stateDict());
    // The saved copy must not move when the original keeps training.
    const savedValues = new Map([...saved.tensors].map(([k, v]) => [k, v.toFlatArray()]));
    trainStep(run, 3, first.W, first.b, firstOpt);
    for (const [k, v] of saved.tensors) assert.deepEqual(v.toFlatArray(), savedValues.get(k), `state tensor ${k} changed`);

    // Resume: a fresh optimizer over parameters holding the values after step 3, and the saved state.
    const resumed = params(run);
    const replayOpt = makeOptimizer(run, resumed.W, resumed.b);
    for (let t = 0; t < 3; t++) trainStep(run, t, resumed.W, resumed.b, replayOpt);
    const resumedOpt = makeOptimizer(run, resumed.W, resumed.b);
    // Hyperparameters come from the state too: a wrong lr here must be overwritten.
    resumedOpt.paramGroups[0]!.lr = 123;
    resumedOpt.loadStateDict(saved);
    assert.equal(resumedOpt.paramGroups[0]!.lr, run.defaults.lr);
    for (let t = 3; t < 5; t++) trainStep(run, t, resumed.W, resumed.b, resumedOpt);

    assert.deepEqual(resumed.W.toFlatArray(), straight.W.toFlatArray());
    assert.deepEqual(resumed.b.toFlatArray(), straight.b.toFlatArray());
  });
}

test('a state dict names tensors "group.param.stateName" and keeps step counts in JSON', () => {
  const run = runs.adam_partial!;
  const { W, b } = params(run);
  const opt = makeOptimizer(run, W, b);
  for (let t = 0; t < 3; t++) trainStep(run, t, W, b, opt);
  const { tensors, meta } = opt.stateDict();
  assert.deepEqual([...tensors.keys()].sort(), ['0.0.expAvg', '0.0.expAvgSq', '0.1.expAvg', '0.1.expAvgSq']);
  // The bias had no gradient on step 2 (t = 1), so it is one step behind.
  assert.deepEqual(meta.scalars, { '0.0.step': 3, '0.1.step': 2 });
  assert.equal(meta.optimizer, 'Adam');
  assert.deepEqual(meta.groups, [{ lr: 0.01, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false, paramCount: 2 }]);
});

test('loading refuses another optimizer or mismatched shapes, and then changes nothing', () => {
  const run = runs.adam!;
  const { W, b } = params(run);
  const adam = makeOptimizer(run, W, b);
  trainStep(run, 0, W, b, adam);
  const state = adam.stateDict();
  const sgd = new SGD([W, b], { lr: 0.1 });
  assert.throws(() => sgd.loadStateDict(state), /the state is from Adam, not SGD/);

  const other = {
    W: tensor([[1, 2]], { dtype: 'float64' }).requiresGrad_(true),
    b: tensor([1, 2, 3], { dtype: 'float64' }).requiresGrad_(true),
  };
  const target = new Adam([{ params: [other.W] }, { params: [other.b], lr: 0.03 }], { lr: 0.01 });
  assert.throws(() => target.loadStateDict(state), /'0\.0\.expAvg' has shape \[3, 4\], its parameter has \[1, 2\]/);
  assert.equal(target.stateOf(other.b), undefined);
  assert.throws(() => new Adam([W], { lr: 0.01 }).loadStateDict(state), /state has 2 parameter groups, this optimizer 1/);
});

// ---- the base class ----

test('step skips parameters without a gradient and zeroGrad clears gradients', () => {
  const w = tensor([1, 2], { dtype: 'float64' }).requiresGrad_(true);
  const frozen = tensor([5, 6], { dtype: 'float64' }).requiresGrad_(true);
  const opt = new SGD([w, frozen], { lr: 0.5 });
  w.mul(tensor([3, 4], { dtype: 'float64' }))
    .sum()
    .backward();
  opt.step();
  assert.deepEqual(w.toFlatArray(), [1 - 1.5, 2 - 2]);
  assert.deepEqual(frozen.toFlatArray(), [5, 6]);
  opt.zeroGrad();
  assert.equal(w.grad, null);
});

test('state tensors survive the tidy scope the step ran in', () => {
  const w = tensor([1, -1], { dtype: 'float64' }).requiresGrad_(true);
  const opt = new Adam([w], { lr: 0.1 });
  tidy(() => {
    w.square().sum().backward();
    opt.step();
  });
  const state = opt.stateOf(w)!;
  assert.equal(state.step, 1);
  // m = (1 − β1)·g with g = 2w = [2, −2]
  assertClose(state.expAvg, [0.2, -0.2], 1e-12);
  opt.zeroGrad();
  tidy(() => {
    w.square().sum().backward();
    opt.step();
  });
  assert.equal(opt.stateOf(w)!.step, 2);
});

test('a step leaves no temporaries behind in the caller’s scope', () => {
  const run = runs.adamw_amsgrad!;
  const { W, b } = params(run);
  const lars = new LARS([{ params: [W] }, { params: [b], excludeFromAdaptation: true }], { lr: 0.1 });
  const adamw = makeOptimizer(run, W, b);
  tidy(() => {
    W.grad = tensor(
      [
        [1, 2, 3, 4],
        [5, 6, 7, 8],
        [9, 10, 11, 12],
      ],
      { dtype: 'float64' },
    );
    b.grad = tensor([1, 2, 3], { dtype: 'float64' });
    const before = openScopeSize();
    for (let i = 0; i < 3; i++) {
      lars.step();
      adamw.step();
    }
    assert.equal(openScopeSize(), before);
    clipGradNorm([W, b], 1);
    assert.equal(openScopeSize(), before + 1, 'clipGradNorm should leave only the norm it returns');
  });
});

test('bad hyperparameters are refused naming the group and field', () => {
  const w = tensor([1], { dtype: 'float64' }).requiresGrad_(true);
  const v = tensor([1], { dtype: 'float64' }).requiresGrad_(true);
  assert.throws(() => new SGD([w], { lr: -1 }), /SGD defaults: lr must be a number ≥ 0, got -1/);
  assert.throws(
    () => new Adam([{ params: [w] }, { params: [v], betas: [0.9, 1.5] }]),
    /Adam group 1: betas\[1\] must be a number in \[0, 1\), got 1.5/,
  );
  assert.throws(
    () => new AdamW([{ params: [w], weight_decay: 0.1 } as never]),
    /AdamW group 0: unknown hyperparameter 'weight_decay'; this optimizer has lr, betas, eps, weightDecay, amsgrad/,
  );
  assert.throws(() => new SGD([w], { lr: 0.1, nesterov: true }), /nesterov needs momentum > 0/);
  assert.throws(() => new SGD([{ params: [w] }, { params: [w] }], { lr: 0.1 }), /appears in more than one place/);
  assert.throws(() => new SGD([], { lr: 0.1 }), /empty parameter list/);
});

// ---- LARS, checked against the update computed by hand ----

const norm = (xs: number[]): number => Math.hypot(...xs);

test('LARS scales the decayed gradient by η‖w‖/‖g + λw‖, and leaves the excluded group plain', () => {
  const [lr, momentum, weightDecay, eta] = [0.5, 0.9, 0.1, 0.01];
  const W = tensor([[3, 4]], { dtype: 'float64' }).requiresGrad_(true);
  const bias = tensor([2], { dtype: 'float64' }).requiresGrad_(true);
  const opt = new LARS(
    larsParamGroups([
      ['layer.weight', W],
      ['layer.bias', bias],
    ]),
    { lr, momentum, weightDecay, eta },
  );
  // Not parallel to w, so ‖g + λw‖ differs from solo-learn's ‖g‖ + λ‖w‖.
  const gW = [0.9, -0.9];
  const gb = 0.5;
  const setGrads = (): void => {
    W.grad = tensor([gW], { dtype: 'float64' });
    bias.grad = tensor([gb], { dtype: 'float64' });
  };

  // Step 1: u = g + λw = [1.2, −0.5], ‖u‖ = 1.3, ‖w‖ = 5, trust = 0.01·5/1.3 = 1/26;
  // the buffer starts as trust·u = [1.2, −0.5]/26, and w = [3, 4] − 0.5·buffer.
  // The bias: no decay, no trust ratio: 2 − 0.5·0.5.
  setGrads();
  opt.step();
  const w1 = [3 - (0.5 * 1.2) / 26, 4 + (0.5 * 0.5) / 26];
  assertClose(W, w1, 1e-14);
  assertClose(bias, [1.75], 1e-14);

  // Step 2, same gradients: the buffer carries momentum times the first one.
  const u = w1.map((wi, i) => gW[i]! + weightDecay * wi);
  const trust = (eta * norm(w1)) / norm(u);
  const buffer = [1.2 / 26, -0.5 / 26].map((bi, i) => momentum * bi + trust * u[i]!);
  setGrads();
  opt.step();
  assertClose(
    W,
    w1.map((wi, i) => wi - lr * buffer[i]!),
    1e-14,
  );
  assertClose(bias, [1.75 - lr * (momentum * 0.5 + 0.5)], 1e-14);
});

test('LARS falls back to a trust ratio of 1 when the weight or the update is zero', () => {
  const zero = tensor([0, 0], { dtype: 'float64' }).requiresGrad_(true);
  const still = tensor([1, 2], { dtype: 'float64' }).requiresGrad_(true);
  const opt = new LARS([zero, still], { lr: 0.1, momentum: 0, weightDecay: 0, eta: 0.001 });
  zero.grad = tensor([3, -4], { dtype: 'float64' });
  still.grad = tensor([0, 0], { dtype: 'float64' });
  opt.step();
  assertClose(zero, [-0.3, 0.4], 1e-15); // ‖w‖ = 0: plain lr·g, not 0
  assertClose(still, [1, 2], 0); // ‖u‖ = 0: no step and no NaN
});

test('splitBiasAndNorm excludes biases, norm parameters and scalars', () => {
  const named: [string, Tensor][] = [
    ['conv.weight', tensor([[[[1]]]])],
    ['conv.bias', tensor([1])],
    ['bn.weight', tensor([1, 1])],
    ['proj.weight', tensor([[1, 2]])],
    ['logitScale', tensor(1)],
  ];
  const { regular, excluded } = splitBiasAndNorm(named);
  assert.deepEqual(regular, [named[0]![1], named[3]![1]]);
  assert.deepEqual(excluded, [named[1]![1], named[2]![1], named[4]![1]]);
  const groups = larsParamGroups(named);
  assert.equal(groups.length, 2);
  assert.deepEqual({ ...groups[1], params: undefined }, { params: undefined, weightDecay: 0, excludeFromAdaptation: true });
});

test('LARS defaults are BYOL’s: momentum 0.9, weight decay 1.5e-6, η = 0.001', () => {
  const opt = new LARS([tensor([1]).requiresGrad_(true)], { lr: 0.2 });
  assert.deepEqual(
    { ...opt.paramGroups[0], params: undefined },
    {
      params: undefined,
      lr: 0.2,
      momentum: 0.9,
      weightDecay: 1.5e-6,
      eta: 0.001,
      excludeFromAdaptation: false,
    },
  );
});

// ---- gradient clipping, against torch.nn.utils.clip_grad_norm_ ----

interface ClipFixture {
  shapes: number[][];
  grads: number[][];
  cases: { maxNorm: number; normType: number | 'inf'; totalNorm: number; clipped: number[][] }[];
}
const clip = fixture('clip.json') as ClipFixture;

for (const c of clip.cases) {
  test(`clipGradNorm matches PyTorch: maxNorm ${c.maxNorm}, norm ${c.normType}`, () => {
    const ps = clip.shapes.map((shape, i) => {
      const p = tensor(new Float64Array(clip.grads[i]!.length), { shape }).requiresGrad_(true);
      p.grad = tensor(clip.grads[i]!, { dtype: 'float64', shape });
      return p;
    });
    const total = clipGradNorm(ps, c.maxNorm, c.normType === 'inf' ? Infinity : c.normType);
    assertClose(total.item(), c.totalNorm, 1e-12, 1e-12);
    ps.forEach((p, i) => assertClose(p.grad!, c.clipped[i]!, 1e-12, 1e-12));
  });
}

test('clipGradNorm of parameters without gradients is 0 and touches nothing', () => {
  const p = tensor([1, 2]).requiresGrad_(true);
  assert.equal(clipGradNorm([p], 1).item(), 0);
  assert.equal(p.grad, null);
});

// ---- schedules ----

test('scaleLr is BYOL’s base × batch / 256', () => {
  assert.equal(scaleLr(0.2, 4096), 3.2);
  assert.equal(scaleLr(0.3, 128), 0.15);
  assert.throws(() => scaleLr(0.2, 0), /batchSize must be a positive integer/);
});

test('warm-up then cosine: start, end of warm-up, midpoint, end', () => {
  const o = { peakLr: 0.8, warmupSteps: 10, totalSteps: 110 };
  assert.equal(warmupCosineLr(0, o), 0);
  assertClose(warmupCosineLr(5, o), 0.4, 1e-15);
  assertClose(warmupCosineLr(10, o), 0.8, 1e-15);
  // A quarter of the way through the decay: 0.8·½(1 + cos(π/4)).
  assertClose(warmupCosineLr(35, o), 0.4 * (1 + Math.SQRT1_2), 1e-15);
  assertClose(warmupCosineLr(60, o), 0.4, 1e-15);
  assertClose(warmupCosineLr(110, o), 0, 1e-15);
  assertClose(warmupCosineLr(500, o), 0, 1e-15);
});

test('the cosine ends at finalLr and warm-up starts at startLr', () => {
  const o = { peakLr: 1, warmupSteps: 4, totalSteps: 14, finalLr: 0.1, startLr: 0.2 };
  assertClose(warmupCosineLr(0, o), 0.2, 1e-15);
  assertClose(warmupCosineLr(2, o), 0.6, 1e-15);
  assertClose(warmupCosineLr(4, o), 1, 1e-15);
  assertClose(warmupCosineLr(9, o), 0.55, 1e-15);
  assertClose(warmupCosineLr(14, o), 0.1, 1e-15);
  assertClose(warmupCosineLr(9, { peakLr: 1, warmupSteps: 0, totalSteps: 18 }), 0.5, 1e-15);
  assert.throws(() => warmupCosineLr(0, { peakLr: 1, warmupSteps: 10, totalSteps: 5 }), /totalSteps must be an integer ≥ warmupSteps/);
});

test('LrScheduler sets every group’s lr from the schedule, and resumes at a step', () => {
  const opt = new SGD([{ params: [tensor([1]).requiresGrad_(true)] }, { params: [tensor([2]).requiresGrad_(true)] }], { lr: 99 });
  const lrAt = warmupCosine({ peakLr: 0.8, warmupSteps: 10, totalSteps: 110 });
  const scheduler = new LrScheduler(opt, (step, group) => lrAt(step) * (group === 1 ? 0.5 : 1));
  assert.deepEqual(scheduler.currentLrs(), [0, 0]);
  for (let i = 0; i < 10; i++) scheduler.step();
  assert.deepEqual(scheduler.currentLrs(), [0.8, 0.4]);
  const other = new LrScheduler(opt, (step, group) => lrAt(step) * (group === 1 ? 0.5 : 1));
  other.loadStateDict({ step: 60 });
  assert.equal(other.currentStep, 60);
  assertClose(
    scheduler.optimizer.paramGroups.map((g) => g.lr),
    [0.4, 0.2],
    1e-15,
  );
});

// ---- the trainers' optimizer and schedule (trainByol and AlignTrainer both call trainingOptimizer) ----

const trainable = (): [string, Tensor][] => [
  ['proj.weight', tensor([[1, 2]]).requiresGrad_(true)],
  ['proj.bias', tensor([1]).requiresGrad_(true)],
];

test('trainingOptimizer defaults: base rate × batch/256, weight decay LARS 1.5e-6 / AdamW 1e-4 / Adam 0, biases undecayed', () => {
  const expected: Record<OptimizerName, { name: string; peakLr: number; weightDecay: number }> = {
    lars: { name: 'LARS', peakLr: 0.4, weightDecay: 1.5e-6 }, // 0.2 · 512/256
    adamw: { name: 'AdamW', peakLr: 2e-3, weightDecay: 1e-4 }, // 1e-3 · 512/256
    adam: { name: 'Adam', peakLr: 2e-3, weightDecay: 0 },
  };
  for (const [name, want] of Object.entries(expected) as [OptimizerName, (typeof expected)['lars']][]) {
    const { optimizer, settings } = trainingOptimizer(trainable(), { optimizer: name }, { batchSize: 512, totalSteps: 100 });
    assert.equal(optimizer.name, want.name);
    assertClose(settings.peakLr, want.peakLr, 1e-15);
    const decay = optimizer.paramGroups.map((g) => (g as typeof g & { weightDecay: number }).weightDecay);
    assert.deepEqual(decay, [want.weightDecay, 0], name);
    assert.deepEqual(
      { warmupSteps: settings.warmupSteps, lrSchedule: settings.lrSchedule },
      { warmupSteps: 10, lrSchedule: 'warmup-cosine' },
    );
  }
});

test('trainingOptimizer warms up over 10% of training, then decays on a cosine to 0', () => {
  const { scheduler } = trainingOptimizer(trainable(), { optimizer: 'adamw' }, { batchSize: 512, totalSteps: 100 });
  const lrAt = (step: number): number => {
    scheduler.setStep(step);
    return scheduler.currentLrs()[0]!;
  };
  assert.equal(lrAt(0), 0);
  assertClose(lrAt(5), 1e-3, 1e-15); // halfway up to the peak 2e-3
  assertClose(lrAt(10), 2e-3, 1e-15);
  assertClose(lrAt(55), 1e-3, 1e-15); // halfway down the cosine
  assertClose(lrAt(100), 0, 1e-15);
  assert.deepEqual(scheduler.currentLrs().length, 2); // both groups follow it
});

test('trainingOptimizer: a constant schedule holds the peak after warm-up; scaleLrByBatch false takes baseLr as is', () => {
  const options = { optimizer: 'adam' as const, baseLr: 3e-4, scaleLrByBatch: false, warmupSteps: 4, lrSchedule: 'constant' as const };
  const { scheduler, settings } = trainingOptimizer(trainable(), options, { batchSize: 512, totalSteps: 100 });
  assert.equal(settings.peakLr, 3e-4);
  scheduler.setStep(2);
  assertClose(scheduler.currentLrs()[0]!, 1.5e-4, 1e-15);
  for (const step of [4, 50, 99]) {
    scheduler.setStep(step);
    assert.equal(scheduler.currentLrs()[0], 3e-4);
  }
});

test('trainingOptimizer: predictorLrScale trains the predictors at that multiple of the schedule, in groups of their own', () => {
  const named: [string, Tensor][] = [
    ...trainable(),
    ['predictors.shared.0.weight', tensor([[1, 2]]).requiresGrad_(true)],
    ['predictors.shared.0.bias', tensor([1]).requiresGrad_(true)],
  ];
  const plain = trainingOptimizer(named, { optimizer: 'adamw' }, { batchSize: 256, totalSteps: 100 });
  assert.deepEqual(
    plain.optimizer.paramGroups.map((g) => g.params.length),
    [2, 2],
    'scale 1: the groups of before',
  );
  const { optimizer, scheduler } = trainingOptimizer(
    named,
    { optimizer: 'adamw', predictorLrScale: 10 },
    { batchSize: 256, totalSteps: 100 },
  );
  // Weights, biases, then the predictor's weights and biases; decay as everywhere else.
  assert.deepEqual(
    optimizer.paramGroups.map((g) => g.params.map((p) => named.findIndex(([, q]) => q === p))),
    [[0], [1], [2], [3]],
  );
  assert.deepEqual(
    optimizer.paramGroups.map((g) => (g as typeof g & { weightDecay: number }).weightDecay),
    [1e-4, 0, 1e-4, 0],
  );
  for (const [step, lr] of [
    [5, 5e-4],
    [10, 1e-3],
    [55, 5e-4],
  ] as const) {
    scheduler.setStep(step);
    const lrs = scheduler.currentLrs();
    for (const [i, want] of [lr, lr, 10 * lr, 10 * lr].entries()) assertClose(lrs[i]!, want, 1e-15);
  }
  assert.throws(
    () => trainingOptimizer(named, { predictorLrScale: 0, optimizer: 'adam' }, { batchSize: 256, totalSteps: 10 }),
    /predictorLrScale/,
  );
});

test('trainingOptimizer refuses an unknown optimizer by name', () => {
  assert.throws(
    () => trainingOptimizer(trainable(), { optimizer: 'sgd' as OptimizerName }, { batchSize: 256, totalSteps: 10 }),
    /unknown optimizer 'sgd' \(expected 'lars', 'adamw' or 'adam'\)/,
  );
});
