import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { from, lastValueFrom, toArray } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { loadPipelineConfig } from '../../src/config/pipeline-config';
import { ConfigError } from '../../src/core/errors';
import { Rng } from '../../src/core/rng';
import { endOfTask, type Sample, type TaskInfo } from '../../src/core/types';
import { runEngine } from '../../src/engine/engine';
import { ConceptDriftMonitor, DRIFT_DEFAULTS, type ConceptDriftSettings } from '../../src/metrics/concept-drift';
import { LabelDrift } from '../../src/metrics/label-drift';
import { InputDrift } from '../../src/metrics/population-stability';
import { LifelongMetrics } from '../../src/metrics/prometheus';
import type { EngineSnapshot } from '../../src/operators/checkpoints';
import { detectTaskBoundaries } from '../../src/operators/detect-task-boundaries';
import type { EngineEvent, StepOutcome, TaskEvent } from '../../src/operators/events';
import type { Source, SourceContext, SourceResume } from '../../src/operators/source';
import { TaskFreeSplits } from '../../src/operators/task-free-splits';
import { parseExposition, type Series } from '../helpers/exposition';
import { FakeStrategy } from '../helpers/fake-strategy';

const REPO = path.resolve(__dirname, '../../..');

/** The value of the one series with exactly these labels; undefined when absent. */
function value(all: readonly Series[], name: string, labels: Record<string, string>): number | undefined {
  return all.find((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === JSON.stringify(Object.entries(labels).sort()))?.value;
}

describe('concept, input and label drift per task (issue 15)', () => {
  describe('ConceptDriftMonitor', () => {
    const errors = (seed: number, rates: [number, number][]): boolean[] => {
      const rng = new Rng(seed);
      return rates.flatMap(([rate, n]) => Array.from({ length: n }, () => rng.next() < rate));
    };

    for (const detector of ['adwin', 'page-hinkley'] as const) {
      it(`${detector}: confirms a rise of the error, not the fall of a learning curve`, () => {
        const monitor = new ConceptDriftMonitor({ ...DRIFT_DEFAULTS, detector });
        // A task being learned (error 0.9 falling to 0.1), then its concept changes (0.5).
        const stream = errors(1, [[0.9, 100], [0.5, 100], [0.1, 800], [0.5, 600]]);
        const confirmed = stream.map((wrong) => monitor.observePrediction('t', wrong)).filter((d) => d !== undefined);
        assert.equal(confirmed.length, 1, JSON.stringify(confirmed));
        const drift = confirmed[0]!;
        assert.equal(drift.task, 't');
        assert.equal(drift.detector, detector);
        assert.ok(drift.position >= 1000 && drift.position < 1250, `confirmed at ${drift.position}`);
        assert.ok(drift.errorAfter > drift.errorBefore);
        const status = monitor.status('t');
        assert.ok(status.errorEstimate !== null && status.errorEstimate > 0.2, `estimate ${status.errorEstimate}`);
        monitor.forget('t');
        assert.equal(monitor.status('t').errorEstimate, null, 'an ended task\'s windows are freed');
      });
    }

    it("'none' watches input and label drift without a detector", () => {
      const monitor = new ConceptDriftMonitor({ ...DRIFT_DEFAULTS, detector: 'none' });
      for (let i = 0; i < 2000; i++) assert.equal(monitor.observePrediction('t', i > 1000), undefined);
      assert.equal(monitor.status('t').errorEstimate, null);
      assert.deepEqual(monitor.status('unseen'), { task: 'unseen', detector: null, errorEstimate: null, inputPsi: null, labelDrift: null });
    });
  });

  describe('InputDrift (population stability index)', () => {
    const image = (rng: Rng, brightness: number) => Float32Array.from({ length: 64 }, () => (rng.next() < brightness ? rng.next() : 0));

    it('stays near 0 on inputs like the reference and rises above 0.25 when their brightness shifts', () => {
      const rng = new Rng(2);
      const drift = new InputDrift({ referenceSamples: 300, recentSamples: 300 });
      for (let i = 0; i < 300; i++) drift.observe(image(rng, 0.2));
      assert.equal(drift.psi(), null, 'unknown until the recent window is half full');
      for (let i = 0; i < 300; i++) drift.observe(image(rng, 0.2));
      const stable = drift.psi() as number;
      for (let i = 0; i < 300; i++) drift.observe(image(rng, 0.5));
      const shifted = drift.psi() as number;
      console.log(`      PSI: ${stable.toFixed(3)} on the same distribution, ${shifted.toFixed(3)} after the shift`);
      assert.ok(stable < 0.1, `stable PSI ${stable}`);
      assert.ok(shifted > 0.25, `shifted PSI ${shifted}`);
    });
  });

  describe('LabelDrift (total variation)', () => {
    it('is 0 on the same label shares, 1 on disjoint labels, and in between on a partial change', () => {
      const drift = new LabelDrift({ referenceSamples: 4, recentSamples: 4 });
      for (const y of ['a', 'b', 'a', 'b']) drift.observe(y);
      assert.equal(drift.distance(), null);
      for (const y of ['b', 'a']) drift.observe(y);
      assert.equal(drift.distance(), 0);
      for (const y of ['c', 'c']) drift.observe(y);
      assert.equal(drift.distance(), 0.5);
      for (const y of ['c', 'c']) drift.observe(y);
      assert.equal(drift.distance(), 1);
    });
  });

  describe('TaskFreeSplits', () => {
    it('names each topic\'s tasks <topic>, <topic>#2... and splits only the current one, once', () => {
      const splits = new TaskFreeSplits();
      assert.deepEqual(splits.route('s'), { task: 's', split: false });
      assert.equal(splits.split('s'), true);
      assert.equal(splits.split('s'), false, 'already pending');
      assert.equal(splits.nextTaskAfter('s'), 's#2');
      assert.equal(splits.taskOf('s'), 's', 'a marker before the next sample still names the current task');
      assert.deepEqual(splits.route('s'), { task: 's#2', split: true });
      assert.deepEqual(splits.route('s'), { task: 's#2', split: false });
      assert.equal(splits.split('s'), false, "'s' is not the topic's current task any more");
      assert.equal(TaskFreeSplits.topicOf('s#2'), 's');
      assert.equal(TaskFreeSplits.topicOf('a.b-c'), 'a.b-c');
    });

    it("goes on from a checkpoint's tasks with each topic's last one", () => {
      const splits = new TaskFreeSplits(['s', 'other', 's#2', 's#3', 'other#2']);
      assert.deepEqual(splits.route('s'), { task: 's#3', split: false });
      assert.deepEqual(splits.route('other'), { task: 'other#2', split: false });
      assert.equal(splits.split('s#3'), true);
      assert.deepEqual(splits.route('s'), { task: 's#4', split: true });
    });
  });

  describe('detectTaskBoundaries in task-free mode', () => {
    const sample = (task: string, id: string): Sample => ({ task, x: new Float32Array(1), y: '0', id });
    const scheduler = () => new TestScheduler((actual, expected) => assert.deepStrictEqual(actual, expected));
    const S: TaskInfo = { name: 's', index: 0 };
    const S2: TaskInfo = { name: 's#2', index: 1 };

    it('cuts the boundary at the first sample after a split, with reason drift; a marker of the topic ends its current task', () => {
      const splits = new TaskFreeSplits();
      const [a, b, c] = [sample('s', 'a'), sample('s', 'b'), sample('s', 'c')];
      const events: TaskEvent[] = [];
      from([a, b, c, endOfTask('s')])
        .pipe(detectTaskBoundaries({ taskFree: splits }))
        .subscribe((e) => {
          events.push(e);
          // The drift is confirmed once `a` was learned: `b` begins the next task.
          if (e.kind === 'sample' && e.sample.id === 'a') splits.split('s');
        });
      assert.deepStrictEqual(events, [
        { kind: 'task-begin', task: S },
        { kind: 'sample', task: S, sample: a },
        { kind: 'task-end', task: S, reason: 'drift' },
        { kind: 'task-begin', task: S2 },
        { kind: 'sample', task: S2, sample: b },
        { kind: 'sample', task: S2, sample: c },
        { kind: 'task-end', task: S2, reason: 'control' },
      ]);
    });

    it('a resumed run keeps its tasks: samples of the topic go on in its last task, without a begin', () => {
      const splits = new TaskFreeSplits(['s', 's#2']);
      const a = sample('s', 'a');
      scheduler().run(({ cold, expectObservable }) => {
        const out = cold('a |', { a }).pipe(detectTaskBoundaries({ taskFree: splits, initialTasks: ['s', 's#2'], currentTask: 's#2' }));
        expectObservable(out).toBe('a (e|)', {
          a: { kind: 'sample', task: S2, sample: a },
          e: { kind: 'task-end', task: S2, reason: 'end-of-stream' },
        });
      });
    });
  });

  describe('runEngine in task-free mode (fake strategy)', () => {
    /** One topic: labels follow the first feature (learnable), then turn random (error about 0.8). */
    class OneTopic implements Source {
      readonly description = 'one topic';
      readonly inputSize = 1;
      resumedWith: SourceResume | undefined;
      constructor(private readonly items: readonly Sample[]) {}
      open(_context: SourceContext): AsyncIterator<Sample> {
        let i = 0;
        return { next: async () => (i < this.items.length ? { done: false, value: this.items[i++] as Sample } : { done: true, value: undefined }) };
      }
      resume(state: SourceResume): void {
        this.resumedWith = state;
      }
      async close(): Promise<void> {}
    }
    const rng = new Rng(3);
    const learnable = Array.from({ length: 600 }, (_, i): Sample => ({ task: 's', x: Float32Array.from([i % 5]), y: String(i % 5) }));
    const random = Array.from({ length: 600 }, (_, i): Sample => ({ task: 's', x: Float32Array.from([i % 5]), y: String(rng.int(5)) }));
    const settings: ConceptDriftSettings = { ...DRIFT_DEFAULTS, taskFree: true, referenceSamples: 50, recentSamples: 50 };
    const run = async (source: Source, resumed?: EngineSnapshot): Promise<EngineEvent[]> =>
      lastValueFrom(runEngine({ source, strategy: new FakeStrategy(), batchSize: 8, probeSize: 10, holdoutEvery: 10, drift: settings, ...(resumed ? { resumed } : {}) }).pipe(toArray()));

    it('a stream that changes without a new topic is learned as two tasks; step outcomes carry the drift', async () => {
      const events = await run(new OneTopic([...learnable, ...random]));
      const begun = events.filter((e) => e.kind === 'task-started').map((e) => e.task.name);
      assert.deepEqual(begun, ['s', 's#2']);
      const ends = events.filter((e) => e.kind === 'task-outcome').map((e) => [e.task.name, e.reason]);
      assert.deepEqual(ends, [['s', 'drift'], ['s#2', 'end-of-stream']]);
      const confirmed = events.flatMap((e) => (e.kind === 'step-outcome' ? (e.drift?.confirmed ?? []) : []));
      assert.equal(confirmed.length, 1);
      assert.equal(confirmed[0]?.nextTask, 's#2');
      const first = events.findIndex((e) => e.kind === 'step-outcome' && e.task.name === 's#2');
      const trainedBefore = events.slice(0, first).reduce((n, e) => n + (e.kind === 'step-outcome' ? e.samples.length : 0), 0);
      assert.ok(trainedBefore >= 600 && trainedBefore <= 600 + 200, `boundary after ${trainedBefore} samples`);
      const last = events.filter((e): e is StepOutcome => e.kind === 'step-outcome').at(-1)!;
      assert.equal(last.drift?.status[0]?.task, 's#2');
      assert.ok((last.drift?.status[0]?.labelDrift ?? -1) >= 0);
    });

    it('a resumed run keeps the tasks it had and does not split again', async () => {
      const source = new OneTopic(random);
      const resumed: EngineSnapshot = { modelVersion: 10, tasks: ['s', 's#2'], current: 's#2', holdout: {}, probes: {}, positions: {} };
      const events = await run(source, resumed);
      assert.deepEqual(source.resumedWith, { tasks: ['s'], current: 's', positions: {} }, 'the source is resumed with topics');
      assert.equal(events.filter((e) => e.kind === 'task-started').length, 0);
      assert.deepEqual(events.filter((e) => e.kind === 'task-outcome').map((e) => e.task.name), ['s#2']);
      assert.ok(events.every((e) => e.kind !== 'step-outcome' || (e.task.name === 's#2' && (e.drift?.confirmed.length ?? 0) === 0)));
    });
  });

  describe('pipeline file and metrics', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifelong-drift-'));
    after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const quickstart = JSON.parse(fs.readFileSync(path.join(REPO, 'pipelines/quickstart.json'), 'utf8')) as Record<string, unknown>;
    const write = (drift: unknown, name: string): string => {
      const file = path.join(dir, name);
      fs.writeFileSync(file, JSON.stringify({ ...quickstart, ...(drift === undefined ? {} : { drift }) }));
      return file;
    };

    it('defaults to ADWIN with River\'s parameters and task-free mode off', () => {
      assert.deepEqual(loadPipelineConfig(write(undefined, 'default.json')).drift, DRIFT_DEFAULTS);
      const ph = loadPipelineConfig(write({ detector: 'page-hinkley', pageHinkley: { threshold: 20 }, taskFree: true }, 'ph.json')).drift!;
      assert.equal(ph.detector, 'page-hinkley');
      assert.deepEqual(ph.pageHinkley, { ...DRIFT_DEFAULTS.pageHinkley, threshold: 20 });
      assert.equal(ph.taskFree, true);
    });

    it('a bad key names the file and the key', () => {
      const cases: [unknown, RegExp][] = [
        [{ detector: 'kswin' }, /drift\.detector/],
        [{ adwin: { delta: 1 } }, /drift\.adwin\.delta/],
        [{ adwin: { clock: 0 } }, /drift\.adwin\.clock/],
        [{ pageHinkley: { mode: 'sideways' } }, /drift\.pageHinkley\.mode/],
        [{ detector: 'none', taskFree: true }, /drift\.taskFree/],
        [{ referenceSamples: 1 }, /drift\.referenceSamples/],
      ];
      cases.forEach(([drift, key], i) => {
        const file = write(drift, `bad-${i}.json`);
        assert.throws(() => loadPipelineConfig(file), (e: unknown) => e instanceof ConfigError && key.test(e.message) && e.message.includes(file), JSON.stringify(drift));
      });
    });

    it('exports lifelong_concept_drift_total{task,detector} and the three gauges per task', async () => {
      const metrics = new LifelongMetrics({ defaultMetrics: false });
      metrics.setDriftStatus({ task: 's', detector: 'adwin', errorEstimate: 0.4, inputPsi: 0.3, labelDrift: 0.25 });
      metrics.countConceptDrift('s', 'adwin');
      metrics.setDriftStatus({ task: 't', detector: 'adwin', errorEstimate: 0.1, inputPsi: null, labelDrift: null });
      metrics.setDriftStatus({ task: 'u', detector: null, errorEstimate: null, inputPsi: 0.01, labelDrift: 0 });
      const exposition = parseExposition(await metrics.metrics());
      assert.equal(value(exposition, 'lifelong_concept_drift_total', { task: 's', detector: 'adwin' }), 1);
      assert.equal(value(exposition, 'lifelong_prequential_error_estimate', { task: 's' }), 0.4);
      assert.equal(value(exposition, 'lifelong_input_drift_psi', { task: 's' }), 0.3);
      assert.equal(value(exposition, 'lifelong_label_drift_ratio', { task: 's' }), 0.25);
      assert.equal(value(exposition, 'lifelong_prequential_error_estimate', { task: 't' }), 0.1);
      assert.equal(value(exposition, 'lifelong_input_drift_psi', { task: 't' }), undefined, 'unknown values are absent');
      assert.equal(value(exposition, 'lifelong_concept_drift_total', { task: 't', detector: 'adwin' }), 0, 'created at 0, so increase() sees the first drift');
      assert.equal(value(exposition, 'lifelong_concept_drift_total', { task: 'u', detector: 'adwin' }), undefined);
    });
  });
});
