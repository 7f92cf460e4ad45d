import assert from 'node:assert/strict';
import { DriftTracker, type LayerDrift } from '../../src/metrics/drift';
import { LifelongError } from '../../src/core/errors';

function weights(entries: Record<string, number[]>): Map<string, Float32Array> {
  return new Map(Object.entries(entries).map(([k, v]) => [k, Float32Array.from(v)]));
}
function find(result: readonly LayerDrift[], layer: string, sinceTask: number): LayerDrift {
  const entry = result.find((e) => e.layer === layer && e.sinceTask === sinceTask);
  assert.ok(entry, `no drift entry for ${layer} since ${sinceTask}`);
  return entry;
}

describe('DriftTracker', () => {
  it('measures L2 and relative drift from each earlier snapshot', () => {
    const t = new DriftTracker();
    t.snapshot(0, weights({ dense1: [3, 4], bias1: [0, 0] }));
    t.snapshot(1, weights({ dense1: [3, 0], bias1: [1, 2] }));
    const result = t.drift(weights({ dense1: [0, 0], bias1: [1, 0] }));
    assert.equal(result.length, 4);
    // ||(0,0) - (3,4)|| = 5, ||(3,4)|| = 5.
    assert.deepEqual(find(result, 'dense1', 0), { layer: 'dense1', sinceTask: 0, l2: 5, relative: 1 });
    // ||(0,0) - (3,0)|| = 3, ||(3,0)|| = 3.
    assert.deepEqual(find(result, 'dense1', 1), { layer: 'dense1', sinceTask: 1, l2: 3, relative: 1 });
    // ||(1,0) - (0,0)|| = 1, snapshot norm 0: relative undefined.
    assert.deepEqual(find(result, 'bias1', 0), { layer: 'bias1', sinceTask: 0, l2: 1, relative: null });
    // ||(1,0) - (1,2)|| = 2, ||(1,2)|| = sqrt(5).
    const b1 = find(result, 'bias1', 1);
    assert.equal(b1.l2, 2);
    assert.ok(Math.abs((b1.relative as number) - 2 / Math.sqrt(5)) < 1e-12);
  });

  it('is zero right after the snapshot and keeps a copy, not the caller\'s array', () => {
    const t = new DriftTracker();
    const live = weights({ w: [1, 2, 3] });
    t.snapshot(0, live);
    assert.equal(find(t.drift(live), 'w', 0).l2, 0);
    (live.get('w') as Float32Array)[0] = 4; // the strategy trains on in place
    assert.equal(find(t.drift(live), 'w', 0).l2, 3);
  });

  it('reports null for a layer whose size changed and skips layers a snapshot lacks', () => {
    const t = new DriftTracker();
    t.snapshot(0, weights({ trunk: [1, 1], head: [1, 2] }));
    const result = t.drift(weights({ trunk: [1, 1], head: [1, 2, 3, 4], column1: [5] }));
    assert.deepEqual(find(result, 'head', 0), { layer: 'head', sinceTask: 0, l2: null, relative: null });
    assert.equal(find(result, 'trunk', 0).l2, 0);
    assert.equal(result.some((e) => e.layer === 'column1'), false);
  });

  it('replaces a snapshot of the same task and lists snapshotted tasks in order', () => {
    const t = new DriftTracker();
    t.snapshot(2, weights({ w: [0] }));
    t.snapshot(0, weights({ w: [0] }));
    t.snapshot(2, weights({ w: [10] }));
    assert.deepEqual(t.snapshotTasks(), [0, 2]);
    const result = t.drift(weights({ w: [1] }));
    assert.deepEqual(result.map((e) => [e.sinceTask, e.l2]), [[0, 1], [2, 9]]);
    assert.throws(() => t.snapshot(-1, weights({ w: [0] })), LifelongError);
  });

  it('accumulates in double precision over large layers', () => {
    const n = 200_000;
    const t = new DriftTracker();
    t.snapshot(0, new Map([['big', new Float32Array(n)]]));
    const now = new Float32Array(n).fill(0.001);
    // sqrt(n * 1e-6) with float32 0.001 per element.
    const expected = Math.sqrt(n) * Math.fround(0.001);
    const l2 = find(t.drift(new Map([['big', now]])), 'big', 0).l2 as number;
    assert.ok(Math.abs(l2 - expected) / expected < 1e-9, `${l2} vs ${expected}`);
  });
});
