import * as assert from 'node:assert/strict';
import * as path from 'node:path';
// Only the package entry, as the example itself does: what a user writing a strategy has.
import { builtinStrategies, checkStrategy, loadPipelineConfig, loadStrategyModule, runPipeline, tf, type Sample, type Strategy, type StrategyOptions } from 'lifelong';
import { takeSamples } from '../helpers/mnist-task';

const REPO = path.resolve(__dirname, '../../..');
const PIPELINE = path.join(REPO, 'pipelines/split-mnist-si-domain.json');
/** The compiled example, as the pipeline file names it. */
const si = () => loadStrategyModule(loadPipelineConfig(PIPELINE).strategy.module as string, 'si');

describe('example strategy: Synaptic Intelligence, written against the public API only', () => {
  it('passes checkStrategy in every scenario', async () => {
    const report = await checkStrategy(si());
    assert.equal(report.strategy, 'si');
    assert.ok(report.results.length >= 10, `${report.results.length} checks ran`);
    assert.deepEqual(report.results.filter((r) => r.outcome.status !== 'passed'), [], 'every check passed, none skipped');
  });

  it('keeps a Domain-IL task that finetune forgets, while learning the next one', async () => {
    const scenario = 'domain-incremental';
    const { source, samples } = await takeSamples({ dataset: 'split-mnist', tasks: 2, samplesPerTask: 3000, seed: 3, scenario });
    const [first, second] = source.knownTasks() as [string, string];
    const probe = (task: string) => source.probe(task, 500) as Sample[];
    const options: StrategyOptions = { scenario, inputSize: 784, hiddenLayers: [100, 100], outputUnits: source.outputUnits, optimizer: 'adam', learningRate: 0.001, stepsPerBatch: 1, seed: 1, params: {} };
    const accuracy = async (strategy: Strategy, task: string) => {
      const predictions = await strategy.predict(undefined, probe(task).map((s) => s.x));
      return predictions.filter((p, i) => p.label === probe(task)[i]?.y).length / predictions.length;
    };
    const learn = async (strategy: Strategy) => {
      const penalties: number[] = [];
      for (const [index, name] of [first, second].entries()) {
        const task = { name, index };
        await strategy.beginTask(task);
        const stream = samples.filter((s) => s.task === name);
        for (let epoch = 0; epoch < 3; epoch++) {
          for (let i = 0; i < stream.length; i += 64) {
            const batch = stream.slice(i, i + 64);
            penalties.push((await strategy.trainBatch(task, { xs: batch.map((s) => s.x), ys: batch.map((s) => s.y as string) })).penalty);
          }
        }
        await strategy.endTask(task);
      }
      return { first: await accuracy(strategy, first), second: await accuracy(strategy, second), penalties };
    };
    const finetune = builtinStrategies().describe('finetune').create(options);
    const synaptic = si().create({ ...options, params: { c: 100 } });
    try {
      const plain = await learn(finetune);
      const kept = await learn(synaptic);
      const steps = kept.penalties.length / 2;
      assert.ok(kept.penalties.slice(0, steps).every((p) => p === 0), 'no penalty while learning the first task');
      // The first step of task 2 starts at the anchor itself, where the penalty is 0.
      assert.ok(kept.penalties.slice(steps + 1).every((p) => p > 0), 'the path integral of task 1 weighs on the steps of task 2');
      assert.ok(kept.first >= plain.first + 0.1, `task 1 after task 2: SI ${kept.first}, finetune ${plain.first}`);
      assert.ok(kept.second >= 0.9, `SI still learns task 2: ${kept.second}`);
    } finally {
      finetune.dispose();
      synaptic.dispose();
    }
  });

  it('runs from a pipeline file through strategy.module', async () => {
    const pipeline = loadPipelineConfig(PIPELINE);
    const report = await runPipeline({ pipeline: { ...pipeline, source: { ...pipeline.source, tasks: 2, samplesPerTask: 600 } as typeof pipeline.source }, backend: tf.getBackend() });
    assert.equal(report.strategy, 'si');
    assert.equal(report.samplesTrained, 2 * 600, 'every sample trained (the probes come from the test split)');
    assert.equal(report.accuracyMatrix.length, 2);
  });
});
