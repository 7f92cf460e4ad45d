import { InvariantError } from '../core/errors';
import type { TaskName } from '../core/types';

export interface PrequentialOptions {
  /**
   * Fading factor alpha in (0, 1]: each older prediction weighs alpha times less than the next.
   * 0.999 keeps an effective memory of about 1 / (1 - alpha) = 1000 predictions; 1 is the
   * cumulative accuracy.
   */
  readonly alpha?: number;
}

/** Counts of one task's test-then-train predictions. */
export interface PrequentialCounts {
  readonly correct: number;
  readonly total: number;
}

/** One task's tally, as a checkpoint keeps it. */
export interface TaskTally {
  correct: number;
  total: number;
  /** Faded sum of hits S_n = hit_n + alpha * S_{n-1}. */
  fadedCorrect: number;
  /** Faded count N_n = 1 + alpha * N_{n-1}. */
  fadedTotal: number;
}

/**
 * Prequential (test-then-train) accuracy per task: every labelled sample is predicted before it
 * is trained on, and the hit is recorded here. Keeps the cumulative accuracy and the
 * fading-factor estimate S_n / N_n of Gama, Sebastiao & Rodrigues (2013), which follows the
 * current accuracy of a drifting learner without storing a window of samples.
 */
export class PrequentialAccuracy {
  readonly alpha: number;
  /** Insertion-ordered, so tasks() lists tasks in order of first appearance. */
  private readonly tallies = new Map<TaskName, TaskTally>();

  constructor(options: PrequentialOptions = {}) {
    const alpha = options.alpha ?? 0.999;
    if (!Number.isFinite(alpha) || alpha <= 0 || alpha > 1) {
      throw new InvariantError(`PrequentialAccuracy: alpha must be in (0, 1], got ${alpha}`);
    }
    this.alpha = alpha;
  }

  /** Records one prediction made before training on the sample. */
  record(task: TaskName, correct: boolean): void {
    let tally = this.tallies.get(task);
    if (tally === undefined) {
      tally = { correct: 0, total: 0, fadedCorrect: 0, fadedTotal: 0 };
      this.tallies.set(task, tally);
    }
    const hit = correct ? 1 : 0;
    tally.correct += hit;
    tally.total += 1;
    tally.fadedCorrect = hit + this.alpha * tally.fadedCorrect;
    tally.fadedTotal = 1 + this.alpha * tally.fadedTotal;
  }

  /** Cumulative accuracy correct / total; null before the task's first prediction. */
  accuracy(task: TaskName): number | null {
    const tally = this.tallies.get(task);
    return tally === undefined ? null : tally.correct / tally.total;
  }

  /** Fading-factor accuracy S_n / N_n; null before the task's first prediction. */
  fading(task: TaskName): number | null {
    const tally = this.tallies.get(task);
    return tally === undefined ? null : tally.fadedCorrect / tally.fadedTotal;
  }

  /** Raw counts; zeros for a task never seen. */
  counts(task: TaskName): PrequentialCounts {
    const tally = this.tallies.get(task);
    return { correct: tally?.correct ?? 0, total: tally?.total ?? 0 };
  }

  /** Every task's tally, in order of first appearance (checkpoints). */
  exportState(): Record<TaskName, TaskTally> {
    return Object.fromEntries([...this.tallies].map(([task, t]) => [task, { ...t }]));
  }

  /** Replaces the tallies with a checkpoint's. */
  importState(state: Readonly<Record<TaskName, TaskTally>>): void {
    this.tallies.clear();
    for (const [task, t] of Object.entries(state)) this.tallies.set(task, { correct: t.correct, total: t.total, fadedCorrect: t.fadedCorrect, fadedTotal: t.fadedTotal });
  }

  /** Tasks with at least one prediction, in order of first appearance. */
  tasks(): TaskName[] {
    return [...this.tallies.keys()];
  }
}
