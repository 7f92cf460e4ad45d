import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import type { PipelineConfig } from '../../src/config/pipeline-config';
import { encodeCheckpoint } from '../../src/engine/checkpoint';
import { strategyFromSnapshot } from '../../src/engine/serve-pipeline';
import { builtinStrategies } from '../../src/strategies/registry';
import type { StrategyOptions } from '../../src/strategies/strategy';
import { TASK_AGNOSTIC, type Prediction, type TaskInfo } from '../../src/core/types';
import { NO_MODEL_YET, ServedModel, type LoadedModel } from '../../src/engine/served-model';
import type { PredictionRequest } from '../../src/kafka/request-consumer';
import type { Strategy } from '../../src/strategies/strategy';

/** A strategy that answers its own version as the label, after `delay` (a prediction in progress), and records calls. */
function fakeModel(version: number, delay: () => Promise<void> = async () => undefined): LoadedModel & { disposed: boolean; asked: (TaskInfo | undefined)[] } {
  const model = {
    disposed: false,
    asked: [] as (TaskInfo | undefined)[],
    version,
    tasks: ['t0', 't1'],
    strategy: {
      predict: async (task: TaskInfo | undefined, xs: readonly Float32Array[]): Promise<Prediction[]> => {
        if (model.disposed) throw new Error(`model ${version} used after dispose`);
        model.asked.push(task);
        await delay();
        if (model.disposed) throw new Error(`model ${version} disposed while predicting`);
        return xs.map(() => ({ label: String(version), probabilities: { [String(version)]: 1 } }));
      },
      dispose: () => {
        model.disposed = true;
      },
    } as unknown as Strategy,
  };
  return model;
}

function requests(n: number, task = TASK_AGNOSTIC): PredictionRequest[] {
  return Array.from({ length: n }, (_, i) => ({ task, x: Float32Array.of(i), ref: { topic: 't', partition: 0, offset: String(i), key: null } }));
}

describe('a replica swaps models between requests (unit)', () => {
  it('answers with a null label and a reason, version 0, before any snapshot', async () => {
    const served = new ServedModel(false);
    const answers = await served.answer(requests(3));
    assert.equal(answers.modelVersion, 0);
    assert.deepEqual(answers.predictions, [NO_MODEL_YET, NO_MODEL_YET, NO_MODEL_YET]);
    assert.equal(NO_MODEL_YET.label, null);
    assert.match(NO_MODEL_YET.reason ?? '', /no model yet/);
    assert.equal(served.version, undefined);
  });

  it('a model offered while a batch is answered waits for it; the old one is disposed only after it', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const v1 = fakeModel(1, () => gate);
    const v2 = fakeModel(2);
    const served = new ServedModel(false);
    served.offer(v1);
    const inFlight = served.answer(requests(4));
    served.offer(v2);
    assert.equal(served.version, 1, 'still serving version 1 while its batch is answered');
    assert.equal(v1.disposed, false);
    release();
    const answers = await inFlight;
    assert.equal(answers.modelVersion, 1);
    assert.deepEqual(answers.predictions.map((p) => p.label), ['1', '1', '1', '1'], 'one whole model answers a batch');
    assert.equal(served.version, 2, 'swapped in right after the batch');
    assert.equal(v1.disposed, true);
    const next = await served.answer(requests(2));
    assert.equal(next.modelVersion, 2);
  });

  it('of two models offered during one batch, the newest is served and the skipped one disposed', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const [v1, v2, v3] = [fakeModel(1, () => gate), fakeModel(2), fakeModel(3)];
    const served = new ServedModel(false);
    served.offer(v1);
    const inFlight = served.answer(requests(1));
    served.offer(v2);
    served.offer(v3);
    assert.equal(v2.disposed, true);
    release();
    await inFlight;
    assert.equal(served.version, 3);
    served.dispose();
    assert.equal(v3.disposed, true);
    served.dispose();
    const late = fakeModel(4);
    served.offer(late);
    assert.equal(late.disposed, true, 'a model offered after dispose is freed at once');
  });

  it('every request of batches sent across many swaps is answered once, by the model of its batch', async () => {
    const served = new ServedModel(false);
    const batches: Promise<{ modelVersion: number; labels: (string | null)[] }>[] = [];
    for (let version = 1; version <= 20; version++) {
      served.offer(fakeModel(version, () => new Promise((r) => setTimeout(r, 1))));
      batches.push(served.answer(requests(5)).then((a) => ({ modelVersion: a.modelVersion, labels: a.predictions.map((p) => p.label) })));
    }
    for (const { modelVersion, labels } of await Promise.all(batches)) {
      assert.equal(labels.length, 5);
      assert.ok(labels.every((l) => l === String(modelVersion)), `batch of version ${modelVersion} answered by it alone`);
    }
  });

  it('task-incremental: a task topic asks its own head (by the snapshot task index); the request topic asks none', async () => {
    const model = fakeModel(1);
    const served = new ServedModel(true);
    served.offer(model);
    await served.answer([...requests(1, 't1'), ...requests(1, TASK_AGNOSTIC), ...requests(1, 'new-task')]);
    assert.deepEqual(model.asked, [{ name: 't1', index: 1 }, undefined, { name: 'new-task', index: 2 }]);
    const agnostic = fakeModel(2);
    const classIncremental = new ServedModel(false);
    classIncremental.offer(agnostic);
    await classIncremental.answer(requests(2, 't1'));
    assert.deepEqual(agnostic.asked, [undefined]);
  });

  it('a model loaded from a snapshot answers like the trainer, and swapping it out frees every tensor it held', async () => {
    const options: StrategyOptions = { scenario: 'class-incremental', inputSize: 4, hiddenLayers: [8], outputUnits: 0, optimizer: 'adam', learningRate: 0.01, stepsPerBatch: 1, seed: 1, params: { lambda: 10 } };
    const trainer = builtinStrategies().get('ewc')(options);
    const task = { name: 't0', index: 0 };
    const xs = [Float32Array.of(1, 0, 0, 0), Float32Array.of(0, 1, 0, 0), Float32Array.of(0, 0, 1, 0)];
    await trainer.beginTask(task);
    await trainer.trainBatch(task, { xs, ys: ['a', 'b', 'a'] });
    await trainer.endTask(task);
    const snapshot = Buffer.concat(encodeCheckpoint({ pipeline: 'p', strategyName: 'ewc', options, state: await trainer.exportState() }));
    const expected = await trainer.predict(undefined, xs);
    trainer.dispose();
    const pipeline = { strategy: { name: 'ewc', params: {} } } as unknown as PipelineConfig;
    const before = tf.memory().numTensors;
    const served = new ServedModel(false);
    for (let version = 1; version <= 3; version++) served.offer({ strategy: await strategyFromSnapshot(snapshot, `snapshot ${version}`, pipeline), version, tasks: ['t0'] });
    const answers = await served.answer(xs.map((x, i) => ({ task: 't0', x, ref: { topic: 't0', partition: 0, offset: String(i), key: null } })));
    assert.deepEqual(answers.predictions.map((p) => p.label), expected.map((p) => p.label));
    assert.equal(answers.modelVersion, 3);
    served.dispose();
    assert.equal(tf.memory().numTensors, before, 'no tensor left behind by three loads, two swaps and a dispose');
  });
});
