// The Optimizer base, as torch.optim.Optimizer: parameter groups that each carry their own
// hyperparameters, per-parameter state (step counts, moment buffers) that lives outside tidy()
// scopes, a step() that runs under noGrad and frees its temporaries, and a state dict that splits
// into tensors (for safetensors) and JSON (everything else), so a run resumes exactly.
import { Tensor, keep, noGrad, tidy, zerosLike } from '../engine/index.js';

/** A value that survives JSON.stringify / JSON.parse unchanged. */
export type JsonValue = number | boolean | string | null | JsonValue[] | { [key: string]: JsonValue };

/** Hyperparameters every optimizer's groups have. */
export interface GroupHyperparameters {
  lr: number;
}

/** A parameter group: its tensors and its own hyperparameters (group.lr is what schedulers set). */
export type ParamGroup<H extends GroupHyperparameters> = H & { params: Tensor[] };

/** A group as the user passes it: hyperparameters left out take the optimizer's defaults. */
export type ParamGroupInput<H extends GroupHyperparameters> = Partial<H> & { params: Tensor[] };

/** One parameter's optimizer state: tensors (moments) and numbers (step counts). */
export type ParamState = { [name: string]: Tensor | number | undefined };

/**
 * An optimizer's state in two parts that map onto a safetensors file: `tensors` (the tensor data,
 * keyed "group.param.stateName", e.g. "0.1.expAvg") and `meta` (JSON: which optimizer, each
 * group's hyperparameters and size, and per-parameter numbers such as "0.1.step").
 */
export interface OptimizerStateDict {
  tensors: Map<string, Tensor>;
  meta: OptimizerStateMeta;
}

export interface OptimizerStateMeta {
  optimizer: string;
  groups: ({ paramCount: number } & { [hyperparameter: string]: JsonValue })[];
  scalars: { [key: string]: number };
}

/** Throws a RangeError naming the optimizer, the group and the field unless lo ≤ value ≤ hi (or < hi with openHi). */
export function checkRange(where: string, field: string, value: unknown, lo: number, hi = Infinity, openHi = false): void {
  const ok = typeof value === 'number' && !Number.isNaN(value) && value >= lo && (openHi ? value < hi : value <= hi);
  if (!ok) {
    const range = hi === Infinity ? `≥ ${lo}` : `in [${lo}, ${hi}${openHi ? ')' : ']'}`;
    throw new RangeError(`${where}: ${field} must be a number ${range}, got ${String(value)}`);
  }
}

/** Throws a TypeError naming the field unless value is a boolean. */
export function checkBoolean(where: string, field: string, value: unknown): void {
  if (typeof value !== 'boolean') throw new TypeError(`${where}: ${field} must be a boolean, got ${String(value)}`);
}

/**
 * The base of every optimizer. Subclasses say how to check a group's hyperparameters, how a new
 * parameter's state starts, and how one group is updated, given only its parameters that have a
 * gradient (as lists, so updates are a few multi-tensor calls).
 *
 * @example
 * const opt = new AdamW([{ params: encoder.parameters() }, { params: head.parameters(), lr: 1e-3 }], { lr: 1e-4 });
 * loss.backward();
 * opt.step();
 * opt.zeroGrad();
 */
export abstract class Optimizer<H extends GroupHyperparameters, S extends ParamState = ParamState> {
  /**
   * The name stored in state dicts (loading another optimizer's state is refused). Subclasses
   * override this getter with a literal, which survives minification and is already there while
   * the base constructor runs.
   */
  get name(): string {
    return this.constructor.name;
  }
  readonly defaults: Readonly<H>;
  readonly paramGroups: ParamGroup<H>[] = [];
  readonly #state = new Map<Tensor, S>();

  constructor(params: Tensor[] | ParamGroupInput<H>[], defaults: H) {
    this.defaults = Object.freeze(structuredClone(defaults));
    const where = this.name;
    this.checkHyperparameters(this.defaults, `${where} defaults`);
    if (!Array.isArray(params) || params.length === 0) {
      throw new TypeError(`${where}: got an empty parameter list; pass the model's parameters() or a list of groups`);
    }
    const groups = params[0] instanceof Tensor ? [{ params: params as Tensor[] } as ParamGroupInput<H>] : (params as ParamGroupInput<H>[]);
    for (const group of groups) this.addParamGroup(group);
  }

