/**
 * Kafka as a source of tasks: every topic matching a pattern is a task, learned once, in order.
 *
 * Which topics are tasks: those whose whole name matches `topicPattern`, except internal topics
 * (`__` prefix), the dead-letter topic, every topic the predictions template can produce, and the
 * request topic (its messages are task-agnostic prediction requests).
 *
 * Task order (one task is learned at a time):
 * - topics that exist when the source starts are ordered by name; topics created later come after
 *   every known one, by name among those found by the same poll of the topic list;
 * - when no task is current, the first topic in that order holding unread messages begins;
 * - the current task's topic is read; topics of tasks not yet begun stay paused until it ends, by a
 *   control message on its topic, by `idleTaskMs` without its messages, or by being caught up (no
 *   unread message left) while a later topic holds data: that topic then begins and the engine ends
 *   the current task as 'next-task' when the new task's first sample arrives;
 * - ended tasks' topics stay read: their labelled samples are evaluated by the engine.
 *
 * Offsets: auto-commit is off. Every record taken in is tracked per partition and is done when the
 * engine acknowledges its sample (after the predictions sink published), when its dead letter was
 * produced, or when its control marker was yielded. What is committed is the lowest offset not yet
 * done (everything below it is done), so a restart with the same group re-delivers exactly the
 * records whose processing had not finished: at least once, never lost.
 *
 * kafkajs facts this relies on (node_modules/kafkajs/src/consumer): with eachBatchAutoResolve off,
 * only resolveOffset() moves the fetch position, and it is independent of the committed offset;
 * consumer.commitOffsets() commits explicit offsets and does nothing at all (no error) while the
 * consumer is not running, so what is known to be committed is taken from the COMMIT_OFFSETS event;
 * a group (re)join starts fetching from the committed offsets and forgets pause(), which is why
 * records below a partition's intake position are skipped as already in hand and pauses are
 * re-applied on every GROUP_JOIN; subscribe() throws while running, so a new topic means stop,
 * subscribe, run again.
 */
import { Kafka, logLevel as KafkaLogLevel, Partitioners, type Admin, type Consumer, type EachBatchPayload, type KafkaConfig, type KafkaMessage, type LogEntry, type Producer } from 'kafkajs';
import { ConfigError, LifelongError } from '../core/errors';
import { silentLogger, type Logger } from '../core/log';
import { endOfTask, TASK_AGNOSTIC, type Sample, type SourceItem, type TaskControl, type TaskName } from '../core/types';
import { deadLetterHeaders, decodeMessage, type InvalidReason } from './codec';
import type { Source, SourceContext } from '../sources/source';

/** How to reach the cluster; shared by the source, the predictions sink and the producer tool. */
export interface KafkaClientOptions {
  readonly brokers: readonly string[];
  readonly clientId: string;
  /** kafkajs `ssl`, passed as is (false or absent: plaintext). */
  readonly ssl?: unknown;
  /** kafkajs `sasl`, passed as is; an empty object means none. */
  readonly sasl?: unknown;
  /** kafkajs retries of each request before it gives up (default kafkajs' 5). */
  readonly retries?: number;
  readonly log?: Logger;
}

export interface KafkaSourceOptions extends KafkaClientOptions {
  readonly groupId: string;
  /** A regular expression matched against whole topic names (anchored here). */
  readonly topicPattern: string;
  /** How often the topic list is polled for new task topics, ms. Default 2000. */
  readonly topicDiscoveryMs?: number;
  /** Features per sample. */
  readonly inputSize: number;
  /** Larger records are dead-lettered. Default 1 MiB. */
  readonly maxMessageBytes?: number;
  /** Default 'lifelong.dead-letter'. */
  readonly deadLetterTopic?: string;
  /** Where predictions go; '{topic}' is the input topic. Default '{topic}.predictions'. */
  readonly predictionsTopic?: string;
  /** Task-agnostic prediction requests; '' or absent for none. */
  readonly requestTopic?: string;
  /** Where the request topic's predictions go; default the predictions template applied to it. */
  readonly requestPredictionsTopic?: string;
  /** End the current task after this long without one of its messages; 0 (default) = never. */
  readonly idleTaskMs?: number;
  /** A group without committed offsets starts at the beginning of a topic (default) or its end. */
  readonly fromBeginning?: boolean;
  /** Default 30000 (kafkajs). */
  readonly sessionTimeoutMs?: number;
  /** Default 3000 (kafkajs); must be below the session timeout. */
  readonly heartbeatIntervalMs?: number;
  /**
   * Longest a fetch waits for data, ms; also how soon a resumed topic is fetched again (kafkajs
   * sleeps this long when every partition is paused). Default 500.
   */
  readonly maxWaitTimeMs?: number;
  /** Records held between Kafka and the engine before fetching pauses; it resumes below half. Default 1000. */
  readonly maxQueued?: number;
  /** Acknowledged offsets are committed at most this often, ms; 0 commits on every acknowledge. Default 1000. */
  readonly commitIntervalMs?: number;
  /** Before re-subscribing to new topics, wait at most this long for yielded samples' acknowledgements, ms. Default 5000. */
  readonly drainTimeoutMs?: number;
  /** close() waits at most this long for acknowledgements, the sink's flush, the commit and disconnects, ms. Default 10000. */
  readonly closeTimeoutMs?: number;
}

