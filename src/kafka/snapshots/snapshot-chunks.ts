/**
 * Model snapshots on a compacted Kafka topic: one snapshot (a checkpoint file's bytes, engine/
 * checkpoint.ts) as chunks that each fit the broker's max.message.bytes, then a manifest naming
 * them with the whole snapshot's SHA-256. Pure: no kafkajs, so it is unit-tested without a broker.
 *
 * Keys, chosen for compaction: a chunk is `chunk/<version>/<index>`, unique to its version, so a
 * newer snapshot never overwrites a chunk an older manifest still needs; the manifest is always
 * `manifest`, so compaction keeps the newest one. The publisher writes a version's chunks first and
 * its manifest last (one partition: the log keeps that order), then tombstones the chunks of the
 * version before the previous one. A reader therefore has every chunk of a manifest before the
 * manifest itself; a publish cut short leaves chunks without a manifest, which nobody loads.
 */
import { createHash } from 'node:crypto';

export const MANIFEST_KEY = 'manifest';
export const SNAPSHOT_MANIFEST_FORMAT = 1;
const CHUNK_KEY = /^chunk\/(\d+)\/(\d+)$/;

/** The manifest message's value (JSON). */
export interface SnapshotManifest {
  readonly format: number;
  /** The trainer's model version when the snapshot was taken (the engine's modelVersion). */
  readonly version: number;
  readonly chunks: number;
  /** The snapshot's length in bytes. */
  readonly bytes: number;
  /** Hex SHA-256 of the whole snapshot (every chunk, in order). */
  readonly sha256: string;
  /** The tasks the model had begun, in index order: a replica needs their indexes to ask a head. */
  readonly tasks: readonly string[];
  readonly pipeline: string;
  /** ISO 8601. */
  readonly publishedAt: string;
}

export interface SnapshotRecord {
  readonly key: string;
  /** Null: a tombstone (compaction removes the key). */
  readonly value: Buffer | null;
}

export function chunkKey(version: number, index: number): string {
  return `chunk/${version}/${index}`;
}

/**
 * The records of one snapshot, in the order they must be produced: its chunks (each at most
 * `chunkBytes` long), then the manifest.
 */
export function snapshotRecords(snapshot: Buffer, info: Pick<SnapshotManifest, 'version' | 'tasks' | 'pipeline'>, chunkBytes: number, publishedAt = new Date().toISOString()): { chunks: SnapshotRecord[]; manifest: SnapshotRecord } {
  if (!Number.isInteger(chunkBytes) || chunkBytes < 1) throw new RangeError(`chunkBytes must be an integer >= 1, got ${chunkBytes}`);
  if (!Number.isSafeInteger(info.version) || info.version < 0) throw new RangeError(`a snapshot version is an integer >= 0, got ${info.version}`);
  const chunks: SnapshotRecord[] = [];
  for (let offset = 0, index = 0; offset < snapshot.length; offset += chunkBytes, index++) {
    chunks.push({ key: chunkKey(info.version, index), value: snapshot.subarray(offset, offset + chunkBytes) });
  }
  const manifest: SnapshotManifest = {
    format: SNAPSHOT_MANIFEST_FORMAT,
    version: info.version,
    chunks: chunks.length,
    bytes: snapshot.length,
    sha256: createHash('sha256').update(snapshot).digest('hex'),
    tasks: [...info.tasks],
    pipeline: info.pipeline,
    publishedAt,
  };
  return { chunks, manifest: { key: MANIFEST_KEY, value: Buffer.from(JSON.stringify(manifest)) } };
}

/** Tombstones for every chunk of a manifest: compaction then drops them. */
export function chunkTombstones(manifest: Pick<SnapshotManifest, 'version' | 'chunks'>): SnapshotRecord[] {
  return Array.from({ length: manifest.chunks }, (_, index) => ({ key: chunkKey(manifest.version, index), value: null }));
}

