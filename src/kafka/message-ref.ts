/** The `ref` of a sample read from Kafka: where to commit and what the predictions sink echoes. */
export interface KafkaMessageRef {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: Buffer | null;
}

/** True for the `ref` of a sample the Kafka source read. */
export function isKafkaMessageRef(ref: unknown): ref is KafkaMessageRef {
  if (typeof ref !== 'object' || ref === null) return false;
  const r = ref as Partial<KafkaMessageRef>;
  return typeof r.topic === 'string' && typeof r.partition === 'number' && typeof r.offset === 'string' && (r.key === null || Buffer.isBuffer(r.key));
}
