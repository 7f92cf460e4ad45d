/** Where a partition's log ends now. */
export interface LogEnd {
  readonly partition: number;
  /** The high watermark: the offset the next record will get. */
  readonly high: number;
}

/**
 * Messages of a topic not yet processed: per partition this consumer reads, its log end minus the
 * lowest offset not done (what would be committed), summed. Partitions it has not read from (another
 * member's, or not fetched yet) are left out; undefined when it reads none of them.
 */
export function consumerLag(ends: readonly LogEnd[], notDone: (partition: number) => number | undefined): number | undefined {
  let lag: number | undefined;
  for (const { partition, high } of ends) {
    const position = notDone(partition);
    if (position === undefined) continue;
    lag = (lag ?? 0) + Math.max(0, high - position);
  }
  return lag;
}
