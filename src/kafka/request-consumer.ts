/**
 * The consumer of a prediction replica (`lifelong serve`): reads the request topic in the replicas'
 * own consumer group and every task topic in `<group>.tasks` (taskGroupId), so Kafka spreads their
 * partitions over the replicas, and answers each unlabelled sample on `<topic>.predictions` as the
 * trainer would. Labelled samples and end-of-task markers are the trainer's and are skipped. A
 * malformed record on the request topic is dead-lettered here (the trainer does not read that topic
 * while replicas serve); one on a task topic is left to the trainer, which reads it anyway, so it is
 * dead-lettered once.
 *
 * Offsets: a batch's predictions and dead letters are produced before its offsets are resolved,
 * and kafkajs commits resolved offsets after each batch: at least once, as the trainer.
 *
 * Two consumers, in two groups: kafkajs adds a topic to a running consumer only by stopping it
 * (it leaves its group) and running it again (it rejoins), and every member of the group has to
 * rejoin too. With the request topic in the task topics' consumer, each new task topic stopped
 * the requests of every replica for those two rebalances (0.2-3 s measured in the kafka-serve
 * test, up to a heartbeat interval), right when a task begins and a new model is on its way. The
 * request topic's consumer is subscribed once, and no task topic disturbs its group.
 */
import type { Consumer, EachBatchPayload } from 'kafkajs';
import { LifelongError } from '../core/errors';
import { silentLogger, type Logger } from '../core/log';
import { TASK_AGNOSTIC, type Prediction, type TaskName } from '../core/types';
import { decodeMessage } from './codec';
import type { KafkaConnection } from './connection';
import { DeadLetters, type DeadLetterReason } from './dead-letter';
import { DiscoveryPoll } from './discovery-poll';
import type { KafkaMessageRef } from './message-ref';
import { predictionMessage, predictionsTopicFor } from './predictions-sink';
import { OUTLAST_BROKER_RESTART, retryTransient } from './retry';
import { groupConsumerConfig, KAFKA_SOURCE_DEFAULTS, taskTopicRules, type KafkaSourceOptions } from './source-options';
import { TaskTopics } from './task-topics';

/** One unlabelled sample to answer; `task` is TASK_AGNOSTIC for the request topic's. */
export interface PredictionRequest {
  readonly task: TaskName;
  readonly x: Float32Array;
  readonly id?: string;
  readonly ref: KafkaMessageRef;
}

/** A replica's answers to one batch of requests, in their order, and the version of the model that gave them. */
export interface Answers {
  readonly predictions: readonly Prediction[];
  readonly modelVersion: number;
}

export interface RequestHandlers {
  readonly answer: (requests: readonly PredictionRequest[]) => Promise<Answers>;
  /** Called once a batch's answers are out. */
  readonly onAnswered?: (requests: number, modelVersion: number) => void;
  readonly onRejected?: (reason: DeadLetterReason, detail: string) => void;
}

/** The replicas' group on the task topics, beside `groupId` on the request topic (see the file's comment). */
export function taskGroupId(groupId: string): string {
  return `${groupId}.tasks`;
}

export class KafkaRequestConsumer {
  private readonly options: KafkaSourceOptions;
  private readonly handlers: RequestHandlers;
  private readonly log: Logger;
  private readonly requestConsumer: Consumer;
  private readonly taskConsumer: Consumer;
  private readonly topics: TaskTopics;
  private readonly requestTopic: string | undefined;
  private readonly deadLetters: DeadLetters;
  private readonly discovery: DiscoveryPoll;
  private readonly subscribed = new Set<string>();
  private readonly running = new Set<Consumer>();
  private finished = false;
  private closed: Promise<void> | undefined;

  constructor(options: KafkaSourceOptions, handlers: RequestHandlers, private readonly connection: KafkaConnection) {
    this.options = options;
    this.handlers = handlers;
    this.log = options.log ?? silentLogger;
    this.requestTopic = options.requestTopic ? options.requestTopic : undefined;
    this.topics = new TaskTopics(taskTopicRules(options), this.log);
    this.requestConsumer = connection.kafka.consumer(groupConsumerConfig(options));
    this.taskConsumer = connection.kafka.consumer(groupConsumerConfig({ ...options, groupId: taskGroupId(options.groupId) }));
    this.deadLetters = new DeadLetters(options.deadLetterTopic ?? KAFKA_SOURCE_DEFAULTS.deadLetterTopic, connection, () => this.finished);
    this.discovery = new DiscoveryPoll(
      options.topicDiscoveryMs ?? KAFKA_SOURCE_DEFAULTS.topicDiscoveryMs,
      () => this.subscribeNewTopics(),
      () => this.finished,
      () => false,
      this.log,
    );
  }

  /** Connects and subscribes to the request and task topics there are; new ones are picked up by polling. */
  async start(): Promise<void> {
    await Promise.all([this.requestConsumer.connect(), this.taskConsumer.connect()]);
    await this.discovery.run();
  }

