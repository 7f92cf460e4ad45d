/**
 * Soak: the daemon against a real broker at a constant rate for a long time (default 30 minutes),
 * its memory sampled from its own /metrics: resident set size, V8 heap in use and the tensor count
 * (lifelong_tensors). A daemon that learns for weeks must hold all three flat; a leak of one tensor
 * per batch or one buffer per message shows here as a slope.
 *
 *   npm run soak -- [--minutes 30] [--rate 100] [--task-minutes 5] [--sample-seconds 15] [--out bench-results/soak]
 *
 * The daemon is `lifelong run` in a child process (what users run), on a pipeline written here:
 * permuted MNIST, one new task topic every --task-minutes (each task ends with an end-of-task
 * control message), Domain-IL, online EWC (its state does not grow with tasks), durable
 * checkpoints in a temporary directory. What does grow by design: one 300-sample probe per task
 * (about 1 MB each) and the accuracy matrix.
 *
 * Writes OUT/soak.json (every sample), OUT/soak.svg (the three series over time) and OUT/soak.md
 * (first, last, max, and the slope of a least-squares line over the second half, per 10 minutes).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Kafka, logLevel, Partitioners, type Producer } from 'kafkajs';
import { isTaskControl, type Sample } from '../src/core/types';
import { controlMessage, encodeBinary } from '../src/kafka';
import { createEmbeddedSource } from '../src/sources/embedded';
import { svgDocument, text, line, attrs, num, titleText } from '../src/suites/svg';
import { kafkaBrokers, stopKafka, uniqueTopicPrefix } from '../test/helpers/kafka';
import { freePort } from '../test/helpers/ports';
import { parseExposition } from '../test/helpers/exposition';

interface Options {
  readonly minutes: number;
  readonly rate: number;
  readonly taskMinutes: number;
  readonly sampleSeconds: number;
  readonly out: string;
}

interface Point {
  /** Seconds since the daemon started. */
  readonly t: number;
  readonly rssBytes: number;
  readonly heapBytes: number;
  readonly tensors: number;
  readonly trained: number;
  readonly produced: number;
}

const SERIES = [
  { key: 'rssBytes', title: 'resident set size (MiB)', scale: 1 / 2 ** 20, colour: '#1f77b4' },
  { key: 'heapBytes', title: 'V8 heap in use (MiB)', scale: 1 / 2 ** 20, colour: '#ff7f0e' },
  { key: 'tensors', title: 'tensors held (lifelong_tensors)', scale: 1, colour: '#2ca02c' },
] as const;

const log = (message: string): void => void process.stderr.write(`${message}\n`);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '30' },
      rate: { type: 'string', default: '100' },
      'task-minutes': { type: 'string', default: '5' },
      'sample-seconds': { type: 'string', default: '15' },
      out: { type: 'string', default: 'bench-results/soak' },
    },
    strict: true,
  });
  const positive = (name: string, text: string): number => {
    const n = Number(text);
    if (!(n > 0)) throw new Error(`--${name} must be a positive number, got "${text}"`);
    return n;
  };
  return {
    minutes: positive('minutes', values.minutes as string),
    rate: positive('rate', values.rate as string),
    taskMinutes: positive('task-minutes', values['task-minutes'] as string),
    sampleSeconds: positive('sample-seconds', values['sample-seconds'] as string),
    out: values.out as string,
  };
}

function pipelineFile(dir: string, brokers: readonly string[], prefix: string): string {
  const file = path.join(dir, 'soak.json');
  const escaped = prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  fs.writeFileSync(
    file,
    JSON.stringify({
      name: 'soak',
      description: 'bench/soak.ts: permuted MNIST at a constant rate, a new task topic every few minutes',
      seed: 1,
      scenario: 'domain-incremental',
      source: { type: 'kafka', brokers, clientId: prefix, groupId: `${prefix}-group`, topicPattern: `${escaped}\\.task-\\d+`, topicDiscoveryMs: 1000, inputSize: 784, idleTaskMs: 0, fromBeginning: true },
      model: { hiddenLayers: [200, 200], outputUnits: 10 },
      strategy: { name: 'online-ewc', params: { lambda: 1000 } },
      training: { batchSize: 32, optimizer: 'adam', learningRate: 0.001, stepsPerBatch: 1, batchTimeoutMs: 500 },
      evaluation: { probeSize: 300, holdoutEvery: 10 },
    }),
  );
  return file;
}

