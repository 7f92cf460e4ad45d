import * as tf from '@tensorflow/tfjs';
import { StrategyError } from '../core/errors';
import { TASK_AGNOSTIC, type Label, type Prediction, type TaskInfo, type TaskName } from '../core/types';
import type { TensorSnapshot } from '../core/tensor-snapshot';
import { assignSnapshot, MultiHeadMlp, unitsOf, type Head } from '../models/mlp';
import { createOptimizer, exportOptimizer, growOptimizerSlots, importOptimizer } from '../models/optimizer-state';
import { classificationLoss, gradientStep, type StepHooks } from '../models/gradient-step';
import type { Regularizer, TrainingContext } from './regularizer';
import type { Rehearsal, RehearsalContext, ReplayBatch } from './rehearsal';
import { assignUnits, readMatrices, checkStateHeader, refuseBatch, toMatrix, toPrediction, unanswered, NO_CLASSES_YET, NO_TASK_YET, NOTHING_LEARNED_YET } from './learning-helpers';
import type { ExpertGateState } from './expert-gate';
import { createTaskInference, predictWithoutTask, type TaskInference } from './task-inference';
import type { LabelledBatch, PredictAndTrainOptions, Strategy, StrategyDiagnostic, StrategyOptions, StrategyState, TrainResult } from './strategy';

/** Key of the one head shared by every task in the domain- and class-incremental scenarios. */
export const SHARED_HEAD = 'shared';
const STATE_FORMAT = 1;
/** Prefix of the rehearsal's tensors in the strategy's state. */
const REHEARSAL_PREFIX = 'rehearsal.';
/** Prefix of the task router's tensors in the strategy's state. */
const ROUTER_PREFIX = 'router';

/** A replay group checked against the model, its head resolved. */
interface ResolvedGroup {
  readonly head: Head;
  readonly x: tf.Tensor2D;
  readonly targets: tf.Tensor2D;
  readonly temperature: number;
}

/**
 * A gradient learner over a multi-head MLP with a pluggable regularizer and an optional rehearsal:
 * finetune (none), l2, ewc and online-ewc are this class with different regularizers; replay,
 * joint and dgr add a rehearsal, whose replayed samples are learned together with each batch.
 *
 * Heads: task-incremental gets one head per task, added at the task's beginTask; the other
 * scenarios share one head whose units are given to labels in order of first appearance.
 * A head starts with options.outputUnits units and grows by one unit per new label beyond them,
 * before the batch's first gradient step (growHead). The optimizer is rebuilt at every task
 * boundary, when the set of trained variables changes.
 */
export class MlpStrategy implements Strategy {
  readonly model: MultiHeadMlp;
  private optimizer: tf.Optimizer | undefined;
  private readonly tasks: TaskInfo[] = [];
  /** Size of the last batch learned: the batch size of offline consolidation steps. */
  private lastBatchSize = 0;
  /** With a head per task: how a request without a task picks its head (strategy.params.taskInference). */
  private readonly inference: TaskInference | undefined;
  readonly infersTask: boolean;
  private disposed = false;

  constructor(
    readonly name: string,
    private readonly options: StrategyOptions,
    private readonly regularizer: Regularizer,
    private readonly rehearsal?: Rehearsal,
  ) {
    if (!Number.isInteger(options.stepsPerBatch) || options.stepsPerBatch < 1) throw new StrategyError(`stepsPerBatch must be a positive integer, got ${options.stepsPerBatch}`);
    this.model = new MultiHeadMlp(
      { inputSize: options.inputSize, hiddenLayers: options.hiddenLayers, outputUnits: options.outputUnits },
      options.seed,
    );
    if (!this.taskHeads) this.model.addHead(SHARED_HEAD);
    this.inference = this.taskHeads ? createTaskInference(name, options, options.seed + 4) : undefined;
    this.infersTask = this.taskHeads;
  }

  private get taskHeads(): boolean {
    return this.options.scenario === 'task-incremental';
  }

  async beginTask(task: TaskInfo): Promise<void> {
    this.assertLive();
    if (!this.tasks.some((t) => t.name === task.name)) this.tasks.push(task);
    if (this.taskHeads && !this.model.hasHead(task.name)) this.model.addHead(task.name);
    this.rebuildOptimizer();
    await this.rehearsal?.beginTask?.(this.rehearsalContext(task, this.model.head(this.headKey(task))));
  }

