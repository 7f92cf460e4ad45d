import * as assert from 'node:assert/strict';
import { Kafka, logLevel, type KafkaMessage, type Message } from 'kafkajs';
import type { KafkaSourceConfig, PipelineConfig } from '../../src/config/pipeline-config';
import type { Logger } from '../../src/core/log';
import { Rng } from '../../src/core/rng';
import type { Sample } from '../../src/core/types';
import { runPipeline } from '../../src/engine/run-pipeline';
import type { RunReport } from '../../src/engine/report';
import { controlMessage, encodeBinary, HEADER_REASON, INVALID_REASONS } from '../../src/kafka';
import { LifelongMetrics } from '../../src/metrics/prometheus';
import { parseExposition, type Series } from '../helpers/exposition';
import { kafkaBrokers, uniqueTopicPrefix } from '../helpers/kafka';
import { malformedMessages, MALFORMED_FAMILIES } from '../helpers/malformed-messages';
import { takeSamples } from '../helpers/mnist-task';

/**
 * A fuzz run against a real broker: 10,000 malformed messages of every kind (structure, types,
 * values, sizes, encodings, headers; test/helpers/malformed-messages.ts, seeded) interleaved with
 * a real split-MNIST task. The daemon stays up, every malformed message is dead-lettered with the
 * reason the format gives it, the warnings stay few, and the task is learned as well as by a run
 * on the clean messages alone.
 */

const MALFORMED = 10_000;
const CLEAN = 3000;
const MAX_BYTES = 8000;

function sum(series: readonly Series[], name: string, labels: Record<string, string> = {}): number {
  return series.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}

function kafkaSource(brokers: string[], prefix: string): KafkaSourceConfig {
  return {
    type: 'kafka',
    brokers,
    clientId: prefix,
    groupId: `${prefix}-group`,
    topicPattern: `${prefix}\\.split-mnist-0-1`,
    topicDiscoveryMs: 300,
    inputSize: 784,
    maxMessageBytes: MAX_BYTES,
    maxAbsFeature: 1e6,
    taskFrom: 'topic',
    deadLetterTopic: `${prefix}.dead-letter`,
    predictionsTopic: '{topic}.predictions',
    requestTopic: '',
    idleTaskMs: 0,
    fromBeginning: true,
    ssl: false,
    sasl: {},
    shutdownTimeoutMs: 15_000,
    maxWaitTimeMs: 100,
    maxQueued: 2000,
    commitIntervalMs: 1000,
  };
}

function pipelineFor(source: KafkaSourceConfig, name: string): PipelineConfig {
  return {
    name,
    description: 'kafka fuzz test',
    seed: 3,
    scenario: 'class-incremental',
    source,
    model: { hiddenLayers: [64], outputUnits: 2 },
    strategy: { name: 'ewc', params: { lambda: 100 } },
    training: { batchSize: 32, optimizer: 'adam', learningRate: 0.003, stepsPerBatch: 1, batchTimeoutMs: 100 },
    evaluation: { probeSize: 300, holdoutEvery: 10, endedTaskLabelled: 'evaluate' },
  };
}

/** Sends in requests of at most ~500 kB (the broker refuses record batches over 1 MB). */
async function produceAll(brokers: string[], topic: string, messages: readonly Message[]): Promise<void> {
  const kafka = new Kafka({ brokers, clientId: `${topic}-producer`, logLevel: logLevel.NOTHING });
  const producer = kafka.producer();
  await producer.connect();
  try {
    let batch: Message[] = [];
    let bytes = 0;
    const flush = async () => {
      if (batch.length > 0) await producer.send({ topic, messages: batch });
      batch = [];
      bytes = 0;
    };
    for (const m of messages) {
      const size = (m.value?.length ?? 0) + Object.values(m.headers ?? {}).reduce((a: number, v) => a + String(v).length, 0);
      if (bytes + size > 500_000) await flush();
      batch.push(m);
      bytes += size;
    }
    await flush();
  } finally {
    await producer.disconnect();
  }
}

