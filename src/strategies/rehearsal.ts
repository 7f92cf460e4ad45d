import type * as tf from '@tensorflow/tfjs';
import { Rng } from '../core/rng';
import type { Scenario, TaskInfo } from '../core/types';
import type { TensorSnapshot } from '../core/tensor-snapshot';
import type { Head, MultiHeadMlp } from '../models/mlp';
import type { StrategyDiagnostic } from './strategy';

/**
 * The rehearsal family (exact replay, joint training, generative replay) as a plugin of the one
 * gradient learner (strategies/mlp-strategy.ts), beside the regularizer: the plugin supplies
 * replayed inputs and targets, MlpStrategy learns them together with the current batch.
 */

/** What a rehearsal sees of the training state: passed in, never shared and mutated. */
export interface RehearsalContext {
  readonly model: MultiHeadMlp;
  /** The head the current task trains. */
  readonly head: Head;
  readonly task: TaskInfo;
  /** Tasks begun so far, each once, the current one last. */
  readonly tasks: readonly TaskInfo[];
  readonly scenario: Scenario;
}

/** The real batch after its gradient steps. */
export interface RehearsalBatchContext extends RehearsalContext {
  /** n x inputSize; belongs to the caller: copy what you keep. */
  readonly x: tf.Tensor2D;
  /** Each sample's unit in the current head; belongs to the caller. */
  readonly units: tf.Tensor1D;
  /** Each sample's label, in the order of x's rows. */
  readonly labels: readonly string[];
  /** Each sample's id where the source gave one, in the order of x's rows. */
  readonly ids?: readonly (string | undefined)[];
}

/** Replayed inputs for one head, with the target distribution over that head's active units. */
export interface ReplayGroup {
  /** Head key: the task name in task-incremental learning, 'shared' (SHARED_HEAD) otherwise. */
  readonly head: string;
  /** n x inputSize. */
  readonly x: tf.Tensor2D;
  /**
   * n x head.labels.size: one-hot or soft targets, padded with zeros by the provider to the
   * head's current active units.
   */
  readonly targets: tf.Tensor2D;
  /**
   * Distillation temperature T: the group's loss is T^2 * CE(targets, softmax(logits / T)), the
   * targets used as given (a provider distilling computes softmax(oldLogits / T) itself). Default 1.
   */
  readonly temperature?: number;
}

export interface ReplayBatch {
  readonly groups: readonly ReplayGroup[];
  /**
   * Weight of the current batch's loss; the replayed samples' mean loss gets 1 - currentWeight
   * (DGR: 1/t). Absent: every sample weighs the same, the loss is the mean over current and
   * replayed samples together (exact replay, joint).
   */
  readonly currentWeight?: number;
}

/**
 * A rehearsal plugin. MlpStrategy calls replay() before every gradient step, afterBatch() after a
 * batch's steps, beginTask()/endTask() at task boundaries (after the model has its head for the
 * task), exports its state under the tensor prefix `rehearsal.`, and disposes it.
 */
export interface Rehearsal {
  /**
   * Called before every gradient step of a training batch (outside tidy; may not be async):
   * replayed samples to learn together with the batch, or undefined. MlpStrategy disposes the
   * returned tensors after the step. Randomness must come from seeded state that is exported
   * (see seededRng), so that a checkpoint resumes the same draws.
   */
  replay(context: RehearsalContext, batchSize: number): ReplayBatch | undefined;
  /** After the batch's gradient steps. May be async (a generator may train here). */
  afterBatch?(context: RehearsalBatchContext): void | Promise<void>;
  beginTask?(context: RehearsalContext): void | Promise<void>;
  endTask?(context: RehearsalContext): void | Promise<void>;
  /**
   * Offline passes when a task ends, before endTask (joint, the offline upper bound, trains on
   * everything it stored): the number of extra gradient steps, each on replay(context, batchSize)
   * alone. `batchSize` is the size of the task's last batch.
   */
  consolidationSteps?(context: RehearsalContext, batchSize: number): number;
  /** Numbers for dashboards (buffer fill, generator loss...); cheap, no tensor downloads. */
  diagnostics?(): readonly StrategyDiagnostic[];
  exportState(): RehearsalState;
  importState(state: { readonly meta: Record<string, unknown>; readonly tensors: Readonly<Record<string, TensorSnapshot>> }): void | Promise<void>;
  dispose(): void;
}

export interface RehearsalState {
  meta: Record<string, unknown>;
  tensors: Record<string, TensorSnapshot>;
}

/**
 * Draw number `counter` of a seeded stream. Rng keeps its state private, so a rehearsal that must
 * resume its random draws from a checkpoint exports (seed, counter) and takes a fresh generator
 * per draw (per batch, per step) from this function.
 */
export function seededRng(seed: number, counter: number): Rng {
  return new Rng((Math.imul(seed | 0, 0x2c1b3c6d) + counter) | 0);
}
