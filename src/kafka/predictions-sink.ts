import type { KafkaMessage } from 'kafkajs';
import { TASK_AGNOSTIC, type Label, type Prediction, type TaskName } from '../core/types';
import type { SampleEvent, StepOutcome } from '../operators/events';
import type { StepSink } from '../operators/step-sink';
import { encodeJson } from './codec';
import { KafkaConnection, type KafkaClientOptions } from './connection';
import { DeadLetters } from './dead-letter';
import { isKafkaMessageRef, type KafkaMessageRef } from './message-ref';
import { KAFKA_SOURCE_DEFAULTS } from './source-options';

export interface KafkaPredictionSinkOptions {
  /** Where predictions go; '{topic}' is the input topic. */
  readonly predictionsTopic: string;
  /** The source's request topic, if any: its predictions answer task-agnostic requests. */
  readonly requestTopic?: string;
  /** Where the request topic's predictions go; default the template applied to the request topic. */
  readonly requestPredictionsTopic?: string;
  /** Where samples the strategy refused go. Default 'lifelong.dead-letter'. */
  readonly deadLetterTopic?: string;
  /** The record a sample was read from (KafkaSource.recordOf), copied to the dead letter as it came. */
  readonly recordOf?: (ref: KafkaMessageRef) => KafkaMessage | undefined;
}

/** The value of a prediction message (JSON). */
export interface PredictionMessage {
  readonly id: string | null;
  /** The sample's task; for a task-agnostic request, the task the model inferred (null if none). */
  readonly task: TaskName | null;
  /** Null when the model knows no class for the input yet; `reason` then says why. */
  readonly label: Label | null;
  /** Why `label` is null (Prediction.reason); absent when there is a label. */
  readonly reason?: string;
  readonly probabilities: Readonly<Record<Label, number>>;
  /**
   * The version of the model that answered: the trainer's model version, or on a prediction
   * replica the version of the snapshot it serves (0 before it has loaded any).
   */
  readonly modelVersion: number;
  /** Present where the strategy had to infer the task. */
  readonly inferredTask?: TaskName;
  /** The task router's confidence in inferredTask (0..1), where a router chose it. */
  readonly confidence?: number;
  readonly sourceTopic: string;
  readonly sourcePartition: number;
  readonly sourceOffset: string;
  /** ISO 8601, when the message was built. */
  readonly predictedAt: string;
}

/**
 * The prediction message answering one Kafka sample: built alike by the trainer's sink and by the
 * prediction replicas (`lifelong serve`), whose `modelVersion` is the snapshot's.
 */
export function predictionMessage(sample: { readonly task: TaskName; readonly id?: string }, prediction: Prediction, modelVersion: number, ref: KafkaMessageRef, predictedAt: string): PredictionMessage {
  const request = sample.task === TASK_AGNOSTIC;
  return {
    id: sample.id ?? null,
    task: request ? (prediction.inferredTask ?? null) : sample.task,
    label: prediction.label,
    ...(prediction.reason !== undefined ? { reason: prediction.reason } : {}),
    probabilities: prediction.probabilities,
    modelVersion,
    ...(prediction.inferredTask !== undefined ? { inferredTask: prediction.inferredTask } : {}),
    ...(prediction.confidence !== undefined ? { confidence: prediction.confidence } : {}),
    sourceTopic: ref.topic,
    sourcePartition: ref.partition,
    sourceOffset: ref.offset,
    predictedAt,
  };
}

/** The topic a prediction for a message of `sourceTopic` goes to. */
export function predictionsTopicFor(sourceTopic: string, options: KafkaPredictionSinkOptions): string {
  if (options.requestTopic && sourceTopic === options.requestTopic && options.requestPredictionsTopic) return options.requestPredictionsTopic;
  return options.predictionsTopic.split('{topic}').join(sourceTopic);
}

