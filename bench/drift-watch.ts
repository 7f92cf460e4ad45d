/**
 * Cost of watching drift (issue 15): ConceptDriftWatch.observe on batches of MNIST-sized inputs
 * (784 features) with River's default ADWIN, input PSI and label drift, per sample.
 *
 *   npm run build && node dist/bench/drift-watch.js [--batch 32] [--steps 2000]
 */
import { Rng } from '../src/core/rng';
import type { Prediction, SampleKind } from '../src/core/types';
import { DRIFT_DEFAULTS } from '../src/metrics/concept-drift';
import type { SampleEvent } from '../src/operators/events';
import { ConceptDriftWatch } from '../src/operators/watch-concept-drift';

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at < 0 ? fallback : Number(process.argv[at + 1]);
}

const batch = option('batch', 32);
const steps = option('steps', 2000);
const rng = new Rng(1);
const task = { name: 't', index: 0 };
const samples: SampleEvent[] = Array.from({ length: batch }, (_, i) => ({ kind: 'sample', task, sample: { task: 't', x: Float32Array.from({ length: 784 }, () => rng.next()), y: String(i % 10) } }));
const plan: SampleKind[] = samples.map(() => 'trained');
const predictions: Prediction[] = samples.map(() => ({ label: String(rng.int(10)), probabilities: {} }));
const watch = new ConceptDriftWatch(DRIFT_DEFAULTS);
for (let i = 0; i < 200; i++) watch.observe(samples, plan, predictions);
const t0 = process.hrtime.bigint();
for (let i = 0; i < steps; i++) watch.observe(samples, plan, predictions);
const micros = Number(process.hrtime.bigint() - t0) / 1e3 / (steps * batch);
console.log(`drift watch: ${micros.toFixed(2)} µs per 784-feature sample (batch ${batch}, ${steps} steps, ADWIN + input PSI + label drift)`);
