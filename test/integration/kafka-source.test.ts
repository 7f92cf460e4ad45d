import assert from 'node:assert/strict';
import { Kafka, logLevel, Partitioners, type Admin, type IHeaders, type Producer } from 'kafkajs';
import { LifelongError } from '../../src/core/errors';
import { isTaskControl, TASK_AGNOSTIC, TASK_AGNOSTIC_INFO, type Sample, type SampleKind, type SourceItem, type TaskControl } from '../../src/core/types';
import { runEngine } from '../../src/engine/engine';
import type { EngineEvent, StepOutcome, TaskOutcome } from '../../src/operators/events';
import { controlMessage, createKafkaConnector, encodeBinary, encodeJson, HEADER_DETAIL, HEADER_REASON, HEADER_SOURCE_OFFSET, HEADER_SOURCE_TOPIC, isKafkaMessageRef, KafkaSource, type EncodedMessage, type KafkaSourceOptions, type PredictionMessage } from '../../src/kafka';
import type { SourceContext } from '../../src/operators/source';
import { FakeStrategy } from '../helpers/fake-strategy';
import { kafkaBrokers, uniqueTopicPrefix } from '../helpers/kafka';
import { freePort } from '../helpers/ports';

/**
 * KafkaSource and KafkaPredictionSink against a real broker (test/helpers/kafka.ts). Timings are
 * shortened (topic polls, fetch waits, session) so that each case takes a few seconds.
 */

const INPUT_SIZE = 4;
const PULL_TIMEOUT_MS = 30_000;

/** Short timings; commits on every acknowledge so that what a test acknowledged is committed. */
const FAST = {
  clientId: 'lifelong-test',
  topicDiscoveryMs: 250,
  sessionTimeoutMs: 6000,
  heartbeatIntervalMs: 500,
  maxWaitTimeMs: 100,
  commitIntervalMs: 0,
  drainTimeoutMs: 5000,
  closeTimeoutMs: 8000,
  inputSize: INPUT_SIZE,
} as const;

interface Recorded extends SourceContext {
  readonly rejects: { task: string | undefined; reason: string; detail: string }[];
}

function recordingContext(): Recorded {
  const rejects: Recorded['rejects'] = [];
  return { rejects, reject: (task, reason, detail) => rejects.push({ task, reason, detail }), log: () => undefined };
}

/** A json sample whose first feature is `n` (so order can be checked), keyed `k<n>`. */
function sample(n: number, extra: { y?: string | number; id?: string } = { y: String(n % 2) }): EncodedMessage & { key: string } {
  return { ...encodeJson({ x: [n, 0.5, 0.25, 1], ...extra }), key: `k${n}` };
}

