import assert from 'node:assert/strict';
import { AccuracyMatrix } from '../../src/metrics/continual';
import { LifelongError } from '../../src/core/errors';

const EPS = 1e-12;
function close(actual: number | null, expected: number, what: string): void {
  assert.notEqual(actual, null, `${what} is null`);
  assert.ok(Math.abs((actual as number) - expected) < EPS, `${what}: ${actual} != ${expected}`);
}

/**
 * The worked example (rows: after learning task i; columns: probe of task j):
 *
 *          j=0   j=1   j=2
 *   i=0   0.90  0.10  0.20
 *   i=1   0.95  0.80  0.30
 *   i=2   0.60  0.60  0.90
 *   b     0.10  0.10  0.20     (fresh model)
 *
 * ACC_0 = 0.9;  ACC_1 = (0.95 + 0.8) / 2 = 0.875;  ACC_2 = (0.6 + 0.6 + 0.9) / 3 = 0.7
 * BWT_1 = (0.95 - 0.9) / 1 = 0.05
 * BWT_2 = ((0.6 - 0.9) + (0.6 - 0.8)) / 2 = (-0.3 - 0.2) / 2 = -0.25
 * FWT_1 = (R01 - b1) = 0.1 - 0.1 = 0
 * FWT_2 = ((R01 - b1) + (R12 - b2)) / 2 = (0 + 0.1) / 2 = 0.05
 * forgetting_2: j=0: max(R00, R10) - R20 = 0.95 - 0.6 = 0.35   (max is not the diagonal here)
 *               j=1: max(R11)      - R21 = 0.8  - 0.6 = 0.2
 *   average = 0.275
 * forgetting_1: j=0: R00 - R10 = 0.9 - 0.95 = -0.05 (negative: it improved)
 */
function example(): AccuracyMatrix {
  const m = new AccuracyMatrix();
  m.setBaseline(0, 0.1);
  m.setBaseline(1, 0.1);
  m.setBaseline(2, 0.2);
  m.setRow(0, [0.9, 0.1, 0.2]);
  m.setRow(1, [0.95, 0.8, 0.3]);
  m.setRow(2, [0.6, 0.6, 0.9]);
  return m;
}

describe('AccuracyMatrix', () => {
  it('computes average accuracy per row, the last row by default', () => {
    const m = example();
    close(m.averageAccuracy(0), 0.9, 'ACC_0');
    close(m.averageAccuracy(1), 0.875, 'ACC_1');
    close(m.averageAccuracy(2), 0.7, 'ACC_2');
    close(m.averageAccuracy(), 0.7, 'ACC default');
  });

  it('computes backward transfer (Lopez-Paz & Ranzato), null for the first task', () => {
    const m = example();
    assert.equal(m.backwardTransfer(0), null);
    close(m.backwardTransfer(1), 0.05, 'BWT_1');
    close(m.backwardTransfer(2), -0.25, 'BWT_2');
    close(m.backwardTransfer(), -0.25, 'BWT default');
  });

  it('computes forward transfer against the fresh-model baseline', () => {
    const m = example();
    assert.equal(m.forwardTransfer(0), null);
    close(m.forwardTransfer(1), 0, 'FWT_1');
    close(m.forwardTransfer(2), 0.05, 'FWT_2');
  });

  it('computes forgetting from the best earlier accuracy, not the diagonal', () => {
    const m = example();
    const f2 = m.forgetting(2);
    assert.equal(f2.length, 2);
    close(f2[0] as number, 0.35, 'f_2[0]');
    close(f2[1] as number, 0.2, 'f_2[1]');
    close(m.averageForgetting(2), 0.275, 'avg f_2');
    const f1 = m.forgetting(1);
    close(f1[0] as number, -0.05, 'f_1[0]');
    assert.deepEqual(m.forgetting(0), []);
    assert.equal(m.averageForgetting(0), null);
  });

  it('ignores accuracies measured before a task was learned when computing forgetting', () => {
    const m = example();
    // A lucky R[0][1] = 0.99 before task 1 was trained must not count as knowledge forgotten.
    m.setRow(0, [0.9, 0.99, 0.2]);
    close(m.forgetting(2)[1] as number, 0.8 - 0.6, 'f_2[1]');
    // It does change forward transfer: FWT_2 = ((0.99 - 0.1) + (0.3 - 0.2)) / 2 = 0.495.
    close(m.forwardTransfer(2), 0.495, 'FWT_2');
  });

  it('skips null entries: each metric averages the terms it can compute', () => {
    const m = example();
    m.setRow(2, [null, 0.6, 0.9]);
    m.setBaseline(2, null);
    // ACC_2 = (0.6 + 0.9) / 2; BWT_2 keeps only j=1: 0.6 - 0.8; FWT_2 keeps only j=1: 0.1 - 0.1.
    close(m.averageAccuracy(2), 0.75, 'ACC_2');
    close(m.backwardTransfer(2), -0.2, 'BWT_2');
    close(m.forwardTransfer(2), 0, 'FWT_2');
    const f = m.forgetting(2);
    assert.equal(f[0], null);
    close(f[1] as number, 0.2, 'f_2[1]');
    close(m.averageForgetting(2), 0.2, 'avg f_2');
  });

  it('gives null metrics for an empty matrix and for rows never set', () => {
    const empty = new AccuracyMatrix();
    assert.equal(empty.size, 0);
    assert.equal(empty.averageAccuracy(), null);
    assert.equal(empty.backwardTransfer(), null);
    assert.equal(empty.forwardTransfer(), null);
    assert.deepEqual(empty.forgetting(), []);
    const sparse = new AccuracyMatrix();
    sparse.setRow(2, [0.5, 0.5, 0.5]);
    assert.equal(sparse.size, 3);
    assert.deepEqual(sparse.row(1), []);
    assert.equal(sparse.backwardTransfer(), null, 'no diagonal known');
    close(sparse.averageAccuracy(), 0.5, 'ACC');
  });

  it('returns copies from row() and rows()', () => {
    const m = example();
    const r = m.row(0);
    r[0] = 0;
    const all = m.rows();
    (all[1] as (number | null)[])[1] = 0;
    assert.equal(m.at(0, 0), 0.9);
    assert.equal(m.at(1, 1), 0.8);
  });

  it('rejects accuracies outside [0, 1] and bad indexes', () => {
    const m = new AccuracyMatrix();
    assert.throws(() => m.setRow(0, [1.5]), LifelongError);
    assert.throws(() => m.setRow(0, [Number.NaN]), /R\[0\]\[0\]/);
    assert.throws(() => m.setRow(-1, [0.5]), LifelongError);
    assert.throws(() => m.setBaseline(1.5, 0.5), LifelongError);
    assert.throws(() => m.setBaseline(0, -0.1), LifelongError);
  });

  it('serialises to JSON with the derived metrics and rebuilds from it', () => {
    const m = example();
    const json = JSON.parse(JSON.stringify(m));
    assert.deepEqual(json.rows, m.rows());
    assert.deepEqual(json.baseline, [0.1, 0.1, 0.2]);
    close(json.backwardTransfer, -0.25, 'json BWT');
    close(json.averageForgetting, 0.275, 'json avg forgetting');
    const back = AccuracyMatrix.fromJSON(json);
    assert.deepEqual(back.toJSON(), m.toJSON());
  });
});
