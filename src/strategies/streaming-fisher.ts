import * as tf from '@tensorflow/tfjs';
import { Rng } from '../core/rng';
import { batchFisher, type FisherLabels } from './fisher';
import { disposeParameters, exportParameters, growParameters, importParameters, type BatchContext, type GrowthContext, type ParameterTensors } from './regularizer';
import type { TensorSnapshot } from '../core/tensor-snapshot';

/**
 * The diagonal Fisher of a task, accumulated while the task streams by: task data is never kept,
 * so it cannot be revisited at the end of the task as in the papers.
 *
 * After each batch's gradient steps, the batch's exact per-sample Fisher (strategies/fisher.ts)
 * at the current weights is folded into an exponential moving average with decay `decay`, bias
 * corrected like Adam's moments. The EWC penalty wants the Fisher at the end-of-task weights
 * theta*; the moving average weights the latest batches, taken at weights closest to theta*, most,
 * and averages enough samples (about 1 / (1 - decay) batches) to smooth the per-batch noise.
 * decay = 1 gives a plain mean over the whole task.
 *
 * Measuring costs about one more forward and backward pass per batch, so `every` > 1 measures only
 * the first batch of a task and every `every`-th after it (long iterated training, as in the
 * bench, does not need every batch to estimate the end-of-task Fisher).
 */
/** Batches measured and batches offered in the current task (checkpoint meta). */
export interface StreamingFisherCounters {
  readonly batches: number;
  readonly offered: number;
}

/** Reads the counters from a strategy's meta; checkpoints from before `offered` was kept measured every batch. */
export function readFisherCounters(meta: Readonly<Record<string, unknown>>): StreamingFisherCounters {
  const batches = Number(meta.runningBatches ?? 0);
  return { batches, offered: Number(meta.runningOffered ?? batches) };
}

export class StreamingFisher {
  private sum: ParameterTensors | undefined;
  private batches = 0;
  /** Batches offered since the task began, measured or not. */
  private offered = 0;
  private readonly rng: Rng;

  constructor(
    private readonly decay: number,
    private readonly labels: FisherLabels,
    seed: number,
    private readonly every = 1,
  ) {
    this.rng = new Rng(seed);
  }

  observe({ model, head, x, units }: BatchContext): void {
    this.offered += 1;
    if ((this.offered - 1) % this.every !== 0) return;
    const batch = batchFisher(model, head, x, units, this.labels, this.rng);
    this.batches += 1;
    const previous = this.sum;
    const weight = this.decay === 1 ? 1 / this.batches : 1 - this.decay;
    const next: ParameterTensors = {};
    tf.tidy(() => {
      for (const [name, f] of Object.entries(batch)) {
        const old = previous?.[name];
        // EMA: F <- F + w (F_batch - F); w = 1 - decay, or 1/n for the plain mean.
        next[name] = tf.keep(old ? tf.add(old, tf.mul(weight, tf.sub(f, old))) : tf.mul(this.decay === 1 ? 1 : weight, f));
      }
      // Parameters absent from this batch (another head) keep their value.
      for (const [name, old] of Object.entries(previous ?? {})) if (!(name in next)) next[name] = tf.keep(old.clone());
    });
    disposeParameters(batch);
    disposeParameters(previous);
    this.sum = next;
  }

  /** A head grew: its new units have measured no Fisher yet. */
  grow(context: GrowthContext): void {
    growParameters(this.sum, context, 'zeros');
  }

  /** The bias-corrected estimate, owned by the caller; undefined before any batch. */
  estimate(): ParameterTensors | undefined {
    if (!this.sum) return undefined;
    const correction = this.decay === 1 ? 1 : 1 - Math.pow(this.decay, this.batches);
    const out: ParameterTensors = {};
    for (const [name, f] of Object.entries(this.sum)) out[name] = tf.tidy(() => tf.div(f, correction));
    return out;
  }

  /** Writes the estimate so far under `prefix` (a checkpoint taken mid-task); returns the counters to keep in meta. */
  exportTo(prefix: string, tensors: Record<string, TensorSnapshot>): StreamingFisherCounters {
    const running = this.estimate();
    exportParameters(prefix, running, tensors);
    disposeParameters(running);
    return { batches: this.batches, offered: this.offered };
  }

  /** The inverse of exportTo. */
  importFrom(prefix: string, tensors: Record<string, TensorSnapshot>, counters: StreamingFisherCounters): void {
    const running = importParameters(prefix, tensors);
    if (running) this.restore(running, counters.batches);
    else this.reset();
    this.offered = counters.offered;
  }

  /** Resumes from an exported estimate() taken after `batches` batches (takes ownership). */
  private restore(estimate: ParameterTensors, batches: number): void {
    this.reset();
    const correction = this.decay === 1 ? 1 : 1 - Math.pow(this.decay, batches);
    this.sum = {};
    for (const [name, f] of Object.entries(estimate)) {
      this.sum[name] = tf.tidy(() => tf.mul(f, correction));
      f.dispose();
    }
    this.batches = batches;
  }

  reset(): void {
    disposeParameters(this.sum);
    this.sum = undefined;
    this.batches = 0;
    this.offered = 0;
  }
}
