import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Consumer, type KafkaMessage, Kafka, logLevel, Partitioners } from 'kafkajs';
import {
  brokerScript,
  brokerScriptPath,
  kafkaBrokers,
  ownKafkaBroker,
  uniqueTopicPrefix,
} from '../helpers/kafka';
import { freePort } from '../helpers/ports';

/**
 * A real Kafka 4.x broker (scripts/kafka-broker.js, or KAFKA_BROKERS) driven by kafkajs 2.2.4 the way
 * the daemon will: admin, producer, and a consumer group that commits offsets by hand.
 */

const WAIT_MS = 60_000;

/** Resolves with `promise`, or fails the test naming `what` after a bounded wait. */
async function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function hostAndPort(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at), port: Number(address.slice(at + 1)) };
}

interface Received {
  readonly partition: number;
  readonly offset: string;
  readonly key: string;
  readonly value: string;
  readonly seq: string;
}

function describeMessage(partition: number, message: KafkaMessage): Received {
  return {
    partition,
    offset: message.offset,
    key: message.key?.toString() ?? '',
    value: message.value?.toString() ?? '',
    seq: message.headers?.['seq']?.toString() ?? '',
  };
}

describe('Kafka 4.x broker with kafkajs (integration)', function () {
  this.timeout(120_000);

  // kafkajs warnings and errors, shown when a test fails: they name protocol trouble with the broker.
  const clientLog: string[] = [];
  let kafka: Kafka;
  const open: Array<{ disconnect(): Promise<void> }> = [];

  before(async function () {
    this.timeout(600_000); // the first start on a machine downloads the broker's jars
    const brokers = await kafkaBrokers();
    kafka = new Kafka({
      clientId: 'lifelong-kafka-broker-test',
      brokers,
      logLevel: logLevel.WARN,
      logCreator: () => (entry) => {
        clientLog.push(`${entry.label} [${entry.namespace}] ${entry.log.message} ${entry.log['error'] ?? ''}`);
      },
    });
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && clientLog.length > 0) {
      process.stderr.write(`kafkajs log:\n  ${clientLog.join('\n  ')}\n`);
    }
  });

  after(async () => {
    for (const client of open.reverse()) await client.disconnect().catch(() => undefined);
  });

  it('is Kafka 4.x: it refuses the protocol versions that KIP-896 removed in 4.0', async () => {
    const { host, port } = hostAndPort((await kafkaBrokers())[0]!);
    const versions = await brokerScript().requestApiVersions({ host, port });
    // Kafka 3.x still accepts version 0 of these; 4.0 dropped Fetch 0-3, ListOffsets 0, OffsetCommit 0-1,
    // CreateTopics 0-1. (Its removal of Produce 0-2 and Metadata 0-3 was undone before release.)
    const minimum = (apiKey: number, name: string, atLeast: number): void => {
      const range = versions.get(apiKey);
      assert.ok(range !== undefined && range.min >= atLeast, `${name} (api ${apiKey}) versions ${JSON.stringify(range)}`);
    };
    minimum(1, 'Fetch', 4);
    minimum(2, 'ListOffsets', 1);
    minimum(8, 'OffsetCommit', 2);
    minimum(19, 'CreateTopics', 2);
    const own = ownKafkaBroker();
    if (own !== undefined) assert.match(own.kafkaVersion, /^4\./);

    const admin = kafka.admin();
    open.push(admin);
    await admin.connect();
    const cluster = await admin.describeCluster();
    assert.ok(cluster.brokers.length >= 1);
    assert.ok(cluster.clusterId.length > 0);
    if (own !== undefined) assert.deepEqual(cluster.brokers.map((b) => `${b.host}:${b.port}`), [own.bootstrap]);
  });

  it('produces 100 messages, a group consumes and commits them, and a new member resumes after the commit', async () => {
    const prefix = uniqueTopicPrefix('kafka-broker');
    const topic = `${prefix}-events`;
    const groupId = `${prefix}-group`;

    const admin = kafka.admin();
    open.push(admin);
    await admin.connect();
    assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true }), true);
    assert.ok((await admin.listTopics()).includes(topic));

    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    open.push(producer);
    await producer.connect();
    const sent = Array.from({ length: 100 }, (_, i) => ({
      key: `key-${i}`,
      value: JSON.stringify({ i, text: `message ${i}` }),
      headers: { seq: String(i) },
    }));
    const [ack] = await producer.send({ topic, acks: -1, messages: sent });
    assert.equal(ack?.errorCode, 0);

    // The first member reads everything, then commits by hand (autoCommit off). A short fetch wait
    // keeps disconnect() quick: kafkajs waits for the fetch in flight.
    const first = kafka.consumer({ groupId, maxWaitTimeInMs: 500 });
    open.push(first);
    const received: Received[] = [];
    const firstDone = consumeUntil(first, topic, received, () => received.length >= sent.length);
    await within(firstDone, `the first consumer to receive ${sent.length} messages`);
    await first.commitOffsets([{ topic, partition: 0, offset: String(Number(received.at(-1)!.offset) + 1) }]);
    await first.disconnect();

    assert.equal(received.length, sent.length);
    assert.deepEqual(
      received.map((r) => [r.partition, r.offset, r.key, r.value, r.seq]),
      sent.map((s, i) => [0, String(i), s.key, s.value, String(i)]),
    );
    const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
    assert.deepEqual(committed, [{ topic, partitions: [{ partition: 0, offset: '100', metadata: null }] }]);

    // A new member of the same group starts at the commit: even asked for fromBeginning, the first
    // record it sees is the one written after the commit.
    await producer.send({ topic, acks: -1, messages: [{ key: 'after-commit', value: 'after-commit', headers: { seq: '100' } }] });
    const second = kafka.consumer({ groupId, maxWaitTimeInMs: 500 });
    open.push(second);
    const resumed: Received[] = [];
    await within(consumeUntil(second, topic, resumed, () => resumed.length >= 1), 'the second consumer to receive a message');
    await second.disconnect();
    assert.deepEqual(resumed[0], { partition: 0, offset: '100', key: 'after-commit', value: 'after-commit', seq: '100' });
  });

  it('answers per-partition offsets and deletes topics (admin calls the daemon uses)', async () => {
    const topic = `${uniqueTopicPrefix('kafka-admin')}-three`;
    const admin = kafka.admin();
    open.push(admin);
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    open.push(producer);
    await producer.connect();
    await producer.send({ topic, messages: [0, 1, 2, 2, 2].map((p, i) => ({ partition: p, value: `v${i}` })) });

    const offsets = await admin.fetchTopicOffsets(topic);
    const highByPartition = Object.fromEntries(offsets.map((o) => [o.partition, o.high]));
    assert.deepEqual(highByPartition, { 0: '1', 1: '1', 2: '3' });

    await admin.deleteTopics({ topics: [topic] });
    assert.ok(!(await admin.listTopics()).includes(topic));
  });
});

