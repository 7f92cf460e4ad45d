/** DEN's sparsity: dropping small weights and the connections no stage can use. */
import { coServe, serves, type LayerData, type NetworkData } from './den-network-data';

/** Drops (zeroes and masks) hidden weights with |w| below `threshold`; returns how many per layer. */
export function dropSmallWeights(data: NetworkData, threshold: number): number[] {
  return data.layers.map((l) => {
    let dropped = 0;
    for (let i = 0; i < l.kernel.data.length; i++) {
      if (l.mask.data[i] === 1 && Math.abs(l.kernel.data[i] as number) < threshold) {
        l.kernel.data[i] = 0;
        l.mask.data[i] = 0;
        dropped++;
      }
    }
    return dropped;
  });
}

/**
 * Zeroes and masks every connection between units that never serve a stage together, and the rows
 * of a task head for units that do not serve its stage: weights no computation can use.
 */
export function clearUnusedConnections(data: NetworkData, headStages: ReadonlyMap<string, number | undefined>): void {
  for (let l = 1; l < data.layers.length; l++) {
    const below = data.layers[l - 1] as LayerData;
    const layer = data.layers[l] as LayerData;
    for (let i = 0; i < layer.kernel.rows; i++) {
      for (let j = 0; j < layer.kernel.cols; j++) {
        if (!coServe(below, i, layer, j)) {
          layer.kernel.set(i, j, 0);
          layer.mask.set(i, j, 0);
        }
      }
    }
  }
  const last = data.layers[data.layers.length - 1] as LayerData;
  for (const [key, head] of data.heads) {
    const stage = headStages.get(key);
    if (stage === undefined) continue;
    for (let j = 0; j < head.kernel.rows; j++) {
      if (serves(last, j, stage)) continue;
      for (let c = 0; c < head.kernel.cols; c++) head.kernel.set(j, c, 0);
    }
  }
}
