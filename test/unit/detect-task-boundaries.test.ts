import assert from 'node:assert/strict';
import { TestScheduler } from 'rxjs/testing';
import { ConfigError } from '../../src/core/errors';
import { endOfTask, isTaskControl, type Sample, type TaskInfo } from '../../src/core/types';
import { detectTaskBoundaries } from '../../src/operators/detect-task-boundaries';
import type { TaskEndReason, TaskEvent } from '../../src/operators/events';

function sample(task: string, y?: string, id?: string): Sample {
  return { task, x: new Float32Array(1), ...(y === undefined ? {} : { y }), ...(id === undefined ? {} : { id }) };
}
const info = (name: string, index: number): TaskInfo => ({ name, index });
const begin = (task: TaskInfo): TaskEvent => ({ kind: 'task-begin', task });
const end = (task: TaskInfo, reason: TaskEndReason): TaskEvent => ({ kind: 'task-end', task, reason });
const tagged = (task: TaskInfo, s: Sample): TaskEvent => ({ kind: 'sample', task, sample: s });

function newScheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => assert.deepStrictEqual(actual, expected));
}

describe('detectTaskBoundaries', () => {
  const A = info('A', 0);
  const B = info('B', 1);
  const C = info('C', 2);
  const a1 = sample('A', '0', 'a1');
  const a2 = sample('A', '1', 'a2');
  const a3 = sample('A', '1', 'a3');
  const b1 = sample('B', '2', 'b1');
  const b2 = sample('B', undefined, 'b2');
  const c1 = sample('C', '4', 'c1');

  it('begins the first task, passes its samples, and ends it on a new task', () => {
    newScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('a 9ms b 9ms c 9ms d 9ms e 9ms |', { a: a1, b: a2, c: b1, d: b2, e: c1 });
      const expected = '   (pa) 6ms b 9ms (qrc) 5ms d 9ms (stu) 5ms (v|)';
      expectObservable(source.pipe(detectTaskBoundaries())).toBe(expected, {
        p: begin(A),
        a: tagged(A, a1),
        b: tagged(A, a2),
        q: end(A, 'next-task'),
        r: begin(B),
        c: tagged(B, b1),
        d: tagged(B, b2),
        s: end(B, 'next-task'),
        t: begin(C),
        u: tagged(C, c1),
        v: end(C, 'end-of-stream'),
      });
      expectSubscriptions(source.subscriptions).toBe('^ 49ms !');
    });
  });

  it('ends the current task with end-of-stream on completion, and an empty stream emits nothing', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      expectObservable(cold('a 9ms |', { a: a1 }).pipe(detectTaskBoundaries())).toBe('(pa) 6ms (e|)', {
        p: begin(A),
        a: tagged(A, a1),
        e: end(A, 'end-of-stream'),
      });
      expectObservable(cold<Sample>('---|').pipe(detectTaskBoundaries())).toBe('---|');
    });
  });

  it('passes an error through without ending the task', () => {
    newScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const error = new Error('broker down');
      const source = cold<Sample>('a 9ms #', { a: a1 }, error);
      expectObservable(source.pipe(detectTaskBoundaries())).toBe('(pa) 6ms #', { p: begin(A), a: tagged(A, a1) }, error);
      expectSubscriptions(source.subscriptions).toBe('^ 9ms !');
    });
  });

  it('tags a sample of an ended task with that task and keeps the current task current', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const source = cold('a 9ms b 9ms c 9ms d 9ms |', { a: a1, b: b1, c: a2, d: b2 });
      expectObservable(source.pipe(detectTaskBoundaries())).toBe('(pa) 6ms (qrb) 5ms c 9ms d 9ms (s|)', {
        p: begin(A),
        a: tagged(A, a1),
        q: end(A, 'next-task'),
        r: begin(B),
        b: tagged(B, b1),
        c: tagged(A, a2), // no task-begin: a task is learned once
        d: tagged(B, b2),
        s: end(B, 'end-of-stream'), // B, not A, was still current
      });
    });
  });

  it('ends the current task on an explicit end-of-task control, then treats its samples as ended', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const source = cold('a 9ms x 9ms b 9ms c 9ms |', { a: a1, x: endOfTask('A', 'idle'), b: a2, c: b1 });
      expectObservable(source.pipe(detectTaskBoundaries())).toBe('(pa) 6ms e 9ms b 9ms (rc) 6ms (s|)', {
        p: begin(A),
        a: tagged(A, a1),
        e: end(A, 'idle'),
        b: tagged(A, a2), // an ended-task sample, no new begin
        r: begin(B), // no task-end before it: A already ended
        c: tagged(B, b1),
        s: end(B, 'end-of-stream'),
      });
    });
  });

  it('ignores a control for a task that is not current, and emits no end-of-stream after an explicit end', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const source = cold('a 9ms x 9ms y 9ms z 9ms w 9ms |', {
        a: a1,
        x: endOfTask('B'), // unknown task
        y: endOfTask('A', 'control'),
        z: endOfTask('A', 'control'), // repeated
        w: a3,
      });
      expectObservable(source.pipe(detectTaskBoundaries())).toBe('(pa) 6ms - 9ms e 9ms - 9ms b 9ms |', {
        p: begin(A),
        a: tagged(A, a1),
        e: end(A, 'control'),
        b: tagged(A, a3),
      });
    });
  });

  it('treats initialTasks as learned: their samples are ended-task samples, new tasks continue the numbering', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const operator = detectTaskBoundaries({ initialTasks: ['A', 'B'] });
      const source = cold('a 9ms b 9ms c 9ms d 9ms |', { a: a1, b: c1, c: b1, d: c1 });
      expectObservable(source.pipe(operator)).toBe('a 9ms (pb) 6ms c 9ms d 9ms (e|)', {
        a: tagged(A, a1),
        p: begin(C),
        b: tagged(C, c1),
        c: tagged(B, b1),
        d: tagged(C, c1),
        e: end(C, 'end-of-stream'),
      });
      // Only ended tasks stream: nothing to end on completion.
      expectObservable(cold('a|', { a: a1 }).pipe(operator)).toBe('a|', { a: tagged(A, a1) });
    });
  });

  it('starts from the same known tasks on every subscription', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const operated = cold('a 9ms |', { a: b1 }).pipe(detectTaskBoundaries({ initialTasks: ['A'] }));
      const values = { p: begin(B), a: tagged(B, b1), e: end(B, 'end-of-stream') };
      expectObservable(operated).toBe('(pa) 6ms (e|)', values);
      expectObservable(operated).toBe('(pa) 6ms (e|)', values);
    });
  });

  it('stops reading the source on unsubscribe', () => {
    newScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const source = hot('-a-b-c-', { a: a1, b: a2, c: b1 });
      expectObservable(source.pipe(detectTaskBoundaries()), '^-!').toBe('-(pa)', { p: begin(A), a: tagged(A, a1) });
      expectSubscriptions(source.subscriptions).toBe('^-!');
    });
  });

  it('refuses duplicate initial tasks and recognises control items', () => {
    assert.throws(() => detectTaskBoundaries({ initialTasks: ['A', 'B', 'A'] }), ConfigError);
    assert.equal(isTaskControl(endOfTask('A')), true);
    assert.equal(isTaskControl(a1), false);
    assert.deepStrictEqual(endOfTask('A'), { kind: 'end-of-task', task: 'A', reason: 'control' });
  });
});
