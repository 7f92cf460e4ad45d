import * as tf from '@tensorflow/tfjs';
import { StrategyError } from '../core/errors';
import type { Rng } from '../core/rng';
import type { Label, TaskName } from '../core/types';
import type { TensorSnapshot } from '../core/tensor-snapshot';
import { NoRegularizer } from './finetune';
import { MlpStrategy, SHARED_HEAD } from './mlp-strategy';
import { readParams } from './params';
import { seededRng, type Rehearsal, type RehearsalBatchContext, type RehearsalContext, type RehearsalState, type ReplayBatch, type ReplayGroup } from './rehearsal';
import type { Strategy, StrategyDiagnostic, StrategyOptions } from './strategy';
import { defineStrategy } from './descriptor';
import { TASK_INFERENCE_PARAMS } from './task-inference';

export const REPLAY_PARAMS = {
  budget: { type: 'integer', default: 1000, min: 1, doc: 'Samples the buffer holds at most.' },
  classBalanced: { type: 'boolean', default: false, doc: 'false: reservoir sampling, uniform over the stream; true: per-class quotas (evict from the largest class).' },
  replayBatchSize: { type: 'integer', default: 0, min: 0, doc: 'Replayed samples per gradient step; 0 = as many as the batch has.' },
  ...TASK_INFERENCE_PARAMS,
} as const;

/** One raw sample kept for replay. */
export interface StoredSample {
  readonly task: TaskName;
  readonly label: Label;
  readonly x: Float32Array;
  /** The sample's id where the source gave one: a redelivered or revisited sample is stored once. */
  readonly id?: string;
}

/** A class for quotas: a label within its task (task-incremental tasks may reuse label names). */
function classKey(task: TaskName, label: Label): string {
  return JSON.stringify([task, label]);
}

/**
 * A buffer of raw samples in plain JS memory with a fixed budget (Infinity: keep everything).
 *
 * Reservoir mode is Vitter's algorithm R: after n offers every offered sample is in the buffer
 * with probability budget / n. Class-balanced mode is class-balanced reservoir sampling (Chrysakis
 * & Moens 2020): when the buffer is full, a sample of a class that is not among the largest
 * evicts a random sample of a largest class; a sample of a largest class c replaces a random
 * sample of c with probability stored_c / seen_c (reservoir within the class). Small classes
 * thus keep everything and the large ones share the rest equally.
 */
export class SampleBuffer {
  private readonly items: StoredSample[] = [];
  /** Item indices of each class, for class-balanced eviction. */
  private readonly byClass = new Map<string, number[]>();
  private readonly seenByClass = new Map<string, number>();
  /** Ids of the stored samples: an id already held is not offered again. */
  private readonly storedIds = new Set<string>();
  private offered = 0;

  constructor(
    readonly budget: number,
    readonly classBalanced: boolean,
  ) {
    if (!(budget >= 1)) throw new StrategyError(`replay budget must be at least 1 sample, got ${budget}`);
  }

  get size(): number {
    return this.items.length;
  }

  /** Samples offered so far. */
  get seen(): number {
    return this.offered;
  }

  /** The stored samples (read-only view, for tests and diagnostics). */
  stored(): readonly StoredSample[] {
    return this.items;
  }

  /**
   * Offers one sample; `read` gives its features and is called only when the sample is kept.
   * A sample whose id is already stored (Kafka redelivers at least once; the bench revisits a
   * task's images) is ignored, so it neither takes a second slot nor counts as a new offer.
   */
  offer(task: TaskName, label: Label, read: () => Float32Array, rng: Rng, id?: string): void {
    if (id !== undefined && this.storedIds.has(id)) return;
    const keep = (): StoredSample => ({ task, label, x: read(), ...(id !== undefined ? { id } : {}) });
    this.offered += 1;
    const key = classKey(task, label);
    const seenOfClass = (this.seenByClass.get(key) ?? 0) + 1;
    this.seenByClass.set(key, seenOfClass);
    if (this.items.length < this.budget) {
      this.place(this.items.length, keep(), key);
      return;
    }
    if (!this.classBalanced) {
      const j = rng.int(this.offered);
      if (j < this.budget) this.place(j, keep(), key);
      return;
    }
    const own = this.byClass.get(key) ?? [];
    let largest = 0;
    for (const indices of this.byClass.values()) largest = Math.max(largest, indices.length);
    if (own.length < largest) {
      const candidates = [...this.byClass.values()].filter((indices) => indices.length === largest);
      const victims = candidates[rng.int(candidates.length)] as number[];
      this.place(victims[rng.int(victims.length)] as number, keep(), key);
    } else {
      const j = rng.int(seenOfClass);
      if (j < own.length) this.place(own[j] as number, keep(), key);
    }
  }

