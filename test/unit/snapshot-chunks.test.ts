import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { decodeCheckpoint, encodeCheckpoint } from '../../src/engine/checkpoint';
import { chunkTombstones, MANIFEST_KEY, SnapshotAssembler, snapshotRecords, type SnapshotRecord } from '../../src/kafka/snapshots/snapshot-chunks';
import type { StrategyOptions } from '../../src/strategies/strategy';

const OPTIONS: StrategyOptions = { scenario: 'task-incremental', inputSize: 3, hiddenLayers: [4], outputUnits: 2, optimizer: 'adam', learningRate: 0.01, stepsPerBatch: 1, seed: 1, params: {} };

/** A strategy-only checkpoint of `floats` values: what the trainer publishes. */
function snapshotOf(version: number, floats = 1000): Buffer {
  const data = Float32Array.from({ length: floats }, (_, i) => i * 0.5 + version);
  return Buffer.concat(encodeCheckpoint({ pipeline: 'p', strategyName: 'finetune', options: OPTIONS, state: { strategy: 'finetune', format: 1, meta: { version }, tensors: { w: { shape: [floats], data } } } }));
}

function recordsOf(version: number, chunkBytes: number, snapshot = snapshotOf(version)): SnapshotRecord[] {
  const { chunks, manifest } = snapshotRecords(snapshot, { version, tasks: ['a', 'b'], pipeline: 'p' }, chunkBytes);
  return [...chunks, manifest];
}

function feed(assembler: SnapshotAssembler, records: readonly SnapshotRecord[]) {
  return records.map((r) => assembler.add(r)).filter((r) => r !== undefined);
}

describe('model snapshots on a compacted topic: chunks, manifest and checksum (unit)', () => {
  it('cuts a snapshot into chunks of at most chunkBytes, keyed by version and index, the manifest last', () => {
    const snapshot = snapshotOf(7);
    const { chunks, manifest } = snapshotRecords(snapshot, { version: 7, tasks: ['a'], pipeline: 'p' }, 1000, '2026-01-01T00:00:00.000Z');
    assert.equal(chunks.length, Math.ceil(snapshot.length / 1000));
    assert.ok(chunks.every((c) => (c.value as Buffer).length <= 1000));
    assert.deepEqual(chunks.map((c) => c.key).slice(0, 2), ['chunk/7/0', 'chunk/7/1']);
    assert.equal(manifest.key, MANIFEST_KEY);
    assert.deepEqual(JSON.parse((manifest.value as Buffer).toString()), {
      format: 1,
      version: 7,
      chunks: chunks.length,
      bytes: snapshot.length,
      sha256: createHash('sha256').update(snapshot).digest('hex'),
      tasks: ['a'],
      pipeline: 'p',
      publishedAt: '2026-01-01T00:00:00.000Z',
    });
  });

  it('reassembles the exact bytes, which decode to the checkpoint published', () => {
    const snapshot = snapshotOf(3);
    const [complete] = feed(new SnapshotAssembler(), recordsOf(3, 700, snapshot));
    assert.equal(complete?.kind, 'complete');
    if (complete?.kind !== 'complete') return;
    assert.ok(complete.snapshot.equals(snapshot));
    assert.deepEqual(complete.manifest.tasks, ['a', 'b']);
    const checkpoint = decodeCheckpoint('snapshot', complete.snapshot);
    assert.equal(checkpoint.run, undefined, 'a replica gets the strategy, not the run state');
    assert.equal(checkpoint.state.tensors.w?.data[4], 2 + 3);
  });

  it('never loads an incomplete snapshot: a chunk missing (a publish cut short, a chunk compacted away)', () => {
    const records = recordsOf(4, 500);
    const without = records.filter((r) => r.key !== 'chunk/4/2');
    const [result] = feed(new SnapshotAssembler(), without);
    assert.equal(result?.kind, 'unusable');
    assert.match(result?.kind === 'unusable' ? result.why : '', /snapshot version 4: incomplete: 1 of its \d+ chunks are missing \(first: 2\)/);
  });

  it('never loads a corrupt snapshot: a flipped bit fails the checksum, a short chunk the length', () => {
    const records = recordsOf(5, 500);
    const flipped = records.map((r) => (r.key === 'chunk/5/1' ? { key: r.key, value: Buffer.from(r.value as Buffer).fill(0x55, 10, 11) } : r));
    const [corrupt] = feed(new SnapshotAssembler(), flipped);
    assert.equal(corrupt?.kind, 'unusable');
    assert.match(corrupt?.kind === 'unusable' ? corrupt.why : '', /corrupt: its chunks' SHA-256 is/);
    const short = records.map((r) => (r.key === 'chunk/5/0' ? { key: r.key, value: (r.value as Buffer).subarray(1) } : r));
    const [truncated] = feed(new SnapshotAssembler(), short);
    assert.match(truncated?.kind === 'unusable' ? truncated.why : '', /its chunks hold \d+ bytes, the manifest says/);
  });

  it('refuses a manifest that is not one (bad JSON, another format, missing fields)', () => {
    for (const value of ['{', JSON.stringify({ format: 2, version: 1 }), JSON.stringify({ format: 1, version: 1 })]) {
      const [result] = feed(new SnapshotAssembler(), [{ key: MANIFEST_KEY, value: Buffer.from(value) }]);
      assert.equal(result?.kind, 'unusable', value);
    }
  });

  it('a publish cut short, then a complete one: only the complete version loads, and held chunks are let go', () => {
    const assembler = new SnapshotAssembler();
    const partial = recordsOf(8, 500).filter((r) => r.key !== MANIFEST_KEY).slice(0, 2);
    assert.deepEqual(feed(assembler, partial), []);
    assert.ok(assembler.heldBytes > 0);
    const results = feed(assembler, recordsOf(9, 500));
    assert.deepEqual(results.map((r) => [r.kind, r.manifest?.version]), [['complete', 9]]);
    assert.equal(assembler.heldBytes, 0, 'chunks of the abandoned version 8 are not kept');
  });

  it('the compacted log (newest manifest, its chunks, older chunks tombstoned) still assembles the newest version', () => {
    const v1 = recordsOf(1, 500);
    const v2 = recordsOf(2, 500);
    const v3 = recordsOf(3, 500);
    const manifest1 = v1.at(-1) as SnapshotRecord;
    const tombstones = chunkTombstones(JSON.parse((manifest1.value as Buffer).toString()));
    // What compaction leaves: every chunk key's last record, the last manifest, in log order.
    const log = [...v1, ...v2, ...v3, ...tombstones];
    const last = new Map<string, number>();
    log.forEach((r, i) => last.set(r.key, i));
    const compacted = log.filter((r, i) => last.get(r.key) === i && r.value !== null);
    const results = feed(new SnapshotAssembler(), compacted);
    assert.deepEqual(results.map((r) => [r.kind, r.manifest?.version]), [['complete', 3]]);
  });

  it('rejects a chunk size or version that cannot be published', () => {
    assert.throws(() => snapshotRecords(Buffer.alloc(10), { version: 1, tasks: [], pipeline: 'p' }, 0), /chunkBytes/);
    assert.throws(() => snapshotRecords(Buffer.alloc(10), { version: -1, tasks: [], pipeline: 'p' }, 10), /version/);
  });
});
