/**
 * Structure strategies against EWC (issue 4, "Measure"): average accuracy and parameter count
 * after each task for progressive, den and ewc on split- and permuted-MNIST, task-incremental,
 * each run through the whole pipeline (runPipeline) on the same stream.
 *
 *   npx tsc -p tsconfig.json --outDir .build-prog && node .build-prog/bench/structure-strategies.js \
 *     [--strategies progressive,den,ewc] [--datasets split-mnist,permuted-mnist] \
 *     [--samples-per-task N (0 = all)] [--tasks N (0 = the pipeline's)]
 *
 * Datasets are those with a pipelines/<dataset>-progressive-task.json (split-mnist, permuted-mnist),
 * whose model and training settings every strategy uses; a strategy's params come from
 * pipelines/<dataset>-<strategy>-task.json where that file exists, else are its defaults. A strategy that is not registered (den before it lands) is skipped with a note.
 * Prints a markdown table on stdout; progress goes to stderr.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { selectBackend } from '../src/backend/backend';
import { loadPipelineConfig, type PipelineConfig } from '../src/config/pipeline-config';
import type { RunReport } from '../src/engine/report';
import { runPipeline } from '../src/engine/run-pipeline';
import { builtinStrategies } from '../src/strategies/registry';

/** The repository root, from src/ or from a build directory (dist/bench, .build-x/bench). */
const ROOT = ['..', '../..'].map((up) => path.resolve(__dirname, up)).find((dir) => fs.existsSync(path.join(dir, 'pipelines'))) as string;

/** Mean accuracy over tasks 1..i after learning task i, for each i (the usual "average accuracy" curve). */
function averageAfterEachTask(report: RunReport): (number | null)[] {
  return report.accuracyMatrix.map((row, i) => {
    const seen = row.slice(0, i + 1).filter((a): a is number => a !== null);
    return seen.length ? seen.reduce((s, a) => s + a, 0) / seen.length : null;
  });
}

function compact(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(0)}k`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      strategies: { type: 'string', default: 'progressive,den,ewc' },
      datasets: { type: 'string', default: 'split-mnist,permuted-mnist' },
      'samples-per-task': { type: 'string', default: '0' },
      tasks: { type: 'string', default: '0' },
    },
  });
  const samplesPerTask = Number(values['samples-per-task']);
  const tasks = Number(values.tasks);
  if (!Number.isInteger(samplesPerTask) || samplesPerTask < 0) throw new Error(`--samples-per-task must be a non-negative integer, got ${values['samples-per-task']}`);
  if (!Number.isInteger(tasks) || tasks < 0) throw new Error(`--tasks must be a non-negative integer, got ${values.tasks}`);
  const backend = (await selectBackend('auto', () => undefined)).name;
  const registered = builtinStrategies().names();
  const rows: string[] = [];
  const notes: string[] = [];
  let columns = 0;
  for (const dataset of values.datasets.split(',')) {
    const base = loadPipelineConfig(path.join(ROOT, 'pipelines', `${dataset}-progressive-task.json`));
    const source = { ...base.source, ...(samplesPerTask > 0 ? { samplesPerTask } : {}), ...(tasks > 0 ? { tasks } : {}) } as PipelineConfig['source'] & { tasks: number; samplesPerTask: number };
    const pipeline: PipelineConfig = { ...base, source };
    notes.push(
      `${dataset}: ${source.tasks} tasks, ${source.samplesPerTask || 'all'} samples per task, MLP ${pipeline.model.hiddenLayers.join('-')}, ${pipeline.training.optimizer} lr ${pipeline.training.learningRate}, batch ${pipeline.training.batchSize}, gradient steps per batch ${pipeline.training.stepsPerBatch}, seed ${pipeline.seed}`,
    );
    for (const strategy of values.strategies.split(',')) {
      if (!registered.includes(strategy)) {
        if (!notes.includes(`${strategy}: not registered in this build, skipped`)) notes.push(`${strategy}: not registered in this build, skipped`);
        process.stderr.write(`skipping ${strategy}: not registered (known: ${registered.join(', ')})\n`);
        continue;
      }
      const own = path.join(ROOT, 'pipelines', `${dataset}-${strategy}-task.json`);
      const params = fs.existsSync(own) ? loadPipelineConfig(own).strategy.params : {};
      process.stderr.write(`${dataset} / ${strategy} ${JSON.stringify(params)}...\n`);
      const report = await runPipeline({ pipeline, backend, strategyOverride: { name: strategy, params } });
      const averages = averageAfterEachTask(report);
      columns = Math.max(columns, averages.length);
      const cells = averages.map((a, i) => `${a === null ? 'n/a' : (100 * a).toFixed(1) + '%'} / ${compact(report.parametersAfterTask[i] ?? report.parameters)}`);
      rows.push(`| ${dataset} | ${strategy} ${JSON.stringify(params)} | ${cells.join(' | ')} | ${report.durationSeconds.toFixed(0)} |`);
      process.stderr.write(`${rows[rows.length - 1]}\n`);
    }
  }
  const header = Array.from({ length: columns }, (_, i) => `after task ${i + 1}`);
  process.stdout.write(
    [
      `Task-incremental, ${backend} backend. Cells: average accuracy over the tasks learned so far / trainable parameters.`,
      '',
      ...notes.map((n) => `- ${n}`),
      '',
      `| dataset | strategy (params) | ${header.join(' | ')} | wall s |`,
      `|---|---|${header.map(() => '---|').join('')}---|`,
      ...rows,
    ].join('\n') + '\n',
  );
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack}\n`);
  process.exitCode = 1;
});
