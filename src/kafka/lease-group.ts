/**
 * Pipeline leases through a Kafka consumer group: each pipeline has a single-partition lease
 * topic, every trainer that may run it is a member of one group subscribed to the lease topics,
 * and the member the group assigns a topic's partition to holds that pipeline's lease. The broker
 * is the coordinator: a member that dies is dropped after its session timeout, one that leaves
 * (a graceful stop) at once, and the partition goes to another member. One group over many lease
 * topics spreads the pipelines over the daemons with the group's assignor.
 *
 * A gained lease is claimed by producing a record to its topic; the record's offset is the
 * lease's epoch, so epochs grow with every claim, as the broker orders them. The checkpoint store
 * is fenced with it (engine/checkpoint-store.ts): a holder that lost its lease without knowing
 * (a pause longer than the session) cannot write over its successor.
 *
 * Nothing is read from the lease topics: the consumer runs only to stay in the group.
 */
import { AssignerProtocol, type Consumer, type PartitionAssigner } from 'kafkajs';
import { LifelongError } from '../core/errors';
import { silentLogger, type Logger } from '../core/log';
import type { KafkaConnection } from './connection';
import { createTopics } from './create-topics';
import { LeaseAssignment, stickyLeases } from './lease-assignment';

/** The lease topic of a pipeline (pipeline names are a-z, 0-9 and '-': valid in a topic name). */
export function leaseTopicFor(pipeline: string): string {
  return `lifelong.lease.${pipeline}`;
}

/** A pipeline's lease as its holder sees it. */
export interface Lease {
  readonly topic: string;
  /** The claim record's offset in the lease topic: larger for every later claim. */
  readonly epoch: number;
  /** The holder's member id in the lease group. */
  readonly owner: string;
}

export interface LeaseHandlers {
  gained(lease: Lease): void;
  lost(topic: string): void;
  /** The group cannot be followed any more (kafkajs gave up): every lease is lost. */
  failed(error: Error): void;
}

export interface LeaseGroupOptions {
  readonly groupId: string;
  readonly topics: readonly string[];
  readonly sessionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly log?: Logger;
}

/** The part of a lease group that the trainers' supervisor uses (engine/leased-pipelines.ts; tests fake it). */
export interface LeaseSource {
  start(handlers: LeaseHandlers): Promise<void>;
  /** Member ids in the group now: a lease's previous holder that is not among them is gone. */
  members(): Promise<ReadonlySet<string>>;
  /** Leaves the group: the leases go to other members at once. */
  stop(): Promise<void>;
}

/**
 * The group's assignor (kafkajs runs the leader's): each member's subscription carries the leases
 * it holds (userData, JSON), and stickyLeases() moves only what balancing needs. Every lease is
 * partition 0 of its topic.
 */
function leaseAssigner(held: () => readonly string[]): PartitionAssigner {
  const name = 'LifelongStickyLeases';
  const version = 1;
  return () => ({
    name,
    version,
    protocol: ({ topics }) => ({ name, metadata: AssignerProtocol.MemberMetadata.encode({ version, topics, userData: Buffer.from(JSON.stringify(held())) }) }),
    assign: async ({ members, topics }) => {
      const leases = stickyLeases(
        members.map(({ memberId, memberMetadata }) => {
          let said: unknown;
          try {
            said = JSON.parse(AssignerProtocol.MemberMetadata.decode(memberMetadata)?.userData.toString() || '[]');
          } catch {
            said = [];
          }
          return { memberId, held: Array.isArray(said) ? said.filter((t): t is string => typeof t === 'string') : [] };
        }),
        topics,
      );
      return [...leases].map(([memberId, held]) => ({
        memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({ version, assignment: Object.fromEntries(held.map((topic) => [topic, [0]])), userData: Buffer.alloc(0) }),
      }));
    },
  });
}

