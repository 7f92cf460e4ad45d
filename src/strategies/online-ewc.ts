import * as tf from '@tensorflow/tfjs';
import { MlpStrategy } from './mlp-strategy';
import { readParams } from './params';
import {
  copyParameters,
  disposeParameters,
  exportParameters,
  growParameters,
  importParameters,
  quadraticPenalty,
  type BatchContext,
  type GrowthContext,
  type ParameterTensors,
  type Regularizer,
  type RegularizerState,
  type TrainingContext,
} from './regularizer';
import { readFisherCounters, StreamingFisher } from './streaming-fisher';
import { FISHER_PARAMS } from './ewc';
import type { FisherLabels } from './fisher';
import type { Strategy, StrategyOptions } from './strategy';
import { defineStrategy, splitMnistClassIl } from './descriptor';
import { TASK_INFERENCE_PARAMS } from './task-inference';

export const ONLINE_EWC_PARAMS = {
  lambda: { type: 'number', default: 1000, min: 0, doc: 'Penalty strength lambda of the running Fisher penalty.' },
  gamma: { type: 'number', default: 0.9, min: 0, max: 1, doc: 'Decay of the running Fisher at each task boundary (Schwarz et al. 2018).' },
  ...FISHER_PARAMS,
  ...TASK_INFERENCE_PARAMS,
} as const;

/**
 * Online EWC (Schwarz et al. 2018, as in van de Ven & Tolias 2019): one running Fisher,
 * F <- gamma F + F_task at each task end, and one anchor, the latest end-of-task weights;
 * the penalty is (lambda / 2) sum_i F_i (theta_i - theta*_i)^2, constant in cost however many tasks.
 */
class OnlineEwcRegularizer implements Regularizer {
  private fisherSum: ParameterTensors | undefined;
  private anchor: ParameterTensors | undefined;
  private readonly fisher: StreamingFisher;

  constructor(
    private readonly lambda: number,
    private readonly gamma: number,
    fisherDecay: number,
    fisherEvery: number,
    fisherLabels: FisherLabels,
    seed: number,
  ) {
    this.fisher = new StreamingFisher(fisherDecay, fisherLabels, seed, fisherEvery);
  }

  penalty({ model }: TrainingContext): tf.Scalar | undefined {
    if (!this.anchor || !this.fisherSum || this.lambda === 0) return undefined;
    return quadraticPenalty(model, this.anchor, this.fisherSum, this.lambda);
  }

  afterBatch(context: BatchContext): void {
    this.fisher.observe(context);
  }

  endTask({ model }: TrainingContext): void {
    const fresh = this.fisher.estimate();
    this.fisher.reset();
    if (!fresh) return;
    const previous = this.fisherSum;
    const merged: ParameterTensors = {};
    tf.tidy(() => {
      for (const [name, f] of Object.entries(fresh)) {
        const old = previous?.[name];
        merged[name] = tf.keep(old ? tf.add(tf.mul(this.gamma, old), f) : f.clone());
      }
      for (const [name, old] of Object.entries(previous ?? {})) if (!(name in merged)) merged[name] = tf.keep(tf.mul(this.gamma, old));
    });
    disposeParameters(fresh);
    disposeParameters(previous);
    this.fisherSum = merged;
    disposeParameters(this.anchor);
    this.anchor = copyParameters(model);
  }

  growHead(context: GrowthContext): void {
    growParameters(this.fisherSum, context, 'zeros');
    growParameters(this.anchor, context, 'current');
    this.fisher.grow(context);
  }

  exportState(): RegularizerState {
    const tensors = {};
    exportParameters('online-ewc.fisher', this.fisherSum, tensors);
    exportParameters('online-ewc.anchor', this.anchor, tensors);
    const running = this.fisher.exportTo('online-ewc.running', tensors);
    return { meta: { runningBatches: running.batches, runningOffered: running.offered }, tensors };
  }

  importState(state: RegularizerState): void {
    this.dispose();
    this.fisherSum = importParameters('online-ewc.fisher', state.tensors);
    this.anchor = importParameters('online-ewc.anchor', state.tensors);
    this.fisher.importFrom('online-ewc.running', state.tensors, readFisherCounters(state.meta));
  }

  dispose(): void {
    disposeParameters(this.fisherSum);
    disposeParameters(this.anchor);
    this.fisherSum = undefined;
    this.anchor = undefined;
    this.fisher.reset();
  }
}

export function createOnlineEwc(options: StrategyOptions): Strategy {
  const p = readParams('online-ewc', options.params, ONLINE_EWC_PARAMS);
  return new MlpStrategy('online-ewc', options, new OnlineEwcRegularizer(p.lambda, p.gamma, p.fisherDecay, p.fisherEvery, p.fisherLabels as FisherLabels, options.seed + 1));
}

export const ONLINE_EWC_STRATEGY = defineStrategy({
  name: 'online-ewc',
  family: 'regularization',
  summary: 'Online EWC (Schwarz et al. 2018): one running Fisher F ← γF + F_task and the latest anchor.',
  create: createOnlineEwc,
  params: ONLINE_EWC_PARAMS,
  capabilities: { keepsLittleIn: { 'class-incremental': splitMnistClassIl('19.5%') } },
});
