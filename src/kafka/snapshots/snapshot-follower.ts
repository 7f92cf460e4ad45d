import type { Consumer } from 'kafkajs';
import { LifelongError } from '../../core/errors';
import type { Logger } from '../../core/log';
import type { KafkaConnection } from '../connection';
import { SnapshotAssembler, type AssembledSnapshot, type SnapshotManifest } from './snapshot-chunks';
import { ensureSnapshotTopic } from './snapshot-topic';

export interface SnapshotFollowerOptions {
  readonly topic: string;
  /** A group of this reader alone: every replica reads every snapshot. Nothing is committed. */
  readonly groupId: string;
  /** Called with each complete snapshot to serve, one at a time; a rejection is logged and the snapshot skipped. */
  readonly onSnapshot: (manifest: SnapshotManifest, snapshot: Buffer) => Promise<void>;
  /** A manifest that is never loaded (incomplete, corrupt) and why. */
  readonly onUnusable?: (why: string) => void;
  readonly maxWaitTimeMs?: number;
  readonly log: Logger;
}

/**
 * Follows the snapshot topic from its start: at start() it reads up to where the topic ended then
 * and hands on only the newest complete snapshot found there (older ones would be swapped in for
 * nothing); after that, every complete snapshot as it arrives.
 */
export class KafkaSnapshotFollower {
  private readonly options: SnapshotFollowerOptions;
  private readonly consumer: Consumer;
  private readonly assembler = new SnapshotAssembler();
  /** Before catching up: the newest complete snapshot read so far. */
  private newest: Extract<AssembledSnapshot, { kind: 'complete' }> | undefined;
  private caughtUp = false;
  private closed: Promise<void> | undefined;

  constructor(options: SnapshotFollowerOptions, private readonly connection: KafkaConnection) {
    this.options = options;
    this.consumer = connection.kafka.consumer({ groupId: options.groupId, maxWaitTimeInMs: options.maxWaitTimeMs ?? 500, allowAutoTopicCreation: false });
  }

  /** Resolves once the topic has been read up to where it ended at the call, and its newest complete snapshot handed on. */
  async start(): Promise<void> {
    await ensureSnapshotTopic(this.connection, this.options.topic);
    const admin = await this.connection.admin();
    const ends = await admin.fetchTopicOffsets(this.options.topic);
    const end = Math.max(0, ...ends.map((p) => Number(p.high)));
    let ready: () => void = () => undefined;
    const caughtUp = new Promise<void>((resolve) => (ready = resolve));
    const catchUp = async (): Promise<void> => {
      if (this.caughtUp) return;
      this.caughtUp = true;
      const newest = this.newest;
      this.newest = undefined;
      if (newest) await this.hand(newest);
      ready();
    };
    // Compaction can leave the log's last offsets empty: then no record reaches `end`, and reading
    // nothing for a while after joining says the same.
    const quietMs = 2 * (this.options.maxWaitTimeMs ?? 500) + 1000;
    let quiet: NodeJS.Timeout | undefined;
    const stillQuiet = () => {
      clearTimeout(quiet);
      if (!this.caughtUp) quiet = setTimeout(() => void catchUp(), quietMs);
    };
    this.consumer.on(this.consumer.events.GROUP_JOIN, stillQuiet);
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [this.options.topic], fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachMessage: async ({ message }) => {
        stillQuiet();
        const key = message.key?.toString('utf8') ?? '';
        const assembled = this.assembler.add({ key, value: message.value });
        if (assembled?.kind === 'unusable') {
          this.options.log.warn(`snapshot topic ${this.options.topic}: not loading ${assembled.why}`);
          this.options.onUnusable?.(assembled.why);
        } else if (assembled?.kind === 'complete') {
          if (this.caughtUp) await this.hand(assembled);
          else this.newest = assembled;
        }
        if (!this.caughtUp && Number(message.offset) + 1 >= end) await catchUp();
      },
    });
    if (end === 0) await catchUp();
    await caughtUp;
    clearTimeout(quiet);
  }

  /** Stops reading; safe to call twice. */
  close(): Promise<void> {
    this.closed ??= this.consumer.disconnect().catch((error: unknown) => {
      throw new LifelongError(`kafka: the snapshot reader did not disconnect: ${(error as Error).message}`, { cause: error });
    });
    return this.closed;
  }

  private async hand({ manifest, snapshot }: Extract<AssembledSnapshot, { kind: 'complete' }>): Promise<void> {
    try {
      await this.options.onSnapshot(manifest, snapshot);
    } catch (error) {
      this.options.log.warn(`snapshot version ${manifest.version} could not be loaded: ${(error as Error).message}`);
      this.options.onUnusable?.(`snapshot version ${manifest.version}: ${(error as Error).message}`);
    }
  }
}
