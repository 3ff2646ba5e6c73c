// Argument checks shared by the modules, so every error names the module, the argument and the value.

/** '[2, 3, 4]' */
export function describeShape(shape: number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Throws unless `value` is a positive integer. */
export function checkPositiveInt(moduleName: string, argument: string, value: number): void {
  if (!Number.isInteger(value) || value <= 0) throw new RangeError(`${moduleName}: ${argument} must be a positive integer, got ${value}`);
}

/** Throws unless 0 ≤ p ≤ 1. */
export function checkProbability(moduleName: string, argument: string, p: number): void {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`${moduleName}: ${argument} must be a probability in [0, 1], got ${p}`);
}
