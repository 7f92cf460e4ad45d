import { strict as assert } from 'node:assert';
import type { Admin } from 'kafkajs';
import { silentLogger } from '../../src/core/log';
import { isUnreachable } from '../../src/kafka/error-causes';
import { LogResets } from '../../src/kafka/log-resets';
import { OffsetLedger } from '../../src/kafka/partition-progress';

/** An admin that answers describeCluster and fetchTopicOffsets from what the test sets. */
function fakeAdmin(cluster: { id: string | Error; offsets: Record<string, { low: number; high: number }[]> }): Admin {
  return {
    describeCluster: async () => {
      if (cluster.id instanceof Error) throw cluster.id;
      return { clusterId: cluster.id, brokers: [], controller: null };
    },
    fetchTopicOffsets: async (topic: string) => {
      const partitions = cluster.offsets[topic];
      if (partitions === undefined) throw new Error(`This server does not host this topic-partition: ${topic}`);
      return partitions.map((p, partition) => ({ partition, offset: String(p.high), low: String(p.low), high: String(p.high) }));
    },
  } as unknown as Admin;
}

describe('kafka log resets (recreated topics and brokers)', () => {
  it('tells a new cluster id from the one seen first; an unanswered request is no change', async () => {
    const resets = new LogResets(silentLogger);
    const cluster = { id: 'first' as string | Error, offsets: {} };
    const admin = fakeAdmin(cluster);
    assert.equal(await resets.clusterChanged(admin), false, 'the first answer is remembered');
    assert.equal(await resets.clusterChanged(admin), false);
    cluster.id = new Error('ECONNREFUSED');
    assert.equal(await resets.clusterChanged(admin), false);
    cluster.id = 'second';
    assert.equal(await resets.clusterChanged(admin), true);
    assert.equal(await resets.clusterChanged(admin), false, 'the new cluster is the one seen now');
  });

  it('finds the partitions whose log ends below what was taken in, and where logs start', async () => {
    const resets = new LogResets(silentLogger);
    const admin = fakeAdmin({ id: 'c', offsets: { t: [{ low: 0, high: 5 }, { low: 0, high: 40 }, { low: 3, high: 9 }] } });
    const intake = new Map([[0, 20], [1, 30]]);
    const shrunk = await resets.shrunk(admin, 't', intake);
    assert.deepEqual(shrunk, [{ topic: 't', partition: 0, low: 0, high: 5, intake: 20 }], 'partition 2 was never read; partition 1 grew');
    assert.deepEqual(await resets.shrunk(admin, 'gone', new Map([[0, 10]])), [], 'a topic not there (yet) has nothing to reset');
    assert.deepEqual((await resets.starts(admin, 't')).map((s) => s.low), [0, 0, 3]);
  });

  it('compares log ends with the intake taken before asking the broker, so a live topic read meanwhile is not "recreated"', async () => {
    const resets = new LogResets(silentLogger);
    // The broker measures the log end at 920; by the time its answer arrives the consumer has
    // taken records up to 940. Found in a soak run: judged against the later intake, the live
    // topic looked recreated and was read again from its start, training 900 samples twice.
    const intake = new Map([[0, 900]]);
    const admin = fakeAdmin({ id: 'c', offsets: { t: [{ low: 0, high: 920 }] } });
    const answer = resets.shrunk(admin, 't', intake);
    intake.set(0, 940);
    assert.deepEqual(await answer, []);
  });

  it('forgets a reset partition; commits reported from the old log are ignored', () => {
    const ledger = new OffsetLedger();
    for (const offset of [0, 1, 2, 3]) ledger.partition('t', 0).take(offset);
    const old = ledger.progressOf('t', 0);
    ledger.reset('t', 0);
    assert.equal(ledger.progressOf('t', 0), undefined);
    assert.deepEqual(ledger.partitions(), []);
    ledger.partition('t', 0).take(0);
    old?.finish(0); // an acknowledgement of a record from before the reset
    assert.deepEqual(ledger.toCommit(), [{ topic: 't', partition: 0, offset: '0' }], 'the new log\'s offset 0 is still open');
    ledger.committed('t', 0, 4); // the old log's commit, reported late
    assert.equal(ledger.partition('t', 0).committed, undefined);
  });

  it('calls a missing group coordinator or broker unreachable, wrapped or not, and nothing else', () => {
    const coordinator = Object.assign(new Error('Failed to find group coordinator'), { name: 'KafkaJSGroupCoordinatorNotFound', retriable: false });
    const wrapped = Object.assign(new Error('Failed to find group coordinator'), { name: 'KafkaJSNonRetriableError', cause: coordinator });
    assert.equal(isUnreachable(coordinator), true);
    assert.equal(isUnreachable(wrapped), true);
    assert.equal(isUnreachable(Object.assign(new Error('auth'), { name: 'KafkaJSSASLAuthenticationError' })), false);
    assert.equal(isUnreachable(new Error('plain')), false);
    assert.equal(isUnreachable(undefined), false);
  });
});