  /** Checks one group's hyperparameters; throws naming `where` and the field. */
  protected abstract checkHyperparameters(h: H, where: string): void;

  /** The state a parameter starts with at its first update (tensors are kept by the base). */
  protected abstract initState(param: Tensor, group: ParamGroup<H>): S;

  /** Updates the parameters of one group in place; grads[i] and states[i] belong to params[i]. */
  protected abstract updateGroup(group: ParamGroup<H>, params: Tensor[], grads: Tensor[], states: S[]): void;

  /** Adds a group (e.g. to unfreeze layers); missing hyperparameters come from the defaults. */
  addParamGroup(input: ParamGroupInput<H>): void {
    const index = this.paramGroups.length;
    const where = `${this.name} group ${index}`;
    if (input === null || typeof input !== 'object' || !Array.isArray(input.params)) {
      throw new TypeError(`${where}: a group must be an object with a params array of tensors`);
    }
    for (const key of Object.keys(input)) {
      if (key !== 'params' && !(key in this.defaults)) {
        throw new TypeError(`${where}: unknown hyperparameter '${key}'; this optimizer has ${Object.keys(this.defaults).join(', ')}`);
      }
    }
    const seen = new Set(this.paramGroups.flatMap((g) => g.params));
    input.params.forEach((p, i) => {
      if (!(p instanceof Tensor)) throw new TypeError(`${where}: params[${i}] is not a Tensor`);
      if (seen.has(p)) throw new Error(`${where}: params[${i}] appears in more than one place; each parameter may be in one group once`);
      seen.add(p);
    });
    const { params, ...hyperparameters } = input;
    // Copied, so no two groups (or the defaults) share an array such as betas.
    const group = { ...structuredClone({ ...this.defaults, ...hyperparameters }), params: params.slice() } as ParamGroup<H>;
    this.checkHyperparameters(group, where);
    this.paramGroups.push(group);
  }

  /** Applies one update to every parameter that has a gradient; parameters without one are left alone. */
  step(): void {
    noGrad(() =>
      tidy(() => {
        this.paramGroups.forEach((group, g) => {
          this.checkHyperparameters(group, `${this.name} group ${g}`);
          const params: Tensor[] = [];
          const grads: Tensor[] = [];
          const states: S[] = [];
          for (const p of group.params) {
            const grad = p.grad;
            if (grad === null) continue;
            params.push(p);
            grads.push(grad);
            states.push(this.#stateOf(p, group));
          }
          if (params.length > 0) this.updateGroup(group, params, grads, states);
        });
      }),
    );
  }

  /** Sets every parameter's gradient to null (PyTorch's set_to_none=True). */
  zeroGrad(): void {
    for (const group of this.paramGroups) for (const p of group.params) p.grad = null;
  }

  /** The state of one parameter, or undefined before its first update. */
  stateOf(param: Tensor): Readonly<S> | undefined {
    return this.#state.get(param);
  }

  #stateOf(p: Tensor, group: ParamGroup<H>): S {
    let s = this.#state.get(p);
    if (s === undefined) {
      s = this.initState(p, group);
      for (const v of Object.values(s)) if (v instanceof Tensor) keep(v);
      this.#state.set(p, s);
    }
    return s;
  }

