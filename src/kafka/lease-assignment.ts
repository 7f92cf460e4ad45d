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

  /** What this member tells the group's leader it holds, so that the leases stay put (stickyLeases). */
  heldTopics(): string[] {
    return [...this.held].sort();
  }
}

/** A member of the lease group as the group's leader sees it: its id and the leases it says it holds. */
export interface LeaseMember {
  readonly memberId: string;
  readonly held: readonly string[];
}

/**
 * Who holds which lease after a rebalance: every lease stays with its holder while that keeps the
 * members within one lease of each other, and only the surplus moves (to the members with the
 * fewest, the lowest member id first). So a standby joining takes nothing from the active
 * trainer of a single pipeline, a daemon joining a directory takes a fair share, and one leaving
 * hands its leases over. A lease claimed by two members (one was dropped and came back) stays
 * with the lowest member id.
 */
export function stickyLeases(members: readonly LeaseMember[], topics: readonly string[]): Map<string, string[]> {
  const ids = members.map((m) => m.memberId).sort();
  const assigned = new Map<string, string[]>(ids.map((id) => [id, []]));
  if (ids.length === 0) return assigned;
  const wanted = new Set(topics);
  const owned = new Set<string>();
  for (const id of ids) {
    const member = members.find((m) => m.memberId === id) as LeaseMember;
    for (const topic of [...member.held].sort()) {
      if (!wanted.has(topic) || owned.has(topic)) continue;
      owned.add(topic);
      (assigned.get(id) as string[]).push(topic);
    }
  }
  // In member id order, so the first of the equally loaded wins.
  const lists = ids.map((id) => assigned.get(id) as string[]);
  const fewest = (): string[] => lists.reduce((a, b) => (b.length < a.length ? b : a));
  const most = (): string[] => lists.reduce((a, b) => (b.length > a.length ? b : a));
  for (const topic of [...wanted].filter((t) => !owned.has(t)).sort()) fewest().push(topic);
  while (most().length - fewest().length > 1) fewest().push(most().pop() as string);
  return assigned;
}