/** The `ref` of a sample read from Kafka: where to commit and what the predictions sink echoes. */
export interface KafkaMessageRef {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: Buffer | null;
}

/** True for the `ref` of a sample this module read from Kafka. */
export function isKafkaMessageRef(ref: unknown): ref is KafkaMessageRef {
  if (typeof ref !== 'object' || ref === null) return false;
  const r = ref as Partial<KafkaMessageRef>;
  return typeof r.topic === 'string' && typeof r.partition === 'number' && typeof r.offset === 'string' && (r.key === null || Buffer.isBuffer(r.key));
}

/** Why a message was dead-lettered: the codec's reasons plus the source's own. */
export type DeadLetterReason = InvalidReason | 'labelled-request';

/** Defaults of the optional KafkaSourceOptions. */
export const KAFKA_SOURCE_DEFAULTS = {
  topicDiscoveryMs: 2000,
  maxMessageBytes: 1024 * 1024,
  deadLetterTopic: 'lifelong.dead-letter',
  predictionsTopic: '{topic}.predictions',
  idleTaskMs: 0,
  fromBeginning: true,
  maxWaitTimeMs: 500,
  maxQueued: 1000,
  commitIntervalMs: 1000,
  drainTimeoutMs: 5000,
  closeTimeoutMs: 10_000,
} as const;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** kafkajs log entries to our logger: its errors are mostly retried, so they are warnings here. */
function kafkaLogCreator(log: Logger) {
  return () =>
    ({ namespace, level, log: entry }: LogEntry): void => {
      const { message, ...fields } = entry;
      const line = `kafkajs ${namespace}: ${message}`;
      if (level === KafkaLogLevel.ERROR) log.warn(line, fields);
      else log.debug(line, fields);
    };
}

function hasKeys(value: unknown): boolean {
  return typeof value === 'object' && value !== null && Object.keys(value).length > 0;
}

/** True if a kafkajs error, or one it wraps (`cause`), is the broker's error `type`. */
function hasErrorType(error: unknown, type: string): boolean {
  for (let e = error, depth = 0; typeof e === 'object' && e !== null && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if ((e as { type?: unknown }).type === type) return true;
  }
  return false;
}

/** Rejects with a retriable LifelongError if `promise` has not settled after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new LifelongError(`${what} did not finish within ${Math.max(0, Math.round(ms))} ms`, { retriable: true })), Math.max(0, ms));
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/**
 * The clients one daemon shares: one kafkajs instance, one producer (dead letters and predictions),
 * one admin. Connected lazily; disconnect() is idempotent.
 */
export class KafkaConnection {
  readonly kafka: Kafka;
  readonly log: Logger;
  private producerReady: Promise<Producer> | undefined;
  private adminReady: Promise<Admin> | undefined;
  private readonly topicsEnsured = new Map<string, Promise<void>>();
  private readonly flushers = new Set<() => Promise<void>>();
  private disconnected: Promise<void> | undefined;

  constructor(options: KafkaClientOptions) {
    this.log = options.log ?? silentLogger;
    const config: KafkaConfig = {
      clientId: options.clientId,
      brokers: [...options.brokers],
      logLevel: KafkaLogLevel.WARN,
      logCreator: kafkaLogCreator(this.log),
      ...(options.retries !== undefined ? { retry: { retries: options.retries } } : {}),
    };
    if (options.ssl !== undefined && options.ssl !== false) config.ssl = options.ssl as KafkaConfig['ssl'];
    if (hasKeys(options.sasl)) config.sasl = options.sasl as KafkaConfig['sasl'];
    this.kafka = new Kafka(config);
  }

  producer(): Promise<Producer> {
    this.assertOpen();
    this.producerReady ??= (async () => {
      const producer = this.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
      await producer.connect();
      return producer;
    })();
    return this.producerReady;
  }

  admin(): Promise<Admin> {
    this.assertOpen();
    this.adminReady ??= (async () => {
      const admin = this.kafka.admin();
      await admin.connect();
      return admin;
    })();
    return this.adminReady;
  }

  /**
   * Creates an output topic with the broker's defaults unless it exists, once per name. A failure
   * (no permission, say) is logged and left to the produce that follows.
   */
  ensureTopic(topic: string): Promise<void> {
    let ensured = this.topicsEnsured.get(topic);
    if (ensured === undefined) {
      ensured = (async () => {
        try {
          const admin = await this.admin();
          // Asked first: kafkajs logs an error for creating a topic that exists.
          if ((await admin.listTopics()).includes(topic)) return;
          await admin.createTopics({ topics: [{ topic }], waitForLeaders: true });
        } catch (error) {
          this.log.debug(`could not create topic ${topic}; producing to it anyway`, { error: (error as Error).message });
        }
      })();
      this.topicsEnsured.set(topic, ensured);
    }
    return ensured;
  }

  /** A sink registers its flush, so the source can flush it before committing on close. */
  onFlush(flush: () => Promise<void>): void {
    this.flushers.add(flush);
  }