  /**
   * A copy of the state (the tensors are new, owned by the caller) and the hyperparameters.
   *
   * @example
   * const { tensors, meta } = opt.stateDict();
   * saveSafetensors('optimizer.safetensors', tensors, { optimizer: JSON.stringify(meta) });
   * // later: const { tensors, metadata } = loadSafetensors('optimizer.safetensors');
   * //        opt.loadStateDict({ tensors, meta: JSON.parse(metadata.optimizer!) });
   */
  stateDict(): OptimizerStateDict {
    const tensors = new Map<string, Tensor>();
    const scalars: { [key: string]: number } = {};
    const groups = this.paramGroups.map((group, g) => {
      const { params, ...hyperparameters } = group;
      params.forEach((p, i) => {
        const state = this.#state.get(p);
        if (state === undefined) return;
        for (const [name, value] of Object.entries(state)) {
          if (value === undefined) continue;
          const key = `${g}.${i}.${name}`;
          if (typeof value === 'number') scalars[key] = value;
          else
            tensors.set(
              key,
              noGrad(() => value.detach().clone()),
            );
        }
      });
      return { ...(structuredClone(hyperparameters) as { [k: string]: JsonValue }), paramCount: params.length };
    });
    return { tensors, meta: { optimizer: this.name, groups, scalars } };
  }

  /**
   * Restores a state dict made by the same kind of optimizer over parameters of the same shapes,
   * in the same groups and order: the group hyperparameters (lr included) and per-parameter state.
   * Tensors are copied onto each parameter's device and dtype; the caller keeps ownership of `state`.
   */
  loadStateDict(state: OptimizerStateDict): void {
    const where = `${this.name}.loadStateDict`;
    const { meta, tensors } = state;
    if (meta.optimizer !== this.name) throw new Error(`${where}: the state is from ${meta.optimizer}, not ${this.name}`);
    if (meta.groups.length !== this.paramGroups.length) {
      throw new Error(`${where}: the state has ${meta.groups.length} parameter groups, this optimizer ${this.paramGroups.length}`);
    }
    meta.groups.forEach((saved, g) => {
      const own = this.paramGroups[g]!.params.length;
      if (saved.paramCount !== own) throw new Error(`${where}: group ${g} has ${saved.paramCount} parameters in the state, ${own} here`);
      for (const key of Object.keys(saved)) {
        if (key !== 'paramCount' && !(key in this.defaults)) throw new Error(`${where}: group ${g} has unknown hyperparameter '${key}'`);
      }
    });
    const paramAt = (key: string): [Tensor, string] => {
      const m = /^(\d+)\.(\d+)\.(.+)$/.exec(key);
      const p = m ? this.paramGroups[Number(m[1])]?.params[Number(m[2])] : undefined;
      if (!m || !p) throw new Error(`${where}: key '${key}' names no parameter (expected "group.param.stateName")`);
      return [p, m[3]!];
    };
    // Build every new state before touching the old one, so a bad state dict changes nothing.
    const fresh = new Map<Tensor, ParamState>();
    const entry = (p: Tensor): ParamState => fresh.get(p) ?? (fresh.set(p, {}), fresh.get(p)!);
    try {
      for (const [key, value] of Object.entries(meta.scalars)) {
        const [p, name] = paramAt(key);
        if (typeof value !== 'number') throw new TypeError(`${where}: scalar '${key}' is ${typeof value}, not a number`);
        entry(p)[name] = value;
      }
      for (const [key, value] of tensors) {
        const [p, name] = paramAt(key);
        const [want, got] = [p.shape, value.shape];
        if (want.length !== got.length || want.some((d, i) => d !== got[i])) {
          throw new Error(`${where}: '${key}' has shape [${got.join(', ')}], its parameter has [${want.join(', ')}]`);
        }
        entry(p)[name] = keep(noGrad(() => zerosLike(p).copy_(value)));
      }
    } catch (err) {
      for (const s of fresh.values()) for (const v of Object.values(s)) if (v instanceof Tensor) v.dispose();
      throw err;
    }
    this.#disposeState();
    for (const [p, s] of fresh) this.#state.set(p, s as S);
    meta.groups.forEach((saved, g) => {
      const hyperparameters = structuredClone(saved) as Partial<typeof saved>;
      delete hyperparameters.paramCount;
      Object.assign(this.paramGroups[g]!, hyperparameters);
    });
  }

  /** Frees the state tensors; the optimizer then starts over as if new (its groups remain). */
  dispose(): void {
    this.#disposeState();
  }

  #disposeState(): void {
    for (const s of this.#state.values()) for (const v of Object.values(s)) if (v instanceof Tensor) v.dispose();
    this.#state.clear();
  }
}
