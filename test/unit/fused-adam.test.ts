import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../src/core/rng';
import type { TensorSnapshot } from '../../src/core/tensor-snapshot';
import { FLAT_ALIGNMENT, FlatLayout } from '../../src/models/flat-layout';
import { FusedAdam } from '../../src/models/fused-adam';
import { gradientStep, type StepGradient } from '../../src/models/gradient-step';
import { exportOptimizer, growOptimizerSlots, importOptimizer } from '../../src/models/optimizer-state';

/** Every byte of a tensor list: FusedAdam must match tfjs's Adam exactly, not approximately. */
const bytes = (tensors: readonly tf.Tensor[]) => tensors.map((t) => Buffer.from(new Float32Array(t.dataSync()).buffer).toString('hex'));

/** An optimizer's slots as exported to a checkpoint, byte for byte. */
async function slots(optimizer: tf.Optimizer): Promise<Record<string, string>> {
  const tensors: Record<string, TensorSnapshot> = {};
  await exportOptimizer(optimizer, 'o', tensors);
  return Object.fromEntries(Object.entries(tensors).map(([k, s]) => [k, `${s.shape}:${Buffer.from(s.data.buffer, s.data.byteOffset, s.data.byteLength).toString('hex')}`]));
}

/** A small MLP's variables (two layers, kernels and biases), the same values twice. */
function twinVariables(seed: number, sizes = [12, 8, 3]): [tf.Variable[], tf.Variable[]] {
  const rng = new Rng(seed);
  const values: tf.Tensor[] = [];
  for (let l = 1; l < sizes.length; l++) {
    const [i, o] = [sizes[l - 1] as number, sizes[l] as number];
    values.push(tf.tensor2d(Array.from({ length: i * o }, () => rng.next() - 0.5), [i, o]), tf.tensor1d(Array.from({ length: o }, () => rng.next() - 0.5)));
  }
  const twins: [tf.Variable[], tf.Variable[]] = [values.map((v) => tf.variable(v)), values.map((v) => tf.variable(v))];
  tf.dispose(values);
  return twins;
}

/** A classification objective over the MLP's variables on a fixed batch. */
function objective(variables: readonly tf.Variable[], x: tf.Tensor2D, y: tf.Tensor2D) {
  return () => {
    let h: tf.Tensor2D = x;
    for (let l = 0; l < variables.length; l += 2) {
      h = tf.add(tf.matMul(h, variables[l] as tf.Tensor2D), variables[l + 1] as tf.Tensor1D);
      if (l + 2 < variables.length) h = tf.relu(h);
    }
    const loss = tf.losses.softmaxCrossEntropy(y, h) as tf.Scalar;
    return { objective: loss, loss };
  };
}

