import * as assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Kafka, logLevel, type KafkaMessage } from 'kafkajs';
import { produceDataset, type ProducedTopic } from '../../src/cli/produce';
import type { PipelineConfig } from '../../src/config/pipeline-config';
import { Rng } from '../../src/core/rng';
import { CheckpointStore } from '../../src/engine/checkpoint-store';
import { decodeRunState, type RunState } from '../../src/engine/resume-state';
import { builtinStrategies } from '../../src/strategies/registry';
import { controlMessage, encodeJson, HEADER_SOURCE_OFFSET, HEADER_SOURCE_TOPIC } from '../../src/kafka';
import { parseExposition, type Series } from '../helpers/exposition';
import { kafkaBrokers, kafkaSource, uniqueTopicPrefix } from '../helpers/kafka';
import { until } from '../helpers/cli-process';
import { takeSamples } from '../helpers/mnist-task';
import { freePort } from '../helpers/ports';

/**
 * Durable state against a real broker (README "Durability"): the daemon as a child process, stopped
 * with SIGTERM or killed with SIGKILL and started again. What it learned must survive, each
 * labelled sample must be trained exactly once, and every message must be accounted for. The
 * trained samples are counted from the daemon's own record (LIFELONG_TRAINED_LOG), never from its
 * metrics.
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * `batchesBy: 'count'` makes what is learned independent of timing: micro-batches are cut only by
 * their size and by task ends (never by a wait or a timed checkpoint marker, which flush partial
 * batches), and the checkpoints by count are taken after a step, so a resumed run cuts the same
 * batches as an uninterrupted one and, on the deterministic wasm backend, learns the same model.
 */
function pipelineFor(brokers: string[], prefix: string, dir: string, everySamples: number, batchesBy: 'count' | 'time' = 'time'): PipelineConfig {
  const byCount = batchesBy === 'count';
  return {
    name: 'durable',
    description: 'durability test',
    seed: 3,
    scenario: 'task-incremental',
    // The broker's floor for sessionTimeoutMs: a restart after SIGKILL waits this long at most for the dead member to go.
    source: kafkaSource(brokers, prefix, { commitIntervalMs: 200, sessionTimeoutMs: 6000 }),
    model: { hiddenLayers: [64], outputUnits: 2 },
    strategy: { name: 'ewc', params: { lambda: 100 } },
    training: { batchSize: 16, optimizer: 'adam', learningRate: 0.003, stepsPerBatch: 2, batchTimeoutMs: byCount ? 3_600_000 : 1000 },
    evaluation: { probeSize: 100, holdoutEvery: 10, endedTaskLabelled: 'evaluate' },
    checkpoint: { directory: path.join(dir, 'checkpoints'), everySamples, everySeconds: byCount ? 0 : 2, keep: 3 },
  };
}

interface Daemon {
  readonly port: number;
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  stderr(): string;
}

/** Every daemon started, so that none outlives a failed test. */
const started: ChildProcess[] = [];

/** The real CLI in a child process, with its trained-sample log. */
async function startDaemon(pipelineFile: string, trainedLog: string, extra: readonly string[] = []): Promise<Daemon> {
  const port = await freePort();
  const child = spawn(process.execPath, ['-e', `require(${JSON.stringify(MAIN)}).main(process.argv.slice(1)).then((c) => { process.exitCode = c; setTimeout(() => process.exit(c), 2000).unref(); })`, 'run', '--pipeline', pipelineFile, '--metrics-port', String(port), ...extra], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LIFELONG_BACKEND: process.env.LIFELONG_TEST_BACKEND ?? 'auto', LIFELONG_LOG_LEVEL: 'info', LIFELONG_TRAINED_LOG: trainedLog },
  });
  started.push(child);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { port, child, exited, stderr: () => stderr };
}

async function stop(daemon: Daemon, signal: NodeJS.Signals): Promise<number | null> {
  daemon.child.kill(signal);
  return daemon.exited;
}

