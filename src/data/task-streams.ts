/**
 * The built-in MNIST task sequences of van de Ven & Tolias (2019), "Three scenarios for continual
 * learning": split-, permuted- and rotated-MNIST. This file only defines the tasks (which images,
 * which transformation, which labels); sources/embedded.ts streams them.
 */
import { ConfigError } from '../core/errors';
import { Rng } from '../core/rng';
import type { Label, Scenario, TaskName } from '../core/types';
import { SCENARIOS } from '../core/types';
import { MNIST_CLASSES, MNIST_PIXELS } from './mnist';
import { rotateImage } from './rotate';

export type EmbeddedDataset = 'split-mnist' | 'permuted-mnist' | 'rotated-mnist';
export const EMBEDDED_DATASETS: readonly EmbeddedDataset[] = ['split-mnist', 'permuted-mnist', 'rotated-mnist'];

export interface EmbeddedStreamSpec {
  readonly dataset: EmbeddedDataset;
  /** Number of tasks: the first N of the dataset's sequence. Defaults: split 5, permuted 10, rotated 5. */
  readonly tasks?: number;
  /** Training samples per task, the first N of the task's shuffled images; 0 or absent: all. */
  readonly samplesPerTask?: number;
  /** rotated-mnist: the angle of each task in degrees (default evenly spaced over [0, 180)). */
  readonly angles?: readonly number[];
  /** split-mnist: which digits pair up (default fixed: (0,1)...(8,9)); see splitPairs. */
  readonly pairs?: SplitPairs;
  readonly seed: number;
  readonly scenario: Scenario;
}

/** One task of a stream: which MNIST images belong to it, how they are transformed and labelled. */
export interface TaskDefinition {
  readonly name: TaskName;
  /** 0-based position in the sequence. */
  readonly index: number;
  /** The digits whose images belong to the task. */
  readonly digits: readonly number[];
  /** The label of a digit of this task under the stream's scenario. */
  label(digit: number): Label;
  /** A new Float32Array of the task's input for raw MNIST grey levels. */
  transform(raw: Uint8Array): Float32Array;
  /** Seed of the task's training order. */
  readonly trainSeed: number;
  /** Seed of the task's probe choice among test images. */
  readonly probeSeed: number;
}

export interface TaskStreamDefinition {
  readonly dataset: EmbeddedDataset;
  readonly scenario: Scenario;
  readonly tasks: readonly TaskDefinition[];
  /** 0 means every image of a task. */
  readonly samplesPerTask: number;
  /** Output units per head (task-incremental) or of the shared head. */
  readonly outputUnits: number;
  readonly description: string;
}

const SPLIT_PAIRS: readonly (readonly [number, number])[] = [
  [0, 1],
  [2, 3],
  [4, 5],
  [6, 7],
  [8, 9],
];
export const SPLIT_PAIRINGS = ['fixed', 'random'] as const;
export type SplitPairs = (typeof SPLIT_PAIRINGS)[number];

/**
 * The digit pairs of split MNIST's tasks: fixed, (0,1)...(8,9); random, a random permutation of
 * the ten digits drawn from `seed` and cut into consecutive pairs, as the code of van de Ven &
 * Tolias does for every seed >= 1 (its seed 0 keeps the fixed pairs). The draw is its own
 * generator, so the task seeds of a stream are the same under both pairings.
 */
export function splitPairs(pairs: SplitPairs, seed: number): (readonly [number, number])[] {
  if (pairs === 'fixed') return SPLIT_PAIRS.map((p) => p);
  const digits = new Rng(seed ^ 0x2f6b1a3d).permutation(MNIST_CLASSES);
  return SPLIT_PAIRS.map((_, i) => [digits[2 * i] as number, digits[2 * i + 1] as number] as const);
}

const DEFAULT_TASKS: Readonly<Record<EmbeddedDataset, number>> = {
  'split-mnist': SPLIT_PAIRS.length,
  'permuted-mnist': 10,
  'rotated-mnist': 5,
};
const ALL_DIGITS: readonly number[] = Array.from({ length: MNIST_CLASSES }, (_, digit) => digit);

