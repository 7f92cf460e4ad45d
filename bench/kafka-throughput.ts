/**
 * Kafka end to end, against a real broker:
 *
 * 1. Throughput: the same split-MNIST pipeline (5 tasks, MLP 784-400-400, task-incremental) run
 *    in-process from the embedded source, then as the daemon reading topics pre-filled by
 *    `lifelong produce` (JSON and binary). Timed from runPipeline() until every message is
 *    processed and every task learned (broker start and pre-fill excluded; the shutdown's commit
 *    and disconnect reported apart).
 * 2. Latency: the daemon in its own process (the real CLI), caught up on a learned task; unlabelled
 *    requests are produced at fixed rates to the task's topic and the predictions read back from
 *    `<topic>.predictions`: produce call to prediction message received, per batchTimeoutMs.
 *
 *   npm run build && node dist/bench/kafka-throughput.js [--brokers HOST:PORT --samples-per-task 2000
 *     --strategies finetune,ewc --formats json,binary --batch 32 --rates 50,200 --duration 20
 *     --batch-timeouts 50,200 --latency-batches 32,128 --parts throughput,latency --backend wasm]
 *
 * Without --brokers (or KAFKA_BROKERS) it starts a broker on free ports (scripts/kafka-broker.js)
 * and stops it at the end. Prints markdown tables and the machine facts on stdout; progress on stderr.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { selectBackend, type BackendName } from '../src/backend/backend';
import { produceDataset, type ProduceFormat } from '../src/cli/produce';
import { loadPipelineConfig, type PipelineConfig } from '../src/config/pipeline-config';
import type { Sample } from '../src/core/types';
import { runPipeline } from '../src/engine/run-pipeline';
import { LifelongMetrics } from '../src/metrics/prometheus';
import type { EngineEvent } from '../src/operators/events';
import type { RunRecorder } from '../src/sinks/run-recorder';
import { createEmbeddedSource } from '../src/sources/embedded';
import { decodeMessage, encodeBinary, encodeJson } from '../src/kafka';
import { kafkaBrokers, stopKafka, uniqueTopicPrefix } from '../test/helpers/kafka';
import { freePort } from '../test/helpers/ports';

const TASKS = 5;
const HIDDEN = [400, 400];
/** The daemon's CLI, next to this file in the build output (dist/ or .build-NAME/). */
const MAIN = path.resolve(__dirname, '../src/cli/main.js');

interface Options {
  readonly brokers: string[] | undefined;
  readonly samplesPerTask: number;
  readonly strategies: string[];
  readonly formats: ProduceFormat[];
  readonly batch: number;
  readonly rates: number[];
  readonly durationS: number;
  readonly batchTimeouts: number[];
  readonly latencyBatches: number[];
  readonly parts: Set<string>;
  readonly backend: BackendName;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      brokers: { type: 'string' },
      'samples-per-task': { type: 'string', default: '2000' },
      strategies: { type: 'string', default: 'finetune,ewc' },
      formats: { type: 'string', default: 'json,binary' },
      batch: { type: 'string', default: '32' },
      rates: { type: 'string', default: '50,200' },
      duration: { type: 'string', default: '20' },
      'batch-timeouts': { type: 'string', default: '50,200' },
      'latency-batches': { type: 'string', default: '32,128' },
      parts: { type: 'string', default: 'throughput,latency' },
      backend: { type: 'string', default: 'wasm' },
    },
  });
  const list = (text: string) => text.split(',').map((s) => s.trim()).filter(Boolean);
  const numbers = (flag: string, text: string, min: number) =>
    list(text).map((s) => {
      const n = Number(s);
      if (!Number.isFinite(n) || n < min) throw new Error(`--${flag} needs numbers >= ${min}, got "${s}"`);
      return n;
    });
  const formats = list(values.formats);
  for (const f of formats) if (f !== 'json' && f !== 'binary') throw new Error(`--formats: json or binary, got "${f}"`);
  const parts = new Set(list(values.parts));
  for (const p of parts) if (p !== 'throughput' && p !== 'latency') throw new Error(`--parts: throughput and/or latency, got "${p}"`);
  const brokers = values.brokers === undefined ? undefined : list(values.brokers);
  return {
    brokers: brokers && brokers.length > 0 ? brokers : undefined,
    samplesPerTask: numbers('samples-per-task', values['samples-per-task'], 1)[0] as number,
    strategies: list(values.strategies),
    formats: formats as ProduceFormat[],
    batch: numbers('batch', values.batch, 1)[0] as number,
    rates: numbers('rates', values.rates, 1),
    durationS: numbers('duration', values.duration, 1)[0] as number,
    batchTimeouts: numbers('batch-timeouts', values['batch-timeouts'], 1),
    latencyBatches: numbers('latency-batches', values['latency-batches'], 1),
    parts,
    backend: values.backend as BackendName,
  };
}

