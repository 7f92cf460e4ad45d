import type { KafkaSourceConfig, Serving, SourceConfig } from '../config/pipeline-config';
import { silentLogger, type Logger } from '../core/log';
import type { LifelongMetrics } from '../metrics/prometheus';
import type { Scenario } from '../core/types';
import type { StepSink } from '../operators/step-sink';
import { createEmbeddedSource, type EmbeddedSource } from '../sources/embedded';
import { createKafkaConnector, type KafkaSourceOptions } from '../kafka';
import type { Source } from '../operators/source';

/** A source, the output units its stream needs where it knows (0 = unknown), and its sink if any. */
export interface CreatedSource {
  readonly source: Source;
  readonly outputUnits: number;
  /** Where predictions go before samples are acknowledged (Kafka's predictions topics). */
  readonly sink?: StepSink;
}

/** Builds the source a pipeline names. One place to add a source type. `metrics` counts what only the source sees. */
export function createSource(config: SourceConfig, scenario: Scenario, seed: number, log: Logger = silentLogger, metrics?: LifelongMetrics, serving: Serving = 'trainer'): CreatedSource {
  switch (config.type) {
    case 'split-mnist':
    case 'permuted-mnist':
    case 'rotated-mnist': {
      const source: EmbeddedSource = createEmbeddedSource({
        dataset: config.type,
        tasks: config.tasks,
        samplesPerTask: config.samplesPerTask,
        ...(config.type === 'rotated-mnist' && config.angles.length > 0 ? { angles: config.angles } : {}),
        seed,
        scenario,
      });
      return { source, outputUnits: source.outputUnits };
    }
    case 'kafka': {
      const { source, sink } = createKafkaConnector(kafkaSourceOptions(config, log, metrics, serving));
      return { source, outputUnits: 0, sink };
    }
  }
}

/**
 * The Kafka client and source options of a pipeline's source section: the trainer's source and the
 * prediction replicas' request consumer read the same topics alike. `serving: 'replicas'`: this
 * daemon answers no request (the replicas do).
 */
export function kafkaSourceOptions(config: KafkaSourceConfig, log: Logger, metrics?: LifelongMetrics, serving: Serving = 'trainer'): KafkaSourceOptions {
  return {
    brokers: config.brokers,
    clientId: config.clientId,
    groupId: config.groupId,
    topicPattern: config.topicPattern,
    topicDiscoveryMs: config.topicDiscoveryMs,
    inputSize: config.inputSize,
    maxMessageBytes: config.maxMessageBytes,
    maxAbsFeature: config.maxAbsFeature,
    taskFrom: config.taskFrom,
    deadLetterTopic: config.deadLetterTopic,
    predictionsTopic: config.predictionsTopic,
    requestTopic: config.requestTopic,
    idleTaskMs: config.idleTaskMs,
    fromBeginning: config.fromBeginning,
    ssl: config.ssl,
    sasl: config.sasl,
    closeTimeoutMs: config.shutdownTimeoutMs,
    maxWaitTimeMs: config.maxWaitTimeMs,
    maxQueued: config.maxQueued,
    commitIntervalMs: config.commitIntervalMs,
    ...(config.sessionTimeoutMs !== undefined ? { sessionTimeoutMs: config.sessionTimeoutMs, heartbeatIntervalMs: Math.min(3000, Math.floor(config.sessionTimeoutMs / 3)) } : {}),
    ...(metrics ? { onPartitionReset: (topic: string) => metrics.countPartitionReset(topic), onConsumerLag: (topic: string, messages: number) => metrics.setConsumerLag(topic, messages) } : {}),
    log,
    ...(serving === 'replicas' ? { answerRequests: false } : {}),
  };
}
