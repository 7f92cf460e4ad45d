/** The detectors that watch a task's prequential error stream (metrics/adwin.ts, metrics/page-hinkley.ts). */
export type ChangeDetectorName = 'adwin' | 'page-hinkley';

/**
 * A change detector on a stream of numbers, with River's semantics (river.base.DriftDetector):
 * update() feeds one value and says whether a change was detected at it; the update after a
 * detection starts the detector over.
 */
export interface ChangeDetector {
  readonly name: ChangeDetectorName;
  /** Feeds one value; true when a change is detected at this value. */
  update(x: number): boolean;
  /** True when the last update detected a change. */
  readonly driftDetected: boolean;
  /** The detector's current estimate of the stream's mean (0 before the first value). */
  readonly estimate: number;
}