/** Subscribes from the beginning, runs with manual commits, resolves once `done()` holds. */
async function consumeUntil(consumer: Consumer, topic: string, into: Received[], done: () => boolean): Promise<void> {
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      into.push(describeMessage(partition, message));
      if (done()) finish();
    },
  });
  return finished;
}

/** Whether pid is a live process (an exited, not yet reaped one counts as gone). */
function processRunning(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('scripts/kafka-broker.js', function () {
  this.timeout(120_000);

  const script = brokerScript();
  const scratch: string[] = [];
  const tempDir = (label: string): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `lifelong-${label}-`));
    scratch.push(dir);
    return dir;
  };

  /** Runs `fn` with some environment variables replaced (undefined removes one), then restores them. */
  async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
    const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
    const apply = (values: Record<string, string | undefined>): void => {
      for (const [k, v] of Object.entries(values)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    };
    apply(vars);
    try {
      return await fn();
    } finally {
      apply(saved);
    }
  }

  function fakeMaven(script: string): string {
    const bin = tempDir('fake-mvn');
    fs.writeFileSync(path.join(bin, 'mvn'), `#!/bin/sh\n${script}\n`, { mode: 0o755 });
    return bin;
  }

  after(() => {
    for (const dir of scratch) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a taken port with a message that names it', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const taken = (holder.address() as net.AddressInfo).port;
    try {
      await assert.rejects(script.startBroker({ port: taken, controllerPort: await freePort() }), (error: Error) => {
        assert.match(error.message, new RegExp(`--port ${taken} on 127\\.0\\.0\\.1 is already in use`));
        return true;
      });
    } finally {
      holder.close();
    }
  });

  it('says that Java is missing rather than failing obscurely', async () => {
    await withEnv({ PATH: tempDir('empty-path'), JAVA_HOME: undefined }, async () => {
      await assert.rejects(script.startBroker({ port: await freePort(), controllerPort: await freePort() }), /cannot run Java.*needs Java 17/s);
    });
  });

  it('leaves no partial jar cache behind when Maven fails, and says that mvn is missing', async () => {
    const cache = tempDir('kafka-cache');
    const failing = fakeMaven('mkdir -p libs && echo half > libs/half.jar && echo "simulated network failure" >&2 && exit 1');
    await withEnv({ LIFELONG_CACHE: cache, PATH: `${failing}${path.delimiter}/usr/bin:/bin` }, async () => {
      await assert.rejects(script.ensureJars(), /Maven could not collect.*simulated network failure/s);
    });
    assert.deepEqual(fs.readdirSync(cache), [], 'the failed download left files in the cache');

    await withEnv({ LIFELONG_CACHE: cache, PATH: tempDir('empty-path') }, async () => {
      await assert.rejects(script.ensureJars(), /no `mvn` on PATH/);
    });
    assert.deepEqual(fs.readdirSync(cache), []);
  });

  it('downloads the jars once and reuses the cache afterwards', async () => {
    const cache = tempDir('kafka-cache');
    const calls = path.join(tempDir('mvn-calls'), 'count');
    const jar = `kafka_2.13-${script.KAFKA_VERSION}.jar`;
    // Maven's stand-in writes the broker jar where -DoutputDirectory points, and counts its calls.
    const maven = fakeMaven(
      `echo call >> '${calls}'\nfor a in "$@"; do case "$a" in -DoutputDirectory=*) out="\${a#-DoutputDirectory=}";; esac; done\n` +
        `mkdir -p "$out" && echo jar > "$out/${jar}"`,
    );
    // A cache dir without the broker jar (hand-made, or an older layout) is replaced, not trusted.
    const stale = path.join(cache, `kafka-${script.KAFKA_VERSION}`, 'libs', 'stale.jar');
    fs.mkdirSync(path.dirname(stale), { recursive: true });
    fs.writeFileSync(stale, 'stale');
    await withEnv({ LIFELONG_CACHE: cache, PATH: `${maven}${path.delimiter}/usr/bin:/bin` }, async () => {
      const libs = await script.ensureJars();
      assert.ok(!fs.existsSync(stale));
      assert.equal(libs, path.join(cache, `kafka-${script.KAFKA_VERSION}`, 'libs'));
      assert.ok(fs.existsSync(path.join(libs, jar)));
      assert.equal(await script.ensureJars(), libs);
    });
    assert.equal(fs.readFileSync(calls, 'utf8').trim().split('\n').length, 1, 'Maven ran again despite the cache');
    assert.deepEqual(fs.readdirSync(cache), [`kafka-${script.KAFKA_VERSION}`]);
  });

  it('start / status / stop from the command line, and a restart on the same --data', async () => {
    const data = tempDir('kafka-data');
    const cli = (...args: string[]): { status: number | null; stdout: string; stderr: string } =>
      spawnSync(process.execPath, [brokerScriptPath(), ...args], { encoding: 'utf8', timeout: 110_000 });
    const ports = ['--port', String(await freePort()), '--controller-port', String(await freePort())];

    const started = cli('start', ...ports, '--data', data);
    assert.equal(started.status, 0, started.stderr);
    assert.equal(started.stdout, `127.0.0.1:${ports[1]}\n`);
    const state = JSON.parse(fs.readFileSync(path.join(data, 'broker.json'), 'utf8')) as { pid: number };
    assert.ok(fs.existsSync(path.join(data, 'kraft-logs', 'meta.properties')));

    const running = cli('status', '--data', data);
    assert.equal(running.status, 0, running.stdout);
    assert.match(running.stdout, new RegExp(`^running 127\\.0\\.0\\.1:${ports[1]} \\(pid ${state.pid}, Kafka 4\\.`));

    assert.equal(cli('stop', '--data', data).status, 0);
    assert.ok(!processRunning(state.pid), 'the broker process survived stop');
    const stopped = cli('status', '--data', data);
    assert.equal(stopped.status, 1);
    assert.match(stopped.stdout, /^not running/);
    // A --data dir given by the caller is kept (with its formatted storage), and starts again.
    assert.ok(fs.existsSync(path.join(data, 'kraft-logs', 'meta.properties')));
    const again = cli('start', ...ports, '--data', data);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(cli('stop', '--data', data).status, 0);
  });
});