  async trainBatch(task: TaskInfo, batch: LabelledBatch): Promise<TrainResult> {
    return (await this.learn(task, batch, false)).result;
  }

  async predictAndTrain(task: TaskInfo, batch: LabelledBatch, options: PredictAndTrainOptions = {}): Promise<{ predictions: Prediction[]; result: TrainResult }> {
    // With one head per task and the task hidden, every head may answer: no shared forward pass.
    if (options.taskGiven === false && this.taskHeads) {
      const predictions = await this.predict(undefined, batch.xs);
      return { predictions, result: await this.trainBatch(task, batch) };
    }
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
    // A label beyond model.maxClasses is refused alone; the rest of the batch still trains.
    const { kept, units, rejected } = assignUnits(head.labels, batch.ys, this.options.maxClasses);
    // Predictions come from the model before this batch. Usually the training step's own forward
    // pass gives them (below); when it cannot (nothing known yet, or refused samples missing from
    // the training batch) they are made here, still before any update.
    let predictions = predict && (knownBefore === 0 || rejected.length > 0) ? this.predictWith(head, batch.xs, knownBefore) : undefined;
    if (kept.length === 0) {
      this.lastBatchSize = batch.xs.length;
      return { result: { loss: 0, penalty: 0, rejected }, ...(predictions ? { predictions } : {}) };
    }
    if (head.labels.size > unitsOf(head)) this.growHead(head);
    const optimizer = this.optimizer ?? this.rebuildOptimizer();
    const x = toMatrix(kept.length === batch.xs.length ? batch.xs : kept.map((i) => batch.xs[i] as Float32Array), this.options.inputSize);
    const y = tf.tensor1d(units, 'int32');
    const variables = this.trainedVariables(head);
    const context = { model: this.model, head, task };
    const rehearsalContext = this.rehearsal ? this.rehearsalContext(task, head) : undefined;
    const hooks = this.stepHooks(context);
    let loss = 0;
    let penalty = 0;
    let priorLogits: tf.Tensor | undefined;
    let refused = false;
    try {
      for (let step = 0; step < this.options.stepsPerBatch && !refused; step++) {
        const replay = rehearsalContext && this.rehearsal?.replay(rehearsalContext, kept.length);
        try {
          const groups = replay ? this.resolveReplay(replay) : [];
          const keepPrior = predict && step === 0 && !predictions;
          const { applied, reading, kept: keptTensors } = gradientStep({
            optimizer,
            variables,
            hooks,
            read: step === this.options.stepsPerBatch - 1,
            objective: () => {
              const { logits } = this.model.forward(x, head);
              const taskLoss = classificationLoss(logits, y);
              const objective = groups.length ? this.withReplay(taskLoss, kept.length, groups, replay?.currentWeight) : taskLoss;
              const extra = this.regularizer.penalty(context);
              return {
                objective: extra ? tf.add(objective, extra) : objective,
                loss: taskLoss,
                ...(extra ? { penalty: extra } : {}),
                ...(keepPrior ? { keep: [tf.slice(logits, [0, 0], [-1, knownBefore])] } : {}),
              };
            },
          });
          if (keepPrior) priorLogits = keptTensors[0];
          if (reading) ({ loss, penalty } = reading);
          refused = !applied;
        } finally {
          if (replay) for (const g of replay.groups) tf.dispose([g.x, g.targets]);
        }
      }
      // A refused batch is dead-lettered: neither the regularizer nor the memory may keep it.
      if (!refused) this.regularizer.afterBatch?.({ ...context, x, units: y });
      if (!refused) this.inference?.gate?.train(task.name, x);
      if (rehearsalContext && !refused) await this.rehearsal?.afterBatch?.({ ...rehearsalContext, x, units: y, labels: kept.map((i) => batch.ys[i] as string), ...(batch.ids ? { ids: kept.map((i) => batch.ids?.[i]) } : {}) });
    } finally {
      x.dispose();
      y.dispose();
    }
    if (!refused) this.lastBatchSize = batch.xs.length;
    const result: TrainResult = refused ? refuseBatch(head.labels, knownBefore, kept, rejected) : rejected.length ? { loss, penalty, rejected } : { loss, penalty };
    if (priorLogits) {
      const softmax = tf.softmax(priorLogits);
      const probs = softmax.arraySync() as number[][];
      tf.dispose([softmax, priorLogits]);
      predictions = probs.map((p) => toPrediction(head.labels, p));
    }
    return { result, ...(predictions ? { predictions } : {}) };
  }

