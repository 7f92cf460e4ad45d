/**
 * `lifelong produce`: streams a built-in MNIST task sequence into Kafka, one topic per task in
 * task order, in the message format of kafka/codec.ts — for demos, tests and benchmarks.
 *
 * Topics are PREFIX + the task's name, verbatim: `--topic-prefix demo.` gives `demo.split-mnist-0-1`,
 * `demo.split-mnist-2-3`, ... (rotated tasks are named like `rotated-mnist-36deg`). Each topic is
 * created with 1 partition if missing, and every message is sent to partition 0, so a task's
 * samples stay in order even on an existing topic with more partitions. A message's key is the
 * sample's id (`train-INDEX`, the MNIST training image; unique within a topic). Labels are those
 * of the embedded stream under --scenario (default class-incremental: split-MNIST digits are their
 * own labels; permuted/rotated task i labels digit d as 10*i + d). Exactly round(F * n) of a task's
 * n samples, at seeded random positions, are sent without a label (prediction requests); they keep
 * their id. After each task an end-of-task control message follows unless --no-end-marker.
 *
 * It connects like the daemon (kafka/connection.ts): `--pipeline FILE` takes `ssl` and `sasl` from
 * the Kafka source of that pipeline file (and its brokers when --brokers is absent). There are no
 * --ssl/--sasl-* flags on purpose: TLS needs CA and client certificates a flag cannot carry, a
 * password on the command line shows in `ps` and shell history, and the daemon's file is already
 * validated, so one place configures how to reach a secured cluster.
 */
import type { Message, Producer } from 'kafkajs';
import { loadPipelineConfig, type KafkaSourceConfig } from '../config/pipeline-config';
import { InvariantError, UsageError } from '../core/errors';
import { createLogger, type Logger } from '../core/log';
import { Rng } from '../core/rng';
import { SCENARIOS, type Sample, type Scenario, type TaskName } from '../core/types';
import { EMBEDDED_DATASETS, type EmbeddedDataset } from '../data/task-streams';
import { controlMessage, createTopics, encodeBinary, encodeJson, isKafkaTopicName, KafkaConnection, type EncodedMessage } from '../kafka';
import { createEmbeddedSource, type EmbeddedSource } from '../sources/embedded';
import { parseCommandArgs } from './parse-command-args';
import type { CommandUsage } from './usage';

export const PRODUCE_USAGE: CommandUsage = {
  synopsis: `  lifelong produce --dataset split-mnist|permuted-mnist|rotated-mnist --brokers HOST:PORT[,...]
               [--pipeline FILE] --topic-prefix PREFIX [--tasks N] [--samples-per-task N] [--rate R]
               [--unlabelled-fraction F] [--format json|binary] [--scenario SCENARIO] [--seed S]
               [--no-end-marker]`,
  description: `produce   streams a built-in dataset into Kafka, one topic per task (PREFIX + task name, e.g.
          demo.split-mnist-0-1), in task order, each task followed by an end-of-task control message.
          --samples-per-task N     first N training images of each task (default 0 = all)
          --rate R                 messages per second (default 0 = unlimited)
          --unlabelled-fraction F  share of each task sent without a label: prediction requests
          --format json|binary     JSON {x, y, id} (default) or float32 little-endian, label in headers
          --scenario S             label as in this scenario (default class-incremental: the digit)
          --no-end-marker          no control message after each task
          --pipeline FILE          connect as that pipeline's Kafka source does: its ssl and sasl,
                                   and its brokers when --brokers is absent
`,
};

export type ProduceFormat = 'json' | 'binary';
export const PRODUCE_FORMATS: readonly ProduceFormat[] = ['json', 'binary'];

export interface ProduceOptions {
  readonly dataset: EmbeddedDataset;
  /** The first N tasks of the dataset; absent: the dataset's default count. */
  readonly tasks?: number;
  /** 0 = every training image of a task. */
  readonly samplesPerTask: number;
  readonly brokers: readonly string[];
  readonly topicPrefix: string;
  /** Messages per second, control messages included; 0 = as fast as the broker takes them. */
  readonly rate: number;
  readonly unlabelledFraction: number;
  readonly format: ProduceFormat;
  readonly scenario: Scenario;
  readonly seed: number;
  readonly endMarker: boolean;
  readonly clientId: string;
  /** kafkajs `ssl` and `sasl`, from --pipeline's Kafka source (absent: plaintext, no SASL). */
  readonly ssl?: unknown;
  readonly sasl?: unknown;
}

