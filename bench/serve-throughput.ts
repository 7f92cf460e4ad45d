/**
 * Prediction replicas (README "Scaling", issue 17 "Measure"), against a real broker:
 *
 * 1. Snapshots by model size: the split-MNIST MLP (784-400-400, five two-unit heads) with finetune
 *    (weights and Adam moments) and with EWC (plus an anchor and a Fisher diagonal per task), and a
 *    Progressive net of five columns (784-400-400 each), each trained one batch per task on five
 *    tasks. Publish = chunks and manifest produced to the compacted snapshot topic (acks=all);
 *    swap = what a replica does before a snapshot answers: checksum, decode, build, import
 *    (lifelong_model_swap_seconds). Medians of `--repeats`.
 * 2. Prediction throughput with 1, 2 and 3 `lifelong serve` replicas (each its own process),
 *    serving the MLP snapshot: `--requests` task-agnostic f32le requests are produced to a
 *    six-partition request topic as fast as the producer goes, and timed from the first produce
 *    until the replicas' lifelong_requests_answered_total adds up to all of them.
 *
 *   npm run build && node dist/bench/serve-throughput.js [--brokers HOST:PORT] [--replicas 1,2,3]
 *     [--requests 6000] [--repeats 3] [--parts snapshots,throughput] [--backend wasm]
 *
 * Without --brokers (or KAFKA_BROKERS) it starts a broker on free ports and stops it at the end.
 * Markdown on stdout, progress on stderr. On a 2-core machine the replicas, the broker and the
 * producer share the two cores: more replicas cannot add cores, so throughput stops growing at 2.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { selectBackend, type BackendName } from '../src/backend/backend';
import type { PipelineConfig } from '../src/config/pipeline-config';
import { silentLogger } from '../src/core/log';
import { Rng } from '../src/core/rng';
import { encodeCheckpoint } from '../src/engine/checkpoint';
import { strategyFromSnapshot } from '../src/engine/serve-pipeline';
import { encodeBinary } from '../src/kafka';
import { KafkaConnection } from '../src/kafka/connection';
import { KafkaSnapshotPublisher, type PublishedSnapshot } from '../src/kafka/snapshots/snapshot-publisher';
import { builtinStrategies } from '../src/strategies/registry';
import type { Strategy, StrategyOptions } from '../src/strategies/strategy';
import { parseExposition } from '../test/helpers/exposition';
import { kafkaBrokers, kafkaSource, stopKafka, uniqueTopicPrefix } from '../test/helpers/kafka';
import { sum } from '../test/helpers/kafka-daemon-run';
import { createTopic, startDaemon, until, type Daemon } from '../test/helpers/daemon-process';

const INPUT = 784;
const TASKS = 5;
const log = (line: string) => process.stderr.write(`${line}\n`);
const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Model {
  readonly label: string;
  readonly strategyName: string;
  readonly options: StrategyOptions;
  readonly strategy: Strategy;
}

/** A strategy trained one batch of random inputs per task, on five tasks: the state a trainer has after them. */
async function trainedModel(label: string, strategyName: string, rng: Rng): Promise<Model> {
  const options: StrategyOptions = { scenario: 'task-incremental', inputSize: INPUT, hiddenLayers: [400, 400], outputUnits: 2, optimizer: 'adam', learningRate: 0.001, stepsPerBatch: 1, seed: 1, params: {} };
  const strategy = builtinStrategies().get(strategyName)(options);
  for (let t = 0; t < TASKS; t++) {
    const task = { name: `task-${t}`, index: t };
    await strategy.beginTask(task);
    const xs = Array.from({ length: 32 }, () => Float32Array.from({ length: INPUT }, () => rng.next()));
    await strategy.trainBatch(task, { xs, ys: xs.map((_, i) => String(2 * t + (i % 2))) });
    await strategy.endTask(task);
  }
  return { label, strategyName, options, strategy };
}

async function snapshotOf(model: Model): Promise<Buffer> {
  return Buffer.concat(encodeCheckpoint({ pipeline: 'bench', strategyName: model.strategyName, options: model.options, state: await model.strategy.exportState() }));
}

/** Publishes `snapshot` as `version` and resolves with what the publisher reports. */
function publishOnce(publisher: KafkaSnapshotPublisher, version: number, snapshot: Buffer, reports: PublishedSnapshot[]): Promise<PublishedSnapshot> {
  const before = reports.length;
  publisher.offer({ version, tasks: Array.from({ length: TASKS }, (_, t) => `task-${t}`), snapshot });
  return publisher.flush().then(() => {
    const report = reports[before];
    if (report === undefined) throw new Error(`snapshot version ${version} was not published`);
    return report;
  });
}

