import * as tf from '@tensorflow/tfjs';
import { StrategyError } from '../core/errors';
import type { TensorSnapshot } from '../core/tensor-snapshot';
import { TaskAutoencoder, type AutoencoderState } from '../models/task-autoencoder';
import type { StrategyDiagnostic } from './strategy';

/**
 * The temperature of Expert Gate's softmax over negated reconstruction errors, p_k = exp(-e_k / t) /
 * sum_j exp(-e_j / t): the paper's t = 2.
 */
export const EXPERT_GATE_TEMPERATURE = 2;

export interface ExpertGateSettings {
  readonly inputSize: number;
  /** Code units of each task's autoencoder; capped below inputSize (undercomplete). */
  readonly hiddenUnits: number;
  readonly learningRate: number;
  /** Steps of a task's autoencoder on each of its training batches: the learner's stepsPerBatch. */
  readonly stepsPerBatch: number;
  readonly seed: number;
}

export interface ExpertGateState {
  /** `seed`: the one later autoencoders are built from (absent in states written before it was kept). */
  readonly meta: { readonly tasks: readonly string[]; readonly experts: readonly AutoencoderState['meta'][]; readonly seed?: number };
  readonly tensors: Record<string, TensorSnapshot>;
}

/**
 * Expert Gate's task router (Aljundi, Chakravarty & Tuytelaars, CVPR 2017): one gating
 * autoencoder per task, trained on the inputs of that task's batches as they stream by. A
 * request without a task goes to the task whose autoencoder reconstructs it best; a softmax over
 * the negated errors (EXPERT_GATE_TEMPERATURE) is the router's confidence in that choice. An
 * autoencoder exists from its task's first training batch (task-inference.ts decides what
 * happens when a head has none).
 */
export class ExpertGate {
  private readonly experts = new Map<string, TaskAutoencoder>();
  private disposed = false;
  /**
   * Seeds the autoencoders of tasks still to come. Part of the state: a copy restored from a
   * checkpoint (built with any seed) must build the same autoencoders for later tasks as the original.
   */
  private seed: number;

  constructor(private readonly settings: ExpertGateSettings) {
    if (!(settings.hiddenUnits >= 1)) throw new StrategyError(`the expert gate needs at least one code unit, got ${settings.hiddenUnits}`);
    this.seed = settings.seed;
  }

  /** Code units per autoencoder: the setting, kept below the input size so the code must compress. */
  get hiddenUnits(): number {
    return Math.max(1, Math.min(this.settings.hiddenUnits, Math.floor(this.settings.inputSize / 2)));
  }

  /** Tasks that have an autoencoder, in order of first training. */
  tasks(): string[] {
    return [...this.experts.keys()];
  }

  knows(task: string): boolean {
    return this.experts.has(task);
  }

  /** `stepsPerBatch` steps of `task`'s autoencoder on a batch of its inputs (the autoencoder is built at the task's first batch). */
  train(task: string, x: tf.Tensor2D): void {
    this.assertLive();
    const expert = this.expertOf(task);
    for (let step = 0; step < this.settings.stepsPerBatch && expert.train(x); step++);
  }

  /** Reconstruction errors, batch x tasks, in the order of `tasks` (each known). Call inside tf.tidy. */
  errors(x: tf.Tensor2D, tasks: readonly string[]): tf.Tensor2D {
    const columns = tasks.map((task) => {
      const expert = this.experts.get(task);
      if (!expert) throw new StrategyError(`the expert gate has no autoencoder for task "${task}"`);
      return expert.errors(x);
    });
    return tf.stack(columns, 1) as tf.Tensor2D;
  }

  /** Trainable parameters of every autoencoder. */
  parameterCount(): number {
    let n = 0;
    for (const expert of this.experts.values()) n += expert.parameterCount();
    return n;
  }

  /** Its size for dashboards: the strategy's parameterCount counts the classifier only. */
  diagnostics(): StrategyDiagnostic[] {
    return [...this.experts].map(([task, expert]) => ({
      name: 'task_router_parameters',
      help: "Parameters of each task's gating autoencoder (Expert Gate task router), beside the classifier's lifelong_parameters.",
      labels: { task },
      value: expert.parameterCount(),
    }));
  }

  async exportState(prefix: string): Promise<ExpertGateState> {
    this.assertLive();
    const tensors: Record<string, TensorSnapshot> = {};
    const experts: AutoencoderState['meta'][] = [];
    for (const [k, expert] of [...this.experts.values()].entries()) {
      const state = await expert.exportState(`${prefix}.${k}`);
      Object.assign(tensors, state.tensors);
      experts.push(state.meta);
    }
    return { meta: { tasks: this.tasks(), experts, seed: this.seed }, tensors };
  }

  async importState(prefix: string, meta: ExpertGateState['meta'], tensors: Readonly<Record<string, TensorSnapshot>>): Promise<void> {
    this.assertLive();
    this.clear();
    if (meta.seed !== undefined) this.seed = meta.seed;
    for (const [k, task] of meta.tasks.entries()) {
      const expertMeta = meta.experts[k];
      if (!expertMeta) throw new StrategyError(`expert gate state lists task "${task}" without its autoencoder`);
      await this.expertOf(task).importState(`${prefix}.${k}`, { meta: expertMeta, tensors: tensors as Record<string, TensorSnapshot> });
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.clear();
  }

  private expertOf(task: string): TaskAutoencoder {
    let expert = this.experts.get(task);
    if (!expert) {
      // Seeded by position, so that a restored copy builds the same autoencoders for later tasks.
      const seed = (this.seed + Math.imul(this.experts.size + 1, 0x9e3779b1)) | 0;
      expert = new TaskAutoencoder({ inputSize: this.settings.inputSize, hiddenUnits: this.hiddenUnits }, this.settings.learningRate, seed);
      this.experts.set(task, expert);
    }
    return expert;
  }

  private clear(): void {
    for (const expert of this.experts.values()) expert.dispose();
    this.experts.clear();
  }

  private assertLive(): void {
    if (this.disposed) throw new StrategyError('the expert gate has been disposed');
  }
}

/** Expert Gate's confidence in each task of one input: softmax(-errors / EXPERT_GATE_TEMPERATURE). */
export function gateConfidences(errors: readonly number[]): number[] {
  const scaled = errors.map((e) => (Number.isFinite(e) ? -e / EXPERT_GATE_TEMPERATURE : -Infinity));
  const top = Math.max(...scaled);
  if (!Number.isFinite(top)) return errors.map(() => 1 / errors.length);
  const exp = scaled.map((s) => Math.exp(s - top));
  const sum = exp.reduce((a, b) => a + b, 0);
  return exp.map((e) => e / sum);
}
