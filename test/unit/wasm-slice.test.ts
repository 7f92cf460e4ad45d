import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/backend/backend';
import { installWasmSliceFix, isWasmSliceFixInstalled } from '../../src/backend/wasm-slice';

const quiet = (): void => {};

/** Slices and splits of a 3-D tensor and a flat buffer: contiguous runs (the fix's path) and strided ones (the original's). */
function run(): Float32Array[] {
  return tf.tidy(() => {
    const cube = tf.range(0, 4 * 5 * 6).reshape([4, 5, 6]);
    const flat = tf.range(0, 1000).toFloat();
    const results = [
      tf.slice(flat, 16, 100),
      tf.slice(flat, 999, 1),
      tf.slice(cube, [1, 0, 0], [2, -1, -1]),
      tf.slice(cube, [2, 3, 0], [1, 2, 6]),
      tf.slice(cube, [0, 1, 2], [3, 2, 2]),
      ...tf.split(flat, [400, 16, 584]),
      ...tf.split(cube, [1, 3], 0),
      ...tf.split(cube, [2, 4], 2),
    ];
    return results.map((t) => t.dataSync() as Float32Array);
  });
}

describe("wasm slice fix: Slice and SplitV copy only their part", () => {
  let previousBackend: string | undefined;
  let reference: Float32Array[];

  before(async () => {
    previousBackend = tf.getBackend();
    await selectBackend('cpu', quiet);
    reference = run();
    await selectBackend('wasm', quiet);
  });

  after(async () => {
    if (previousBackend) await tf.setBackend(previousBackend);
  });

  it('is installed when wasm is selected, once', () => {
    assert.ok(isWasmSliceFixInstalled());
    const patched = tf.getKernel(tf.Slice, 'wasm');
    assert.equal(installWasmSliceFix(), false);
    assert.equal(tf.getKernel(tf.Slice, 'wasm'), patched);
  });

  it('gives the cpu backend\'s values, contiguous or strided, and leaks no tensor', () => {
    const before = tf.memory().numTensors;
    const actual = run();
    assert.equal(tf.memory().numTensors, before);
    assert.equal(actual.length, reference.length);
    actual.forEach((a, i) => assert.deepEqual(Array.from(a), Array.from(reference[i] as Float32Array), `result ${i}`));
  });

  it('copies no more than its part: slicing a large buffer costs about its part, not the buffer', () => {
    const big = tf.zeros([4_000_000]);
    try {
      const time = (size: number) => {
        const start = process.hrtime.bigint();
        for (let i = 0; i < 20; i++) tf.slice(big, 16, size).dispose();
        return Number(process.hrtime.bigint() - start);
      };
      time(16);
      // 20 copies of 16 MB would take tens of ms; of 64 bytes, well under one.
      assert.ok(time(16) < 10_000_000, 'a small slice of a 16 MB buffer takes under 10 ms for 20');
    } finally {
      big.dispose();
    }
  });
});
