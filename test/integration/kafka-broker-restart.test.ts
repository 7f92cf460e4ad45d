import assert from 'node:assert/strict';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import type { SampleKind, TaskInfo } from '../../src/core/types';
import type { Logger } from '../../src/core/log';
import { runEngine } from '../../src/engine/engine';
import { controlMessage, createKafkaConnector, encodeJson, type EncodedMessage, type KafkaConnector } from '../../src/kafka';
import type { LabelledBatch, TrainResult } from '../../src/strategies/strategy';
import { FakeStrategy } from '../helpers/fake-strategy';
import { DedicatedBroker, uniqueTopicPrefix } from '../helpers/kafka';

/**
 * The Kafka source under the engine while its broker goes away: a restart on the same data in the
 * middle of a task is survived with nothing lost and nothing trained twice; a broker wiped and
 * recreated on the same address (topics, offsets and the consumer group gone) is followed: the
 * recreated topics are read from their start, an ended task's new records are evaluated, the
 * current task's trained, and a new topic becomes the next task.
 */

const INPUT_SIZE = 4;

/** Trains slowly enough that the broker goes away while records are in hand. */
class SlowStrategy extends FakeStrategy {
  override async trainBatch(task: TaskInfo, batch: LabelledBatch): Promise<TrainResult> {
    await new Promise((resolve) => setTimeout(resolve, 40));
    return super.trainBatch(task, batch);
  }
}