  async flush(): Promise<void> {
    await Promise.all([...this.flushers].map((flush) => flush()));
  }

  disconnect(): Promise<void> {
    this.disconnected ??= (async () => {
      const clients = [this.producerReady, this.adminReady].filter((c): c is Promise<Producer> | Promise<Admin> => c !== undefined);
      const problems: string[] = [];
      for (const ready of clients) {
        // A client that never connected has nothing to disconnect (its failure was reported where it was used).
        const client = await ready.catch(() => undefined);
        if (client === undefined) continue;
        try {
          await client.disconnect();
        } catch (error) {
          problems.push((error as Error).message);
        }
      }
      if (problems.length > 0) throw new LifelongError(`kafka: disconnect failed: ${problems.join('; ')}`, { retriable: true });
    })();
    return this.disconnected;
  }

  private assertOpen(): void {
    if (this.disconnected) throw new LifelongError('kafka: the connection is closed');
  }
}

/**
 * Where a partition stands: which records are in hand and which are done. Offsets are numbers
 * (exact up to 2^53, far beyond any real partition).
 */
class PartitionProgress {
  /** Offset after the last record taken in: records below it are in hand or done. */
  next: number | undefined;
  /** What the group has committed for this partition, as far as this consumer knows. */
  committed: number | undefined;
  /** Offsets taken in and not yet done, ascending, from `head`. */
  private open: number[] = [];
  private head = 0;
  /** Done offsets still above the lowest open one. */
  private readonly doneAhead = new Set<number>();

  take(offset: number): void {
    this.open.push(offset);
    this.next = offset + 1;
  }

  /** Moves the intake past offsets that carry no user record (transaction markers). */
  skipTo(next: number): void {
    if (this.next === undefined || next > this.next) this.next = next;
  }

  finish(offset: number): void {
    if (!this.isOpen(offset)) return;
    this.doneAhead.add(offset);
    while (this.head < this.open.length && this.doneAhead.delete(this.open[this.head] as number)) this.head++;
    if (this.head > 1024 && this.head * 2 > this.open.length) {
      this.open = this.open.slice(this.head);
      this.head = 0;
    }
  }

  /** The offset to commit: the lowest not done, else the intake position. */
  commitValue(): number | undefined {
    return this.head < this.open.length ? this.open[this.head] : this.next;
  }

  private isOpen(offset: number): boolean {
    let lo = this.head;
    let hi = this.open.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const at = this.open[mid] as number;
      if (at === offset) return !this.doneAhead.has(offset);
      if (at < offset) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }
}

interface QueuedRecord {
  readonly kind: 'record';
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly message: KafkaMessage;
}
interface QueuedMarker {
  readonly kind: 'marker';
  readonly control: TaskControl;
}
type Queued = QueuedRecord | QueuedMarker;

/** Lets several waiters sleep until something changes. */
class Signal {
  private waiters: Array<() => void> = [];
  wait(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }
  notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }
}

type Phase = 'pending' | 'current' | 'ended';

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

export class KafkaSource implements Source {
  readonly live = true;
  readonly description: string;
  readonly inputSize: number;
  readonly connection: KafkaConnection;

  private readonly options: KafkaSourceOptions;
  private readonly log: Logger;
  private readonly ownsConnection: boolean;
  private readonly pattern: RegExp;
  private readonly outputPattern: RegExp;
  private readonly requestTopic: string | undefined;
  private readonly deadLetterTopic: string;
  private readonly maxQueued: number;
  private readonly consumer: Consumer;

  private context: SourceContext | undefined;
  private started: Promise<void> | undefined;
  /** No more items are yielded or taken in (iterator returned, or closing). */
  private finished = false;
  private closing: Promise<void> | undefined;
  private failure: Error | undefined;

  // Topics and tasks.
  private readonly taskTopics: string[] = [];
  private readonly phase = new Map<string, Phase>();
  private current: string | undefined;
  /** Pending task topics known to hold unread records. */
  private readonly withData = new Set<string>();
  /** The task name the latest sample of a topic carried (a header may name it instead of the topic). */
  private readonly taskNames = new Map<string, TaskName>();
  /** Where reading starts on a partition without a committed offset, when not from the beginning. */
  private readonly baseline = new Map<string, Map<number, number>>();
  private readonly subscribed = new Set<string>();
  private consumerRunning = false;

  // Records between Kafka and the engine.
  private queue: Queued[] = [];
  private queueHead = 0;
  private readonly queuedByTopic = new Map<string, number>();
  private backpressured = false;
  /** Re-subscribing: yielded samples are being acknowledged; nothing new is yielded meanwhile. */
  private draining = false;
  private readonly progress = new Map<string, Map<number, PartitionProgress>>();
  /** Refs of samples yielded and not yet acknowledged. */
  private readonly issued = new WeakSet<object>();
  private unacked = 0;
  private readonly changed = new Signal();
  private lastActivity = 0;

  // Timers and serialised background work.
  private discoveryTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private commitTimer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private tickAgain = false;
  private committing: Promise<void> | undefined;
  private commitAgain = false;

