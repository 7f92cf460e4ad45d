import assert from 'node:assert/strict';
import { TestScheduler } from 'rxjs/testing';
import { ConfigError } from '../../src/core/errors';
import type { Sample, SampleKind, TaskInfo } from '../../src/core/types';
import type { BatchedEvent, PlannedEvent, SampleEvent } from '../../src/operators/events';
import { testThenTrain, type TestThenTrainPolicy } from '../../src/operators/test-then-train';

function sample(task: string, id: string, y?: string): Sample {
  return { task, x: new Float32Array(1), id, ...(y === undefined ? {} : { y }) };
}
const info = (name: string, index: number): TaskInfo => ({ name, index });
const labelled = (task: TaskInfo, id: string): SampleEvent => ({ kind: 'sample', task, sample: sample(task.name, id, '1') });
const unlabelled = (task: TaskInfo, id: string): SampleEvent => ({ kind: 'sample', task, sample: sample(task.name, id) });
const batch = (task: TaskInfo, samples: SampleEvent[]): BatchedEvent => ({ kind: 'batch', task, samples });
const step = (task: TaskInfo, samples: SampleEvent[], plan: SampleKind[]): PlannedEvent => ({
  kind: 'step',
  task,
  samples,
  plan,
});

function newScheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => assert.deepStrictEqual(actual, expected));
}

