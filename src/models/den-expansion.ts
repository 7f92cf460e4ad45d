/** DEN's dynamic expansion: units added to every hidden layer, and the ones that stayed unused removed. */
import type { Rng } from '../core/rng';
import { concat, range, serves, uniform, type LayerData, type NetworkData } from './den-network-data';

/**
 * Dynamic expansion: `k` new units in every hidden layer, added at `stage`. Their incoming and
 * outgoing weights are Glorot-uniform (as tf.get_variable's default in the paper's code) where
 * they connect units serving `stage`; the training head's rows for them are too, other task
 * heads get zero rows (they never see the new units). Returns the new units' indexes per layer.
 */
export function expandLayers(data: NetworkData, k: number, stage: number, trainingHead: string, rng: Rng): number[][] {
  const L = data.layers.length;
  const added: number[][] = [];
  for (let l = 0; l < L; l++) {
    const layer = data.layers[l] as LayerData;
    const below = l > 0 ? (data.layers[l - 1] as LayerData) : undefined;
    const fanIn = layer.kernel.rows;
    const n = layer.kernel.cols;
    const rowServes = (i: number) => !below || serves(below, i, stage);
    const limit = Math.sqrt(6 / (fanIn + n + k));
    layer.kernel = layer.kernel.withColumns(k, (i) => (rowServes(i) ? uniform(rng, limit) : 0));
    layer.mask = layer.mask.withColumns(k, (i) => (rowServes(i) ? 1 : 0));
    layer.bias = concat(layer.bias, new Float32Array(k));
    for (let c = 0; c < k; c++) {
      layer.added.push(stage);
      layer.retired.push(Infinity);
    }
    added.push(range(k).map((c) => n + c));
    if (l < L - 1) {
      const next = data.layers[l + 1] as LayerData;
      const nextLimit = Math.sqrt(6 / (next.kernel.rows + k + next.kernel.cols));
      next.kernel = next.kernel.withRows(k, (_, j) => (serves(next, j, stage) ? uniform(rng, nextLimit) : 0));
      next.mask = next.mask.withRows(k, (_, j) => (serves(next, j, stage) ? 1 : 0));
    } else {
      for (const [key, head] of data.heads) {
        const headLimit = Math.sqrt(6 / (head.kernel.rows + k + head.kernel.cols));
        head.kernel = head.kernel.withRows(k, () => (key === trainingHead ? uniform(rng, headLimit) : 0));
      }
    }
  }
  return added;
}

/**
 * Deletes the given units (per layer) with their incoming and outgoing weights. Used for expansion
 * units whose incoming weights group sparsity drove to zero; such a unit outputs a constant
 * relu(bias), which its deletion drops, as the paper's code does.
 */
export function removeUnits(data: NetworkData, units: readonly (readonly number[])[]): void {
  const L = data.layers.length;
  for (let l = 0; l < L; l++) {
    const drop = new Set(units[l] ?? []);
    if (drop.size === 0) continue;
    const layer = data.layers[l] as LayerData;
    layer.kernel = layer.kernel.withoutColumns(drop);
    layer.mask = layer.mask.withoutColumns(drop);
    layer.bias = Float32Array.from([...layer.bias].filter((_, j) => !drop.has(j)));
    layer.added = layer.added.filter((_, j) => !drop.has(j));
    layer.retired = layer.retired.filter((_, j) => !drop.has(j));
    if (l < L - 1) {
      const next = data.layers[l + 1] as LayerData;
      next.kernel = next.kernel.withoutRows(drop);
      next.mask = next.mask.withoutRows(drop);
    } else {
      for (const head of data.heads.values()) head.kernel = head.kernel.withoutRows(drop);
    }
  }
}

/** Units among `candidates` (per layer) whose incoming weights are all zero. */
export function deadUnits(data: NetworkData, candidates: readonly (readonly number[])[]): number[][] {
  return data.layers.map((layer, l) =>
    (candidates[l] ?? []).filter((j) => {
      for (let i = 0; i < layer.kernel.rows; i++) if (layer.kernel.get(i, j) !== 0) return false;
      return true;
    }),
  );
}