export interface ProducedTopic {
  readonly task: TaskName;
  readonly topic: string;
  readonly samples: number;
  readonly unlabelled: number;
  readonly controls: number;
}

export interface ProduceSummary {
  readonly topics: readonly ProducedTopic[];
  /** Every message sent: samples and control messages. */
  readonly messages: number;
  readonly seconds: number;
}

interface Output {
  write(text: string): unknown;
}

// Kafka rejects a record batch over the broker's message.max.bytes (1 MiB by default), and kafkajs
// sends one batch per partition per request: stay well under it.
const MAX_BATCH_BYTES = 512 * 1024;
const MAX_BATCH_MESSAGES = 1000;
// Under --rate, send about this many batches per second so the flow is smooth, not bursty.
const RATE_BATCHES_PER_SECOND = 20;

function usageError(option: string, message: string): UsageError {
  return new UsageError(`produce: --${option} ${message}`, `--${option}`);
}

function integerOption(option: string, text: string | undefined, fallback: number | undefined, min: number): number | undefined {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === '' || !Number.isSafeInteger(value) || value < min) throw usageError(option, `must be an integer >= ${min}, got "${text}"`);
  return value;
}

function numberOption(option: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < min || value > max) {
    throw usageError(option, `must be a number from ${min} to ${max === Number.MAX_VALUE ? 'any' : max}, got "${text}"`);
  }
  return value;
}

function oneOf<T extends string>(option: string, text: string | undefined, allowed: readonly T[], fallback?: T): T {
  if (text === undefined) {
    if (fallback === undefined) throw usageError(option, `is required (${allowed.join('|')})`);
    return fallback;
  }
  if (!allowed.includes(text as T)) throw usageError(option, `must be one of ${allowed.join(', ')}, got "${text}"`);
  return text as T;
}

/** Parses `lifelong produce` arguments; throws UsageError naming the option. */
export function parseProduceArgs(args: readonly string[]): ProduceOptions {
  const values = parseCommandArgs(args, {
    dataset: { type: 'string' },
    tasks: { type: 'string' },
    'samples-per-task': { type: 'string' },
    brokers: { type: 'string' },
    'topic-prefix': { type: 'string' },
    rate: { type: 'string' },
    'unlabelled-fraction': { type: 'string' },
    format: { type: 'string' },
    scenario: { type: 'string' },
    seed: { type: 'string' },
    'no-end-marker': { type: 'boolean', default: false },
    pipeline: { type: 'string' },
  });
  const cluster = values.pipeline === undefined ? undefined : kafkaSourceOf(values.pipeline);
  const brokers = values.brokers === undefined && cluster !== undefined ? [...cluster.brokers] : (values.brokers ?? '').split(',').map((b) => b.trim()).filter(Boolean);
  if (brokers.length === 0) throw usageError('brokers', 'is required: HOST:PORT[,HOST:PORT...]');
  const badBroker = brokers.find((b) => !/^[^\s:,]+:\d{1,5}$/.test(b));
  if (badBroker !== undefined) throw usageError('brokers', `must be HOST:PORT entries, got "${badBroker}"`);
  const topicPrefix = values['topic-prefix'];
  if (topicPrefix === undefined || topicPrefix === '') throw usageError('topic-prefix', 'is required, for example "demo."');
  if (!/^[a-zA-Z0-9._-]+$/.test(topicPrefix)) throw usageError('topic-prefix', `may only hold a-z A-Z 0-9 . _ - (Kafka topic characters), got "${topicPrefix}"`);
  const tasks = integerOption('tasks', values.tasks, undefined, 1);
  return {
    dataset: oneOf('dataset', values.dataset, EMBEDDED_DATASETS),
    ...(tasks !== undefined ? { tasks } : {}),
    samplesPerTask: integerOption('samples-per-task', values['samples-per-task'], 0, 0) as number,
    brokers,
    topicPrefix,
    rate: numberOption('rate', values.rate, 0, 0, Number.MAX_VALUE),
    unlabelledFraction: numberOption('unlabelled-fraction', values['unlabelled-fraction'], 0, 0, 1),
    format: oneOf('format', values.format, PRODUCE_FORMATS, 'json'),
    scenario: oneOf('scenario', values.scenario, SCENARIOS, 'class-incremental'),
    seed: integerOption('seed', values.seed, 1, Number.MIN_SAFE_INTEGER) as number,
    endMarker: !values['no-end-marker'],
    clientId: 'lifelong-produce',
    ...(cluster !== undefined ? { ssl: cluster.ssl, sasl: cluster.sasl } : {}),
  };
}

