/**
 * Task-free mode on permuted MNIST streamed on one topic (issue 15): how many tasks the drift
 * detectors cut the stream into, how long after each permutation change the new task began, and
 * the false alarms (splits where the permutation did not change), per detector and seed.
 *
 *   npm run build && node dist/bench/task-free-drift.js [--tasks 5] [--samples 1000] [--seeds 1,2,3]
 *       [--detectors adwin,page-hinkley] [--strategy finetune] [--ph-threshold 20] [--backend wasm]
 *
 * Domain-IL, MLP 784-100-10, Adam 3e-3, batch 16, every 10th sample held out (not predicted
 * before training: the detectors see the other nine).
 */
import * as path from 'node:path';
import { selectBackend } from '../src/backend/backend';
import { loadPipelineConfig } from '../src/config/pipeline-config';
import { silentLogger } from '../src/core/log';
import { runPipeline } from '../src/engine/run-pipeline';
import { DRIFT_DEFAULTS, type ConceptDriftSettings } from '../src/metrics/concept-drift';
import { OneTopicSource } from '../test/helpers/one-topic-source';

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at < 0 ? fallback : (process.argv[at + 1] as string);
}

const REPO = path.resolve(__dirname, '../..');
const tasks = Number(option('tasks', '5'));
const samples = Number(option('samples', '1000'));
const seeds = option('seeds', '1,2,3').split(',').map(Number);
const detectors = option('detectors', 'adwin,page-hinkley').split(',') as ConceptDriftSettings['detector'][];
const strategy = option('strategy', 'finetune');
const phThreshold = Number(option('ph-threshold', '20'));
const backendName = option('backend', 'wasm') as Parameters<typeof selectBackend>[0];

async function main(): Promise<void> {
  const backend = (await selectBackend(backendName, () => undefined)).name;
  const base = loadPipelineConfig(path.join(REPO, 'pipelines/quickstart.json'));
  console.log(`permuted MNIST, ${tasks} permutations x ${samples} samples on one topic, ${strategy}, Page-Hinkley threshold ${phThreshold}, backend ${backend}`);
  console.log('| detector | seed | tasks found | boundary delays (samples after each change) | false splits | missed changes | seconds |');
  console.log('| --- | ---: | ---: | --- | ---: | ---: | ---: |');
  for (const detector of detectors) {
    for (const seed of seeds) {
      const firstSampleOf = new Map<string, number>();
      const t0 = performance.now();
      const source = new OneTopicSource({ dataset: 'permuted-mnist', tasks, samplesPerTask: samples, seed, scenario: 'domain-incremental' }, 'stream');
      const report = await runPipeline({
        pipeline: {
          ...base,
          seed,
          name: 'task-free-drift',
          strategy: { name: strategy, params: strategy === 'ewc' ? { lambda: 1000 } : {} },
          model: { hiddenLayers: [100], outputUnits: 10 },
          training: { ...base.training, batchSize: 16 },
          evaluation: { ...base.evaluation, probeSize: 100 },
          drift: { ...DRIFT_DEFAULTS, detector, pageHinkley: { ...DRIFT_DEFAULTS.pageHinkley, threshold: phThreshold }, referenceSamples: 200, recentSamples: 200, taskFree: true },
        },
        backend,
        source: { source, outputUnits: 10 },
        log: silentLogger,
        onEvent: (event) => {
          if (event.kind !== 'step-outcome') return;
          for (const s of event.samples) if (!firstSampleOf.has(s.task.name)) firstSampleOf.set(s.task.name, Number(s.sample.id));
        },
      });
      // Each begun task after the first is matched to the latest change at or before its first sample.
      const starts = [...firstSampleOf.values()].slice(1);
      const changes = Array.from({ length: tasks - 1 }, (_, k) => (k + 1) * samples);
      const delays: number[] = [];
      let falseSplits = 0;
      const matched = new Set<number>();
      for (const at of starts) {
        const change = [...changes].reverse().find((c) => c <= at);
        if (change === undefined || matched.has(change)) falseSplits += 1;
        else {
          matched.add(change);
          delays.push(at - change);
        }
      }
      const seconds = (performance.now() - t0) / 1000;
      console.log(`| ${detector} | ${seed} | ${report.tasks.length} | ${delays.join(', ') || '-'} | ${falseSplits} | ${changes.length - matched.size} | ${seconds.toFixed(1)} |`);
    }
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
