// `byol-align train --nproc N`: N worker processes on this machine, each the same command joining
// the job through the environment a launcher sets (join.ts), with rank 0 hosting the store on a
// free loopback port. The launcher trains nothing itself: it relays SIGINT and SIGTERM to the
// workers (which agree on the step to stop after), and when one worker fails it names it, gives the
// others a moment to report what they saw (rank 0's error names the collective and the peer), stops
// them and exits with that worker's code.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

/** A port free a moment ago on 127.0.0.1 (rank 0's store binds it again). */
export async function freeLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface LocalLaunchOptions {
  /** The worker processes. */
  nproc: number;
  /** Each worker's command line after the node executable (the script and its arguments). */
  args: string[];
  /** Extra environment for every worker. */
  env?: NodeJS.ProcessEnv;
  /**
   * Seconds the other workers of a failed job get to notice the failure and report it before
   * SIGTERM (default 3): stopped at once, rank 0 of a loaded machine was often stopped before its
   * collective failed, and its error, which names the group and the peer, was lost.
   */
  reportSeconds?: number;
  /** Seconds a failed job's other workers get to exit after SIGTERM before SIGKILL (default 10). */
  graceSeconds?: number;
}

/**
 * Runs the workers to the end; resolves with the job's exit code: 0 when all succeeded, else the
 * first failing worker's code (128 + its signal's number when a signal ended it).
 *
 * @example
 * process.exitCode = await launchLocal({ nproc: 2, args: [cliPath, 'train', '--out', 'runs/a', '--threads', '1'] });
 */
export async function launchLocal(options: LocalLaunchOptions): Promise<number> {
  const { nproc } = options;
  if (!Number.isInteger(nproc) || nproc < 1) throw new RangeError(`--nproc must be an integer ≥ 1, got ${nproc}`);
  const port = await freeLoopbackPort();
  const workers: ChildProcess[] = [];
  for (let rank = 0; rank < nproc; rank++) {
    workers.push(
      spawn(process.execPath, options.args, {
        stdio: 'inherit',
        env: {
          ...process.env,
          ...options.env,
          RANK: String(rank),
          LOCAL_RANK: String(rank),
          WORLD_SIZE: String(nproc),
          LOCAL_WORLD_SIZE: String(nproc),
          MASTER_ADDR: '127.0.0.1',
          MASTER_PORT: String(port),
        },
      }),
    );
  }
  const relay = (signal: NodeJS.Signals): void => {
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill(signal);
  };
  process.on('SIGINT', relay);
  process.on('SIGTERM', relay);
  let failed: number | undefined;
  let stopTimer: NodeJS.Timeout | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  try {
    const codes = await Promise.all(
      workers.map(
        (worker, rank) =>
          new Promise<number>((resolve) => {
            worker.once('exit', (code, signal) => {
              const exit = code ?? 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGINT' ? 2 : 15);
              if (exit !== 0 && failed === undefined && !signalCodes.has(exit)) {
                // One failed: the others would only wait for it until their timeout.
                failed = exit;
                const how = signal === null ? `exited with code ${code}` : `was killed by ${signal}`;
                process.stderr.write(`byol-align: worker rank ${rank} of ${nproc} (pid ${worker.pid}) ${how}; stopping the others\n`);
                stopTimer = setTimeout(
                  () => {
                    relay('SIGTERM');
                    killTimer = setTimeout(() => relay('SIGKILL'), (options.graceSeconds ?? 10) * 1000);
                  },
                  (options.reportSeconds ?? 3) * 1000,
                );
              }
              resolve(exit);
            });
          }),
      ),
    );
    return failed ?? codes.find((c) => c !== 0) ?? 0;
  } finally {
    clearTimeout(stopTimer);
    clearTimeout(killTimer);
    process.off('SIGINT', relay);
    process.off('SIGTERM', relay);
  }
}

/** The codes of a worker stopped by SIGINT or SIGTERM as asked (a checkpoint written): not failures. */
const signalCodes = new Set([130, 143]);