const log = (message: string): void => void process.stderr.write(`${message}\n`);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
/** Wall-clock ms with sub-ms resolution, comparable with the daemon's Date-based predictedAt. */
const wallMs = (): number => performance.timeOrigin + performance.now();
const median = (xs: readonly number[]): number => percentile(xs, 50);

/** Nearest-rank percentile; NaN for no values. */
function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

const strategyParams = (strategy: string): Record<string, unknown> => (strategy === 'ewc' ? { lambda: 10000 } : {});

/**
 * The one pipeline both paths run; only the source differs. Written to a file and loaded like a
 * user's, so every default (and every validation) is the daemon's own.
 */
function pipelineConfig(dir: string, name: string, source: Record<string, unknown>, strategy: string, batch: number, batchTimeoutMs: number): { file: string; pipeline: PipelineConfig } {
  const file = path.join(dir, `${name}.json`);
  const body = {
    name,
    description: 'bench/kafka-throughput.ts',
    seed: 1,
    scenario: 'task-incremental',
    source,
    model: { hiddenLayers: HIDDEN, outputUnits: 2 },
    strategy: { name: strategy, params: strategyParams(strategy) },
    training: { batchSize: batch, optimizer: 'adam', learningRate: 0.001, stepsPerBatch: 1, batchTimeoutMs },
    evaluation: { probeSize: 300, holdoutEvery: 10 },
  };
  fs.writeFileSync(file, JSON.stringify(body, null, 2));
  return { file, pipeline: loadPipelineConfig(file) };
}

function kafkaSourceFields(brokers: readonly string[], prefix: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: 'kafka',
    brokers,
    clientId: prefix,
    groupId: `${prefix}-group-${Math.random().toString(36).slice(2, 8)}`,
    topicPattern: `${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.split-mnist-\\d-\\d`,
    topicDiscoveryMs: 1000,
    inputSize: 784,
    deadLetterTopic: `${prefix}.dead-letter`,
    fromBeginning: true,
    ...extra,
  };
}

// ---- throughput ----------------------------------------------------------------------------------

interface ThroughputRow {
  readonly path: string;
  readonly strategy: string;
  readonly processed: number;
  readonly trained: number;
  readonly seconds: number;
  readonly trainingSeconds: number;
  readonly startupSeconds: number;
  readonly taskEndSeconds: number;
  readonly switchSeconds: number;
  /** Per step: time between consecutive steps of a task minus the step's training time. */
  readonly otherMsPerStep: number;
  readonly closeSeconds: number;
  readonly averageAccuracy: number | null;
  readonly complete: boolean;
}

function processedBy(recorder: RunRecorder): number {
  let n = 0;
  for (const counts of recorder.counts.values()) n += counts.trained + counts['held-out'] + counts.evaluated + counts.predicted + counts.rejected;
  return n;
}