  async predict(task: TaskInfo | undefined, xs: readonly Float32Array[]): Promise<Prediction[]> {
    this.assertLive();
    if (xs.length === 0) return [];
    if (!this.taskHeads) return this.predictWith(this.model.head(SHARED_HEAD), xs);
    if (task) return this.model.hasHead(task.name) ? this.predictWith(this.model.head(task.name), xs) : unanswered(xs, NO_TASK_YET);
    // Task-agnostic request with one head per task: the task inference rule picks the head.
    const heads = this.model.headKeys().map((k) => this.model.head(k)).filter((h) => h.labels.size > 0);
    if (heads.length === 0) return unanswered(xs, NOTHING_LEARNED_YET);
    const answerers = heads.map((h) => ({ task: h.key, labels: h.labels }));
    return predictWithoutTask(xs, this.options.inputSize, answerers, (x) => heads.map((h) => tf.softmax(this.model.forward(x, h).logits)), this.inference as TaskInference);
  }

  async endTask(task: TaskInfo): Promise<void> {
    this.assertLive();
    const head = this.model.hasHead(this.headKey(task)) ? this.model.head(this.headKey(task)) : undefined;
    if (head) await this.consolidate(task, head);
    if (head) this.regularizer.endTask({ model: this.model, head, task });
    if (head) await this.rehearsal?.endTask?.(this.rehearsalContext(task, head));
  }

  /** The rehearsal's numbers (buffer fill, replayed samples...) and the task router's size. */
  diagnostics(): readonly StrategyDiagnostic[] {
    return [...(this.rehearsal?.diagnostics?.() ?? []), ...(this.inference?.gate?.diagnostics() ?? [])];
  }

  classes(): ReadonlyMap<TaskName, readonly Label[]> {
    return new Map(this.model.headKeys().map((key) => [this.taskHeads ? key : TASK_AGNOSTIC, this.model.head(key).labels.labels]));
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
    const rehearsal = this.rehearsal?.exportState();
    if (rehearsal) for (const [key, t] of Object.entries(rehearsal.tensors)) tensors[`${REHEARSAL_PREFIX}${key}`] = t;
    const optimizerSlots = await exportOptimizer(this.optimizer, 'optimizer', tensors);
    const router = await this.inference?.gate?.exportState(ROUTER_PREFIX);
    if (router) Object.assign(tensors, router.tensors);
    return {
      strategy: this.name,
      format: STATE_FORMAT,
      meta: {
        model: model.meta,
        regularizer: regularizer.meta,
        ...(rehearsal ? { rehearsal: rehearsal.meta } : {}),
        ...(router ? { router: router.meta } : {}),
        tasks: this.tasks.map((t) => ({ ...t })),
        optimizerSlots,
        lastBatchSize: this.lastBatchSize,
      },
      tensors,
    };
  }