/** A labelled json sample whose first feature is `n`. */
function sample(n: number): EncodedMessage {
  return encodeJson({ x: [n, 0.5, 0.25, 1], y: String(n % 2) });
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

async function until(what: string, done: () => boolean, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Warnings kept for the assertions; the rest dropped. */
function warningLog(warnings: string[]): Logger {
  const none = (): void => undefined;
  return { debug: none, info: none, warn: (message: string) => void warnings.push(message), error: (message: string) => void warnings.push(message) } as unknown as Logger;
}

/** The engine over a Kafka source: what happened to each sample, by its first feature. */
class Daemon {
  readonly kinds = new Map<number, SampleKind[]>();
  readonly resets: string[] = [];
  readonly warnings: string[] = [];
  readonly strategy = new SlowStrategy();
  private readonly connector: KafkaConnector;
  private readonly stop = new AbortController();
  readonly done: Promise<void>;
  failure: unknown;

  constructor(brokers: string[], prefix: string) {
    this.connector = createKafkaConnector({
      brokers,
      clientId: prefix,
      groupId: `${prefix}-group`,
      topicPattern: `${prefix}-.*`,
      deadLetterTopic: `${prefix}-dead-letter`,
      inputSize: INPUT_SIZE,
      topicDiscoveryMs: 250,
      sessionTimeoutMs: 6000,
      heartbeatIntervalMs: 500,
      maxWaitTimeMs: 100,
      commitIntervalMs: 200,
      closeTimeoutMs: 20_000,
      onPartitionReset: (topic, partition) => this.resets.push(`${topic}[${partition}]`),
      log: warningLog(this.warnings),
    });
    const { source, sink } = this.connector;
    this.done = new Promise<void>((resolve, reject) => {
      runEngine({ source, strategy: this.strategy, batchSize: 8, batchTimeoutMs: 100, probeSize: 2, holdoutEvery: 1000, sink, stop: this.stop.signal }).subscribe({
        next: (event) => {
          if (event.kind !== 'step-outcome') return;
          event.samples.forEach((s, i) => {
            const n = s.sample.x[0] as number;
            this.kinds.set(n, [...(this.kinds.get(n) ?? []), event.plan[i] as SampleKind]);
          });
        },
        error: reject,
        complete: resolve,
      });
    });
    this.done.catch((error: unknown) => (this.failure = error));
  }

  count(n: number, kind: SampleKind): number {
    return (this.kinds.get(n) ?? []).filter((k) => k === kind).length;
  }

  /** Learned: trained, or held out for the probe (a sample is either). */
  learned(n: number): number {
    return this.count(n, 'trained') + this.count(n, 'held-out');
  }

  async close(): Promise<void> {
    this.stop.abort();
    await this.done.catch(() => undefined);
    await this.connector.sink.close();
    await this.connector.source.close();
  }
}

describe('the Kafka source while its broker restarts or is recreated (integration, a broker of its own)', function () {
  this.timeout(600_000);
  let broker: DedicatedBroker;
  let daemon: Daemon | undefined;

  before(async function () {
    this.timeout(300_000);
    broker = await DedicatedBroker.start();
  });

  after(async () => {
    await broker?.close();
  });

  afterEach(async () => {
    await daemon?.close();
    daemon = undefined;
  });

  /** Produces through a client of its own (the broker may have restarted since the last one). */
  async function produce(topics: Record<string, readonly EncodedMessage[]>, create: readonly string[] = []): Promise<void> {
    const kafka = new Kafka({ clientId: 'restart-test-tools', brokers: broker.brokers, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await admin.connect();
    await producer.connect();
    try {
      if (create.length > 0) await admin.createTopics({ topics: create.map((topic) => ({ topic, numPartitions: 1 })), waitForLeaders: true });
      for (const [topic, messages] of Object.entries(topics)) {
        await producer.send({ topic, messages: messages.map((m) => ({ value: m.value, headers: m.headers })) });
      }
    } finally {
      await producer.disconnect();
      await admin.disconnect();
    }
  }

  it('survives a broker restart in the middle of a task: every sample learned once, none lost', async () => {
    const prefix = uniqueTopicPrefix('restart');
    const topic = `${prefix}-a`;
    await produce({ [topic]: range(0, 200).map(sample) }, [topic]);
    daemon = new Daemon(broker.brokers, prefix);
    const running = daemon;
    await until('50 samples trained', () => range(0, 200).filter((n) => running.learned(n) > 0).length >= 50);

    await broker.restart({ downMs: 2000 });
    await produce({ [topic]: range(200, 400).map(sample) });
    await until('every sample learned', () => running.failure !== undefined || range(0, 400).every((n) => running.learned(n) > 0));

    assert.equal(running.failure, undefined, `the daemon failed: ${String(running.failure)}`);
    const twice = range(0, 400).filter((n) => running.learned(n) > 1);
    assert.deepEqual(twice, [], 'samples learned twice across the restart');
    assert.deepEqual(running.resets, [], 'a restart on the same data is no recreated topic');
    assert.deepEqual(running.strategy.calls.filter((c) => c.startsWith('begin:')), [`begin:${topic}`]);
  });

  it('follows a wiped and recreated broker: topics read again from their start, tasks keep their phases', async () => {
    const prefix = uniqueTopicPrefix('wipe');
    const [a, b, c] = [`${prefix}-a`, `${prefix}-b`, `${prefix}-c`];
    await produce({ [a]: [...range(0, 100).map(sample), controlMessage()], [b]: range(100, 200).map(sample) }, [a, b]);
    daemon = new Daemon(broker.brokers, prefix);
    const running = daemon;
    await until('both tasks learned', () => range(0, 200).every((n) => running.learned(n) > 0));

    await broker.restart({ wipe: true, downMs: 2000 });
    // Fewer records than before on b (its log ends below what was read), more on a (only the
    // new cluster id tells), and a topic never seen.
    await produce({ [a]: range(2000, 2150).map(sample), [b]: range(1100, 1130).map(sample), [c]: range(1200, 1230).map(sample) }, [a, b, c]);
    const expectedLearned = [...range(1100, 1130), ...range(1200, 1230)];
    await until(
      'the recreated topics read',
      () => running.failure !== undefined || (expectedLearned.every((n) => running.learned(n) > 0) && range(2000, 2150).every((n) => running.count(n, 'evaluated') > 0)),
    );

    assert.equal(running.failure, undefined, `the daemon failed: ${String(running.failure)}`);
    assert.deepEqual(range(2000, 2150).filter((n) => running.learned(n) > 0), [], 'the ended task a was trained again');
    assert.deepEqual(
      running.strategy.calls.filter((call) => call.startsWith('begin:') || call.startsWith('end:')),
      [`begin:${a}`, `end:${a}`, `begin:${b}`, `end:${b}`, `begin:${c}`],
    );
    assert.ok(running.resets.includes(`${a}[0]`) && running.resets.includes(`${b}[0]`), `partition resets counted: ${running.resets.join(', ')}`);
    assert.ok(running.warnings.some((w) => /cluster id changed/.test(w)), 'the recreated cluster is logged at warn');
  });
});