/** Runs the pipeline in this process and times it from the events the recorder sees. */
async function timedRun(label: string, pipeline: PipelineConfig, backend: string, strategy: string, expected: number, abortWhenDone: boolean, limitS: number): Promise<ThroughputRow> {
  const abort = new AbortController();
  const steps: { t: number; task: string; train: number }[] = [];
  const taskOutcomes: { t: number; task: string }[] = [];
  let doneAt: number | undefined;
  const limit = setTimeout(() => abort.abort(), limitS * 1000);
  const started = performance.now();
  const onEvent = (event: EngineEvent, recorder: RunRecorder): void => {
    const t = performance.now();
    if (event.kind === 'step-outcome') steps.push({ t, task: event.task.name, train: event.trainSeconds ?? 0 });
    if (event.kind === 'task-outcome') taskOutcomes.push({ t, task: event.task.name });
    if (doneAt === undefined && recorder.tasksLearned >= TASKS && processedBy(recorder) >= expected) {
      doneAt = t;
      // Outside the event: aborting stops the source, which the engine is in the middle of reading.
      if (abortWhenDone) setImmediate(() => abort.abort());
    }
  };
  const report = await runPipeline({ pipeline, backend, metrics: new LifelongMetrics({ defaultMetrics: false }), signal: abort.signal, onEvent });
  clearTimeout(limit);
  const ended = performance.now();
  const end = doneAt ?? ended;
  const perStep: number[] = [];
  for (let i = 1; i < steps.length; i++) {
    const [a, b] = [steps[i - 1]!, steps[i]!];
    if (a.task !== b.task) continue;
    const ms = b.t - a.t - 1000 * b.train;
    perStep.push(ms);
  }
  // Task end: last step of a task -> its outcome (probe evaluation); switch: outcome -> next task's first step.
  let taskEnd = 0;
  let switches = 0;
  for (const outcome of taskOutcomes) {
    const last = steps.filter((s) => s.task === outcome.task && s.t <= outcome.t).at(-1);
    if (last) taskEnd += outcome.t - last.t;
    const next = steps.find((s) => s.t > outcome.t && s.task !== outcome.task);
    if (next) switches += next.t - outcome.t;
  }
  return {
    path: label,
    strategy,
    processed: Object.values(report.samples).reduce((a, c) => a + c.trained + c['held-out'] + c.evaluated + c.predicted + c.rejected, 0),
    trained: report.samplesTrained,
    seconds: (end - started) / 1000,
    trainingSeconds: report.trainingSeconds,
    startupSeconds: steps.length > 0 ? (steps[0]!.t - started) / 1000 : Number.NaN,
    taskEndSeconds: taskEnd / 1000,
    switchSeconds: switches / 1000,
    otherMsPerStep: median(perStep),
    closeSeconds: (ended - end) / 1000,
    averageAccuracy: report.averageAccuracy,
    complete: doneAt !== undefined,
  };
}

interface Prefill {
  readonly format: ProduceFormat;
  readonly prefix: string;
  readonly topics: readonly string[];
  readonly messages: number;
  readonly seconds: number;
}

/**
 * What kafkajs alone sustains on this machine: every pre-filled message fetched by a plain
 * consumer doing nothing with it, timed from its first batch (group join excluded).
 */
