// Throws seeded random calls with wrong argument types at every function and method the engine
// exports (and at the addon's own entry points) in a child process, which must end by itself
// with exit code 0: a JS error per bad call is fine, an abort or a crash is not. The same file is
// the child when BYOL_FUZZ_CHILD is set; BYOL_FUZZ_SEED replays another seed and
// BYOL_FUZZ_CALLS (calls per target) makes a longer run; BYOL_FUZZ_TRACE=1 names each call on
// stderr before making it, to find the one that fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mulberry32 } from '../src/data/epoch_order.js';
import { scratchDir } from './scratch_dir.js';

const DEFAULT_SEED = 20_261_202;
const CALLS_PER_TARGET = Number(process.env.BYOL_FUZZ_CALLS ?? 3);

interface FuzzSummary {
  targets: number;
  calls: number;
  threw: number;
  /** Errors that reached node-addon-api's last-resort catch: an entry point missed a conversion. */
  unconverted: string[];
  /** Errors that do not say which function failed ("A number was expected"). */
  unnamed: string[];
  /** Thrown values that are not Error objects. */
  notErrors: string[];
}

async function runChild(seed: number): Promise<void> {
  const engine = await import('../src/engine/index.js');
  const { native } = await import('../src/engine/native.js');
  const { Tensor, Generator, tensor, op, F } = engine;
  const random = mulberry32(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

  const disposed = (): unknown => {
    const t = tensor([1, 2]);
    t.dispose();
    return t;
  };
  const nested = (): unknown => op('aten::_nested_tensor_from_tensor_list')([tensor([1, 2]), tensor([3])]);
  const throwingGetter = (): unknown =>
    Object.defineProperty({}, 'dtype', {
      get() {
        throw new Error('getter');
      },
      enumerable: true,
    });
  // Sizes stay small or far beyond any allocation (2^53): a valid 2^31 would allocate gigabytes.
  const makers: (() => unknown)[] = [
    () => 0,
    () => 1,
    () => -1,
    () => 3,
    () => 99,
    () => 0.5,
    () => -2.5,
    () => NaN,
    () => Infinity,
    () => -Infinity,
    () => 2 ** 53,
    () => 1e20,
    () => '',
    () => 'x',
    () => 'cpu',
    () => 'cuda:0',
    () => 'meta',
    () => 'float32',
    () => 'int64',
    () => 'tanh',
    () => true,
    () => false,
    () => null,
    () => undefined,
    () => 1n,
    () => -1n,
    () => 2n ** 64n,
    () => Symbol('fuzz'),
    () => ({}),
    () => ({ dtype: 'float64', shape: [2], device: 'cpu', requiresGrad: true }),
    () => ({ dtype: 'bogus', generator: new Generator(1) }),
    () => ({ generator: tensor([1]) }),
    throwingGetter,
    () => [],
    () => [1, 2],
    () => [1.5],
    () => [2, 3],
    () => [[1, 2], [3]],
    () => [null, tensor([0], { dtype: 'int64' })],
    () => [tensor([1, 2]), tensor([3, 4])],
    () => new Array(5),
    () => new Float32Array(6),
    () => new BigInt64Array(2),
    () => new Uint16Array(2),
    () => new DataView(new ArrayBuffer(8)),
    () => () => tensor([1]),
    () => () => {
      throw new Error('callback');
    },
  ];
  const tensorMakers: (() => unknown)[] = [
    () =>
      tensor([
        [1, 2, 3],
        [4, 5, 6],
      ]),
    () => tensor([3, 1, 2], { dtype: 'int64' }),
    () => tensor([1, 0], { dtype: 'bool' }),
    () => tensor([2.5], { dtype: 'float64' }),
    () => tensor(new Uint8Array([1, 2, 3])),
    () => tensor(7),
    () => tensor(new Float32Array(0)),
    () => tensor([1, 2], { requiresGrad: true }),
    () =>
      tensor([
        [1, 2],
        [3, 4],
      ]).t(),
    () => tensor([1, 2]).to('meta'),
    disposed,
    nested,
  ];
  makers.push(
    ...tensorMakers,
    () => new Generator(5),
    () => new Generator(5).generatorHandle,
    () => tensor([1]).handle,
  );
  const value = (): unknown => pick(makers)();
  const args = (): unknown[] => Array.from({ length: Math.floor(random() * 5) }, value);
  // Methods are called mostly on tensors (so their arguments are what is tested), sometimes on anything.
  const receiver = (): unknown => (random() < 0.1 ? value() : pick(tensorMakers)());

  type Target = { name: string; call: () => unknown };
  const targets: Target[] = [];
  const addFunction = (name: string, fn: unknown): void => {
    if (typeof fn !== 'function') return;
    const isClass = /^class\b/.test(Function.prototype.toString.call(fn));
    targets.push({
      name,
      call: () => (isClass ? Reflect.construct(fn, args()) : Reflect.apply(fn, undefined, args())),
    });
  };
  for (const [name, exported] of Object.entries(engine)) {
    if (name === 'F') continue;
    addFunction(name, exported);
  }
  for (const [name, fn] of Object.entries(F)) addFunction(`F.${name}`, fn);
  for (const [name, fn] of Object.entries(engine.cuda)) addFunction(`cuda.${name}`, fn);
  for (const [name, fn] of Object.entries(native)) addFunction(`native.${name}`, fn);
  for (const [name, overload] of [
    ['aten::add', 'Tensor'],
    ['aten::zeros', ''],
    ['aten::randn', 'generator'],
    ['aten::conv2d', ''],
    ['aten::index_put_', ''],
    ['aten::to', 'dtype_layout'],
    ['aten::_nested_tensor_from_tensor_list', ''],
  ] as const) {
    addFunction(`op(${name}.${overload})`, op(name, overload));
  }
  for (const [name, descriptor] of Object.entries(Object.getOwnPropertyDescriptors(Tensor.prototype))) {
    if (name === 'constructor') continue;
    const { value: method, get, set } = descriptor;
    if (typeof method === 'function') targets.push({ name: `Tensor#${name}`, call: () => Reflect.apply(method, receiver(), args()) });
    if (get) targets.push({ name: `get Tensor#${name}`, call: () => Reflect.apply(get, receiver(), []) });
    if (set) targets.push({ name: `set Tensor#${name}`, call: () => Reflect.apply(set, receiver(), [value()]) });
  }

  const summary: FuzzSummary = { targets: targets.length, calls: 0, threw: 0, unconverted: [], unnamed: [], notErrors: [] };
  const order = targets.flatMap((t) => Array<Target>(CALLS_PER_TARGET).fill(t));
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const trace = process.env.BYOL_FUZZ_TRACE === '1';
  for (const target of order) {
    summary.calls++;
    if (trace) process.stderr.write(`${summary.calls} ${Math.round(performance.now())}ms ${target.name}\n`);
    try {
      target.call();
    } catch (err) {
      summary.threw++;
      if (!(err instanceof Error)) {
        summary.notErrors.push(`${target.name}: ${typeof err}`);
        continue;
      }
      if (err.message === 'A native exception was thrown') summary.unconverted.push(`${target.name}: ${err.message}`);
      if (/^An? \w+ was expected$/.test(err.message)) summary.unnamed.push(`${target.name}: ${err.message}`);
    }
    // The calls may leave grad mode off (setGradEnabled) or a thread count above one; reset both
    // so each call starts from the same state.
    native.setGradEnabled(true);
    native.setNumThreads(1);
  }
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

if (process.env.BYOL_FUZZ_CHILD === '1') {
  await runChild(Number(process.env.BYOL_FUZZ_SEED ?? DEFAULT_SEED));
} else {
  test('hundreds of calls with wrong argument types never kill the process', () => {
    const seed = Number(process.env.BYOL_FUZZ_SEED ?? DEFAULT_SEED);
    // The child writes whatever the calls ask for (saveSafetensors('x', ...)) in a folder of its own.
    const cwd = scratchDir('byol-fuzz-');
    const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url)], {
      cwd,
      // Traced, so a failure's stderr ends with the call that killed or stalled the child.
      env: { ...process.env, BYOL_FUZZ_CHILD: '1', BYOL_FUZZ_SEED: String(seed), BYOL_FUZZ_TRACE: '1', OMP_NUM_THREADS: '1' },
      encoding: 'utf8',
      timeout: 120_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    const diagnosis = `seed ${seed}: signal ${child.signal}, exit code ${child.status}; the end of its stderr:\n${child.stderr.slice(-3000)}`;
    assert.equal(child.signal, null, `the child was killed: ${diagnosis}`);
    assert.equal(child.status, 0, `the child failed: ${diagnosis}`);
    const summary = JSON.parse(child.stdout.trim().split('\n').at(-1)!) as FuzzSummary;
    assert.ok(summary.targets >= 200, `only ${summary.targets} targets were found`);
    assert.equal(summary.calls, summary.targets * CALLS_PER_TARGET);
    // Most calls are wrong on purpose; if few threw, the arguments were not reaching the code.
    assert.ok(summary.threw > summary.calls / 2, `only ${summary.threw} of ${summary.calls} calls threw`);
    assert.deepEqual(summary.unconverted, [], 'errors that no entry point converted');
    assert.deepEqual(summary.unnamed, [], 'errors that name no function');
    assert.deepEqual(summary.notErrors, [], 'thrown values that are not Errors');
  });
}
