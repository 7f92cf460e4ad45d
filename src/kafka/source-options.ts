import type { ConsumerConfig } from 'kafkajs';
import type { TaskFrom } from '../core/sample-limits';
import type { KafkaClientOptions } from './connection';
import type { TaskTopicRules } from './task-topics';

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
  /** Records with a feature beyond ±this are dead-lettered. Default DEFAULT_MAX_ABS_FEATURE (1e6). */
  readonly maxAbsFeature?: number;
  /** Whether a lifelong-task header may name the task ('header') or the topic alone does ('topic', the default). */
  readonly taskFrom?: TaskFrom;
  /** Default 'lifelong.dead-letter'. */
  readonly deadLetterTopic?: string;
  /** Where predictions go; '{topic}' is the input topic. Default '{topic}.predictions'. */
  readonly predictionsTopic?: string;
  /** Task-agnostic prediction requests; '' or absent for none. */
  readonly requestTopic?: string;
  /** Where the request topic's predictions go; default the predictions template applied to it. */
  readonly requestPredictionsTopic?: string;
  /**
   * Whether this daemon answers prediction requests (default true). False while prediction
   * replicas serve them (pipeline `serving: 'replicas'`): the request topic is not read, and the
   * unlabelled samples of task topics are passed over (done, never yielded), so no request is
   * answered twice.
   */
  readonly answerRequests?: boolean;
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
  /**
   * Called when a partition's log started over and is read again from its start (a recreated
   * topic or broker; log-resets.ts): lifelong_kafka_partition_resets_total counts them.
   */
  readonly onPartitionReset?: (topic: string, partition: number) => void;
  /**
   * Called with a topic's consumer lag (consumer-lag.ts) each time the discovery poll learns its
   * log ends: lifelong_kafka_consumer_lag shows it.
   */
  readonly onConsumerLag?: (topic: string, messages: number) => void;
  /** close() waits at most this long for acknowledgements, the sink's flush, the commit and disconnects, ms. Default 10000. */
  readonly closeTimeoutMs?: number;
}

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

/** Which topics are tasks, and which are around them, for these options (task-topics.ts). */
export function taskTopicRules(options: KafkaSourceOptions): TaskTopicRules {
  return {
    topicPattern: options.topicPattern,
    deadLetterTopic: options.deadLetterTopic ?? KAFKA_SOURCE_DEFAULTS.deadLetterTopic,
    predictionsTopic: options.predictionsTopic ?? KAFKA_SOURCE_DEFAULTS.predictionsTopic,
    requestTopic: options.requestTopic ? options.requestTopic : undefined,
    requestPredictionsTopic: options.requestPredictionsTopic,
  };
}

/** The kafkajs consumer of the group that reads these options' topics (the trainer's source, the replicas' request consumer). */
export function groupConsumerConfig(options: KafkaSourceOptions): ConsumerConfig {
  return {
    groupId: options.groupId,
    ...(options.sessionTimeoutMs !== undefined ? { sessionTimeout: options.sessionTimeoutMs } : {}),
    ...(options.heartbeatIntervalMs !== undefined ? { heartbeatInterval: options.heartbeatIntervalMs } : {}),
    maxWaitTimeInMs: options.maxWaitTimeMs ?? KAFKA_SOURCE_DEFAULTS.maxWaitTimeMs,
    // Only topics seen in the topic list are subscribed: never create one by reading it.
    allowAutoTopicCreation: false,
  };
}
