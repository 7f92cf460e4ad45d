/**
 * Kafka as a source of tasks: every topic matching a pattern is a task, learned once, in order
 * (which topics are tasks, and their order: task-topics.ts).
 *
 * Task order (one task is learned at a time):
 * - when no task is current, the first topic in task order holding unread messages begins;
 * - the current task's topic is read; topics of tasks not yet begun stay paused until it ends, by a
 *   control message on its topic, by `idleTaskMs` without its messages, or by being caught up (no
 *   unread message left) while a later topic holds data: that topic then begins and the engine ends
 *   the current task as 'next-task' when the new task's first sample arrives;
 * - ended tasks' topics stay read: their labelled samples are evaluated by the engine.
 *
 * Offsets: auto-commit is off. Every record taken in is tracked per partition and is done when the
 * engine acknowledges its sample (after the predictions sink published), when its dead letter was
 * produced, or when its control marker was yielded. What is committed is the lowest offset not yet
 * done (partition-progress.ts), so a restart with the same group re-delivers exactly the records
 * whose processing had not finished: at least once, never lost.
 *
 * Durable checkpoints (an engine that opens the source with `commitsFollowCheckpoints`): nothing
 * is committed past the positions the newest durable checkpoint covers (checkpointed()), so a
 * crash never loses a sample whose training is only in memory. positions() says where the source
 * stands: per partition, the offset after the last record handed on (yielded as a sample or a
 * control marker, or dead-lettered). resume() goes on from a checkpoint: its task topics' order and
 * phases come back and every restored partition is read from its position (a seek on each group
 * join until the group's commit has caught up with it: the group's own offset may be behind, after
 * a crash, or ahead, when a corrupt newest checkpoint made the daemon fall back to an older one).
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
import type { Admin, Consumer, EachBatchPayload, KafkaMessage } from 'kafkajs';
import { ConfigError, LifelongError } from '../core/errors';
import { silentLogger, type Logger } from '../core/log';
import { endOfTask, TASK_AGNOSTIC, type Sample, type SourceItem, type TaskName } from '../core/types';
import type { SourcePositions } from '../operators/checkpoints';
import type { Source, SourceContext, SourceResume } from '../operators/source';
import { decodeMessage } from './codec';
import { consumerLag } from './consumer-lag';
import { KafkaConnection } from './connection';
import { DeadLetters, type DeadLetterReason } from './dead-letter';
import { within } from './deadline';
import { DiscoveryPoll } from './discovery-poll';
import { IdleTask } from './idle-task';
import { IntakeQueue, type Queued, type QueuedRecord } from './intake-queue';
import { LogResets, type ResetPartition } from './log-resets';
import type { KafkaMessageRef } from './message-ref';
import { OffsetCommits } from './offset-commits';
import { OffsetLedger, type PartitionProgress } from './partition-progress';
import { isUnreachable } from './error-causes';
import { OUTLAST_BROKER_RESTART, retryTransient, UNTIL_THE_BROKER_IS_BACK } from './retry';
import { Signal } from './signal';
import { groupConsumerConfig, KAFKA_SOURCE_DEFAULTS, taskTopicRules, type KafkaSourceOptions } from './source-options';
import { TaskTopics } from './task-topics';
import { UnreadRecords } from './unread-records';

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

export class KafkaSource implements Source {
  readonly live = true;
  readonly description: string;
  readonly inputSize: number;
  readonly connection: KafkaConnection;

  private readonly options: KafkaSourceOptions;
  private readonly log: Logger;
  private readonly ownsConnection: boolean;
  private readonly requestTopic: string | undefined;
  private readonly maxQueued: number;
  private readonly consumer: Consumer;
  private readonly topics: TaskTopics;
  private readonly ledger = new OffsetLedger();
  private readonly queue = new IntakeQueue();
  private readonly commits: OffsetCommits;
  private readonly deadLetters: DeadLetters;
  private readonly unread: UnreadRecords;
  private readonly discovery: DiscoveryPoll;
  private readonly idle: IdleTask;
  private readonly changed = new Signal();
  private readonly resets: LogResets;
  /** The check for recreated logs in progress; one at a time. */
  private following: Promise<void> = Promise.resolve();

  private context: SourceContext | undefined;
  private started: Promise<void> | undefined;
  /** No more items are yielded or taken in (iterator returned, or closing). */
  private finished = false;
  private closing: Promise<void> | undefined;
  private failure: Error | undefined;
  private readonly subscribed = new Set<string>();
  private consumerRunning = false;
  private backpressured = false;
  /** Re-subscribing: yielded samples are being acknowledged; nothing new is yielded meanwhile. */
  private draining = false;
  /**
   * Refs of samples yielded and not yet acknowledged, with the record each was read from (the sink
   * dead-letters refused samples with it) and the progress of their partition when they were: a
   * partition that starts over meanwhile gets a new one (see resetPartition).
   */
  private readonly issued = new WeakMap<object, { readonly message: KafkaMessage; readonly progress: PartitionProgress | undefined }>();
  private unacked = 0;
  /** Per "topic/partition", the offset after the last record handed on (see positions()). */
  private readonly handedOn = new Map<string, number>();
  private handedOnSnapshot: SourcePositions | undefined;
  /** Restored partitions to read from these offsets until the group's commit reaches them. */
  private readonly resumeAt = new Map<string, { topic: string; partition: number; offset: number }>();

  /**
   * `connection`: clients shared with the predictions sink (see connector.ts); the source
   * disconnects it on close when it owns it (by default, when it made it).
   */
  constructor(options: KafkaSourceOptions, connection?: KafkaConnection, ownsConnection = connection === undefined) {
    this.options = options;
    this.log = options.log ?? silentLogger;
    this.inputSize = options.inputSize;
    this.requestTopic = options.requestTopic ? options.requestTopic : undefined;
    const deadLetterTopic = options.deadLetterTopic ?? KAFKA_SOURCE_DEFAULTS.deadLetterTopic;
    this.topics = new TaskTopics(taskTopicRules(options), this.log);
    this.maxQueued = options.maxQueued ?? KAFKA_SOURCE_DEFAULTS.maxQueued;
    if (!Number.isInteger(this.maxQueued) || this.maxQueued < 1) {
      throw new ConfigError(`kafka maxQueued must be an integer >= 1, got ${this.maxQueued}`, undefined, 'source.maxQueued');
    }
    this.description = `kafka(${options.brokers.join(',')} /${options.topicPattern}/ group ${options.groupId})`;

    this.ownsConnection = ownsConnection;
    this.connection = connection ?? new KafkaConnection(options);
    this.consumer = this.connection.kafka.consumer(groupConsumerConfig(options));
    this.commits = new OffsetCommits(this.ledger, this.consumer, options.commitIntervalMs ?? KAFKA_SOURCE_DEFAULTS.commitIntervalMs, () => this.consumerRunning, this.log);
    this.deadLetters = new DeadLetters(deadLetterTopic, this.connection, () => this.finished);
    this.unread = new UnreadRecords(options.groupId, options.fromBeginning ?? KAFKA_SOURCE_DEFAULTS.fromBeginning, (topic, partition) => this.ledger.intake(topic, partition), this.log);
    this.discovery = new DiscoveryPoll(
      options.topicDiscoveryMs ?? KAFKA_SOURCE_DEFAULTS.topicDiscoveryMs,
      () => this.tick(),
      () => this.finished,
      () => this.failure !== undefined,
      this.log,
    );
    this.idle = new IdleTask(
      options.idleTaskMs ?? KAFKA_SOURCE_DEFAULTS.idleTaskMs,
      () => (this.topics.current !== undefined && this.queue.recordsOf(this.topics.current) > 0) || this.backpressured,
      (quietMs) => this.onIdle(quietMs),
    );
    this.resets = new LogResets(this.log, (topic, ends) => {
      const lag = consumerLag(ends, (partition) => this.ledger.progressOf(topic, partition)?.commitValue());
      if (lag !== undefined) this.options.onConsumerLag?.(topic, lag);
    });
  }

  /** True for a topic that is a task: matches the pattern and is none of the topics around tasks. */
  isTaskTopic(topic: string): boolean {
    return this.topics.isTaskTopic(topic);
  }

  /** Task topics in the order their tasks are (or will be) learned. */
  taskOrder(): readonly string[] {
    return this.topics.taskOrder();
  }

  /** Where the source stands: per "topic/partition", the offset after the last record handed on. */
  positions(): SourcePositions {
    this.handedOnSnapshot ??= Object.freeze(Object.fromEntries(this.handedOn));
    return this.handedOnSnapshot;
  }

  /** A checkpoint covering `positions` is durable: commits may go up to them. */
  async checkpointed(positions: SourcePositions): Promise<void> {
    this.commits.allowUpTo(positions);
    await this.commits.schedule();
  }

  /** Before open(): the tasks and positions of a checkpoint (see the file's comment). */
  resume(state: SourceResume): void {
    if (this.context !== undefined) throw new LifelongError('kafka source: resume() must come before open()');
    this.topics.restore(state.tasks.filter((t) => this.topics.isTaskTopic(t)), state.current);
    for (const [key, offset] of Object.entries(state.positions)) {
      const at = key.lastIndexOf('/');
      const topic = key.slice(0, at);
      const partition = Number(key.slice(at + 1));
      if (at < 1 || !Number.isInteger(partition) || !Number.isInteger(offset) || offset < 0) throw new LifelongError(`kafka source: a checkpoint position "${key}": ${offset} is not topic/partition: offset`);
      this.resumeAt.set(key, { topic, partition, offset });
      this.handedOn.set(key, offset);
      this.ledger.partition(topic, partition).skipTo(offset);
    }
    this.handedOnSnapshot = undefined;
    this.commits.allowUpTo(state.positions);
  }

  /** Samples yielded and not yet acknowledged. */
  get unacknowledged(): number {
    return this.unacked;
  }

  /** Records fetched and not yet yielded (the internal queue). */
  get held(): number {
    return this.queue.size;
  }

  /**
   * The endless stream of samples and end-of-task markers. Read once: a second open() fails.
   * A fatal consumer error (or a failed dead-letter produce) rejects next().
   */
  open(context: SourceContext): AsyncIterator<SourceItem> {
    if (this.context !== undefined) throw new LifelongError('kafka source: open() was already called; a Kafka source is read once');
    this.context = context;
    if (context.commitsFollowCheckpoints === true) this.commits.followCheckpoints();
    if (!this.finished) {
      this.started = this.start().catch((error: unknown) => {
        const hint = (error as Error).name === 'KafkaJSSASLAuthenticationError' ? ' (check source.sasl: mechanism, username and password)' : '';
        this.fail(error instanceof LifelongError ? error : new LifelongError(`kafka source could not start: ${(error as Error).message}${hint}`, { cause: error }));
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

  /** The record a sample was read from, while the sample is not yet acknowledged (the sink dead-letters refused samples with it). */
  recordOf(ref: KafkaMessageRef): KafkaMessage | undefined {
    return this.issued.get(ref)?.message;
  }

  async acknowledge(samples: readonly Sample[]): Promise<void> {
    let any = false;
    for (const sample of samples) {
      const ref = sample.ref;
      if (typeof ref !== 'object' || ref === null || !this.issued.has(ref)) continue;
      const progress = this.issued.get(ref)?.progress;
      this.issued.delete(ref);
      this.unacked -= 1;
      any = true;
      progress?.finish(Number((ref as KafkaMessageRef).offset));
    }
    if (!any) return;
    this.changed.notify();
    await this.commits.schedule();
  }

  /**
   * Stops fetching, waits (up to closeTimeoutMs) for the samples in hand to be acknowledged,
   * flushes the predictions sink, commits, then disconnects. Safe to call twice. Rejects with a
   * retriable LifelongError when the deadline passed: what was done is still committed, and what
   * was not is delivered again to the next run.
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
          this.ledger.committed(topic, Number(partition), Number(String(offset)));
          const resumed = this.resumeAt.get(`${topic}/${partition}`);
          if (resumed !== undefined && Number(String(offset)) >= resumed.offset) this.resumeAt.delete(`${topic}/${partition}`);
        }
      }
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (payload.restart) {
        this.log.warn(`kafka consumer crashed, kafkajs restarts it: ${payload.error.message}`);
      } else if (isUnreachable(payload.error)) {
        this.restartConsumer(payload.error);
      } else {
        this.fail(new LifelongError(`kafka consumer crashed: ${payload.error.message}`, { cause: payload.error }));
      }
    });
    await consumer.connect();
    // The first poll's failure is the source's: a wrong broker or pattern surfaces at once.
    await this.discovery.run();
    // A task restored as current goes on: its idle clock starts now.
    if (this.topics.current !== undefined) this.idle.start();
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
    const item = this.queue.shift();
    if (item?.kind === 'record' && this.backpressured && this.queue.size <= this.maxQueued / 2) {
      this.backpressured = false;
      this.applyPauses();
    }
    return item;
  }

  /** A queued record becomes a sample, a marker or a dead letter (undefined: nothing to yield). */
  private async process(item: Queued): Promise<SourceItem | undefined> {
    if (item.kind === 'marker') return item.control;
    const { topic, partition, message } = item;
    const isRequest = topic === this.requestTopic;
    const decoded = decodeMessage(message, {
      topic,
      inputSize: this.inputSize,
      maxBytes: this.options.maxMessageBytes ?? KAFKA_SOURCE_DEFAULTS.maxMessageBytes,
      ...(this.options.maxAbsFeature !== undefined ? { maxAbsFeature: this.options.maxAbsFeature } : {}),
      ...(this.options.taskFrom !== undefined ? { taskFrom: this.options.taskFrom } : {}),
    });
    switch (decoded.kind) {
      case 'sample': {
        if (isRequest && decoded.sample.y !== undefined) {
          await this.deadLetter(item, TASK_AGNOSTIC, 'labelled-request', `a message on the request topic ${topic} carries a label, but requests are unlabelled: send labelled samples to a task topic`);
          return undefined;
        }
        if (decoded.sample.y === undefined && this.options.answerRequests === false) {
          // A request on a task topic: the prediction replicas answer it.
          this.done(item);
          this.handOn(item);
          return undefined;
        }
        const ref: KafkaMessageRef = { topic, partition, offset: message.offset, key: message.key };
        this.handOn(item);
        this.issued.set(ref, { message, progress: this.ledger.progressOf(topic, partition) });
        this.unacked += 1;
        if (isRequest) return { ...decoded.sample, task: TASK_AGNOSTIC, ref };
        this.topics.noteTask(topic, decoded.sample.task);
        if (topic === this.topics.current) this.idle.touch();
        return { ...decoded.sample, ref };
      }
      case 'control': {
        if (isRequest) {
          await this.deadLetter(item, TASK_AGNOSTIC, 'bad-control', `control messages end tasks on task topics; ${topic} is the request topic`);
          return undefined;
        }
        this.done(item);
        this.handOn(item);
        if (topic === this.topics.current) {
          this.endCurrent();
          this.discovery.request();
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
    const progress = this.ledger.progressOf(topic, partition);
    try {
      await this.deadLetters.send(message, reason, detail, { topic, partition, offset: message.offset });
    } catch (error) {
      // Not dead-lettered means not done: failing loudly beats skipping a record silently.
      this.fail(error as LifelongError);
      throw error;
    }
    this.done(item, progress);
    this.handOn(item);
    this.context?.reject(task, reason, detail);
  }

  private handOn(item: QueuedRecord): void {
    this.handedOn.set(`${item.topic}/${item.partition}`, item.offset + 1);
    this.handedOnSnapshot = undefined;
  }

  /** A record needing no acknowledgement is done (control yielded, dead letter produced). */
  private done(item: QueuedRecord, progress = this.ledger.progressOf(item.topic, item.partition)): void {
    progress?.finish(item.offset);
    void this.commits.schedule().catch(() => undefined);
  }

  // ---- kafkajs callbacks ---------------------------------------------------------------------

  /** Takes a fetched batch into the queue; never waits, so kafkajs keeps heartbeating on its own. */
  private async onBatch({ batch, resolveOffset }: EachBatchPayload): Promise<void> {
    const { topic, partition } = batch;
    if (this.finished || this.topics.phaseOf(topic) === 'pending' || !this.subscribed.has(topic)) {
      // Not resolved: the same records are fetched again once the topic is read.
      this.applyPauses();
      return;
    }
    let progress = this.ledger.partition(topic, partition);
    const high = Number(batch.highWatermark);
    if (progress.next !== undefined && high < progress.next) {
      // kafkajs met OFFSET_OUT_OF_RANGE and went back to the log's start: the topic was recreated.
      this.resetPartition(topic, partition, `its log now ends at offset ${high}, below offset ${progress.next} already read`);
      progress = this.ledger.partition(topic, partition);
    }
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
    if (topic === this.topics.current) this.idle.touch();
    if (!this.backpressured && this.queue.size > this.maxQueued) {
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
    for (const { topic, partition } of this.ledger.keepAssigned(assignment)) {
      this.queue.drop((r) => r.topic === topic && r.partition === partition);
    }
    for (const { topic, partition, offset } of this.resumeAt.values()) {
      if (!(assignment[topic] ?? []).includes(partition)) continue;
      this.ledger.partition(topic, partition).skipTo(offset);
      try {
        this.consumer.seek({ topic, partition, offset: String(offset) });
      } catch (error) {
        this.log.warn(`kafka: could not seek ${topic}/${partition} to ${offset}: ${(error as Error).message}`);
      }
    }
    this.applyPauses();
  }

  /** Pending task topics are paused; everything is while the queue is over its high-water mark or the source is finished. */
  private applyPauses(): void {
    const pause: { topic: string }[] = [];
    const resume: { topic: string }[] = [];
    for (const topic of this.subscribed) {
      const hold = this.finished || this.backpressured || this.topics.phaseOf(topic) === 'pending';
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

  /** Discovers new topics (subscribing to them), then decides which task is current. */
  private async tick(): Promise<void> {
    const admin = await this.connection.admin();
    const names = new Set(await admin.listTopics());
    if (this.finished) return;
    const fresh = this.topics.discover(names);
    if (fresh.length > 0) this.log.info(`kafka: new task topics ${fresh.join(', ')}`);
    // Fresh topics, and restored ones that exist (again).
    const toSubscribe = this.topics.taskOrder().filter((t) => names.has(t) && !this.subscribed.has(t));
    if (this.requestTopic && this.options.answerRequests !== false && names.has(this.requestTopic) && !this.subscribed.has(this.requestTopic)) toSubscribe.push(this.requestTopic);
    if (toSubscribe.length > 0) await this.subscribe(toSubscribe);
    await this.followRecreatedLogs(admin);
    await this.advance(admin);
  }

  /**
   * Partitions whose log started over (log-resets.ts) are read again from their start: after a
   * wiped broker every partition, the group's offsets being gone with it. Tasks keep their
   * phases: a recreated topic of an ended task is evaluated, of the current task trained.
   */
  private followRecreatedLogs(admin: Admin): Promise<void> {
    this.following = this.following.then(async () => {
      if (await this.resets.clusterChanged(admin)) {
        this.connection.forgetEnsuredTopics();
        const read = this.ledger.partitions();
        for (const { topic, partition } of read) this.resetPartition(topic, partition, 'the cluster was recreated');
        // A topic not back yet has no start: the new group reads it from its start when it is.
        for (const topic of new Set(read.map((p) => p.topic))) {
          for (const start of await this.resets.starts(admin, topic)) {
            if (read.some((p) => p.topic === topic && p.partition === start.partition)) this.seek(start);
          }
        }
        return;
      }
      for (const topic of new Set(this.ledger.partitions().map((p) => p.topic))) {
        // Taken before the broker is asked: see LogResets.shrunk.
        const intake = new Map<number, number>();
        for (const { partition } of this.ledger.partitions().filter((p) => p.topic === topic)) {
          const next = this.ledger.intake(topic, partition);
          if (next !== undefined) intake.set(partition, next);
        }
        for (const shrunk of await this.resets.shrunk(admin, topic, intake)) {
          this.resetPartition(topic, shrunk.partition, `its log now ends at offset ${shrunk.high}, below offset ${shrunk.intake} already read`);
          this.seek(shrunk);
        }
      }
    });
    return this.following;
  }

  /** Forgets what was taken in from a partition whose log started over; its queued records are of the old log. */
  private resetPartition(topic: string, partition: number, why: string): void {
    this.ledger.reset(topic, partition);
    this.queue.drop((r) => r.topic === topic && r.partition === partition);
    this.log.warn(`kafka: ${topic}[${partition}] is read again from its start: ${why}`);
    this.options.onPartitionReset?.(topic, partition);
  }

  /** Fetching goes back to the log's start (without committing it: commits follow what is done). */
  private seek({ topic, partition, low }: ResetPartition): void {
    try {
      this.consumer.seek({ topic, partition, offset: String(low) });
    } catch (error) {
      // Between runs: the rejoin fetches from the group's offsets, gone with a recreated cluster.
      this.log.debug(`kafka: could not seek ${topic}[${partition}] to ${low}: ${(error as Error).message}`);
    }
  }

  /**
   * A failed (re)subscription is retried while the failure is transient (a broker restarting
   * when a new topic appears must not stop a long-running daemon); then the source fails.
   */
  private async subscribe(topics: readonly string[]): Promise<void> {
    try {
      await retryTransient(`subscribing to ${topics.join(', ')}`, () => this.resubscribe(topics), OUTLAST_BROKER_RESTART, { log: this.log, stopped: () => this.finished });
    } catch (error) {
      const failure = new LifelongError(`kafka: could not subscribe to ${topics.join(', ')}: ${(error as Error).message}`, { cause: error });
      this.fail(failure);
      throw failure;
    }
  }

  /**
   * Stop, subscribe, run: kafkajs cannot subscribe while running. Before stopping, the samples
   * already yielded get up to drainTimeoutMs to be acknowledged and what is done is committed,
   * so the group's offsets are current when it rebalances. Queued records stay queued: after the
   * rejoin kafkajs fetches from the committed offsets and what is already in hand is skipped.
   */
  private async resubscribe(topics: readonly string[]): Promise<void> {
    try {
      if (this.consumerRunning) {
        this.draining = true;
        await this.changed.until(() => this.unacked === 0 || this.finished, this.options.drainTimeoutMs ?? KAFKA_SOURCE_DEFAULTS.drainTimeoutMs);
        await this.commits.commit();
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
    } finally {
      if (this.draining) {
        // Failed while draining: what is queued may be yielded while the next attempt waits.
        this.draining = false;
        this.changed.notify();
      }
    }
  }

  /**
   * kafkajs does not restart a consumer that crashed on an error it calls non-retriable, such as
   * no group coordinator (a recreated broker before its offsets topic exists): it is restarted
   * here, for as long as the broker stays away, with the topics it had.
   */
  private restartConsumer(error: Error): void {
    this.log.warn(`kafka consumer crashed (${error.message}); restarting it once the broker answers`);
    this.consumerRunning = false;
    const restart = async (): Promise<void> => {
      await this.consumer.connect();
      await this.resubscribe([...this.subscribed]);
    };
    retryTransient('restarting the consumer', restart, UNTIL_THE_BROKER_IS_BACK, { log: this.log, stopped: () => this.finished }).catch((failure: unknown) => {
      if (!this.finished) this.fail(new LifelongError(`kafka consumer crashed and could not restart: ${(failure as Error).message}`, { cause: failure }));
    });
  }

  /** Begins the next task when the current one is done with (see TaskTopics.advance). */
  private async advance(admin: Admin): Promise<void> {
    const begun = await this.topics.advance({
      hasUnread: (topic) => this.unread.hasUnread(admin, topic),
      queued: (topic) => this.queue.recordsOf(topic),
      stopped: () => this.finished,
    });
    if (begun === undefined) return;
    this.applyPauses();
    this.idle.start();
  }

  private endCurrent(): void {
    this.topics.endCurrent();
    this.idle.stop();
  }

  /** The current task was quiet for idleTaskMs: an end-of-task marker follows its queued records. */
  private onIdle(quietMs: number): void {
    const topic = this.topics.current;
    if (topic === undefined || this.finished) return;
    this.log.info(`kafka: task topic ${topic} idle for ${quietMs} ms: its task ends`);
    this.queue.push({ kind: 'marker', control: endOfTask(this.topics.taskOf(topic), 'idle') });
    this.endCurrent();
    this.changed.notify();
    this.discovery.request();
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
    this.discovery.stop();
    this.idle.stop();
    this.applyPauses();
    this.changed.notify();
  }

  private async shutdown(): Promise<void> {
    const timeoutMs = this.options.closeTimeoutMs ?? KAFKA_SOURCE_DEFAULTS.closeTimeoutMs;
    const deadline = Date.now() + timeoutMs;
    // Waiting for acknowledgements may not eat the time that flushing, committing and
    // disconnecting need: they keep the last part of the deadline.
    const reserveMs = Math.min(3000, timeoutMs / 2);
    const left = (): number => deadline - Date.now();
    this.finish();
    this.commits.cancelScheduled();
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
      await this.discovery.running;
    });
    const unackedBefore = this.unacked;
    const waitMs = Math.max(0, left() - reserveMs);
    const drained = await this.changed.until(() => this.unacked === 0, waitMs);
    if (!drained) problems.push(`${this.unacked} of ${unackedBefore} samples in hand were not acknowledged within ${Math.round(waitMs)} ms; their offsets stay uncommitted and they are delivered again`);
    await step('flushing predictions', () => this.connection.flush());
    await step('committing offsets', () => this.commits.commit());
    this.queue.clear();
    await step('disconnecting the consumer', () => this.consumer.disconnect());
    this.consumerRunning = false;
    if (this.ownsConnection) await step('disconnecting the producer and admin', () => this.connection.disconnect());
    // Retriable: nothing is lost, a later run is delivered again what was not committed.
    if (problems.length > 0) throw new LifelongError(`kafka source close: ${problems.join('; ')}`, { retriable: true });
  }
}
