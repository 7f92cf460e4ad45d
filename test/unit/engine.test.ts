import * as assert from 'node:assert/strict';
import { lastValueFrom, toArray } from 'rxjs';
import { TASK_AGNOSTIC, type Sample } from '../../src/core/types';
import { runEngine } from '../../src/engine/engine';
import type { EngineEvent, StepOutcome, TaskOutcome } from '../../src/operators/events';
import type { Source, SourceContext } from '../../src/operators/source';
import { FakeStrategy } from '../helpers/fake-strategy';

/** A finite in-memory source that counts how far it has been read. */
class ArraySource implements Source {
  readonly description = 'array';
  readonly inputSize = 1;
  pulled = 0;
  maxInFlight = 0;
  closed = 0;
  acknowledged = 0;

  constructor(
    private readonly items: readonly Sample[],
    private readonly probes?: Record<string, Sample[]>,
  ) {}

  open(_context: SourceContext): AsyncIterator<Sample> {
    let i = 0;
    return {
      next: async () => {
        if (i >= this.items.length) return { done: true, value: undefined };
        this.pulled += 1;
        this.maxInFlight = Math.max(this.maxInFlight, this.pulled - this.acknowledged);
        return { done: false, value: this.items[i++] as Sample };
      },
    };
  }
  probe?(task: string): readonly Sample[] | undefined;
  knownTasks(): readonly string[] {
    return Object.keys(this.probes ?? {});
  }
  async acknowledge(samples: readonly Sample[]): Promise<void> {
    this.acknowledged += samples.length;
  }
  async close(): Promise<void> {
    this.closed += 1;
  }
}

const sample = (task: string, v: number, y?: string): Sample => ({ task, x: Float32Array.from([v]), ...(y === undefined ? {} : { y }) });