/** The Kafka source of a pipeline file: how the daemon reaches its cluster. */
function kafkaSourceOf(file: string): KafkaSourceConfig {
  if (file === '') throw usageError('pipeline', 'needs a pipeline file whose source is kafka');
  const { source } = loadPipelineConfig(file);
  if (source.type !== 'kafka') throw usageError('pipeline', `needs a pipeline whose source is kafka; ${file} reads ${source.type}`);
  return source;
}

/** A task's topic: the prefix and the task name, verbatim. */
export function topicOf(prefix: string, task: TaskName): string {
  return `${prefix}${task}`;
}

/**
 * Rate limiting: `rate` tokens per second, at most `capacity` saved up. take(n) waits until n
 * tokens are there; n above the capacity is allowed and paid back by the next takes waiting longer,
 * so the long-run rate holds whatever the batch sizes.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly rate: number,
    readonly capacity: number,
    private readonly now: () => number = () => performance.now(),
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  ) {
    if (!(rate > 0) || !(capacity > 0)) throw new InvariantError(`TokenBucket needs rate > 0 and capacity > 0, got ${rate} and ${capacity}`);
    this.tokens = capacity;
    this.last = now();
  }

  async take(n: number): Promise<void> {
    this.refill();
    // Reserve first: a negative balance is the wait, and the next refill counts that wait.
    this.tokens -= n;
    if (this.tokens < 0) await this.sleep((1000 * -this.tokens) / this.rate);
  }

  private refill(): void {
    const now = this.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
  }
}

/** Which of a task's n samples go unlabelled: exactly round(fraction * n), at seeded positions. */
export function unlabelledPositions(n: number, fraction: number, rng: Rng): Set<number> {
  const count = Math.round(fraction * n);
  if (count === 0) return new Set();
  return new Set(rng.permutation(n).slice(0, count));
}

/** Collects messages for one topic and sends them in batches no larger than Kafka accepts. */
class BatchSender {
  private messages: Message[] = [];
  private bytes = 0;
  sent = 0;

  constructor(
    private readonly producer: Producer,
    private readonly topic: string,
    private readonly maxMessages: number,
    private readonly bucket: TokenBucket | undefined,
  ) {}

  async add(key: string | null, encoded: EncodedMessage): Promise<void> {
    const size = encoded.value.length + (key?.length ?? 0) + 64;
    if (this.messages.length > 0 && (this.messages.length >= this.maxMessages || this.bytes + size > MAX_BATCH_BYTES)) await this.flush();
    this.messages.push({ key, value: encoded.value, headers: encoded.headers, partition: 0 });
    this.bytes += size;
  }

  async flush(): Promise<void> {
    if (this.messages.length === 0) return;
    const messages = this.messages;
    this.messages = [];
    this.bytes = 0;
    await this.bucket?.take(messages.length);
    await this.producer.send({ topic: this.topic, messages });
    this.sent += messages.length;
  }
}

function describeRate(rate: number): string {
  return rate > 0 ? `${rate} msgs/s` : 'unlimited rate';
}

/** Produces the dataset; returns what was sent. Progress lines go to `out`, kafkajs' complaints to `log`. */
export async function produceDataset(options: ProduceOptions, out: Output = process.stdout, log: Logger = createLogger()): Promise<ProduceSummary> {
  const source = createEmbeddedSource({
    dataset: options.dataset,
    ...(options.tasks !== undefined ? { tasks: options.tasks } : {}),
    samplesPerTask: options.samplesPerTask,
    seed: options.seed,
    scenario: options.scenario,
  });
  const tasks = source.knownTasks();
  const topics = tasks.map((task) => topicOf(options.topicPrefix, task));
  const badTopic = topics.find((topic) => !isKafkaTopicName(topic));
  if (badTopic !== undefined) throw usageError('topic-prefix', `makes "${badTopic}", which is not a valid Kafka topic name (at most 249 characters)`);

  const connection = new KafkaConnection({ brokers: options.brokers, clientId: options.clientId, ssl: options.ssl, sasl: options.sasl, log });
  const started = performance.now();
  try {
    return await produceTopics(connection, source, tasks, topics, options, out, started);
  } finally {
    await connection.disconnect();
    await source.close();
  }
}

