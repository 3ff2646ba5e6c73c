// Child modules by name, as torch.nn.ModuleDict: one encoder or head per modality.
import { Module } from '../nn/index.js';

/** Modules by name, registered in the order given (the state dict's order). */
export class ModuleMap<M extends Module> extends Module {
  readonly #items = new Map<string, M>();
  constructor(entries: [string, M][]) {
    super();
    for (const [name, m] of entries) this.#items.set(name, this.registerModule(name, m));
  }
  has(name: string): boolean {
    return this.#items.has(name);
  }
  get(name: string): M {
    const m = this.#items.get(name);
    if (!m) throw new Error(`no module for '${name}' (have: ${[...this.#items.keys()].join(', ')})`);
    return m;
  }
  override forward(): never {
    throw new Error('ModuleMap has no forward; call get(name).forward');
  }
}
