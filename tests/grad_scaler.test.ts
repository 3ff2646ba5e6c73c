// fp16's gradient scaler, driven on the CPU in float32 (its logic does not depend on the device):
// an inf or NaN gradient skips the step, halves the scale and is counted; a finite step is the
// unscaled float32 step bit for bit; the scale doubles after growthInterval clean steps, as
// torch.cuda.amp.GradScaler's; its state survives a state dict.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed, randn, setNumThreads, tensor, type Tensor } from '../src/index.js';
import { BatchNorm1d, Linear, ReLU, Sequential } from '../src/nn/index.js';
import { AdamW, GradScaler } from '../src/optim/index.js';

setNumThreads(1);

/** A small MLP with BatchNorm, seeded, so two copies start equal. */
function mlp(): Sequential {
  manualSeed(7);
  return new Sequential(new Linear(6, 16), new BatchNorm1d(16), new ReLU(), new Linear(16, 3));
}

function lossOf(model: Sequential, x: Tensor, y: Tensor): Tensor {
  return model.forward(x).sub(y).square().mean();
}

const values = (model: Sequential): number[][] => model.parameters().map((p) => p.toFlatArray());

test("torch.cuda.amp.GradScaler's defaults: scale 2^16, growth 2 every 2000 good steps, backoff 0.5", () => {
  const scaler = new GradScaler();
  assert.equal(scaler.scale, 65536);
  assert.equal(scaler.growthFactor, 2);
  assert.equal(scaler.growthInterval, 2000);
  assert.equal(scaler.backoffFactor, 0.5);
  assert.deepEqual(scaler.stateDict(), { scale: 65536, growthTracker: 0, skippedSteps: 0 });
});

test('a finite step with the scaler leaves the parameters equal to the unscaled float32 step', () => {
  manualSeed(1);
  const x = randn([12, 6]);
  const y = randn([12, 3]);
  const plain = mlp();
  const scaled = mlp();
  const plainOptimizer = new AdamW(plain.parameters(), { lr: 1e-2 });
  const scaledOptimizer = new AdamW(scaled.parameters(), { lr: 1e-2 });
  const scaler = new GradScaler();
  for (let step = 0; step < 3; step++) {
    plainOptimizer.zeroGrad();
    lossOf(plain, x, y).backward();
    plainOptimizer.step();

    scaledOptimizer.zeroGrad();
    const loss = lossOf(scaled, x, y);
    scaler.scaleLoss(loss).backward();
    // Before unscaling, each gradient is 2^16 times the plain one (checked on the last layer's bias).
    if (step === 0) assert.deepEqual(scaled.parameters()[5]!.grad!.div(65536).toFlatArray(), plain.parameters()[5]!.grad!.toFlatArray());
    assert.deepEqual(scaler.unscale_(scaled.namedParameters()), []);
    assert.equal(scaler.step(scaledOptimizer), true);
    scaler.update();
  }
  assert.deepEqual(values(scaled), values(plain), 'bit for bit: scaling by a power of two is exact');
  assert.deepEqual(scaler.stateDict(), { scale: 65536, growthTracker: 3, skippedSteps: 0 });
});

for (const bad of [Infinity, NaN]) {
  test(`a gradient holding ${bad} skips the step, halves the scale and counts the skip`, () => {
    manualSeed(1);
    const x = randn([12, 6]);
    const y = randn([12, 3]);
    const model = mlp();
    const optimizer = new AdamW(model.parameters(), { lr: 1e-2 });
    const scaler = new GradScaler();
    const before = values(model);
    optimizer.zeroGrad();
    scaler.scaleLoss(lossOf(model, x, y)).backward();
    // What an fp16 overflow leaves behind: one element of one gradient is not finite.
    const [, weight] = model.namedParameters()[2]!; // '1.weight', BatchNorm's
    const injected = weight.grad!.clone();
    injected.indexPut_([tensor([5], { dtype: 'int64' })], tensor([bad]));
    weight.grad = injected;
    assert.deepEqual(scaler.unscale_(model.namedParameters()), ['1.weight']);
    let stepped = false;
    assert.equal(scaler.step({ step: () => (stepped = true) }), false);
    assert.equal(stepped, false, 'the optimizer did not step');
    scaler.update();
    assert.deepEqual(values(model), before, 'parameters unchanged');
    assert.deepEqual(scaler.stateDict(), { scale: 32768, growthTracker: 0, skippedSteps: 1 });

    // The next, finite step goes ahead at the halved scale.
    optimizer.zeroGrad();
    scaler.scaleLoss(lossOf(model, x, y)).backward();
    assert.deepEqual(scaler.unscale_(model.namedParameters()), []);
    assert.equal(scaler.step(optimizer), true);
    scaler.update();
    assert.notDeepEqual(values(model), before);
    assert.deepEqual(scaler.stateDict(), { scale: 32768, growthTracker: 1, skippedSteps: 1 });
  });
}

test('the scale grows by growthFactor after growthInterval clean steps in a row, and an overflow resets the count', () => {
  const w = tensor([1, 2]).requiresGrad_();
  const scaler = new GradScaler({ initScale: 8, growthInterval: 3 });
  const step = (gradient: number[]): void => {
    w.grad = tensor(gradient).mul(scaler.scale);
    scaler.unscale_([['w', w]]);
    scaler.step({ step: () => {} });
    scaler.update();
  };
  const scales: number[] = [];
  for (const g of [
    [1, 1],
    [1, 1],
    [1, 1],
    [1, 1],
    [Infinity, 1],
    [1, 1],
    [1, 1],
    [1, 1],
  ]) {
    step(g);
    scales.push(scaler.scale);
  }
  // Three clean steps: 8 → 16; one more clean, then an overflow: 16 → 8 and the count restarts;
  // three clean steps after it: 8 → 16.
  assert.deepEqual(scales, [8, 8, 16, 16, 8, 8, 8, 16]);
  assert.equal(scaler.skippedSteps, 1);
  // Unscaling divided by the scale of that step.
  assert.deepEqual(w.grad!.toFlatArray(), [1, 1]);
});

test('the state dict restores scale, growth count and skipped steps; misuse and bad settings are refused by name', () => {
  const scaler = new GradScaler();
  scaler.loadStateDict({ scale: 1024, growthTracker: 17, skippedSteps: 4 });
  assert.deepEqual(scaler.stateDict(), { scale: 1024, growthTracker: 17, skippedSteps: 4 });
  assert.throws(() => scaler.loadStateDict({ scale: Infinity, growthTracker: 0, skippedSteps: 0 }), /scale must be finite/);
  assert.throws(() => scaler.loadStateDict({ scale: 1, growthTracker: -1, skippedSteps: 0 }), /growthTracker must be an integer ≥ 0/);
  assert.throws(() => scaler.step({ step: () => {} }), /GradScaler\.step: call unscale_ first/);
  assert.throws(() => scaler.update(), /GradScaler\.update: call unscale_ and step first/);
  scaler.unscale_([]);
  assert.throws(() => scaler.unscale_([]), /already called this step/);
  assert.throws(() => new GradScaler({ initScale: 0 }), /initScale must be a finite number > 0/);
  assert.throws(() => new GradScaler({ backoffFactor: 1 }), /backoffFactor must be in \(0, 1\)/);
  assert.throws(() => new GradScaler({ growthInterval: 1.5 }), /growthInterval must be an integer > 0/);
});
