/** MNIST task streams for strategy checks: the embedded source's samples, taken up front. */
import type { Sample, Scenario } from '../core/types';
import { createEmbeddedSource, type EmbeddedSource } from '../sources/embedded';

/** The first `n` samples of an embedded stream, and the stream (for probes). */
export async function takeSamples(spec: Parameters<typeof createEmbeddedSource>[0], n = Infinity): Promise<{ source: EmbeddedSource; samples: Sample[] }> {
  const source = createEmbeddedSource(spec);
  const it = source.open({ reject: () => undefined, log: () => undefined });
  const samples: Sample[] = [];
  while (samples.length < n) {
    const r = await it.next();
    if (r.done) break;
    samples.push(r.value);
  }
  await it.return?.();
  return { source, samples };
}

/** Split-MNIST's first task (digits 0 and 1) in one scenario. */
export function firstSplitTask(scenario: Scenario, samplesPerTask: number) {
  return takeSamples({ dataset: 'split-mnist', tasks: 1, samplesPerTask, seed: 7, scenario });
}

export function batches<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
