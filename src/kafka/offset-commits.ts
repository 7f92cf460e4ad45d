import type { Consumer } from 'kafkajs';
import type { Logger } from '../core/log';
import type { SourcePositions } from '../operators/checkpoints';
import type { OffsetLedger, TopicPartitionOffset } from './partition-progress';

/**
 * Commits what the ledger says is done: at most every `intervalMs` (0: at every schedule()), one
 * commit at a time, a request during one running another after it. Commits only while the
 * consumer runs: kafkajs' commitOffsets silently does nothing otherwise.
 *
 * Following checkpoints (followCheckpoints()), a partition is committed only up to what the
 * newest durable checkpoint covers (allowUpTo()), and not at all before one covers it.
 */
export class OffsetCommits {
  private timer: NodeJS.Timeout | undefined;
  private committing: Promise<void> | undefined;
  private again = false;
  /** Per "topic/partition", the highest offset a durable checkpoint covers; undefined: no limit. */
  private ceiling: Map<string, number> | undefined;

  constructor(
    private readonly ledger: OffsetLedger,
    private readonly consumer: Consumer,
    private readonly intervalMs: number,
    private readonly consumerRunning: () => boolean,
    private readonly log: Logger,
  ) {}

  /** From now on, commit nothing a durable checkpoint does not cover. */
  followCheckpoints(): void {
    this.ceiling ??= new Map();
  }

  /** A durable checkpoint covers `positions`: commits may reach them (they only grow). */
  allowUpTo(positions: SourcePositions): void {
    this.ceiling ??= new Map();
    for (const [key, offset] of Object.entries(positions)) this.ceiling.set(key, Math.max(this.ceiling.get(key) ?? 0, offset));
  }

  /** A commit soon (now, without an interval). */
  schedule(): Promise<void> {
    if (this.intervalMs <= 0) return this.commit();
    if (this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.commit();
      }, this.intervalMs);
      this.timer.unref();
    }
    return Promise.resolve();
  }

  /** Drops a scheduled commit (closing commits itself). */
  cancelScheduled(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Commits, per partition, the lowest offset not yet done. Never rejects. */
  commit(): Promise<void> {
    if (this.committing) {
      this.again = true;
      return this.committing;
    }
    this.committing = (async () => {
      do {
        this.again = false;
        await this.commitOnce();
      } while (this.again);
    })().finally(() => {
      this.committing = undefined;
    });
    return this.committing;
  }

  private async commitOnce(): Promise<void> {
    if (!this.consumerRunning()) return;
    const offsets = this.capped(this.ledger.toCommit());
    if (offsets.length === 0) return;
    try {
      await this.consumer.commitOffsets(offsets);
    } catch (error) {
      // Left for the next commit: the offsets only grow.
      this.log.warn(`kafka: offset commit failed, retried with the next one: ${(error as Error).message}`);
    }
  }

  private capped(offsets: TopicPartitionOffset[]): TopicPartitionOffset[] {
    const ceiling = this.ceiling;
    if (ceiling === undefined) return offsets;
    const out: TopicPartitionOffset[] = [];
    for (const { topic, partition, offset } of offsets) {
      const limit = ceiling.get(`${topic}/${partition}`);
      if (limit === undefined) continue;
      const value = Math.min(Number(offset), limit);
      const committed = this.ledger.partition(topic, partition).committed;
      if (committed === undefined || value > committed) out.push({ topic, partition, offset: String(value) });
    }
    return out;
  }
}