async function consumeCeiling(brokers: readonly string[], prefill: Prefill): Promise<number> {
  const kafka = new Kafka({ brokers: [...brokers], clientId: `${prefill.prefix}-ceiling`, logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `${prefill.prefix}-ceiling-${Math.random().toString(36).slice(2, 8)}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [...prefill.topics], fromBeginning: true });
    let first: number | undefined;
    let seen = 0;
    const all = new Promise<number>((resolve) => {
      void consumer.run({
        eachBatch: async ({ batch }) => {
          first ??= performance.now();
          seen += batch.messages.length;
          if (seen >= prefill.messages) resolve(performance.now());
        },
      });
    });
    const last = await Promise.race([all, sleep(120_000).then(() => Number.NaN)]);
    return first === undefined ? Number.NaN : seen / ((last - first) / 1000);
  } finally {
    await consumer.disconnect();
  }
}

/** Decoding cost and size of one message of each format, over the first task's samples. */
async function decodeCost(samplesPerTask: number): Promise<{ format: ProduceFormat; bytes: number; usPerMessage: number }[]> {
  const source = createEmbeddedSource({ dataset: 'split-mnist', tasks: 1, samplesPerTask: Math.min(samplesPerTask, 1000), seed: 1, scenario: 'task-incremental' });
  const samples: Sample[] = [];
  const stream = source.open({ reject: () => undefined, log: () => undefined });
  for (let next = await stream.next(); !next.done; next = await stream.next()) if ('x' in next.value) samples.push(next.value);
  await source.close();
  const out: { format: ProduceFormat; bytes: number; usPerMessage: number }[] = [];
  for (const format of ['json', 'binary'] as const) {
    const encoded = samples.map((s) => ({ key: Buffer.from(s.id ?? ''), ...(format === 'json' ? encodeJson(s) : encodeBinary(s)) }));
    const messages = encoded.map((e) => ({ key: e.key, value: e.value, headers: Object.fromEntries(Object.entries(e.headers).map(([k, v]) => [k, Buffer.from(v)])) }));
    const options = { topic: 't', inputSize: 784, maxBytes: 1024 * 1024 };
    for (const m of messages) decodeMessage(m, options); // warm-up
    const rounds = 5;
    const t0 = performance.now();
    for (let r = 0; r < rounds; r++) for (const m of messages) decodeMessage(m, options);
    const us = ((performance.now() - t0) * 1000) / (rounds * messages.length);
    out.push({ format, bytes: messages.reduce((a, m) => a + m.value.length, 0) / messages.length, usPerMessage: us });
  }
  return out;
}

async function throughput(options: Options, brokers: string[], backend: string, dir: string): Promise<string[]> {
  const expected = TASKS * options.samplesPerTask;
  const quiet = { write: () => true };
  // First: it loads MNIST, which would otherwise be charged to the first pre-fill.
  const decode = await decodeCost(options.samplesPerTask);
  const prefills: Prefill[] = [];
  for (const format of options.formats) {
    const prefix = uniqueTopicPrefix(`kbench-${format}`);
    log(`pre-filling ${prefix}.* (${format}, ${expected} samples)`);
    const summary = await produceDataset(
      { dataset: 'split-mnist', tasks: TASKS, samplesPerTask: options.samplesPerTask, brokers, topicPrefix: `${prefix}.`, rate: 0, unlabelledFraction: 0, format, scenario: 'task-incremental', seed: 1, endMarker: true, clientId: `${prefix}-producer` },
      quiet,
    );
    prefills.push({ format, prefix, topics: summary.topics.map((t) => t.topic), messages: summary.messages, seconds: summary.seconds });
  }
  const rows: ThroughputRow[] = [];
  for (const strategy of options.strategies) {
    const embedded = pipelineConfig(dir, `kbench-embedded-${strategy}`, { type: 'split-mnist', tasks: TASKS, samplesPerTask: options.samplesPerTask }, strategy, options.batch, 1000);
    log(`in-process ${strategy}...`);
    const base = await timedRun('in-process (embedded)', embedded.pipeline, backend, strategy, expected, false, 600);
    rows.push(base);
    log(JSON.stringify(base));
    for (const prefill of prefills) {
      const kafka = pipelineConfig(dir, `kbench-kafka-${prefill.format}-${strategy}`, kafkaSourceFields(brokers, prefill.prefix), strategy, options.batch, 1000);
      log(`kafka ${prefill.format} ${strategy}...`);
      const row = await timedRun(`Kafka, ${prefill.format}`, kafka.pipeline, backend, strategy, expected, true, 600);
      rows.push(row);
      log(JSON.stringify(row));
    }
  }
  const ceilings = new Map<ProduceFormat, number>();
  for (const prefill of prefills) ceilings.set(prefill.format, await consumeCeiling(brokers, prefill));
  const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '—');
  const out: string[] = [];
  out.push(`Throughput: split-MNIST, ${TASKS} tasks x ${options.samplesPerTask} samples, MLP 784-${HIDDEN.join('-')}, task-incremental (2 units per head), Adam, batch ${options.batch}, 1 step per batch, backend ${backend}.`, '');
  out.push('| path | strategy | samples processed | trained | seconds | samples/s | vs in-process | trained/s | training s | non-training s | startup s | probe eval at task ends s | task switches s | other ms/step (median) | close s | avg accuracy |');
  out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const strategy of options.strategies) {
    const mine = rows.filter((r) => r.strategy === strategy);
    const base = mine[0] as ThroughputRow;
    for (const r of mine) {
      const rate = r.processed / r.seconds;
      out.push(
        `| ${r.path}${r.complete ? '' : ' (INCOMPLETE)'} | ${strategy} | ${r.processed} | ${r.trained} | ${r.seconds.toFixed(1)} | ${rate.toFixed(0)} | ${(rate / (base.processed / base.seconds)).toFixed(2)} | ${(r.trained / r.seconds).toFixed(0)} | ${r.trainingSeconds.toFixed(1)} | ${(r.seconds - r.trainingSeconds).toFixed(1)} | ${f1(r.startupSeconds)} | ${f1(r.taskEndSeconds)} | ${f1(r.switchSeconds)} | ${f1(r.otherMsPerStep)} | ${r.closeSeconds.toFixed(1)} | ${r.averageAccuracy === null ? '—' : (100 * r.averageAccuracy).toFixed(1)} |`,
      );
    }
  }
  out.push('', '| format | bytes per message (value) | decode + validate, µs per message | pre-fill: messages | pre-fill s | pre-fill msgs/s | kafkajs consumer alone, msgs/s |', '|---|---:|---:|---:|---:|---:|---:|');
  for (const p of prefills) {
    const d = decode.find((x) => x.format === p.format)!;
    out.push(`| ${p.format} | ${d.bytes.toFixed(0)} | ${d.usPerMessage.toFixed(1)} | ${p.messages} | ${p.seconds.toFixed(1)} | ${(p.messages / p.seconds).toFixed(0)} | ${(ceilings.get(p.format) ?? Number.NaN).toFixed(0)} |`);
  }
  return out;
}

// ---- latency -------------------------------------------------------------------------------------

interface LatencyRow {
  readonly batch: number;
  readonly batchTimeoutMs: number;
  readonly rate: number;
  readonly sent: number;
  readonly received: number;
  readonly achievedRate: number;
  readonly latencies: number[];
  /** Send -> predictedAt (consume, batch wait, predict) and predictedAt -> received (publish, fetch). */
  readonly daemonPart: number[];
  readonly deliveryPart: number[];
}

/** Sums the samples of lifelong_samples_total and reads lifelong_tasks_learned from /metrics. */
async function scrape(port: number): Promise<{ samples: number; tasksLearned: number }> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let samples = 0;
  let tasksLearned = 0;
  for (const line of text.split('\n')) {
    const m = /^(lifelong_samples_total|lifelong_tasks_learned)(?:\{[^}]*\})? (\S+)$/.exec(line);
    if (!m) continue;
    if (m[1] === 'lifelong_samples_total') samples += Number(m[2]);
    else tasksLearned += Number(m[2]);
  }
  return { samples, tasksLearned };
}

async function until(what: string, probe: () => Promise<boolean>, timeoutMs: number, child?: { stderr: string }): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await probe()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${child ? `; daemon stderr:\n${child.stderr.slice(-2000)}` : ''}`);
    await sleep(200);
  }
}

