// The in-memory search of an index (src/index/memory.ts): a bfloat16 first pass whose candidates
// are rescored in float32 answers what a brute-force float64 search answers, with float32's scores.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EmbeddingMatrix } from '../src/index/memory.js';

/** `count` random unit vectors of width `dim` from a seeded generator (a plain LCG: no engine involved). */
function unitVectors(count: number, dim: number, seed: number): Float32Array {
  let state = seed;
  const next = (): number => ((state = (state * 1664525 + 1013904223) % 2 ** 32) / 2 ** 32) * 2 - 1;
  const out = new Float32Array(count * dim);
  for (let i = 0; i < count; i++) {
    let norm = 0;
    for (let j = 0; j < dim; j++) norm += (out[i * dim + j] = next()) ** 2;
    for (let j = 0; j < dim; j++) out[i * dim + j]! /= Math.sqrt(norm);
  }
  return out;
}

/** Ids r0, r1, … of `count` rows. */
const rowIds = (count: number): string[] => Array.from({ length: count }, (_, i) => `r${i}`);

/** The `k` best rows of `rows` for query `q` of `queries`, by a float64 dot product: [index, score][]. */
function bruteForce(rows: Float32Array, queries: Float32Array, q: number, dim: number, k: number): [number, number][] {
  const scores: [number, number][] = [];
  for (let r = 0; r < rows.length / dim; r++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += rows[r * dim + j]! * queries[q * dim + j]!;
    scores.push([r, s]);
  }
  return scores.sort((a, b) => b[1] - a[1]).slice(0, k);
}

test('a bfloat16 first pass rescored in float32 finds the brute-force nearest rows, with their float32 scores', () => {
  const dim = 32;
  const rows = unitVectors(600, dim, 1);
  const queries = unitVectors(8, dim, 2);
  const ids = rowIds(600);
  const firstPass = EmbeddingMatrix.of(ids, rows, dim, { firstPass: true });
  const exact = EmbeddingMatrix.of(ids, rows, dim);
  const [fast, slow] = [firstPass.top(queries, 8, 10), exact.top(queries, 8, 10)];
  for (let q = 0; q < 8; q++) {
    const truth = bruteForce(rows, queries, q, dim, 10);
    assert.deepEqual(
      fast[q]!.map((h) => h.id),
      truth.map(([r]) => `r${r}`),
    );
    fast[q]!.forEach((hit, j) => {
      assert.ok(Math.abs(hit.score - truth[j]![1]) < 1e-5, `query ${q} hit ${j}: ${hit.score} against ${truth[j]![1]}`);
      assert.ok(Math.abs(hit.score - slow[q]![j]!.score) < 1e-6);
    });
  }
  firstPass.dispose();
  exact.dispose();
});

test('rescoring orders rows that bfloat16 cannot tell apart', () => {
  // Rows 0 and 1 score 0.50001 and 0.50003 against the query: both round to one bfloat16 value
  // (8 bits of mantissa), so only the float32 rescoring puts row 1, the later one, first. 40 more
  // rows score ~0.
  const dim = 4;
  const rows = new Float32Array(42 * dim);
  const unit = (r: number, x: number): void => {
    rows.set([x, Math.sqrt(1 - x * x), 0, 0], r * dim);
  };
  unit(0, 0.50001);
  unit(1, 0.50003);
  for (let r = 2; r < 42; r++) rows.set([0, 0, Math.cos(r), Math.sin(r)], r * dim);
  const ids = rowIds(42);
  const matrix = EmbeddingMatrix.of(ids, rows, dim, { firstPass: true });
  // One result wanted: 32 candidates of 42 rows, so the first pass runs.
  const [hits] = matrix.top(Float32Array.from([1, 0, 0, 0]), 1, 1);
  assert.equal(hits![0]!.id, 'r1');
  assert.ok(Math.abs(hits![0]!.score - 0.50003) < 1e-6, `score ${hits![0]!.score}`);
  matrix.dispose();
});

test('with as many candidates as rows the search is the float32 product itself', () => {
  const dim = 8;
  const rows = unitVectors(30, dim, 3);
  const queries = unitVectors(3, dim, 4);
  const ids = rowIds(30);
  const matrix = EmbeddingMatrix.of(ids, rows, dim, { firstPass: true });
  const hits = matrix.top(queries, 3, 30);
  for (let q = 0; q < 3; q++)
    assert.deepEqual(
      hits[q]!.map((h) => h.id),
      bruteForce(rows, queries, q, dim, 30).map(([r]) => `r${r}`),
    );
  matrix.dispose();
});