/** What a manifest record came to. */
export type AssembledSnapshot =
  | { readonly kind: 'complete'; readonly manifest: SnapshotManifest; readonly snapshot: Buffer }
  /** Never loaded: `why` says what is missing or wrong. */
  | { readonly kind: 'unusable'; readonly manifest: SnapshotManifest | undefined; readonly why: string };

function parseManifest(value: Buffer): SnapshotManifest | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value.toString('utf8'));
  } catch (error) {
    return `the manifest is not JSON: ${(error as Error).message}`;
  }
  const m = parsed as Partial<SnapshotManifest> | null;
  if (typeof m !== 'object' || m === null) return 'the manifest is not a JSON object';
  if (m.format !== SNAPSHOT_MANIFEST_FORMAT) return `unsupported manifest format ${String(m.format)} (this version reads ${SNAPSHOT_MANIFEST_FORMAT})`;
  const count = (n: unknown) => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
  if (!count(m.version) || !count(m.chunks) || !count(m.bytes) || typeof m.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(m.sha256) || !Array.isArray(m.tasks) || !m.tasks.every((t) => typeof t === 'string')) {
    return 'the manifest lacks version, chunks, bytes, sha256 or tasks';
  }
  return m as SnapshotManifest;
}

/**
 * Reads the snapshot topic's records in log order and reassembles snapshots: chunks are held per
 * version until a manifest comes; a manifest whose chunks are all there, of the announced length
 * and checksum, is complete. Anything else is unusable and never loaded. Chunks read before a
 * manifest belong to it or to an abandoned publish, so every held chunk is let go at each manifest.
 */
export class SnapshotAssembler {
  private readonly held = new Map<number, Map<number, Buffer>>();

  /** Bytes of chunks held, waiting for their manifest. */
  get heldBytes(): number {
    let bytes = 0;
    for (const chunks of this.held.values()) for (const chunk of chunks.values()) bytes += chunk.length;
    return bytes;
  }

  /** Takes one record; a manifest resolves to what it came to, anything else to undefined. */
  add(record: SnapshotRecord): AssembledSnapshot | undefined {
    const chunk = CHUNK_KEY.exec(record.key);
    if (chunk) {
      const version = Number(chunk[1]);
      const index = Number(chunk[2]);
      let chunks = this.held.get(version);
      if (record.value === null) {
        chunks?.delete(index);
        return undefined;
      }
      if (chunks === undefined) this.held.set(version, (chunks = new Map()));
      chunks.set(index, record.value);
      return undefined;
    }
    if (record.key !== MANIFEST_KEY || record.value === null) return undefined;
    const manifest = parseManifest(record.value);
    const chunks = typeof manifest === 'string' ? undefined : this.held.get(manifest.version);
    this.held.clear();
    if (typeof manifest === 'string') return { kind: 'unusable', manifest: undefined, why: manifest };
    const missing: number[] = [];
    const parts: Buffer[] = [];
    for (let index = 0; index < manifest.chunks; index++) {
      const part = chunks?.get(index);
      if (part === undefined) missing.push(index);
      else parts.push(part);
    }
    const unusable = (why: string): AssembledSnapshot => ({ kind: 'unusable', manifest, why: `snapshot version ${manifest.version}: ${why}` });
    if (missing.length > 0) return unusable(`incomplete: ${missing.length} of its ${manifest.chunks} chunks are missing (first: ${missing[0]})`);
    const snapshot = Buffer.concat(parts);
    if (snapshot.length !== manifest.bytes) return unusable(`its chunks hold ${snapshot.length} bytes, the manifest says ${manifest.bytes}`);
    const sha256 = createHash('sha256').update(snapshot).digest('hex');
    if (sha256 !== manifest.sha256) return unusable(`corrupt: its chunks' SHA-256 is ${sha256.slice(0, 12)}..., the manifest says ${manifest.sha256.slice(0, 12)}...`);
    return { kind: 'complete', manifest, snapshot };
  }
}
