// `byol-align serve --workers N`: several processes on one port answer as one server; /metrics,
// whichever worker a scrape reaches, counts every worker's requests; SIGTERM stops them all; a
// worker that cannot start stops the server with its error. And RequestMetrics.sum against counts
// made by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { buildIndex } from '../src/index/index.js';
import { RequestMetrics } from '../src/serve/metrics.js';
import { CLI, useCliFixture } from './cli_fixture.js';

const fixture = useCliFixture();

/** One request on a connection of its own (so that connections spread over the workers). */
function ask(url: string, method: 'GET' | 'POST', body?: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const r = request(
      url,
      { method, agent: false, headers: payload === undefined ? {} : { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, text }));
      },
    );
    r.on('error', reject);
    r.end(payload);
  });
}

/** `byol-align serve` with these arguments; resolves with its address once it says it listens. */
function startServe(args: string[]) {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  const address = new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
      if (m) resolve(m[1]!);
    });
    child.once('exit', () => reject(new Error(`serve exited: ${stderr}`)));
  });
  return { child, exited, address, stderr: () => stderr };
}

test('serve --workers 2 answers on one port, counts every worker in /metrics, and stops on SIGTERM with 143', async () => {
  const db = join(fixture.dir, 'workers-db');
  await buildIndex({ checkpoint: fixture.trainedRun(), data: `coco:${fixture.annotations}`, images: fixture.images, db });
  const serve = startServe(['--db', db, '--port', '0', '--threads', '1', '--workers', '2']);
  const url = await serve.address;
  assert.match(serve.stderr(), /listening on http:\/\/127\.0\.0\.1:\d+ \(2 workers; 72 rows, (projection|encoder) space of /);
  const searches = 12;
  for (let i = 0; i < searches; i++) {
    const r = await ask(`${url}/v1/search`, 'POST', { query: { text: 'a red square' }, k: 3 });
    assert.equal(r.status, 200, r.text);
    assert.equal((JSON.parse(r.text) as { results: { hits: unknown[] }[] }).results[0]!.hits.length, 3);
  }
  assert.equal((await ask(`${url}/v1/nothing`, 'GET')).status, 404);
  // Connections go to the workers in turn (cluster's round robin): a scrape that saw one worker's
  // counts only would see about half.
  for (let scrape = 0; scrape < 4; scrape++) {
    const { text } = await ask(`${url}/metrics`, 'GET');
    assert.match(text, new RegExp(`byol_align_requests_total\\{route="/v1/search",status="200"\\} ${searches}\\n`));
    assert.match(text, new RegExp(`byol_align_request_duration_seconds_count\\{route="/v1/search"\\} ${searches}\\n`));
    assert.match(text, /byol_align_request_errors_total\{route="unmatched",status="404"\} 1\n/);
  }
  serve.child.kill('SIGTERM');
  assert.equal(await serve.exited, 143);
  assert.match(serve.stderr(), /SIGTERM: the workers finished the requests in flight and stopped/);
});

test('serve --workers 2 on a missing index stops with the workers error, exit 1', async () => {
  const serve = startServe(['--db', join(fixture.dir, 'no-such-db'), '--port', '0', '--workers', '2']);
  await assert.rejects(serve.address);
  assert.equal(await serve.exited, 1);
  assert.match(serve.stderr(), /no-such-db: no such index folder/);
  assert.match(serve.stderr(), /server worker \d+ exited with 1; the others were stopped/);
});

test('RequestMetrics.sum adds counts and histograms of several processes', () => {
  const a = new RequestMetrics();
  a.record('/v1/search', 200, 0.004);
  a.record('/v1/search', 400, 0.02);
  const b = new RequestMetrics();
  b.record('/v1/search', 200, 0.3);
  b.record('/healthz', 200, 0.0005);
  const text = RequestMetrics.sum([a.snapshot(), structuredClone(b.snapshot())]).text();
  assert.match(text, /byol_align_requests_total\{route="\/v1\/search",status="200"\} 2\n/);
  assert.match(text, /byol_align_request_errors_total\{route="\/v1\/search",status="400"\} 1\n/);
  assert.match(text, /byol_align_request_duration_seconds_bucket\{route="\/v1\/search",le="0.005"\} 1\n/);
  assert.match(text, /byol_align_request_duration_seconds_bucket\{route="\/v1\/search",le="0.025"\} 2\n/);
  assert.match(text, /byol_align_request_duration_seconds_bucket\{route="\/v1\/search",le="0.5"\} 3\n/);
  assert.match(text, /byol_align_request_duration_seconds_sum\{route="\/v1\/search"\} 0.324\n/);
  assert.match(text, /byol_align_request_duration_seconds_count\{route="\/healthz"\} 1\n/);
  // The snapshot is a copy: recording more later does not change a sum made before.
  const before = a.snapshot();
  a.record('/v1/search', 200, 0.001);
  assert.equal(before.requests.find(([key]) => key.includes('status="200"'))![1], 1);
});
