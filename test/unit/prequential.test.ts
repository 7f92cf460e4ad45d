import assert from 'node:assert/strict';
import { PrequentialAccuracy } from '../../src/metrics/prequential';
import { LifelongError } from '../../src/core/errors';

describe('PrequentialAccuracy', () => {
  it('keeps the cumulative accuracy per task', () => {
    const p = new PrequentialAccuracy();
    for (const hit of [true, false, true, true]) p.record('a', hit);
    p.record('b', false);
    assert.equal(p.accuracy('a'), 0.75);
    assert.equal(p.accuracy('b'), 0);
    assert.deepEqual(p.counts('a'), { correct: 3, total: 4 });
    assert.equal(p.accuracy('never'), null);
    assert.equal(p.fading('never'), null);
    assert.deepEqual(p.counts('never'), { correct: 0, total: 0 });
  });

  it('computes the fading-factor estimate S/N (Gama et al. 2013)', () => {
    // alpha 0.5, hits 1, 0, 1: S = 1, 0.5, 1.25; N = 1, 1.5, 1.75; estimate 1.25 / 1.75 = 5/7.
    const p = new PrequentialAccuracy({ alpha: 0.5 });
    p.record('t', true);
    assert.equal(p.fading('t'), 1);
    p.record('t', false);
    assert.ok(Math.abs((p.fading('t') as number) - 1 / 3) < 1e-12);
    p.record('t', true);
    assert.ok(Math.abs((p.fading('t') as number) - 5 / 7) < 1e-12);
    assert.ok(Math.abs((p.accuracy('t') as number) - 2 / 3) < 1e-12);
  });

  it('equals the cumulative accuracy with alpha = 1 and follows a change with alpha < 1', () => {
    const cumulative = new PrequentialAccuracy({ alpha: 1 });
    const fast = new PrequentialAccuracy({ alpha: 0.99 });
    for (let k = 0; k < 1000; k++) {
      cumulative.record('t', true);
      fast.record('t', true);
    }
    for (let k = 0; k < 1000; k++) {
      cumulative.record('t', false);
      fast.record('t', false);
    }
    assert.ok(Math.abs((cumulative.fading('t') as number) - 0.5) < 1e-12);
    assert.equal(fast.accuracy('t'), 0.5);
    // After 1000 misses with memory ~100, the hits weigh 0.99^1000 ~ 4e-5 of the total.
    assert.ok((fast.fading('t') as number) < 0.001, `fading ${fast.fading('t')}`);
  });

  it('uses alpha 0.999 by default and lists tasks in order of first appearance', () => {
    const p = new PrequentialAccuracy();
    assert.equal(p.alpha, 0.999);
    p.record('z', true);
    p.record('a', true);
    p.record('z', false);
    assert.deepEqual(p.tasks(), ['z', 'a']);
  });

  it('rejects an alpha outside (0, 1]', () => {
    assert.throws(() => new PrequentialAccuracy({ alpha: 0 }), LifelongError);
    assert.throws(() => new PrequentialAccuracy({ alpha: 1.01 }), LifelongError);
    assert.throws(() => new PrequentialAccuracy({ alpha: Number.NaN }), LifelongError);
  });
});
