import { Observable } from 'rxjs';
import type { Demand } from './demand';

export interface PullSourceOptions<T> {
  /**
   * Items that never reach the training step (e.g. TaskControl markers) and so would never be
   * released by it: their credit is given back as soon as they have been emitted.
   */
  readonly costless?: (item: T) => boolean;
  /**
   * Graceful stop (SIGTERM): no further next() call; iterator.return() is called at once, so a
   * live source ends a pending next(); then the observable completes. What was emitted before
   * drains through the pipeline; an item that arrives after the stop is dropped (a live source
   * re-delivers it: it was never acknowledged).
   */
  readonly stop?: AbortSignal;
}

/**
 * Reads an async iterator only as fast as credits allow: one credit (demand.acquire()) per
 * item, taken before each next() call. The training operator releases credits when a step has
 * consumed its samples, so items emitted but not yet released never exceed
 * demand.initialCredits (see demand.ts) and nothing between source and training buffers
 * without bound.
 *
 * - The iterator is opened on subscribe (one per subscription) and never has two next() calls
 *   in flight.
 * - The iterator's completion completes the observable; a rejected next() (or a throwing
 *   open()) errors it.
 * - Unsubscribing stops pulling (no further next() call, a pending acquire is cancelled) and
 *   calls iterator.return() so the source can free its resources; an item that arrives after
 *   that is dropped. return() is not called after the iterator finished by itself.
 */
export function pullSource<T>(
  open: () => AsyncIterator<T>,
  demand: Demand,
  options: PullSourceOptions<T> = {},
): Observable<T> {
  return new Observable<T>((subscriber) => {
    const abort = new AbortController();
    let iterator: AsyncIterator<T> | undefined;
    // The iterator completed or failed by itself: it must not be asked to return().
    let finished = false;

    const stopping = (): boolean => options.stop?.aborted === true;
    const returnIterator = (): void => {
      if (iterator !== undefined && !finished && iterator.return !== undefined) {
        finished = true;
        // The source's cleanup failing must not surface after the consumer left.
        try {
          Promise.resolve(iterator.return()).catch(() => undefined);
        } catch {
          // A synchronous throw from return(): ignored for the same reason.
        }
      }
    };
    const onStop = (): void => {
      abort.abort();
      returnIterator();
      if (!subscriber.closed) subscriber.complete();
    };

    const pull = async (): Promise<void> => {
      iterator = open();
      if (options.stop) {
        if (stopping()) return onStop();
        options.stop.addEventListener('abort', onStop, { once: true });
      }
      while (!subscriber.closed) {
        await demand.acquire(abort.signal);
        if (subscriber.closed) {
          demand.release(1);
          return;
        }
        let result: IteratorResult<T>;
        try {
          result = await iterator.next();
        } catch (error) {
          finished = true;
          demand.release(1);
          throw error;
        }
        if (result.done === true) {
          finished = true;
          demand.release(1);
          subscriber.complete();
          return;
        }
        // After an unsubscribe the item is dropped; its credit was taken, give it back.
        if (subscriber.closed) {
          demand.release(1);
          return;
        }
        subscriber.next(result.value);
        if (options.costless?.(result.value) === true) demand.release(1);
      }
    };

    pull().catch((error: unknown) => {
      // After unsubscribe nobody listens; an aborted acquire lands here too.
      if (!subscriber.closed) subscriber.error(error);
    });

    return () => {
      options.stop?.removeEventListener('abort', onStop);
      abort.abort();
      returnIterator();
    };
  });
}
