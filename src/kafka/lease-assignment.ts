/** What changed for this member between two group joins. */
export interface LeaseChanges {
  readonly gained: readonly string[];
  readonly lost: readonly string[];
}

/**
 * The lease topics this member holds, followed from one group join to the next. A lease is
 * partition 0 of its topic. A new member id means the broker dropped this member in between (its
 * session expired: a pause, a partition): every lease it held may have had another holder
 * meanwhile, so all of them are lost, and whatever is assigned now is gained afresh (a new claim,
 * a new epoch).
 */
export class LeaseAssignment {
  private memberId: string | undefined;
  private held = new Set<string>();

  /** Applies a join's assignment (kafkajs GROUP_JOIN memberAssignment: topic to partitions). */
  joined(memberId: string, assignment: Readonly<Record<string, readonly number[]>>, leaseTopics: ReadonlySet<string>): LeaseChanges {
    const now = new Set(Object.entries(assignment).filter(([topic, partitions]) => leaseTopics.has(topic) && partitions.includes(0)).map(([topic]) => topic));
    const before = memberId === this.memberId ? this.held : new Set<string>();
    const lost = [...this.held].filter((topic) => !before.has(topic) || !now.has(topic));
    const gained = [...now].filter((topic) => !before.has(topic));
    this.memberId = memberId;
    this.held = now;
    return { gained: gained.sort(), lost: lost.sort() };
  }

  /** Every lease is gone (the consumer stopped or crashed for good). */
  dropAll(): readonly string[] {
    const lost = [...this.held].sort();
    this.held = new Set();
    this.memberId = undefined;
    return lost;
  }

  holds(topic: string): boolean {
    return this.held.has(topic);
  }
}