function pipelineFor(brokers: string[], prefix: string, dir: string): PipelineConfig {
  return {
    name: 'serve-bench',
    description: 'serve throughput bench',
    seed: 1,
    scenario: 'task-incremental',
    source: { ...kafkaSource(brokers, prefix, { requestTopic: `${prefix}.requests` }), maxWaitTimeMs: 100 },
    model: { hiddenLayers: [400, 400], outputUnits: 2 },
    strategy: { name: 'ewc', params: {} },
    training: { batchSize: 32, optimizer: 'adam', learningRate: 0.001, stepsPerBatch: 1, batchTimeoutMs: 200 },
    evaluation: { probeSize: 300, holdoutEvery: 10, endedTaskLabelled: 'evaluate' },
    checkpoint: { directory: path.join(dir, 'checkpoints'), everySamples: 0, everySeconds: 0, keep: 1 },
    serving: 'replicas',
    snapshots: { topic: `${prefix}.snapshots`, everySamples: 0, chunkBytes: 512 * 1024 },
    replicas: { groupId: '' },
  };
}

async function scrape(replica: Daemon): Promise<{ answered: number; version: number; serving: boolean }> {
  const [metrics, health] = await Promise.all([fetch(`http://127.0.0.1:${replica.port}/metrics`).then((r) => r.text()), fetch(`http://127.0.0.1:${replica.port}/healthz`).then((r) => r.json() as Promise<{ serving?: boolean }>)]);
  const series = parseExposition(metrics);
  return { answered: sum(series, 'lifelong_requests_answered_total'), version: sum(series, 'lifelong_model_version'), serving: health.serving === true };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      brokers: { type: 'string' },
      replicas: { type: 'string', default: '1,2,3' },
      requests: { type: 'string', default: '6000' },
      repeats: { type: 'string', default: '3' },
      parts: { type: 'string', default: 'snapshots,throughput' },
      backend: { type: 'string', default: 'wasm' },
    },
  });
  const parts = new Set(values.parts.split(','));
  const backend = values.backend as BackendName;
  await selectBackend(backend, () => undefined);
  const brokers = values.brokers ? values.brokers.split(',') : await kafkaBrokers();
  const repeats = Number(values.repeats);
  const requests = Number(values.requests);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifelong-serve-bench-'));
  const prefix = uniqueTopicPrefix('servebench');
  const pipeline = pipelineFor(brokers, prefix, dir);
  const pipelineFile = path.join(dir, 'pipeline.json');
  fs.writeFileSync(pipelineFile, JSON.stringify(pipeline));
  const loadAtStart = os.loadavg().map((l) => l.toFixed(2)).join(' ');
  const rng = new Rng(7);
  const reports: PublishedSnapshot[] = [];
  const connection = new KafkaConnection({ brokers, clientId: `${prefix}-bench`, log: { ...silentLogger, warn: log, error: log } });
  // The sizes go to a topic of their own: the replicas then read the MLP's snapshot alone at start.
  const sizesPublisher = new KafkaSnapshotPublisher({ topic: `${prefix}.snapshot-sizes`, chunkBytes: 512 * 1024, pipeline: pipeline.name, onPublished: (r) => reports.push(r), onFailed: (v, e) => log(`publish ${v} failed: ${e.message}`) }, connection, false);
  const publisher = new KafkaSnapshotPublisher({ topic: `${prefix}.snapshots`, chunkBytes: 512 * 1024, pipeline: pipeline.name, onPublished: (r) => reports.push(r), onFailed: (v, e) => log(`publish ${v} failed: ${e.message}`) }, connection, true);
  const out: string[] = [];
  let version = 0;
  try {
    log('training the models...');
    const mlp = await trainedModel('split-MNIST MLP 784-400-400, 5 heads (ewc)', 'ewc', rng);
    const mlpSnapshot = await snapshotOf(mlp);
    if (parts.has('snapshots')) {
      const finetune = await trainedModel('split-MNIST MLP 784-400-400, 5 heads (finetune)', 'finetune', rng);
      const progressive = await trainedModel('Progressive net, 5 columns of 784-400-400', 'progressive', rng);
      out.push('| model | parameters | snapshot MB | chunks | encode ms | publish ms | swap ms |', '|---|---:|---:|---:|---:|---:|---:|');
      for (const model of [finetune, mlp, progressive]) {
        const encodeMs: number[] = [];
        const publishMs: number[] = [];
        const swapMs: number[] = [];
        let snapshot: Buffer = Buffer.alloc(0);
        let chunks = 0;
        for (let k = 0; k < repeats; k++) {
          const t0 = performance.now();
          snapshot = await snapshotOf(model);
          encodeMs.push(performance.now() - t0);
          const published = await publishOnce(sizesPublisher, ++version, snapshot, reports);
          publishMs.push(published.seconds * 1000);
          chunks = published.chunks;
          const t1 = performance.now();
          const loaded = await strategyFromSnapshot(snapshot, `snapshot ${version}`, pipeline);
          swapMs.push(performance.now() - t1);
          loaded.dispose();
        }
        log(`${model.label}: publish ${publishMs.map((m) => m.toFixed(0)).join(', ')} ms; swap ${swapMs.map((m) => m.toFixed(0)).join(', ')} ms`);
        out.push(`| ${model.label} | ${model.strategy.parameterCount()} | ${(snapshot.length / 1e6).toFixed(1)} | ${chunks} | ${median(encodeMs).toFixed(0)} | ${median(publishMs).toFixed(0)} | ${median(swapMs).toFixed(0)} |`);
      }
      finetune.strategy.dispose();
      progressive.strategy.dispose();
      out.push('', `Medians of ${repeats}; encode = exportState + encode (on the trainer, before the background publish); publish = chunks + manifest, acks=all, 512 KiB chunks; swap = checksum, decode, build, import on a replica.`, '');
    }
    if (parts.has('throughput')) {
      // The replicas serve the MLP: publish it as the newest snapshot.
      await publishOnce(publisher, ++version, mlpSnapshot, reports);
      const kafka = new Kafka({ brokers, clientId: `${prefix}-requests`, logLevel: logLevel.NOTHING });
      const producer = kafka.producer();
      await producer.connect();
      const xs = Array.from({ length: 200 }, () => Float32Array.from({ length: INPUT }, () => rng.next()));
      out.push('| replicas | requests | seconds | requests/s | answered per replica |', '|---:|---:|---:|---:|---|');
      for (const count of values.replicas.split(',').map(Number)) {
        const requestTopic = `${prefix}.requests-${count}`;
        await createTopic(brokers, requestTopic, 6);
        const file = path.join(dir, `pipeline-${count}.json`);
        fs.writeFileSync(file, JSON.stringify({ ...pipeline, source: { ...pipeline.source, requestTopic, groupId: `${prefix}-group-${count}` } }));
        const replicas: Daemon[] = [];
        for (let i = 0; i < count; i++) replicas.push(await startDaemon(['serve', '--pipeline', file], { LIFELONG_BACKEND: backend, LIFELONG_LOG_LEVEL: 'warn' }));
        try {
          await until(`${count} replicas serving version ${version}`, async () => ((await Promise.all(replicas.map(scrape))).every((s) => s.serving && s.version === version) ? true : undefined), 600_000).catch((error: Error) => {
            throw new Error(`${error.message}\n${replicas.map((r) => r.stderr()).join('\n')}`);
          });
          // Let the group settle: every replica owns its partitions before the clock starts.
          await sleep(3000);
          const t0 = performance.now();
          for (let sent = 0; sent < requests; sent += 500) {
            await producer.send({
              topic: requestTopic,
              messages: Array.from({ length: Math.min(500, requests - sent) }, (_, i) => {
                const { value, headers } = encodeBinary({ x: xs[(sent + i) % xs.length] as Float32Array, id: `r${sent + i}` });
                return { key: `r${sent + i}`, value, headers };
              }),
            });
          }
          const counts = await until('every request answered', async () => {
            const scraped = await Promise.all(replicas.map(scrape));
            return scraped.reduce((a, s) => a + s.answered, 0) >= requests ? scraped.map((s) => s.answered) : undefined;
          }, 600_000);
          const seconds = (performance.now() - t0) / 1000;
          log(`${count} replica(s): ${requests} requests in ${seconds.toFixed(1)} s`);
          out.push(`| ${count} | ${requests} | ${seconds.toFixed(1)} | ${(requests / seconds).toFixed(0)} | ${counts.join(' + ')} |`);
        } finally {
          for (const r of replicas) r.child.kill('SIGTERM');
          await Promise.all(replicas.map((r) => r.exited));
        }
      }
      await producer.disconnect();
      out.push('', `Task-agnostic f32le requests on a 6-partition topic, produced in sends of 500 as fast as one producer goes; timed from the first send until the replicas' lifelong_requests_answered_total adds up to all of them (polled every 50 ms).`, '');
    }
    mlp.strategy.dispose();
  } finally {
    await sizesPublisher.close();
    await publisher.close();
    if (!values.brokers) await stopKafka();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(`backend ${backend}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), node ${process.version}; load average at start ${loadAtStart}, at end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}\n\n${out.join('\n')}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
});