describe('FusedAdam: tfjs Adam in one flat buffer', () => {
  let x: tf.Tensor2D;
  let y: tf.Tensor2D;
  beforeEach(() => {
    const rng = new Rng(3);
    x = tf.tensor2d(Array.from({ length: 16 * 12 }, () => rng.next() * 2 - 1), [16, 12]);
    y = tf.oneHot(tf.tensor1d(Array.from({ length: 16 }, (_, i) => i % 3), 'int32'), 3) as tf.Tensor2D;
  });
  afterEach(() => tf.dispose([x, y]));

  for (const [beta1, beta2] of [
    [0.9, 0.999],
    [0.5, 0.9],
  ] as const) {
    it(`a 100-step trajectory is byte-identical to tf.train.adam's (betas ${beta1}, ${beta2}): weights, slots, gradients`, async () => {
      const [reference, fused] = twinVariables(7);
      const adam = tf.train.adam(0.01, beta1, beta2);
      const fusedAdam = new FusedAdam(0.01, beta1, beta2);
      try {
        for (let step = 0; step < 100; step++) {
          const read = step % 10 === 9;
          const a = gradientStep({ optimizer: adam, variables: reference, objective: objective(reference, x, y), read });
          const b = gradientStep({ optimizer: fusedAdam, variables: fused, objective: objective(fused, x, y), read });
          assert.deepEqual(b.reading, a.reading, `loss at step ${step}`);
          assert.deepEqual(bytes(fused), bytes(reference), `weights after step ${step}`);
        }
        assert.deepEqual(await slots(fusedAdam), await slots(adam));
        assert.equal(fusedAdam.iterations, adam.iterations);
        const grads = (vs: tf.Variable[]) => tf.tidy(() => Object.values(tf.variableGrads(() => objective(vs, x, y)().objective, vs).grads));
        const [ga, gb] = [grads(reference), grads(fused)];
        assert.deepEqual(bytes(gb), bytes(ga), 'gradients after 100 steps');
        tf.dispose([ga, gb]);
      } finally {
        adam.dispose();
        fusedAdam.dispose();
        tf.dispose([reference, fused]);
      }
    });
  }

  it("follows tfjs's position rules: missing gradients leave moments alone, a longer list adds zero moments, a shorter one leaves the rest", async () => {
    const [reference, fused] = twinVariables(9);
    const adam = tf.train.adam(0.02, 0.9, 0.999);
    const fusedAdam = new FusedAdam(0.02, 0.9, 0.999);
    const masked = (keep: readonly boolean[]) => ({ transformGradients: (g: readonly StepGradient[]) => g.map((t, i) => (keep[i] ? t : undefined)) });
    const plan: { count: number; keep: boolean[] }[] = [
      { count: 2, keep: [true, true] },
      { count: 4, keep: [true, false, true, true] },
      { count: 4, keep: [false, true, false, true] },
      { count: 3, keep: [true, true, true] },
      { count: 4, keep: [true, true, true, true] },
    ];
    try {
      for (const [step, { count, keep }] of plan.entries()) {
        // The objective always uses every variable; only the first `count` are trained.
        gradientStep({ optimizer: adam, variables: reference.slice(0, count), objective: objective(reference, x, y), hooks: masked(keep) });
        gradientStep({ optimizer: fusedAdam, variables: fused.slice(0, count), objective: objective(fused, x, y), hooks: masked(keep) });
        assert.deepEqual(bytes(fused), bytes(reference), `weights after step ${step}`);
        assert.deepEqual(await slots(fusedAdam), await slots(adam), `slots after step ${step}`);
      }
    } finally {
      adam.dispose();
      fusedAdam.dispose();
      tf.dispose([reference, fused]);
    }
  });

  it('widens a grown position as tfjs Adam does (growOptimizerSlots), and keeps training identically', async () => {
    const [reference, fused] = twinVariables(4);
    const adam = tf.train.adam(0.01, 0.9, 0.999);
    const fusedAdam = new FusedAdam(0.01, 0.9, 0.999);
    const grow = (vs: tf.Variable[], optimizer: tf.Optimizer) => {
      // The output layer (kernel [8,3], bias [3]) gains a unit.
      const kernel = tf.tidy(() => tf.variable(tf.pad(vs[2] as tf.Tensor2D, [[0, 0], [0, 1]], 0.1)));
      const bias = tf.tidy(() => tf.variable(tf.pad(vs[3] as tf.Tensor1D, [[0, 1]])));
      tf.dispose([vs[2] as tf.Variable, vs[3] as tf.Variable]);
      vs[2] = kernel;
      vs[3] = bias;
      growOptimizerSlots(optimizer, 2, kernel);
      growOptimizerSlots(optimizer, 3, bias);
    };
    const y4 = tf.pad(y, [[0, 0], [0, 1]]);
    try {
      for (let step = 0; step < 3; step++) {
        gradientStep({ optimizer: adam, variables: reference, objective: objective(reference, x, y) });
        gradientStep({ optimizer: fusedAdam, variables: fused, objective: objective(fused, x, y) });
      }
      const count = tf.memory().numTensors;
      grow(reference, adam);
      grow(fused, fusedAdam);
      assert.equal(tf.memory().numTensors, count, 'growing frees the old moments');
      assert.deepEqual(await slots(fusedAdam), await slots(adam));
      for (let step = 0; step < 5; step++) {
        gradientStep({ optimizer: adam, variables: reference, objective: objective(reference, x, y4) });
        gradientStep({ optimizer: fusedAdam, variables: fused, objective: objective(fused, x, y4) });
        assert.deepEqual(bytes(fused), bytes(reference), `weights after step ${step} past growth`);
      }
      assert.deepEqual(await slots(fusedAdam), await slots(adam));
    } finally {
      y4.dispose();
      adam.dispose();
      fusedAdam.dispose();
      tf.dispose([reference, fused]);
    }
  });

  it("reads tfjs Adam's checkpoint slots and writes ones tfjs Adam reads: both continue identically", async () => {
    const [reference, fused] = twinVariables(5);
    const adam = tf.train.adam(0.01, 0.9, 0.999);
    const tensors: Record<string, TensorSnapshot> = {};
    const restoredFused = new FusedAdam(0.01, 0.9, 0.999);
    const restoredAdam = tf.train.adam(0.01, 0.9, 0.999);
    try {
      for (let step = 0; step < 7; step++) gradientStep({ optimizer: adam, variables: reference, objective: objective(reference, x, y) });
      reference.forEach((v, i) => fused[i]?.assign(v));
      const count = await exportOptimizer(adam, 'o', tensors);
      await importOptimizer(restoredFused, 'o', count, tensors);
      assert.deepEqual(await slots(restoredFused), await slots(adam), 'FusedAdam reads the old layout');
      for (let step = 0; step < 7; step++) {
        gradientStep({ optimizer: adam, variables: reference, objective: objective(reference, x, y) });
        gradientStep({ optimizer: restoredFused, variables: fused, objective: objective(fused, x, y) });
      }
      assert.deepEqual(bytes(fused), bytes(reference), 'a restored FusedAdam continues as the original');
      const back: Record<string, TensorSnapshot> = {};
      await importOptimizer(restoredAdam, 'o', await exportOptimizer(restoredFused, 'o', back), back);
      assert.deepEqual(await slots(restoredAdam), await slots(restoredFused), 'tfjs Adam reads what FusedAdam writes');
    } finally {
      adam.dispose();
      restoredFused.dispose();
      restoredAdam.dispose();
      tf.dispose([reference, fused]);
    }
  });

  it('holds four tensors (two flat moments, two beta powers) whatever the variable count, frees every step\'s and all on dispose', async () => {
    const [variables, others] = twinVariables(6);
    tf.dispose(others);
    const before = tf.memory().numTensors;
    const fusedAdam = new FusedAdam(0.01, 0.9, 0.999);
    try {
      gradientStep({ optimizer: fusedAdam, variables, objective: objective(variables, x, y) });
      assert.equal(tf.memory().numTensors, before + 4);
      for (let step = 0; step < 5; step++) gradientStep({ optimizer: fusedAdam, variables, objective: objective(variables, x, y), read: true });
      assert.equal(tf.memory().numTensors, before + 4, 'steps leak nothing');
      await slots(fusedAdam);
      assert.equal(tf.memory().numTensors, before + 4, 'exporting leaks nothing');
      const tensors: Record<string, TensorSnapshot> = {};
      await importOptimizer(fusedAdam, 'o', await exportOptimizer(fusedAdam, 'o', tensors), tensors);
      assert.equal(tf.memory().numTensors, before + 4, 'importing leaks nothing');
    } finally {
      fusedAdam.dispose();
    }
    assert.equal(tf.memory().numTensors, before, 'dispose frees everything');
    tf.dispose(variables);
  });
});