describe('testThenTrain', () => {
  const A = info('A', 0);
  const B = info('B', 1);
  const beginA: BatchedEvent = { kind: 'task-begin', task: A };
  const endA: BatchedEvent = { kind: 'task-end', task: A, reason: 'next-task' };
  const beginB: BatchedEvent = { kind: 'task-begin', task: B };
  const endB: BatchedEvent = { kind: 'task-end', task: B, reason: 'end-of-stream' };

  it('trains labelled samples of the current task and only predicts unlabelled ones', () => {
    newScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const first = [labelled(A, 'a1'), unlabelled(A, 'a2'), labelled(A, 'a3')];
      const source = cold('p-x-e-|', { p: beginA, x: batch(A, first), e: endA });
      expectObservable(source.pipe(testThenTrain({ endedTaskLabelled: 'evaluate' }))).toBe('p-s-e-|', {
        p: beginA,
        s: step(A, first, ['trained', 'predicted', 'trained']),
        e: endA,
      });
      expectSubscriptions(source.subscriptions).toBe('^-----!');
    });
  });

  it('evaluates labelled samples of ended tasks, or rejects them with the ignore policy', () => {
    // b1 is B's (current), a1 is A's (ended), a2 is A's without a label; then after B ends, b2.
    const mixed = [labelled(B, 'b1'), labelled(A, 'a1'), unlabelled(A, 'a2')];
    const late = [labelled(B, 'b2')];
    const cases: Array<[TestThenTrainPolicy['endedTaskLabelled'], SampleKind]> = [
      ['evaluate', 'evaluated'],
      ['ignore', 'rejected'],
    ];
    for (const [policy, endedKind] of cases) {
      newScheduler().run(({ cold, expectObservable }) => {
        const source = cold('p-e-q-x-f-y-|', {
          p: beginA,
          e: endA,
          q: beginB,
          x: batch(B, mixed),
          f: endB,
          y: batch(B, late),
        });
        expectObservable(source.pipe(testThenTrain({ endedTaskLabelled: policy }))).toBe('p-e-q-s-f-t-|', {
          p: beginA,
          e: endA,
          q: beginB,
          s: step(B, mixed, ['trained', endedKind, 'predicted']),
          f: endB,
          t: step(B, late, [endedKind]), // B has ended: its late samples are not trained on
        });
      });
    }
  });

  it('treats every labelled sample as an ended-task sample before any task-begin', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const samples = [labelled(A, 'a1'), unlabelled(A, 'a2')];
      const source = cold('x|', { x: batch(A, samples) });
      expectObservable(source.pipe(testThenTrain({ endedTaskLabelled: 'evaluate' }))).toBe('s|', {
        s: step(A, samples, ['evaluated', 'predicted']),
      });
    });
  });

  it('holds out every n-th labelled sample of each task, up to maxPerTask, counting across batches', () => {
    const every = 3;
    const maxPerTask = 2;
    // A: 10 labelled samples with unlabelled ones in between (they do not count), over 3 batches.
    const a = Array.from({ length: 10 }, (_, i) => labelled(A, `a${i + 1}`));
    const u = [unlabelled(A, 'u1'), unlabelled(A, 'u2')];
    const x1 = [a[0], a[1], u[0], a[2], a[3]] as SampleEvent[];
    const x2 = [a[4], a[5], a[6], u[1]] as SampleEvent[];
    const x3 = [a[7], a[8], a[9]] as SampleEvent[];
    // B starts counting afresh; an A sample inside B's batch is an ended-task sample, not counted.
    const b = Array.from({ length: 4 }, (_, i) => labelled(B, `b${i + 1}`));
    const y1 = [b[0], b[1], a[0], b[2], b[3]] as SampleEvent[];
    newScheduler().run(({ cold, expectObservable }) => {
      const source = cold('p-x-y-z-e-q-w-f-|', {
        p: beginA,
        x: batch(A, x1),
        y: batch(A, x2),
        z: batch(A, x3),
        e: endA,
        q: beginB,
        w: batch(B, y1),
        f: endB,
      });
      const operator = testThenTrain({ endedTaskLabelled: 'evaluate', holdout: { every, maxPerTask } });
      expectObservable(source.pipe(operator)).toBe('p-x-y-z-e-q-w-f-|', {
        p: beginA,
        // labelled #3 (a3) and #6 (a6) are held out; #9 (a9) is trained: A has 2 held out already.
        x: step(A, x1, ['trained', 'trained', 'predicted', 'held-out', 'trained']),
        y: step(A, x2, ['trained', 'held-out', 'trained', 'predicted']),
        z: step(A, x3, ['trained', 'trained', 'trained']),
        e: endA,
        q: beginB,
        w: step(B, y1, ['trained', 'trained', 'evaluated', 'held-out', 'trained']),
        f: endB,
      });
    });
  });

  it('holds out the same samples on every subscription', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const samples = [labelled(A, 'a1'), labelled(A, 'a2')];
      const planned = cold('p-x-|', { p: beginA, x: batch(A, samples) }).pipe(
        testThenTrain({ endedTaskLabelled: 'evaluate', holdout: { every: 2, maxPerTask: 5 } }),
      );
      const values = { p: beginA, s: step(A, samples, ['trained', 'held-out']) };
      expectObservable(planned).toBe('p-s-|', values);
      expectObservable(planned).toBe('p-s-|', values);
    });
  });

  it('passes errors through', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const error = new Error('upstream');
      const source = cold<BatchedEvent>('p-#', { p: beginA }, error);
      expectObservable(source.pipe(testThenTrain({ endedTaskLabelled: 'ignore' }))).toBe('p-#', { p: beginA }, error);
    });
  });

  it('validates the policy', () => {
    assert.throws(() => testThenTrain({ endedTaskLabelled: 'drop' as never }), ConfigError);
    assert.throws(() => testThenTrain({ endedTaskLabelled: 'evaluate', holdout: { every: 0, maxPerTask: 1 } }), ConfigError);
    assert.throws(() => testThenTrain({ endedTaskLabelled: 'evaluate', holdout: { every: 2, maxPerTask: -1 } }), ConfigError);
    assert.throws(() => testThenTrain({ endedTaskLabelled: 'evaluate', holdout: { every: 1.5, maxPerTask: 1 } }), ConfigError);
    assert.doesNotThrow(() => testThenTrain({ endedTaskLabelled: 'ignore', holdout: { every: 1, maxPerTask: 0 } }));
  });
});
