import { InvariantError } from '../core/errors';

/** Weights of each layer by layer name, flattened row-major (Strategy.layerWeights()). */
export type LayerWeights = ReadonlyMap<string, Float32Array>;

/** How far one layer has moved since the end of one earlier task. */
export interface LayerDrift {
  readonly layer: string;
  /** Index of the task at whose end the snapshot was taken. */
  readonly sinceTask: number;
  /** ||W_now - W_task||_2; null when the layer's size changed since the snapshot. */
  readonly l2: number | null;
  /** l2 / ||W_task||_2; null when l2 is null or the snapshot's norm is 0. */
  readonly relative: number | null;
}

/** Result of DriftTracker.drift: one entry per (current layer, snapshot holding that layer). */
export type DriftResult = readonly LayerDrift[];

interface Snapshot {
  readonly weights: Map<string, Float32Array>;
  /** ||W_task|| per layer, computed once. */
  readonly norms: Map<string, number>;
}

/**
 * Semantic drift: how far each layer's weights moved from where they were at the end of each
 * earlier task. Large drift of shared layers after a task is the mechanism of forgetting; a
 * method like EWC should show less of it on the layers its penalty protects.
 *
 * Layers whose size changed since a snapshot (a head or a layer that grew) are reported with
 * l2 = null rather than compared on a common prefix: weights are flattened row-major
 * [inputs, outputs], so when a layer gains output units the old units' weights are no longer a
 * prefix of the flat array and a prefix comparison would measure unrelated weights.
 *
 * Memory: one copy of every layer per snapshotted task (about 2 MB per task for a 784-400-400
 * MLP).
 */
export class DriftTracker {
  private readonly snapshots = new Map<number, Snapshot>();

  /** Copies the weights at the end of task `taskIndex` (replacing an earlier snapshot of it). */
  snapshot(taskIndex: number, weights: LayerWeights): void {
    if (!Number.isInteger(taskIndex) || taskIndex < 0) {
      throw new InvariantError(`DriftTracker: task index must be a non-negative integer, got ${taskIndex}`);
    }
    const copies = new Map<string, Float32Array>();
    const norms = new Map<string, number>();
    for (const [layer, w] of weights) {
      copies.set(layer, Float32Array.from(w));
      norms.set(layer, l2Norm(w));
    }
    this.snapshots.set(taskIndex, { weights: copies, norms });
  }

  /** Indexes of the snapshotted tasks, ascending. */
  snapshotTasks(): number[] {
    return [...this.snapshots.keys()].sort((a, b) => a - b);
  }

  /**
   * Drift of every current layer from every snapshot that holds a layer of that name, ordered by
   * layer (in the order of `current`) then task. Layers absent from a snapshot (added later, e.g.
   * a new column) are not compared to it; layers absent from `current` are not reported.
   */
  drift(current: LayerWeights): DriftResult {
    const tasks = this.snapshotTasks();
    const result: LayerDrift[] = [];
    for (const [layer, now] of current) {
      for (const task of tasks) {
        const snap = this.snapshots.get(task) as Snapshot;
        const then = snap.weights.get(layer);
        if (then === undefined) continue;
        if (then.length !== now.length) {
          result.push({ layer, sinceTask: task, l2: null, relative: null });
          continue;
        }
        const l2 = l2Distance(now, then);
        const norm = snap.norms.get(layer) as number;
        result.push({ layer, sinceTask: task, l2, relative: norm > 0 ? l2 / norm : null });
      }
    }
    return result;
  }
}

/** Accumulated in float64 so that 100k-element layers do not lose precision. */
function l2Distance(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let k = 0; k < a.length; k++) {
    const d = (a[k] as number) - (b[k] as number);
    sum += d * d;
  }
  return Math.sqrt(sum);
}

function l2Norm(a: Float32Array): number {
  let sum = 0;
  for (let k = 0; k < a.length; k++) {
    const v = a[k] as number;
    sum += v * v;
  }
  return Math.sqrt(sum);
}