describe('FlatLayout: variables in one aligned flat buffer', () => {
  it('starts every segment at a multiple of 16 floats, pads with zeros and reads each back in its shape, leaking nothing', () => {
    const layout = new FlatLayout([[3, 5], [7], [16], [2, 1]]);
    assert.deepEqual(layout.segments.map((s) => s.offset), [0, 16, 32, 48]);
    assert.ok(layout.segments.every((s) => s.offset % FLAT_ALIGNMENT === 0));
    assert.equal(layout.size, 64);
    const before = tf.memory().numTensors;
    const [flat, back] = tf.tidy(() => {
      const tensors = layout.segments.map((s, i) => tf.fill([...s.shape], i + 1));
      const flattened = layout.flatten([tensors[0], undefined, tensors[2], tensors[3]]);
      return [Array.from(flattened.dataSync()), layout.pieces(flattened).map((t) => ({ shape: t.shape, data: Array.from(t.dataSync()) }))];
    });
    assert.equal(tf.memory().numTensors, before);
    assert.deepEqual(flat, [...Array(15).fill(1), 0, ...Array(16).fill(0), ...Array(16).fill(3), 4, 4, ...Array(14).fill(0)]);
    assert.deepEqual(back, [
      { shape: [3, 5], data: Array(15).fill(1) },
      { shape: [7], data: Array(7).fill(0) },
      { shape: [16], data: Array(16).fill(3) },
      { shape: [2, 1], data: [4, 4] },
    ]);
  });

  it('a FusedAdam step with missing gradients, a shorter list and a grown position leaks nothing', () => {
    const [variables, others] = twinVariables(8);
    tf.dispose(others);
    const x = tf.ones([4, 12]) as tf.Tensor2D;
    const y = tf.oneHot(tf.tensor1d([0, 1, 2, 0], 'int32'), 3) as tf.Tensor2D;
    const fusedAdam = new FusedAdam(0.01, 0.9, 0.999);
    try {
      gradientStep({ optimizer: fusedAdam, variables, objective: objective(variables, x, y) });
      const before = tf.memory().numTensors;
      const masked = { transformGradients: (g: readonly StepGradient[]) => g.map((t, i) => (i === 1 ? undefined : t)) };
      gradientStep({ optimizer: fusedAdam, variables, objective: objective(variables, x, y), hooks: masked, read: true });
      gradientStep({ optimizer: fusedAdam, variables: variables.slice(0, 2), objective: objective(variables, x, y) });
      const wider = tf.tidy(() => tf.variable(tf.pad(variables[3] as tf.Tensor1D, [[0, 2]])));
      fusedAdam.growSlot(3, wider);
      wider.dispose();
      assert.equal(tf.memory().numTensors, before);
    } finally {
      fusedAdam.dispose();
      tf.dispose([x, y, ...variables]);
    }
  });
});

describe('optimizer-state with an SGD optimizer', () => {
  it('exports and imports its iteration count, and growth keeps no moments (tfjs answers instanceof AdamOptimizer for SGD too)', async () => {
    const v = tf.variable(tf.ones([2, 2]));
    const sgd = tf.train.sgd(0.1);
    const restored = tf.train.sgd(0.1);
    try {
      sgd.applyGradients([{ name: v.name, tensor: tf.fill([2, 2], 0.5) }]);
      const tensors: Record<string, TensorSnapshot> = {};
      const count = await exportOptimizer(sgd, 'o', tensors);
      assert.equal(count, 1);
      await importOptimizer(restored, 'o', count, tensors);
      assert.equal(restored.iterations, 1);
      growOptimizerSlots(restored, 0, v);
    } finally {
      sgd.dispose();
      restored.dispose();
      v.dispose();
    }
  });
});
