import type { Admin } from 'kafkajs';
import type { Logger } from '../core/log';
import type { LogEnd } from './consumer-lag';

/** A partition whose log starts over: read it again from `low`. */
export interface ResetPartition {
  readonly topic: string;
  readonly partition: number;
  /** The log's first offset now. */
  readonly low: number;
}

/**
 * Finds the partitions whose log started over below what this consumer took in: the topic was
 * deleted and created again, or the broker was wiped and a new one answers at the same address.
 *
 * kafkajs 2.2.4 speaks Metadata v6, and topic ids came with v10, so a recreated topic cannot be
 * told by its id. Two signs are used instead:
 * - the cluster id (Metadata v2+) changes when a broker's data dir is wiped and formatted again:
 *   then every partition starts over, however many records the new logs already hold;
 * - a log that now ends below the intake position (a deleted topic created again with fewer
 *   records than were read). A topic recreated on the same cluster that already holds more records
 *   than were read looks like the old one; its first records are then missed (README "Kafka
 *   topics and brokers that start over").
 */
export class LogResets {
  private clusterId: string | undefined;

  constructor(
    private readonly log: Logger,
    /** Sees every answer about a topic's log ends (the consumer lag is measured from them: no request of its own). */
    private readonly onLogEnds: (topic: string, ends: readonly LogEnd[]) => void = () => undefined,
  ) {}

  /**
   * True when the cluster answering is another than the one seen before (the first call only
   * remembers it). A failed request is no answer: false, and the next call asks again.
   */
  async clusterChanged(admin: Admin): Promise<boolean> {
    let clusterId: string;
    try {
      ({ clusterId } = await admin.describeCluster());
    } catch (error) {
      this.log.debug(`kafka: cluster id not available: ${(error as Error).message}`);
      return false;
    }
    const before = this.clusterId;
    this.clusterId = clusterId;
    if (before === undefined || before === clusterId) return false;
    this.log.warn(`kafka: the cluster id changed from ${before} to ${clusterId} (a broker wiped and recreated): every topic is read again from its start`);
    return true;
  }

  /**
   * Partitions of `topic` whose log now ends below `intake` (what was taken in from each partition,
   * read before the log ends are asked for). The order matters: records keep arriving while the
   * broker answers, so an intake read after its answer can be past a log end that was current
   * when it was measured, and a live topic would look recreated.
   */
  async shrunk(admin: Admin, topic: string, intake: ReadonlyMap<number, number>): Promise<(ResetPartition & { readonly high: number; readonly intake: number })[]> {
    const before = new Map(intake);
    const ends = await this.offsetsOf(admin, topic);
    return ends.flatMap((end) => {
      const next = before.get(end.partition);
      return next !== undefined && end.high < next ? [{ ...end, intake: next }] : [];
    });
  }

  /** Where each partition of `topic` begins; none for a topic that does not exist (yet). */
  async starts(admin: Admin, topic: string): Promise<ResetPartition[]> {
    return this.offsetsOf(admin, topic);
  }

  private async offsetsOf(admin: Admin, topic: string): Promise<(ResetPartition & { high: number })[]> {
    try {
      const ends = (await admin.fetchTopicOffsets(topic)).map((end) => ({ topic, partition: end.partition, low: Number(end.low), high: Number(end.high) }));
      this.onLogEnds(topic, ends);
      return ends;
    } catch (error) {
      this.log.debug(`kafka: offsets of ${topic} not available: ${(error as Error).message}`);
      return [];
    }
  }
}
