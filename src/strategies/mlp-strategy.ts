import * as tf from '@tensorflow/tfjs';
import { StrategyError, ValidationError } from '../core/errors';
import type { Prediction, TaskInfo } from '../core/types';
import { assignSnapshot, fromSnapshot, MultiHeadMlp, snapshot, type Head } from '../models/mlp';
import type { Regularizer } from './regularizer';
import type { LabelledBatch, Strategy, StrategyOptions, StrategyState, TensorSnapshot, TrainResult } from './strategy';

/** The answer for inputs the model knows no class for yet. */
function unanswered(xs: readonly unknown[]): Prediction[] {
  return xs.map(() => ({ label: null, probabilities: {} }));
}

/** Key of the one head shared by every task in the domain- and class-incremental scenarios. */
const SHARED_HEAD = 'shared';
const STATE_FORMAT = 1;

/**
 * A gradient learner over a multi-head MLP with a pluggable regularizer: finetune (none), l2,
 * ewc and online-ewc are this class with different plugins.
 *
 * Heads: task-incremental gets one head per task, added at the task's beginTask; the other
 * scenarios share one head whose units are given to labels in order of first appearance.
 * The optimizer is rebuilt at every task boundary, when the set of trained variables changes.
 */
export class MlpStrategy implements Strategy {
  readonly model: MultiHeadMlp;
  private optimizer: tf.Optimizer | undefined;
  private readonly tasks: TaskInfo[] = [];
  private disposed = false;

  constructor(
    readonly name: string,
    private readonly options: StrategyOptions,
    private readonly regularizer: Regularizer,
  ) {
    if (!Number.isInteger(options.stepsPerBatch) || options.stepsPerBatch < 1) throw new StrategyError(`stepsPerBatch must be a positive integer, got ${options.stepsPerBatch}`);
    this.model = new MultiHeadMlp(
      { inputSize: options.inputSize, hiddenLayers: options.hiddenLayers, outputUnits: options.outputUnits },
      options.seed,
    );
    if (!this.taskHeads) this.model.addHead(SHARED_HEAD);
  }

  private get taskHeads(): boolean {
    return this.options.scenario === 'task-incremental';
  }

  async beginTask(task: TaskInfo): Promise<void> {
    this.assertLive();
    if (!this.tasks.some((t) => t.name === task.name)) this.tasks.push(task);
    if (this.taskHeads && !this.model.hasHead(task.name)) this.model.addHead(task.name);
    this.rebuildOptimizer();
  }

  async trainBatch(task: TaskInfo, batch: LabelledBatch): Promise<TrainResult> {
    return (await this.learn(task, batch, false)).result;
  }

  async predictAndTrain(task: TaskInfo, batch: LabelledBatch): Promise<{ predictions: Prediction[]; result: TrainResult }> {
    const { result, predictions } = await this.learn(task, batch, true);
    return { result, predictions: predictions as Prediction[] };
  }

