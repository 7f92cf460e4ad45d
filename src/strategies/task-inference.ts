import type * as tf from '@tensorflow/tfjs';
import type { Prediction } from '../core/types';
import type { LabelSpace } from '../models/label-space';
import { ExpertGate, gateConfidences } from './expert-gate';
import { argmaxBy, readMatrices, toPrediction } from './learning-helpers';
import { readParams } from './params';
import type { StrategyOptions } from './strategy';

/**
 * How a strategy with one head or column per task picks the one that answers a request without a
 * task: 'expert-gate', the task whose gating autoencoder reconstructs the input best (Aljundi et
 * al. 2017, strategies/expert-gate.ts); 'entropy', the head whose softmax has the lowest Shannon
 * entropy; 'confidence', the head with the highest top probability.
 */
export type TaskInferenceRule = 'expert-gate' | 'entropy' | 'confidence';

/**
 * The parameters of task inference, shared by every strategy with a head or column per task.
 * Defaults measured in docs/BENCHMARKS.md ("Answers without a task"): on split and permuted MNIST
 * the gate picks the right task far more often than either rule over the heads' own softmax.
 */
export const TASK_INFERENCE_PARAMS = {
  taskInference: {
    type: 'enum',
    default: 'expert-gate',
    values: ['expert-gate', 'entropy', 'confidence'],
    doc: "Which head or column answers when the task is not given: 'expert-gate' (the task whose autoencoder reconstructs the input best; Aljundi et al. 2017), 'entropy' (lowest softmax entropy) or 'confidence' (highest top probability).",
  },
  routerUnits: { type: 'integer', default: 100, min: 1, doc: "Code units of each task's gating autoencoder ('expert-gate'; at most half the input size)." },
  routerLearningRate: { type: 'number', default: 0.01, min: 0, exclusiveMin: true, doc: "Adam learning rate of the gating autoencoders ('expert-gate'), which take training.stepsPerBatch steps on each training batch, as the classifier does." },
} as const;

/** A strategy's task inference: its rule and, for 'expert-gate', the gate its batches train. */
export interface TaskInference {
  readonly rule: TaskInferenceRule;
  readonly gate: ExpertGate | undefined;
}

/** Reads the task-inference keys of strategy.params (the strategy's own readParams checks the others) and builds the gate where the rule needs one. */
export function createTaskInference(strategy: string, options: StrategyOptions, seed: number): TaskInference {
  const own: Record<string, unknown> = {};
  for (const key of Object.keys(TASK_INFERENCE_PARAMS)) if (options.params[key] !== undefined) own[key] = options.params[key];
  const p = readParams(strategy, own, TASK_INFERENCE_PARAMS);
  const rule = p.taskInference as TaskInferenceRule;
  const gate = rule === 'expert-gate' ? new ExpertGate({ inputSize: options.inputSize, hiddenUnits: p.routerUnits, learningRate: p.routerLearningRate, stepsPerBatch: options.stepsPerBatch, seed }) : undefined;
  return { rule, gate };
}

/** A head or column that may answer: its task and its labels. */
export interface Answerer {
  readonly task: string;
  readonly labels: LabelSpace;
}

/**
 * Predictions for inputs of unknown task. `probabilities` gives each answerer's softmax over its
 * labels (inside tidy, in the order of `answerers`); per input, the answerer chosen by the rule
 * answers and names its task (`inferredTask`), with the gate's confidence in it under
 * 'expert-gate'. The gate decides only where it has an autoencoder for every answerer: a task
 * learned before the gate existed (a checkpoint of another rule or an older version) has none and
 * never will, its data being gone, and the gate would never send it anything; the 'confidence'
 * rule decides then.
 */
export function predictWithoutTask(
  xs: readonly Float32Array[],
  inputSize: number,
  answerers: readonly Answerer[],
  probabilities: (x: tf.Tensor2D) => tf.Tensor2D[],
  inference: TaskInference,
): Prediction[] {
  const gate = inference.rule === 'expert-gate' && answerers.every((a) => inference.gate?.knows(a.task)) ? inference.gate : undefined;
  const matrices = readMatrices(xs, inputSize, (x) => [...probabilities(x), ...(gate ? [gate.errors(x, answerers.map((a) => a.task))] : [])]);
  const perAnswerer = matrices.slice(0, answerers.length);
  const errors = gate ? (matrices[answerers.length] as number[][]) : undefined;
  return xs.map((_, i) => {
    let best: number;
    let confidence: number | undefined;
    if (errors) {
      const confidences = gateConfidences(errors[i] as number[]);
      best = argmaxBy(confidences, (c) => c);
      confidence = confidences[best];
    } else {
      const rule = inference.rule === 'entropy' ? 'entropy' : 'confidence';
      best = argmaxBy(perAnswerer, (rows) => certainty(rows[i] as number[], rule));
    }
    const answerer = answerers[best] as Answerer;
    const prediction = toPrediction(answerer.labels, (perAnswerer[best] as number[][])[i] as number[], answerer.task);
    return confidence === undefined ? prediction : { ...prediction, confidence };
  });
}

/** How sure one head is of one sample, by `rule`: its top probability, or its negated entropy. */
export function certainty(p: readonly number[], rule: 'entropy' | 'confidence'): number {
  if (rule === 'confidence') return Math.max(...p);
  let entropy = 0;
  for (const v of p) if (v > 0) entropy -= v * Math.log(v);
  return -entropy;
}
