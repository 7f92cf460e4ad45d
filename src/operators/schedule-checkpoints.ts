import { asyncScheduler, Observable, type MonoTypeOperatorFunction, type SchedulerLike } from 'rxjs';
import { ConfigError } from '../core/errors';
import type { TaskEvent } from './events';

/**
 * Adds checkpoint markers to the task events: one every `everySeconds` (0: none on a timer), and
 * one when the stream completes (a graceful stop or the end of a finite stream), so that what was
 * learned last is kept. Markers carry no position: applyStrategy knows what it has processed when
 * the marker reaches it. Errors pass through without a marker (nothing after a failure is trusted).
 */
export function scheduleCheckpoints(everySeconds: number, scheduler: SchedulerLike = asyncScheduler): MonoTypeOperatorFunction<TaskEvent> {
  if (!Number.isFinite(everySeconds) || everySeconds < 0) throw new ConfigError(`scheduleCheckpoints: everySeconds must be >= 0, got ${everySeconds}`, undefined, 'checkpoint.everySeconds');
  return (source) =>
    new Observable<TaskEvent>((subscriber) => {
      const timer =
        everySeconds > 0
          ? scheduler.schedule(function (this: { schedule(state?: undefined, delay?: number): void }) {
              subscriber.next({ kind: 'checkpoint', reason: 'interval' });
              this.schedule(undefined, everySeconds * 1000);
            }, everySeconds * 1000)
          : undefined;
      const subscription = source.subscribe({
        next: (event) => subscriber.next(event),
        error: (error: unknown) => subscriber.error(error),
        complete: () => {
          timer?.unsubscribe();
          subscriber.next({ kind: 'checkpoint', reason: 'shutdown' });
          subscriber.complete();
        },
      });
      return () => {
        timer?.unsubscribe();
        subscription.unsubscribe();
      };
    });
}