async function scrape(port: number): Promise<Omit<Point, 't' | 'produced'> | undefined> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/metrics`);
    const series = parseExposition(await response.text());
    const one = (name: string): number => series.filter((s) => s.name === name).reduce((sum, s) => sum + s.value, 0);
    const trained = series.filter((s) => s.name === 'lifelong_samples_total' && s.labels.kind === 'trained').reduce((sum, s) => sum + s.value, 0);
    return { rssBytes: one('lifelong_process_resident_memory_bytes'), heapBytes: one('lifelong_nodejs_heap_size_used_bytes'), tensors: one('lifelong_tensors'), trained };
  } catch {
    return undefined; // not listening yet
  }
}

/** Produces `rate` messages a second, task after task, until `until` (ms); returns how many. */
async function produce(producer: Producer, prefix: string, options: Options, until: number, counter: { produced: number }): Promise<void> {
  const tasks = Math.ceil(options.minutes / options.taskMinutes);
  const perTask = Math.ceil(options.rate * options.taskMinutes * 60);
  const source = createEmbeddedSource({ dataset: 'permuted-mnist', tasks, samplesPerTask: Math.min(perTask, 60000), seed: 7, scenario: 'domain-incremental' });
  const stream = source.open({ reject: () => undefined, log: () => undefined });
  const tick = 200;
  let task = -1;
  let topic = '';
  let taskEnds = 0;
  let next = await stream.next();
  while (Date.now() < until && !next.done) {
    const started = Date.now();
    if (started >= taskEnds) {
      if (task >= 0) await producer.send({ topic, messages: [controlMessage()] });
      task += 1;
      topic = `${prefix}.task-${String(task).padStart(4, '0')}`;
      taskEnds = started + options.taskMinutes * 60_000;
      log(`soak: task ${task} on ${topic}`);
    }
    const batch: Sample[] = [];
    while (batch.length < Math.max(1, Math.round((options.rate * tick) / 1000)) && !next.done) {
      if (!isTaskControl(next.value)) batch.push(next.value);
      next = await stream.next();
    }
    await producer.send({ topic, messages: batch.map((s, i) => encodeBinary({ x: s.x, y: s.y, id: `${task}-${counter.produced + i}` })) });
    counter.produced += batch.length;
    await sleep(Math.max(0, tick - (Date.now() - started)));
  }
  await stream.return?.(undefined);
}

/** Least-squares slope of y over t (per second). */
function slope(points: readonly { t: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  const mt = points.reduce((s, p) => s + p.t, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  const num_ = points.reduce((s, p) => s + (p.t - mt) * (p.y - my), 0);
  const den = points.reduce((s, p) => s + (p.t - mt) ** 2, 0);
  return den === 0 ? 0 : num_ / den;
}

function plot(points: readonly Point[], title: string): string {
  const panelHeight = 180;
  const left = 70;
  const right = 20;
  const width = 900;
  const body: string[] = [titleText(title)];
  const tMax = Math.max(1, ...points.map((p) => p.t));
  SERIES.forEach((series, k) => {
    const top = 40 + k * (panelHeight + 40);
    const ys = points.map((p) => p[series.key] * series.scale);
    const yMax = Math.max(1, ...ys) * 1.1;
    const x = (t: number) => left + ((width - left - right) * t) / tMax;
    const y = (v: number) => top + panelHeight - (panelHeight * v) / yMax;
    body.push(text(left, top - 8, series.title, { 'font-weight': 'bold' }));
    body.push(line(left, top + panelHeight, width - right, top + panelHeight, '#999'), line(left, top, left, top + panelHeight, '#999'));
    for (const f of [0, 0.5, 1]) body.push(text(left - 6, y(f * yMax) + 4, num(f * yMax, series.scale === 1 ? 0 : 1), { 'text-anchor': 'end' }));
    for (const m of [0, 0.5, 1]) body.push(text(x(m * tMax), top + panelHeight + 14, `${num((m * tMax) / 60, 0)} min`, { 'text-anchor': 'middle' }));
    const pts = points.map((p, i) => `${num(x(p.t))},${num(y(ys[i] as number))}`).join(' ');
    body.push(`<polyline ${attrs({ points: pts, fill: 'none', stroke: series.colour, 'stroke-width': 1.5 })}/>`);
  });
  return svgDocument(width, 40 + SERIES.length * (panelHeight + 40), body);
}

function summary(points: readonly Point[], options: Options, command: string): string {
  const half = points.filter((p) => p.t >= (points[points.length - 1]?.t ?? 0) / 2);
  const rows = SERIES.map((series) => {
    const ys = points.map((p) => p[series.key] * series.scale);
    const perTenMinutes = slope(half.map((p) => ({ t: p.t, y: p[series.key] * series.scale }))) * 600;
    return `| ${series.title} | ${num(ys[0] ?? NaN, 1)} | ${num(ys[ys.length - 1] ?? NaN, 1)} | ${num(Math.max(...ys), 1)} | ${num(perTenMinutes, 2)} |`;
  });
  const last = points[points.length - 1];
  return [
    `Soak: ${options.minutes} min at ${options.rate} messages/s, a new task every ${options.taskMinutes} min; ${os.cpus().length} cores, node ${process.version}.`,
    `Command: \`${command}\``,
    '',
    `Produced ${last?.produced ?? 0} messages; the daemon trained ${last?.trained ?? 0} samples; ${points.length} samples of its /metrics, every ${options.sampleSeconds} s.`,
    '',
    '| series | first | last | max | slope over the second half, per 10 min |',
    '|---|---:|---:|---:|---:|',
    ...rows,
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const options = parseOptions();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifelong-soak-'));
  const brokers = await kafkaBrokers();
  const prefix = uniqueTopicPrefix('soak');
  const port = await freePort();
  const file = pipelineFile(dir, brokers, prefix);
  const kafka = new Kafka({ clientId: `${prefix}-producer`, brokers: [...brokers], logLevel: logLevel.WARN });
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const main = path.resolve(__dirname, '../src/cli/main.js');
  // The daemon lists every sample it trains (topic/partition/offset id): none may appear twice.
  const trainedLog = path.join(dir, 'trained.log');
  const daemon: ChildProcess = spawn(process.execPath, ['-e', `require(${JSON.stringify(main)}).main(process.argv.slice(1)).then((c) => process.exit(c))`, 'run', '--pipeline', file, '--metrics-port', String(port)], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, LIFELONG_LOG_LEVEL: 'warn', LIFELONG_CHECKPOINT_DIRECTORY: path.join(dir, 'checkpoints'), LIFELONG_TRAINED_LOG: trainedLog },
  });
  const exited = new Promise<number | null>((resolve) => daemon.once('exit', (code) => resolve(code)));
  const started = Date.now();
  const until = started + options.minutes * 60_000;
  const counter = { produced: 0 };
  const points: Point[] = [];
  const accounting = { trained: 0, distinct: 0, inKafka: 0 };
  let daemonGone = false;
  void exited.then(() => (daemonGone = true));
  const producing = produce(producer, prefix, options, until, counter);
  try {
    while (Date.now() < until && !daemonGone) {
      await sleep(options.sampleSeconds * 1000);
      const at = await scrape(port);
      if (!at) continue;
      const point = { t: (Date.now() - started) / 1000, ...at, produced: counter.produced };
      points.push(point);
      log(`soak: ${num(point.t / 60, 1)} min, rss ${num(point.rssBytes / 2 ** 20, 1)} MiB, heap ${num(point.heapBytes / 2 ** 20, 1)} MiB, tensors ${point.tensors}, trained ${point.trained} of ${point.produced} produced`);
    }
    await producing;
  } finally {
    daemon.kill('SIGTERM');
    const code = await exited;
    const lines = fs.existsSync(trainedLog) ? fs.readFileSync(trainedLog, 'utf8').split('\n').filter(Boolean) : [];
    const positions = lines.map((l) => l.split(' ')[0]);
    accounting.trained = lines.length;
    accounting.distinct = new Set(positions).size;
    const admin = kafka.admin();
    await admin.connect();
    for (const topic of (await admin.listTopics()).filter((t) => t.startsWith(`${prefix}.task-`))) {
      for (const p of await admin.fetchTopicOffsets(topic)) accounting.inKafka += Number(p.high);
    }
    await admin.disconnect();
    await producer.disconnect();
    await stopKafka();
    fs.rmSync(dir, { recursive: true, force: true });
    if (daemonGone && Date.now() < until) throw new Error(`the daemon exited early (code ${code})`);
  }
  fs.mkdirSync(options.out, { recursive: true });
  const command = `npm run soak -- ${process.argv.slice(2).join(' ')}`.trim();
  fs.writeFileSync(path.join(options.out, 'soak.json'), JSON.stringify({ options, command, accounting, points }, null, 1));
  fs.writeFileSync(path.join(options.out, 'soak.svg'), plot(points, `lifelong soak: ${options.minutes} min at ${options.rate} messages/s`));
  const md = `${summary(points, options, command)}Messages in the task topics: ${accounting.inKafka} (samples and end-of-task markers); samples the daemon recorded as trained: ${accounting.trained}, at ${accounting.distinct} distinct offsets${accounting.trained === accounting.distinct ? ' (none trained twice)' : ' (SOME TRAINED TWICE)'}.\n`;
  fs.writeFileSync(path.join(options.out, 'soak.md'), md);
  process.stdout.write(md);
}

main().catch((error: unknown) => {
  log(`soak failed: ${(error as Error).stack ?? String(error)}`);
  process.exitCode = 1;
});
