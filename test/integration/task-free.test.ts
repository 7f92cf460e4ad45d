import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { getBackend } from '@tensorflow/tfjs';
import { loadPipelineConfig, type PipelineConfig } from '../../src/config/pipeline-config';
import type { Logger } from '../../src/core/log';
import type { CreatedSource } from '../../src/engine/create-source';
import { runPipeline } from '../../src/engine/run-pipeline';
import { DRIFT_DEFAULTS, type ConceptDriftSettings } from '../../src/metrics/concept-drift';
import { LifelongMetrics } from '../../src/metrics/prometheus';
import type { Sample, SourceItem } from '../../src/core/types';
import { CheckpointStore } from '../../src/engine/checkpoint-store';
import type { SourcePositions } from '../../src/operators/checkpoints';
import type { Source, SourceContext, SourceResume } from '../../src/operators/source';
import { OneTopicSource } from '../helpers/one-topic-source';

const REPO = path.resolve(__dirname, '../../..');
const TOPIC = 'digits';
const TASKS = 3;
const SAMPLES_PER_TASK = 600;
/**
 * River's default threshold (50) needs a rise sustained for longer than these short tasks: the
 * running mean includes each task's own learning curve, so a jump from about 0.3 to 0.9 of error
 * adds well under 0.5 per sample.
 */
const PH_THRESHOLD = 20;

function recordingLogger(lines: { level: string; message: string; fields?: Record<string, unknown> }[]): Logger {
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) => lines.push({ level, message, ...(fields ? { fields } : {}) });
  return { debug: () => undefined, info: at('info'), warn: at('warn'), error: at('error') };
}