  async importState(state: StrategyState): Promise<void> {
    this.assertLive();
    checkStateHeader(state, this.name, STATE_FORMAT);
    const meta = state.meta as {
      model: ReturnType<MultiHeadMlp['exportState']>['meta'];
      regularizer: Record<string, unknown>;
      rehearsal?: Record<string, unknown>;
      tasks: TaskInfo[];
      optimizerSlots: number;
      lastBatchSize?: number;
      router?: ExpertGateState['meta'];
    };
    this.model.importState({ meta: meta.model, tensors: state.tensors as Record<string, TensorSnapshot> });
    this.regularizer.importState({ meta: meta.regularizer, tensors: state.tensors as Record<string, TensorSnapshot> });
    if (this.rehearsal) {
      if (!meta.rehearsal) throw new StrategyError(`state of strategy "${this.name}" lacks its rehearsal state (meta.rehearsal)`);
      const tensors: Record<string, TensorSnapshot> = {};
      for (const [key, t] of Object.entries(state.tensors)) if (key.startsWith(REHEARSAL_PREFIX)) tensors[key.slice(REHEARSAL_PREFIX.length)] = t;
      await this.rehearsal.importState({ meta: meta.rehearsal, tensors });
    }
    this.tasks.splice(0, this.tasks.length, ...meta.tasks);
    this.lastBatchSize = meta.lastBatchSize ?? 0;
    this.optimizer?.dispose();
    this.optimizer = undefined;
    if (meta.optimizerSlots > 0) await importOptimizer(this.rebuildOptimizer(), 'optimizer', meta.optimizerSlots, state.tensors);
    await this.inference?.gate?.importState(ROUTER_PREFIX, meta.router ?? { tasks: [], experts: [] }, state.tensors);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.optimizer?.dispose();
    this.regularizer.dispose();
    this.rehearsal?.dispose();
    this.inference?.gate?.dispose();
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

  /**
   * Variables one training step updates: the trunk and the task's head; with a rehearsal in
   * task-incremental learning, every head, since replayed samples train their own (old) heads
   * through the shared trunk. tfjs optimizers key their moments by position in this list, so it
   * must not change during an optimizer's life (heads are only added at beginTask and importState,
   * which rebuild the optimizer); a head no replayed sample reaches in a step gets no gradient,
   * and tfjs then leaves it and its moments untouched.
   */
  private trainedVariables(head: Head): tf.Variable[] {
    if (!this.rehearsal || !this.taskHeads) return this.model.trainableVariables(head);
    const layers = [...this.model.trunk, ...this.model.headKeys().map((k) => this.model.head(k).layer)];
    return layers.flatMap((l) => [l.kernel, l.bias]);
  }

  private rehearsalContext(task: TaskInfo, head: Head): RehearsalContext {
    const begun = this.tasks.find((t) => t.name === task.name) ?? task;
    return { model: this.model, head, task, tasks: [...this.tasks.filter((t) => t.name !== task.name), begun], scenario: this.options.scenario };
  }

  /** The replay batch's groups with their heads, checked against the model; empty groups dropped. */
  private resolveReplay(replay: ReplayBatch): ResolvedGroup[] {
    const w = replay.currentWeight;
    if (w !== undefined && !(w >= 0 && w <= 1)) throw new StrategyError(`rehearsal of "${this.name}": currentWeight must be in [0, 1], got ${w}`);
    const groups: ResolvedGroup[] = [];
    for (const g of replay.groups) {
      if (!this.model.hasHead(g.head)) throw new StrategyError(`rehearsal of "${this.name}" replays to head "${g.head}", which the model does not have`);
      const head = this.model.head(g.head);
      const [n, features] = g.x.shape;
      if (n === 0) continue;
      if (features !== this.options.inputSize) throw new StrategyError(`rehearsal of "${this.name}": replayed inputs for head "${g.head}" have ${features} features, expected ${this.options.inputSize}`);
      if (head.labels.size === 0 || g.targets.shape[0] !== n || g.targets.shape[1] !== head.labels.size) {
        throw new StrategyError(`rehearsal of "${this.name}": targets for head "${g.head}" are [${g.targets.shape}], expected [${n},${head.labels.size}] (the head's active units)`);
      }
      const temperature = g.temperature ?? 1;
      if (!(temperature > 0 && Number.isFinite(temperature))) throw new StrategyError(`rehearsal of "${this.name}": temperature must be a positive number, got ${temperature}`);
      groups.push({ head, x: g.x, targets: g.targets, temperature });
    }
    return groups;
  }

  /**
   * The step's objective with replay (inside the gradient step's objective): without currentWeight the mean
   * loss over current and replayed samples together; with it, w * current mean + (1 - w) * replayed
   * mean. A group at temperature T contributes T^2 * CE(targets, softmax(logits / T)) per sample
   * (Hinton et al.'s scaling, which keeps the gradients' size independent of T).
   */
  private withReplay(taskLoss: tf.Scalar, current: number, groups: readonly ResolvedGroup[], currentWeight: number | undefined): tf.Scalar {
    let replayed = 0;
    const sums = groups.map((g) => {
      replayed += g.x.shape[0];
      const { logits } = this.model.forward(g.x, g.head);
      const scaled = g.temperature === 1 ? logits : tf.div(logits, g.temperature);
      const perSample = tf.losses.softmaxCrossEntropy(g.targets, scaled, undefined, 0, tf.Reduction.NONE);
      return tf.mul(tf.sum(perSample), g.temperature * g.temperature) as tf.Scalar;
    });
    const replaySum = sums.length === 1 ? (sums[0] as tf.Scalar) : (tf.addN(sums) as tf.Scalar);
    if (currentWeight === undefined) return tf.div(tf.add(tf.mul(taskLoss, current), replaySum), current + replayed);
    return tf.add(tf.mul(taskLoss, currentWeight), tf.mul(tf.div(replaySum, replayed), 1 - currentWeight));
  }

  /** The rehearsal's offline steps at the end of a task (see Rehearsal.consolidationSteps). */
  private async consolidate(task: TaskInfo, head: Head): Promise<void> {
    if (!this.rehearsal?.consolidationSteps || this.lastBatchSize === 0) return;
    const context = this.rehearsalContext(task, head);
    const steps = this.rehearsal.consolidationSteps(context, this.lastBatchSize);
    const optimizer = this.optimizer ?? this.rebuildOptimizer();
    const variables = this.trainedVariables(head);
    const hooks = this.stepHooks({ model: this.model, head, task });
    const none = tf.scalar(0);
    try {
      for (let step = 0; step < steps; step++) {
        const replay = this.rehearsal.replay(context, this.lastBatchSize);
        if (!replay) break;
        try {
          const groups = this.resolveReplay(replay);
          if (groups.length === 0) break;
          gradientStep({ optimizer, variables, hooks, objective: () => ({ objective: this.withReplay(none, 0, groups, undefined), loss: none }) });
        } finally {
          for (const g of replay.groups) tf.dispose([g.x, g.targets]);
        }
        // Long offline passes must not starve the event loop (metrics, heartbeats, signals).
        if (step % 20 === 19) await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      none.dispose();
    }
  }

  /** The regularizer's view of every step taken, where it asks for one. */
  private stepHooks(context: TrainingContext): StepHooks | undefined {
    const regularizer = this.regularizer;
    if (!regularizer.afterStep) return undefined;
    return { observe: (step) => regularizer.afterStep?.({ ...context, ...step }) };
  }

  /**
   * Widens `head` to one unit per label it knows, between gradient steps, and everything kept per
   * variable with it: the optimizer's moments (by the layer's position in the trained list) and
   * the regularizer's importances and anchors. Replayed targets are built per step from the
   * head's labels, and DGR's previous solver, a frozen copy, keeps its own width.
   */
  private growHead(head: Head): void {
    const trained = this.trainedVariables(head);
    const kernelAt = trained.indexOf(head.layer.kernel);
    const biasAt = trained.indexOf(head.layer.bias);
    const growth = this.model.growHead(head.key, head.labels.size);
    if (this.optimizer && kernelAt >= 0) growOptimizerSlots(this.optimizer, kernelAt, head.layer.kernel);
    if (this.optimizer && biasAt >= 0) growOptimizerSlots(this.optimizer, biasAt, head.layer.bias);
    this.regularizer.growHead?.({ model: this.model, growth });
  }

  private rebuildOptimizer(): tf.Optimizer {
    this.optimizer?.dispose();
    this.optimizer = createOptimizer(this.options);
    return this.optimizer;
  }

  /** Softmax over the head's labels (the first `known`, when given). */
  private predictWith(head: Head, xs: readonly Float32Array[], known?: number): Prediction[] {
    if (head.labels.size === 0 || known === 0) return unanswered(xs, this.taskHeads ? NO_CLASSES_YET : NOTHING_LEARNED_YET);
    const [rows] = readMatrices(xs, this.options.inputSize, (x) => {
      const { logits } = this.model.forward(x, head);
      return [tf.softmax(known === undefined ? logits : tf.slice(logits, [0, 0], [-1, known]))];
    });
    return (rows as number[][]).map((p) => toPrediction(head.labels, p));
  }

  private assertLive(): void {
    if (this.disposed) throw new StrategyError(`strategy "${this.name}" has been disposed`);
  }
}
