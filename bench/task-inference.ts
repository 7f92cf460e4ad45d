/**
 * Answers without a task (issue 14, "Measure"): task-agnostic accuracy of every strategy with a
 * head or column per task, under each task-inference rule (entropy, confidence, expert-gate),
 * on split- and permuted-MNIST, single pass, Task-IL; and the Expert Gate router's cost.
 *
 *   npm run bench:task-inference -- [--strategies finetune,ewc,progressive,...] \
 *     [--datasets split-mnist,permuted-mnist] [--samples-per-task N (0 = all)] [--tasks N (0 = the pipeline's)] \
 *     [--probe N (test images per task)]
 *
 * Each strategy learns the stream once, with the gate (taskInference 'expert-gate'); the rule only
 * decides how a request without a task is answered, so the same trained state is then imported
 * into an instance of each rule and all three answer the same held-out test images. Model and
 * training settings are those of pipelines/<dataset>-progressive-task.json. Prints markdown
 * tables on stdout; progress goes to stderr.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/backend/backend';
import { loadPipelineConfig } from '../src/config/pipeline-config';
import type { Sample, TaskInfo } from '../src/core/types';
import { ExpertGate } from '../src/strategies/expert-gate';
import { toMatrix } from '../src/strategies/learning-helpers';
import { builtinStrategies } from '../src/strategies/registry';
import type { Strategy, StrategyOptions } from '../src/strategies/strategy';
import { TASK_INFERENCE_PARAMS } from '../src/strategies/task-inference';
import { batches, takeSamples } from '../src/testing/mnist-tasks';

const ROOT = ['..', '../..'].map((up) => path.resolve(__dirname, up)).find((dir) => fs.existsSync(path.join(dir, 'pipelines'))) as string;
const RULES = ['entropy', 'confidence', 'expert-gate'] as const;
const MLP_TASK_HEADS = ['finetune', 'l2', 'ewc', 'online-ewc', 'dgr', 'replay', 'joint'];

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

async function learn(strategy: Strategy, tasks: readonly TaskInfo[], samples: readonly Sample[], batchSize: number): Promise<void> {
  for (const task of tasks) {
    await strategy.beginTask(task);
    for (const b of batches(samples.filter((s) => s.task === task.name), batchSize)) await strategy.trainBatch(task, { xs: b.map((s) => s.x), ys: b.map((s) => s.y as string) });
    await strategy.endTask(task);
  }
}

interface Scores {
  readonly taskInference: number;
  readonly agnostic: number;
  readonly given: number;
  readonly msPerRequest: number;
}

async function score(strategy: Strategy, tasks: readonly TaskInfo[], probes: ReadonlyMap<string, readonly Sample[]>): Promise<Scores> {
  let right = 0;
  let inferred = 0;
  let given = 0;
  let n = 0;
  let seconds = 0;
  for (const task of tasks) {
    const probe = probes.get(task.name) as readonly Sample[];
    const xs = probe.map((s) => s.x);
    const t0 = performance.now();
    const agnostic = await strategy.predict(undefined, xs);
    seconds += (performance.now() - t0) / 1000;
    const withTask = await strategy.predict(task, xs);
    probe.forEach((s, i) => {
      // In Task-IL a label names a class of its task ('0' is a 2 in split-MNIST's second task): right only with the right task.
      right += agnostic[i]?.label === s.y && agnostic[i]?.inferredTask === task.name ? 1 : 0;
      inferred += agnostic[i]?.inferredTask === task.name ? 1 : 0;
      given += withTask[i]?.label === s.y ? 1 : 0;
    });
    n += probe.length;
  }
  return { taskInference: inferred / n, agnostic: right / n, given: given / n, msPerRequest: (1000 * seconds) / n };
}

/** The gate alone: parameters and training time per task, time per request. */
async function gateCost(settings: { inputSize: number; batchSize: number; stepsPerBatch: number }, tasks: readonly TaskInfo[], samples: readonly Sample[], probe: readonly Sample[]): Promise<string> {
  const gate = new ExpertGate({ inputSize: settings.inputSize, hiddenUnits: TASK_INFERENCE_PARAMS.routerUnits.default, learningRate: TASK_INFERENCE_PARAMS.routerLearningRate.default, stepsPerBatch: settings.stepsPerBatch, seed: 1 });
  let trainSeconds = 0;
  let trainSamples = 0;
  for (const task of tasks) {
    for (const b of batches(samples.filter((s) => s.task === task.name), settings.batchSize)) {
      const x = toMatrix(b.map((s) => s.x), settings.inputSize);
      const t0 = performance.now();
      gate.train(task.name, x);
      trainSeconds += (performance.now() - t0) / 1000;
      trainSamples += b.length;
      x.dispose();
    }
  }
  const x = toMatrix(probe.map((s) => s.x), settings.inputSize);
  const known = gate.tasks();
  tf.tidy(() => gate.errors(x, known)).dispose(); // warm-up
  const t0 = performance.now();
  const errors = tf.tidy(() => gate.errors(x, known));
  await errors.data();
  const requestSeconds = (performance.now() - t0) / 1000;
  tf.dispose([x, errors]);
  const perTask = gate.parameterCount() / known.length;
  gate.dispose();
  return `router: ${gate.hiddenUnits} code units, ${perTask} parameters per task (${known.length} tasks: ${perTask * known.length}); training ${((1000 * trainSeconds) / trainSamples).toFixed(3)} ms per sample (${((1000 * trainSeconds) / known.length).toFixed(0)} ms per task of ${Math.round(trainSamples / known.length)} samples); routing ${((1000 * requestSeconds) / probe.length).toFixed(3)} ms per request over ${known.length} tasks (batch of ${probe.length})`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      strategies: { type: 'string', default: [...MLP_TASK_HEADS, 'progressive', 'den'].join(',') },
      datasets: { type: 'string', default: 'split-mnist,permuted-mnist' },
      'samples-per-task': { type: 'string', default: '0' },
      tasks: { type: 'string', default: '0' },
      probe: { type: 'string', default: '1000' },
    },
  });
  const samplesPerTask = Number(values['samples-per-task']);
  const taskCount = Number(values.tasks);
  const probeSize = Number(values.probe);
  const backend = (await selectBackend('auto', () => undefined)).name;
  const registry = builtinStrategies();
  const notes: string[] = [];
  const rows: string[] = [];
  for (const dataset of values.datasets.split(',')) {
    const base = loadPipelineConfig(path.join(ROOT, 'pipelines', `${dataset}-progressive-task.json`));
    const source = base.source as { tasks: number; samplesPerTask: number };
    const tasksWanted = taskCount > 0 ? taskCount : source.tasks;
    const perTask = samplesPerTask > 0 ? samplesPerTask : source.samplesPerTask;
    const stream = await takeSamples({ dataset: dataset as 'split-mnist' | 'permuted-mnist', tasks: tasksWanted, samplesPerTask: perTask, seed: base.seed, scenario: 'task-incremental' });
    const tasks = stream.source.knownTasks().map((name, index) => ({ name, index }));
    const probes = new Map(tasks.map((t) => [t.name, stream.source.probe(t.name, probeSize) as readonly Sample[]]));
    const t = base.training;
    notes.push(`${dataset}: ${tasks.length} tasks, ${perTask || 'all'} samples per task (${stream.samples.length} in all), ${probeSize} test images per task, MLP ${base.model.hiddenLayers.join('-')}, ${t.optimizer} lr ${t.learningRate}, batch ${t.batchSize}, ${t.stepsPerBatch} gradient steps per batch, seed ${base.seed}, backend ${backend}`);
    notes.push(`${dataset} ${await gateCost({ inputSize: 784, batchSize: t.batchSize, stepsPerBatch: t.stepsPerBatch }, tasks, stream.samples, probes.get(tasks[0]!.name) ?? [])}`);
    process.stderr.write(`${notes[notes.length - 1]}\n`);
    for (const name of values.strategies.split(',')) {
      const options = (rule: string): StrategyOptions => ({
        scenario: 'task-incremental',
        inputSize: 784,
        hiddenLayers: base.model.hiddenLayers,
        outputUnits: stream.source.outputUnits,
        optimizer: t.optimizer,
        learningRate: t.learningRate,
        stepsPerBatch: t.stepsPerBatch,
        seed: base.seed,
        params: 'taskInference' in registry.describe(name).params ? { taskInference: rule } : {},
      });
      const create = registry.get(name);
      process.stderr.write(`${dataset} / ${name}: learning...\n`);
      const t0 = performance.now();
      const trained = create(options('expert-gate'));
      await learn(trained, tasks, stream.samples, t.batchSize);
      const learnSeconds = (performance.now() - t0) / 1000;
      const state = await trained.exportState();
      const cells: string[] = [];
      let given = 0;
      for (const rule of RULES) {
        // A strategy without the taskInference parameter (finetune takes none) has the default rule only.
        if (rule !== 'expert-gate' && !('taskInference' in registry.describe(name).params)) {
          cells.push('n/a');
          continue;
        }
        const s = rule === 'expert-gate' ? trained : create(options(rule));
        if (s !== trained) await s.importState(state);
        const r = await score(s, tasks, probes);
        given = r.given;
        cells.push(`${pct(r.agnostic)} (task ${pct(r.taskInference)}, ${r.msPerRequest.toFixed(2)} ms)`);
        if (s !== trained) s.dispose();
      }
      trained.dispose();
      rows.push(`| ${dataset} | ${name} | ${pct(given)} | ${cells.join(' | ')} | ${learnSeconds.toFixed(0)} |`);
      process.stderr.write(`${rows[rows.length - 1]}\n`);
    }
  }
  process.stdout.write(`${notes.map((n) => `- ${n}`).join('\n')}\n\n`);
  process.stdout.write('| dataset | strategy | task given | entropy: accuracy (task inferred, ms per request) | confidence | expert-gate | learning s |\n|---|---|---|---|---|---|---|\n');
  process.stdout.write(`${rows.join('\n')}\n`);
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack ?? error}\n`);
  process.exitCode = 1;
});
