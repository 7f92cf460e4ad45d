import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseProduceArgs, TokenBucket, topicOf, unlabelledPositions } from '../../src/cli/produce';
import { ConfigError, InvariantError } from '../../src/core/errors';
import { Rng } from '../../src/core/rng';
import { defineTaskStream } from '../../src/data/task-streams';
import { isKafkaTopicName } from '../../src/kafka/codec';

const REQUIRED = ['--dataset', 'split-mnist', '--brokers', 'localhost:9092', '--topic-prefix', 'demo.'];

function rejects(args: readonly string[], key: string, message: RegExp): void {
  assert.throws(
    () => parseProduceArgs(args),
    (error: unknown) => error instanceof ConfigError && error.key === key && message.test(error.message),
  );
}

describe('lifelong produce (without a broker)', () => {
  it('parses the options, with documented defaults', () => {
    assert.deepEqual(parseProduceArgs(REQUIRED), {
      dataset: 'split-mnist',
      samplesPerTask: 0,
      brokers: ['localhost:9092'],
      topicPrefix: 'demo.',
      rate: 0,
      unlabelledFraction: 0,
      format: 'json',
      scenario: 'class-incremental',
      seed: 1,
      endMarker: true,
      clientId: 'lifelong-produce',
    });
    const options = parseProduceArgs([
      ...REQUIRED,
      '--tasks', '2', '--samples-per-task', '50', '--rate', '250.5', '--unlabelled-fraction', '0.2',
      '--format', 'binary', '--scenario', 'task-incremental', '--seed=-7', '--no-end-marker',
      '--brokers', 'a:1, b:2',
    ]);
    assert.deepEqual(
      { ...options },
      { dataset: 'split-mnist', tasks: 2, samplesPerTask: 50, brokers: ['a:1', 'b:2'], topicPrefix: 'demo.', rate: 250.5, unlabelledFraction: 0.2, format: 'binary', scenario: 'task-incremental', seed: -7, endMarker: false, clientId: 'lifelong-produce' },
    );
  });

  it('rejects bad options, naming the option', () => {
    rejects(['--brokers', 'h:1', '--topic-prefix', 'p'], '--dataset', /required/);
    rejects([...REQUIRED, '--dataset', 'cifar'], '--dataset', /split-mnist, permuted-mnist, rotated-mnist/);
    rejects(['--dataset', 'split-mnist', '--topic-prefix', 'p'], '--brokers', /required/);
    rejects([...REQUIRED, '--brokers', 'localhost'], '--brokers', /HOST:PORT/);
    rejects(['--dataset', 'split-mnist', '--brokers', 'h:1'], '--topic-prefix', /required/);
    rejects([...REQUIRED, '--topic-prefix', 'a/b'], '--topic-prefix', /a\/b/);
    rejects([...REQUIRED, '--tasks', '0'], '--tasks', /integer >= 1/);
    rejects([...REQUIRED, '--samples-per-task', '1.5'], '--samples-per-task', /integer/);
    rejects([...REQUIRED, '--rate=-1'], '--rate', /-1/);
    rejects([...REQUIRED, '--rate', 'fast'], '--rate', /fast/);
    rejects([...REQUIRED, '--unlabelled-fraction', '1.2'], '--unlabelled-fraction', /0 to 1/);
    rejects([...REQUIRED, '--format', 'avro'], '--format', /json, binary/);
    rejects([...REQUIRED, '--scenario', 'x'], '--scenario', /class-incremental/);
    assert.throws(() => parseProduceArgs([...REQUIRED, '--bogus']), /bogus/);
  });

  describe('--pipeline FILE: connects like the daemon of that pipeline', () => {
    let dir: string;
    before(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifelong-produce-'));
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    /** pipelines/kafka-split-mnist.json with its source changed by `source`. */
    function pipelineFile(name: string, source: Record<string, unknown>): string {
      const pipeline = JSON.parse(fs.readFileSync(path.join(__dirname, '../../../pipelines/kafka-split-mnist.json'), 'utf8')) as { source: Record<string, unknown> };
      const file = path.join(dir, name);
      fs.writeFileSync(file, JSON.stringify({ ...pipeline, source: { ...pipeline.source, ...source } }));
      return file;
    }

    it("takes the Kafka source's ssl and sasl, and its brokers when --brokers is absent", () => {
      const sasl = { mechanism: 'scram-sha-512', username: 'producer', password: 'secret' };
      const file = pipelineFile('secured.json', { brokers: ['kafka-1:9093', 'kafka-2:9093'], ssl: true, sasl });
      const options = parseProduceArgs(['--dataset', 'split-mnist', '--topic-prefix', 'demo.', '--pipeline', file]);
      assert.deepEqual(options.brokers, ['kafka-1:9093', 'kafka-2:9093']);
      assert.equal(options.ssl, true);
      assert.deepEqual(options.sasl, sasl);
      assert.deepEqual(parseProduceArgs([...REQUIRED, '--pipeline', file]).brokers, ['localhost:9092'], '--brokers wins');
    });

    it('refuses a pipeline that does not read Kafka, or is not valid, naming the file', () => {
      const embedded = path.join(__dirname, '../../../pipelines/quickstart.json');
      assert.throws(() => parseProduceArgs([...REQUIRED, '--pipeline', embedded]), (error: unknown) => error instanceof ConfigError && error.key === '--pipeline' && /source is kafka/.test(error.message));
      const missing = path.join(dir, 'missing.json');
      assert.throws(() => parseProduceArgs([...REQUIRED, '--pipeline', missing]), (error: unknown) => error instanceof ConfigError && error.message.includes(missing));
    });
  });

  it('names topics PREFIX + task, valid Kafka names for every built-in task', () => {
    assert.equal(topicOf('demo.', 'split-mnist-0-1'), 'demo.split-mnist-0-1');
    for (const dataset of ['split-mnist', 'permuted-mnist', 'rotated-mnist'] as const) {
      for (const task of defineTaskStream({ dataset, seed: 1, scenario: 'class-incremental', tasks: dataset === 'split-mnist' ? 5 : 7 }).tasks) {
        assert.ok(isKafkaTopicName(topicOf('demo.', task.name)), task.name);
      }
    }
  });

  it('picks exactly round(F * n) distinct unlabelled positions, reproducibly', () => {
    const a = unlabelledPositions(50, 0.2, new Rng(3));
    assert.equal(a.size, 10);
    for (const i of a) assert.ok(Number.isInteger(i) && i >= 0 && i < 50);
    assert.deepEqual([...unlabelledPositions(50, 0.2, new Rng(3))], [...a]);
    assert.equal(unlabelledPositions(7, 0, new Rng(1)).size, 0);
    assert.equal(unlabelledPositions(7, 1, new Rng(1)).size, 7);
  });

  describe('TokenBucket (on a simulated clock)', () => {
    function simulated() {
      let now = 0;
      const sleeps: number[] = [];
      return {
        now: () => now,
        sleep: async (ms: number) => {
          sleeps.push(ms);
          now += ms;
        },
        sleeps,
        elapsed: () => now,
      };
    }

    it('lets a full bucket through, then holds the rate', async () => {
      const clock = simulated();
      const bucket = new TokenBucket(100, 10, clock.now, clock.sleep);
      await bucket.take(10);
      assert.deepEqual(clock.sleeps, [], 'the first capacity-worth goes at once');
      for (let i = 0; i < 49; i++) await bucket.take(10);
      // 500 messages at 100/s with 10 saved up: 4.9 s.
      assert.ok(Math.abs(clock.elapsed() - 4900) < 1e-6, `${clock.elapsed()} ms`);
    });

    it('refills while the caller is busy, up to its capacity only', async () => {
      const clock = simulated();
      const bucket = new TokenBucket(10, 5, clock.now, clock.sleep);
      await bucket.take(5);
      await clock.sleep(10_000); // idle for 10 s: only 5 tokens are saved, not 100
      clock.sleeps.length = 0;
      await bucket.take(5);
      assert.deepEqual(clock.sleeps, []);
      await bucket.take(5);
      assert.deepEqual(clock.sleeps, [500]);
    });

    it('takes more than its capacity and makes the next take pay it back', async () => {
      const clock = simulated();
      const bucket = new TokenBucket(10, 2, clock.now, clock.sleep);
      await bucket.take(12); // 2 saved, 10 more take 1 s
      assert.equal(clock.elapsed(), 1000);
      await bucket.take(1); // the bucket is empty: 0.1 s
      assert.ok(Math.abs(clock.elapsed() - 1100) < 1e-6, `${clock.elapsed()} ms`);
    });

    it('refuses a zero rate', () => {
      assert.throws(() => new TokenBucket(0, 1), InvariantError);
    });
  });
});
