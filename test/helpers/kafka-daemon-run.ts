import * as assert from 'node:assert/strict';
import { Kafka, logLevel, type KafkaMessage, type Message } from 'kafkajs';
import type { KafkaSourceConfig, PipelineConfig } from '../../src/config/pipeline-config';
import type { Logger } from '../../src/core/log';
import { runPipeline } from '../../src/engine/run-pipeline';
import type { RunReport } from '../../src/engine/report';
import { LifelongMetrics } from '../../src/metrics/prometheus';
import { parseExposition, type Series } from './exposition';

/** The daemon in this process against a real broker, for the tests of what it refuses (kafka-fuzz, kafka-refusals). */

/** The sum of a metric's series matching `labels`. */
export function sum(series: readonly Series[], name: string, labels: Record<string, string> = {}): number {
  return series.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}

/** One task of split-MNIST's digits 0 and 1 (class-incremental, two output units), learned by EWC. */
export function pipelineFor(source: KafkaSourceConfig, name: string, batchSize = 32): PipelineConfig {
  return {
    name,
    description: 'kafka poison test',
    seed: 3,
    scenario: 'class-incremental',
    source,
    model: { hiddenLayers: [64], outputUnits: 2, maxClasses: 2 },
    strategy: { name: 'ewc', params: { lambda: 100 } },
    training: { batchSize, optimizer: 'adam', learningRate: 0.003, stepsPerBatch: 1, batchTimeoutMs: 100 },
    evaluation: { probeSize: 300, holdoutEvery: 10, endedTaskLabelled: 'evaluate' },
  };
}

/** Sends in requests of at most ~500 kB (the broker refuses record batches over 1 MB). */
export async function produceAll(brokers: string[], topic: string, messages: readonly Message[]): Promise<void> {
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
export async function runUntil(pipeline: PipelineConfig, done: (s: Series[]) => boolean, timeoutMs = 150_000): Promise<{ report: RunReport; series: Series[]; warnings: string[] }> {
  const metrics = new LifelongMetrics({ defaultMetrics: false });
  const warnings: string[] = [];
  const log: Logger = { debug: () => undefined, info: () => undefined, warn: (m) => void warnings.push(m), error: (m) => void warnings.push(`error: ${m}`) };
  const abort = new AbortController();
  let settled = false;
  let failure: unknown;
  const run = runPipeline({ pipeline, backend: 'test', metrics, log, signal: abort.signal }).finally(() => (settled = true));
  run.catch((error: unknown) => (failure = error));
  const deadline = Date.now() + timeoutMs;
  let series: Series[] = [];
  for (;;) {
    assert.equal(settled, false, `the daemon stays up until it is stopped${failure ? `; it failed: ${(failure as Error).stack}` : ''}`);
    series = parseExposition(await metrics.metrics());
    if (done(series)) break;
    if (Date.now() > deadline) throw new Error(`timed out; samples so far ${sum(series, 'lifelong_samples_total')}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  abort.abort();
  return { report: await run, series, warnings };
}

/** Every message of a topic, read from the beginning by a throwaway group. */
export async function readAll(brokers: string[], topic: string, expected: number): Promise<KafkaMessage[]> {
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