async function produce(brokers: string[], prefix: string, tasks: number, samplesPerTask: number, rate: number, endMarker: boolean): Promise<ProducedTopic[]> {
  const quiet = { write: () => true };
  const summary = await produceDataset(
    { dataset: 'split-mnist', tasks, samplesPerTask, brokers, topicPrefix: `${prefix}.`, rate, unlabelledFraction: 0.1, format: 'json', scenario: 'class-incremental', seed: 5, endMarker, clientId: `${prefix}-producer` },
    quiet as never,
  );
  return [...summary.topics];
}

/** Every message of the topics from the beginning, until `enough` holds for them. */
async function readTopics(brokers: string[], topics: readonly string[], enough: (got: readonly { topic: string; message: KafkaMessage }[]) => boolean): Promise<{ topic: string; message: KafkaMessage }[]> {
  const kafka = new Kafka({ brokers, clientId: 'reader', logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `reader-${Math.random().toString(36).slice(2)}`, maxWaitTimeInMs: 200 });
  const got: { topic: string; message: KafkaMessage }[] = [];
  await consumer.connect();
  try {
    for (const topic of topics) await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ topic, message }) => void got.push({ topic, message }) });
    await until(`the messages of ${topics.join(', ')}`, async () => (enough(got) ? true : undefined), 60_000);
    await sleep(500);
  } finally {
    await consumer.disconnect();
  }
  return got;
}

/** The newest checkpoint's run state. */
async function newestRun(dir: string): Promise<RunState> {
  const found = await new CheckpointStore(path.join(dir, 'checkpoints'), 3).newest();
  assert.ok(found?.checkpoint.run, `a checkpoint with run state in ${dir}`);
  return decodeRunState(found.checkpoint.run, found.file);
}

/**
 * The final model of a run (its newest checkpoint) scored on 1000 test images of each task: the
 * daemon's own probes hold 27 samples a task here, too few to tell 2 points apart.
 */
async function testAccuracy(dir: string, topics: readonly ProducedTopic[]): Promise<number> {
  const found = await new CheckpointStore(path.join(dir, 'checkpoints'), 3).newest();
  assert.ok(found, `a checkpoint in ${dir}`);
  const { strategyName, options, state } = found.checkpoint;
  const strategy = builtinStrategies().describe(strategyName).create(options);
  try {
    await strategy.importState(state);
    const { source } = await takeSamples({ dataset: 'split-mnist', tasks: topics.length, samplesPerTask: 1, seed: 5, scenario: 'class-incremental' });
    let correct = 0;
    let total = 0;
    for (const [index, name] of source.knownTasks().entries()) {
      const probe = source.probe(name, 1000) ?? [];
      const predictions = await strategy.predict({ name: (topics[index] as ProducedTopic).topic, index }, probe.map((p) => p.x));
      correct += predictions.filter((p, i) => p.label === probe[i]?.y).length / probe.length;
      total += 1;
    }
    return correct / total;
  } finally {
    strategy.dispose();
  }
}

/**
 * The largest absolute difference between the two runs' final strategy tensors (weights, Fisher,
 * anchors, Adam moments), matched by name with each run's topic prefix taken out.
 */
async function largestStateDifference(a: { dir: string; prefix: string }, b: { dir: string; prefix: string }): Promise<number> {
  const tensorsOf = async (run: { dir: string; prefix: string }) => {
    const found = await new CheckpointStore(path.join(run.dir, 'checkpoints'), 3).newest();
    assert.ok(found, `a checkpoint in ${run.dir}`);
    return new Map(Object.entries(found.checkpoint.state.tensors).map(([name, t]) => [name.split(run.prefix).join('<prefix>'), t]));
  };
  const [ta, tb] = await Promise.all([tensorsOf(a), tensorsOf(b)]);
  assert.deepEqual([...ta.keys()].sort(), [...tb.keys()].sort(), 'the same tensors');
  let largest = 0;
  for (const [name, snapshot] of ta) {
    const other = tb.get(name);
    assert.ok(other && other.data.length === snapshot.data.length, `${name}: the same shape`);
    for (let i = 0; i < snapshot.data.length; i++) largest = Math.max(largest, Math.abs((snapshot.data[i] as number) - (other.data[i] as number)));
  }
  return largest;
}