/** The daemon as users run it: the CLI in its own process, stopped by SIGTERM. */
async function startDaemon(pipelineFile: string, backend: string): Promise<{ port: number; child: ChildProcess; output: { stderr: string }; stop: () => Promise<number | null> }> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    ['-e', `require(${JSON.stringify(MAIN)}).main(process.argv.slice(1)).then((c) => { process.exitCode = c; setTimeout(() => process.exit(c), 2000).unref(); })`, 'run', '--pipeline', pipelineFile, '--metrics-port', String(port), '--backend', backend],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LIFELONG_LOG_LEVEL: 'warn' } },
  );
  const output = { stderr: '' };
  child.stderr?.on('data', (d: Buffer) => (output.stderr = (output.stderr + d.toString()).slice(-20_000)));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    port,
    child,
    output,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      const code = await Promise.race([exited, sleep(30_000).then(() => undefined)]);
      if (code === undefined) {
        child.kill('SIGKILL');
        return null;
      }
      return code;
    },
  };
}

async function latencyRun(options: Options, brokers: string[], backend: string, dir: string, batch: number, batchTimeoutMs: number, requests: readonly Sample[]): Promise<LatencyRow[]> {
  const prefix = uniqueTopicPrefix(`kbench-latency-${batch}-${batchTimeoutMs}`);
  const learn = 1000;
  const [produced] = (
    await produceDataset(
      { dataset: 'split-mnist', tasks: 1, samplesPerTask: learn, brokers, topicPrefix: `${prefix}.`, rate: 0, unlabelledFraction: 0, format: 'binary', scenario: 'task-incremental', seed: 1, endMarker: true, clientId: `${prefix}-producer` },
      { write: () => true },
    )
  ).topics;
  const topic = produced!.topic;
  const predictions = `${topic}.predictions`;
  const strategy = options.strategies[0] ?? 'finetune';
  const { file } = pipelineConfig(dir, `kbench-latency-${batch}-${batchTimeoutMs}`, kafkaSourceFields(brokers, prefix), strategy, batch, batchTimeoutMs);
  const kafka = new Kafka({ brokers, clientId: `${prefix}-client`, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: predictions, numPartitions: 1 }], waitForLeaders: true });
  await admin.disconnect();

  log(`latency, batch ${batch}, batchTimeoutMs ${batchTimeoutMs}: daemon learning ${topic}...`);
  const daemon = await startDaemon(file, backend);
  const producer = kafka.producer();
  const consumer: Consumer = kafka.consumer({ groupId: `${prefix}-reader`, maxWaitTimeInMs: 100 });
  const sentAt = new Map<string, number>();
  const got = new Map<string, { received: number; predictedAt: number }>();
  try {
    await until('the task learned and every sample processed', async () => {
      const s = await scrape(daemon.port);
      return s.tasksLearned >= 1 && s.samples >= learn;
    }, 300_000, daemon.output);
    await producer.connect();
    const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
    await consumer.connect();
    await consumer.subscribe({ topic: predictions, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        const received = wallMs();
        const body = JSON.parse(String(message.value)) as { id: string | null; predictedAt: string };
        if (body.id !== null) got.set(body.id, { received, predictedAt: Date.parse(body.predictedAt) });
      },
    });
    await joined;

    let asked = 0;
    const send = (ids: string[]): Promise<unknown> => {
      const messages = ids.map((id) => ({ key: id, ...encodeJson({ x: requests[asked++ % requests.length]!.x, id }) }));
      const at = wallMs();
      for (const id of ids) sentAt.set(id, at);
      return producer.send({ topic, messages });
    };
    // Warm-up: the first predictions create the daemon's producer path and this consumer's fetch.
    const warm = Array.from({ length: 20 }, (_, i) => `warm-${batch}-${batchTimeoutMs}-${i}`);
    await send(warm);
    await until('the warm-up predictions', async () => warm.every((id) => got.has(id)), 60_000, daemon.output);

    const rows: LatencyRow[] = [];
    for (const rate of options.rates) {
      const total = Math.round(rate * options.durationS);
      const ids = Array.from({ length: total }, (_, i) => `lat-${batch}-${batchTimeoutMs}-${rate}-${i}`);
      log(`  ${rate}/s for ${options.durationS} s (${total} requests)`);
      const sends: Promise<unknown>[] = [];
      const t0 = performance.now();
      let sent = 0;
      while (sent < total) {
        // Every request due by now goes in one produce call; the pace holds on average whatever the timer jitter.
        const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate) + 1);
        if (due > sent) {
          sends.push(send(ids.slice(sent, due)));
          sent = due;
        }
        await sleep(Math.max(1, (sent / rate) * 1000 - (performance.now() - t0)));
      }
      const sendSeconds = (performance.now() - t0) / 1000;
      await Promise.all(sends);
      await until(`predictions at ${rate}/s`, async () => ids.every((id) => got.has(id)), 30_000).catch((error: Error) => log(`  ${error.message}`));
      const latencies: number[] = [];
      const daemonPart: number[] = [];
      const deliveryPart: number[] = [];
      for (const id of ids) {
        const answer = got.get(id);
        if (answer === undefined) continue;
        const s = sentAt.get(id)!;
        latencies.push(answer.received - s);
        daemonPart.push(answer.predictedAt - s);
        deliveryPart.push(answer.received - answer.predictedAt);
      }
      rows.push({ batch, batchTimeoutMs, rate, sent: total, received: latencies.length, achievedRate: total / sendSeconds, latencies, daemonPart, deliveryPart });
      log(`  p50 ${median(latencies).toFixed(0)} ms, p99 ${percentile(latencies, 99).toFixed(0)} ms`);
      await sleep(1000);
    }
    return rows;
  } finally {
    await consumer.disconnect().catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
    const code = await daemon.stop();
    if (code !== 0) log(`daemon exited with ${String(code)}; stderr:\n${daemon.output.stderr.slice(-2000)}`);
  }
}

