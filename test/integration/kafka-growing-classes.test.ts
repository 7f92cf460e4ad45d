import * as assert from 'node:assert/strict';
import type { Message } from 'kafkajs';
import type { PipelineConfig } from '../../src/config/pipeline-config';
import type { Logger } from '../../src/core/log';
import { Rng } from '../../src/core/rng';
import { runPipeline } from '../../src/engine/run-pipeline';
import type { RunReport } from '../../src/engine/report';
import { controlMessage, encodeJson } from '../../src/kafka';
import { LifelongMetrics } from '../../src/metrics/prometheus';
import { NOTHING_LEARNED_YET } from '../../src/strategies/learning-helpers';
import { parseExposition, type Series } from '../helpers/exposition';
import { kafkaBrokers, kafkaSource, uniqueTopicPrefix } from '../helpers/kafka';
import { produceAll, readAll, sum } from '../helpers/kafka-daemon-run';

/**
 * Adding classes by opening topics (issue 14): a class-incremental daemon with no class count
 * anywhere (no model.outputUnits) learns a dataset it never saw, 64 features and ten string-named
 * classes, two per topic, each topic created only once the daemon has learned the one before.
 * Its shared head grows a unit per new class; predictions name the classes; with replay, the run
 * ends within 3 points of one whose head was sized for the ten classes up front.
 */

const FEATURES = 64;
const CLASSES = ['heron', 'egret', 'stork', 'crane', 'ibis', 'spoonbill', 'bittern', 'pelican', 'cormorant', 'gannet'];
const PER_CLASS = 300;
/** Requests (unlabelled samples) before the first labelled one: the model has learned nothing yet. */
const EARLY_REQUESTS = 3;

/** Gaussian clusters around a random centre per class in [0, 1]^64, noise 0.5 per feature. */
function dataset(seed: number): Map<string, Float32Array[]> {
  const rng = new Rng(seed);
  const gaussian = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  const byClass = new Map<string, Float32Array[]>();
  for (const name of CLASSES) {
    const centre = Array.from({ length: FEATURES }, () => rng.next());
    byClass.set(name, Array.from({ length: PER_CLASS }, () => Float32Array.from(centre, (c) => c + 0.5 * gaussian())));
  }
  return byClass;
}

/** Topic k's messages: its two classes interleaved, a few requests first on topic 1, some requests among them, then the end of the task. */
function topicMessages(k: number, data: Map<string, Float32Array[]>): Message[] {
  const [a, b] = [CLASSES[2 * k] as string, CLASSES[2 * k + 1] as string];
  const messages: Message[] = [];
  const xa = data.get(a) as Float32Array[];
  const xb = data.get(b) as Float32Array[];
  if (k === 0) for (let i = 0; i < EARLY_REQUESTS; i++) messages.push({ key: `early-${i}`, ...encodeJson({ x: xa[i] as Float32Array, id: `early-${i}` }) });
  for (let i = 0; i < PER_CLASS; i++) {
    for (const [label, xs] of [[a, xa], [b, xb]] as const) {
      const id = `${label}-${i}`;
      // Every 25th sample of a class is a request: the model answers it with a class name.
      messages.push({ key: id, ...encodeJson(i % 25 === 24 ? { x: xs[i] as Float32Array, id } : { x: xs[i] as Float32Array, y: label, id }) });
    }
  }
  messages.push(controlMessage());
  return messages;
}

function pipeline(prefix: string, brokers: string[], name: string, outputUnits?: number): PipelineConfig {
  const source = kafkaSource(brokers, prefix, { topicPattern: `${prefix}\\.birds-\\d`, inputSize: FEATURES, groupId: `${prefix}-${name}`, deadLetterTopic: `${prefix}.${name}.dead-letter`, predictionsTopic: `{topic}.${name}.predictions` });
  return {
    name,
    description: 'classes added by opening topics',
    seed: 3,
    scenario: 'class-incremental',
    source,
    // No outputUnits in the growing run: nothing declares how many classes will come.
    model: { hiddenLayers: [64], ...(outputUnits !== undefined ? { outputUnits } : {}) },
    strategy: { name: 'replay', params: { budget: 500 } },
    training: { batchSize: 16, optimizer: 'adam', learningRate: 0.003, stepsPerBatch: 1, batchTimeoutMs: 100 },
    evaluation: { probeSize: 60, holdoutEvery: 10, endedTaskLabelled: 'evaluate' },
  };
}