describe('task-free mode (issue 15): permuted MNIST on one topic becomes one task per permutation', () => {
  const base = loadPipelineConfig(path.join(REPO, 'pipelines/quickstart.json'));
  const pipeline = (detector: ConceptDriftSettings['detector']): PipelineConfig => ({
    ...base,
    name: 'task-free',
    strategy: { name: 'finetune', params: {} },
    model: { hiddenLayers: [64], outputUnits: 10 },
    training: { ...base.training, batchSize: 16 },
    evaluation: { ...base.evaluation, probeSize: 50 },
    // Windows shorter than a task (540 trained samples), so that input and label drift are known.
    drift: { ...DRIFT_DEFAULTS, detector, pageHinkley: { ...DRIFT_DEFAULTS.pageHinkley, threshold: PH_THRESHOLD }, referenceSamples: 100, recentSamples: 100, taskFree: true },
  });

  for (const detector of ['adwin', 'page-hinkley'] as const) {
    it(`${detector}: ${TASKS} tasks, each boundary soon after the permutation changed, no false alarm`, async () => {
      const lines: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
      const metrics = new LifelongMetrics({ defaultMetrics: false });
      const firstSampleOf = new Map<string, number>();
      const source = new OneTopicSource({ dataset: 'permuted-mnist', tasks: TASKS, samplesPerTask: SAMPLES_PER_TASK, seed: 1, scenario: 'domain-incremental' }, TOPIC);
      const created: CreatedSource = { source, outputUnits: 10 };
      const report = await runPipeline({
        pipeline: pipeline(detector),
        backend: getBackend(),
        source: created,
        metrics,
        log: recordingLogger(lines),
        onEvent: (event) => {
          if (event.kind !== 'step-outcome') return;
          for (const s of event.samples) if (!firstSampleOf.has(s.task.name)) firstSampleOf.set(s.task.name, Number(s.sample.id));
        },
      });
      const tasks = report.tasks;
      const boundaries = [...firstSampleOf].slice(1).map(([task, at], k) => ({ task, at, delay: at - (k + 1) * SAMPLES_PER_TASK }));
      console.log(`      ${detector}: tasks ${tasks.join(', ')}; boundaries ${boundaries.map((b) => `${b.task} at sample ${b.at} (${b.delay} after the change)`).join(', ')}`);
      assert.deepEqual(tasks, [TOPIC, `${TOPIC}#2`, `${TOPIC}#3`]);
      for (const b of boundaries) assert.ok(b.delay >= 0 && b.delay <= 150, `${b.task} began ${b.delay} samples after its permutation`);
      const drifts = lines.filter((l) => l.level === 'warn' && l.message.startsWith('concept drift'));
      assert.equal(drifts.length, TASKS - 1, drifts.map((l) => l.message).join('\n'));
      assert.deepEqual(drifts.map((l) => [l.fields?.task, l.fields?.detector]), [[TOPIC, detector], [`${TOPIC}#2`, detector]]);
      const exposition = await metrics.metrics();
      assert.match(exposition, new RegExp(`lifelong_concept_drift_total\\{task="${TOPIC}",detector="${detector}"\\} 1`));
      assert.match(exposition, /lifelong_prequential_error_estimate\{task="digits#3"\} 0\.\d+/);
      assert.match(exposition, /lifelong_label_drift_ratio\{task="digits"\} 0\.\d+/);
    });
  }

  it('one permutation for as long as the three: one task, no false alarm', async () => {
    const lines: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
    const source = new OneTopicSource({ dataset: 'permuted-mnist', tasks: 1, samplesPerTask: TASKS * SAMPLES_PER_TASK, seed: 1, scenario: 'domain-incremental' }, TOPIC);
    const report = await runPipeline({ pipeline: pipeline('adwin'), backend: getBackend(), source: { source, outputUnits: 10 }, log: recordingLogger(lines) });
    assert.deepEqual(report.tasks, [TOPIC]);
    assert.deepEqual(lines.filter((l) => l.message.startsWith('concept drift')), []);
  });

  describe('checkpoint and resume', () => {
    /** The one-topic stream read like a Kafka partition: positions, resume, and a stop after `stopAt` samples. */
    class PositionedTopic implements Source {
      readonly description = 'one topic with positions';
      readonly inputSize = 784;
      private next = 0;
      constructor(
        private readonly items: readonly Sample[],
        private readonly stopAt?: { readonly index: number; readonly controller: AbortController },
      ) {}
      open(_context: SourceContext): AsyncIterator<SourceItem> {
        return {
          next: async () => {
            if (this.stopAt && this.next === this.stopAt.index) this.stopAt.controller.abort();
            return this.next < this.items.length ? { done: false, value: this.items[this.next++] as Sample } : { done: true, value: undefined };
          },
        };
      }
      positions(): SourcePositions {
        return { [`${TOPIC}/0`]: this.next };
      }
      resume(state: SourceResume): void {
        assert.deepEqual(state.tasks, [TOPIC], 'the source is resumed with its topic, not the tasks cut from it');
        this.next = state.positions[`${TOPIC}/0`] ?? 0;
      }
      async acknowledge(): Promise<void> {}
      async checkpointed(): Promise<void> {}
      async close(): Promise<void> {}
    }

    it('a resumed run keeps the tasks it had, goes on in the last one and does not split again', async () => {
      const items: Sample[] = [];
      const all = new OneTopicSource({ dataset: 'permuted-mnist', tasks: 2, samplesPerTask: SAMPLES_PER_TASK, seed: 1, scenario: 'domain-incremental' }, TOPIC);
      const iterator = all.open({ reject: () => undefined, log: () => undefined });
      for (let item = await iterator.next(); !item.done; item = await iterator.next()) items.push(item.value as Sample);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifelong-task-free-'));
      try {
        const durable = { store: new CheckpointStore(dir, 3), everySamples: 0, everySeconds: 0, fresh: false };
        const run = async (source: Source, signal?: AbortSignal) => {
          const lines: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
          const started: string[] = [];
          const stepped = new Map<string, number>();
          const report = await runPipeline({
            pipeline: pipeline('adwin'),
            backend: getBackend(),
            source: { source, outputUnits: 10 },
            log: recordingLogger(lines),
            durable,
            ...(signal ? { signal } : {}),
            onEvent: (event) => {
              if (event.kind === 'task-started') started.push(event.task.name);
              if (event.kind === 'step-outcome') for (const s of event.samples) stepped.set(s.task.name, (stepped.get(s.task.name) ?? 0) + 1);
            },
          });
          return { report, started, stepped, drifts: lines.filter((l) => l.message.startsWith('concept drift')) };
        };
        // Stopped (as by SIGTERM) 300 samples into the second permutation, well after its split.
        const controller = new AbortController();
        const first = await run(new PositionedTopic(items, { index: SAMPLES_PER_TASK + 300, controller }), controller.signal);
        assert.deepEqual(first.started, [TOPIC, `${TOPIC}#2`]);
        assert.equal(first.drifts.length, 1);
        const second = await run(new PositionedTopic(items));
        assert.deepEqual(second.started, [], 'no task begins again');
        const firstSamples = [...first.stepped.values()].reduce((a, b) => a + b, 0);
        assert.deepEqual([...second.stepped], [[`${TOPIC}#2`, 2 * SAMPLES_PER_TASK - firstSamples]], 'the rest of the stream, all in the last task');
        assert.deepEqual(second.report.tasks, [TOPIC, `${TOPIC}#2`]);
        assert.deepEqual(second.drifts, [], 'no split after the resume');
        assert.ok((await durable.store.list()).length > 0);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