function scaled(raw: Uint8Array): Float32Array {
  const pixels = new Float32Array(raw.length);
  for (let i = 0; i < raw.length; i++) pixels[i] = (raw[i] as number) / 255;
  return pixels;
}

function invalid(message: string, key: string): ConfigError {
  return new ConfigError(`embedded stream: ${message}`, undefined, key);
}

function validatedTaskCount(spec: EmbeddedStreamSpec): number {
  const max = spec.dataset === 'split-mnist' ? SPLIT_PAIRS.length : Number.POSITIVE_INFINITY;
  const fallback = spec.dataset === 'rotated-mnist' && spec.angles ? spec.angles.length : DEFAULT_TASKS[spec.dataset];
  const tasks = spec.tasks ?? fallback;
  if (!Number.isInteger(tasks) || tasks < 1 || tasks > max) {
    throw invalid(`tasks must be an integer from 1 to ${max === Number.POSITIVE_INFINITY ? 'any' : max} for ${spec.dataset}, got ${tasks}`, 'tasks');
  }
  return tasks;
}

function validate(spec: EmbeddedStreamSpec): void {
  if (!EMBEDDED_DATASETS.includes(spec.dataset)) {
    throw invalid(`unknown dataset "${spec.dataset}"; expected one of ${EMBEDDED_DATASETS.join(', ')}`, 'dataset');
  }
  if (!SCENARIOS.includes(spec.scenario)) {
    throw invalid(`unknown scenario "${spec.scenario}"; expected one of ${SCENARIOS.join(', ')}`, 'scenario');
  }
  if (!Number.isSafeInteger(spec.seed)) throw invalid(`seed must be an integer, got ${spec.seed}`, 'seed');
  const perTask = spec.samplesPerTask ?? 0;
  if (!Number.isInteger(perTask) || perTask < 0) {
    throw invalid(`samplesPerTask must be a non-negative integer (0 = all), got ${perTask}`, 'samplesPerTask');
  }
  if (spec.pairs !== undefined && !SPLIT_PAIRINGS.includes(spec.pairs)) {
    throw invalid(`pairs must be one of ${SPLIT_PAIRINGS.join(', ')}, got "${String(spec.pairs)}"`, 'pairs');
  }
  if (spec.pairs !== undefined && spec.dataset !== 'split-mnist') {
    throw invalid(`pairs only apply to split-mnist, not ${spec.dataset}`, 'pairs');
  }
  if (spec.angles !== undefined && spec.dataset !== 'rotated-mnist') {
    throw invalid(`angles only apply to rotated-mnist, not ${spec.dataset}`, 'angles');
  }
}

/** Default rotated-MNIST angles: n evenly spaced over [0, 180), rounded to 0.01 degree for readable names. */
export function defaultAngles(n: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.round((18000 * i) / n) / 100);
}

function rotatedAngles(spec: EmbeddedStreamSpec, count: number): number[] {
  if (spec.angles === undefined) return defaultAngles(count);
  if (spec.angles.length < count) {
    throw invalid(`${count} tasks need ${count} angles, ${spec.angles.length} given`, 'angles');
  }
  const angles = spec.angles.slice(0, count);
  const bad = angles.find((angle) => !Number.isFinite(angle));
  if (bad !== undefined) throw invalid(`angles must be finite numbers, got ${bad}`, 'angles');
  if (new Set(angles).size !== angles.length) throw invalid(`angles must differ, got [${angles.join(', ')}]`, 'angles');
  return angles;
}

/**
 * Output units per head (task-incremental) or in the shared head: split-MNIST has 2 per task, 10
 * digits in all; permuted/rotated have 10 digits that are new classes for every task in class-IL.
 */
function outputUnitsOf(dataset: EmbeddedDataset, scenario: Scenario, tasks: number): number {
  if (dataset === 'split-mnist') return scenario === 'class-incremental' ? MNIST_CLASSES : 2;
  return scenario === 'class-incremental' ? MNIST_CLASSES * tasks : MNIST_CLASSES;
}

