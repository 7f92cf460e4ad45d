import * as assert from 'node:assert/strict';
import type { Admin } from 'kafkajs';
import { createTopics } from '../../src/kafka/create-topics';

/** A kafkajs-like broker error: only `type` is read. */
function brokerError(type: string): Error {
  return Object.assign(new Error(type), { name: 'KafkaJSProtocolError', type });
}

/** An admin whose createTopics and fetchTopicMetadata fail with `errors` in turn, then succeed. */
function fakeAdmin(created: boolean | Error, ...metadataErrors: Error[]) {
  const calls = { create: 0, metadata: 0 };
  const admin = {
    createTopics: async () => {
      calls.create++;
      if (created instanceof Error) throw created;
      return created;
    },
    fetchTopicMetadata: async () => {
      const error = metadataErrors[calls.metadata++];
      if (error) throw error;
      return { topics: [] };
    },
  } as unknown as Admin;
  return { admin, calls };
}

const WAIT = { intervalMs: 1, timeoutMs: 1000 };

describe('creating Kafka topics (without a broker)', () => {
  it('creates them, or says they existed, as kafkajs does', async () => {
    assert.equal(await createTopics(fakeAdmin(true).admin, [{ topic: 't' }], WAIT), true);
    assert.equal(await createTopics(fakeAdmin(false).admin, [{ topic: 't' }], WAIT), false);
  });

  it('waits out a broker whose metadata lags behind the creation it acknowledged', async () => {
    const { admin, calls } = fakeAdmin(brokerError('UNKNOWN_TOPIC_OR_PARTITION'), brokerError('UNKNOWN_TOPIC_OR_PARTITION'), brokerError('LEADER_NOT_AVAILABLE'));
    assert.equal(await createTopics(admin, [{ topic: 't' }], WAIT), true);
    assert.deepEqual(calls, { create: 1, metadata: 3 });
  });

  it('fails on any other error, and when the metadata does not catch up in time', async () => {
    await assert.rejects(createTopics(fakeAdmin(brokerError('TOPIC_AUTHORIZATION_FAILED')).admin, [{ topic: 't' }], WAIT), /TOPIC_AUTHORIZATION_FAILED/);
    await assert.rejects(createTopics(fakeAdmin(brokerError('UNKNOWN_TOPIC_OR_PARTITION'), brokerError('INVALID_TOPIC_EXCEPTION')).admin, [{ topic: 't' }], WAIT), /INVALID_TOPIC_EXCEPTION/);
    const lagging = Array.from({ length: 1000 }, () => brokerError('UNKNOWN_TOPIC_OR_PARTITION'));
    await assert.rejects(createTopics(fakeAdmin(brokerError('UNKNOWN_TOPIC_OR_PARTITION'), ...lagging).admin, [{ topic: 't' }], { intervalMs: 1, timeoutMs: 20 }), /UNKNOWN_TOPIC_OR_PARTITION/);
  });
});