  /**
   * `connection`: clients shared with the predictions sink (see connector.ts); the source
   * disconnects it on close when it owns it (by default, when it made it).
   */
  constructor(options: KafkaSourceOptions, connection?: KafkaConnection, ownsConnection = connection === undefined) {
    this.options = options;
    this.log = options.log ?? silentLogger;
    this.inputSize = options.inputSize;
    try {
      this.pattern = new RegExp(`^(?:${options.topicPattern})$`);
    } catch (error) {
      throw new ConfigError(`kafka topicPattern is not a valid regular expression: ${(error as Error).message}`, undefined, 'source.topicPattern', error);
    }
    this.maxQueued = options.maxQueued ?? KAFKA_SOURCE_DEFAULTS.maxQueued;
    if (!Number.isInteger(this.maxQueued) || this.maxQueued < 1) {
      throw new ConfigError(`kafka maxQueued must be an integer >= 1, got ${this.maxQueued}`, undefined, 'source.maxQueued');
    }
    this.requestTopic = options.requestTopic ? options.requestTopic : undefined;
    this.deadLetterTopic = options.deadLetterTopic ?? KAFKA_SOURCE_DEFAULTS.deadLetterTopic;
    const template = options.predictionsTopic ?? KAFKA_SOURCE_DEFAULTS.predictionsTopic;
    const outputs = [template.split('{topic}').map(escapeRegExp).join('.+')];
    if (options.requestPredictionsTopic) outputs.push(escapeRegExp(options.requestPredictionsTopic));
    this.outputPattern = new RegExp(`^(?:${outputs.join('|')})$`);
    this.description = `kafka(${options.brokers.join(',')} /${options.topicPattern}/ group ${options.groupId})`;

    this.ownsConnection = ownsConnection;
    this.connection = connection ?? new KafkaConnection(options);
    this.consumer = this.connection.kafka.consumer({
      groupId: options.groupId,
      ...(options.sessionTimeoutMs !== undefined ? { sessionTimeout: options.sessionTimeoutMs } : {}),
      ...(options.heartbeatIntervalMs !== undefined ? { heartbeatInterval: options.heartbeatIntervalMs } : {}),
      maxWaitTimeInMs: options.maxWaitTimeMs ?? KAFKA_SOURCE_DEFAULTS.maxWaitTimeMs,
      // Only topics seen in the topic list are subscribed: never create one by reading it.
      allowAutoTopicCreation: false,
    });
  }

  /** True for a topic that is a task: matches the pattern and is none of the topics around tasks. */
  isTaskTopic(topic: string): boolean {
    return this.pattern.test(topic) && !topic.startsWith('__') && topic !== this.deadLetterTopic && topic !== this.requestTopic && !this.outputPattern.test(topic);
  }

  /** Task topics in the order their tasks are (or will be) learned. */
  taskOrder(): readonly string[] {
    return [...this.taskTopics];
  }

  /** Samples yielded and not yet acknowledged. */
  get unacknowledged(): number {
    return this.unacked;
  }

  /** Records fetched and not yet yielded (the internal queue). */
  get held(): number {
    return this.queued;
  }

  /**
   * The endless stream of samples and end-of-task markers. Read once: a second open() fails.
   * A fatal consumer error (or a failed dead-letter produce) rejects next().
   */
  open(context: SourceContext): AsyncIterator<SourceItem> {
    if (this.context !== undefined) throw new LifelongError('kafka source: open() was already called; a Kafka source is read once');
    this.context = context;
    if (!this.finished) {
      this.started = this.start().catch((error: unknown) => {
        this.fail(error instanceof LifelongError ? error : new LifelongError(`kafka source could not start: ${(error as Error).message}`, { retriable: true, cause: error }));
      });
    }
    return {
      next: () => this.pull(),
      return: async () => {
        this.finish();
        return DONE;
      },
    };
  }

  async acknowledge(samples: readonly Sample[]): Promise<void> {
    let any = false;
    for (const sample of samples) {
      const ref = sample.ref;
      if (typeof ref !== 'object' || ref === null || !this.issued.has(ref)) continue;
      this.issued.delete(ref);
      this.unacked -= 1;
      any = true;
      const { topic, partition, offset } = ref as KafkaMessageRef;
      this.progress.get(topic)?.get(partition)?.finish(Number(offset));
    }
    if (!any) return;
    this.changed.notify();
    await this.scheduleCommit();
  }

