import * as assert from 'node:assert/strict';
import { Kafka, logLevel, type KafkaMessage } from 'kafkajs';
import { main } from '../../src/cli/main';
import { produceCommand } from '../../src/cli/produce';
import type { Sample } from '../../src/core/types';
import { MNIST_PIXELS } from '../../src/data/mnist';
import { createEmbeddedSource } from '../../src/sources/embedded';
import { decodeMessage, HEADER_FORMAT, type DecodedSample } from '../../src/kafka';
import { kafkaBrokers, uniqueTopicPrefix } from '../helpers/kafka';

const TASKS = ['split-mnist-0-1', 'split-mnist-2-3'];
const PER_TASK = 50;
const SEED = 5;

/** What the producer should have sent, in order: the embedded stream with the same spec. */
async function expectedStream(): Promise<Sample[]> {
  const source = createEmbeddedSource({ dataset: 'split-mnist', tasks: 2, samplesPerTask: PER_TASK, seed: SEED, scenario: 'class-incremental' });
  const stream = source.open({ reject: () => undefined, log: () => undefined });
  const samples: Sample[] = [];
  for (let next = await stream.next(); !next.done; next = await stream.next()) samples.push(next.value as Sample);
  await source.close();
  return samples;
}

/** Reads `expected` messages from the topics with a fresh consumer group, from the beginning. */
async function consume(kafka: Kafka, topics: readonly string[], expected: number): Promise<Map<string, KafkaMessage[]>> {
  const consumer = kafka.consumer({ groupId: uniqueTopicPrefix('produce-reader') });
  const byTopic = new Map<string, KafkaMessage[]>(topics.map((topic) => [topic, []]));
  let count = 0;
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [...topics], fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`read ${count} of ${expected} messages before giving up`)), 120_000);
      consumer
        .run({
          eachMessage: async ({ topic, message }) => {
            byTopic.get(topic)?.push(message);
            if (++count === expected) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return byTopic;
}

describe('lifelong produce (against a real Kafka broker)', function () {
  let brokers: string[];
  let kafka: Kafka;
  let expected: Sample[];

  before(async function () {
    this.timeout(600_000); // the first broker start of a machine collects its jars with Maven
    brokers = await kafkaBrokers();
    kafka = new Kafka({ clientId: 'lifelong-test-produce', brokers, logLevel: logLevel.WARN });
    expected = await expectedStream();
  });

  /** Checks what a 2 x 50, 20%-unlabelled run wrote, with the decoder the daemon uses. */
  async function checkTopics(prefix: string, format: 'json' | 'binary', endMarker: boolean): Promise<void> {
    const topics = TASKS.map((task) => `${prefix}${task}`);
    const perTopic = PER_TASK + (endMarker ? 1 : 0);
    const read = await consume(kafka, topics, topics.length * perTopic);

    const admin = kafka.admin();
    await admin.connect();
    try {
      const metadata = await admin.fetchTopicMetadata({ topics });
      for (const topic of metadata.topics) assert.equal(topic.partitions.length, 1, `${topic.name} has 1 partition`);
      for (const topic of topics) {
        // Nothing beyond what was read: the end offset is the message count.
        const offsets = await admin.fetchTopicOffsets(topic);
        assert.deepEqual(offsets.map((o) => o.high), [String(perTopic)], topic);
      }
    } finally {
      await admin.disconnect();
    }

    topics.forEach((topic, t) => {
      const messages = read.get(topic) as KafkaMessage[];
      assert.equal(messages.length, perTopic, topic);
      assert.deepEqual(messages.map((m) => m.offset), Array.from({ length: perTopic }, (_, i) => String(i)), 'read in offset order');
      const decoded = messages.map((message) => decodeMessage(message, { topic, inputSize: MNIST_PIXELS, maxBytes: 1 << 20 }));
      if (endMarker) assert.deepEqual(decoded.pop(), { kind: 'control', task: topic }, 'the task ends with a control message');
      const samples = decoded.map((result, i) => {
        assert.equal(result.kind, 'sample', `${topic}[${i}]: ${JSON.stringify(result).slice(0, 200)}`);
        return (result as { sample: DecodedSample }).sample;
      });
      const want = expected.slice(t * PER_TASK, (t + 1) * PER_TASK);
      assert.ok(want.every((s) => s.task === TASKS[t]));
      // The stream's order, features bit for bit, key = id, and labels where sent.
      assert.deepEqual(samples.map((s) => s.id), want.map((s) => s.id));
      assert.deepEqual(messages.slice(0, PER_TASK).map((m) => m.key?.toString()), want.map((s) => s.id));
      samples.forEach((sample, i) => {
        const original = want[i] as Sample;
        assert.equal(sample.task, topic, 'the topic names the task');
        assert.deepEqual(sample.x, original.x);
        if (sample.y !== undefined) assert.equal(sample.y, original.y);
      });
      const unlabelled = samples.filter((s) => s.y === undefined);
      assert.equal(unlabelled.length, Math.round(0.2 * PER_TASK), 'exactly 20% unlabelled');
      assert.ok(unlabelled.every((s) => typeof s.id === 'string' && s.id.length > 0), 'prediction requests carry an id');
      for (const message of messages.slice(0, PER_TASK)) {
        const formatHeader = message.headers?.[HEADER_FORMAT]?.toString();
        assert.equal(formatHeader, format === 'binary' ? 'f32le' : undefined);
      }
    });
  }

  it('json through `lifelong produce` at a limited rate: counts, order, 20% unlabelled, end-of-task markers', async function () {
    this.timeout(180_000);
    const prefix = `${uniqueTopicPrefix('produce-json')}-`;
    const code = await main([
      'produce', '--dataset', 'split-mnist', '--tasks', '2', '--samples-per-task', String(PER_TASK), '--brokers', brokers.join(','),
      '--topic-prefix', prefix, '--unlabelled-fraction', '0.2', '--seed', String(SEED), '--rate', '400',
    ]);
    assert.equal(code, 0);
    await checkTopics(prefix, 'json', true);
  });

  it('binary, without end markers: the same stream, features in float32 little-endian', async function () {
    this.timeout(180_000);
    const prefix = `${uniqueTopicPrefix('produce-binary')}-`;
    let output = '';
    const code = await produceCommand(
      ['--dataset', 'split-mnist', '--tasks', '2', '--samples-per-task', String(PER_TASK), '--brokers', brokers.join(','),
        '--topic-prefix', prefix, '--unlabelled-fraction', '0.2', '--seed', String(SEED), '--format', 'binary', '--no-end-marker'],
      { write: (text: string) => (output += text) },
    );
    assert.equal(code, 0);
    await checkTopics(prefix, 'binary', false);
    assert.match(output, new RegExp(`task 1/2 ${prefix}split-mnist-0-1: 50 samples \\(10 unlabelled\\)`));
    assert.match(output, /task 2\/2 .*split-mnist-2-3: 50 samples \(10 unlabelled\)/);
    assert.match(output, /produced 100 messages \(80 labelled, 20 unlabelled\) to 2 topics/);
  });
});
