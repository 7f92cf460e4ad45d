import { serves, type HeadData, type LayerData, type NetworkData } from './den-network-data';

/**
 * The subnetwork a new task retrains (DEN's selective retraining): the last hidden layer's units
 * with a non-zero weight in the (zero-initialised, L1-trained) head, then, layer by layer downwards,
 * every unit with a live non-zero connection into a selected unit. Only units serving `stage`
 * count. Returns a selection flag per unit per layer.
 */
export function selectSubnetwork(data: NetworkData, head: HeadData, knownLabels: number, stage: number): boolean[][] {
  const L = data.layers.length;
  const selected: boolean[][] = data.layers.map((l) => l.added.map(() => false));
  const last = data.layers[L - 1] as LayerData;
  const top = selected[L - 1] as boolean[];
  for (let j = 0; j < last.added.length; j++) {
    if (!serves(last, j, stage)) continue;
    for (let c = 0; c < knownLabels; c++) {
      if (head.kernel.get(j, c) !== 0) {
        top[j] = true;
        break;
      }
    }
  }
  for (let l = L - 1; l >= 1; l--) {
    const layer = data.layers[l] as LayerData;
    const below = data.layers[l - 1] as LayerData;
    const above = selected[l] as boolean[];
    const out = selected[l - 1] as boolean[];
    for (let i = 0; i < below.added.length; i++) {
      if (!serves(below, i, stage)) continue;
      for (let j = 0; j < above.length; j++) {
        if (above[j] && layer.mask.get(i, j) === 1 && layer.kernel.get(i, j) !== 0) {
          out[i] = true;
          break;
        }
      }
    }
  }
  return selected;
}