async function latency(options: Options, brokers: string[], backend: string, dir: string): Promise<string[]> {
  const source = createEmbeddedSource({ dataset: 'split-mnist', tasks: 1, samplesPerTask: 500, seed: 7, scenario: 'task-incremental' });
  const requests: Sample[] = [];
  const stream = source.open({ reject: () => undefined, log: () => undefined });
  for (let next = await stream.next(); !next.done; next = await stream.next()) if ('x' in next.value) requests.push(next.value);
  await source.close();
  const rows: LatencyRow[] = [];
  for (const batch of options.latencyBatches) {
    for (const timeout of options.batchTimeouts) rows.push(...(await latencyRun(options, brokers, backend, dir, batch, timeout, requests)));
  }
  const f0 = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : '—');
  const out: string[] = [];
  out.push(
    `Latency: produce call -> prediction message received, unlabelled JSON requests to the topic of a learned task (1000 samples learned first), the daemon in its own process (${options.strategies[0] ?? 'finetune'}, backend ${backend}), ${options.durationS} s per rate after 20 warm-up requests.`,
    '',
  );
  out.push('| batch | batchTimeoutMs | rate (req/s) | sent | answered | p50 ms | p95 ms | p99 ms | max ms | daemon part p50 ms (send → predictedAt) | delivery part p50 ms (predictedAt → received) |');
  out.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    out.push(
      `| ${r.batch} | ${r.batchTimeoutMs} | ${r.rate} (${r.achievedRate.toFixed(0)} achieved) | ${r.sent} | ${r.received} | ${f0(median(r.latencies))} | ${f0(percentile(r.latencies, 95))} | ${f0(percentile(r.latencies, 99))} | ${f0(Math.max(...r.latencies))} | ${f0(median(r.daemonPart))} | ${f0(median(r.deliveryPart))} |`,
    );
  }
  return out;
}

