/**
 * The offset ledger: per partition, which records are in hand and which are done, and so the
 * offset to commit, the lowest not done (everything below it is done). A restart with the same
 * group is then re-delivered exactly the records whose processing had not finished. No kafkajs
 * here: it is unit-tested without a broker.
 */

/**
 * Where a partition stands: which records are in hand and which are done. Offsets are numbers
 * (exact up to 2^53, far beyond any real partition).
 */
export class PartitionProgress {
  /** Offset after the last record taken in: records below it are in hand or done. */
  next: number | undefined;
  /** What the group has committed for this partition, as far as this consumer knows. */
  committed: number | undefined;
  /** Offsets taken in and not yet done, ascending, from `head`. */
  private open: number[] = [];
  private head = 0;
  /** Done offsets still above the lowest open one. */
  private readonly doneAhead = new Set<number>();

  /** A record is in hand; offsets are taken in ascending order. */
  take(offset: number): void {
    this.open.push(offset);
    this.next = offset + 1;
  }

  /** Moves the intake past offsets that carry no user record (transaction markers). */
  skipTo(next: number): void {
    if (this.next === undefined || next > this.next) this.next = next;
  }

  /** A record in hand is done; anything else (unknown, already done) is ignored. */
  finish(offset: number): void {
    if (!this.isOpen(offset)) return;
    this.doneAhead.add(offset);
    while (this.head < this.open.length && this.doneAhead.delete(this.open[this.head] as number)) this.head++;
    if (this.head > 1024 && this.head * 2 > this.open.length) {
      this.open = this.open.slice(this.head);
      this.head = 0;
    }
  }

  /** The offset to commit: the lowest not done, else the intake position. */
  commitValue(): number | undefined {
    return this.head < this.open.length ? this.open[this.head] : this.next;
  }

  private isOpen(offset: number): boolean {
    let lo = this.head;
    let hi = this.open.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const at = this.open[mid] as number;
      if (at === offset) return !this.doneAhead.has(offset);
      if (at < offset) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }
}

/** An offset to commit, in kafkajs' form. */
export interface TopicPartitionOffset {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

/** The progress of every partition this consumer has taken records from. */
export class OffsetLedger {
  private readonly progress = new Map<string, Map<number, PartitionProgress>>();

  /** The partition's progress, made on first use (a batch of it arrived). */
  partition(topic: string, partition: number): PartitionProgress {
    let partitions = this.progress.get(topic);
    if (partitions === undefined) this.progress.set(topic, (partitions = new Map()));
    let progress = partitions.get(partition);
    if (progress === undefined) partitions.set(partition, (progress = new PartitionProgress()));
    return progress;
  }

  /** The partition's progress if it has one (records were taken from it). */
  progressOf(topic: string, partition: number): PartitionProgress | undefined {
    return this.progress.get(topic)?.get(partition);
  }

  /**
   * The partition's log started over (a recreated topic or broker): its progress is forgotten,
   * so its records are taken in again from wherever fetching restarts. Acknowledgements of records
   * in hand from before go to the forgotten progress, which holds them (see KafkaSource.acknowledge).
   */
  reset(topic: string, partition: number): void {
    this.progress.get(topic)?.delete(partition);
  }

  /** The partitions records were taken from. */
  partitions(): { topic: string; partition: number }[] {
    return [...this.progress].flatMap(([topic, partitions]) => [...partitions.keys()].map((partition) => ({ topic, partition })));
  }

  /** Offset after the last record taken in from the partition; undefined before any. */
  intake(topic: string, partition: number): number | undefined {
    return this.progress.get(topic)?.get(partition)?.next;
  }

  finish(topic: string, partition: number, offset: number): void {
    this.progress.get(topic)?.get(partition)?.finish(offset);
  }

  /**
   * The group committed `offset` (offsets only grow: an older report is ignored, and so is one
   * above the intake, a commit of the log before it started over).
   */
  committed(topic: string, partition: number, offset: number): void {
    const progress = this.progress.get(topic)?.get(partition);
    if (progress && progress.next !== undefined && offset <= progress.next) progress.committed = Math.max(progress.committed ?? -1, offset);
  }

  /**
   * Forgets the partitions not in `assignment` (a rebalance gave them to another member, which
   * reads them from the group's committed offset); returns them.
   */
  keepAssigned(assignment: Record<string, number[]>): { topic: string; partition: number }[] {
    const dropped: { topic: string; partition: number }[] = [];
    for (const [topic, partitions] of this.progress) {
      for (const partition of [...partitions.keys()]) {
        if (!(assignment[topic] ?? []).includes(partition)) {
          partitions.delete(partition);
          dropped.push({ topic, partition });
        }
      }
    }
    return dropped;
  }

  /** Per partition, the lowest offset not done, where it is above what the group committed. */
  toCommit(): TopicPartitionOffset[] {
    const offsets: TopicPartitionOffset[] = [];
    for (const [topic, partitions] of this.progress) {
      for (const [partition, progress] of partitions) {
        const value = progress.commitValue();
        if (value !== undefined && (progress.committed === undefined || value > progress.committed)) offsets.push({ topic, partition, offset: String(value) });
      }
    }
    return offsets;
  }
}
