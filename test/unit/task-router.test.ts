import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadPipelineConfig } from '../../src/config/pipeline-config';
import { ConfigError } from '../../src/core/errors';
import type { Sample, Scenario, TaskInfo } from '../../src/core/types';
import { runPipeline } from '../../src/engine/run-pipeline';
import { LifelongMetrics } from '../../src/metrics/prometheus';
import type { TaskOutcome } from '../../src/operators/events';
import { ExpertGate, gateConfidences } from '../../src/strategies/expert-gate';
import { toMatrix } from '../../src/strategies/learning-helpers';
import { builtinStrategies } from '../../src/strategies/registry';
import type { Strategy, StrategyOptions } from '../../src/strategies/strategy';
import { parseExposition } from '../helpers/exposition';
import { batches, takeSamples } from '../helpers/mnist-task';

const REPO = path.resolve(__dirname, '../../..');

function options(params: Record<string, unknown> = {}, scenario: Scenario = 'task-incremental', outputUnits = 2): StrategyOptions {
  return { scenario, inputSize: 784, hiddenLayers: [100, 100], outputUnits, optimizer: 'adam', learningRate: 0.001, stepsPerBatch: 1, seed: 1, params };
}

async function learn(strategy: Strategy, tasks: readonly TaskInfo[], samples: readonly Sample[], batchSize = 32): Promise<void> {
  for (const task of tasks) {
    await strategy.beginTask(task);
    for (const b of batches(samples.filter((s) => s.task === task.name), batchSize)) await strategy.trainBatch(task, { xs: b.map((s) => s.x), ys: b.map((s) => s.y as string) });
    await strategy.endTask(task);
  }
}

function gateOf(seed = 1): ExpertGate {
  return new ExpertGate({ inputSize: 784, hiddenUnits: 100, learningRate: 0.01, stepsPerBatch: 1, seed });
}

/** Trains `gate` on `tasks`' samples, batch by batch. */
function trainGate(gate: ExpertGate, tasks: readonly string[], samples: readonly Sample[]): void {
  for (const task of tasks) {
    for (const b of batches(samples.filter((s) => s.task === task), 32)) {
      const x = toMatrix(b.map((s) => s.x), 784);
      gate.train(task, x);
      x.dispose();
    }
  }
}

function errorsOf(gate: ExpertGate, xs: readonly Float32Array[]): number[][] {
  const x = toMatrix(xs, 784);
  const e = tf.tidy(() => gate.errors(x, gate.tasks()));
  const out = e.arraySync() as number[][];
  tf.dispose([x, e]);
  return out;
}