  /**
   * The gradient steps on one batch. With `predict`, the first step's forward pass (the model
   * before this batch) also gives the batch's test-then-train predictions, over the labels the
   * head knew before the batch: one forward pass fewer than predict() then trainBatch().
   */
  private async learn(task: TaskInfo, batch: LabelledBatch, predict: boolean): Promise<{ result: TrainResult; predictions?: Prediction[] }> {
    this.assertLive();
    if (batch.xs.length !== batch.ys.length) throw new StrategyError(`batch has ${batch.xs.length} inputs but ${batch.ys.length} labels`);
    if (batch.xs.length === 0) return { result: { loss: 0, penalty: 0 }, ...(predict ? { predictions: [] } : {}) };
    const head = this.headForTraining(task);
    const knownBefore = head.labels.size;
    // A label the head has no unit left for is refused alone; the rest of the batch still trains.
    const rejected: { index: number; reason: string }[] = [];
    const kept: number[] = [];
    const units: number[] = [];
    batch.ys.forEach((y, i) => {
      try {
        units.push(head.labels.add(y));
        kept.push(i);
      } catch (error) {
        if (!(error instanceof ValidationError)) throw error;
        rejected.push({ index: i, reason: error.message });
      }
    });
    // Predictions come from the model before this batch. Usually the training step's own forward
    // pass gives them (below); when it cannot (nothing known yet, or refused samples missing from
    // the training batch) they are made here, still before any update.
    let predictions = predict && (knownBefore === 0 || rejected.length > 0) ? this.predictWith([head], batch.xs, knownBefore) : undefined;
    if (kept.length === 0) return { result: { loss: 0, penalty: 0, rejected }, ...(predictions ? { predictions } : {}) };
    const optimizer = this.optimizer ?? this.rebuildOptimizer();
    const x = this.toMatrix(kept.length === batch.xs.length ? batch.xs : kept.map((i) => batch.xs[i] as Float32Array));
    const y = tf.tensor1d(units, 'int32');
    const variables = this.model.trainableVariables(head);
    const context = { model: this.model, head, task };
    let loss = 0;
    let penalty = 0;
    let priorLogits: tf.Tensor2D | undefined;
    try {
      for (let step = 0; step < this.options.stepsPerBatch; step++) {
        const last = step === this.options.stepsPerBatch - 1;
        const parts: tf.Scalar[] = [];
        const cost = optimizer.minimize(
          () => {
            const { logits } = this.model.forward(x, head);
            if (predict && step === 0 && !predictions) priorLogits = tf.keep(tf.slice(logits, [0, 0], [-1, knownBefore]));
            const taskLoss = tf.losses.softmaxCrossEntropy(tf.oneHot(y, logits.shape[1]), logits) as tf.Scalar;
            const extra = this.regularizer.penalty(context);
            // Read the parts only on the last step: a download per step would stall the backend.
            if (last) parts.push(tf.keep(taskLoss.clone()), tf.keep((extra ?? tf.scalar(0)).clone()));
            return extra ? tf.add(taskLoss, extra) : taskLoss;
          },
          false,
          variables,
        );
        cost?.dispose();
        if (last) {
          loss = (parts[0] as tf.Scalar).dataSync()[0] as number;
          penalty = (parts[1] as tf.Scalar).dataSync()[0] as number;
        }
        for (const p of parts) p.dispose();
      }
      this.regularizer.afterBatch?.({ ...context, x, units: y });
    } finally {
      x.dispose();
      y.dispose();
    }
    const result: TrainResult = rejected.length ? { loss, penalty, rejected } : { loss, penalty };
    if (priorLogits) {
      const softmax = tf.softmax(priorLogits);
      const probs = softmax.arraySync() as number[][];
      tf.dispose([softmax, priorLogits]);
      predictions = probs.map((p) => this.toPrediction(head, p, false));
    }
    return { result, ...(predictions ? { predictions } : {}) };
  }

  async predict(task: TaskInfo | undefined, xs: readonly Float32Array[]): Promise<Prediction[]> {
    this.assertLive();
    if (xs.length === 0) return [];
    if (!this.taskHeads) return this.predictWith([this.model.head(SHARED_HEAD)], xs);
    if (task) return this.model.hasHead(task.name) ? this.predictWith([this.model.head(task.name)], xs) : unanswered(xs);
    // Task-agnostic request with one head per task: answer with the head that is most confident.
    const heads = this.model.headKeys().map((k) => this.model.head(k)).filter((h) => h.labels.size > 0);
    return this.predictWith(heads, xs);
  }

  async endTask(task: TaskInfo): Promise<void> {
    this.assertLive();
    const head = this.model.hasHead(this.headKey(task)) ? this.model.head(this.headKey(task)) : undefined;
    if (head) this.regularizer.endTask({ model: this.model, head, task });
  }

  parameterCount(): number {
    return this.model.parameterCount();
  }

  layerWeights(): Map<string, Float32Array> {
    return this.model.layerWeights();
  }

  async exportState(): Promise<StrategyState> {
    this.assertLive();
    const model = this.model.exportState();
    const regularizer = this.regularizer.exportState();
    const tensors: Record<string, TensorSnapshot> = { ...model.tensors, ...regularizer.tensors };
    let optimizerSlots = 0;
    if (this.optimizer) {
      const weights = await this.optimizer.getWeights();
      weights.forEach((w, i) => {
        tensors[`optimizer.${i}`] = snapshot(w.tensor);
      });
      optimizerSlots = weights.length;
      // getWeights returns the live moment variables plus a fresh iteration-count tensor.
      weights[0]?.tensor.dispose();
    }
    return {
      strategy: this.name,
      format: STATE_FORMAT,
      meta: { model: model.meta, regularizer: regularizer.meta, tasks: this.tasks.map((t) => ({ ...t })), optimizerSlots },
      tensors,
    };
  }

