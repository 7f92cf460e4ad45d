import { KafkaConnection } from './connection';
import { KafkaPredictionSink } from './predictions-sink';
import { KafkaSource } from './source';
import { KAFKA_SOURCE_DEFAULTS, type KafkaSourceOptions } from './source-options';

/** A Kafka source and its predictions sink on one connection (one producer for predictions and dead letters). */
export interface KafkaConnector {
  readonly source: KafkaSource;
  readonly sink: KafkaPredictionSink;
  readonly connection: KafkaConnection;
}

/**
 * Builds the source and the predictions sink sharing one connection. The source owns it: its
 * close() flushes the sink, commits, then disconnects consumer, producer and admin, in that
 * order. sink.close() only flushes, so the two may be closed in either order.
 */
export function createKafkaConnector(options: KafkaSourceOptions): KafkaConnector {
  const connection = new KafkaConnection(options);
  const source = new KafkaSource(options, connection, true);
  const sink = new KafkaPredictionSink(
    {
      predictionsTopic: options.predictionsTopic ?? KAFKA_SOURCE_DEFAULTS.predictionsTopic,
      ...(options.requestTopic ? { requestTopic: options.requestTopic } : {}),
      ...(options.requestPredictionsTopic ? { requestPredictionsTopic: options.requestPredictionsTopic } : {}),
      deadLetterTopic: options.deadLetterTopic ?? KAFKA_SOURCE_DEFAULTS.deadLetterTopic,
      recordOf: (ref) => source.recordOf(ref),
    },
    connection,
  );
  return { source, sink, connection };
}
