import assert from 'node:assert/strict';
import { from, lastValueFrom, toArray } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import type { Sample, SourceItem, TaskInfo } from '../../src/core/types';
import { applyStrategy } from '../../src/operators/apply-strategy';
import type { CheckpointReason, EngineSnapshot, SourcePositions } from '../../src/operators/checkpoints';
import { detectTaskBoundaries } from '../../src/operators/detect-task-boundaries';
import type { BatchedEvent, PlannedEvent, SampleEvent, TaskEvent } from '../../src/operators/events';
import { microBatch } from '../../src/operators/micro-batch';
import { ProbeStore } from '../../src/operators/probe-store';
import { scheduleCheckpoints } from '../../src/operators/schedule-checkpoints';
import { FakeStrategy } from '../helpers/fake-strategy';

const A: TaskInfo = { name: 'A', index: 0 };
const B: TaskInfo = { name: 'B', index: 1 };
const sample = (task: string, n: number, y: string | undefined = String(n % 2)): Sample => ({ task, x: Float32Array.of(n), id: `${task}${n}`, ...(y === undefined ? {} : { y }) });
const tagged = (task: TaskInfo, n: number): SampleEvent => ({ kind: 'sample', task, sample: sample(task.name, n) });

function newScheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => assert.deepStrictEqual(actual, expected));
}

