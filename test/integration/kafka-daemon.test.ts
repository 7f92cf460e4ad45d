import * as assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Kafka, logLevel, type Consumer, type KafkaMessage } from 'kafkajs';
import { produceDataset, type ProducedTopic } from '../../src/cli/produce';
import type { KafkaSourceConfig, PipelineConfig } from '../../src/config/pipeline-config';
import { runPipeline } from '../../src/engine/run-pipeline';
import type { RunReport } from '../../src/engine/report';
import { controlMessage, encodeBinary, encodeJson, HEADER_REASON } from '../../src/kafka';
import { MetricsServer } from '../../src/metrics/http-server';
import { LifelongMetrics } from '../../src/metrics/prometheus';
import { kafkaBrokers, kafkaSource, uniqueTopicPrefix } from '../helpers/kafka';
import { until } from '../helpers/cli-process';
import { parseExposition, type Series } from '../helpers/exposition';
import { freePort } from '../helpers/ports';

/**
 * The daemon against a real Kafka broker (test/helpers/kafka.ts starts one): topics are tasks,
 * predictions go back to Kafka, bad messages to the dead-letter topic, offsets are committed only
 * once processed. What a user attaching lifelong to production topics relies on.
 */

const MAIN = path.resolve(__dirname, '../../src/cli/main.js');



function sum(series: readonly Series[], name: string, labels: Record<string, string> = {}): number {
  return series.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}

async function scrape(port: number): Promise<Series[]> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(res.status, 200);
  return parseExposition(await res.text());
}

function pipelineFor(source: KafkaSourceConfig, name: string): PipelineConfig {
  return {
    name,
    description: 'kafka daemon test',
    seed: 3,
    scenario: 'task-incremental',
    source,
    model: { hiddenLayers: [64], outputUnits: 2 },
    strategy: { name: 'ewc', params: { lambda: 100 } },
    training: { batchSize: 16, optimizer: 'adam', learningRate: 0.003, stepsPerBatch: 1, batchTimeoutMs: 100 },
    evaluation: { probeSize: 100, holdoutEvery: 10, endedTaskLabelled: 'evaluate' },
  };
}

/** The daemon in this process, with a real /metrics endpoint; stop() is what SIGTERM does. */
async function startDaemon(pipeline: PipelineConfig): Promise<{ port: number; stop: () => Promise<RunReport>; done: Promise<RunReport> }> {
  const metrics = new LifelongMetrics({ defaultMetrics: false });
  const server = new MetricsServer({ metrics });
  const port = await server.start('127.0.0.1', 0);
  const abort = new AbortController();
  const done = runPipeline({ pipeline, backend: 'test', metrics, signal: abort.signal }).finally(() => server.close());
  done.catch(() => undefined);
  return {
    port,
    done,
    stop: async () => {
      abort.abort();
      return done;
    },
  };
}

async function produce(brokers: string[], prefix: string, tasks: number, samplesPerTask: number, unlabelledFraction: number, endMarker = true): Promise<ProducedTopic[]> {
  const quiet = { write: () => true };
  const summary = await produceDataset(
    { dataset: 'split-mnist', tasks, samplesPerTask, brokers, topicPrefix: `${prefix}.`, rate: 0, unlabelledFraction, format: 'json', scenario: 'class-incremental', seed: 5, endMarker, clientId: `${prefix}-producer` },
    quiet as never,
  );
  return [...summary.topics];
}

/** Every message of the topics, read from the beginning by a throwaway group. */
async function readAll(brokers: string[], topics: readonly string[], expected: number): Promise<{ topic: string; message: KafkaMessage }[]> {
  const kafka = new Kafka({ brokers, clientId: 'reader', logLevel: logLevel.NOTHING });
  const consumer: Consumer = kafka.consumer({ groupId: `reader-${Math.random().toString(36).slice(2)}`, maxWaitTimeInMs: 200 });
  const got: { topic: string; message: KafkaMessage }[] = [];
  await consumer.connect();
  try {
    for (const topic of topics) await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ topic, message }) => void got.push({ topic, message }) });
    await until(`${expected} messages on ${topics.join(', ')}`, async () => (got.length >= expected ? true : undefined), 60_000);
    await new Promise((r) => setTimeout(r, 300)); // anything beyond the expected count would show up now
  } finally {
    await consumer.disconnect();
  }
  return got;
}

