import { InvariantError } from '../core/errors';
import type { ChangeDetector } from './change-detector';

export interface AdwinOptions {
  /** Significance of a cut: smaller detects fewer, surer changes. Default 0.002. */
  readonly delta?: number;
  /** Cuts are checked every `clock` values. Default 32. */
  readonly clock?: number;
  /** Buckets of each size kept before two are merged into one of the next size. Default 5. */
  readonly maxBuckets?: number;
  /** Neither side of a cut may be shorter than this. Default 5. */
  readonly minWindowLength?: number;
  /** No cut is checked before the window holds more than this many values. Default 10. */
  readonly gracePeriod?: number;
}

/** One row of the exponential histogram: up to maxBuckets + 1 buckets of 2^row values each, oldest first. */
interface BucketRow {
  readonly totals: number[];
  readonly variances: number[];
}

/**
 * ADWIN2, adaptive windowing (Bifet & Gavaldà 2007), with the semantics of River's
 * `river.drift.ADWIN` (0.26: rust_src/adwin.rs, a port of adwin_c.pyx): the same bucket
 * compression, the same cuts visited in the same order, oldest first, the same Hoeffding-style
 * bound, and a detector that starts over on the update after a detection. So the same stream
 * gives River's detection positions (bench/peers/river_drift.py checks it).
 */
export class Adwin implements ChangeDetector {
  readonly name = 'adwin' as const;
  readonly delta: number;
  readonly clock: number;
  readonly maxBuckets: number;
  readonly minWindowLength: number;
  readonly gracePeriod: number;

  private rows: BucketRow[] = [];
  private width = 0;
  private total = 0;
  private variance = 0;
  private tick = 0;
  private detected = false;
  private detections = 0;

  constructor(options: AdwinOptions = {}) {
    this.delta = options.delta ?? 0.002;
    this.clock = options.clock ?? 32;
    this.maxBuckets = options.maxBuckets ?? 5;
    this.minWindowLength = options.minWindowLength ?? 5;
    this.gracePeriod = options.gracePeriod ?? 10;
    if (!(this.delta > 0 && this.delta < 1)) throw new InvariantError(`ADWIN: delta must be in (0, 1), got ${this.delta}`);
    for (const [key, value, min] of [['clock', this.clock, 1], ['maxBuckets', this.maxBuckets, 1], ['minWindowLength', this.minWindowLength, 1], ['gracePeriod', this.gracePeriod, 0]] as const) {
      if (!Number.isInteger(value) || value < min) throw new InvariantError(`ADWIN: ${key} must be an integer >= ${min}, got ${value}`);
    }
    this.reset();
  }

  get driftDetected(): boolean {
    return this.detected;
  }

  /** Mean of the values in the window. */
  get estimate(): number {
    return this.width === 0 ? 0 : this.total / this.width;
  }

  /** Values in the window. */
  get windowWidth(): number {
    return this.width;
  }

  /** Changes detected since construction (River's n_detections counts them since the last reset). */
  get detectionCount(): number {
    return this.detections;
  }

  update(x: number): boolean {
    if (this.detected) this.reset();
    this.insert(x);
    this.detected = this.detectChange();
    if (this.detected) this.detections += 1;
    return this.detected;
  }

  private reset(): void {
    this.rows = [{ totals: [], variances: [] }];
    this.width = 0;
    this.total = 0;
    this.variance = 0;
    this.tick = 0;
    this.detected = false;
  }

  private insert(value: number): void {
    const row = this.rows[0] as BucketRow;
    row.totals.push(value);
    row.variances.push(0);
    this.width += 1;
    if (this.width > 1) {
      const d = value - this.total / (this.width - 1);
      this.variance += ((this.width - 1) * d * d) / this.width;
    }
    this.total += value;
    this.compress();
  }

  /** Merges the two oldest buckets of a row that overflowed into the next row, cascading. */
  private compress(): void {
    for (let idx = 0; idx < this.rows.length; idx++) {
      const row = this.rows[idx] as BucketRow;
      if (row.totals.length !== this.maxBuckets + 1) return;
      if (idx + 1 === this.rows.length) this.rows.push({ totals: [], variances: [] });
      const next = this.rows[idx + 1] as BucketRow;
      const n = 2 ** idx;
      const [t1, t2] = row.totals as [number, number];
      const [v1, v2] = row.variances as [number, number];
      const d = t1 / n - t2 / n;
      next.totals.push(t1 + t2);
      next.variances.push(v1 + v2 + (n * n * d * d) / (2 * n));
      row.totals.splice(0, 2);
      row.variances.splice(0, 2);
      if (next.totals.length <= this.maxBuckets) return;
    }
  }

  /** Drops the oldest bucket; returns how many values it held. */
  private deleteOldest(): number {
    const last = this.rows.length - 1;
    const row = this.rows[last] as BucketRow;
    const n = 2 ** last;
    const u = row.totals[0] as number;
    const v = row.variances[0] as number;
    this.width -= n;
    this.total -= u;
    if (this.width > 0) {
      const d = u / n - this.total / this.width;
      this.variance -= v + (n * this.width * d * d) / (n + this.width);
    } else {
      this.variance = 0;
    }
    row.totals.shift();
    row.variances.shift();
    if (row.totals.length === 0) this.rows.pop();
    return n;
  }

  private detectChange(): boolean {
    let changed = false;
    this.tick += 1;
    if (this.tick % this.clock !== 0 || this.width <= this.gracePeriod) return false;
    let reduce = true;
    while (reduce) {
      reduce = false;
      let n0 = 0;
      let n1 = this.width;
      let u0 = 0;
      let u1 = this.total;
      scan: for (let idx = this.rows.length - 1; idx >= 0; idx--) {
        const row = this.rows[idx] as BucketRow;
        const size = 2 ** idx;
        for (let k = 0; k < row.totals.length; k++) {
          const u = row.totals[k] as number;
          n0 += size;
          n1 -= size;
          u0 += u;
          u1 -= u;
          // The newest bucket would leave nothing after the cut.
          if (idx === 0 && k === row.totals.length - 1) break scan;
          if (n1 >= this.minWindowLength && n0 >= this.minWindowLength && this.cuts(n0, n1, u0 / n0 - u1 / n1)) {
            reduce = true;
            changed = true;
            if (this.width > 0) this.deleteOldest();
            break scan;
          }
        }
      }
    }
    return changed;
  }

  private cuts(n0: number, n1: number, deltaMean: number): boolean {
    const deltaPrime = Math.log((2 * Math.log(this.width)) / this.delta);
    const mRecip = 1 / (n0 - this.minWindowLength + 1) + 1 / (n1 - this.minWindowLength + 1);
    const epsilon = Math.sqrt(2 * mRecip * (this.variance / this.width) * deltaPrime) + (2 / 3) * deltaPrime * mRecip;
    return Math.abs(deltaMean) > epsilon;
  }
}