describe('checkpoint markers through the operators', () => {
  it('microBatch flushes the partial batch before a checkpoint marker, then passes the marker on', () => {
    const [a1, a2, a3] = [1, 2, 3].map((n) => tagged(A, n)) as SampleEvent[];
    newScheduler().run(({ cold, expectObservable }) => {
      const source = cold<TaskEvent>('p-a-b-m-c-|', { p: { kind: 'task-begin', task: A }, a: a1, b: a2, m: { kind: 'checkpoint', reason: 'interval' }, c: a3 });
      expectObservable(source.pipe(microBatch(4))).toBe('p-----(xm)(y|)', {
        p: { kind: 'task-begin', task: A },
        x: { kind: 'batch', task: A, samples: [a1, a2] } satisfies BatchedEvent,
        m: { kind: 'checkpoint', reason: 'interval' },
        y: { kind: 'batch', task: A, samples: [a3] },
      });
    });
  });

  it('a resumed task tags the batches the micro-batcher forms before any task-begin', () => {
    const ended = tagged(A, 1);
    const current = tagged(B, 2);
    newScheduler().run(({ cold, expectObservable }) => {
      const source = cold<TaskEvent>('a-b-|', { a: ended, b: current });
      expectObservable(source.pipe(microBatch(2, undefined, undefined, B))).toBe('--x-|', { x: { kind: 'batch', task: B, samples: [ended, current] } });
    });
  });

  it('scheduleCheckpoints adds a marker every everySeconds and one at completion, none after an error', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const s = tagged(A, 1);
      const source = cold<TaskEvent>('a 2500ms b 999ms |', { a: s, b: s });
      expectObservable(source.pipe(scheduleCheckpoints(1))).toBe('a 999ms i 999ms i 500ms b 498ms i 500ms (f|)', {
        a: s,
        b: s,
        i: { kind: 'checkpoint', reason: 'interval' },
        f: { kind: 'checkpoint', reason: 'shutdown' },
      });
      expectObservable(cold<TaskEvent>('a-#', { a: s }).pipe(scheduleCheckpoints(0))).toBe('a-#', { a: s });
    });
  });

  it('detectTaskBoundaries goes on with a restored current task: no task-begin, then a new task ends it', async () => {
    const items: SourceItem[] = [sample('B', 1), sample('A', 2), sample('C', 3)];
    const events = await lastValueFrom(from(items).pipe(detectTaskBoundaries({ initialTasks: ['A', 'B'], currentTask: 'B' }), toArray()));
    assert.deepEqual(
      events.map((e) => (e.kind === 'sample' ? `${e.task.name}:${e.sample.x[0]}` : e.kind === 'checkpoint' ? 'checkpoint' : `${e.kind}:${e.task.name}`)),
      ['B:1', 'A:2', 'task-end:B', 'task-begin:C', 'C:3', 'task-end:C'],
    );
    assert.throws(() => detectTaskBoundaries({ initialTasks: ['A'], currentTask: 'B' }), /currentTask B is not one of initialTasks/);
  });

  describe('applyStrategy writes checkpoints between events', () => {
    const step = (task: TaskInfo, ns: number[], plan: ('trained' | 'held-out' | 'predicted')[] = ns.map(() => 'trained')): PlannedEvent => ({ kind: 'step', task, samples: ns.map((n) => tagged(task, n)), plan });

    async function run(events: PlannedEvent[], everySamples: number, resumed?: EngineSnapshot): Promise<{ written: { reason: CheckpointReason; snapshot: EngineSnapshot }[]; strategy: FakeStrategy }> {
      const strategy = new FakeStrategy();
      const written: { reason: CheckpointReason; snapshot: EngineSnapshot }[] = [];
      // The source's position after a sample: its feature, as if it were its offset.
      const positionsAfter = (s: Sample): SourcePositions => ({ 't/0': (s.x[0] as number) + 1 });
      await lastValueFrom(
        from(events).pipe(
          applyStrategy({
            strategy,
            probes: new ProbeStore({}, 10),
            checkpoints: { writer: { write: async (snapshot, reason) => void written.push({ reason, snapshot }) }, everySamples, positionsAfter },
            ...(resumed ? { resumed } : {}),
          }),
          toArray(),
        ),
      );
      return { written, strategy };
    }

    it('after every everySamples samples, at a task end and at a marker when something changed; each covers what was processed', async () => {
      const { written } = await run(
        [
          { kind: 'task-begin', task: A },
          step(A, [1, 2]),
          step(A, [3, 4], ['trained', 'held-out']),
          { kind: 'checkpoint', reason: 'interval' }, // nothing new since the count's checkpoint
          step(A, [5]),
          { kind: 'task-end', task: A, reason: 'next-task' },
          { kind: 'task-begin', task: B },
          step(B, [6]),
          { kind: 'checkpoint', reason: 'shutdown' },
        ],
        4,
      );
      assert.deepEqual(
        written.map(({ reason, snapshot }) => [reason, snapshot.positions['t/0'], snapshot.modelVersion, snapshot.current ?? null]),
        [
          ['samples', 5, 2, 'A'],
          ['task-end', 6, 4, null],
          ['shutdown', 7, 5, 'B'],
        ],
      );
      const [first, , last] = written.map((w) => w.snapshot) as [EngineSnapshot, EngineSnapshot, EngineSnapshot];
      assert.deepEqual(first.holdout, { A: { seen: 4, kept: 1 } });
      assert.deepEqual(first.probes.A?.map((s) => s.id), ['A4']);
      assert.deepEqual(last.tasks, ['A', 'B']);
    });

    it('a resumed snapshot goes on: no task-begin again, the model version and counters carry on, an unchanged state is not written again', async () => {
      const resumed: EngineSnapshot = { modelVersion: 7, tasks: ['A', 'B'], current: 'B', holdout: { B: { seen: 3, kept: 0 } }, probes: {}, positions: { 't/0': 10 } };
      const quiet = await run([{ kind: 'checkpoint', reason: 'shutdown' }], 0, resumed);
      assert.deepEqual(quiet.written, [], 'nothing happened since the checkpoint');
      const { written, strategy } = await run([step(B, [10, 11]), { kind: 'checkpoint', reason: 'shutdown' }], 0, resumed);
      assert.ok(!strategy.calls.some((c) => c.startsWith('begin:')), strategy.calls.join(' '));
      assert.equal(written.length, 1);
      assert.equal(written[0]?.snapshot.modelVersion, 8);
      assert.deepEqual(written[0]?.snapshot.holdout, { B: { seen: 5, kept: 0 } });
      assert.deepEqual(written[0]?.snapshot.positions, { 't/0': 12 });
    });
  });
});
