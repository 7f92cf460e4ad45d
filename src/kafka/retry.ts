import type { Logger } from '../core/log';
import { isTransient } from './error-causes';

/** Attempts in all (the first included) and the waits between them, doubling up to maxDelayMs. */
export interface RetryPolicy {
  readonly attempts: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
}

/**
 * For operations that fail the source when they fail: kafkajs retries each request for a few
 * seconds; this outlasts a broker restart (about 15 s more) before giving up.
 */
export const OUTLAST_BROKER_RESTART: RetryPolicy = { attempts: 5, initialDelayMs: 1000, maxDelayMs: 8000 };

/** For the consumer itself: a daemon waits for its broker as long as it takes (every 8 s at most). */
export const UNTIL_THE_BROKER_IS_BACK: RetryPolicy = { attempts: Number.POSITIVE_INFINITY, initialDelayMs: 1000, maxDelayMs: 8000 };

export interface RetryControl {
  readonly log: Logger;
  /** Asked before each wait: true stops retrying (the source is closing). */
  readonly stopped?: () => boolean;
  readonly sleep?: (ms: number) => Promise<void>;
}

const sleepFor = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/**
 * Runs `work`; a transient failure (see isTransient) is retried with a doubling wait, at most
 * `policy.attempts` times in all. Rejects with the last error: a non-transient one at once.
 */
export async function retryTransient<T>(what: string, work: () => Promise<T>, policy: RetryPolicy, control: RetryControl): Promise<T> {
  const sleep = control.sleep ?? sleepFor;
  for (let attempt = 1, delay = policy.initialDelayMs; ; attempt++, delay = Math.min(policy.maxDelayMs, delay * 2)) {
    try {
      return await work();
    } catch (error) {
      if (attempt >= policy.attempts || !isTransient(error) || control.stopped?.()) throw error;
      control.log.warn(`kafka: ${what} failed (attempt ${attempt} of ${policy.attempts}), retrying in ${delay} ms: ${(error as Error).message}`);
      await sleep(delay);
    }
  }
}