// ---- main ----------------------------------------------------------------------------------------

async function machineFacts(backend: string, brokers: string[], ownBroker: boolean): Promise<[string, string][]> {
  let cpuModel = os.cpus()[0]?.model ?? 'unknown';
  try {
    const line = fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'));
    if (line) cpuModel = line.split(':').slice(1).join(':').trim();
  } catch {
    // not Linux: keep os.cpus()'s model
  }
  return [
    ['CPU', cpuModel],
    ['logical cores (nproc)', String(os.availableParallelism())],
    ['memory', `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`],
    ['Node.js', process.version],
    ['@tensorflow/tfjs / backend', `${tf.version.tfjs} / ${backend}`],
    ['Kafka', `${brokers.join(',')}${ownBroker ? ' (started by the bench: Kafka 4.1.2 KRaft single node, same machine, heap 512 MiB)' : ''}`],
    // Other processes compete for the two cores; a load above 1 inflates every time below.
    ['load average (1 min) at start', os.loadavg()[0]?.toFixed(2) ?? '?'],
  ];
}

async function main(): Promise<void> {
  const options = parseOptions();
  const backend = (await selectBackend(options.backend, () => undefined)).name;
  const ownBroker = options.brokers === undefined && process.env['KAFKA_BROKERS'] === undefined;
  const brokers = options.brokers ?? (await kafkaBrokers());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kbench-'));
  const facts = await machineFacts(backend, brokers, ownBroker);
  const started = performance.now();
  const sections: string[][] = [];
  try {
    if (options.parts.has('throughput')) sections.push(await throughput(options, brokers, backend, dir));
    if (options.parts.has('latency')) sections.push(await latency(options, brokers, backend, dir));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await stopKafka();
  }
  facts.push(['load average (1 min) at end', os.loadavg()[0]?.toFixed(2) ?? '?']);
  facts.push(['bench wall time', `${((performance.now() - started) / 1000).toFixed(0)} s`]);
  const lines = ['| Machine | |', '|---|---|', ...facts.map(([k, v]) => `| ${k} | ${v} |`), ''];
  for (const section of sections) lines.push(...section, '');
  process.stdout.write(lines.join('\n'));
}

main().catch(async (error) => {
  process.stderr.write(`${(error as Error).stack}\n`);
  await stopKafka().catch(() => undefined);
  process.exitCode = 1;
});
