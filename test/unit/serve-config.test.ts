import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadPipelineConfig } from '../../src/config/pipeline-config';
import { ConfigError } from '../../src/core/errors';
import type { KafkaConnection } from '../../src/kafka/connection';
import { KafkaSnapshotPublisher, type PublishedSnapshot } from '../../src/kafka/snapshots/snapshot-publisher';

const SHIPPED = path.resolve(__dirname, '../../../pipelines/kafka-split-mnist-replicas.json');

describe('prediction replicas: pipeline keys and the publisher that never blocks training (unit)', () => {
  let dir: string;
  before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifelong-serve-config-'))));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** The shipped replicas pipeline with `change` applied, written to a file of its own. */
  function variant(name: string, change: (raw: Record<string, unknown>) => void): string {
    const raw = JSON.parse(fs.readFileSync(SHIPPED, 'utf8')) as Record<string, unknown>;
    change(raw);
    const file = path.join(dir, `${name}.json`);
    fs.writeFileSync(file, JSON.stringify(raw));
    return file;
  }

  function rejected(file: string, key: string): void {
    assert.throws(
      () => loadPipelineConfig(file),
      (error: unknown) => error instanceof ConfigError && error.message.includes(file) && error.message.includes(`${key}:`),
    );
  }

  it('snapshots are off and the trainer serves by default', () => {
    const config = loadPipelineConfig(path.resolve(__dirname, '../../../pipelines/kafka-split-mnist.json'));
    assert.equal(config.serving, 'trainer');
    assert.deepEqual(config.snapshots, { topic: '', everySamples: 5000, chunkBytes: 512 * 1024 });
    assert.deepEqual(config.replicas, { groupId: '' });
  });

  it('loads the shipped replicas pipeline', () => {
    const config = loadPipelineConfig(SHIPPED);
    assert.equal(config.serving, 'replicas');
    assert.equal(config.snapshots?.topic, 'demo.snapshots');
  });

  it('refuses, naming the file and the key: replicas without a snapshot topic, snapshots off Kafka, a snapshot topic that is a task, request or dead-letter topic, a bad key', () => {
    rejected(variant('no-topic', (raw) => (raw.snapshots = { topic: '' })), 'snapshots.topic');
    rejected(
      variant('embedded', (raw) => (raw.source = { type: 'split-mnist', tasks: 2 })),
      'snapshots.topic',
    );
    rejected(
      variant('embedded-replicas', (raw) => {
        raw.source = { type: 'split-mnist', tasks: 2 };
        raw.snapshots = { topic: '' };
      }),
      'serving',
    );
    rejected(variant('task-topic', (raw) => (raw.snapshots = { topic: 'demo.split-mnist-0-1' })), 'snapshots.topic');
    rejected(variant('request-topic', (raw) => (raw.snapshots = { topic: 'demo.requests' })), 'snapshots.topic');
    rejected(variant('serving', (raw) => (raw.serving = 'both')), 'serving');
    rejected(variant('chunk', (raw) => (raw.snapshots = { topic: 'demo.snapshots', chunkBytes: 10 })), 'snapshots.chunkBytes');
    rejected(variant('every', (raw) => (raw.snapshots = { topic: 'demo.snapshots', everySamples: -1 })), 'snapshots.everySamples');
  });

  it('offer() returns at once; a failed publish is reported and the next offer publishes the newest snapshot', async () => {
    const sent: { key: string | null; bytes: number }[] = [];
    let failNext = true;
    let releaseFirst: () => void = () => undefined;
    const firstSend = new Promise<void>((resolve) => (releaseFirst = resolve));
    let sends = 0;
    const producer = {
      send: async ({ messages }: { messages: { key: string; value: Buffer | null }[] }) => {
        sends += 1;
        if (sends === 1) await firstSend;
        if (failNext) {
          failNext = false;
          throw new Error('broker unreachable');
        }
        for (const m of messages) sent.push({ key: m.key, bytes: m.value?.length ?? 0 });
      },
    };
    const connection = {
      admin: async () => ({ listTopics: async () => ['snapshots'] }),
      producer: async () => producer,
      disconnect: async () => undefined,
    } as unknown as KafkaConnection;
    const published: PublishedSnapshot[] = [];
    const failed: number[] = [];
    const publisher = new KafkaSnapshotPublisher({ topic: 'snapshots', chunkBytes: 4, pipeline: 'p', onPublished: (p) => published.push(p), onFailed: (v) => failed.push(v) }, connection, true);
    const t0 = performance.now();
    publisher.offer({ version: 1, tasks: ['a'], snapshot: Buffer.alloc(10, 1) });
    publisher.offer({ version: 2, tasks: ['a'], snapshot: Buffer.alloc(10, 2) });
    publisher.offer({ version: 3, tasks: ['a'], snapshot: Buffer.alloc(10, 3) });
    assert.ok(performance.now() - t0 < 50, 'offer never waits for the broker');
    releaseFirst();
    await publisher.flush();
    assert.deepEqual(failed, [1], 'the failed publish is reported');
    assert.deepEqual(published.map((p) => p.version), [3], 'version 2 was replaced by 3 while 1 was being sent');
    assert.deepEqual(sent.map((s) => s.key), ['chunk/3/0', 'chunk/3/1', 'chunk/3/2', 'manifest']);
    for (const version of [4, 5]) {
      publisher.offer({ version, tasks: ['a'], snapshot: Buffer.alloc(10, version) });
      await publisher.flush();
    }
    assert.deepEqual(sent.slice(-3).map((s) => [s.key, s.bytes]), [['chunk/3/0', 0], ['chunk/3/1', 0], ['chunk/3/2', 0]], 'once two newer versions are out, version 3 is tombstoned');
    await publisher.close();
    await publisher.close();
    publisher.offer({ version: 6, tasks: [], snapshot: Buffer.alloc(1) });
    await publisher.flush();
    assert.equal(published.at(-1)?.version, 5, 'nothing is published after close');
  });
});