function lastRowMean(run: RunState): number {
  const rows = run.recorder.rows;
  const last = rows[rows.length - 1] ?? [];
  const known = last.filter((a): a is number => a !== null);
  return known.reduce((a, b) => a + b, 0) / known.length;
}

describe('durable state: crash, stop and restart against a real broker (integration)', function () {
  this.timeout(900_000);
  let brokers: string[];
  let dir: string;
  before(async () => {
    brokers = await kafkaBrokers();
  });
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifelong-durable-'));
  });
  afterEach(() => {
    for (const child of started.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('SIGTERM mid-task, then a restart: the earlier task is answered exactly as before, ended tasks stay ended, metrics carry on', async () => {
    const prefix = uniqueTopicPrefix('durable-sigterm');
    const topics = await produce(brokers, prefix, 2, 300, 0, false);
    const [first, second] = topics as [ProducedTopic, ProducedTopic];
    const pipelineFile = path.join(dir, 'pipeline.json');
    fs.writeFileSync(pipelineFile, JSON.stringify(pipelineFor(brokers, prefix, dir, 64)));
    const trainedLog = path.join(dir, 'trained.log');
    const produced = topics.reduce((a, t) => a + t.samples, 0);

    // Unlabelled copies of the first task's digits: how well the model answers the ended task.
    const { samples: probe } = await takeSamples({ dataset: 'split-mnist', tasks: 1, samplesPerTask: 200, seed: 77, scenario: 'class-incremental' });
    const kafka = new Kafka({ brokers, clientId: prefix, logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    const ask = async (tag: string) => producer.send({ topic: first.topic, messages: probe.map((s) => ({ key: `${tag}-${s.id}`, ...encodeJson({ x: s.x, id: `${tag}-${s.id}` }) })) });
    try {
      let daemon = await startDaemon(pipelineFile, trainedLog);
      try {
        await until('both topics processed', async () => (sum(await scrape(daemon.port), 'lifelong_samples_total') >= produced ? true : undefined));
        await ask('before');
        const before = await until('the questions answered', async () => {
          const s = await scrape(daemon.port);
          return sum(s, 'lifelong_samples_total', { task: first.topic, kind: 'predicted' }) >= probe.length + first.unlabelled ? s : undefined;
        });
        assert.equal(sum(before, 'lifelong_tasks_learned'), 1, 'the first task ended, the second goes on');
        assert.equal(await stop(daemon, 'SIGTERM'), 0, daemon.stderr().slice(-3000));
      } finally {
        if (daemon.child.exitCode === null) daemon.child.kill('SIGKILL');
      }
      const stopped = await newestRun(dir);
      assert.deepEqual(stopped.engine.tasks, [first.topic, second.topic]);
      assert.equal(stopped.engine.current, second.topic);

      daemon = await startDaemon(pipelineFile, trainedLog);
      try {
        await until('the restarted daemon up', async () => ((await scrape(daemon.port)).length > 0 ? true : undefined));
        await ask('after');
        const after = await until('the questions answered again', async () => {
          const s = await scrape(daemon.port);
          return sum(s, 'lifelong_samples_total', { task: first.topic, kind: 'predicted' }) >= probe.length ? s : undefined;
        });
        // Counters restart with the process (Prometheus counters do); gauges carry on.
        assert.equal(sum(after, 'lifelong_samples_total', { kind: 'trained' }), 0, 'nothing covered by the checkpoint is trained again');
        assert.equal(sum(after, 'lifelong_tasks_learned'), 1, 'the ended task is still learned');
        assert.ok(sum(after, 'lifelong_accuracy_matrix_ratio', { learned_task: first.topic, evaluated_task: first.topic }) > 0.8, 'the accuracy matrix carries on');

        // The second task ends now: a row of two, and no task begins twice.
        await producer.send({ topic: second.topic, messages: [controlMessage()] });
        const ended = await until('the second task ended', async () => {
          const s = await scrape(daemon.port);
          return sum(s, 'lifelong_tasks_learned') >= 2 ? s : undefined;
        });
        assert.equal(sum(ended, 'lifelong_tasks_learned'), 2);
        assert.equal(await stop(daemon, 'SIGTERM'), 0, daemon.stderr().slice(-3000));
      } finally {
        if (daemon.child.exitCode === null) daemon.child.kill('SIGKILL');
      }
      const final = await newestRun(dir);
      assert.deepEqual(final.engine.tasks, [first.topic, second.topic]);
      assert.equal(final.engine.current, undefined);
      assert.equal(final.recorder.rows[1]?.length, 2);

      const answers = await readTopics(brokers, [`${first.topic}.predictions`], (got) => got.filter((g) => /"id":"(before|after)-/.test(String(g.message.value))).length >= 2 * probe.length);
      const accuracy = (tag: string): number => {
        const truth = new Map(probe.map((s) => [`${tag}-${s.id}`, s.y]));
        const mine = new Map<string, string | null>();
        for (const { message } of answers) {
          const body = JSON.parse(String(message.value)) as { id: string; label: string | null };
          if (truth.has(body.id)) mine.set(body.id, body.label);
        }
        assert.equal(mine.size, probe.length, `every ${tag} question answered`);
        return [...mine].filter(([id, label]) => truth.get(id) === label).length / probe.length;
      };
      const [was, is] = [accuracy('before'), accuracy('after')];
      assert.ok(was > 0.8, `the first task was learned: ${was}`);
      assert.ok(Math.abs(was - is) <= 0.01, `the restored model answers the first task as before: ${was} then ${is}`);
    } finally {
      await producer.disconnect();
    }
  });

  it('SIGKILL at 10 seeded random moments of a 5-task run: every task learned, accuracy within 2 points of an uninterrupted run, every message accounted for, none trained twice', async () => {
    const TASKS = 5;
    const PER_TASK = 300;
    const KILLS = 10;
    const rng = new Rng(20240613);

    // The uninterrupted run, alongside: the same data at the same rate, never killed.
    const cleanPrefix = uniqueTopicPrefix('durable-clean');
    const cleanDir = path.join(dir, 'clean');
    fs.mkdirSync(cleanDir);
    const cleanProducing = produce(brokers, cleanPrefix, TASKS, PER_TASK, 20, true);
    cleanProducing.catch(() => undefined);
    const cleanPipeline = path.join(cleanDir, 'pipeline.json');
    fs.writeFileSync(cleanPipeline, JSON.stringify(pipelineFor(brokers, cleanPrefix, cleanDir, 64, 'count')));
    const clean = await startDaemon(cleanPipeline, path.join(cleanDir, 'trained.log'));

    // The crashing run: the stream arrives at a steady rate while the daemon is killed again and again.
    const prefix = uniqueTopicPrefix('durable-crash');
    const pipelineFile = path.join(dir, 'pipeline.json');
    fs.writeFileSync(pipelineFile, JSON.stringify(pipelineFor(brokers, prefix, dir, 64, 'count')));
    const trainedLog = path.join(dir, 'trained.log');
    const producing = produce(brokers, prefix, TASKS, PER_TASK, 20, true);
    producing.catch(() => undefined);
    // Malformed messages among the stream: they must end up dead-lettered, crash or not.
    await sleep(3000);
    const kafka = new Kafka({ brokers, clientId: prefix, logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    const badTopic = `${prefix}.split-mnist-0-1`;
    const bad = await producer.send({ topic: badTopic, messages: Array.from({ length: 5 }, (_, i) => ({ value: `{"x": [${i}` })) });
    await producer.disconnect();
    const badOffsets = new Set(bad.map((r) => String(r.baseOffset)).flatMap((base) => Array.from({ length: 5 }, (_, i) => String(Number(base) + i))));

    const begun = Date.now();
    const moments: number[] = [];
    const toFirstTrained: number[] = [];
    for (let k = 0; k < KILLS; k++) {
      const spawned = Date.now();
      const daemon = await startDaemon(pipelineFile, trainedLog);
      try {
        // Killed while it learns: once this life trained something (or nothing is left to learn).
        await until('the daemon training', async () => {
          if (daemon.child.exitCode !== null) throw new Error(`life ${k} exited with ${daemon.child.exitCode}`);
          const s = await scrape(daemon.port);
          return sum(s, 'lifelong_samples_total', { kind: 'trained' }) > 0 || sum(s, 'lifelong_tasks_learned') >= TASKS ? true : undefined;
        }, 120_000).catch((error: Error) => {
          throw new Error(`${error.message}; its log:\n${daemon.stderr().slice(-3000)}`);
        });
        toFirstTrained.push(Date.now() - spawned);
        const delay = 300 + Math.floor(rng.next() * 2200);
        moments.push(delay);
        await sleep(delay);
        daemon.child.kill('SIGKILL');
        assert.equal(await daemon.exited, null, 'killed');
      } finally {
        if (daemon.child.exitCode === null && daemon.child.signalCode === null) daemon.child.kill('SIGKILL');
      }
    }
    const topics = await producing;
    const cleanTopics = await cleanProducing;
    try {
      await until('the clean run learned every task', async () => (sum(await scrape(clean.port), 'lifelong_tasks_learned') >= TASKS ? true : undefined), 300_000);
      assert.equal(await stop(clean, 'SIGTERM'), 0, clean.stderr().slice(-3000));
    } finally {
      if (clean.child.exitCode === null) clean.child.kill('SIGKILL');
    }
    const cleanProbeAccuracy = lastRowMean(await newestRun(cleanDir));
    const cleanAccuracy = await testAccuracy(cleanDir, cleanTopics);
    const last = await startDaemon(pipelineFile, trainedLog);
    let series: Series[];
    try {
      series = await until('every task learned after the crashes', async () => {
        const s = await scrape(last.port);
        return sum(s, 'lifelong_tasks_learned') >= TASKS ? s : undefined;
      }, 300_000);
      assert.equal(await stop(last, 'SIGTERM'), 0, last.stderr().slice(-3000));
    } finally {
      if (last.child.exitCode === null) last.child.kill('SIGKILL');
    }
    const seconds = (Date.now() - begun) / 1000;
    const run = await newestRun(dir);
    assert.deepEqual(run.engine.tasks, topics.map((t) => t.topic), 'each task once, in order');
    for (let i = 0; i < TASKS; i++) assert.ok((run.recorder.rows[i]?.[i] ?? 0) > 0.8, `task ${i} learned: ${JSON.stringify(run.recorder.rows[i])}`);
    const crashAccuracy = await testAccuracy(dir, topics);
    // Batches cut by count (pipelineFor), so the resumed run learns what the uninterrupted one
    // learned: the same steps on the same batches from the same restored state. Measured: the
    // final tensors agree within 1e-5 (float32 sums in another order), the accuracy to 0.1 point.
    // One more or one fewer Adam step moves weights by up to the learning rate (3e-3).
    const stateDifference = await largestStateDifference({ dir, prefix }, { dir: cleanDir, prefix: cleanPrefix });
    assert.ok(stateDifference <= 1e-3, `the resumed run's final state is the uninterrupted run's: largest difference ${stateDifference}`);
    assert.ok(Math.abs(crashAccuracy - cleanAccuracy) <= 0.02, `final average accuracy ${crashAccuracy} vs ${cleanAccuracy} uninterrupted (1000 test images a task; the probes said ${lastRowMean(run)} vs ${cleanProbeAccuracy})`);

    // Accounting, from what the daemon recorded: the trained-sample log and the checkpoint's probes.
    const inputs = await readTopics(brokers, topics.map((t) => t.topic), (got) => got.length >= topics.reduce((a, t) => a + t.samples, 0) + 5);
    const labelled = new Set<string>();
    const unlabelled = new Set<string>();
    for (const { topic, message } of inputs) {
      if (message.value === null || message.value.length === 0 || String(message.value).startsWith('{"x": [')) continue; // control, malformed
      const body = JSON.parse(String(message.value)) as { id: string; y?: unknown };
      (body.y === undefined ? unlabelled : labelled).add(`${topic} ${body.id}`);
    }
    const lines = fs.readFileSync(trainedLog, 'utf8').split('\n').filter(Boolean);
    const trained = lines.map((line) => {
      const [where, id] = line.split(' ') as [string, string];
      return `${where.split('/')[0]} ${id}`;
    });
    const twice = trained.filter((key, i) => trained.indexOf(key) !== i);
    assert.deepEqual(twice, [], 'no labelled sample trained twice');
    const heldOut = Object.entries(run.engine.probes).flatMap(([task, samples]) => samples.map((s) => `${task} ${s.id}`));
    const trainedSet = new Set(trained);
    assert.deepEqual(heldOut.filter((key) => trainedSet.has(key)), [], 'a held-out sample is never trained');
    const learned = new Set([...trained, ...heldOut]);
    assert.deepEqual([...labelled].filter((key) => !learned.has(key)), [], 'every labelled sample trained or held out');
    assert.equal(learned.size, labelled.size);
    const predictions = await readTopics(brokers, topics.map((t) => `${t.topic}.predictions`), (got) => new Set(got.map((g) => `${g.topic.replace(/\.predictions$/, '')} ${(JSON.parse(String(g.message.value)) as { id: string }).id}`)).size >= unlabelled.size);
    const predicted = new Set(predictions.map((g) => `${g.topic.replace(/\.predictions$/, '')} ${(JSON.parse(String(g.message.value)) as { id: string }).id}`));
    assert.deepEqual([...unlabelled].filter((key) => !predicted.has(key)), [], 'every unlabelled sample predicted');
    const letters = await readTopics(brokers, [`${prefix}.dead-letter`], (got) => got.length >= 5);
    const lettered = new Set(letters.filter((l) => String(l.message.headers?.[HEADER_SOURCE_TOPIC]) === badTopic).map((l) => String(l.message.headers?.[HEADER_SOURCE_OFFSET])));
    assert.deepEqual([...badOffsets].filter((o) => !lettered.has(o)), [], 'every malformed message dead-lettered');
    // The figures docs/BENCHMARKS.md quotes.
    process.stderr.write(
      `crash test: ${KILLS} SIGKILLs, ${moments.join(', ')} ms after each life's first trained sample; ${seconds.toFixed(0)} s; ${trained.length} trained + ${heldOut.length} held out = ${labelled.size} labelled, ${unlabelled.size} predicted (${predictions.length} predictions published), ${letters.length} dead letters for 5 malformed; final average accuracy ${(crashAccuracy * 100).toFixed(1)}% vs ${(cleanAccuracy * 100).toFixed(1)}% uninterrupted, largest difference of the final state's tensors ${stateDifference.toExponential(2)}; samples counted by the last life ${sum(series, 'lifelong_samples_total')}; restart to first trained sample ${toFirstTrained.map((ms) => (ms / 1000).toFixed(1)).join(', ')} s\n`,
    );
  });
});