  async importState(state: StrategyState): Promise<void> {
    this.assertLive();
    if (state.strategy !== this.name) throw new StrategyError(`state is of strategy "${state.strategy}", not "${this.name}"`);
    if (state.format !== STATE_FORMAT) throw new StrategyError(`state format ${state.format} is not supported (expected ${STATE_FORMAT})`);
    const meta = state.meta as { model: ReturnType<MultiHeadMlp['exportState']>['meta']; regularizer: Record<string, unknown>; tasks: TaskInfo[]; optimizerSlots: number };
    this.model.importState({ meta: meta.model, tensors: state.tensors as Record<string, TensorSnapshot> });
    this.regularizer.importState({ meta: meta.regularizer, tensors: state.tensors as Record<string, TensorSnapshot> });
    this.tasks.splice(0, this.tasks.length, ...meta.tasks);
    this.optimizer?.dispose();
    this.optimizer = undefined;
    if (meta.optimizerSlots > 0) {
      const optimizer = this.rebuildOptimizer();
      const weights = Array.from({ length: meta.optimizerSlots }, (_, i) => {
        const s = state.tensors[`optimizer.${i}`];
        if (!s) throw new StrategyError(`state lacks tensor optimizer.${i}`);
        return { name: `slot-${i}`, tensor: fromSnapshot(s) };
      });
      await optimizer.setWeights(weights);
      for (const w of weights) w.tensor.dispose();
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.optimizer?.dispose();
    this.regularizer.dispose();
    this.model.dispose();
  }

  /** Overwrites one named model variable; used by tests and importers. */
  assignVariable(name: string, value: TensorSnapshot): void {
    const v = this.model.namedVariables().get(name);
    if (!v) throw new StrategyError(`no variable ${name}`);
    assignSnapshot(v, value, name);
  }

  private headKey(task: TaskInfo): string {
    return this.taskHeads ? task.name : SHARED_HEAD;
  }

  private headForTraining(task: TaskInfo): Head {
    const key = this.headKey(task);
    if (!this.model.hasHead(key)) throw new StrategyError(`trainBatch for task "${task.name}" before its beginTask`);
    return this.model.head(key);
  }

  private rebuildOptimizer(): tf.Optimizer {
    this.optimizer?.dispose();
    const { optimizer, learningRate } = this.options;
    this.optimizer = optimizer === 'sgd' ? tf.train.sgd(learningRate) : tf.train.adam(learningRate, 0.9, 0.999);
    return this.optimizer;
  }

  private toMatrix(xs: readonly Float32Array[]): tf.Tensor2D {
    const n = this.options.inputSize;
    const flat = new Float32Array(xs.length * n);
    xs.forEach((x, i) => {
      if (x.length !== n) throw new StrategyError(`input ${i} has ${x.length} features, expected ${n}`);
      flat.set(x, i * n);
    });
    return tf.tensor2d(flat, [xs.length, n]);
  }

  /**
   * Softmax over each head's labels (the first `known` of a single head, when given); with several
   * heads, per sample the most confident head answers and names its task.
   */
  private predictWith(heads: readonly Head[], xs: readonly Float32Array[], known?: number): Prediction[] {
    const usable = heads.filter((h) => h.labels.size > 0);
    if (usable.length === 0 || known === 0) return unanswered(xs);
    const x = this.toMatrix(xs);
    let perHead: number[][][];
    try {
      perHead = usable.map((head) => {
        const probs = tf.tidy(() => {
          const { logits } = this.model.forward(x, head);
          return tf.softmax(known === undefined ? logits : tf.slice(logits, [0, 0], [-1, known]));
        });
        // Read outside tidy: tidy would walk every number of a returned array.
        const rows = probs.arraySync() as number[][];
        probs.dispose();
        return rows;
      });
    } finally {
      x.dispose();
    }
    const several = usable.length > 1;
    return xs.map((_, i) => {
      let best: Prediction | undefined;
      let bestConfidence = -1;
      usable.forEach((head, h) => {
        const p = (perHead[h] as number[][])[i] as number[];
        const confidence = Math.max(...p);
        if (confidence > bestConfidence) {
          bestConfidence = confidence;
          best = this.toPrediction(head, p, several);
        }
      });
      return best as Prediction;
    });
  }

  /** A head's probabilities as a prediction: the most probable label and every label's probability. */
  private toPrediction(head: Head, p: readonly number[], nameTask: boolean): Prediction {
    let top = 0;
    for (let k = 1; k < p.length; k++) if ((p[k] as number) > (p[top] as number)) top = k;
    const probabilities: Record<string, number> = {};
    p.forEach((v, k) => (probabilities[head.labels.labelOf(k)] = v));
    return { label: head.labels.labelOf(top), probabilities, ...(nameTask ? { inferredTask: head.key } : {}) };
  }

  private assertLive(): void {
    if (this.disposed) throw new StrategyError(`strategy "${this.name}" has been disposed`);
  }
}