  /**
   * Stops fetching, waits (up to closeTimeoutMs) for the samples in hand to be acknowledged,
   * flushes the predictions sink, commits, then disconnects. Safe to call twice. Rejects with a
   * retriable LifelongError when the deadline passed (what was done is still committed).
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  // ---- reading -------------------------------------------------------------------------------

  private async start(): Promise<void> {
    const consumer = this.consumer;
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => this.onGroupJoin(payload.memberAssignment));
    consumer.on(consumer.events.COMMIT_OFFSETS, ({ payload }) => {
      for (const { topic, partitions } of payload.topics) {
        for (const { partition, offset } of partitions) {
          const progress = this.progress.get(topic)?.get(Number(partition));
          if (progress) progress.committed = Math.max(progress.committed ?? -1, Number(String(offset)));
        }
      }
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (payload.restart) {
        this.log.warn(`kafka consumer crashed, kafkajs restarts it: ${payload.error.message}`);
      } else {
        this.fail(new LifelongError(`kafka consumer crashed: ${payload.error.message}`, { retriable: false, cause: payload.error }));
      }
    });
    await consumer.connect();
    // The first poll's failure is the source's: a wrong broker or pattern surfaces at once.
    await this.runTicks();
  }

  private async pull(): Promise<IteratorResult<SourceItem>> {
    await this.started;
    for (;;) {
      if (this.failure) throw this.failure;
      if (this.finished) return DONE;
      if (!this.draining) {
        const item = this.dequeue();
        if (item !== undefined) {
          const out = await this.process(item);
          if (out !== undefined) return { done: false, value: out };
          continue;
        }
      }
      await this.changed.wait();
    }
  }

  private dequeue(): Queued | undefined {
    if (this.queueHead >= this.queue.length) return undefined;
    const item = this.queue[this.queueHead] as Queued;
    this.queueHead += 1;
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
    if (item.kind === 'record') {
      this.queuedByTopic.set(item.topic, (this.queuedByTopic.get(item.topic) ?? 1) - 1);
      if (this.backpressured && this.queued <= this.maxQueued / 2) {
        this.backpressured = false;
        this.applyPauses();
      }
    }
    return item;
  }

  private get queued(): number {
    return this.queue.length - this.queueHead;
  }

  /** A queued record becomes a sample, a marker or a dead letter (undefined: nothing to yield). */
  private async process(item: Queued): Promise<SourceItem | undefined> {
    if (item.kind === 'marker') return item.control;
    const { topic, partition, message } = item;
    const isRequest = topic === this.requestTopic;
    const decoded = decodeMessage(message, { topic, inputSize: this.inputSize, maxBytes: this.options.maxMessageBytes ?? KAFKA_SOURCE_DEFAULTS.maxMessageBytes });
    switch (decoded.kind) {
      case 'sample': {
        if (isRequest && decoded.sample.y !== undefined) {
          await this.deadLetter(item, TASK_AGNOSTIC, 'labelled-request', `a message on the request topic ${topic} carries a label, but requests are unlabelled: send labelled samples to a task topic`);
          return undefined;
        }
        const ref: KafkaMessageRef = { topic, partition, offset: message.offset, key: message.key };
        this.issued.add(ref);
        this.unacked += 1;
        if (isRequest) return { ...decoded.sample, task: TASK_AGNOSTIC, ref };
        this.taskNames.set(topic, decoded.sample.task);
        if (topic === this.current) this.lastActivity = Date.now();
        return { ...decoded.sample, ref };
      }
      case 'control': {
        if (isRequest) {
          await this.deadLetter(item, TASK_AGNOSTIC, 'bad-control', `control messages end tasks on task topics; ${topic} is the request topic`);
          return undefined;
        }
        this.done(item);
        if (topic === this.current) {
          this.endCurrent();
          this.requestTick();
        }
        return endOfTask(decoded.task, 'control');
      }
      case 'invalid':
        await this.deadLetter(item, isRequest ? TASK_AGNOSTIC : decoded.task, decoded.reason, decoded.detail);
        return undefined;
    }
  }

  private async deadLetter(item: QueuedRecord, task: TaskName | undefined, reason: DeadLetterReason, detail: string): Promise<void> {
    const { topic, partition, message } = item;
    const letter = (value: Buffer | null, why: string) => ({
      key: message.key,
      value,
      // The codec's reasons plus 'labelled-request', which only the source can tell.
      headers: deadLetterHeaders(message.headers, reason, why, { topic, partition, offset: message.offset }),
    });
    try {
      await this.connection.ensureTopic(this.deadLetterTopic);
      const producer = await this.connection.producer();
      try {
        await producer.send({ topic: this.deadLetterTopic, messages: [letter(message.value, detail)] });
      } catch (error) {
        // The input topic may accept larger records than the dead-letter topic: keep the headers.
        if (!hasErrorType(error, 'MESSAGE_TOO_LARGE')) throw error;
        await producer.send({ topic: this.deadLetterTopic, messages: [letter(null, `${detail} (value dropped: too large for ${this.deadLetterTopic})`)] });
      }
    } catch (error) {
      // Not dead-lettered means not done: failing loudly beats skipping a record silently.
      const failure = new LifelongError(`kafka: could not dead-letter ${topic}[${partition}]@${message.offset} (${reason}) to ${this.deadLetterTopic}: ${(error as Error).message}`, { retriable: true, cause: error });
      this.fail(failure);
      throw failure;
    }
    this.done(item);
    this.context?.reject(task, reason, detail);
  }

  /** A record needing no acknowledgement is done (control yielded, dead letter produced). */
  private done(item: QueuedRecord): void {
    this.progress.get(item.topic)?.get(item.partition)?.finish(item.offset);
    void this.scheduleCommit().catch(() => undefined);
  }

  // ---- kafkajs callbacks ---------------------------------------------------------------------

