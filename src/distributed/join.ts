// Joining a data-parallel job from the environment a launcher sets, as torch.distributed's env://
// does: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT (and LOCAL_RANK, LOCAL_WORLD_SIZE). Under
// torchrun (TORCHELASTIC_USE_AGENT_STORE=True) the launcher's agent already hosts the TCPStore at
// MASTER_ADDR:MASTER_PORT, so every rank joins it as a client, under the prefix
// '/worker/attempt_<TORCHELASTIC_RESTART_COUNT>' as PyTorch's own rendezvous does (a rank 0 that
// started its own server there would find the port taken). Otherwise rank 0 hosts the store.
import { availableParallelism } from 'node:os';
import { DEFAULT_TIMEOUT_MS, ProcessGroup, Store } from '../engine/distributed.js';

/** Where this process stands in a job, as the launcher's environment says. */
export interface LaunchEnvironment {
  rank: number;
  worldSize: number;
  /** This machine's rank and process count (LOCAL_RANK, LOCAL_WORLD_SIZE), for threads. */
  localRank: number;
  localWorldSize: number | undefined;
  masterAddr: string;
  masterPort: number;
  /** The agent store's key prefix under torchrun; undefined where rank 0 hosts the store. */
  agentStorePrefix: string | undefined;
  /** GLOO_SOCKET_IFNAME: the network interface the collectives use (as PyTorch reads it). */
  glooInterface: string | undefined;
}

/** A data-parallel setting that is incomplete or malformed; the message names the variable. */
export class LaunchEnvironmentError extends Error {
  override readonly name = 'LaunchEnvironmentError';
}

function integerVariable(env: NodeJS.ProcessEnv, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const text = env[name];
  if (text === undefined || text.trim() === '')
    throw new LaunchEnvironmentError(`${name} is not set (WORLD_SIZE is: every rank needs RANK, MASTER_ADDR and MASTER_PORT too)`);
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max)
    throw new LaunchEnvironmentError(`${name} must be an integer from ${min} to ${max}, got '${text}'`);
  return value;
}

/**
 * The job this process belongs to, from `env`; undefined when WORLD_SIZE is not set (one process).
 *
 * @example
 * // RANK=1 WORLD_SIZE=2 MASTER_ADDR=10.0.0.1 MASTER_PORT=29500
 * launchEnvironment(); // { rank: 1, worldSize: 2, masterAddr: '10.0.0.1', masterPort: 29500, ... }
 */
export function launchEnvironment(env: NodeJS.ProcessEnv = process.env): LaunchEnvironment | undefined {
  if (env.WORLD_SIZE === undefined) return undefined;
  const worldSize = integerVariable(env, 'WORLD_SIZE', 1);
  const rank = integerVariable(env, 'RANK', 0, worldSize - 1);
  const masterAddr = env.MASTER_ADDR;
  if (masterAddr === undefined || masterAddr.trim() === '')
    throw new LaunchEnvironmentError("MASTER_ADDR is not set (the address of rank 0, or of the launcher's store)");
  const masterPort = integerVariable(env, 'MASTER_PORT', 1, 65535);
  const agent = env.TORCHELASTIC_USE_AGENT_STORE === 'True';
  return {
    rank,
    worldSize,
    localRank: env.LOCAL_RANK === undefined ? 0 : integerVariable(env, 'LOCAL_RANK', 0),
    localWorldSize: env.LOCAL_WORLD_SIZE === undefined ? undefined : integerVariable(env, 'LOCAL_WORLD_SIZE', 1),
    masterAddr,
    masterPort,
    agentStorePrefix: agent ? `/worker/attempt_${env.TORCHELASTIC_RESTART_COUNT ?? '0'}` : undefined,
    glooInterface: env.GLOO_SOCKET_IFNAME || undefined,
  };
}

/** libtorch threads for one of `localWorldSize` processes on this machine: its share of the cores. */
export function threadsPerProcess(localWorldSize: number, cores = availableParallelism()): number {
  return Math.max(1, Math.floor(cores / localWorldSize));
}

/** The process groups of one rank of a data-parallel training (DataParallelOptions). */
export interface TrainingGroups {
  rank: number;
  worldSize: number;
  /** Forward collectives, the losses' gathers, the start's broadcast. */
  group: ProcessGroup;
  /** The gradients' all-reduces. */
  gradientGroup: ProcessGroup;
  destroy(): void;
}

function isLoopback(address: string): boolean {
  return address === 'localhost' || address.startsWith('127.') || address === '::1';
}

/**
 * Meets the other ranks at the store and joins the two process groups; blocks until every rank
 * has (or timeoutMs). Gloo binds to GLOO_SOCKET_IFNAME when set, to 127.0.0.1 when rank 0 is on
 * loopback, and otherwise to the address this machine's hostname resolves to.
 */
export function joinTraining(launch: LaunchEnvironment, options: { timeoutMs?: number } = {}): TrainingGroups {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const { rank, worldSize } = launch;
  const store = Store.connect({
    host: launch.masterAddr,
    port: launch.masterPort,
    isServer: launch.agentStorePrefix === undefined && rank === 0,
    worldSize: launch.agentStorePrefix === undefined ? worldSize : undefined,
    timeoutMs,
    prefix: launch.agentStorePrefix,
  });
  const device =
    launch.glooInterface !== undefined
      ? { interface: launch.glooInterface }
      : isLoopback(launch.masterAddr)
        ? { hostname: '127.0.0.1' }
        : {};
  const group = ProcessGroup.create(store, { rank, worldSize, timeoutMs, name: 'train', ...device });
  const gradientGroup = ProcessGroup.create(store, { rank, worldSize, timeoutMs, name: 'gradients', ...device });
  return {
    rank,
    worldSize,
    group,
    gradientGroup,
    destroy() {
      gradientGroup.destroy();
      group.destroy();
    },
  };
}
