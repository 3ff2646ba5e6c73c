// Module: the unit of a network, as torch.nn.Module. It owns named parameters (trained),
// buffers (state such as BatchNorm's running statistics) and child modules; the training flag
// propagates to children; stateDict names follow PyTorch's dotted paths so weights move between
// the two (see src/engine/safetensors.ts).
import { Tensor, keep, noGrad } from '../engine/index.js';
import { isFloating } from '../engine/dtype.js';

export type StateDict = Map<string, Tensor>;

export abstract class Module {
  training = true;
  readonly #parameters = new Map<string, Tensor | null>();
  readonly #buffers = new Map<string, Tensor | null>();
  readonly #children = new Map<string, Module>();

  /** Registers a trainable tensor (requires grad; kept out of tidy scopes). */
  protected registerParameter(name: string, value: Tensor | null): Tensor | null {
    if (value !== null) keep(value.requiresGrad ? value : value.requiresGrad_(true));
    this.#parameters.set(name, value);
    return value;
  }

  /** Registers non-trained state that is saved with the module. */
  protected registerBuffer(name: string, value: Tensor | null): Tensor | null {
    if (value !== null) keep(value);
    this.#buffers.set(name, value);
    return value;
  }

  protected registerModule<M extends Module>(name: string, module: M): M {
    this.#children.set(name, module);
    return module;
  }

  /** The tensor registered under a local name (parameter or buffer). */
  protected param(name: string): Tensor {
    const t = this.#parameters.get(name) ?? this.#buffers.get(name);
    if (!t) throw new Error(`${this.constructor.name}: no tensor named '${name}'`);
    return t;
  }

  /**
   * The computation. Subclasses declare their own arguments and result (MultiheadAttention takes
   * query, key, value and options and may return weights too); code that chains modules asks for
   * the shape it needs, as Sequential does with `forward(input: Tensor): Tensor`.
   */
  abstract forward(...inputs: never[]): unknown;

  /** Children in registration order, by local name. */
  namedChildren(): [string, Module][] {
    return [...this.#children.entries()];
  }

  /** This module and every descendant, depth first. */
  modules(): Module[] {
    return [this, ...[...this.#children.values()].flatMap((child) => child.modules())];
  }

  /** Every parameter with its dotted path ('0.weight', 'encoder.layers.1.bias'). */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [name, p] of this.#parameters) if (p) out.push([prefix + name, p]);
    for (const [name, child] of this.#children) out.push(...child.namedParameters(`${prefix}${name}.`));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [name, b] of this.#buffers) if (b) out.push([prefix + name, b]);
    for (const [name, child] of this.#children) out.push(...child.namedBuffers(`${prefix}${name}.`));
    return out;
  }

  /** Sets training mode here and in every child; returns this. */
  train(mode = true): this {
    this.training = mode;
    for (const child of this.#children.values()) child.train(mode);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Clears every parameter's gradient (set to none, PyTorch's default since 2.0). */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  /**
   * Parameters and buffers by dotted path; the tensors are the live ones, not copies. The order is
   * PyTorch's: each module's own parameters, then its own buffers, then its children's, depth first.
   */
  stateDict(prefix = ''): StateDict {
    const out: StateDict = new Map();
    for (const [name, p] of this.#parameters) if (p) out.set(prefix + name, p);
    for (const [name, b] of this.#buffers) if (b) out.set(prefix + name, b);
    for (const [name, child] of this.#children) for (const [key, t] of child.stateDict(`${prefix}${name}.`)) out.set(key, t);
    return out;
  }

  /**
   * Copies values into this module's tensors. With strict (default), missing or unexpected keys
   * and shape mismatches are errors naming the key.
   */
  loadStateDict(state: StateDict, strict = true): void {
    const own = this.stateDict();
    if (strict) {
      const missing = [...own.keys()].filter((k) => !state.has(k));
      const unexpected = [...state.keys()].filter((k) => !own.has(k));
      if (missing.length || unexpected.length) {
        throw new Error(
          `loadStateDict: ${missing.length ? `missing keys: ${missing.join(', ')}` : ''}` +
            `${missing.length && unexpected.length ? '; ' : ''}${unexpected.length ? `unexpected keys: ${unexpected.join(', ')}` : ''}`,
        );
      }
    }
    noGrad(() => {
      for (const [key, target] of own) {
        const source = state.get(key);
        if (!source) continue;
        const [want, got] = [target.shape, source.shape];
        if (want.length !== got.length || want.some((d, i) => d !== got[i])) {
          throw new Error(`loadStateDict: '${key}' has shape [${got.join(', ')}], the module expects [${want.join(', ')}]`);
        }
        target.copy_(source);
      }
    });
  }

  /**
   * Moves every parameter and buffer to a device or dtype, in place of the old tensors. A dtype
   * applies to floating-point tensors only (as in PyTorch), so integer buffers such as BatchNorm's
   * num_batches_tracked stay integers.
   */
  to(target: string): this {
    const isDevice = /^(cpu|cuda|mps|meta)(:\d+)?$/.test(target);
    noGrad(() => {
      for (const map of [this.#parameters, this.#buffers]) {
        for (const [name, t] of map) {
          if (!t) continue;
          if (!isDevice && !isFloating(t.dtype)) continue;
          const moved = keep(t.to(target));
          if (map === this.#parameters && t.requiresGrad) moved.requiresGrad_(true);
          map.set(name, moved);
          if (moved !== t) t.dispose();
        }
      }
    });
    for (const child of this.#children.values()) child.to(target);
    return this;
  }
}
