// Deterministic memory: every Tensor made inside tidy() is disposed when the scope ends,
// unless it is returned or kept. GC finalizers (native/tensor.cc) remain the safety net for the
// tensors no scope owns: those alone report their size to V8 (unscoped()), since a scope holds
// its own until it disposes them and a collection could free none of them.

export interface Disposable {
  dispose(): void;
  readonly isDisposed: boolean;
  /** Called when no open scope owns it (made outside every scope, kept, or returned by the outermost). */
  unscoped?(): void;
}

const scopes: Set<Disposable>[] = [];

/** Called by every new tensor: the innermost open scope owns it. */
export function track(t: Disposable): void {
  const scope = scopes[scopes.length - 1];
  if (scope) scope.add(t);
  else t.unscoped?.();
}

/** Takes a tensor out of every open scope, so tidy() will not dispose it. Returns it. */
export function keep<T extends Disposable>(t: T): T {
  for (const scope of scopes) scope.delete(t);
  t.unscoped?.();
  return t;
}

/**
 * Disposes `t` now when the innermost open tidy() scope made it (and nothing kept or returned it
 * elsewhere); anything else is left alone. A chain of layers calls it on each intermediate once
 * the next layer has it, so its memory is reused at once, as Python's reference counting frees a
 * dropped tensor, instead of at the scope's end (what autograd saved for backward lives on).
 *
 * @example
 * tidy(() => { const h = layer1.forward(x); const y = layer2.forward(h); release(h); return y; });
 */
export function release(t: Disposable): void {
  const scope = scopes[scopes.length - 1];
  if (scope?.delete(t)) t.dispose();
}

function collect(value: unknown, into: Set<Disposable>, seen: Set<unknown>): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if (typeof (value as Disposable).dispose === 'function' && 'isDisposed' in (value as object)) {
    into.add(value as Disposable);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collect(v, into, seen);
  } else if (value instanceof Map) {
    for (const v of value.values()) collect(v, into, seen);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collect(v, into, seen);
  }
}

/**
 * Runs fn and disposes every tensor it created except those in its result (searched through
 * arrays, Maps and plain objects) and those passed to keep(). The result moves to the enclosing scope.
 *
 * @example
 * const loss = tidy(() => model.forward(x).sub(y).square().mean()); // intermediates freed
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Disposable>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (err) {
    scopes.pop();
    for (const t of scope) t.dispose();
    throw err;
  }
  scopes.pop();
  if (result instanceof Promise) {
    throw new Error('tidy(fn): fn must be synchronous; await outside the scope and tidy each synchronous part');
  }
  const survivors = new Set<Disposable>();
  collect(result, survivors, new Set());
  for (const t of scope) if (!survivors.has(t)) t.dispose();
  const parent = scopes[scopes.length - 1];
  // Only what this scope owned moves up; a returned tensor made outside stays its owner's.
  for (const t of survivors) {
    if (!scope.has(t) || t.isDisposed) continue;
    if (parent) parent.add(t);
    else t.unscoped?.();
  }
  return result;
}

/** Disposes every tensor in a value (a tensor, or arrays, Maps and plain objects of them). */
export function dispose(value: unknown): void {
  const found = new Set<Disposable>();
  collect(value, found, new Set());
  for (const t of found) t.dispose();
}

/** How many tensors the open scopes own (for tests of scope behaviour). */
export function openScopeSize(): number {
  return scopes.reduce((n, s) => n + s.size, 0);
}