/** The daemon in this process; `between(k)` runs once k tasks are learned, until `tasks` are; then it stops as SIGTERM does. */
async function runDaemon(config: PipelineConfig, tasks: number, between: (learned: number) => Promise<void>): Promise<{ report: RunReport; series: Series[]; warnings: string[] }> {
  const metrics = new LifelongMetrics({ defaultMetrics: false });
  const warnings: string[] = [];
  const log: Logger = { debug: () => undefined, info: () => undefined, warn: (m) => void warnings.push(m), error: (m) => void warnings.push(`error: ${m}`) };
  const abort = new AbortController();
  let failure: unknown;
  const run = runPipeline({ pipeline: config, backend: 'test', metrics, log, signal: abort.signal });
  run.catch((error: unknown) => (failure = error));
  const deadline = Date.now() + 120_000;
  let series: Series[] = [];
  let acted = -1;
  try {
    for (;;) {
      if (failure) throw failure;
      series = parseExposition(await metrics.metrics());
      const learned = sum(series, 'lifelong_tasks_learned');
      if (learned >= tasks) break;
      if (learned > acted) {
        acted = learned;
        await between(learned);
      }
      if (Date.now() > deadline) throw new Error(`timed out with ${learned} tasks learned`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    abort.abort();
  }
  return { report: await run, series, warnings };
}

describe('classes added by opening topics, no class count declared (real broker)', function () {
  this.timeout(300_000);

  it('class-incremental replay: 5 topics of 2 new string-named classes, opened while the daemon runs; the head grows to 10 units, within 3 points of a head sized up front', async () => {
    const brokers = await kafkaBrokers();
    const prefix = uniqueTopicPrefix('growing-classes');
    const data = dataset(11);
    const topics = [0, 1, 2, 3, 4].map((k) => `${prefix}.birds-${k + 1}`);

    // Each topic is created (by its first message) only once the daemon has learned the one before.
    const grown = await runDaemon(pipeline(prefix, brokers, 'grown'), topics.length, async (learned) => {
      if (learned < topics.length) await produceAll(brokers, topics[learned] as string, topicMessages(learned, data));
    });
    // The same topics again, from the beginning, into a head of 10 units from the start.
    const sized = await runDaemon(pipeline(prefix, brokers, 'sized', CLASSES.length), topics.length, async () => undefined);

    assert.deepEqual(grown.report.tasks, topics, 'one task per topic, in the order they were opened');
    assert.equal(sum(grown.series, 'lifelong_classes', { task: '*' }), CLASSES.length, 'the shared head knows 10 classes');
    // 64 x 64 trunk + 10 units of 64 + 1: the head has exactly one unit per class.
    assert.equal(sum(grown.series, 'lifelong_parameters'), FEATURES * 64 + 64 + CLASSES.length * 65);
    assert.equal(sum(grown.series, 'lifelong_samples_total', { kind: 'rejected' }), 0, 'no sample refused for want of units');

    const matrix = grown.report.accuracyMatrix;
    topics.forEach((_, k) => assert.ok((matrix[k]?.[k] ?? 0) > 0.9, `task ${k + 1} learned: ${matrix[k]?.[k]}`));
    const grownAverage = grown.report.averageAccuracy ?? 0;
    const sizedAverage = sized.report.averageAccuracy ?? 0;
    assert.ok(Math.abs(grownAverage - sizedAverage) <= 0.03, `average accuracy ${grownAverage} grown, ${sizedAverage} sized up front`);
    assert.ok(grownAverage > 0.8, `replay keeps the old classes: average accuracy ${grownAverage}`);

    // Predictions name the classes; the first requests, before any class, say why they have none.
    const requests = topics.length * 2 * Math.floor(PER_CLASS / 25) + EARLY_REQUESTS;
    const out = await readAll(brokers, `${topics[0]}.grown.predictions`, 2 * Math.floor(PER_CLASS / 25) + EARLY_REQUESTS);
    const bodies = out.map((m) => JSON.parse(String(m.value)) as { id: string; label: string | null; reason?: string; probabilities: Record<string, number> });
    const early = bodies.filter((b) => b.id.startsWith('early-'));
    assert.equal(early.length, EARLY_REQUESTS);
    assert.ok(early.every((b) => b.label === null && b.reason === NOTHING_LEARNED_YET), JSON.stringify(early[0]));
    const answered = bodies.filter((b) => !b.id.startsWith('early-'));
    assert.ok(answered.every((b) => b.label !== null && CLASSES.includes(b.label) && b.reason === undefined), JSON.stringify(answered[0]));
    assert.equal(sum(grown.series, 'lifelong_samples_total', { kind: 'predicted' }), requests);
  });
});
