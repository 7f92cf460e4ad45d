import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { getBackend } from '@tensorflow/tfjs';
import { main } from '../../src/cli/main';
import { EXIT_CODES } from '../../src/cli/exit-codes';
import { LifelongError } from '../../src/core/errors';
import type { Logger } from '../../src/core/log';
import { CHECKPOINT_FORMAT, readCheckpoint, type CheckpointContent } from '../../src/engine/checkpoint';
import { CheckpointStore } from '../../src/engine/checkpoint-store';
import { decodeRunState, encodeRunState, type RunState } from '../../src/engine/resume-state';
import type { StrategyOptions } from '../../src/strategies/strategy';

const OPTIONS: StrategyOptions = { scenario: 'task-incremental', inputSize: 3, hiddenLayers: [4], outputUnits: 2, optimizer: 'adam', learningRate: 0.01, stepsPerBatch: 1, seed: 1, params: {} };

function content(version: number): CheckpointContent {
  const run: RunState = {
    source: 'kafka(test)',
    engine: {
      modelVersion: version,
      tasks: ['a', 'b'],
      current: 'b',
      holdout: { b: { seen: 12, kept: 1 } },
      probes: { a: [{ task: 'a', x: Float32Array.of(1, 2, 3), y: '1', id: 'p1' }, { task: 'a', x: Float32Array.of(4, 5, 6), y: '0' }] },
      positions: { 'topic-a/0': 40, 'topic-b/0': version },
    },
    recorder: { tasks: [{ name: 'a', index: 0 }, { name: 'b', index: 1 }], current: { name: 'b', index: 1 }, rows: [[0.9]], baseline: [0.5, 0.5], prequential: {}, counts: {}, parametersAfterTask: [30], parameters: 30, modelVersion: version, lastLoss: 0.1, trainSeconds: 1, tasksLearned: 1 },
    trainedLogBytes: 123,
  };
  return {
    pipeline: 'p',
    strategyName: 'finetune',
    options: OPTIONS,
    state: { strategy: 'finetune', format: 1, meta: { v: version }, tensors: { w: { shape: [2], data: Float32Array.of(version, -version) } } },
    run: encodeRunState(run),
  };
}

function recordingLog(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, debug: () => undefined, info: () => undefined, error: () => undefined, warn: (m) => warnings.push(m) };
}

