import type { Consumer } from 'kafkajs';
import type { Logger } from '../core/log';
import type { OffsetLedger } from './partition-progress';

/**
 * Commits what the ledger says is done: at most every `intervalMs` (0: at every schedule()), one
 * commit at a time, a request during one running another after it. Commits only while the
 * consumer runs: kafkajs' commitOffsets silently does nothing otherwise.
 */
export class OffsetCommits {
  private timer: NodeJS.Timeout | undefined;
  private committing: Promise<void> | undefined;
  private again = false;

  constructor(
    private readonly ledger: OffsetLedger,
    private readonly consumer: Consumer,
    private readonly intervalMs: number,
    private readonly consumerRunning: () => boolean,
    private readonly log: Logger,
  ) {}

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
    const offsets = this.ledger.toCommit();
    if (offsets.length === 0) return;
    try {
      await this.consumer.commitOffsets(offsets);
    } catch (error) {
      // Left for the next commit: the offsets only grow.
      this.log.warn(`kafka: offset commit failed, retried with the next one: ${(error as Error).message}`);
    }
  }
}