describe('the daemon on Kafka (real broker)', function () {
  this.timeout(600_000);
  let brokers: string[];
  before(async () => {
    brokers = await kafkaBrokers();
  });

  it('learns three split-MNIST topics in order, publishes predictions with keys and ids, and /metrics shows the accuracy matrix', async () => {
    const prefix = uniqueTopicPrefix('daemon-three');
    const topics = await produce(brokers, prefix, 3, 300, 0.1);
    const requestTopic = `${prefix}.requests`;
    const daemon = await startDaemon(pipelineFor(kafkaSource(brokers, prefix, { requestTopic }), 'three-topics'));
    await until('three tasks learned', async () => (sum(await scrape(daemon.port), 'lifelong_tasks_learned') >= 3 ? true : undefined));
    // Task-agnostic requests: digits 2 and 3 with no task; the model must say which task it inferred.
    const { samples: requests } = await import('../helpers/mnist-task').then((m) => m.takeSamples({ dataset: 'split-mnist', tasks: 2, samplesPerTask: 40, seed: 21, scenario: 'class-incremental' }));
    const asked = requests.filter((r) => r.task === 'split-mnist-2-3');
    const kafka = new Kafka({ brokers, clientId: prefix, logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: requestTopic, messages: asked.map((r) => ({ key: `req-${r.id}`, ...encodeJson({ x: r.x, id: `req-${r.id}` }) })) });
    await producer.disconnect();
    const series = await until('the requests answered', async () => {
      const s = await scrape(daemon.port);
      return sum(s, 'lifelong_samples_total', { task: '*', kind: 'predicted' }) >= asked.length ? s : undefined;
    });
    const report = await daemon.stop();
    const answers = await readAll(brokers, [`${requestTopic}.predictions`], asked.length);
    const inferred = answers.map(({ message }) => JSON.parse(String(message.value)) as { task: string | null; label: string | null; id: string });
    assert.ok(inferred.every((a) => a.label !== null && topics.some((t) => t.topic === a.task)), 'each answer names a learned task');
    assert.deepEqual(inferred.map((a) => a.id).sort(), asked.map((r) => `req-${r.id}`).sort(), 'one answer per request, with its id');
    assert.deepEqual(answers.map(({ message }) => String(message.key)).sort(), asked.map((r) => `req-${r.id}`).sort(), 'keys echoed');
    assert.deepEqual(report.tasks, topics.map((t) => t.topic), 'one task per topic, in production order');

    // The accuracy matrix over the three tasks: row i = after learning task i, lower triangle.
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j <= i; j++) {
        const labels = { learned_task: topics[i]!.topic, evaluated_task: topics[j]!.topic };
        const found = series.filter((s) => s.name === 'lifelong_accuracy_matrix_ratio' && s.labels.learned_task === labels.learned_task && s.labels.evaluated_task === labels.evaluated_task);
        assert.equal(found.length, 1, `accuracy after ${i} on ${j}`);
        if (i === j) assert.ok((found[0] as Series).value > 0.8, `task ${j} learned: ${(found[0] as Series).value}`);
      }
    }
    // Every consumed message is accounted for: each sample trained, held out or predicted.
    const produced = topics.reduce((a, t) => a + t.samples, 0) + asked.length;
    assert.equal(sum(series, 'lifelong_samples_total'), produced);
    assert.equal(sum(series, 'lifelong_samples_total', { kind: 'predicted' }), topics.reduce((a, t) => a + t.unlabelled, 0) + asked.length);

    // Predictions: one per unlabelled message, on <topic>.predictions, with the input's key and id.
    const unlabelled = topics.reduce((a, t) => a + t.unlabelled, 0);
    const predictions = await readAll(brokers, topics.map((t) => `${t.topic}.predictions`), unlabelled);
    assert.equal(predictions.length, unlabelled);
    for (const { topic, message } of predictions) {
      const body = JSON.parse(String(message.value)) as { id: string; task: string; label: string | null; probabilities: Record<string, number>; modelVersion: number; sourceTopic: string };
      assert.equal(topic, `${body.sourceTopic}.predictions`);
      assert.equal(String(message.key), body.id, 'the input key comes back');
      assert.equal(body.task, body.sourceTopic);
      // null only before the task's head knows any label (a request among its first samples).
      if (body.label !== null) assert.ok(Object.keys(body.probabilities).includes(body.label), JSON.stringify(body));
      assert.ok(body.modelVersion >= 0);
    }
    const answered = predictions.filter(({ message }) => JSON.parse(String(message.value)).label !== null).length;
    assert.ok(answered >= 0.9 * unlabelled, `${answered} of ${unlabelled} requests answered`);
  });

  it('makes a topic created while it runs a new task, and learns it without a restart', async () => {
    const prefix = uniqueTopicPrefix('daemon-new-topic');
    const [first] = await produce(brokers, prefix, 1, 200, 0);
    const daemon = await startDaemon(pipelineFor(kafkaSource(brokers, prefix), 'new-topic'));
    await until('the first task learned', async () => (sum(await scrape(daemon.port), 'lifelong_tasks_learned') >= 1 ? true : undefined));
    // A second topic appears only now (a new class for the running daemon).
    const kafka = new Kafka({ brokers, clientId: prefix, logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    const secondTopic = `${prefix}.split-mnist-2-3`;
    const { samples } = await import('../helpers/mnist-task').then((m) => m.takeSamples({ dataset: 'split-mnist', tasks: 2, samplesPerTask: 200, seed: 9, scenario: 'class-incremental' }));
    const second = samples.filter((s) => s.task === 'split-mnist-2-3');
    await producer.send({ topic: secondTopic, messages: [...second.map((s) => encodeJson({ x: s.x, y: s.y, id: s.id })), controlMessage()] });
    await producer.disconnect();
    const series = await until('the new topic learned', async () => {
      const s = await scrape(daemon.port);
      return sum(s, 'lifelong_tasks_learned') >= 2 ? s : undefined;
    });
    const report = await daemon.stop();
    assert.deepEqual(report.tasks, [first!.topic, secondTopic]);
    const trainedOrHeld = sum(series, 'lifelong_samples_total', { task: secondTopic, kind: 'trained' }) + sum(series, 'lifelong_samples_total', { task: secondTopic, kind: 'held-out' });
    assert.equal(trainedOrHeld, second.length);
  });

  it('dead-letters malformed messages with their reasons while learning goes on; the counters add up to what was produced', async () => {
    const prefix = uniqueTopicPrefix('daemon-bad');
    const topic = `${prefix}.split-mnist-0-1`;
    const { samples } = await import('../helpers/mnist-task').then((m) => m.takeSamples({ dataset: 'split-mnist', tasks: 1, samplesPerTask: 150, seed: 4, scenario: 'class-incremental' }));
    const good = samples.map((s) => encodeJson({ x: s.x, y: s.y, id: s.id }));
    const nan = Float32Array.from(samples[0]!.x);
    nan[3] = Number.NaN;
    const bad = [
      { value: Buffer.from('{"x": [0, 1'), reason: 'bad-json' },
      { value: Buffer.from(JSON.stringify({ x: [1, 2, 3], y: 1 })), reason: 'wrong-feature-count' },
      { ...encodeBinary({ x: nan, y: '0', id: 'nan' }), reason: 'non-finite' },
      { value: Buffer.from(JSON.stringify({ x: Array.from(samples[0]!.x), y: true })), reason: 'bad-label' },
      { value: Buffer.alloc(40_000, 32), reason: 'oversize' },
    ];
    const kafka = new Kafka({ brokers, clientId: prefix, logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    const mixed = [...good.slice(0, 50), ...bad.slice(0, 3).map(({ reason: _r, ...m }) => m), ...good.slice(50, 100), ...bad.slice(3).map(({ reason: _r, ...m }) => m), ...good.slice(100), controlMessage()];
    await producer.send({ topic, messages: mixed });
    await producer.disconnect();

    const daemon = await startDaemon(pipelineFor(kafkaSource(brokers, prefix, { maxMessageBytes: 30_000 }), 'bad-messages'));
    const series = await until('the task learned', async () => {
      const s = await scrape(daemon.port);
      return sum(s, 'lifelong_tasks_learned') >= 1 ? s : undefined;
    });
    await daemon.stop();
    assert.equal(sum(series, 'lifelong_samples_total', { kind: 'rejected' }), bad.length);
    assert.equal(sum(series, 'lifelong_samples_total'), good.length + bad.length, 'every message counted once');
    assert.equal(sum(series, 'lifelong_samples_total', { kind: 'trained' }) + sum(series, 'lifelong_samples_total', { kind: 'held-out' }), good.length, 'learning went on');
    const letters = await readAll(brokers, [`${prefix}.dead-letter`], bad.length);
    assert.deepEqual(letters.map((l) => String(l.message.headers?.[HEADER_REASON])).sort(), bad.map((b) => b.reason).sort());
  });

  it('graceful SIGTERM commits what was processed: a restart with the same group trains no committed sample again', async () => {
    const prefix = uniqueTopicPrefix('daemon-restart');
    const [produced] = await produce(brokers, prefix, 1, 1000, 0, false);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifelong-kafka-'));
    const pipelineFile = path.join(dir, 'pipeline.json');
    const base = pipelineFor(kafkaSource(brokers, prefix), 'restart');
    // Slow on purpose (a wider layer, many steps per batch): SIGTERM must land mid-stream even on
    // a fast, idle machine, so that the first run stops with messages still unprocessed.
    const pipeline: PipelineConfig = { ...base, model: { ...base.model, hiddenLayers: [256] }, training: { ...base.training, stepsPerBatch: 20 } };
    fs.writeFileSync(pipelineFile, JSON.stringify(pipeline));

    /** The real CLI in a child process, stopped by SIGTERM once `ready` holds; its last scrape before that. */
    const runOnce = async (ready: (s: Series[]) => boolean, settleMs = 0): Promise<Series[]> => {
      const port = await freePort();
      const child: ChildProcess = spawn(process.execPath, ['-e', `require(${JSON.stringify(MAIN)}).main(process.argv.slice(1)).then((c) => { process.exitCode = c; setTimeout(() => process.exit(c), 2000).unref(); })`, 'run', '--pipeline', pipelineFile, '--metrics-port', String(port)], {
        stdio: ['ignore', 'ignore', 'pipe'],
        // Its checkpoints in the test's directory, not the working directory's checkpoints/.
        env: { ...process.env, LIFELONG_BACKEND: process.env.LIFELONG_TEST_BACKEND ?? 'auto', LIFELONG_LOG_LEVEL: 'warn', LIFELONG_CHECKPOINT_DIRECTORY: path.join(dir, 'checkpoints') },
      });
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      try {
        await until('the daemon to make progress', async () => (ready(await scrape(port)) ? true : undefined));
        await new Promise((r) => setTimeout(r, settleMs));
        const last = await scrape(port);
        child.kill('SIGTERM');
        assert.equal(await exited, 0, `exit code after SIGTERM; stderr:\n${stderr.slice(-2000)}`);
        return last;
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    };
    try {
      const kafka = new Kafka({ brokers, clientId: prefix, logLevel: logLevel.NOTHING });
      const admin = kafka.admin();
      await admin.connect();
      const groupId = pipeline.source.type === 'kafka' ? pipeline.source.groupId : '';
      const committed = async () => Number((await admin.fetchOffsets({ groupId, topics: [produced!.topic] }))[0]?.partitions[0]?.offset ?? -1);
      try {
        const first = await runOnce((s) => sum(s, 'lifelong_samples_total') >= 120);
        const afterFirst = await committed();
        // Everything the first run had processed when last scraped was committed by its shutdown.
        assert.ok(afterFirst >= sum(first, 'lifelong_samples_total') && afterFirst < produced!.samples, `committed after the first run: ${afterFirst}`);
        // The restart sees exactly the uncommitted rest: nothing twice, nothing lost.
        const rest = produced!.samples - afterFirst;
        const second = await runOnce((s) => sum(s, 'lifelong_samples_total') >= rest, 1500);
        assert.equal(sum(second, 'lifelong_samples_total'), rest, 'the second run processed only what was not committed');
        assert.equal(await committed(), produced!.samples);
      } finally {
        await admin.disconnect();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('scores labelled samples sent to an ended task: its live accuracy moves, nothing is trained', async () => {
    const prefix = uniqueTopicPrefix('daemon-ended');
    const [first] = await produce(brokers, prefix, 2, 200, 0);
    const daemon = await startDaemon(pipelineFor(kafkaSource(brokers, prefix), 'ended-task'));
    const before = await until('both tasks learned', async () => {
      const s = await scrape(daemon.port);
      return sum(s, 'lifelong_tasks_learned') >= 2 ? s : undefined;
    });
    const trainedBefore = sum(before, 'lifelong_samples_total', { task: first!.topic, kind: 'trained' });
    const accuracyBefore = sum(before, 'lifelong_prequential_accuracy_ratio', { task: first!.topic });
    // 100 more labelled samples of task 1, labelled wrongly on purpose: its live accuracy must drop.
    const { samples } = await import('../helpers/mnist-task').then((m) => m.takeSamples({ dataset: 'split-mnist', tasks: 1, samplesPerTask: 100, seed: 77, scenario: 'class-incremental' }));
    const kafka = new Kafka({ brokers, clientId: prefix, logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: first!.topic, messages: samples.map((s) => encodeJson({ x: s.x, y: s.y === '0' ? '1' : '0', id: `late-${s.id}` })) });
    await producer.disconnect();
    const after = await until('the late samples scored', async () => {
      const s = await scrape(daemon.port);
      return sum(s, 'lifelong_samples_total', { task: first!.topic, kind: 'evaluated' }) >= samples.length ? s : undefined;
    });
    await daemon.stop();
    assert.equal(sum(after, 'lifelong_samples_total', { task: first!.topic, kind: 'evaluated' }), samples.length);
    assert.equal(sum(after, 'lifelong_samples_total', { task: first!.topic, kind: 'trained' }), trainedBefore, 'an ended task is not trained again');
    const accuracyAfter = sum(after, 'lifelong_prequential_accuracy_ratio', { task: first!.topic });
    assert.ok(accuracyAfter < accuracyBefore - 0.1, `live accuracy ${accuracyBefore} -> ${accuracyAfter}`);
  });
});
