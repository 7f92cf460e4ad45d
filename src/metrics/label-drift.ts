import { InvariantError } from '../core/errors';
import type { Label } from '../core/types';

export interface LabelDriftOptions {
  /** The task's first this-many labels are its reference distribution. */
  readonly referenceSamples: number;
  /** The recent window compared with the reference. */
  readonly recentSamples: number;
}

/**
 * Label-distribution drift of one task: the total-variation distance, half the sum of absolute
 * differences of label shares, between its recent labels and its first ones. 0 is the same
 * distribution, 1 disjoint labels.
 */
export class LabelDrift {
  readonly referenceSamples: number;
  readonly recentSamples: number;

  private readonly reference = new Map<Label, number>();
  private referenceCount = 0;
  private readonly recent: Label[] = [];
  private next = 0;
  private readonly recentCounts = new Map<Label, number>();

  constructor(options: LabelDriftOptions) {
    this.referenceSamples = options.referenceSamples;
    this.recentSamples = options.recentSamples;
    for (const [key, value] of [['referenceSamples', this.referenceSamples], ['recentSamples', this.recentSamples]] as const) {
      if (!Number.isInteger(value) || value < 1) throw new InvariantError(`LabelDrift: ${key} must be an integer >= 1, got ${value}`);
    }
  }

  observe(label: Label): void {
    if (this.referenceCount < this.referenceSamples) {
      this.reference.set(label, (this.reference.get(label) ?? 0) + 1);
      this.referenceCount += 1;
      return;
    }
    if (this.recent.length < this.recentSamples) {
      this.recent.push(label);
    } else {
      const old = this.recent[this.next] as Label;
      const left = (this.recentCounts.get(old) ?? 0) - 1;
      if (left === 0) this.recentCounts.delete(old);
      else this.recentCounts.set(old, left);
      this.recent[this.next] = label;
      this.next = (this.next + 1) % this.recentSamples;
    }
    this.recentCounts.set(label, (this.recentCounts.get(label) ?? 0) + 1);
  }

  /** Total-variation distance; null until the reference is full and the window half full. */
  distance(): number | null {
    const n = this.recent.length;
    if (this.referenceCount < this.referenceSamples || n < Math.ceil(this.recentSamples / 2)) return null;
    let sum = 0;
    for (const label of new Set([...this.reference.keys(), ...this.recentCounts.keys()])) {
      sum += Math.abs((this.reference.get(label) ?? 0) / this.referenceCount - (this.recentCounts.get(label) ?? 0) / n);
    }
    return sum / 2;
  }
}
