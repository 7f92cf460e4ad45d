import assert from 'node:assert/strict';
import { Subject, concatMap, lastValueFrom, tap, toArray, type Observable, type Subscription } from 'rxjs';
import { LifelongError } from '../../src/core/errors';
import { endOfTask, isTaskControl, type Sample, type SourceItem } from '../../src/core/types';
import { detectTaskBoundaries } from '../../src/operators/detect-task-boundaries';
import { Demand, DemandAbortedError } from '../../src/operators/demand';
import type { BatchEvent } from '../../src/operators/events';
import { microBatch } from '../../src/operators/micro-batch';
import { pullSource } from '../../src/operators/pull-source';

/** Runs every pending microtask (promise continuation): setImmediate fires only after them. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** An async iterator that counts the calls made to it. Endless unless `length` is given. */
class InstrumentedIterator implements AsyncIterator<number> {
  nextCalls = 0;
  returnCalls = 0;
  /** next() calls that have not resolved yet (must never exceed 1). */
  inFlight = 0;
  maxInFlight = 0;

  constructor(
    private readonly length = Number.POSITIVE_INFINITY,
    private readonly failAt?: { index: number; error: Error },
  ) {}

  async next(): Promise<IteratorResult<number>> {
    const index = this.nextCalls++;
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await Promise.resolve(); // a real asynchronous step
    this.inFlight -= 1;
    if (this.failAt?.index === index) throw this.failAt.error;
    if (index >= this.length) return { done: true, value: undefined };
    return { done: false, value: index };
  }

  async return(): Promise<IteratorResult<number>> {
    this.returnCalls += 1;
    return { done: true, value: undefined };
  }
}

async function* iterate<T>(items: readonly T[]): AsyncGenerator<T> {
  yield* items;
}

interface Recorder<T> {
  values: T[];
  error?: unknown;
  completed: boolean;
  subscription: Subscription;
}

function record<T>(source: Observable<T>): Recorder<T> {
  const recorder = { values: [] as T[], completed: false } as Recorder<T>;
  recorder.subscription = source.subscribe({
    next: (value) => recorder.values.push(value),
    error: (error: unknown) => (recorder.error = error),
    complete: () => (recorder.completed = true),
  });
  return recorder;
}

describe('Demand', () => {
  it('hands out initialCredits at once, then one credit per release, first come first served', async () => {
    const demand = new Demand(2);
    await demand.acquire();
    await demand.acquire();
    assert.equal(demand.available, 0);
    assert.equal(demand.outstanding, 2);
    const order: string[] = [];
    const first = demand.acquire().then(() => order.push('first'));
    const second = demand.acquire().then(() => order.push('second'));
    await settle();
    assert.deepEqual(order, []);
    assert.equal(demand.waiting, 2);
    demand.release(1);
    await first;
    await settle();
    assert.deepEqual(order, ['first']);
    demand.release(1);
    await second;
    assert.deepEqual(order, ['first', 'second']);
    assert.equal(demand.outstanding, 2);
  });

  it('cancels a waiting acquire through its AbortSignal without taking a credit', async () => {
    const demand = new Demand(1);
    await demand.acquire();
    const controller = new AbortController();
    const waiting = demand.acquire(controller.signal);
    controller.abort();
    await assert.rejects(waiting, DemandAbortedError);
    assert.equal(demand.waiting, 0);
    demand.release(1);
    assert.equal(demand.available, 1, 'the released credit went to nobody');
    await assert.rejects(demand.acquire(controller.signal), DemandAbortedError);
    assert.equal(demand.available, 1);
  });

  it('refuses bad credit counts and releases beyond what is outstanding', async () => {
    assert.throws(() => new Demand(0), LifelongError);
    assert.throws(() => new Demand(2.5), LifelongError);
    const demand = new Demand(3);
    await demand.acquire();
    assert.throws(() => demand.release(2), /only 1 are outstanding/);
    assert.throws(() => demand.release(-1), LifelongError);
    demand.release(1);
    assert.equal(demand.available, 3);
  });
});

