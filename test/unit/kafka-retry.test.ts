import * as assert from 'node:assert/strict';
import { LifelongError } from '../../src/core/errors';
import { silentLogger } from '../../src/core/log';
import { isTransient } from '../../src/kafka/error-causes';
import { retryTransient, type RetryPolicy } from '../../src/kafka/retry';

const POLICY: RetryPolicy = { attempts: 4, initialDelayMs: 100, maxDelayMs: 250 };

/** A kafkajs-like error: only `name` and `retriable` are read. */
function kafkaError(name: string, retriable: boolean): Error {
  return Object.assign(new Error(name), { name, retriable });
}

/** Work failing with `errors` in turn, then returning 'ok'; sleeps are recorded, not waited. */
function flaky(...errors: Error[]) {
  const sleeps: number[] = [];
  let calls = 0;
  const work = async (): Promise<string> => {
    const error = errors[calls++];
    if (error) throw error;
    return 'ok';
  };
  const control = { log: silentLogger, sleep: async (ms: number) => void sleeps.push(ms) };
  return { work, control, sleeps, calls: () => calls };
}

describe('Kafka retries of transient failures (without a broker)', () => {
  it('tells transient failures from the rest', () => {
    assert.equal(isTransient(kafkaError('KafkaJSConnectionError', true)), true);
    assert.equal(isTransient(kafkaError('KafkaJSNumberOfRetriesExceeded', false)), true, 'kafkajs gave up on a retriable error');
    assert.equal(isTransient(kafkaError('KafkaJSProtocolError', false)), false);
    assert.equal(isTransient(new LifelongError('x', { retriable: true })), true);
    assert.equal(isTransient(new LifelongError('kafka: the connection is closed')), false);
    assert.equal(isTransient(new Error('plain')), false);
    assert.equal(isTransient('text'), false);
    assert.equal(isTransient(Object.assign(new Error('wrapper'), { retriable: false, cause: kafkaError('KafkaJSConnectionError', true) })), false, 'the wrapper decides');
  });

  it('retries a transient failure with doubling waits up to the cap, and returns the result', async () => {
    const { work, control, sleeps, calls } = flaky(kafkaError('KafkaJSConnectionError', true), kafkaError('KafkaJSConnectionError', true), kafkaError('KafkaJSNumberOfRetriesExceeded', false));
    assert.equal(await retryTransient('subscribing', work, POLICY, control), 'ok');
    assert.equal(calls(), 4);
    assert.deepEqual(sleeps, [100, 200, 250]);
  });

  it('gives up after the attempts, with the last error', async () => {
    const last = kafkaError('KafkaJSConnectionError', true);
    const { work, control, sleeps, calls } = flaky(kafkaError('KafkaJSConnectionError', true), kafkaError('KafkaJSConnectionError', true), kafkaError('KafkaJSConnectionError', true), last);
    await assert.rejects(retryTransient('subscribing', work, POLICY, control), (error: unknown) => error === last);
    assert.equal(calls(), 4);
    assert.equal(sleeps.length, 3);
  });

  it('does not retry a failure that is not transient', async () => {
    const fatal = kafkaError('KafkaJSProtocolError', false);
    const { work, control, sleeps } = flaky(fatal);
    await assert.rejects(retryTransient('dead-lettering', work, POLICY, control), (error: unknown) => error === fatal);
    assert.deepEqual(sleeps, []);
  });

  it('stops retrying once told to (the source is closing)', async () => {
    const first = kafkaError('KafkaJSConnectionError', true);
    const { work, control, sleeps } = flaky(first, first);
    await assert.rejects(retryTransient('dead-lettering', work, POLICY, { ...control, stopped: () => true }), (error: unknown) => error === first);
    assert.deepEqual(sleeps, []);
  });
});
