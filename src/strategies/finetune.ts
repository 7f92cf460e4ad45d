import { MlpStrategy } from './mlp-strategy';
import { readParams } from './params';
import type { Regularizer, RegularizerState } from './regularizer';
import type { Strategy, StrategyOptions } from './strategy';
import { defineStrategy, splitMnistClassIl } from './descriptor';

/** No penalty: plain sequential fine-tuning, the lower bound that shows catastrophic forgetting. */
export class NoRegularizer implements Regularizer {
  penalty(): undefined {
    return undefined;
  }
  endTask(): void {}
  exportState(): RegularizerState {
    return { meta: {}, tensors: {} };
  }
  importState(): void {}
  dispose(): void {}
}

export function createFinetune(options: StrategyOptions): Strategy {
  readParams('finetune', options.params, {});
  return new MlpStrategy('finetune', options, new NoRegularizer());
}

export const FINETUNE_STRATEGY = defineStrategy({
  name: 'finetune',
  family: 'baseline',
  summary: 'No protection: plain sequential training, the lower bound.',
  create: createFinetune,
  params: {},
  capabilities: { keepsLittleIn: { 'class-incremental': splitMnistClassIl('19.9%') } },
});
