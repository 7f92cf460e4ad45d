import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import type { KafkaSourceConfig, PipelineConfig } from '../../src/config/pipeline-config';
import { runPipeline } from '../../src/engine/run-pipeline';
import { encodeJson } from '../../src/kafka';
import { DedicatedBroker, kafkaSource, uniqueTopicPrefix } from '../helpers/kafka';

/**
 * The daemon against a broker that wants SASL/PLAIN on one listener and TLS (a self-signed
 * certificate made with openssl) on another: with the right credentials and CA it learns a task;
 * with a wrong password `lifelong run` fails at once with an error that says so (exit 1), not a hang.
 */

const MAIN = path.resolve(__dirname, '../../src/cli/main.js');
const USERS = { alice: 'alice-secret' };
const SAMPLES = 60;

function pipelineFor(source: Partial<KafkaSourceConfig> & { brokers: string[] }, prefix: string): PipelineConfig {
  return {
    name: 'kafka-security',
    description: 'SASL and TLS test',
    seed: 1,
    scenario: 'task-incremental',
    source: kafkaSource(source.brokers, prefix, { topicPattern: `${prefix}-task`, topicDiscoveryMs: 250, inputSize: 4, deadLetterTopic: `${prefix}-dead-letter`, commitIntervalMs: 500, ...source }),
    model: { hiddenLayers: [8], outputUnits: 2 },
    strategy: { name: 'finetune', params: {} },
    training: { batchSize: 8, optimizer: 'adam', learningRate: 0.01, stepsPerBatch: 1, batchTimeoutMs: 100 },
    evaluation: { probeSize: 10, holdoutEvery: 10, endedTaskLabelled: 'evaluate' },
  };
}

/** Runs the pipeline in this process until every sample of the task was trained or held out. */
async function learnTask(pipeline: PipelineConfig): Promise<number> {
  const stop = new AbortController();
  let seen = 0;
  const timer = setTimeout(() => stop.abort(), 120_000);
  try {
    const report = await runPipeline({
      pipeline,
      backend: 'test',
      signal: stop.signal,
      onEvent: (event) => {
        if (event.kind === 'step-outcome') seen += event.samples.length;
        if (seen >= SAMPLES) stop.abort();
      },
    });
    return report.samplesTrained;
  } finally {
    clearTimeout(timer);
  }
}

describe('the daemon on Kafka with SASL/PLAIN and TLS (integration, a broker of its own)', function () {
  this.timeout(600_000);
  let broker: DedicatedBroker;
  let dir: string;

  before(async function () {
    this.timeout(300_000);
    broker = await DedicatedBroker.start({ saslUsers: USERS, tls: true });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifelong-security-'));
  });

  after(async () => {
    await broker?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A task topic with SAMPLES labelled samples, written over the plaintext listener. */
  async function produceTask(prefix: string): Promise<void> {
    const kafka = new Kafka({ clientId: 'security-test-tools', brokers: broker.brokers, logLevel: logLevel.NOTHING });
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    try {
      const messages = Array.from({ length: SAMPLES }, (_, n) => encodeJson({ x: [n % 2, 1 - (n % 2), 0.5, n / SAMPLES], y: String(n % 2) }));
      await producer.send({ topic: `${prefix}-task`, messages: messages.map((m) => ({ value: m.value, headers: m.headers })) });
    } finally {
      await producer.disconnect();
    }
  }

  it('learns a task over SASL_PLAINTEXT with the right user and password', async () => {
    const prefix = uniqueTopicPrefix('sasl');
    await produceTask(prefix);
    const saslBootstrap = broker.state.saslBootstrap as string;
    const trained = await learnTask(pipelineFor({ brokers: [saslBootstrap], sasl: { mechanism: 'plain', username: 'alice', password: USERS.alice } }, prefix));
    assert.ok(trained >= SAMPLES * 0.8, `trained ${trained} of ${SAMPLES}`);
  });

  it('learns a task over TLS, trusting the broker through source.ssl.caFile', async () => {
    const prefix = uniqueTopicPrefix('tls');
    await produceTask(prefix);
    const tlsBootstrap = broker.state.tlsBootstrap as string;
    const trained = await learnTask(pipelineFor({ brokers: [tlsBootstrap], ssl: { caFile: broker.state.tlsCaFile as string } }, prefix));
    assert.ok(trained >= SAMPLES * 0.8, `trained ${trained} of ${SAMPLES}`);
  });

  it('`lifelong run` with a wrong password exits 1 at once, saying that SASL authentication failed', async () => {
    const prefix = uniqueTopicPrefix('sasl-wrong');
    const pipeline = pipelineFor({ brokers: [broker.state.saslBootstrap as string], sasl: { mechanism: 'plain', username: 'alice', password: 'wrong' } }, prefix);
    const file = path.join(dir, 'wrong-password.json');
    const { source, ...rest } = pipeline;
    fs.writeFileSync(file, JSON.stringify({ ...rest, source }));
    const started = Date.now();
    const child = spawn(process.execPath, ['-e', `require(${JSON.stringify(MAIN)}).main(process.argv.slice(1)).then((c) => process.exit(c))`, 'run', '--pipeline', file, '--no-metrics', '--backend', 'cpu'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its checkpoints in the test's own folder, never resumed by another run.
      env: { ...process.env, LIFELONG_CHECKPOINT_DIRECTORY: path.join(dir, 'checkpoints') },
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    assert.equal(code, 1, `exit code; stderr:\n${stderr}`);
    assert.match(stderr, /SASL PLAIN authentication failed/);
    assert.ok(Date.now() - started < 60_000, `took ${Date.now() - started} ms`);
  });
});
