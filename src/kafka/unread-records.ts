import type { Admin } from 'kafkajs';
import type { Logger } from '../core/log';

/**
 * Whether a topic holds records after the position reading would start from: this consumer's
 * intake where it has one, else the group's committed offset, else the log start (from the
 * beginning) or the end seen when the topic was first checked.
 */
export class UnreadRecords {
  /** Where reading starts on a partition without a committed offset, when not from the beginning. */
  private readonly baseline = new Map<string, Map<number, number>>();

  constructor(
    private readonly groupId: string,
    private readonly fromBeginning: boolean,
    /** Offset after the last record this consumer took in from a partition, if any. */
    private readonly intake: (topic: string, partition: number) => number | undefined,
    private readonly log: Logger,
  ) {}

  async hasUnread(admin: Admin, topic: string): Promise<boolean> {
    let ends;
    let committed;
    try {
      [ends, committed] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId: this.groupId, topics: [topic] })]);
    } catch (error) {
      // A topic created a moment ago may not have a leader yet.
      this.log.debug(`kafka: offsets of ${topic} not available yet: ${(error as Error).message}`);
      return false;
    }
    const committedOf = new Map<number, number>();
    for (const t of committed) for (const p of t.partitions) committedOf.set(p.partition, Number(p.offset));
    let baseline = this.baseline.get(topic);
    if (!this.fromBeginning && baseline === undefined) {
      this.baseline.set(topic, (baseline = new Map(ends.map((e) => [e.partition, Number(e.high)]))));
    }
    return ends.some((end) => {
      const high = Number(end.high);
      const low = Number(end.low);
      const intake = this.intake(topic, end.partition);
      const group = committedOf.get(end.partition) ?? -1;
      const start = intake ?? (group >= 0 ? group : this.fromBeginning ? low : (baseline?.get(end.partition) ?? high));
      return high > Math.max(start, low);
    });
  }
}
