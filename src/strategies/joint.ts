import { NoRegularizer } from './finetune';
import { MlpStrategy } from './mlp-strategy';
import { readParams } from './params';
import { ExactReplay } from './replay';
import type { RehearsalContext } from './rehearsal';
import type { Strategy, StrategyOptions } from './strategy';
import { defineStrategy } from './descriptor';
import { TASK_INFERENCE_PARAMS } from './task-inference';

const JOINT_PARAMS = {
  /** This is what makes joint the upper bound: old and new data are learned together, several times, not once as they stream by. */
  epochs: { type: 'integer', default: 1, min: 0, doc: 'Offline passes over everything stored, at the end of each task.' },
  ...TASK_INFERENCE_PARAMS,
} as const;

/** Exact replay of everything, plus `epochs` offline passes over all of it when a task ends. */
class JointTraining extends ExactReplay {
  constructor(
    private readonly epochs: number,
    inputSize: number,
    seed: number,
  ) {
    super(Infinity, false, undefined, inputSize, seed);
  }

  consolidationSteps(_context: RehearsalContext, batchSize: number): number {
    return this.epochs * Math.ceil(this.samples.size / Math.max(1, batchSize));
  }
}

/**
 * `joint`: the offline upper bound. Every sample of the tasks so far is kept (raw, in memory and
 * in checkpoints). While a task streams, each gradient step learns the current batch plus an
 * equally sized batch drawn uniformly from everything stored; when the task ends, `epochs` passes
 * over everything stored follow (batches drawn uniformly at random). Memory grows with the stream
 * without bound (MNIST: about 3 KB per sample): it is for embedded benchmark sources only, and
 * the pipeline loader refuses it for Kafka.
 */
export function createJoint(options: StrategyOptions): Strategy {
  const p = readParams('joint', options.params, JOINT_PARAMS);
  return new MlpStrategy('joint', options, new NoRegularizer(), new JointTraining(p.epochs, options.inputSize, options.seed + 2));
}

export const JOINT_STRATEGY = defineStrategy({
  name: 'joint',
  family: 'baseline',
  summary: 'Trains on everything seen so far, with offline passes at each task end: the upper bound.',
  create: createJoint,
  params: JOINT_PARAMS,
  capabilities: { storesRawSamples: true, needsFiniteStream: true },
});