/** Runs the daemon until `done` holds on its metrics, then stops it as SIGTERM does; its report and warnings. */
async function runUntil(pipeline: PipelineConfig, done: (s: Series[]) => boolean, timeoutMs = 150_000): Promise<{ report: RunReport; series: Series[]; warnings: string[] }> {
  const metrics = new LifelongMetrics({ defaultMetrics: false });
  const warnings: string[] = [];
  const log: Logger = { debug: () => undefined, info: () => undefined, warn: (m) => void warnings.push(m), error: (m) => void warnings.push(`error: ${m}`) };
  const abort = new AbortController();
  let settled = false;
  const run = runPipeline({ pipeline, backend: 'test', metrics, log, signal: abort.signal }).finally(() => (settled = true));
  run.catch(() => undefined);
  const deadline = Date.now() + timeoutMs;
  let series: Series[] = [];
  for (;;) {
    assert.equal(settled, false, 'the daemon stays up until it is stopped');
    series = parseExposition(await metrics.metrics());
    if (done(series)) break;
    if (Date.now() > deadline) throw new Error(`timed out; samples so far ${sum(series, 'lifelong_samples_total')}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  abort.abort();
  return { report: await run, series, warnings };
}

/** Every message of a topic, read from the beginning by a throwaway group. */
async function readAll(brokers: string[], topic: string, expected: number): Promise<KafkaMessage[]> {
  const kafka = new Kafka({ brokers, clientId: 'fuzz-reader', logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `fuzz-reader-${Math.random().toString(36).slice(2)}`, maxWaitTimeInMs: 200 });
  const got: KafkaMessage[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ eachBatch: async ({ batch }) => void got.push(...batch.messages) });
    const deadline = Date.now() + 60_000;
    while (got.length < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    // A moment more: anything beyond the expected count would show.
    await new Promise((r) => setTimeout(r, 500));
    return got;
  } finally {
    await consumer.disconnect();
  }
}

const countBy = <T>(items: readonly T[], key: (item: T) => string): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const item of items) out[key(item)] = (out[key(item)] ?? 0) + 1;
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
};

describe('fuzz: 10,000 malformed messages interleaved with a real task (real broker)', function () {
  this.timeout(300_000);
  let brokers: string[];
  let clean: Sample[];

  before(async () => {
    brokers = await kafkaBrokers();
    ({ samples: clean } = await takeSamples({ dataset: 'split-mnist', tasks: 1, samplesPerTask: CLEAN, seed: 4, scenario: 'class-incremental' }));
  });

  it('stays up, dead-letters every malformed message with its reason, and learns the task as a clean run does', async () => {
    const fuzzPrefix = uniqueTopicPrefix('fuzz');
    const cleanPrefix = uniqueTopicPrefix('fuzz-clean');
    const fuzzTopic = `${fuzzPrefix}.split-mnist-0-1`;
    const cleanTopic = `${cleanPrefix}.split-mnist-0-1`;
    const good: Message[] = clean.map((s) => ({ key: s.id ?? null, ...encodeBinary({ x: s.x, y: s.y, ...(s.id !== undefined ? { id: s.id } : {}) }) }));
    const bad = malformedMessages(MALFORMED, 13, { inputSize: 784, maxBytes: MAX_BYTES, maxAbsFeature: 1e6, topic: fuzzTopic });
    assert.ok(MALFORMED_FAMILIES.length >= 30, 'every family of damage is in the run');

    // Both orders kept, interleaved at seeded random positions.
    const rng = new Rng(21);
    const interleaved: Message[] = [];
    let g = 0;
    let b = 0;
    while (g < good.length || b < bad.length) {
      const takeBad = g >= good.length || (b < bad.length && rng.int(good.length + bad.length - g - b) < bad.length - b);
      if (takeBad) {
        const { reason: _reason, family: _family, ...message } = bad[b++]!;
        interleaved.push(message as Message);
      } else {
        interleaved.push(good[g++]!);
      }
    }
    await produceAll(brokers, fuzzTopic, [...interleaved, controlMessage()]);
    await produceAll(brokers, cleanTopic, [...good, controlMessage()]);

    const learned = (total: number) => (s: Series[]) => sum(s, 'lifelong_tasks_learned') >= 1 && sum(s, 'lifelong_samples_total') >= total;
    const fuzz = await runUntil(pipelineFor(kafkaSource(brokers, fuzzPrefix), 'fuzz'), learned(MALFORMED + CLEAN));
    const reference = await runUntil(pipelineFor(kafkaSource(brokers, cleanPrefix), 'fuzz-clean'), learned(CLEAN));

    // Every message accounted for: the malformed rejected, the clean ones learned (or held out as the probe).
    assert.equal(sum(fuzz.series, 'lifelong_samples_total'), MALFORMED + CLEAN);
    assert.equal(sum(fuzz.series, 'lifelong_samples_total', { kind: 'rejected' }), MALFORMED);
    assert.equal(sum(fuzz.series, 'lifelong_samples_total', { kind: 'trained' }) + sum(fuzz.series, 'lifelong_samples_total', { kind: 'held-out' }), CLEAN);
    const expected = countBy(bad, (m) => m.reason);
    const byReason = Object.fromEntries(Object.keys(expected).map((reason) => [reason, sum(fuzz.series, 'lifelong_rejections_total', { reason })]));
    assert.deepEqual(byReason, expected, 'lifelong_rejections_total by reason');

    // On the dead-letter topic: one letter per malformed message, with the reason the format gives it.
    const letters = await readAll(brokers, `${fuzzPrefix}.dead-letter`, MALFORMED);
    assert.equal(letters.length, MALFORMED, 'one dead letter per malformed message, no more');
    assert.deepEqual(countBy(letters, (l) => String(l.headers?.[HEADER_REASON])), expected);
    assert.ok(letters.every((l) => INVALID_REASONS.includes(String(l.headers?.[HEADER_REASON]) as never)));

    // The log is not flooded: at most 10 lines per reason per minute, plus summaries.
    const reasons = Object.keys(expected).length;
    const minutes = Math.ceil(fuzz.report.durationSeconds / 60) + 1;
    assert.ok(fuzz.warnings.length <= reasons * 11 * minutes, `${fuzz.warnings.length} warnings for ${reasons} reasons over ${minutes} minutes`);
    assert.ok(fuzz.warnings.some((w) => /more rejections \(.+\) not logged/.test(w)), 'the summary says how many were left out');

    const accuracy = (r: RunReport) => r.accuracyMatrix[0]?.[0] ?? Number.NaN;
    assert.deepEqual(fuzz.report.tasks, [fuzzTopic]);
    assert.ok(accuracy(reference.report) > 0.95, `the clean run learned the task: ${accuracy(reference.report)}`);
    assert.ok(Math.abs(accuracy(fuzz.report) - accuracy(reference.report)) <= 0.01, `accuracy ${accuracy(fuzz.report)} against ${accuracy(reference.report)} on clean data`);
  });
});
