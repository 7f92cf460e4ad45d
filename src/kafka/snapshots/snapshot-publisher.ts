import { LifelongError } from '../../core/errors';
import type { KafkaConnection } from '../connection';
import { ensureSnapshotTopic } from './snapshot-topic';
import { chunkTombstones, snapshotRecords, type SnapshotManifest, type SnapshotRecord } from './snapshot-chunks';

export interface SnapshotPublisherOptions {
  /** The compacted snapshot topic (created with one partition and cleanup.policy=compact if absent). */
  readonly topic: string;
  /** Largest chunk, bytes: below the topic's max.message.bytes. */
  readonly chunkBytes: number;
  readonly pipeline: string;
  readonly onPublished?: (published: PublishedSnapshot) => void;
  readonly onFailed?: (version: number, error: Error) => void;
}

/** One snapshot to publish: the bytes of a strategy-only checkpoint file. */
export interface SnapshotToPublish {
  readonly version: number;
  readonly tasks: readonly string[];
  readonly snapshot: Buffer;
}

export interface PublishedSnapshot {
  readonly version: number;
  readonly bytes: number;
  readonly chunks: number;
  readonly seconds: number;
}

/**
 * Publishes model snapshots (snapshot-chunks.ts) in the background: offer() never waits and never
 * throws, so training goes on whatever the broker does. One publish runs at a time; a snapshot
 * offered meanwhile waits, replaced by any newer one (only the newest matters to a replica). A
 * failed publish is reported through onFailed and not retried: the next offer is the retry.
 */
export class KafkaSnapshotPublisher {
  private readonly options: SnapshotPublisherOptions;
  private readonly connection: KafkaConnection;
  private readonly ownsConnection: boolean;
  private topicReady: Promise<void> | undefined;
  private running: Promise<void> | undefined;
  private waiting: SnapshotToPublish | undefined;
  /** The manifests this publisher wrote, newest last: chunks older than the last two are tombstoned. */
  private readonly published: Pick<SnapshotManifest, 'version' | 'chunks'>[] = [];
  private closed: Promise<void> | undefined;

  constructor(options: SnapshotPublisherOptions, connection: KafkaConnection, ownsConnection: boolean) {
    if (!Number.isInteger(options.chunkBytes) || options.chunkBytes < 1) throw new LifelongError(`snapshots.chunkBytes must be an integer >= 1, got ${options.chunkBytes}`);
    this.options = options;
    this.connection = connection;
    this.ownsConnection = ownsConnection;
  }

  /** Queues the snapshot to publish as soon as the publish in progress (if any) is done. */
  offer(snapshot: SnapshotToPublish): void {
    if (this.closed) return;
    this.waiting = snapshot;
    this.running ??= this.drain();
  }

  /** Resolves once nothing is being published or waiting. */
  async flush(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Publishes what was offered (at most `timeoutMs` more), then disconnects if it owns the connection. Safe to call twice. */
  close(timeoutMs = 10_000): Promise<void> {
    this.closed ??= (async () => {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.flush(), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
      clearTimeout(timer);
      this.waiting = undefined;
      if (this.ownsConnection) await this.connection.disconnect();
    })();
    return this.closed;
  }

  private async drain(): Promise<void> {
    try {
      for (let next = this.waiting; next !== undefined; next = this.waiting) {
        this.waiting = undefined;
        const started = performance.now();
        try {
          const chunks = await this.publish(next);
          this.options.onPublished?.({ version: next.version, bytes: next.snapshot.length, chunks, seconds: (performance.now() - started) / 1000 });
        } catch (error) {
          this.options.onFailed?.(next.version, error as Error);
        }
      }
    } finally {
      this.running = undefined;
    }
  }

  /** Chunks, then the manifest, then tombstones for the chunks no manifest still needs. Resolves to the chunk count. */
  private async publish(next: SnapshotToPublish): Promise<number> {
    await this.ensureTopic();
    const producer = await this.connection.producer();
    const { chunks, manifest } = snapshotRecords(next.snapshot, { version: next.version, tasks: next.tasks, pipeline: this.options.pipeline }, this.options.chunkBytes);
    // One record a request: the broker checks a whole record batch against max.message.bytes.
    const send = (record: SnapshotRecord) => producer.send({ topic: this.options.topic, acks: -1, messages: [{ key: record.key, value: record.value }] });
    for (const chunk of chunks) await send(chunk);
    await send(manifest);
    // Republishing a version (a restart from its checkpoint) rewrites the same keys: nothing to drop.
    if (this.published.at(-1)?.version !== next.version) this.published.push({ version: next.version, chunks: chunks.length });
    while (this.published.length > 2) {
      const old = this.published.shift() as Pick<SnapshotManifest, 'version' | 'chunks'>;
      if (this.published.some((p) => p.version === old.version)) continue;
      await producer.send({ topic: this.options.topic, acks: -1, messages: chunkTombstones(old).map((t) => ({ key: t.key, value: t.value })) });
    }
    return chunks.length;
  }

  private ensureTopic(): Promise<void> {
    this.topicReady ??= ensureSnapshotTopic(this.connection, this.options.topic).catch((error: unknown) => {
      this.topicReady = undefined;
      throw error;
    });
    return this.topicReady;
  }
}