/** Pulls `n` items, failing (instead of hanging) if one takes longer than PULL_TIMEOUT_MS. */
async function pull(iterator: AsyncIterator<SourceItem>, n: number): Promise<SourceItem[]> {
  const items: SourceItem[] = [];
  for (let i = 0; i < n; i++) {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no item ${i + 1} of ${n} within ${PULL_TIMEOUT_MS} ms (got ${show(items)})`)), PULL_TIMEOUT_MS);
    });
    try {
      const result = await Promise.race([iterator.next(), timeout]);
      assert.equal(result.done, false, `the stream ended after ${show(items)}`);
      items.push(result.value as SourceItem);
    } finally {
      clearTimeout(timer);
    }
  }
  return items;
}

function show(items: readonly SourceItem[]): string {
  return `[${items.map((item) => (isTaskControl(item) ? `end(${item.task},${item.reason})` : `${item.task}:${(item as Sample).x[0]}`)).join(' ')}]`;
}

const samplesOf = (items: readonly SourceItem[]): Sample[] => items.filter((i): i is Sample => !isTaskControl(i));

function headerText(headers: IHeaders | undefined, name: string): string | undefined {
  const value = headers?.[name];
  return value === undefined ? undefined : String(Array.isArray(value) ? value[0] : value);
}

describe('KafkaSource and KafkaPredictionSink against a real broker (integration)', function () {
  this.timeout(120_000);

  let brokers: string[];
  let kafka: Kafka;
  let admin: Admin;
  let producer: Producer;
  /** Closed after each test, whatever happened. */
  let opened: { close(): Promise<void> }[] = [];

  before(async function () {
    this.timeout(300_000); // the first broker start of a machine collects its jars
    brokers = await kafkaBrokers();
    kafka = new Kafka({ clientId: 'lifelong-test-tools', brokers, logLevel: logLevel.NOTHING });
    admin = kafka.admin();
    await admin.connect();
    producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
  });

  after(async () => {
    await producer?.disconnect();
    await admin?.disconnect();
  });

  afterEach(async () => {
    await Promise.allSettled(opened.map((o) => o.close()));
    opened = [];
  });

  async function createTopics(...topics: string[]): Promise<void> {
    await admin.createTopics({ topics: topics.map((topic) => ({ topic, numPartitions: 1 })), waitForLeaders: true });
  }

  async function produce(topic: string, messages: readonly (EncodedMessage & { key?: string })[]): Promise<void> {
    await producer.send({ topic, messages: messages.map((m) => ({ key: m.key ?? null, value: m.value, headers: m.headers })) });
  }

  function options(prefix: string, extra: Partial<KafkaSourceOptions> = {}): KafkaSourceOptions {
    return { ...FAST, brokers, groupId: `${prefix}-group`, topicPattern: `${prefix}-.*`, deadLetterTopic: `${prefix}-dead-letter`, ...extra };
  }

  function source(opts: KafkaSourceOptions): KafkaSource {
    const created = new KafkaSource(opts);
    opened.push(created);
    return created;
  }

  /** Reads `count` records of a topic from its beginning with a throwaway group. */
  async function readTopic(topic: string, count: number): Promise<{ key: string | null; value: Buffer | null; headers: IHeaders | undefined; offset: string }[]> {
    const consumer = kafka.consumer({ groupId: uniqueTopicPrefix('reader'), maxWaitTimeInMs: 100 });
    const got: { key: string | null; value: Buffer | null; headers: IHeaders | undefined; offset: string }[] = [];
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      const enough = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${got.length} of ${count} records on ${topic} within ${PULL_TIMEOUT_MS} ms`)), PULL_TIMEOUT_MS);
        void consumer.run({
          eachMessage: async ({ message }) => {
            got.push({ key: message.key?.toString() ?? null, value: message.value, headers: message.headers, offset: message.offset });
            if (got.length >= count) {
              clearTimeout(timer);
              resolve();
            }
          },
        });
      });
      await enough;
    } finally {
      await consumer.disconnect();
    }
    return got;
  }

  it('learns task topics one at a time in name order, the next when the current one is caught up', async () => {
    const prefix = uniqueTopicPrefix('order');
    const [a, b] = [`${prefix}-a`, `${prefix}-b`];
    await createTopics(a, b);
    // b is produced first: the order is the topics' names, not the arrival of their data. a holds
    // more than one fetch returns per partition (1 MiB), so unless b stays paused until a is
    // caught up, b's records would arrive between a's first and second fetch.
    const padding = 'p'.repeat(4000);
    const aCount = 320;
    await produce(b, [10_000, 10_001, 10_002].map((n) => sample(n)));
    const aRecords = Array.from({ length: aCount }, (_, n) => sample(n, { y: String(n % 2), id: `${n}-${padding}` }));
    for (let i = 0; i < aCount; i += 80) await produce(a, aRecords.slice(i, i + 80));

    const kafkaSource = source(options(prefix, { maxQueued: 100 }));
    const iterator = kafkaSource.open(recordingContext());
    const items: SourceItem[] = [];
    while (items.length < aCount + 3) {
      const batch = await pull(iterator, Math.min(32, aCount + 3 - items.length));
      items.push(...batch);
      await kafkaSource.acknowledge(samplesOf(batch));
    }

    const expected = [...Array.from({ length: aCount }, (_, n) => `${a}:${n}`), ...[10_000, 10_001, 10_002].map((n) => `${b}:${n}`)];
    assert.deepEqual(
      items.map((i) => `${i.task}:${(i as Sample).x[0]}`),
      expected,
    );
    assert.deepEqual(kafkaSource.taskOrder(), [a, b]);
    const first = items[0] as Sample;
    assert.equal(first.y, '0');
    assert.ok(isKafkaMessageRef(first.ref));
    assert.deepEqual({ ...first.ref, key: first.ref.key?.toString() }, { topic: a, partition: 0, offset: '0', key: 'k0' });
    assert.equal(kafkaSource.unacknowledged, 0);
  });

  it('a control message ends the current task, idleTaskMs ends a quiet one, and ended tasks stay read', async () => {
    const prefix = uniqueTopicPrefix('control');
    const [a, b] = [`${prefix}-a`, `${prefix}-b`];
    await createTopics(a, b);
    await produce(a, [sample(0), sample(1), sample(2), controlMessage()]);
    await produce(b, [sample(10), sample(11)]);

    const kafkaSource = source(options(prefix, { idleTaskMs: 1500 }));
    const iterator = kafkaSource.open(recordingContext());
    const items = await pull(iterator, 7);
    await kafkaSource.acknowledge(samplesOf(items));
    assert.equal(show(items), `[${a}:0 ${a}:1 ${a}:2 end(${a},control) ${b}:10 ${b}:11 end(${b},idle)]`);
    assert.deepEqual(items[3] as TaskControl, { kind: 'end-of-task', task: a, reason: 'control' });

    // a's task has ended, yet its topic is still read: the engine scores such samples.
    await produce(a, [sample(3)]);
    const [late] = await pull(iterator, 1);
    assert.equal(show([late as SourceItem]), `[${a}:3]`);
    await kafkaSource.acknowledge(samplesOf([late as SourceItem]));
  });

  it('a topic created while the source runs is discovered and becomes the next task, nothing lost or repeated', async () => {
    const prefix = uniqueTopicPrefix('discover');
    const [a, b] = [`${prefix}-a`, `${prefix}-b`];
    await createTopics(a);
    await produce(a, [sample(0), sample(1), sample(2)]);

    const kafkaSource = source(options(prefix));
    const iterator = kafkaSource.open(recordingContext());
    const first = await pull(iterator, 3);
    assert.equal(show(first), `[${a}:0 ${a}:1 ${a}:2]`);

    // Not acknowledged yet when b appears: the re-subscription waits for these acknowledgements.
    await createTopics(b);
    await produce(b, [sample(10), sample(11), sample(12)]);
    setTimeout(() => void kafkaSource.acknowledge(samplesOf(first)), 500);
    const second = await pull(iterator, 3);
    await kafkaSource.acknowledge(samplesOf(second));
    assert.equal(show(second), `[${b}:10 ${b}:11 ${b}:12]`);
    assert.deepEqual(kafkaSource.taskOrder(), [a, b]);

    // A later record on b comes next: nothing of a was delivered again across the rebalance.
    await produce(b, [sample(13)]);
    const third = await pull(iterator, 1);
    assert.equal(show(third), `[${b}:13]`);
    await kafkaSource.acknowledge(samplesOf(third));
  });

  it('dead-letters malformed messages with their reason, counts them through reject, and reads on', async () => {
    const prefix = uniqueTopicPrefix('invalid');
    const [a, requests, deadLetter] = [`${prefix}-a`, `${prefix}-requests`, `${prefix}-dead-letter`];
    // Its own output topic matches the pattern too: it must not become a task.
    await createTopics(a, requests, `${a}.predictions`);
    // A dead-letter topic taking smaller records than the input topic: the oversize letter keeps its headers only.
    await admin.createTopics({ topics: [{ topic: deadLetter, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '1500' }] }], waitForLeaders: true });
    const raw = (value: string, key: string): EncodedMessage & { key: string } => ({ value: Buffer.from(value), headers: {}, key });
    await produce(a, [
      sample(0),
      raw('{"x": [1, 2', 'bad-json'),
      { ...encodeJson({ x: [1, 2, 3], y: '1' }), key: 'short' },
      { ...encodeBinary({ x: [Number.NaN, 1, 2, 3], y: '1' }), key: 'nan' },
      raw('{"x": [1, 2, 3, 4], "y": true}', 'bool-label'),
      { ...encodeJson({ x: [1, 2, 3, 4], y: '1', id: 'p'.repeat(3000) }), key: 'big' },
      sample(1),
    ]);
    await produce(requests, [{ ...encodeJson({ x: [5, 5, 5, 5], y: '1' }), key: 'labelled' }, { ...encodeJson({ x: [6, 6, 6, 6], id: 'r0' }), key: 'request' }]);

    const context = recordingContext();
    const kafkaSource = source(options(prefix, { requestTopic: requests, maxMessageBytes: 300 }));
    const iterator = kafkaSource.open(context);
    const items = await pull(iterator, 3);
    await kafkaSource.acknowledge(samplesOf(items));

    const tasks = items.filter((i) => i.task === a).map((i) => (i as Sample).x[0]);
    assert.deepEqual(tasks, [0, 1], `got ${show(items)}`);
    const request = items.find((i) => i.task === TASK_AGNOSTIC) as Sample | undefined;
    assert.ok(request, `no task-agnostic request in ${show(items)}`);
    assert.equal(request.id, 'r0');
    assert.equal(request.y, undefined);

    const expected = ['bad-json', 'bad-label', 'labelled-request', 'non-finite', 'oversize', 'wrong-feature-count'];
    assert.deepEqual(context.rejects.map((r) => r.reason).sort(), expected);
    assert.equal(context.rejects.find((r) => r.reason === 'labelled-request')?.task, TASK_AGNOSTIC);
    assert.equal(context.rejects.find((r) => r.reason === 'bad-json')?.task, a);

    const letters = await readTopic(deadLetter, 6);
    const byKey = new Map(letters.map((l) => [l.key, l]));
    const reasons: Record<string, string> = { 'bad-json': 'bad-json', short: 'wrong-feature-count', nan: 'non-finite', 'bool-label': 'bad-label', big: 'oversize', labelled: 'labelled-request' };
    for (const [key, reason] of Object.entries(reasons)) {
      const letter = byKey.get(key);
      assert.ok(letter, `no dead letter keyed ${key}`);
      assert.equal(headerText(letter.headers, HEADER_REASON), reason, key);
      assert.equal(headerText(letter.headers, HEADER_SOURCE_TOPIC), key === 'labelled' ? requests : a, key);
    }
    assert.equal(headerText(byKey.get('bad-json')?.headers, HEADER_SOURCE_OFFSET), '1');
    assert.equal(byKey.get('bad-json')?.value?.toString(), '{"x": [1, 2');
    assert.equal(byKey.get('big')?.value, null);
    assert.match(String(headerText(byKey.get('big')?.headers, HEADER_DETAIL)), /value dropped: too large/);
    // Neither the dead-letter, the request nor the predictions topic became a task.
    assert.deepEqual(kafkaSource.taskOrder(), [a]);
  });

  it('commits only what was fully processed: a restart with the same group gets exactly the rest', async () => {
    const prefix = uniqueTopicPrefix('offsets');
    const a = `${prefix}-a`;
    await createTopics(a);
    await produce(a, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => sample(n)));
    const opts = options(prefix, { closeTimeoutMs: 1000 });

    const firstRun = source(opts);
    const first = samplesOf(await pull(firstRun.open(recordingContext()), 10));
    // 0..4 and 6 are done; 5 is not, so 5 is the first offset a restart must see again.
    await firstRun.acknowledge(first.filter((s) => [0, 1, 2, 3, 4, 6].includes(s.x[0] as number)));
    await assert.rejects(firstRun.close(), (error: unknown) => {
      assert.ok(error instanceof LifelongError);
      assert.equal(error.retriable, true);
      assert.match(error.message, /4 of 4 samples in hand were not acknowledged/);
      // Only the acknowledgements were late: commit and disconnect still happened.
      assert.doesNotMatch(error.message, /did not finish|failed/);
      return true;
    });

    const secondRun = source(opts);
    const second = samplesOf(await pull(secondRun.open(recordingContext()), 5));
    assert.deepEqual(second.map((s) => s.x[0]), [5, 6, 7, 8, 9]);
    await secondRun.acknowledge(second);
    await secondRun.close();

    const thirdRun = source(opts);
    await produce(a, [sample(10)]);
    const third = samplesOf(await pull(thirdRun.open(recordingContext()), 1));
    assert.deepEqual(third.map((s) => s.x[0]), [10]);
    await thirdRun.acknowledge(third);
    await thirdRun.close();
  });

  it('the sink publishes each prediction keyed like its input to <topic>.predictions; closing twice is safe', async () => {
    const prefix = uniqueTopicPrefix('sink');
    const [a, requests] = [`${prefix}-a`, `${prefix}-requests`];
    await createTopics(a, requests);
    await produce(a, [sample(0, { y: '1', id: 'labelled' }), sample(1, { id: 'u1' }), sample(2, { id: 'u2' })]);
    await produce(requests, [sample(3, { id: 'r3' })]);

    const { source: kafkaSource, sink } = createKafkaConnector(options(prefix, { requestTopic: requests }));
    opened.push(kafkaSource, sink);
    const iterator = kafkaSource.open(recordingContext());
    const items = samplesOf(await pull(iterator, 4));
    const taskA = { name: a, index: 0 };
    const events = items.map((s) => ({ kind: 'sample' as const, task: s.task === TASK_AGNOSTIC ? TASK_AGNOSTIC_INFO : taskA, sample: s }));
    const plan: SampleKind[] = items.map((s) => (s.y !== undefined ? 'trained' : 'predicted'));
    const outcome: StepOutcome = {
      kind: 'step-outcome',
      task: taskA,
      samples: events,
      plan,
      predictions: items.map((s) => ({ label: '7', probabilities: { '7': 0.75, '1': 0.25 }, ...(s.task === TASK_AGNOSTIC ? { inferredTask: a } : {}) })),
      modelVersion: 3,
      parameters: 10,
    };
    await sink.publish(outcome);
    await kafkaSource.acknowledge(items);

    const onA = await readTopic(`${a}.predictions`, 2);
    const values = onA.map((m) => JSON.parse(String(m.value)) as PredictionMessage);
    assert.deepEqual(onA.map((m) => m.key).sort(), ['k1', 'k2']);
    assert.deepEqual(values.map((v) => v.id).sort(), ['u1', 'u2']);
    for (const v of values) {
      assert.equal(v.task, a);
      assert.equal(v.label, '7');
      assert.deepEqual(v.probabilities, { '7': 0.75, '1': 0.25 });
      assert.equal(v.modelVersion, 3);
      assert.equal(v.sourceTopic, a);
      assert.equal(v.sourcePartition, 0);
      assert.equal(v.inferredTask, undefined);
      assert.ok(!Number.isNaN(Date.parse(v.predictedAt)));
    }
    assert.deepEqual(values.map((v) => v.sourceOffset).sort(), ['1', '2']);

    const onRequests = await readTopic(`${requests}.predictions`, 1);
    const answer = JSON.parse(String(onRequests[0]?.value)) as PredictionMessage;
    assert.equal(onRequests[0]?.key, 'k3');
    assert.deepEqual({ id: answer.id, task: answer.task, inferredTask: answer.inferredTask, sourceTopic: answer.sourceTopic }, { id: 'r3', task: a, inferredTask: a, sourceTopic: requests });

    await sink.close();
    const closing = kafkaSource.close();
    assert.equal(kafkaSource.close(), closing, 'a second close() returns the same promise');
    await closing;
    await kafkaSource.close();
    await sink.close();
    assert.deepEqual(await iterator.next(), { done: true, value: undefined });
  });

  it('pauses fetching while maxQueued records wait for the engine, and resumes without losing any', async () => {
    const prefix = uniqueTopicPrefix('backpressure');
    const a = `${prefix}-a`;
    await createTopics(a);
    // ~4 kB records: one fetch brings at most ~1 MiB (about 250) of them per partition.
    const padding = 'p'.repeat(4000);
    const count = 1200;
    const records = Array.from({ length: count }, (_, n) => sample(n, { y: '1', id: `${n}-${padding}` }));
    for (let i = 0; i < count; i += 100) await produce(a, records.slice(i, i + 100));

    const maxQueued = 20;
    const kafkaSource = source(options(prefix, { maxQueued }));
    const iterator = kafkaSource.open(recordingContext());
    const firstItems = await pull(iterator, 1);
    // Time enough to fetch everything several times over, were fetching not paused.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const held = kafkaSource.held;
    assert.ok(held > 0, 'records wait in the queue');
    assert.ok(held < 2 * 260, `held ${held} records: more than maxQueued plus one fetch`);

    const rest = samplesOf(await pull(iterator, count - 1));
    await kafkaSource.acknowledge([...samplesOf(firstItems), ...rest]);
    assert.deepEqual(
      [...samplesOf(firstItems), ...rest].map((s) => s.x[0]),
      Array.from({ length: count }, (_, n) => n),
    );
  });

  it('runs under the engine: tasks in order, predictions published, everything committed on a graceful stop', async () => {
    const prefix = uniqueTopicPrefix('engine');
    const [a, b] = [`${prefix}-a`, `${prefix}-b`];
    await createTopics(a, b);
    await produce(a, [0, 1, 2, 3, 4, 5, 6, 7].map((n) => sample(n, { y: String(n % 2) })));
    await produce(a, [100, 101, 102, 103].map((n) => sample(n, { id: `u${n}` })));
    await produce(b, [200, 201, 202, 203].map((n) => sample(n, { y: String(n % 2) })));

    // The default, timed commits: what the last timer did not commit, close() does.
    const opts = options(prefix, { commitIntervalMs: 1000 });
    const { source: kafkaSource, sink } = createKafkaConnector(opts);
    opened.push(kafkaSource, sink);
    const strategy = new FakeStrategy();
    const stop = new AbortController();
    const events: EngineEvent[] = [];
    let seen = 0;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the engine saw ${seen} of 16 samples within ${PULL_TIMEOUT_MS} ms`)), PULL_TIMEOUT_MS);
      runEngine({ source: kafkaSource, strategy, batchSize: 4, batchTimeoutMs: 200, probeSize: 2, holdoutEvery: 1000, sink, stop: stop.signal }).subscribe({
        next: (event) => {
          events.push(event);
          if (event.kind === 'step-outcome') seen += event.samples.length;
          if (seen >= 16) stop.abort();
        },
        error: (error: unknown) => {
          clearTimeout(timer);
          reject(error);
        },
        complete: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
    await sink.close();
    await kafkaSource.close();

    assert.deepEqual(
      strategy.calls.filter((c) => c.startsWith('begin:') || c.startsWith('end:')),
      [`begin:${a}`, `end:${a}`, `begin:${b}`],
    );
    const ended = events.find((e): e is TaskOutcome => e.kind === 'task-outcome');
    assert.equal(ended?.reason, 'next-task');
    const predictions = await readTopic(`${a}.predictions`, 4);
    assert.deepEqual(predictions.map((m) => (JSON.parse(String(m.value)) as PredictionMessage).id).sort(), ['u100', 'u101', 'u102', 'u103']);
    const committed = await admin.fetchOffsets({ groupId: opts.groupId, topics: [a, b] });
    assert.deepEqual(
      committed.map((t) => [t.topic, t.partitions.map((p) => p.offset)]).sort(),
      [
        [a, ['12']],
        [b, ['4']],
      ],
    );
  });

  it('rejects next() when the broker cannot be reached, instead of hanging', async () => {
    const port = await freePort();
    const kafkaSource = source({ ...FAST, brokers: [`127.0.0.1:${port}`], groupId: 'unreachable', topicPattern: 'x-.*', retries: 0 });
    const iterator = kafkaSource.open(recordingContext());
    await assert.rejects(iterator.next(), (error: unknown) => {
      assert.ok(error instanceof LifelongError, String(error));
      assert.match(error.message, /kafka source could not start/);
      return true;
    });
    await kafkaSource.close();
  });
});