  /** k distinct stored samples, uniformly (Floyd's algorithm: O(k), whatever the buffer's size). */
  draw(k: number, rng: Rng): StoredSample[] {
    const n = this.items.length;
    if (k >= n) return [...this.items];
    const picked = new Set<number>();
    for (let j = n - k; j < n; j++) {
      const t = rng.int(j + 1);
      picked.add(picked.has(t) ? j : t);
    }
    return [...picked].map((i) => this.items[i] as StoredSample);
  }

  exportState(inputSize: number): RehearsalState {
    const data = new Float32Array(this.items.length * inputSize);
    this.items.forEach((s, i) => data.set(s.x, i * inputSize));
    return {
      meta: {
        budget: Number.isFinite(this.budget) ? this.budget : null,
        classBalanced: this.classBalanced,
        offered: this.offered,
        seenByClass: [...this.seenByClass],
        tasks: this.items.map((s) => s.task),
        labels: this.items.map((s) => s.label),
        ids: this.items.map((s) => s.id ?? null),
      },
      tensors: { x: { shape: [this.items.length, inputSize], data } },
    };
  }

  importState(meta: Record<string, unknown>, x: TensorSnapshot | undefined, inputSize: number): void {
    const budget = meta.budget === null ? Infinity : meta.budget;
    if (budget !== this.budget || meta.classBalanced !== this.classBalanced) {
      throw new StrategyError(
        `checkpoint replay buffer has budget ${String(meta.budget)} and classBalanced ${String(meta.classBalanced)}, the strategy is configured with ${this.budget} and ${this.classBalanced} (strategy.params)`,
      );
    }
    const tasks = meta.tasks as string[];
    const labels = meta.labels as string[];
    if (!x || x.shape[0] !== tasks.length || x.shape[1] !== inputSize || labels.length !== tasks.length) {
      throw new StrategyError(`checkpoint replay buffer is inconsistent: ${tasks.length} samples, tensor [${x?.shape ?? 'missing'}], input size ${inputSize}`);
    }
    const ids = (meta.ids as (string | null)[] | undefined) ?? []; // absent in checkpoints written before ids were kept
    this.items.length = 0;
    this.byClass.clear();
    this.storedIds.clear();
    tasks.forEach((task, i) => {
      const id = ids[i];
      const sample = { task, label: labels[i] as string, x: x.data.slice(i * inputSize, (i + 1) * inputSize), ...(typeof id === 'string' ? { id } : {}) };
      this.place(i, sample, classKey(task, labels[i] as string));
    });
    this.seenByClass.clear();
    for (const [key, n] of meta.seenByClass as [string, number][]) this.seenByClass.set(key, n);
    this.offered = meta.offered as number;
  }

  private place(index: number, sample: StoredSample, key: string): void {
    const old = this.items[index];
    if (old?.id !== undefined) this.storedIds.delete(old.id);
    if (sample.id !== undefined) this.storedIds.add(sample.id);
    if (old) {
      const indices = this.byClass.get(classKey(old.task, old.label)) as number[];
      const at = indices.indexOf(index);
      indices[at] = indices[indices.length - 1] as number;
      indices.pop();
    }
    this.items[index] = sample;
    const indices = this.byClass.get(key);
    if (indices) indices.push(index);
    else this.byClass.set(key, [index]);
  }
}

/**
 * Exact replay: before every gradient step, a uniform draw from a buffer of raw samples is
 * learned together with the batch (every sample weighing the same), and after the batch its
 * samples are offered to the buffer. The buffer includes the current task (experience replay
 * with a reservoir, Chaudhry et al. 2019). Used by `replay` (fixed budget) and `joint` (no budget).
 */
export class ExactReplay implements Rehearsal {
  private readonly buffer: SampleBuffer;
  /** Generators drawn so far from seededRng(seed, .): exported, so a checkpoint resumes the same draws. */
  private draws = 0;
  private lastReplayed = 0;