describe('Expert Gate task router', () => {
  it('split-MNIST, 5 tasks, one pass: the right task for >= 90% of held-out test images, and Progressive + router answers >= 90% of requests without a task', async () => {
    const { source, samples } = await takeSamples({ dataset: 'split-mnist', tasks: 5, samplesPerTask: 3000, seed: 1, scenario: 'task-incremental' });
    const tasks = source.knownTasks().map((name, index) => ({ name, index }));
    const probe = tasks.flatMap((t) => (source.probe(t.name, 300) as Sample[]).map((s) => ({ ...s, task: t.name })));
    const s = builtinStrategies().get('progressive')(options());
    try {
      await learn(s, tasks, samples);
      const answers = await s.predict(undefined, probe.map((p) => p.x));
      const routed = answers.filter((a, i) => a.inferredTask === probe[i]?.task).length / probe.length;
      // A Task-IL label names a class of its task ('0' of the second task is a 2): right only with the right task.
      const right = answers.filter((a, i) => a.inferredTask === probe[i]?.task && a.label === probe[i]?.y).length / probe.length;
      const given = await Promise.all(tasks.map((t) => s.predict(t, probe.filter((p) => p.task === t.name).map((p) => p.x))));
      const withTask = given.flat().filter((a, i) => a.label === probe[i]?.y).length / probe.length;
      process.stderr.write(`      task inferred right for ${(100 * routed).toFixed(1)}%, answered right without the task ${(100 * right).toFixed(1)}% (with the task ${(100 * withTask).toFixed(1)}%)\n`);
      assert.ok(routed >= 0.9, `task inference ${routed}`);
      assert.ok(right >= 0.9, `task-agnostic accuracy ${right}`);
      assert.ok(answers.every((a) => a.confidence !== undefined && a.confidence >= 0 && a.confidence <= 1), 'every answer carries the router confidence');
    } finally {
      s.dispose();
    }
  });

  it('holds 14 tensors per task (4 weights, Adam\'s 8 moments and 2 beta powers), restores exactly, keeps learning alike, frees them all', async () => {
    const { source, samples } = await takeSamples({ dataset: 'split-mnist', tasks: 2, samplesPerTask: 200, seed: 2, scenario: 'task-incremental' });
    const tasks = source.knownTasks();
    const before = tf.memory().numTensors;
    const gate = gateOf();
    const copy = gateOf(99);
    try {
      trainGate(gate, tasks, samples.slice(0, 300));
      assert.equal(tf.memory().numTensors - before, 14 * 2);
      const state = await gate.exportState('router');
      assert.equal(tf.memory().numTensors - before, 14 * 2, 'exportState holds no tensor');
      await copy.importState('router', state.meta, state.tensors);
      assert.equal(tf.memory().numTensors - before, 14 * 4);
      const xs = samples.slice(0, 50).map((s) => s.x);
      assert.deepEqual(errorsOf(copy, xs), errorsOf(gate, xs));
      assert.equal(copy.parameterCount(), gate.parameterCount());
      assert.equal(gate.parameterCount(), 2 * (784 * 100 + 100 + 100 * 784 + 784));
      // Moments moved with the weights: one more step of each gives the same errors.
      trainGate(gate, [tasks[1] as string], samples.slice(300));
      trainGate(copy, [tasks[1] as string], samples.slice(300));
      assert.deepEqual(errorsOf(copy, xs), errorsOf(gate, xs));
      assert.equal(tf.memory().numTensors - before, 14 * 4, 'no tensor per step');
    } finally {
      gate.dispose();
      copy.dispose();
      gate.dispose();
    }
    assert.equal(tf.memory().numTensors, before, 'tensors left after dispose');
  });

  it('stays finite on features far outside [0, 1] (clipped), and its confidence is a softmax over errors / 2', () => {
    const gate = gateOf();
    try {
      const huge = Array.from({ length: 8 }, (_, i) => new Float32Array(784).fill(i % 2 ? 1e6 : -1e6));
      const x = toMatrix(huge, 784);
      gate.train('a', x);
      gate.train('b', x);
      x.dispose();
      assert.ok(errorsOf(gate, huge).flat().every(Number.isFinite));
    } finally {
      gate.dispose();
    }
    const c = gateConfidences([10, 12, 30]);
    assert.ok(Math.abs(c.reduce((a, b) => a + b, 0) - 1) < 1e-12);
    assert.ok(Math.abs((c[0] as number) / (c[1] as number) - Math.E) < 1e-9, 'exp(-(10 - 12) / 2)');
    assert.deepEqual(gateConfidences([NaN, NaN]), [0.5, 0.5]);
  });

  it('is a parameter of every strategy with a head per task: expert-gate (the default) names its confidence, entropy and confidence build no gate; a bad rule names its key', async () => {
    const { source, samples } = await takeSamples({ dataset: 'split-mnist', tasks: 2, samplesPerTask: 600, seed: 3, scenario: 'task-incremental' });
    const tasks = source.knownTasks().map((name, index) => ({ name, index }));
    const probe = tasks.flatMap((t) => (source.probe(t.name, 100) as Sample[]).map((s) => ({ ...s, task: t.name })));
    const registry = builtinStrategies();
    for (const name of ['ewc', 'progressive', 'den']) {
      assert.equal(registry.describe(name).params.taskInference?.default, 'expert-gate');
      const held: Record<string, number> = {};
      for (const rule of ['expert-gate', 'entropy', 'confidence']) {
        const before = tf.memory().numTensors;
        const s = registry.get(name)(options({ taskInference: rule }));
        try {
          await learn(s, tasks, samples);
          held[rule] = tf.memory().numTensors - before;
          const answers = await s.predict(undefined, probe.map((p) => p.x));
          const routed = answers.filter((a, i) => a.inferredTask === probe[i]?.task).length / probe.length;
          const gated = rule === 'expert-gate';
          assert.equal(answers.every((a) => a.confidence !== undefined), gated, `${name} ${rule}: confidence named`);
          if (gated) assert.ok(routed >= 0.9, `${name} ${rule}: task inference ${routed}`);
          const routerDiagnostics = (s.diagnostics?.() ?? []).filter((d) => d.name === 'task_router_parameters');
          assert.deepEqual(routerDiagnostics.map((d) => d.labels?.task), gated ? tasks.map((t) => t.name) : [], `${name} ${rule}: router size on the dashboards`);
        } finally {
          s.dispose();
        }
        assert.equal(tf.memory().numTensors, before, `${name} ${rule}: everything freed`);
      }
      // The gate's autoencoders (14 tensors a task) are all the rule adds.
      assert.equal(held['expert-gate'], (held.confidence as number) + 14 * tasks.length, name);
      assert.equal(held.entropy, held.confidence, name);
      assert.throws(
        () => registry.get(name)(options({ taskInference: 'oracle' })),
        (e: unknown) => e instanceof ConfigError && e.key === 'strategy.params.taskInference',
      );
    }
  });

  it('a checkpoint without the gate (another rule, an older version) is answered by the confidence rule, also after a new task', async () => {
    const { source, samples } = await takeSamples({ dataset: 'split-mnist', tasks: 3, samplesPerTask: 200, seed: 5, scenario: 'task-incremental' });
    const tasks = source.knownTasks().map((name, index) => ({ name, index }));
    const xs = tasks.flatMap((t) => (source.probe(t.name, 20) as Sample[]).map((s) => s.x));
    const registry = builtinStrategies();
    for (const name of ['ewc', 'progressive', 'den']) {
      const older = registry.get(name)(options({ taskInference: 'confidence' }));
      const gated = registry.get(name)(options());
      try {
        await learn(older, tasks.slice(0, 2), samples);
        await gated.importState(await older.exportState());
        assert.deepEqual(await gated.predict(undefined, xs), await older.predict(undefined, xs), `${name}: as before`);
        await learn(gated, tasks.slice(2), samples);
        await learn(older, tasks.slice(2), samples);
        const answers = await gated.predict(undefined, xs);
        assert.ok(answers.every((a) => a.confidence === undefined), `${name}: the gate knows one task of three, so it does not route`);
        assert.deepEqual(answers, await older.predict(undefined, xs), `${name}: still the confidence rule`);
      } finally {
        older.dispose();
        gated.dispose();
      }
    }
  });

  it('in the domain- and class-incremental scenarios an MLP strategy has one head and no gate', async () => {
    const { source, samples } = await takeSamples({ dataset: 'split-mnist', tasks: 2, samplesPerTask: 64, seed: 4, scenario: 'class-incremental' });
    const tasks = source.knownTasks().map((name, index) => ({ name, index }));
    const s = builtinStrategies().get('ewc')(options({}, 'class-incremental', source.outputUnits));
    try {
      await learn(s, tasks, samples);
      const state = await s.exportState();
      assert.equal(state.meta.router, undefined);
      assert.ok(Object.keys(state.tensors).every((k) => !k.startsWith('router')));
    } finally {
      s.dispose();
    }
  });

  it('through the engine: task inference on the probes at every task end, exported as lifelong_task_inference_accuracy_ratio{task}', async () => {
    const pipeline = loadPipelineConfig(path.join(REPO, 'pipelines', 'split-mnist-progressive-task.json'));
    const small = { ...pipeline, source: { ...pipeline.source, tasks: 2, samplesPerTask: 1000 } as typeof pipeline.source, model: { ...pipeline.model, hiddenLayers: [100, 100] } };
    const metrics = new LifelongMetrics({ defaultMetrics: false });
    const outcomes: TaskOutcome[] = [];
    const report = await runPipeline({ pipeline: small, backend: tf.getBackend(), metrics, onEvent: (e) => e.kind === 'task-outcome' && outcomes.push(e) });
    assert.equal(outcomes.length, 2);
    const [first, second] = outcomes as [TaskOutcome, TaskOutcome];
    assert.equal(first.taskInferenceAccuracy?.[0], 1, 'one column: every probe goes to it');
    const last = second.taskInferenceAccuracy as readonly (number | null)[];
    assert.ok(last.every((a) => a !== null && a > 0.8), `task inference after two tasks ${JSON.stringify(last)}`);
    const series = parseExposition(await metrics.metrics()).filter((s) => s.name === 'lifelong_task_inference_accuracy_ratio');
    assert.deepEqual(
      series.map((s) => [s.labels.task, s.value]).sort(),
      report.tasks.map((t, i) => [t, last[i]]).sort(),
    );
  });
});
