import { Rng } from '../../src/core/rng';

/**
 * Synthetic prequential error streams (1 = the prediction was wrong), the drift detectors' test
 * beds, shared by test/unit/change-detectors.test.ts and the River peer check
 * (bench/peers/drift-peers.ts): Bernoulli draws whose error rate is stationary, jumps, or climbs.
 */
export interface SyntheticStream {
  readonly name: string;
  readonly seed: number;
  /** Index of the first value of the new concept; null for a stationary stream. */
  readonly changeAt: number | null;
  readonly values: readonly number[];
}

export const STREAM_LENGTH = 3000;
export const CHANGE_AT = 1500;
/** The gradual change climbs over this many values. */
export const RAMP = 500;
export const ERROR_BEFORE = 0.1;
export const ERROR_AFTER = 0.4;

function bernoulli(seed: number, rate: (i: number) => number): number[] {
  const rng = new Rng(seed);
  return Array.from({ length: STREAM_LENGTH }, (_, i) => (rng.next() < rate(i) ? 1 : 0));
}

/** Error rate 0.1, jumping to 0.4 at CHANGE_AT. */
export function abruptStream(seed: number): SyntheticStream {
  return { name: 'abrupt', seed, changeAt: CHANGE_AT, values: bernoulli(seed, (i) => (i < CHANGE_AT ? ERROR_BEFORE : ERROR_AFTER)) };
}

/** Error rate 0.1, climbing linearly to 0.4 over RAMP values from CHANGE_AT. */
export function gradualStream(seed: number): SyntheticStream {
  const rate = (i: number) => (i < CHANGE_AT ? ERROR_BEFORE : ERROR_BEFORE + (ERROR_AFTER - ERROR_BEFORE) * Math.min(1, (i - CHANGE_AT) / RAMP));
  return { name: 'gradual', seed, changeAt: CHANGE_AT, values: bernoulli(seed, rate) };
}

/** Error rate 0.2 throughout. */
export function stationaryStream(seed: number): SyntheticStream {
  return { name: 'stationary', seed, changeAt: null, values: bernoulli(seed, () => 0.2) };
}

export const DRIFT_SEEDS: readonly number[] = Array.from({ length: 20 }, (_, i) => i + 1);

/** Every stream of the test bed: each kind with each seed. */
export function syntheticStreams(): SyntheticStream[] {
  return DRIFT_SEEDS.flatMap((seed) => [abruptStream(seed), gradualStream(seed), stationaryStream(seed)]);
}

/** Indexes at which `update` said a change was detected. */
export function detections(values: readonly number[], update: (x: number) => boolean): number[] {
  const at: number[] = [];
  values.forEach((x, i) => update(x) && at.push(i));
  return at;
}
