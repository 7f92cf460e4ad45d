import assert from 'node:assert/strict';
import type { SchedulerLike } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { ConfigError } from '../../src/core/errors';
import type { Sample, TaskInfo } from '../../src/core/types';
import type { BatchedEvent, SampleEvent, TaskEndReason, TaskEvent } from '../../src/operators/events';
import { microBatch } from '../../src/operators/micro-batch';

function sample(task: string, id: string, y?: string): Sample {
  return { task, x: new Float32Array(1), id, ...(y === undefined ? {} : { y }) };
}
const info = (name: string, index: number): TaskInfo => ({ name, index });
const begin = (task: TaskInfo): TaskEvent => ({ kind: 'task-begin', task });
const end = (task: TaskInfo, reason: TaskEndReason = 'next-task'): TaskEvent => ({ kind: 'task-end', task, reason });
const tagged = (task: TaskInfo, id: string): SampleEvent => ({ kind: 'sample', task, sample: sample(task.name, id, '0') });
const batch = (task: TaskInfo, ...samples: SampleEvent[]): BatchedEvent => ({ kind: 'batch', task, samples });

function newScheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => assert.deepStrictEqual(actual, expected));
}

/** Delegates to `inner` and counts how many scheduled actions actually ran. */
function countingScheduler(inner: SchedulerLike): { scheduler: SchedulerLike; fired: () => number } {
  let fired = 0;
  const scheduler: SchedulerLike = {
    now: () => inner.now(),
    schedule: (work: any, delay?: number, state?: any) =>
      inner.schedule(
        function (this: any, s?: any) {
          fired += 1;
          work.call(this, s);
        },
        delay,
        state,
      ),
  };
  return { scheduler, fired: () => fired };
}

describe('microBatch', () => {
  const A = info('A', 0);
  const B = info('B', 1);
  const [a1, a2, a3, a4, a5] = ['a1', 'a2', 'a3', 'a4', 'a5'].map((id) => tagged(A, id)) as SampleEvent[];
  const [b1, b2] = ['b1', 'b2'].map((id) => tagged(B, id)) as SampleEvent[];

  it('groups samples into batches of size in stream order and flushes the rest on completion', () => {
    newScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold<TaskEvent>('p-a-b-c-d-e-|', { p: begin(A), a: a1, b: a2, c: a3, d: a4, e: a5 });
      expectObservable(source.pipe(microBatch(2))).toBe('p---x---y---(z|)', {
        p: begin(A),
        x: batch(A, a1, a2),
        y: batch(A, a3, a4),
        z: batch(A, a5),
      });
      expectSubscriptions(source.subscriptions).toBe('^-----------!');
    });
  });

  it('emits every sample at once with size 1', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const source = cold<TaskEvent>('p-a-b-|', { p: begin(A), a: a1, b: a2 });
      expectObservable(source.pipe(microBatch(1))).toBe('p-x-y-|', { p: begin(A), x: batch(A, a1), y: batch(A, a2) });
    });
  });

  it('flushes the partial batch before a task-end and a task-begin, and never emits an empty batch', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const source = cold<TaskEvent>('p 9ms a 9ms b 9ms c 9ms e 9ms q 9ms d 9ms f 9ms r 9ms g 9ms |', {
        p: begin(A),
        a: a1,
        b: a2,
        c: a3,
        e: end(A),
        q: begin(B),
        d: b1,
        f: end(B, 'control'),
        r: begin(info('C', 2)),
        g: a4, // an ended-task sample while C is current
      });
      expectObservable(source.pipe(microBatch(2))).toBe('p 19ms x 19ms (ye) 6ms q 19ms (zf) 6ms r 19ms (w|)', {
        p: begin(A),
        x: batch(A, a1, a2),
        y: batch(A, a3),
        e: end(A),
        q: begin(B),
        z: batch(B, b1),
        f: end(B, 'control'),
        r: begin(info('C', 2)),
        w: batch(info('C', 2), a4), // the batch belongs to the current task; the sample keeps its own
      });
    });
  });

  it('flushes a partial batch maxWaitMs after its first sample (virtual time)', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      // a1 at 1 and a2 at 5 wait until 11; a3 at 30 and a4 at 32 wait until 40;
      // b1 at 46 (after B begins at 45) waits until 56; the source completes at 70, buffer empty.
      const source = cold<TaskEvent>('p a 3ms b 24ms c 1ms d 12ms q e 23ms |', {
        p: begin(A),
        a: a1,
        b: a2,
        c: a3,
        d: a4,
        q: begin(B),
        e: b1,
      });
      expectObservable(source.pipe(microBatch(3, 10))).toBe('p 10ms x 28ms y 4ms q 10ms z 13ms |', {
        p: begin(A),
        x: batch(A, a1, a2),
        y: batch(A, a3, a4),
        q: begin(B),
        z: batch(B, b1),
      });
    });
  });

  it('stops the timer and the source on unsubscribe', () => {
    const testScheduler = newScheduler();
    const { scheduler, fired } = countingScheduler(testScheduler);
    testScheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold<TaskEvent>('p-a-----', { p: begin(A), a: a1 });
      expectObservable(source.pipe(microBatch(4, 5, scheduler)), '^--!').toBe('p', { p: begin(A) });
      expectSubscriptions(source.subscriptions).toBe('^--!');
    });
    assert.equal(fired(), 0, 'the flush timer must not run after unsubscribe');
  });

  it('uses the given scheduler for the timer and clears it when the batch fills first', () => {
    const testScheduler = newScheduler();
    const { scheduler, fired } = countingScheduler(testScheduler);
    testScheduler.run(({ cold, expectObservable }) => {
      const source = cold<TaskEvent>('pab 9ms c 9ms |', { p: begin(A), a: a1, b: a2, c: a3 });
      // [a1, a2] fills at 2 (its timer, due at 6, is cancelled); [a3] from 12 is flushed at 17.
      expectObservable(source.pipe(microBatch(2, 5, scheduler))).toBe('p-x 14ms z 4ms |', {
        p: begin(A),
        x: batch(A, a1, a2),
        z: batch(A, a3),
      });
    });
    assert.equal(fired(), 1, 'only the timer of the partial batch [a3] ran');
  });

  it('passes an error through and drops the partial batch', () => {
    newScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const error = new Error('boom');
      const source = cold<TaskEvent>('p-a-#', { p: begin(A), a: a1 }, error);
      expectObservable(source.pipe(microBatch(2, 100))).toBe('p---#', { p: begin(A) }, error);
      expectSubscriptions(source.subscriptions).toBe('^---!');
    });
  });

  it('labels a batch formed before any task-begin with its first sample\'s task', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const source = cold<TaskEvent>('a-b-|', { a: b1, b: b2 });
      expectObservable(source.pipe(microBatch(2))).toBe('--x-|', { x: batch(B, b1, b2) });
    });
  });

  it('validates size and maxWaitMs', () => {
    assert.throws(() => microBatch(0), ConfigError);
    assert.throws(() => microBatch(1.5), ConfigError);
    assert.throws(() => microBatch(Number.NaN), ConfigError);
    assert.throws(() => microBatch(2, 0), ConfigError);
    assert.throws(() => microBatch(2, Number.POSITIVE_INFINITY), ConfigError);
    assert.doesNotThrow(() => microBatch(1, 1));
  });
});