  constructor(
    budget: number,
    classBalanced: boolean,
    /** Replayed samples per step; undefined: as many as the batch has. */
    private readonly replayBatchSize: number | undefined,
    private readonly inputSize: number,
    private seed: number,
  ) {
    this.buffer = new SampleBuffer(budget, classBalanced);
  }

  /** The buffer, for tests. */
  get samples(): SampleBuffer {
    return this.buffer;
  }

  replay(context: RehearsalContext, batchSize: number): ReplayBatch | undefined {
    const picked = this.buffer.size ? this.buffer.draw(Math.min(this.replayBatchSize ?? batchSize, this.buffer.size), this.nextRng()) : [];
    const byHead = new Map<string, StoredSample[]>();
    for (const s of picked) {
      const key = context.scenario === 'task-incremental' ? s.task : SHARED_HEAD;
      const group = byHead.get(key);
      if (group) group.push(s);
      else byHead.set(key, [s]);
    }
    const groups: ReplayGroup[] = [];
    this.lastReplayed = 0;
    for (const [key, samples] of byHead) {
      if (!context.model.hasHead(key)) continue;
      const labels = context.model.head(key).labels;
      const known = samples.filter((s) => labels.has(s.label));
      if (known.length === 0) continue;
      const x = new Float32Array(known.length * this.inputSize);
      const targets = new Float32Array(known.length * labels.size);
      known.forEach((s, i) => {
        x.set(s.x, i * this.inputSize);
        targets[i * labels.size + (labels.unitOf(s.label) as number)] = 1;
      });
      groups.push({ head: key, x: tf.tensor2d(x, [known.length, this.inputSize]), targets: tf.tensor2d(targets, [known.length, labels.size]) });
      this.lastReplayed += known.length;
    }
    return groups.length ? { groups } : undefined;
  }

  afterBatch(context: RehearsalBatchContext): void {
    const rng = this.nextRng();
    let rows: Float32Array | undefined; // downloaded once, and only if a sample is kept
    const n = this.inputSize;
    context.labels.forEach((label, i) => {
      this.buffer.offer(context.task.name, label, () => (rows ??= context.x.dataSync() as Float32Array).slice(i * n, (i + 1) * n), rng, context.ids?.[i]);
    });
  }

  diagnostics(): readonly StrategyDiagnostic[] {
    return [
      { name: 'replay_buffer_fill', help: 'Raw samples held in the replay buffer', value: this.buffer.size },
      { name: 'replay_samples_per_batch', help: 'Samples replayed in the last gradient step', value: this.lastReplayed },
    ];
  }

  exportState(): RehearsalState {
    const buffer = this.buffer.exportState(this.inputSize);
    return {
      meta: { seed: this.seed, draws: this.draws, lastReplayed: this.lastReplayed, buffer: buffer.meta },
      tensors: { 'buffer.x': buffer.tensors.x as TensorSnapshot },
    };
  }

  importState(state: { readonly meta: Record<string, unknown>; readonly tensors: Readonly<Record<string, TensorSnapshot>> }): void {
    const meta = state.meta as { seed: number; draws: number; lastReplayed: number; buffer: Record<string, unknown> };
    this.buffer.importState(meta.buffer, state.tensors['buffer.x'], this.inputSize);
    this.seed = meta.seed;
    this.draws = meta.draws;
    this.lastReplayed = meta.lastReplayed;
  }

  dispose(): void {} // the buffer is plain JS memory

  private nextRng(): Rng {
    return seededRng(this.seed, this.draws++);
  }
}

/**
 * `replay`: exact replay from a reservoir buffer of at most `budget` samples (class-balanced
 * quotas with `classBalanced`), the reference generative replay (dgr) is judged against.
 * It stores raw input samples (features, label, task), which the daemon otherwise never does
 * (only `joint` does too): they stay in memory and are written into checkpoints.
 */
export function createReplay(options: StrategyOptions): Strategy {
  const p = readParams('replay', options.params, REPLAY_PARAMS);
  const rehearsal = new ExactReplay(p.budget, p.classBalanced, p.replayBatchSize || undefined, options.inputSize, options.seed + 2);
  return new MlpStrategy('replay', options, new NoRegularizer(), rehearsal);
}

export const REPLAY_STRATEGY = defineStrategy({
  name: 'replay',
  family: 'baseline',
  summary: 'Exact replay from a reservoir buffer of real samples (a fixed budget): the reference DGR is judged against.',
  create: createReplay,
  params: REPLAY_PARAMS,
  capabilities: { storesRawSamples: true },
});