describe('runEngine (the pipeline over a fake strategy)', () => {
  it('predicts each labelled sample before training on it, task by task, and scores probes after each task', async () => {
    const items = [sample('a', 1, 'p'), sample('a', 1, 'p'), sample('a', 2, 'q'), sample('b', 3, 'r'), sample('b', 3, 'r')];
    const probes = { a: [sample('a', 1, 'p'), sample('a', 2, 'q')], b: [sample('b', 3, 'r'), sample('b', 4, 's')] };
    const source = new ArraySource(items, probes);
    source.probe = (task: string) => probes[task as 'a' | 'b'];
    const strategy = new FakeStrategy();
    const events = await lastValueFrom(runEngine({ source, strategy, batchSize: 2, probeSize: 10, holdoutEvery: 10 }).pipe(toArray()));

    assert.deepEqual(strategy.calls, [
      'predict:a:2', // baseline before anything is learned: the untrained model on every probe
      'predict:b:2',
      'begin:a',
      'predict:a:2',
      'train:a:2',
      'predict:a:1',
      'train:a:1',
      'end:a',
      'predict:a:2',
      'predict:b:2',
      'begin:b',
      'predict:b:2',
      'train:b:2',
      'end:b',
      'predict:a:2',
      'predict:b:2',
    ]);
    const steps = events.filter((e): e is StepOutcome => e.kind === 'step-outcome');
    // Test-then-train: the second 'a' sample with feature 1 was predicted before its batch trained.
    assert.deepEqual(steps[0]?.predictions.map((p) => p?.label), [null, null]);
    const outcomes = events.filter((e): e is TaskOutcome => e.kind === 'task-outcome');
    assert.deepEqual(outcomes.map((o) => o.probeAccuracy), [
      [1, null],
      [1, 0.5],
    ]);
    const started = events.find((e) => e.kind === 'task-started') as Extract<EngineEvent, { kind: 'task-started' }>;
    assert.deepEqual(started.baselineAccuracy, [0.5, 0.5], 'an untrained model scores chance');
    assert.equal(source.acknowledged, items.length);
  });

  it('holds out every n-th labelled sample as the probe when the source has none, and never trains on it', async () => {
    const items = Array.from({ length: 12 }, (_, i) => sample('t', i, String(i % 2)));
    const source = new ArraySource(items);
    const strategy = new FakeStrategy();
    const events = await lastValueFrom(runEngine({ source, strategy, batchSize: 4, probeSize: 2, holdoutEvery: 3 }).pipe(toArray()));
    const steps = events.filter((e): e is StepOutcome => e.kind === 'step-outcome');
    const plan = steps.flatMap((s) => s.plan);
    assert.equal(plan.filter((k) => k === 'held-out').length, 2);
    const trained = strategy.calls.filter((c) => c.startsWith('train:')).map((c) => Number(c.split(':')[2]));
    assert.equal(trained.reduce((a, b) => a + b, 0), 10);
    const outcome = events.find((e): e is TaskOutcome => e.kind === 'task-outcome');
    // Held-out samples were never trained on, so the fake cannot know their labels.
    assert.deepEqual(outcome?.probeAccuracy, [null]);
  });

  it('never has more than two batches of samples in flight (backpressure)', async () => {
    const items = Array.from({ length: 200 }, (_, i) => sample(i < 100 ? 'a' : 'b', i, 'y'));
    const source = new ArraySource(items);
    const strategy = new FakeStrategy();
    await lastValueFrom(runEngine({ source, strategy, batchSize: 8, probeSize: 5, holdoutEvery: 50 }).pipe(toArray()));
    assert.equal(source.pulled, 200);
    assert.ok(source.maxInFlight <= 16, `in flight: ${source.maxInFlight}`);
    assert.ok(source.maxInFlight >= 8, 'a full batch could form');
  });

  it('labelled samples of an ended task are scored, not trained on', async () => {
    const items = [sample('a', 1, 'p'), sample('b', 2, 'q'), sample('a', 1, 'p'), sample('b', 2, 'q')];
    const source = new ArraySource(items);
    const strategy = new FakeStrategy();
    const events = await lastValueFrom(runEngine({ source, strategy, batchSize: 1, probeSize: 5, holdoutEvery: 100 }).pipe(toArray()));
    const steps = events.filter((e): e is StepOutcome => e.kind === 'step-outcome');
    assert.deepEqual(steps.map((s) => s.plan[0]), ['trained', 'trained', 'evaluated', 'trained']);
    assert.equal(steps[2]?.predictions[0]?.label, 'p');
  });

  it('answers task-agnostic requests without a task and never begins a task for them', async () => {
    const items = [sample('a', 1, 'p'), sample(TASK_AGNOSTIC, 1), sample('a', 2, 'q')];
    const source = new ArraySource(items);
    const strategy = new FakeStrategy();
    const events = await lastValueFrom(runEngine({ source, strategy, batchSize: 1, probeSize: 5, holdoutEvery: 100 }).pipe(toArray()));
    assert.deepEqual(strategy.calls.filter((c) => c.startsWith('begin:') || c.startsWith('end:')), ['begin:a', 'end:a']);
    const request = events.filter((e): e is StepOutcome => e.kind === 'step-outcome')[1];
    assert.equal(request?.plan[0], 'predicted');
    assert.equal(request?.predictions[0]?.label, 'p', 'answered by what task a taught');
    assert.ok(strategy.calls.includes('predict:-:1'), 'asked with task undefined');
  });

  it('asks for predictions without the task outside task-incremental learning', async () => {
    const items = [sample('a', 1, 'p'), sample('a', 2, 'q')];
    const probes = { a: [sample('a', 1, 'p')] };
    const source = new ArraySource(items, probes);
    source.probe = (task: string) => probes[task as 'a'];
    const strategy = new FakeStrategy();
    await lastValueFrom(runEngine({ source, strategy, batchSize: 2, probeSize: 5, holdoutEvery: 100, taskGivenAtTest: false }).pipe(toArray()));
    const predicts = strategy.calls.filter((c) => c.startsWith('predict:'));
    assert.ok(predicts.length >= 3);
    assert.ok(predicts.every((c) => c.startsWith('predict:-:')), predicts.join(' '));
  });

  it('publishes each step to the sink before acknowledging its samples', async () => {
    const items = [sample('a', 1, 'p'), sample('a', 2), sample('a', 3, 'q')];
    const source = new ArraySource(items);
    const order: string[] = [];
    const acknowledge = source.acknowledge.bind(source);
    source.acknowledge = async (samples) => {
      order.push(`ack:${samples.length}`);
      await acknowledge(samples);
    };
    const sink = {
      publish: async (outcome: StepOutcome) => {
        await new Promise((r) => setTimeout(r, 5));
        order.push(`publish:${outcome.plan.join(',')}`);
      },
      close: async () => undefined,
    };
    await lastValueFrom(runEngine({ source, strategy: new FakeStrategy(), batchSize: 3, probeSize: 5, holdoutEvery: 100, sink }).pipe(toArray()));
    assert.deepEqual(order, ['publish:trained,predicted,trained', 'ack:3']);
  });

  it('on stop, finishes the samples in hand without ending the task, and stops reading', async () => {
    const stop = new AbortController();
    let served = 0;
    let returned = 0;
    // An endless live source: next() waits for the next sample like Kafka does.
    const source: Source = {
      description: 'live',
      live: true,
      inputSize: 1,
      open: () => ({
        next: async () => {
          served += 1;
          if (served === 6) stop.abort(); // SIGTERM arrives while the 6th sample is awaited
          if (served >= 6) return new Promise<IteratorResult<Sample>>(() => undefined);
          return { done: false, value: sample('a', served, 'y') };
        },
        return: async () => {
          returned += 1;
          return { done: true, value: undefined };
        },
      }),
      close: async () => undefined,
    };
    const strategy = new FakeStrategy();
    const events = await lastValueFrom(runEngine({ source, strategy, batchSize: 4, batchTimeoutMs: 60_000, probeSize: 5, holdoutEvery: 100, stop: stop.signal }).pipe(toArray()));
    const trained = strategy.calls.filter((c) => c.startsWith('train:')).map((c) => Number(c.split(':')[2]));
    assert.deepEqual(trained, [4, 1], 'the full batch and the partial one in hand were both learned');
    assert.ok(!strategy.calls.some((c) => c.startsWith('end:')), 'a shutdown does not end the task');
    assert.ok(!events.some((e) => e.kind === 'task-outcome'));
    assert.equal(returned, 1, 'the source was told to stop');
  });

  it("attaches the strategy's diagnostics every few steps, with the layer weights, and at each task end", async () => {
    const items = Array.from({ length: 8 }, (_, i) => sample('a', i, 'y'));
    const source = new ArraySource(items);
    const events = await lastValueFrom(runEngine({ source, strategy: new FakeStrategy(), batchSize: 2, probeSize: 5, holdoutEvery: 100, weightsEverySteps: 2 }).pipe(toArray()));
    const steps = events.filter((e): e is StepOutcome => e.kind === 'step-outcome');
    assert.deepEqual(steps.map((s) => s.diagnostics?.[0]?.value), [undefined, 4, undefined, 8]);
    assert.ok(steps.every((s) => (s.diagnostics === undefined) === (s.layerWeights === undefined)));
    const outcome = events.find((e): e is TaskOutcome => e.kind === 'task-outcome');
    assert.equal(outcome?.diagnostics?.[0]?.value, 8);
  });
});
