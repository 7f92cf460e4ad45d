/**
 * Samples per second trained through the whole pipeline (source, operators, test-then-train
 * prediction, training step, metrics sinks), for an MLP 784-400-400-10 at batch 128, one gradient
 * step per micro-batch, on each backend that loads here.
 *
 *   npm run bench:pipeline [-- --backends wasm,cpu --samples 6000 --strategies finetune,ewc --optimizer adam|sgd]
 */
import * as os from 'node:os';
import { parseArgs } from 'node:util';
import { selectBackend, type BackendName } from '../src/backend/backend';
import type { PipelineConfig } from '../src/config/pipeline-config';
import { runPipeline } from '../src/engine/run-pipeline';
import { LifelongMetrics } from '../src/metrics/prometheus';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      backends: { type: 'string', default: 'tensorflow,wasm,wasm-unpatched,cpu' },
      strategies: { type: 'string', default: 'finetune,ewc' },
      samples: { type: 'string', default: '6000' },
      optimizer: { type: 'string', default: 'adam' },
    },
  });
  const samples = Number(values.samples);
  const optimizer = values.optimizer;
  if (optimizer !== 'adam' && optimizer !== 'sgd') throw new Error(`--optimizer must be adam or sgd, got ${optimizer}`);
  const rows: string[] = [];
  for (const wanted of values.backends.split(',')) {
    const unpatched = wanted === 'wasm-unpatched';
    const name = (unpatched ? 'wasm' : wanted) as BackendName;
    let backend: string;
    try {
      backend = (await selectBackend(name, () => undefined, { wasmMatMulFix: !unpatched })).name;
    } catch (error) {
      rows.push(`| ${wanted} | not available here: ${(error as Error).message.split('\n')[0]} | | |`);
      continue;
    }
    for (const strategy of values.strategies.split(',')) {
      // The cpu backend is ~50x slower: fewer samples keep the run short.
      const perTask = wanted === 'cpu' || unpatched ? Math.min(samples, 1024) : samples;
      const pipeline: PipelineConfig = {
        name: 'bench-pipeline-throughput',
        description: '',
        seed: 1,
        scenario: 'domain-incremental',
        source: { type: 'permuted-mnist', tasks: 2, samplesPerTask: perTask },
        model: { hiddenLayers: [400, 400], outputUnits: 0 },
        strategy: { name: strategy, params: {} },
        training: { batchSize: 128, optimizer, learningRate: 0.001, stepsPerBatch: 1, batchTimeoutMs: 1000 },
        evaluation: { probeSize: 300, holdoutEvery: 10, endedTaskLabelled: 'evaluate' },
      };
      const cpuStart = process.cpuUsage();
      const report = await runPipeline({ pipeline, backend, metrics: new LifelongMetrics({ defaultMetrics: false }) });
      const cpu = process.cpuUsage(cpuStart);
      // Samples per second of this process's CPU time (all threads): what the pipeline would do on
      // cores of its own, when other processes share them and stretch the wall clock.
      const perCpuSecond = report.samplesTrained / ((cpu.user + cpu.system) / 1e6);
      const stepMs = (1000 * report.trainingSeconds) / (report.samplesTrained / 128);
      rows.push(
        `| ${unpatched ? 'wasm (matmul fix off)' : backend} | ${strategy} | ${report.samplesPerSecond.toFixed(0)} | ${perCpuSecond.toFixed(0)} | ` +
          `${stepMs.toFixed(1)} | ${report.samplesTrained} | ${os.loadavg()[0]?.toFixed(1) ?? '?'} |`,
      );
      process.stderr.write(`${rows[rows.length - 1]}\n`);
    }
  }
  process.stdout.write(
    [
      '| backend | strategy | samples/s through the pipeline | samples per CPU-second | ms per training step (incl. Fisher for ewc) | samples | load average (1 min) after |',
      '|---|---|---|---|---|---|---|',
      ...rows,
    ].join('\n') + '\n',
  );
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack}\n`);
  process.exitCode = 1;
});
