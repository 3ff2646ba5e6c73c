// Runs one script as several rank processes, for the data-parallel tests: each gets its rank, the
// world size and a port free a moment ago for the rendezvous, and its JSON lines come back.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';

/** A port free a moment ago (the store's server binds it again). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface RankResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The lines of stdout that are JSON objects, parsed. */
  lines: Record<string, unknown>[];
  stderr: string;
}

/**
 * Starts `worldSize` processes of `script` with the arguments `args(rank, port)` and waits for all
 * (killing them all after deadlineMs).
 */
export async function runRanks(
  script: string,
  worldSize: number,
  args: (rank: number, port: number) => string[],
  env: Record<string, string> = {},
  deadlineMs = 120000,
): Promise<RankResult[]> {
  const port = await freePort();
  const children = Array.from({ length: worldSize }, (_, rank) =>
    spawn(process.execPath, [script, ...args(rank, port)], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }),
  );
  const deadline = setTimeout(() => children.forEach((c) => c.kill('SIGKILL')), deadlineMs);
  try {
    return await Promise.all(
      children.map(
        (child) =>
          new Promise<RankResult>((resolve) => {
            let stdout = '';
            let stderr = '';
            child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
            child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
            child.once('exit', (code, signal) => {
              const lines = stdout
                .split('\n')
                .filter((l) => l.startsWith('{'))
                .map((l) => JSON.parse(l) as Record<string, unknown>);
              resolve({ code, signal, lines, stderr });
            });
          }),
      ),
    );
  } finally {
    clearTimeout(deadline);
  }
}

/** Fails naming the rank and its stderr unless every rank exited with 0. */
export function assertRanksOk(results: RankResult[], fail: (message: string) => never): void {
  for (const [rank, r] of results.entries()) if (r.code !== 0) fail(`rank ${rank} exited with ${r.code ?? r.signal}: ${r.stderr}`);
}
