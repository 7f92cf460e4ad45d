/**
 * The Kafka package: what the engine wiring (engine/create-source.ts), `lifelong produce`, the
 * benchmarks and tests use. The rest of src/kafka/ is how the source works inside.
 */
export * from './codec';
export { kafkaConfig, KafkaConnection, type KafkaClientOptions } from './connection';
export { createKafkaConnector, type KafkaConnector } from './connector';
export { createTopics } from './create-topics';
export type { DeadLetterReason } from './dead-letter';
export { isKafkaMessageRef, type KafkaMessageRef } from './message-ref';
export { KafkaPredictionSink, predictionsTopicFor, type KafkaPredictionSinkOptions, type PredictionMessage } from './predictions-sink';
export { KafkaSource } from './source';
export { KAFKA_SOURCE_DEFAULTS, type KafkaSourceOptions } from './source-options';
