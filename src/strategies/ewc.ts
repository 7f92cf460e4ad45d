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
import type { FisherLabels } from './fisher';
import type { Strategy, StrategyOptions } from './strategy';
import { defineStrategy, splitMnistClassIl } from './descriptor';
import { TASK_INFERENCE_PARAMS } from './task-inference';

/** Fisher estimation settings shared by ewc and online-ewc. */
export const FISHER_PARAMS = {
  fisherLabels: { type: 'enum', default: 'predicted', values: ['predicted', 'sampled', 'true'], doc: "Labels of the Fisher's log-likelihood gradients: predicted (van de Ven), sampled (true Fisher), true (empirical)." },
  fisherDecay: { type: 'number', default: 0.99, min: 0, max: 1, exclusiveMin: true, doc: 'Moving-average decay per batch of the streamed Fisher; 1 = plain mean over the task.' },
  fisherEvery: { type: 'integer', default: 1, min: 1, doc: 'Measure the Fisher on the first batch of a task and every n-th after it (1 = every batch; each costs about one more forward/backward).' },
} as const;

export const EWC_PARAMS = {
  lambda: { type: 'number', default: 1000, min: 0, doc: 'Penalty strength lambda of Kirkpatrick et al. 2017.' },
  ...FISHER_PARAMS,
  ...TASK_INFERENCE_PARAMS,
} as const;

interface Consolidated {
  readonly task: string;
  readonly fisher: ParameterTensors;
  readonly anchor: ParameterTensors;
}

/**
 * Elastic Weight Consolidation (Kirkpatrick et al. 2017): after each task, its diagonal Fisher F_k
 * and weights theta*_k are stored, and learning later tasks adds one penalty per past task,
 * sum_k (lambda / 2) sum_i F_k,i (theta_i - theta*_k,i)^2.
 */
class EwcRegularizer implements Regularizer {
  private readonly consolidated: Consolidated[] = [];
  private readonly fisher: StreamingFisher;

  constructor(
    private readonly lambda: number,
    fisherDecay: number,
    fisherEvery: number,
    fisherLabels: FisherLabels,
    seed: number,
  ) {
    this.fisher = new StreamingFisher(fisherDecay, fisherLabels, seed, fisherEvery);
  }

  penalty({ model }: TrainingContext): tf.Scalar | undefined {
    if (this.consolidated.length === 0 || this.lambda === 0) return undefined;
    return tf.addN(this.consolidated.map((c) => quadraticPenalty(model, c.anchor, c.fisher, this.lambda))) as tf.Scalar;
  }

  afterBatch(context: BatchContext): void {
    this.fisher.observe(context);
  }

  endTask({ model, task }: TrainingContext): void {
    const fisher = this.fisher.estimate();
    this.fisher.reset();
    if (!fisher) return; // a task with no training batch has nothing to consolidate
    this.consolidated.push({ task: task.name, fisher, anchor: copyParameters(model) });
  }

  growHead(context: GrowthContext): void {
    for (const c of this.consolidated) {
      growParameters(c.fisher, context, 'zeros');
      growParameters(c.anchor, context, 'current');
    }
    this.fisher.grow(context);
  }

  exportState(): RegularizerState {
    const tensors = {};
    this.consolidated.forEach((c, k) => {
      exportParameters(`ewc.${k}.fisher`, c.fisher, tensors);
      exportParameters(`ewc.${k}.anchor`, c.anchor, tensors);
    });
    // The Fisher of the task in progress is part of the state too (a checkpoint mid-task).
    const running = this.fisher.exportTo('ewc.running', tensors);
    return { meta: { tasks: this.consolidated.map((c) => c.task), runningBatches: running.batches, runningOffered: running.offered }, tensors };
  }

  importState(state: RegularizerState): void {
    this.dispose();
    const tasks = (state.meta.tasks as string[] | undefined) ?? [];
    tasks.forEach((task, k) => {
      const fisher = importParameters(`ewc.${k}.fisher`, state.tensors);
      const anchor = importParameters(`ewc.${k}.anchor`, state.tensors);
      if (fisher && anchor) this.consolidated.push({ task, fisher, anchor });
    });
    this.fisher.importFrom('ewc.running', state.tensors, readFisherCounters(state.meta));
  }

  dispose(): void {
    for (const c of this.consolidated.splice(0)) {
      disposeParameters(c.fisher);
      disposeParameters(c.anchor);
    }
    this.fisher.reset();
  }
}

export function createEwc(options: StrategyOptions): Strategy {
  const p = readParams('ewc', options.params, EWC_PARAMS);
  return new MlpStrategy('ewc', options, new EwcRegularizer(p.lambda, p.fisherDecay, p.fisherEvery, p.fisherLabels as FisherLabels, options.seed + 1));
}

export const EWC_STRATEGY = defineStrategy({
  name: 'ewc',
  family: 'regularization',
  summary: 'Elastic Weight Consolidation (Kirkpatrick et al. 2017): one Fisher-weighted penalty per past task.',
  create: createEwc,
  params: EWC_PARAMS,
  capabilities: { keepsLittleIn: { 'class-incremental': splitMnistClassIl('19.7%') } },
});
