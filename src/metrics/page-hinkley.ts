import { InvariantError } from '../core/errors';
import type { ChangeDetector } from './change-detector';

/** Which changes of the mean Page-Hinkley reports: increases, decreases or both. */
export type PageHinkleyMode = 'up' | 'down' | 'both';
export const PAGE_HINKLEY_MODES: readonly PageHinkleyMode[] = ['up', 'down', 'both'];

export interface PageHinkleyOptions {
  /** No change is reported before this many values. Default 30. */
  readonly minInstances?: number;
  /** Magnitude of change tolerated (subtracted from each deviation). Default 0.005. */
  readonly delta?: number;
  /** The detection threshold lambda on the cumulative deviation. Default 50. */
  readonly threshold?: number;
  /** Forgetting factor of the cumulative deviation. Default 0.9999. */
  readonly alpha?: number;
  /** Default 'both', as River's. */
  readonly mode?: PageHinkleyMode;
}

/**
 * The Page-Hinkley test (Page 1954), with the semantics of River's `river.drift.PageHinkley`
 * (0.26): the running mean includes the current value; the cumulative deviations up and down are
 * faded by alpha and compared with their running extremes; the update after a detection starts
 * the test over.
 */
export class PageHinkley implements ChangeDetector {
  readonly name = 'page-hinkley' as const;
  readonly minInstances: number;
  readonly delta: number;
  readonly threshold: number;
  readonly alpha: number;
  readonly mode: PageHinkleyMode;

  private n = 0;
  private mean = 0;
  private sumIncrease = 0;
  private sumDecrease = 0;
  private minIncrease = Infinity;
  // River starts the running maximum at -1, not -Infinity; kept for the same detections.
  private maxDecrease = -1;
  private detected = false;

  constructor(options: PageHinkleyOptions = {}) {
    this.minInstances = options.minInstances ?? 30;
    this.delta = options.delta ?? 0.005;
    this.threshold = options.threshold ?? 50;
    this.alpha = options.alpha ?? 1 - 0.0001;
    this.mode = options.mode ?? 'both';
    if (!Number.isInteger(this.minInstances) || this.minInstances < 1) throw new InvariantError(`Page-Hinkley: minInstances must be an integer >= 1, got ${this.minInstances}`);
    if (!(this.delta >= 0)) throw new InvariantError(`Page-Hinkley: delta must be >= 0, got ${this.delta}`);
    if (!(this.threshold > 0)) throw new InvariantError(`Page-Hinkley: threshold must be > 0, got ${this.threshold}`);
    if (!(this.alpha > 0 && this.alpha <= 1)) throw new InvariantError(`Page-Hinkley: alpha must be in (0, 1], got ${this.alpha}`);
    if (!PAGE_HINKLEY_MODES.includes(this.mode)) throw new InvariantError(`Page-Hinkley: mode must be one of ${PAGE_HINKLEY_MODES.join(', ')}, got ${String(this.mode)}`);
  }

  get driftDetected(): boolean {
    return this.detected;
  }

  /** The running mean of the values since the last start. */
  get estimate(): number {
    return this.mean;
  }

  update(x: number): boolean {
    if (this.detected) this.reset();
    this.n += 1;
    this.mean += (x - this.mean) / this.n;
    const deviation = x - this.mean;
    this.sumIncrease = this.alpha * this.sumIncrease + deviation - this.delta;
    this.sumDecrease = this.alpha * this.sumDecrease + deviation + this.delta;
    this.minIncrease = Math.min(this.minIncrease, this.sumIncrease);
    this.maxDecrease = Math.max(this.maxDecrease, this.sumDecrease);
    if (this.n >= this.minInstances) {
      const up = this.sumIncrease - this.minIncrease > this.threshold;
      const down = this.maxDecrease - this.sumDecrease > this.threshold;
      this.detected = this.mode === 'up' ? up : this.mode === 'down' ? down : up || down;
    }
    return this.detected;
  }

  private reset(): void {
    this.n = 0;
    this.mean = 0;
    this.sumIncrease = 0;
    this.sumDecrease = 0;
    this.minIncrease = Infinity;
    this.maxDecrease = -1;
    this.detected = false;
  }
}
