import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Kafka, logLevel, type KafkaMessage } from 'kafkajs';
import { produceDataset } from '../../src/cli/produce';
import type { PipelineConfig } from '../../src/config/pipeline-config';
import { encodeJson, type PredictionMessage } from '../../src/kafka';
import { sum } from '../helpers/kafka-daemon-run';
import { parseExposition } from '../helpers/exposition';
import { kafkaBrokers, kafkaSource, uniqueTopicPrefix } from '../helpers/kafka';
import { takeSamples } from '../helpers/mnist-task';
import { createTopic, killAll, sleep, startDaemon, until, type Daemon } from '../helpers/daemon-process';

/**
 * Prediction replicas against a real broker (README "Scaling"): one trainer (`lifelong run`) and
 * two replicas (`lifelong serve`), each a child process. Requests flow on a four-partition request
 * topic from before the first snapshot until after the last swap: every one must be answered
 * exactly once, by both replicas between them, and each task's model version must reach both.
 */

function startCli(command: 'run' | 'serve', pipelineFile: string): Promise<Daemon> {
  return startDaemon([command, '--pipeline', pipelineFile]);
}

async function health(daemon: Daemon): Promise<{ serving?: boolean; modelVersion?: number | null }> {
  const res = await fetch(`http://127.0.0.1:${daemon.port}/healthz`);
  return (await res.json()) as { serving?: boolean; modelVersion?: number | null };
}

