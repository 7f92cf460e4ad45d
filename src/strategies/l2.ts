import { MlpStrategy } from './mlp-strategy';
import { readParams } from './params';
import {
  copyParameters,
  disposeParameters,
  exportParameters,
  growParameters,
  importParameters,
  quadraticPenalty,
  type GrowthContext,
  type ParameterTensors,
  type Regularizer,
  type RegularizerState,
  type TrainingContext,
} from './regularizer';
import type { Strategy, StrategyOptions } from './strategy';
import { defineStrategy, splitMnistClassIl } from './descriptor';
import { TASK_INFERENCE_PARAMS } from './task-inference';

export const L2_PARAMS = {
  lambda: { type: 'number', default: 0.01, min: 0, doc: "Strength of the pull toward the previous task's weights." },
  ...TASK_INFERENCE_PARAMS,
} as const;

/**
 * Plain L2: (lambda / 2) ||theta - theta*||^2 toward the weights at the end of the previous task,
 * every weight equally important (the baseline EWC is compared with in Kirkpatrick et al. 2017).
 */
class L2Regularizer implements Regularizer {
  private anchor: ParameterTensors | undefined;

  constructor(private readonly lambda: number) {}

  penalty({ model }: TrainingContext) {
    return this.anchor && this.lambda > 0 ? quadraticPenalty(model, this.anchor, undefined, this.lambda) : undefined;
  }

  endTask({ model }: TrainingContext): void {
    disposeParameters(this.anchor);
    this.anchor = copyParameters(model);
  }

  /** Every weight weighs the same in L2: a new unit is pulled toward its initial value, like an unused unit of a pre-sized head. */
  growHead(context: GrowthContext): void {
    growParameters(this.anchor, context, 'current');
  }

  exportState(): RegularizerState {
    const tensors = {};
    exportParameters('l2.anchor', this.anchor, tensors);
    return { meta: { lambda: this.lambda }, tensors };
  }

  importState(state: RegularizerState): void {
    disposeParameters(this.anchor);
    this.anchor = importParameters('l2.anchor', state.tensors);
  }

  dispose(): void {
    disposeParameters(this.anchor);
    this.anchor = undefined;
  }
}

export function createL2(options: StrategyOptions): Strategy {
  const { lambda } = readParams('l2', options.params, L2_PARAMS);
  return new MlpStrategy('l2', options, new L2Regularizer(lambda));
}

export const L2_STRATEGY = defineStrategy({
  name: 'l2',
  family: 'regularization',
  summary: '(λ/2)‖θ − θ*‖² toward the weights at the end of the previous task.',
  create: createL2,
  params: L2_PARAMS,
  capabilities: { keepsLittleIn: { 'class-incremental': splitMnistClassIl('19.8%') } },
});