describe('checkpoint store', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifelong-store-'));
  });
  afterEach(() => {
    if (fs.existsSync(path.join(dir, 'locked'))) fs.chmodSync(path.join(dir, 'locked'), 0o700);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('writes numbered checkpoints atomically, keeps the newest K, and reads the newest back whole', async () => {
    const store = new CheckpointStore(path.join(dir, 'p'), 2);
    await store.prepare();
    for (let v = 1; v <= 4; v++) await store.write(content(v));
    const files = fs.readdirSync(path.join(dir, 'p')).sort();
    assert.deepEqual(files, ['checkpoint-000000000003.ckpt', 'checkpoint-000000000004.ckpt'], 'only the 2 newest, no temporary file');
    const newest = await store.newest();
    assert.equal(newest?.file, path.join(dir, 'p', 'checkpoint-000000000004.ckpt'));
    assert.equal(newest?.checkpoint.format, CHECKPOINT_FORMAT);
    assert.deepEqual(newest?.checkpoint.state.meta, { v: 4 });
    const run = decodeRunState(newest!.checkpoint.run!, newest!.file);
    assert.deepEqual(run.engine.positions, { 'topic-a/0': 40, 'topic-b/0': 4 });
    assert.deepEqual(run.engine.probes.a?.map((s) => [Array.from(s.x), s.y, s.id]), [[[1, 2, 3], '1', 'p1'], [[4, 5, 6], '0', undefined]]);
    assert.equal(run.trainedLogBytes, 123);
    // A new store on the same directory numbers on from the newest.
    await new CheckpointStore(path.join(dir, 'p'), 2).write(content(5));
    assert.ok(fs.existsSync(path.join(dir, 'p', 'checkpoint-000000000005.ckpt')));
  });

  it('removes the temporary files of a write a crash interrupted, and never lists them', async () => {
    const store = new CheckpointStore(dir, 3);
    await store.write(content(1));
    const temp = path.join(dir, '.checkpoint-000000000002.ckpt.123.abcd.tmp');
    fs.writeFileSync(temp, 'half a checkpoint');
    assert.equal((await store.list()).length, 1);
    await store.prepare();
    assert.ok(!fs.existsSync(temp));
  });

  for (const [what, damage, expected] of [
    ['corrupt (one byte flipped)', (b: Buffer) => Buffer.from(b.map((x, i) => (i === b.length - 3 ? x ^ 1 : x))), /corrupt: the checksum/],
    ['truncated', (b: Buffer) => b.subarray(0, b.length - 5), /truncated/],
    ['of another format version', (b: Buffer) => Buffer.from(b.toString('latin1').replace(`lifelong-checkpoint ${CHECKPOINT_FORMAT} `, 'lifelong-checkpoint 7 '), 'latin1'), /unsupported checkpoint format 7/],
    ['empty', () => Buffer.alloc(0), /bad magic/],
  ] as const) {
    it(`skips the newest checkpoint when it is ${what}, with a warning naming it, and resumes the next older one`, async () => {
      const log = recordingLog();
      const store = new CheckpointStore(dir, 3, log);
      await store.write(content(1));
      const { file } = await store.write(content(2));
      fs.writeFileSync(file, damage(fs.readFileSync(file)));
      await assert.rejects(readCheckpoint(file), expected);
      const newest = await store.newest();
      assert.deepEqual(newest?.checkpoint.state.meta, { v: 1 });
      assert.equal(log.warnings.length, 1);
      assert.ok(log.warnings[0]?.includes(file), log.warnings[0]);
      assert.match(log.warnings[0] as string, expected);
    });
  }

  it('finds nothing in a directory that does not exist yet, and creates it on prepare', async () => {
    const store = new CheckpointStore(path.join(dir, 'not', 'yet'), 3);
    assert.equal(await store.newest(), undefined);
    await store.prepare();
    assert.ok(fs.statSync(path.join(dir, 'not', 'yet')).isDirectory());
  });

  it('an unreadable directory is a clear error naming it', async () => {
    // A file where the directory should be: unreadable as a directory even for root.
    const notADirectory = path.join(dir, 'file');
    fs.writeFileSync(notADirectory, '');
    const unreadable = [notADirectory];
    // Without read permission (root reads anything, so only for other users).
    if (process.platform !== 'win32' && process.getuid?.() !== 0) {
      const locked = path.join(dir, 'locked');
      fs.mkdirSync(locked);
      fs.chmodSync(locked, 0o000);
      unreadable.push(locked);
    }
    for (const directory of unreadable) {
      const store = new CheckpointStore(directory, 3);
      await assert.rejects(store.newest(), (error: Error) => error instanceof LifelongError && error.message.includes(directory) && /cannot be read/.test(error.message));
      await assert.rejects(store.prepare(), (error: Error) => error instanceof LifelongError && error.message.includes(directory));
    }
  });

  it('lifelong run on Kafka with an unreadable checkpoint directory exits 1 (a runtime failure), naming the directory, before it reads anything', async () => {
    const notADirectory = path.join(dir, 'file');
    fs.writeFileSync(notADirectory, '');
    const pipeline = path.join(dir, 'kafka.json');
    fs.writeFileSync(
      pipeline,
      JSON.stringify({
        name: 'unreadable',
        scenario: 'task-incremental',
        source: { type: 'kafka', brokers: ['127.0.0.1:1'], topicPattern: 'never-.*' },
        model: { hiddenLayers: [4], outputUnits: 2 },
        strategy: { name: 'finetune' },
        checkpoint: { directory: notADirectory },
      }),
    );
    let stderr = '';
    const writeErr = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => ((stderr += String(chunk)), true)) as typeof process.stderr.write;
    let code: number;
    try {
      // The backend the suite runs on: main() selects it for the whole process, and a slower one
      // left behind (cpu) made every later test of this process many times slower.
      code = await main(['run', '--pipeline', pipeline, '--no-metrics', '--backend', getBackend()]);
    } finally {
      process.stderr.write = writeErr;
    }
    assert.equal(code, EXIT_CODES.failure, stderr);
    assert.ok(stderr.includes(`checkpoint directory ${notADirectory}`), stderr);
  });

  it('--fresh sets every checkpoint aside instead of deleting it; the next write starts a new sequence', async () => {
    const store = new CheckpointStore(dir, 3);
    await store.write(content(1));
    await store.write(content(2));
    const aside = await store.setAside();
    assert.ok(aside && fs.readdirSync(aside).length === 2);
    assert.equal(await store.newest(), undefined);
    const { file } = await store.write(content(3));
    assert.equal(path.basename(file), 'checkpoint-000000000001.ckpt');
  });

  it('refuses a keep below 1, naming the key', () => {
    assert.throws(() => new CheckpointStore(dir, 0), /checkpoint\.keep/);
  });
});
