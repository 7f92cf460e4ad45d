import { InterruptedError, InvariantError } from '../core/errors';

/** acquire() was cancelled through its AbortSignal. */
export class DemandAbortedError extends InterruptedError {}

/**
 * Credits for reading the source: backpressure between the training operator and the source.
 *
 * One credit lets the source read one item (pull-source.ts takes it with `acquire()`); the
 * training operator gives credits back with `release(n)` once a step has consumed n samples.
 * Invariant: items acquired but not yet released <= initialCredits, so at most that many
 * samples are in flight between the source and the end of training, whatever the speed of
 * either side. The engine uses e.g. 2 x batchSize, so that a full batch can form while the
 * previous one trains. With fewer credits than the batch size the micro-batcher's maxWaitMs
 * flush is what keeps the pipeline from deadlocking (no batch could ever fill).
 */
export class Demand {
  private credits: number;
  /** Resolvers of pending acquire() calls, in arrival order. */
  private readonly waiters: Array<() => void> = [];

  constructor(readonly initialCredits: number) {
    if (!Number.isInteger(initialCredits) || initialCredits < 1) {
      throw new InvariantError(`Demand: initialCredits must be an integer >= 1, got ${initialCredits}`);
    }
    this.credits = initialCredits;
  }

  /** Credits free now. */
  get available(): number {
    return this.credits;
  }

  /** Credits acquired and not yet released (items in flight). */
  get outstanding(): number {
    return this.initialCredits - this.credits;
  }

  /** Callers waiting for a credit. */
  get waiting(): number {
    return this.waiters.length;
  }

  /**
   * Takes one credit, waiting (first come, first served) until one is released. An aborted
   * wait rejects with DemandAbortedError and takes no credit.
   */
  acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(new DemandAbortedError('Demand.acquire: aborted'));
    if (this.credits > 0 && this.waiters.length === 0) {
      this.credits -= 1;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
        reject(new DemandAbortedError('Demand.acquire: aborted'));
      };
      const waiter = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /**
   * Gives back n credits (n samples fully processed). Releasing more than is outstanding would
   * break the bound on samples in flight, so it throws.
   */
  release(n: number): void {
    if (!Number.isInteger(n) || n < 0) {
      throw new InvariantError(`Demand.release: n must be an integer >= 0, got ${n}`);
    }
    if (n > this.outstanding) {
      throw new InvariantError(
        `Demand.release: releasing ${n} credits but only ${this.outstanding} are outstanding (a step released samples it did not acquire)`,
      );
    }
    this.credits += n;
    while (this.credits > 0 && this.waiters.length > 0) {
      this.credits -= 1;
      (this.waiters.shift() as () => void)();
    }
  }
}