  /** Stops after the batch in hand (its answers out, its offsets committed); safe to call twice. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.finished = true;
      this.discovery.stop();
      await this.discovery.running?.catch(() => undefined);
      try {
        await Promise.all([this.requestConsumer.disconnect(), this.taskConsumer.disconnect()]);
      } catch (error) {
        throw new LifelongError(`kafka: the request consumer did not disconnect: ${(error as Error).message}`, { cause: error });
      }
    })();
    return this.closed;
  }

  private async subscribeNewTopics(): Promise<void> {
    const admin = await this.connection.admin();
    const names = await admin.listTopics();
    const fresh = names.filter((t) => !this.subscribed.has(t) && (t === this.requestTopic || this.topics.isTaskTopic(t))).sort();
    if (fresh.length === 0 || this.finished) return;
    const requests = fresh.filter((t) => t === this.requestTopic);
    const tasks = fresh.filter((t) => t !== this.requestTopic);
    if (requests.length > 0) await this.subscribe(this.requestConsumer, requests);
    if (tasks.length > 0) await this.subscribe(this.taskConsumer, tasks);
    this.log.info(`serving requests from ${fresh.join(', ')}`);
  }

  private async subscribe(consumer: Consumer, topics: readonly string[]): Promise<void> {
    await retryTransient(
      `subscribing to ${topics.join(', ')}`,
      async () => {
        // kafkajs cannot subscribe while running: stop (after the batch in hand), subscribe, run.
        if (this.running.has(consumer)) await consumer.stop();
        this.running.delete(consumer);
        if (this.finished) return;
        await consumer.subscribe({ topics: [...topics], fromBeginning: this.options.fromBeginning ?? KAFKA_SOURCE_DEFAULTS.fromBeginning });
        for (const topic of topics) this.subscribed.add(topic);
        await consumer.run({ eachBatchAutoResolve: false, partitionsConsumedConcurrently: 1, eachBatch: (payload) => this.onBatch(payload) });
        this.running.add(consumer);
      },
      OUTLAST_BROKER_RESTART,
      { log: this.log, stopped: () => this.finished },
    );
  }

  private async onBatch({ batch, resolveOffset, heartbeat }: EachBatchPayload): Promise<void> {
    const { topic, partition } = batch;
    const isRequest = topic === this.requestTopic;
    const requests: PredictionRequest[] = [];
    const letters: Promise<void>[] = [];
    const deadLetter = (message: (typeof batch.messages)[number], reason: DeadLetterReason, detail: string) => {
      this.handlers.onRejected?.(reason, detail);
      letters.push(this.deadLetters.send(message, reason, detail, { topic, partition, offset: message.offset }));
    };
    for (const message of batch.messages) {
      const decoded = decodeMessage(message, {
        topic,
        inputSize: this.options.inputSize,
        maxBytes: this.options.maxMessageBytes ?? KAFKA_SOURCE_DEFAULTS.maxMessageBytes,
        ...(this.options.maxAbsFeature !== undefined ? { maxAbsFeature: this.options.maxAbsFeature } : {}),
        ...(this.options.taskFrom !== undefined ? { taskFrom: this.options.taskFrom } : {}),
      });
      if (decoded.kind === 'sample' && decoded.sample.y === undefined) {
        const { x, id } = decoded.sample;
        requests.push({ task: isRequest ? TASK_AGNOSTIC : decoded.sample.task, x, ...(id !== undefined ? { id } : {}), ref: { topic, partition, offset: message.offset, key: message.key } });
      } else if (!isRequest) {
        // Labelled samples, end-of-task markers and malformed records of task topics: the trainer's.
      } else if (decoded.kind === 'sample') {
        deadLetter(message, 'labelled-request', `a message on the request topic ${topic} carries a label, but requests are unlabelled: send labelled samples to a task topic`);
      } else if (decoded.kind === 'control') {
        deadLetter(message, 'bad-control', `control messages end tasks on task topics; ${topic} is the request topic`);
      } else {
        deadLetter(message, decoded.reason, decoded.detail);
      }
    }
    await Promise.all([requests.length > 0 ? this.publish(requests) : undefined, ...letters]);
    resolveOffset(batch.lastOffset());
    await heartbeat();
  }

  private async publish(requests: readonly PredictionRequest[]): Promise<void> {
    const { predictions, modelVersion } = await this.handlers.answer(requests);
    const predictedAt = new Date().toISOString();
    const byTopic = new Map<string, { key: Buffer | null; value: string }[]>();
    requests.forEach((request, i) => {
      const prediction = predictions[i];
      if (prediction === undefined) throw new LifelongError(`a replica answered ${predictions.length} of ${requests.length} requests`);
      const topic = predictionsTopicFor(request.ref.topic, {
        predictionsTopic: this.options.predictionsTopic ?? KAFKA_SOURCE_DEFAULTS.predictionsTopic,
        ...(this.requestTopic ? { requestTopic: this.requestTopic } : {}),
        ...(this.options.requestPredictionsTopic ? { requestPredictionsTopic: this.options.requestPredictionsTopic } : {}),
      });
      let messages = byTopic.get(topic);
      if (messages === undefined) byTopic.set(topic, (messages = []));
      messages.push({ key: request.ref.key, value: JSON.stringify(predictionMessage(request, prediction, modelVersion, request.ref, predictedAt)) });
    });
    await Promise.all([...byTopic.keys()].map((topic) => this.connection.ensureTopic(topic)));
    const producer = await this.connection.producer();
    await producer.sendBatch({ topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) });
    this.handlers.onAnswered?.(requests.length, modelVersion);
  }
}
