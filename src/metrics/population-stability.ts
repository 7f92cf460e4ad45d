import { InvariantError } from '../core/errors';

export interface InputDriftOptions {
  /** The task's first this-many inputs are its reference. */
  readonly referenceSamples: number;
  /** The recent window compared with the reference. */
  readonly recentSamples: number;
  /** Quantile bins of each summary statistic. Default 10. */
  readonly bins?: number;
}

/** Laplace smoothing of bin counts, so an empty bin has a finite log ratio. */
const SMOOTHING = 0.5;

/**
 * Input drift of one task: the population stability index (PSI) of its recent inputs against
 * its reference window, computed on two cheap summaries of each input, the mean and the standard
 * deviation of its features. Each summary is cut into quantile bins of the reference;
 * PSI = sum over bins of (recent - reference) * ln(recent / reference) proportions, and the larger
 * of the two PSIs is reported. Rules of thumb: below 0.1 stable, 0.1-0.25 a shift, above 0.25 a
 * large shift. O(features) per input and O(window) memory; blind to changes that keep every
 * input's mean and spread (a pixel permutation, say), which the error detectors still see.
 */
export class InputDrift {
  readonly referenceSamples: number;
  readonly recentSamples: number;
  readonly bins: number;

  private readonly reference: [number[], number[]] = [[], []];
  /** Upper bin edges of each summary, set once the reference is full. */
  private edges: [number[], number[]] | undefined;
  private referenceShares: [number[], number[]] = [[], []];
  /** Recent inputs' bins (ring buffer) and the counts per bin. */
  private readonly recent: [number, number][] = [];
  private next = 0;
  private readonly recentCounts: [number[], number[]];

  constructor(options: InputDriftOptions) {
    this.referenceSamples = options.referenceSamples;
    this.recentSamples = options.recentSamples;
    this.bins = options.bins ?? 10;
    for (const [key, value] of [['referenceSamples', this.referenceSamples], ['recentSamples', this.recentSamples], ['bins', this.bins]] as const) {
      if (!Number.isInteger(value) || value < 2) throw new InvariantError(`InputDrift: ${key} must be an integer >= 2, got ${value}`);
    }
    this.recentCounts = [new Array<number>(this.bins).fill(0), new Array<number>(this.bins).fill(0)];
  }

  observe(x: ArrayLike<number>): void {
    const summary = summarize(x);
    if (this.edges === undefined) {
      this.reference[0].push(summary[0]);
      this.reference[1].push(summary[1]);
      if (this.reference[0].length === this.referenceSamples) this.freezeReference();
      return;
    }
    const edges = this.edges;
    const bins: [number, number] = [binOf(edges[0], summary[0]), binOf(edges[1], summary[1])];
    if (this.recent.length < this.recentSamples) {
      this.recent.push(bins);
    } else {
      const old = this.recent[this.next] as [number, number];
      (this.recentCounts[0][old[0]] as number) -= 1;
      (this.recentCounts[1][old[1]] as number) -= 1;
      this.recent[this.next] = bins;
      this.next = (this.next + 1) % this.recentSamples;
    }
    (this.recentCounts[0][bins[0]] as number) += 1;
    (this.recentCounts[1][bins[1]] as number) += 1;
  }

  /** The PSI of the recent window; null until the reference is full and the window half full. */
  psi(): number | null {
    if (this.edges === undefined || this.recent.length < Math.ceil(this.recentSamples / 2)) return null;
    return Math.max(this.psiOf(0), this.psiOf(1));
  }

  private psiOf(stat: 0 | 1): number {
    const n = this.recent.length;
    let psi = 0;
    for (let b = 0; b < this.bins; b++) {
      const ref = this.referenceShares[stat][b] as number;
      const now = ((this.recentCounts[stat][b] as number) + SMOOTHING) / (n + SMOOTHING * this.bins);
      psi += (now - ref) * Math.log(now / ref);
    }
    return psi;
  }

  private freezeReference(): void {
    const edgesOf = (values: number[]): number[] => {
      const sorted = [...values].sort((a, b) => a - b);
      return Array.from({ length: this.bins - 1 }, (_, k) => sorted[Math.floor(((k + 1) * sorted.length) / this.bins)] as number);
    };
    this.edges = [edgesOf(this.reference[0]), edgesOf(this.reference[1])];
    const sharesOf = (stat: 0 | 1): number[] => {
      const counts = new Array<number>(this.bins).fill(0);
      for (const v of this.reference[stat]) (counts[binOf((this.edges as [number[], number[]])[stat], v)] as number) += 1;
      return counts.map((c) => (c + SMOOTHING) / (this.referenceSamples + SMOOTHING * this.bins));
    };
    this.referenceShares = [sharesOf(0), sharesOf(1)];
    this.reference[0].length = 0;
    this.reference[1].length = 0;
  }
}

/** Mean and standard deviation of the features. */
function summarize(x: ArrayLike<number>): [number, number] {
  let sum = 0;
  let squares = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i] as number;
    sum += v;
    squares += v * v;
  }
  const mean = x.length === 0 ? 0 : sum / x.length;
  return [mean, Math.sqrt(Math.max(0, (x.length === 0 ? 0 : squares / x.length) - mean * mean))];
}

/** The bin of v: the number of upper edges below or at it (values at an edge go up, like quantiles). */
function binOf(edges: readonly number[], v: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((edges[mid] as number) <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