/**
 * Publishes the predictions of every sample planned 'predicted' that came from Kafka: one message
 * per sample, keyed like its input, one producer.sendBatch per step; and dead-letters every sample
 * the strategy refused (the step's rejections: label-capacity, non-finite-update...), with its
 * reason. The engine awaits publish() before acknowledging the step's samples, so an offset is
 * committed only once its prediction or dead letter is out.
 */
export class KafkaPredictionSink implements StepSink {
  private readonly options: KafkaPredictionSinkOptions;
  private readonly connection: KafkaConnection;
  private readonly ownsConnection: boolean;
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly deadLetters: DeadLetters;
  private closed: Promise<void> | undefined;

  /**
   * With a shared `connection` (connector.ts) the source disconnects it; without one the
   * sink makes its own from `client` and disconnects it on close.
   */
  constructor(options: KafkaPredictionSinkOptions, connection: KafkaConnection | KafkaClientOptions) {
    this.options = options;
    this.ownsConnection = !(connection instanceof KafkaConnection);
    this.connection = connection instanceof KafkaConnection ? connection : new KafkaConnection(connection);
    this.connection.onFlush(() => this.flush());
    this.deadLetters = new DeadLetters(options.deadLetterTopic ?? KAFKA_SOURCE_DEFAULTS.deadLetterTopic, this.connection, () => this.closed !== undefined);
  }

  async publish(outcome: StepOutcome): Promise<void> {
    const byTopic = new Map<string, { key: Buffer | null; value: string }[]>();
    const predictedAt = new Date().toISOString();
    outcome.plan.forEach((kind, i) => {
      const event = outcome.samples[i];
      const prediction = outcome.predictions[i];
      if (kind !== 'predicted' || event === undefined || prediction === undefined) return;
      const ref = event.sample.ref;
      if (!isKafkaMessageRef(ref)) return;
      const value = predictionMessage({ task: event.task.name, ...(event.sample.id !== undefined ? { id: event.sample.id } : {}) }, prediction, outcome.modelVersion, ref, predictedAt);
      const topic = predictionsTopicFor(ref.topic, this.options);
      let messages = byTopic.get(topic);
      if (messages === undefined) byTopic.set(topic, (messages = []));
      messages.push({ key: ref.key, value: JSON.stringify(value) });
    });
    const refused = this.refusedLetters(outcome);
    if (byTopic.size === 0 && refused.length === 0) return;
    const predictions = async () => {
      if (byTopic.size === 0) return;
      await Promise.all([...byTopic.keys()].map((topic) => this.connection.ensureTopic(topic)));
      const producer = await this.connection.producer();
      await producer.sendBatch({ topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) });
    };
    const send = Promise.all([predictions(), ...refused.map((letter) => letter())]);
    this.inFlight.add(send);
    try {
      await send;
    } finally {
      this.inFlight.delete(send);
    }
  }

  /** A dead letter to send for each Kafka sample of the step the strategy refused. */
  private refusedLetters(outcome: StepOutcome): (() => Promise<void>)[] {
    const letters: (() => Promise<void>)[] = [];
    outcome.rejections?.forEach((rejection, i) => {
      const event = outcome.samples[i];
      const ref = event?.sample.ref;
      if (rejection === undefined || !isKafkaMessageRef(ref)) return;
      const message = this.options.recordOf?.(ref) ?? recordFrom(event as SampleEvent, ref);
      letters.push(() => this.deadLetters.send(message, rejection.reason, rejection.detail, ref));
    });
    return letters;
  }

  /** Resolves once every publish begun so far has settled. */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }

  /** Flushes; disconnects the connection only if the sink made it. Safe to call twice. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      await this.flush();
      if (this.ownsConnection) await this.connection.disconnect();
    })();
    return this.closed;
  }
}

/** A record rebuilt from a sample, where its original is not at hand (a sink used without its source). */
function recordFrom({ sample }: SampleEvent, ref: KafkaMessageRef): KafkaMessage {
  const { value, headers } = encodeJson(sample);
  return { key: ref.key, value, headers, offset: ref.offset, timestamp: String(Date.now()), attributes: 0 } as KafkaMessage;
}