/**
 * The tasks of a stream. Deterministic for a spec: every seed (training order, probe choice,
 * permutation) is drawn from one generator seeded with spec.seed, task after task, so a stream of
 * fewer tasks is a prefix of a longer one with the same seed.
 */
export function defineTaskStream(spec: EmbeddedStreamSpec): TaskStreamDefinition {
  validate(spec);
  const count = validatedTaskCount(spec);
  const angles = spec.dataset === 'rotated-mnist' ? rotatedAngles(spec, count) : [];
  const seeds = new Rng(spec.seed);
  const classIncremental = spec.scenario === 'class-incremental';
  const tasks: TaskDefinition[] = [];
  const pairs = splitPairs(spec.pairs ?? 'fixed', spec.seed);

  for (let index = 0; index < count; index++) {
    const trainSeed = seeds.seed();
    const probeSeed = seeds.seed();
    const transformSeed = seeds.seed();
    switch (spec.dataset) {
      case 'split-mnist': {
        const pair = pairs[index] as readonly [number, number];
        tasks.push({
          name: `split-mnist-${pair[0]}-${pair[1]}`,
          index,
          digits: pair,
          // Task- and domain-IL: "first or second digit of the pair"; class-IL: the digit.
          label: (digit) => (classIncremental ? String(digit) : String(pair.indexOf(digit))),
          transform: scaled,
          trainSeed,
          probeSeed,
        });
        break;
      }
      case 'permuted-mnist': {
        // Task 1 is plain MNIST; later tasks read pixel permutation[i] into input i.
        const permutation = index === 0 ? undefined : Int32Array.from(new Rng(transformSeed).permutation(MNIST_PIXELS));
        tasks.push({
          name: `permuted-mnist-${index + 1}`,
          index,
          digits: ALL_DIGITS,
          label: (digit) => String(classIncremental ? MNIST_CLASSES * index + digit : digit),
          transform: (raw) => {
            if (permutation === undefined) return scaled(raw);
            const pixels = new Float32Array(raw.length);
            for (let i = 0; i < pixels.length; i++) pixels[i] = (raw[permutation[i] as number] as number) / 255;
            return pixels;
          },
          trainSeed,
          probeSeed,
        });
        break;
      }
      case 'rotated-mnist': {
        const angle = angles[index] as number;
        tasks.push({
          name: `rotated-mnist-${angle}deg`,
          index,
          digits: ALL_DIGITS,
          label: (digit) => String(classIncremental ? MNIST_CLASSES * index + digit : digit),
          transform: (raw) => (angle === 0 ? scaled(raw) : rotateImage(scaled(raw), angle, Math.sqrt(raw.length))),
          trainSeed,
          probeSeed,
        });
        break;
      }
    }
  }

  const samplesPerTask = spec.samplesPerTask ?? 0;
  const perTaskText = samplesPerTask > 0 ? `, ${samplesPerTask} samples per task` : '';
  return {
    dataset: spec.dataset,
    scenario: spec.scenario,
    tasks,
    samplesPerTask,
    outputUnits: outputUnitsOf(spec.dataset, spec.scenario, count),
    description: `${spec.dataset} (${count} task${count === 1 ? '' : 's'}, ${spec.scenario}${perTaskText})`,
  };
}

/**
 * Indices of the images of `digits` in a label array, in a seeded random order; the first `limit`
 * of them when limit > 0.
 */
export function shuffledIndicesOf(labels: Uint8Array, digits: readonly number[], seed: number, limit = 0): Int32Array {
  const wanted = new Uint8Array(MNIST_CLASSES);
  for (const digit of digits) wanted[digit] = 1;
  const indices: number[] = [];
  for (let i = 0; i < labels.length; i++) if (wanted[labels[i] as number] === 1) indices.push(i);
  new Rng(seed).shuffle(indices);
  return Int32Array.from(limit > 0 ? indices.slice(0, limit) : indices);
}
