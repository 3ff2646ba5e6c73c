// SIGINT and SIGTERM during training: the first asks for a checkpoint after the current step; a
// repeat of the signal soon after is taken as the same request (supervisors such as `timeout`
// relay a SIGTERM to the whole process group, so a child gets it twice), and only a signal after
// that window means "stop at once, without the checkpoint".
export const REPEAT_WINDOW_MS = 1000;

export interface StopRequest {
  /** The signal that asked to stop, if any. */
  readonly signal: NodeJS.Signals | undefined;
  /** Removes the handlers. */
  dispose(): void;
}

/** The exit code of a run ended by `signal`: 128 + its number, as shells report it. */
export function signalExitCode(signal: NodeJS.Signals): number {
  return signal === 'SIGINT' ? 130 : 143;
}

/** Installs the handlers; `say` gets the messages for the user. */
export function watchStopSignals(say: (message: string) => void, now: () => number = Date.now): StopRequest {
  let first: { signal: NodeJS.Signals; at: number } | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (first === undefined) {
      first = { signal, at: now() };
      say(`${signal}: stopping after this step with a checkpoint (send it again in a second or more to stop at once)`);
      return;
    }
    if (now() - first.at < REPEAT_WINDOW_MS) return; // a relayed copy of the first request
    process.exit(signalExitCode(signal));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    get signal() {
      return first?.signal;
    },
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
