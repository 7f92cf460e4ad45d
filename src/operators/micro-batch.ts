import { asyncScheduler, Observable, type OperatorFunction, type SchedulerLike, type Subscription } from 'rxjs';
import { ConfigError } from '../core/errors';
import type { TaskInfo } from '../core/types';
import type { BatchedEvent, SampleEvent, TaskEvent } from './events';

/**
 * Groups sample events into micro-batches of `size`, in stream order.
 *
 * - A task-begin or task-end first flushes the partial batch, then passes through, so a batch
 *   never spans a task boundary. A checkpoint marker flushes too: the checkpoint covers every
 *   sample before it.
 * - Completion flushes the partial batch, then completes.
 * - With `maxWaitMs`, a partial batch is flushed once its first sample has waited that long: a
 *   live source that goes idle (or a credit budget smaller than `size`, see pull-source.ts)
 *   cannot strand samples in the buffer.
 * - Never emits an empty batch.
 * - The batch's `task` is the current task (from the latest task-begin, else `resumedTask`, the
 *   task a restored checkpoint was learning). Before either (only ended tasks restored from a
 *   checkpoint are streaming) it is the first sample's task.
 * - An error passes through and drops the partial batch; teardown clears buffer and timer.
 */
export function microBatch(
  size: number,
  maxWaitMs?: number,
  scheduler: SchedulerLike = asyncScheduler,
  resumedTask?: TaskInfo,
): OperatorFunction<TaskEvent, BatchedEvent> {
  if (!Number.isInteger(size) || size < 1) {
    throw new ConfigError(`microBatch: batch size must be an integer >= 1, got ${size}`);
  }
  if (maxWaitMs !== undefined && !(Number.isFinite(maxWaitMs) && maxWaitMs > 0)) {
    throw new ConfigError(`microBatch: maxWaitMs must be a finite number > 0, got ${maxWaitMs}`);
  }

  return (source) =>
    new Observable<BatchedEvent>((subscriber) => {
      let buffer: SampleEvent[] = [];
      let current: TaskInfo | undefined = resumedTask;
      let timer: Subscription | undefined;

      const cancelTimer = (): void => {
        timer?.unsubscribe();
        timer = undefined;
      };

      const flush = (): void => {
        cancelTimer();
        if (buffer.length === 0) return;
        const samples = buffer;
        buffer = [];
        subscriber.next({ kind: 'batch', task: current ?? (samples[0] as SampleEvent).task, samples });
      };

      const subscription = source.subscribe({
        next: (event) => {
          switch (event.kind) {
            case 'sample':
              buffer.push(event);
              if (buffer.length >= size) {
                flush();
              } else if (buffer.length === 1 && maxWaitMs !== undefined) {
                timer = scheduler.schedule(flush, maxWaitMs);
              }
              return;
            case 'task-begin':
              flush();
              current = event.task;
              subscriber.next(event);
              return;
            case 'task-end':
            case 'checkpoint':
              flush();
              subscriber.next(event);
              return;
          }
        },
        error: (error: unknown) => {
          cancelTimer();
          buffer = [];
          subscriber.error(error);
        },
        complete: () => {
          flush();
          subscriber.complete();
        },
      });

      return () => {
        subscription.unsubscribe();
        cancelTimer();
        buffer = [];
      };
    });
}
