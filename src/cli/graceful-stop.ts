import { InterruptedError, TimeoutError } from '../core/errors';
import type { Logger } from '../core/log';

/**
 * SIGINT/SIGTERM for a command that stops gracefully: the first signal aborts `signal`, and the
 * stop must then finish within `deadlineMs` (Kafka: batch in hand, checkpoint, commit, flush), or
 * `gaveUp` rejects with a TimeoutError; a second signal makes it reject at once (InterruptedError).
 * `dispose()` removes the handlers.
 */
export class GracefulStop {
  private readonly abort = new AbortController();
  private giveUp: ((error: Error) => void) | undefined;
  private deadline: NodeJS.Timeout | undefined;
  readonly gaveUp: Promise<never>;

  constructor(
    private readonly deadlineMs: number,
    private readonly log: Logger,
  ) {
    this.gaveUp = new Promise<never>((_, reject) => (this.giveUp = reject));
    this.gaveUp.catch(() => undefined);
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  dispose(): void {
    clearTimeout(this.deadline);
    process.removeListener('SIGINT', this.onSignal);
    process.removeListener('SIGTERM', this.onSignal);
  }

  private readonly onSignal = (signal: string): void => {
    if (this.abort.signal.aborted) {
      this.giveUp?.(new InterruptedError(`${signal} again: stopping without finishing the batch in hand`));
      return;
    }
    this.log.warn(`${signal}: stopping after the batch in hand (deadline ${this.deadlineMs} ms)`);
    this.abort.abort();
    this.deadline = setTimeout(() => this.giveUp?.(new TimeoutError(`graceful shutdown did not finish within ${this.deadlineMs} ms`)), this.deadlineMs);
    this.deadline.unref();
  };
}