async function answered(daemon: Daemon): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${daemon.port}/metrics`);
  return sum(parseExposition(await res.text()), 'lifelong_requests_answered_total');
}

describe('prediction replicas follow the trainer through Kafka snapshots (integration)', function () {
  this.timeout(180_000);
  let brokers: string[];
  let dir: string;
  before(async () => {
    brokers = await kafkaBrokers();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifelong-serve-'));
  });
  afterEach(killAll);
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('two replicas split the requests, serve each task-end version within seconds, and answer every request once across the swaps', async () => {
    const prefix = uniqueTopicPrefix('serve');
    const requestTopic = `${prefix}.requests`;
    const kafka = new Kafka({ brokers, clientId: `${prefix}-test`, logLevel: logLevel.NOTHING });
    // Partitions bound the replicas that share the work: four for two replicas.
    await createTopic(brokers, requestTopic, 4);
    const pipeline: PipelineConfig = {
      name: 'serve',
      description: 'replicas test',
      seed: 3,
      scenario: 'class-incremental',
      source: kafkaSource(brokers, prefix, { requestTopic, commitIntervalMs: 200, sessionTimeoutMs: 6000 }),
      model: { hiddenLayers: [32], outputUnits: 0 },
      strategy: { name: 'ewc', params: { lambda: 100 } },
      training: { batchSize: 32, optimizer: 'adam', learningRate: 0.003, stepsPerBatch: 1, batchTimeoutMs: 300 },
      evaluation: { probeSize: 30, holdoutEvery: 10, endedTaskLabelled: 'evaluate' },
      checkpoint: { directory: path.join(dir, 'checkpoints'), everySamples: 0, everySeconds: 0, keep: 2 },
      serving: 'replicas',
      // Small chunks: every snapshot of this 25k-parameter model goes out in several.
      snapshots: { topic: `${prefix}.snapshots`, everySamples: 0, chunkBytes: 64 * 1024 },
      replicas: { groupId: '' },
    };
    const pipelineFile = path.join(dir, 'pipeline.json');
    fs.writeFileSync(pipelineFile, JSON.stringify(pipeline));

    const replicas = [await startCli('serve', pipelineFile), await startCli('serve', pipelineFile)];
    await until('both replicas serving', async () => ((await Promise.all(replicas.map(health))).every((h) => h.serving === true) ? true : undefined), 90_000).catch((error: Error) => {
      throw new Error(`${error.message}\n${replicas.map((r) => r.stderr()).join('\n')}`);
    });

    // Requests from before the first snapshot until after the last swap, 10 every 100 ms.
    const { source: images } = await takeSamples({ dataset: 'split-mnist', tasks: 2, samplesPerTask: 1, seed: 9, scenario: 'class-incremental' });
    const xs = images.knownTasks().flatMap((task) => (images.probe(task, 50) ?? []).map((s) => s.x));
    const producer = kafka.producer();
    await producer.connect();
    let sent = 0;
    let sending = true;
    const requests = (async () => {
      while (sending) {
        const messages = Array.from({ length: 10 }, () => {
          const id = `r${sent++}`;
          const { value, headers } = encodeJson({ x: xs[sent % xs.length] as Float32Array, id });
          return { key: id, value, headers };
        });
        await producer.send({ topic: requestTopic, messages });
        await sleep(100);
      }
    })();

    // Malformed requests are dead-lettered by the replicas, with the trainer's reasons.
    const labelled = encodeJson({ x: xs[0] as Float32Array, y: 1, id: 'labelled' });
    await producer.send({ topic: requestTopic, messages: [{ key: 'bad', value: Buffer.from('{"x": [1, 2') }, { key: 'labelled', ...labelled }] });

    const trainer = await startCli('run', pipelineFile);
    await produceDataset(
      { dataset: 'split-mnist', tasks: 2, samplesPerTask: 200, brokers, topicPrefix: `${prefix}.`, rate: 0, unlabelledFraction: 0.1, format: 'json', scenario: 'class-incremental', seed: 5, endMarker: true, clientId: `${prefix}-producer` },
      { write: () => true } as never,
    );

    // Each task end publishes a snapshot; both replicas must serve it within a few seconds.
    const published = (): number[] => [...trainer.stderr().matchAll(/snapshot version (\d+) published/g)].map((m) => Number(m[1]));
    const swapDelays: number[] = [];
    for (let task = 1; task <= 2; task++) {
      const version = await until(`snapshot ${task} published`, async () => published()[task - 1], 120_000);
      const at = Date.now();
      await until(`both replicas serving version ${version}`, async () => ((await Promise.all(replicas.map(health))).every((h) => (h.modelVersion ?? 0) >= version) ? true : undefined), 10_000);
      swapDelays.push(Date.now() - at);
    }
    const [, last] = published();
    // Requests sent once both replicas serve the last version must carry it: keep sending two
    // more batches of 10 before stopping (stopping at once left a run with none sent after it).
    // Sending also goes on until both replicas have answered some (the split is asserted below), in
    // case a rebalance of the request group holds one up for a while.
    const servedAt = sent;
    await until('two more batches of requests, and answers from both replicas', async () => (sent >= servedAt + 20 && (await Promise.all(replicas.map(answered))).every((n) => n > 0) ? true : undefined), 30_000);
    sending = false;
    await requests;
    await producer.disconnect();

    // Every request answered exactly once, on the request topic's predictions topic.
    const predictions = await readAll(kafka, `${requestTopic}.predictions`, (got) => new Set(got.map((m) => m.id)).size >= sent);
    const ids = predictions.map((p) => p.id);
    const twice = ids.filter((id, i) => ids.indexOf(id) !== i);
    assert.deepEqual(twice, [], 'no request answered twice');
    assert.equal(new Set(ids).size, sent, 'every request answered');
    const versions = new Set(predictions.map((p) => p.modelVersion));
    assert.ok(versions.has(0), 'requests before the first snapshot are answered, with version 0');
    assert.ok(predictions.filter((p) => p.modelVersion === 0).every((p) => p.label === null && /no model yet/.test(p.reason ?? '')), 'with a null label and a reason');
    assert.ok(versions.has(last as number), `answers carry the last version ${last}`);
    assert.ok(predictions.filter((p) => p.modelVersion > 0).every((p) => p.label !== null), 'a loaded model answers with a label');
    const counts = await Promise.all(replicas.map(answered));
    assert.ok(counts.every((n) => n > 0), `both replicas answered some requests: ${counts.join(', ')}`);
    const rejections = await Promise.all(replicas.map(async (r) => parseExposition(await (await fetch(`http://127.0.0.1:${r.port}/metrics`)).text())));
    assert.equal(rejections.reduce((a, series) => a + sum(series, 'lifelong_rejections_total', { reason: 'bad-json' }), 0), 1, 'the bad JSON request counted once');
    assert.equal(rejections.reduce((a, series) => a + sum(series, 'lifelong_rejections_total', { reason: 'labelled-request' }), 0), 1, 'the labelled request counted once');
    const letters = await readRaw(kafka, `${prefix}.dead-letter`, (got) => got.length >= 2);
    assert.deepEqual(letters.map((m) => String(m.headers?.['lifelong-reason'])).sort(), ['bad-json', 'labelled-request'], 'both dead-lettered, once each');

    // The task topics' unlabelled samples are answered by the replicas alone, once each.
    const taskTopic = `${prefix}.split-mnist-0-1`;
    const taskAnswers = await readAll(kafka, `${taskTopic}.predictions`, (got) => got.length > 0);
    const offsets = taskAnswers.map((p) => p.sourceOffset);
    assert.equal(new Set(offsets).size, offsets.length, 'no unlabelled task sample answered twice (the trainer answers none)');

    for (const daemon of [...replicas, trainer]) daemon.child.kill('SIGTERM');
    const codes = await Promise.all([...replicas, trainer].map((d) => d.exited));
    assert.deepEqual(codes, [0, 0, 0], `every process stops cleanly on SIGTERM\n${replicas.map((r) => r.stderr()).join('\n')}`);
    process.stdout.write(`      (${sent} requests; snapshot versions ${published().join(', ')}; both replicas serving each within ${swapDelays.join(', ')} ms; answered ${counts.join(' + ')})\n`);
  });
});

/** Every message on `topic` from its start, until `enough` holds (and a second more, to see any extra). */
async function readRaw(kafka: Kafka, topic: string, enough: (got: readonly KafkaMessage[]) => boolean): Promise<KafkaMessage[]> {
  const consumer = kafka.consumer({ groupId: `reader-${Math.random().toString(36).slice(2)}`, maxWaitTimeInMs: 200 });
  const got: KafkaMessage[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void got.push(message) });
    await until(`the messages on ${topic}`, async () => (enough(got) ? true : undefined), 60_000);
    await sleep(1000);
  } finally {
    await consumer.disconnect();
  }
  return got;
}

/** Every prediction on `topic` from its start, until `enough` holds. */
async function readAll(kafka: Kafka, topic: string, enough: (got: readonly PredictionMessage[]) => boolean): Promise<PredictionMessage[]> {
  const parse = (messages: readonly KafkaMessage[]) => messages.map((m) => JSON.parse((m.value as Buffer).toString()) as PredictionMessage);
  return parse(await readRaw(kafka, topic, (got) => enough(parse(got))));
}
