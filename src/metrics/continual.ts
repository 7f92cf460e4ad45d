import { InvariantError } from '../core/errors';

/** An accuracy in [0, 1], or null where it was not (or could not be) measured. */
export type MaybeAccuracy = number | null;

/** The matrix and every summary derived from it, as plain JSON. */
export interface AccuracyMatrixJSON {
  /** rows[i][j] = R[i][j]; rows never set are empty arrays. */
  readonly rows: MaybeAccuracy[][];
  /** baseline[j] = b[j]. */
  readonly baseline: MaybeAccuracy[];
  readonly averageAccuracy: number | null;
  readonly backwardTransfer: number | null;
  readonly forwardTransfer: number | null;
  readonly forgetting: MaybeAccuracy[];
  readonly averageForgetting: number | null;
}

/**
 * The continual-learning accuracy matrix and the metrics computed from it (pure math: no
 * tensors, no Prometheus; LifelongMetrics publishes them).
 *
 * R[i][j] is the accuracy (0..1) on task j's held-out probe after learning task i, task indexes
 * counting from 0. b[j] is the accuracy on task j of a freshly initialised model, before it
 * learned anything (the forward-transfer baseline).
 *
 * Null handling, everywhere: a null entry (no probe yet, unknown) never counts as 0. Every metric
 * is the mean over the terms that can be computed (both operands non-null), so with a complete
 * matrix it is exactly the published formula, and with holes it averages what is known; when no
 * term can be computed the metric is null. Rows never set, and entries beyond a row's length,
 * are null.
 */
export class AccuracyMatrix {
  private readonly matrix: MaybeAccuracy[][] = [];
  private readonly baseline: MaybeAccuracy[] = [];

  /** Number of rows up to the last one set (last index + 1); 0 when empty. */
  get size(): number {
    return this.matrix.length;
  }

  /** b[j]: accuracy on task j before the model learned anything about it. */
  setBaseline(j: number, accuracy: MaybeAccuracy): void {
    checkIndex(j, 'task index j');
    this.baseline[j] = checkAccuracy(accuracy, `baseline[${j}]`);
  }

  baselineOf(j: number): MaybeAccuracy {
    return this.baseline[j] ?? null;
  }

  /** R[i][*]: accuracies on every task's probe after learning task i (replaces the row). */
  setRow(i: number, accuracies: readonly MaybeAccuracy[]): void {
    checkIndex(i, 'row index i');
    const row = accuracies.map((a, j) => checkAccuracy(a, `R[${i}][${j}]`));
    while (this.matrix.length < i) this.matrix.push([]);
    this.matrix[i] = row;
  }

  /** A copy of row i (empty when never set). */
  row(i: number): MaybeAccuracy[] {
    return [...(this.matrix[i] ?? [])];
  }

  /** A copy of every row. */
  rows(): MaybeAccuracy[][] {
    return this.matrix.map((row) => [...row]);
  }

  /** R[i][j], null when not measured. */
  at(i: number, j: number): MaybeAccuracy {
    return this.matrix[i]?.[j] ?? null;
  }

  /** ACC_i = mean over j <= i of R[i][j]. Null when the row has no known entry. */
  averageAccuracy(i: number = this.lastRow()): number | null {
    const terms: number[] = [];
    for (let j = 0; j <= i; j++) {
      const r = this.at(i, j);
      if (r !== null) terms.push(r);
    }
    return mean(terms);
  }

  /**
   * BWT_i = 1/i * sum_{j<i} (R[i][j] - R[j][j]) (Lopez-Paz & Ranzato 2017): how learning later
   * tasks changed accuracy on earlier ones (negative = forgetting). Null when i == 0.
   */
  backwardTransfer(i: number = this.lastRow()): number | null {
    const terms: number[] = [];
    for (let j = 0; j < i; j++) {
      const now = this.at(i, j);
      const justLearned = this.at(j, j);
      if (now !== null && justLearned !== null) terms.push(now - justLearned);
    }
    return mean(terms);
  }

  /**
   * FWT_i = 1/i * sum_{j=1..i} (R[j-1][j] - b[j]) (Lopez-Paz & Ranzato 2017): how much learning
   * tasks 0..j-1 helped task j before it was trained on. Null when i == 0.
   */
  forwardTransfer(i: number = this.lastRow()): number | null {
    const terms: number[] = [];
    for (let j = 1; j <= i; j++) {
      const before = this.at(j - 1, j);
      const base = this.baselineOf(j);
      if (before !== null && base !== null) terms.push(before - base);
    }
    return mean(terms);
  }

  /**
   * Forgetting of each task j < i after learning task i (Chaudhry et al. 2018):
   * f_j = max_{l<i} R[l][j] - R[i][j]. The max runs over l = j..i-1 only: entries with l < j were
   * measured before task j was learned, and Chaudhry et al. define a_{l,j} for l >= j only.
   * Entry j is null when R[i][j] or every R[l][j] is unknown. Index i itself is not included.
   */
  forgetting(i: number = this.lastRow()): MaybeAccuracy[] {
    const result: MaybeAccuracy[] = [];
    for (let j = 0; j < i; j++) {
      const now = this.at(i, j);
      let best: number | null = null;
      for (let l = j; l < i; l++) {
        const r = this.at(l, j);
        if (r !== null && (best === null || r > best)) best = r;
      }
      result.push(now === null || best === null ? null : best - now);
    }
    return result;
  }

  /** Mean of forgetting(i) over its known entries; null when i == 0 or none is known. */
  averageForgetting(i: number = this.lastRow()): number | null {
    return mean(this.forgetting(i).filter((f): f is number => f !== null));
  }

  toJSON(): AccuracyMatrixJSON {
    const baseline: MaybeAccuracy[] = [];
    for (let j = 0; j < this.baseline.length; j++) baseline.push(this.baselineOf(j));
    return {
      rows: this.rows(),
      baseline,
      averageAccuracy: this.averageAccuracy(),
      backwardTransfer: this.backwardTransfer(),
      forwardTransfer: this.forwardTransfer(),
      forgetting: this.forgetting(),
      averageForgetting: this.averageForgetting(),
    };
  }

  /** Rebuilds a matrix from toJSON() output (the derived fields are recomputed, not trusted). */
  static fromJSON(json: Pick<AccuracyMatrixJSON, 'rows' | 'baseline'>): AccuracyMatrix {
    const matrix = new AccuracyMatrix();
    json.rows.forEach((row, i) => matrix.setRow(i, row));
    json.baseline.forEach((b, j) => matrix.setBaseline(j, b));
    return matrix;
  }

  /** Default row for the metrics: the last row set (-1 when empty, making every metric null). */
  private lastRow(): number {
    return this.matrix.length - 1;
  }
}

function mean(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

function checkIndex(index: number, what: string): void {
  if (!Number.isInteger(index) || index < 0) {
    throw new InvariantError(`AccuracyMatrix: ${what} must be a non-negative integer, got ${index}`);
  }
}

function checkAccuracy(value: MaybeAccuracy | undefined, where: string): MaybeAccuracy {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new InvariantError(`AccuracyMatrix: ${where} must be an accuracy in [0, 1] or null, got ${value}`);
  }
  return value;
}
