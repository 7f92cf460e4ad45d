import { concat, serves, type LayerData, type LayerSnapshot, type NetworkData } from './den-network-data';

/**
 * Split/duplication at the end of `stage`. A unit that existed when the stage began and serves it
 * has drifted by ||(W[:, j], b_j) - (W_prev[:, j], b_prev_j)||_2 (over the incoming connections it
 * had then, bias included). Above `sigma` (the `maxSplits` most drifted per layer), it is
 * duplicated: the copy takes the current weights and serves `stage` onwards, the original gets
 * its previous weights back and is retired at `stage`, so earlier stages compute with the old unit
 * and `stage` computes exactly what it learned. Outgoing weights are copied to the copy's row, in
 * the next layer and in the heads that serve `stage` (the training head, a shared head).
 * Returns the split units' indexes (of the originals) per layer.
 */
export function splitDrifted(data: NetworkData, previous: readonly LayerSnapshot[], stage: number, sigma: number, maxSplits: number, headsServingStage: ReadonlySet<string>): number[][] {
  const L = data.layers.length;
  const split: number[][] = [];
  for (let l = 0; l < L; l++) {
    const layer = data.layers[l] as LayerData;
    const prev = previous[l] as LayerSnapshot;
    const drifts: { j: number; d: number }[] = [];
    for (let j = 0; j < prev.kernel.cols; j++) {
      if (!serves(layer, j, stage)) continue;
      let sq = ((layer.bias[j] as number) - (prev.bias[j] as number)) ** 2;
      for (let i = 0; i < prev.kernel.rows; i++) sq += (layer.kernel.get(i, j) - prev.kernel.get(i, j)) ** 2;
      const d = Math.sqrt(sq);
      if (d > sigma) drifts.push({ j, d });
    }
    // The code caps splits at ex_k per layer; it keeps the most drifted, which harm old tasks most.
    const chosen = drifts
      .sort((a, b) => b.d - a.d || a.j - b.j)
      .slice(0, maxSplits)
      .map((e) => e.j)
      .sort((a, b) => a - b);
    split.push(chosen);
    if (chosen.length === 0) continue;
    const kernel = layer.kernel;
    const mask = layer.mask;
    layer.kernel = kernel.withColumns(chosen.length, (i, c) => kernel.get(i, chosen[c] as number));
    layer.mask = mask.withColumns(chosen.length, (i, c) => mask.get(i, chosen[c] as number));
    layer.bias = concat(layer.bias, Float32Array.from(chosen, (j) => layer.bias[j] as number));
    for (const j of chosen) {
      layer.added.push(stage);
      layer.retired.push(Infinity);
      for (let i = 0; i < layer.kernel.rows; i++) {
        if (i < prev.kernel.rows) {
          layer.kernel.set(i, j, prev.kernel.get(i, j));
        } else {
          layer.kernel.set(i, j, 0);
          layer.mask.set(i, j, 0);
        }
      }
      layer.bias[j] = prev.bias[j] as number;
      layer.retired[j] = stage;
    }
    if (l < L - 1) {
      const next = data.layers[l + 1] as LayerData;
      const nk = next.kernel;
      const nm = next.mask;
      next.kernel = nk.withRows(chosen.length, (r, j) => nk.get(chosen[r] as number, j));
      next.mask = nm.withRows(chosen.length, (r, j) => nm.get(chosen[r] as number, j));
    } else {
      for (const [key, head] of data.heads) {
        const hk = head.kernel;
        head.kernel = hk.withRows(chosen.length, (r, c) => (headsServingStage.has(key) ? hk.get(chosen[r] as number, c) : 0));
      }
    }
  }
  return split;
}