async function produceTopics(connection: KafkaConnection, source: EmbeddedSource, tasks: readonly TaskName[], topics: readonly string[], options: ProduceOptions, out: Output, started: number): Promise<ProduceSummary> {
  const admin = await connection.admin();
  await createTopics(admin, topics.map((topic) => ({ topic, numPartitions: 1 })));

  out.write(`producing ${source.description} to ${topics.length} topic${topics.length === 1 ? '' : 's'} ${topics[0]}${topics.length > 1 ? ' ...' : ''}, ${options.format}, ${describeRate(options.rate)}\n`);
  const batchSize = options.rate > 0 ? Math.max(1, Math.min(MAX_BATCH_MESSAGES, Math.round(options.rate / RATE_BATCHES_PER_SECOND))) : MAX_BATCH_MESSAGES;
  const bucket = options.rate > 0 ? new TokenBucket(options.rate, batchSize) : undefined;
  const encode = options.format === 'json' ? encodeJson : encodeBinary;
  // Its own generator: the unlabelled choice does not shift the stream's seeds.
  const rng = new Rng(options.seed ^ 0x5bd1e995);
  const producer = await connection.producer();
  const produced: ProducedTopic[] = [];
  const stream = source.open({ reject: () => undefined, log: () => undefined });
  let next = await stream.next();
  for (let t = 0; t < tasks.length; t++) {
    const task = tasks[t] as TaskName;
    const topic = topics[t] as string;
    const taskStarted = performance.now();
    const unlabelled = unlabelledPositions(source.expectedSamples(task) ?? 0, options.unlabelledFraction, rng);
    const sender = new BatchSender(producer, topic, batchSize, bucket);
    let samples = 0;
    for (; !next.done && (next.value as Sample).task === task; next = await stream.next()) {
      const sample = next.value as Sample;
      const labelled = !unlabelled.has(samples);
      await sender.add(sample.id ?? null, encode(labelled ? sample : { x: sample.x, ...(sample.id !== undefined ? { id: sample.id } : {}) }));
      samples++;
    }
    await sender.flush();
    if (options.endMarker) {
      await sender.add(null, controlMessage());
      await sender.flush();
    }
    const seconds = (performance.now() - taskStarted) / 1000;
    produced.push({ task, topic, samples, unlabelled: unlabelled.size, controls: options.endMarker ? 1 : 0 });
    out.write(
      `task ${t + 1}/${tasks.length} ${topic}: ${samples} samples (${unlabelled.size} unlabelled)${options.endMarker ? ' + end-of-task' : ''}` +
        ` in ${seconds.toFixed(1)} s (${(sender.sent / Math.max(seconds, 1e-9)).toFixed(0)} msgs/s)\n`,
    );
  }
  const seconds = (performance.now() - started) / 1000;
  const messages = produced.reduce((sum, p) => sum + p.samples + p.controls, 0);
  const samples = produced.reduce((sum, p) => sum + p.samples, 0);
  const unlabelledTotal = produced.reduce((sum, p) => sum + p.unlabelled, 0);
  out.write(
    `produced ${messages} messages (${samples - unlabelledTotal} labelled, ${unlabelledTotal} unlabelled) to ${produced.length} topic${produced.length === 1 ? '' : 's'}` +
      ` in ${seconds.toFixed(1)} s (${(messages / Math.max(seconds, 1e-9)).toFixed(0)} msgs/s)\n`,
  );
  return { topics: produced, messages, seconds };
}

/** `lifelong produce ARGS`: exit code 0 when every message was acknowledged by the broker. */
export async function produceCommand(args: readonly string[], out: Output = process.stdout): Promise<number> {
  await produceDataset(parseProduceArgs(args), out);
  return 0;
}