describe('pullSource', () => {
  it('pulls exactly initialCredits items before any credit is released', async () => {
    for (const credits of [1, 3, 8]) {
      const iterator = new InstrumentedIterator();
      const demand = new Demand(credits);
      const recorder = record(pullSource(() => iterator, demand));
      await settle();
      assert.equal(iterator.nextCalls, credits);
      assert.deepEqual(recorder.values, Array.from({ length: credits }, (_, i) => i));
      assert.equal(demand.outstanding, credits);
      assert.equal(demand.waiting, 1, 'the reader waits for a credit');
      recorder.subscription.unsubscribe();
    }
  });

  it('pulls exactly n more items when n credits are released', async () => {
    const iterator = new InstrumentedIterator();
    const demand = new Demand(4);
    const recorder = record(pullSource(() => iterator, demand));
    await settle();
    for (const n of [1, 3, 2, 4]) {
      const before = iterator.nextCalls;
      demand.release(n);
      await settle();
      assert.equal(iterator.nextCalls - before, n);
      assert.equal(recorder.values.length, iterator.nextCalls);
    }
    assert.equal(iterator.maxInFlight, 1, 'never two next() calls at once');
    recorder.subscription.unsubscribe();
  });

  it('calls return() on unsubscribe and never calls next() again', async () => {
    const iterator = new InstrumentedIterator();
    const demand = new Demand(2);
    const recorder = record(pullSource(() => iterator, demand));
    await settle();
    recorder.subscription.unsubscribe();
    assert.equal(iterator.returnCalls, 1);
    assert.equal(demand.waiting, 0, 'the pending acquire was cancelled');
    const calls = iterator.nextCalls;
    demand.release(2);
    await settle();
    assert.equal(iterator.nextCalls, calls);
    assert.equal(demand.available, 2, 'nobody took the released credits');
    assert.equal(recorder.error, undefined);
    assert.equal(recorder.completed, false);
  });

  it('drops an item that arrives after unsubscribe and gives its credit back', async () => {
    let resolveNext: ((result: IteratorResult<number>) => void) | undefined;
    let nextCalls = 0;
    let returnCalls = 0;
    const iterator: AsyncIterator<number> = {
      next: () => {
        nextCalls += 1;
        return new Promise((resolve) => (resolveNext = resolve));
      },
      return: async () => {
        returnCalls += 1;
        return { done: true, value: undefined };
      },
    };
    const demand = new Demand(2);
    const recorder = record(pullSource(() => iterator, demand));
    await settle();
    assert.equal(nextCalls, 1);
    recorder.subscription.unsubscribe(); // while next() is pending
    assert.equal(returnCalls, 1);
    resolveNext?.({ done: false, value: 42 });
    await settle();
    assert.deepEqual(recorder.values, []);
    assert.equal(nextCalls, 1);
    assert.equal(demand.outstanding, 0);
  });

  it('propagates an iterator error and does not call return() after it', async () => {
    const error = new Error('corrupt file');
    const iterator = new InstrumentedIterator(Number.POSITIVE_INFINITY, { index: 2, error });
    const demand = new Demand(10);
    const recorder = record(pullSource(() => iterator, demand));
    await settle();
    assert.equal(recorder.error, error);
    assert.deepEqual(recorder.values, [0, 1]);
    assert.equal(iterator.nextCalls, 3);
    assert.equal(iterator.returnCalls, 0);
    assert.equal(demand.outstanding, 2, 'the failed read gave its credit back');
  });

  it('propagates an error thrown by open()', async () => {
    const error = new Error('cannot open');
    const recorder = record(
      pullSource<number>(() => {
        throw error;
      }, new Demand(1)),
    );
    await settle();
    assert.equal(recorder.error, error);
  });

  it('completes when the iterator is done, without calling return()', async () => {
    const iterator = new InstrumentedIterator(3);
    const demand = new Demand(2);
    const recorder = record(pullSource(() => iterator, demand));
    await settle();
    assert.deepEqual(recorder.values, [0, 1]);
    assert.equal(recorder.completed, false, 'no credit left to discover the end');
    demand.release(2);
    await settle();
    assert.deepEqual(recorder.values, [0, 1, 2]);
    assert.equal(recorder.completed, true);
    assert.equal(iterator.nextCalls, 4);
    assert.equal(iterator.returnCalls, 0);
    assert.equal(demand.outstanding, 1, 'the read that found the end gave its credit back');
  });

  it('opens a fresh iterator per subscription', async () => {
    let opened = 0;
    const source = pullSource(() => {
      opened += 1;
      return new InstrumentedIterator(2);
    }, new Demand(10));
    assert.deepEqual(await lastValueFrom(source.pipe(toArray())), [0, 1]);
    assert.deepEqual(await lastValueFrom(source.pipe(toArray())), [0, 1]);
    assert.equal(opened, 2);
  });

  it('gives back the credit of costless items (task controls) at once', async () => {
    const sample = (id: string): Sample => ({ task: 'A', x: new Float32Array(1), id });
    const items: SourceItem[] = [sample('1'), endOfTask('A'), endOfTask('A', 'idle'), sample('2'), sample('3')];
    const demand = new Demand(2);
    const recorder = record(pullSource(() => iterate(items), demand, { costless: isTaskControl }));
    await settle();
    // Two samples hold the two credits; the controls in between did not consume any.
    assert.deepEqual(recorder.values, items.slice(0, 4));
    assert.equal(demand.outstanding, 2);
    recorder.subscription.unsubscribe();
  });

  it('keeps items in flight <= initialCredits against a slow batch trainer, and the timer flush avoids a deadlock', async () => {
    // 3 credits but batches of 4: only the micro-batcher's maxWaitMs flush lets training go on.
    const credits = 3;
    const total = 20;
    const demand = new Demand(credits);
    let pulled = 0;
    let released = 0;
    let maxInFlight = 0;
    async function* samples(): AsyncGenerator<Sample> {
      for (let i = 0; i < total; i++) {
        pulled += 1;
        maxInFlight = Math.max(maxInFlight, pulled - released);
        yield { task: i < 10 ? 'A' : 'B', x: new Float32Array(1), y: '0', id: String(i) };
      }
    }
    const trained = new Subject<number>();
    const sizes: number[] = [];
    trained.subscribe((n) => sizes.push(n));
    await lastValueFrom(
      pullSource(() => samples(), demand).pipe(
        detectTaskBoundaries(),
        microBatch(4, 2),
        concatMap(async (event) => {
          if (event.kind !== 'batch') return event;
          await settle(); // the "training step"
          released += (event as BatchEvent).samples.length;
          demand.release((event as BatchEvent).samples.length);
          trained.next((event as BatchEvent).samples.length);
          return event;
        }),
        tap(() => assert.ok(pulled - released <= credits)),
        toArray(),
      ),
    );
    assert.equal(
      sizes.reduce((a, b) => a + b, 0),
      total,
    );
    assert.ok(maxInFlight <= credits, `in flight ${maxInFlight} > ${credits}`);
    assert.ok(sizes.every((n) => n <= credits));
  });
});