  /** Takes a fetched batch into the queue; never waits, so kafkajs keeps heartbeating on its own. */
  private async onBatch({ batch, resolveOffset }: EachBatchPayload): Promise<void> {
    const { topic, partition } = batch;
    if (this.finished || this.phase.get(topic) === 'pending' || !this.subscribed.has(topic)) {
      // Not resolved: the same records are fetched again once the topic is read.
      this.applyPauses();
      return;
    }
    const progress = this.progressOf(topic, partition);
    let taken = 0;
    for (const message of batch.messages) {
      const offset = Number(message.offset);
      // Below the intake position: already in hand or done (fetched again after a rejoin).
      if (progress.next !== undefined && offset < progress.next) continue;
      progress.take(offset);
      this.queue.push({ kind: 'record', topic, partition, offset, message });
      taken += 1;
    }
    progress.skipTo(Number(batch.lastOffset()) + 1);
    resolveOffset(batch.lastOffset());
    if (taken === 0) return;
    this.queuedByTopic.set(topic, (this.queuedByTopic.get(topic) ?? 0) + taken);
    if (topic === this.current) this.lastActivity = Date.now();
    if (!this.backpressured && this.queued > this.maxQueued) {
      this.backpressured = true;
      this.applyPauses();
    }
    this.changed.notify();
  }

  /**
   * After every (re)join: pauses are forgotten by kafkajs, so they are applied again; records of
   * partitions this member no longer owns are dropped (their new owner reads them).
   */
  private onGroupJoin(assignment: Record<string, number[]>): void {
    for (const [topic, partitions] of this.progress) {
      for (const partition of [...partitions.keys()]) {
        if (!(assignment[topic] ?? []).includes(partition)) {
          partitions.delete(partition);
          this.dropQueued((r) => r.topic === topic && r.partition === partition);
        }
      }
    }
    this.applyPauses();
  }

  private dropQueued(which: (record: QueuedRecord) => boolean): void {
    const kept: Queued[] = [];
    for (let i = this.queueHead; i < this.queue.length; i++) {
      const item = this.queue[i] as Queued;
      if (item.kind === 'record' && which(item)) this.queuedByTopic.set(item.topic, (this.queuedByTopic.get(item.topic) ?? 1) - 1);
      else kept.push(item);
    }
    this.queue = kept;
    this.queueHead = 0;
  }

  private progressOf(topic: string, partition: number): PartitionProgress {
    let partitions = this.progress.get(topic);
    if (partitions === undefined) this.progress.set(topic, (partitions = new Map()));
    let progress = partitions.get(partition);
    if (progress === undefined) partitions.set(partition, (progress = new PartitionProgress()));
    return progress;
  }

  /** Pending task topics are paused; everything is while the queue is over its high-water mark or the source is finished. */
  private applyPauses(): void {
    const pause: { topic: string }[] = [];
    const resume: { topic: string }[] = [];
    for (const topic of this.subscribed) {
      const hold = this.finished || this.backpressured || this.phase.get(topic) === 'pending';
      (hold ? pause : resume).push({ topic });
    }
    try {
      if (pause.length > 0) this.consumer.pause(pause);
      if (resume.length > 0) this.consumer.resume(resume);
    } catch {
      // The consumer is between runs; GROUP_JOIN applies the pauses again.
    }
  }

  // ---- topics and tasks ----------------------------------------------------------------------

  private scheduleDiscovery(): void {
    if (this.finished || this.failure || this.discoveryTimer) return;
    this.discoveryTimer = setTimeout(() => {
      this.discoveryTimer = undefined;
      this.requestTick();
    }, this.options.topicDiscoveryMs ?? KAFKA_SOURCE_DEFAULTS.topicDiscoveryMs);
  }

  /** A tick soon, for a task that just ended; a failure is logged and the next poll retries. */
  private requestTick(): void {
    if (this.finished) return;
    this.runTicks().catch((error: unknown) => {
      if (!this.failure) this.log.warn(`kafka topic discovery failed; retrying in ${this.options.topicDiscoveryMs ?? KAFKA_SOURCE_DEFAULTS.topicDiscoveryMs} ms: ${(error as Error).message}`);
    });
  }

  /** Ticks one at a time: a request during one runs another after it. Re-arms the discovery poll. */
  private runTicks(): Promise<void> {
    if (this.ticking) {
      this.tickAgain = true;
      return this.ticking;
    }
    if (this.discoveryTimer) clearTimeout(this.discoveryTimer);
    this.discoveryTimer = undefined;
    this.ticking = (async () => {
      try {
        do {
          this.tickAgain = false;
          await this.tick();
        } while (this.tickAgain && !this.finished);
      } finally {
        this.ticking = undefined;
        this.scheduleDiscovery();
      }
    })();
    return this.ticking;
  }

