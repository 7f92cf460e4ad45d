/**
 * tfjs's Adam against FusedAdam (src/models/fused-adam.ts) in the project's training step
 * (gradientStep, loss read back) on the benchmark MLP 784-400-400-10, batch 128: kernels per step
 * (tf.profile) and wall ms per step over interleaved rounds, and whether both trained to the same
 * bytes. One backend per process:
 *
 *   npm run build && node dist/bench/fused-adam-step.js --backend wasm --rounds 9
 */
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/backend/backend';
import { Rng } from '../src/core/rng';
import { FusedAdam } from '../src/models/fused-adam';
import { gradientStep } from '../src/models/gradient-step';
import { createMlp, logits, median, syntheticBatch } from './mlp-step';

const STEPS_PER_ROUND = 30;

function flag(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? (process.argv[at + 1] ?? fallback) : fallback;
}

async function main(): Promise<void> {
  const backend = flag('backend', 'wasm') as Parameters<typeof selectBackend>[0];
  const rounds = Number(flag('rounds', '9'));
  await selectBackend(backend, () => undefined);
  const { x, y } = syntheticBatch(128, new Rng(1));
  const initial = createMlp(new Rng(2));
  const contenders = [
    { name: 'tf.train.adam', optimizer: tf.train.adam(1e-3, 0.9, 0.999) as tf.Optimizer },
    { name: 'FusedAdam', optimizer: new FusedAdam(1e-3, 0.9, 0.999) as tf.Optimizer },
  ].map((c) => ({ ...c, vars: initial.map((v) => tf.variable(v.clone())), kernels: 0, ms: [] as number[] }));
  const step = (c: (typeof contenders)[number]) =>
    gradientStep({
      optimizer: c.optimizer,
      variables: c.vars,
      read: true,
      objective: () => {
        const loss = tf.losses.softmaxCrossEntropy(y, logits(c.vars, x)) as tf.Scalar;
        return { objective: loss, loss };
      },
    });
  for (const c of contenders) for (let i = 0; i < 5; i++) step(c);
  for (const c of contenders) c.kernels = (await tf.profile(() => void step(c))).kernels.length;
  for (let r = 0; r < rounds; r++) {
    for (const c of r % 2 ? [...contenders].reverse() : contenders) {
      const start = process.hrtime.bigint();
      for (let i = 0; i < STEPS_PER_ROUND; i++) step(c);
      c.ms.push(Number(process.hrtime.bigint() - start) / 1e6 / STEPS_PER_ROUND);
    }
  }
  const [a, b] = contenders as [(typeof contenders)[number], (typeof contenders)[number]];
  const identical = a.vars.every((v, i) => Buffer.from(v.dataSync().buffer).equals(Buffer.from((b.vars[i] as tf.Variable).dataSync().buffer)));
  console.log(`backend ${tf.getBackend()}, ${rounds} interleaved rounds of ${STEPS_PER_ROUND} steps, load average ${(await import('node:os')).loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log('| optimizer | kernels per step | ms per step (median, min–max) |\n|---|---:|---:|');
  for (const c of contenders) console.log(`| ${c.name} | ${c.kernels} | ${median(c.ms).toFixed(2)} (${Math.min(...c.ms).toFixed(2)}–${Math.max(...c.ms).toFixed(2)}) |`);
  console.log(`weights after all steps byte-identical: ${identical}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
