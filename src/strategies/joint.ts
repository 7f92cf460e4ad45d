import { NoRegularizer } from './finetune';
import { MlpStrategy } from './mlp-strategy';
import { readParams } from './params';
import { ExactReplay } from './replay';
import type { Strategy, StrategyOptions } from './strategy';

/**
 * `joint`: the offline upper bound. Every sample of the tasks so far is kept (raw, in memory and
 * in checkpoints), and each gradient step learns the current batch plus an equally sized batch
 * drawn uniformly from everything stored, so training is close to i.i.d. over all data seen.
 * Memory grows with the stream without bound (MNIST: about 3 KB per sample): it is meant for
 * embedded benchmark sources only, never for a live stream.
 */
export function createJoint(options: StrategyOptions): Strategy {
  readParams('joint', options.params, {});
  return new MlpStrategy('joint', options, new NoRegularizer(), new ExactReplay(Infinity, false, undefined, options.inputSize, options.seed + 2));
}