export class LeaseGroup implements LeaseSource {
  private readonly log: Logger;
  private readonly consumer: Consumer;
  private readonly topics: ReadonlySet<string>;
  private readonly assignment = new LeaseAssignment();
  /** Joins are handled one after the other: a claim is produced before the next join is looked at. */
  private handling: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly connection: KafkaConnection,
    private readonly options: LeaseGroupOptions,
  ) {
    this.log = options.log ?? silentLogger;
    this.topics = new Set(options.topics);
    this.consumer = connection.kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: options.sessionTimeoutMs,
      heartbeatInterval: options.heartbeatIntervalMs,
      // A member that stops answering is replaced after the session timeout; a rebalance waits no
      // longer than that for the live ones to rejoin.
      rebalanceTimeout: options.sessionTimeoutMs,
      maxWaitTimeInMs: Math.min(1000, options.heartbeatIntervalMs),
      allowAutoTopicCreation: false,
      partitionAssigners: [leaseAssigner(() => this.assignment.heldTopics())],
    });
  }

  async start(handlers: LeaseHandlers): Promise<void> {
    await this.createMissingTopics();
    const { consumer } = this;
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      const changes = this.assignment.joined(payload.memberId, payload.memberAssignment, this.topics);
      this.handling = this.handling.then(async () => {
        for (const topic of changes.lost) {
          this.log.warn(`lease ${topic} lost: the group gave it to another member`, { group: this.options.groupId });
          handlers.lost(topic);
        }
        for (const topic of changes.gained) {
          if (this.stopped || !this.assignment.holds(topic)) continue;
          try {
            const lease = await this.claim(topic, payload.memberId);
            if (!this.stopped && this.assignment.holds(topic)) handlers.gained(lease);
          } catch (error) {
            handlers.failed(new LifelongError(`lease ${topic}: the claim could not be produced: ${(error as Error).message}`, { cause: error }));
          }
        }
      });
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (payload.restart) return;
      for (const topic of this.assignment.dropAll()) handlers.lost(topic);
      handlers.failed(new LifelongError(`lease group ${this.options.groupId}: the consumer stopped: ${payload.error.message}`, { cause: payload.error }));
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [...this.topics], fromBeginning: false });
    await consumer.run({ eachBatch: async () => undefined });
  }

  async members(): Promise<ReadonlySet<string>> {
    const group = await this.consumer.describeGroup();
    return new Set(group.members.map((m) => m.memberId));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.handling;
    await this.consumer.disconnect();
  }

  /** Produces the claim record; its offset is the epoch. */
  private async claim(topic: string, owner: string): Promise<Lease> {
    const producer = await this.connection.producer();
    const value = JSON.stringify({ owner, pid: process.pid, claimedAt: new Date().toISOString() });
    const [meta] = await producer.send({ topic, acks: -1, messages: [{ partition: 0, key: 'claim', value }] });
    if (meta === undefined) throw new LifelongError(`lease ${topic}: the broker returned no offset for the claim`);
    const lease = { topic, epoch: Number(meta.baseOffset), owner };
    this.log.info(`lease ${topic} gained (epoch ${lease.epoch})`, { group: this.options.groupId, owner });
    return lease;
  }

  /** Lease topics are created with one partition (one holder each) when missing. */
  private async createMissingTopics(): Promise<void> {
    const admin = await this.connection.admin();
    const existing = new Set(await admin.listTopics());
    const missing = [...this.topics].filter((t) => !existing.has(t));
    if (missing.length === 0) return;
    try {
      await createTopics(admin, missing.map((topic) => ({ topic, numPartitions: 1 })));
    } catch (error) {
      // Another daemon created them at the same moment: fine, as long as they exist now.
      const now = new Set(await admin.listTopics());
      if (missing.some((t) => !now.has(t))) throw new LifelongError(`lease topics ${missing.join(', ')} could not be created: ${(error as Error).message}`, { cause: error });
    }
  }
}