  /** Discovers new topics (subscribing to them), then decides which task is current. */
  private async tick(): Promise<void> {
    const admin = await this.connection.admin();
    const names = new Set(await admin.listTopics());
    if (this.finished) return;
    const fresh = [...names].filter((t) => !this.phase.has(t) && this.isTaskTopic(t)).sort();
    for (const topic of fresh) {
      this.taskTopics.push(topic);
      this.phase.set(topic, 'pending');
    }
    if (fresh.length > 0) this.log.info(`kafka: new task topics ${fresh.join(', ')}`);
    const toSubscribe = [...fresh];
    if (this.requestTopic && names.has(this.requestTopic) && !this.subscribed.has(this.requestTopic)) toSubscribe.push(this.requestTopic);
    if (toSubscribe.length > 0) await this.subscribe(toSubscribe);
    await this.advance(admin);
  }

  /**
   * Stop, subscribe, run: kafkajs cannot subscribe while running. Before stopping, the samples
   * already yielded get up to drainTimeoutMs to be acknowledged and what is done is committed,
   * so the group's offsets are current when it rebalances. Queued records stay queued: after the
   * rejoin kafkajs fetches from the committed offsets and what is already in hand is skipped.
   */
  private async subscribe(topics: readonly string[]): Promise<void> {
    try {
      if (this.consumerRunning) {
        this.draining = true;
        await this.waitFor(() => this.unacked === 0 || this.finished, this.options.drainTimeoutMs ?? KAFKA_SOURCE_DEFAULTS.drainTimeoutMs);
        await this.commit();
        await this.consumer.stop();
        this.consumerRunning = false;
        this.draining = false;
        this.changed.notify();
      }
      if (this.finished) return;
      await this.consumer.subscribe({ topics: [...topics], fromBeginning: this.options.fromBeginning ?? KAFKA_SOURCE_DEFAULTS.fromBeginning });
      for (const topic of topics) this.subscribed.add(topic);
      await this.consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 1,
        eachBatch: (payload) => this.onBatch(payload),
      });
      this.consumerRunning = true;
      this.applyPauses();
    } catch (error) {
      const failure = new LifelongError(`kafka: could not subscribe to ${topics.join(', ')}: ${(error as Error).message}`, { retriable: true, cause: error });
      this.fail(failure);
      throw failure;
    } finally {
      this.draining = false;
    }
  }

  /** Ends the current task when it is caught up and a later topic has data; begins the next one. */
  private async advance(admin: Admin): Promise<void> {
    const pending = this.taskTopics.filter((t) => this.phase.get(t) === 'pending');
    if (pending.length === 0) return;
    if (this.current !== undefined && (this.queuedByTopic.get(this.current) ?? 0) > 0) return;
    // Only the first pending topic with data matters: later ones are not asked.
    let next: string | undefined;
    for (const topic of pending) {
      if (!this.withData.has(topic) && (await this.hasUnread(admin, topic))) this.withData.add(topic);
      if (this.withData.has(topic)) {
        next = topic;
        break;
      }
    }
    if (next === undefined || this.finished) return;
    if (this.current !== undefined) {
      if ((this.queuedByTopic.get(this.current) ?? 0) > 0 || (await this.hasUnread(admin, this.current))) return;
      this.log.info(`kafka: task topic ${this.current} is caught up and ${next} has data: ${next} begins`);
      this.endCurrent();
    }
    if (this.finished) return;
    this.begin(next);
  }

  /**
   * True when a topic holds records after the position reading would start from: this consumer's
   * intake where it has one, else the group's committed offset, else the log start (from the
   * beginning) or the end seen when the topic was first checked.
   */
  private async hasUnread(admin: Admin, topic: string): Promise<boolean> {
    let ends;
    let committed;
    try {
      [ends, committed] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId: this.options.groupId, topics: [topic] })]);
    } catch (error) {
      // A topic created a moment ago may not have a leader yet.
      this.log.debug(`kafka: offsets of ${topic} not available yet: ${(error as Error).message}`);
      return false;
    }
    const committedOf = new Map<number, number>();
    for (const t of committed) for (const p of t.partitions) committedOf.set(p.partition, Number(p.offset));
    const fromBeginning = this.options.fromBeginning ?? KAFKA_SOURCE_DEFAULTS.fromBeginning;
    let baseline = this.baseline.get(topic);
    if (!fromBeginning && baseline === undefined) {
      this.baseline.set(topic, (baseline = new Map(ends.map((e) => [e.partition, Number(e.high)]))));
    }
    return ends.some((end) => {
      const high = Number(end.high);
      const low = Number(end.low);
      const intake = this.progress.get(topic)?.get(end.partition)?.next;
      const group = committedOf.get(end.partition) ?? -1;
      const start = intake ?? (group >= 0 ? group : fromBeginning ? low : (baseline?.get(end.partition) ?? high));
      return high > Math.max(start, low);
    });
  }

  private begin(topic: string): void {
    this.phase.set(topic, 'current');
    this.current = topic;
    this.withData.delete(topic);
    this.lastActivity = Date.now();
    this.log.info(`kafka: task topic ${topic} begins`);
    this.applyPauses();
    this.armIdle();
  }

  private endCurrent(): void {
    if (this.current === undefined) return;
    this.phase.set(this.current, 'ended');
    this.current = undefined;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  private armIdle(delayMs?: number): void {
    const idleMs = this.options.idleTaskMs ?? KAFKA_SOURCE_DEFAULTS.idleTaskMs;
    if (idleMs <= 0 || this.current === undefined || this.finished) return;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.checkIdle(idleMs), delayMs ?? idleMs);
  }

  /** The current task ends after idleMs without its records, counting records still queued as activity. */
  private checkIdle(idleMs: number): void {
    this.idleTimer = undefined;
    const topic = this.current;
    if (topic === undefined || this.finished) return;
    if ((this.queuedByTopic.get(topic) ?? 0) > 0 || this.backpressured) this.lastActivity = Date.now();
    const quiet = Date.now() - this.lastActivity;
    if (quiet < idleMs) return this.armIdle(idleMs - quiet);
    this.log.info(`kafka: task topic ${topic} idle for ${quiet} ms: its task ends`);
    this.queue.push({ kind: 'marker', control: endOfTask(this.taskNames.get(topic) ?? topic, 'idle') });
    this.endCurrent();
    this.changed.notify();
    this.requestTick();
  }

  // ---- offsets -------------------------------------------------------------------------------

  private scheduleCommit(): Promise<void> {
    const interval = this.options.commitIntervalMs ?? KAFKA_SOURCE_DEFAULTS.commitIntervalMs;
    if (interval <= 0) return this.commit();
    if (this.commitTimer === undefined) {
      this.commitTimer = setTimeout(() => {
        this.commitTimer = undefined;
        void this.commit();
      }, interval);
      this.commitTimer.unref();
    }
    return Promise.resolve();
  }

  /** Commits, per partition, the lowest offset not yet done; one commit at a time. Never rejects. */
  private commit(): Promise<void> {
    if (this.committing) {
      this.commitAgain = true;
      return this.committing;
    }
    this.committing = (async () => {
      do {
        this.commitAgain = false;
        await this.commitOnce();
      } while (this.commitAgain);
    })().finally(() => {
      this.committing = undefined;
    });
    return this.committing;
  }

  private async commitOnce(): Promise<void> {
    if (!this.consumerRunning) return;
    const offsets: { topic: string; partition: number; offset: string }[] = [];
    for (const [topic, partitions] of this.progress) {
      for (const [partition, progress] of partitions) {
        const value = progress.commitValue();
        if (value !== undefined && (progress.committed === undefined || value > progress.committed)) offsets.push({ topic, partition, offset: String(value) });
      }
    }
    if (offsets.length === 0) return;
    try {
      await this.consumer.commitOffsets(offsets);
    } catch (error) {
      // Left for the next commit: the offsets only grow.
      this.log.warn(`kafka: offset commit failed, retried with the next one: ${(error as Error).message}`);
    }
  }

  // ---- ending --------------------------------------------------------------------------------

  private fail(error: LifelongError): void {
    this.failure ??= error;
    this.changed.notify();
  }

  /** No more yields, nothing more taken in; what is in hand may still be acknowledged. */
  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    for (const timer of [this.discoveryTimer, this.idleTimer]) if (timer) clearTimeout(timer);
    this.discoveryTimer = undefined;
    this.idleTimer = undefined;
    this.applyPauses();
    this.changed.notify();
  }

  /** Waits until `done()` or `ms` passed; true when done. */
  private async waitFor(done: () => boolean, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await Promise.race([this.changed.wait(), sleep(Math.min(left, 250))]);
    }
    return true;
  }

  private async shutdown(): Promise<void> {
    const timeoutMs = this.options.closeTimeoutMs ?? KAFKA_SOURCE_DEFAULTS.closeTimeoutMs;
    const deadline = Date.now() + timeoutMs;
    // Waiting for acknowledgements may not eat the time that flushing, committing and
    // disconnecting need: they keep the last part of the deadline.
    const reserveMs = Math.min(3000, timeoutMs / 2);
    const left = (): number => deadline - Date.now();
    this.finish();
    if (this.commitTimer) clearTimeout(this.commitTimer);
    this.commitTimer = undefined;
    const problems: string[] = [];
    const step = async (what: string, work: () => Promise<unknown>): Promise<void> => {
      try {
        await within(work(), left(), what);
      } catch (error) {
        problems.push((error as Error).message);
      }
    };
    await step('starting the source', async () => {
      await this.started;
      await this.ticking;
    });
    const unackedBefore = this.unacked;
    const waitMs = Math.max(0, left() - reserveMs);
    const drained = await this.waitFor(() => this.unacked === 0, waitMs);
    if (!drained) problems.push(`${this.unacked} of ${unackedBefore} samples in hand were not acknowledged within ${Math.round(waitMs)} ms; their offsets stay uncommitted and they are delivered again`);
    await step('flushing predictions', () => this.connection.flush());
    await step('committing offsets', () => this.commit());
    this.queue = [];
    this.queueHead = 0;
    await step('disconnecting the consumer', () => this.consumer.disconnect());
    this.consumerRunning = false;
    if (this.ownsConnection) await step('disconnecting the producer and admin', () => this.connection.disconnect());
    if (problems.length > 0) throw new LifelongError(`kafka source close: ${problems.join('; ')}`, { retriable: true });
  }
}
