/**
 * What a durable checkpoint costs (issue 13, "Measure"): per strategy, at the pipelines' model size
 * (MLP 784-400-400, two units per head, task-incremental), after N tasks: the checkpoint's size,
 * the time to export the state and write the file (fsync and rename included), and what one
 * checkpoint every `checkpoint.everySamples` (default 5000) costs the training throughput.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/checkpoint-cost.js [--strategies a,b] [--tasks 10] [--batches 10]
 *
 * Each task trains `batches` batches of 128 random samples (sizes do not depend on the data), then
 * ends; the run state holds a 300-sample probe per task, like evaluation.probeSize. Markdown on stdout.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { selectBackend } from '../src/backend/backend';
import { CHECKPOINT_DEFAULTS } from '../src/config/pipeline-config';
import { Rng } from '../src/core/rng';
import type { Sample } from '../src/core/types';
import { CheckpointStore } from '../src/engine/checkpoint-store';
import { encodeRunState } from '../src/engine/resume-state';
import { RunRecorder } from '../src/sinks/run-recorder';
import { builtinStrategies } from '../src/strategies/registry';
import type { StrategyOptions } from '../src/strategies/strategy';

const INPUT = 784;
const BATCH = 128;
const PROBE = 300;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { strategies: { type: 'string', default: 'finetune,l2,ewc,online-ewc,replay,dgr,progressive,den' }, tasks: { type: 'string', default: '10' }, batches: { type: 'string', default: '10' } } });
  const tasks = Number(values.tasks);
  const batches = Number(values.batches);
  const backend = (await selectBackend('auto', () => undefined)).name;
  const registry = builtinStrategies();
  const rng = new Rng(7);
  const features = (): Float32Array => Float32Array.from({ length: INPUT }, () => rng.next());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifelong-ckpt-bench-'));
  const rows: string[] = [];
  try {
    for (const name of values.strategies.split(',')) {
      const options: StrategyOptions = { scenario: 'task-incremental', inputSize: INPUT, hiddenLayers: [400, 400], outputUnits: 2, optimizer: 'adam', learningRate: 0.001, stepsPerBatch: 1, seed: 1, params: {} };
      const strategy = registry.get(name)(options);
      const probes: Record<string, Sample[]> = {};
      let trainSeconds = 0;
      let trained = 0;
      for (let t = 0; t < tasks; t++) {
        const task = { name: `task-${t}`, index: t };
        await strategy.beginTask(task);
        for (let b = 0; b < batches; b++) {
          const xs = Array.from({ length: BATCH }, features);
          const ys = xs.map((_, i) => String(2 * t + (i % 2)));
          const t0 = performance.now();
          await strategy.trainBatch(task, { xs, ys });
          trainSeconds += (performance.now() - t0) / 1000;
          trained += BATCH;
        }
        await strategy.endTask(task);
        probes[task.name] = Array.from({ length: PROBE }, (_, i) => ({ task: task.name, x: features(), y: String(2 * t + (i % 2)), id: `p${i}` }));
      }
      const store = new CheckpointStore(path.join(dir, name), 1);
      await store.prepare();
      const recorder = new RunRecorder();
      const times: number[] = [];
      let bytes = 0;
      let strategyBytes = 0;
      for (let k = 0; k < 3; k++) {
        const t0 = performance.now();
        const state = await strategy.exportState();
        const written = await store.write({
          pipeline: 'bench',
          strategyName: name,
          options,
          state,
          run: encodeRunState({ source: 'bench', engine: { modelVersion: 1, tasks: Object.keys(probes), holdout: {}, probes, positions: { 't/0': 1 } }, recorder: recorder.exportState() }),
        });
        times.push(performance.now() - t0);
        bytes = written.bytes;
        strategyBytes = Object.values(state.tensors).reduce((a, t) => a + 4 * t.data.length, 0);
      }
      times.sort((a, b) => a - b);
      const ms = times[1] as number;
      const perSample = trainSeconds / trained;
      const every = CHECKPOINT_DEFAULTS.everySamples;
      const overhead = ms / 1000 / (every * perSample + ms / 1000);
      rows.push(`| ${name} | ${tasks} | ${strategy.parameterCount().toLocaleString('en')} | ${(strategyBytes / 1e6).toFixed(1)} | ${(bytes / 1e6).toFixed(1)} | ${ms.toFixed(0)} | ${(1 / perSample).toFixed(0)} | ${(100 * overhead).toFixed(1)}% |`);
      process.stderr.write(`${rows.at(-1)}\n`);
      strategy.dispose();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(
    `backend ${backend}, ${os.cpus().length} cores; checkpoint = strategy state + run state with ${PROBE}-sample probes per task; write = exportState + encode + write + fsync + rename + directory fsync (median of 3)\n\n` +
      `| strategy | tasks | parameters | strategy tensors MB | checkpoint MB | write ms | train samples/s (batch ${BATCH}) | throughput cost, one per ${CHECKPOINT_DEFAULTS.everySamples} samples |\n|---|---|---|---|---|---|---|---|\n${rows.join('\n')}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
});
