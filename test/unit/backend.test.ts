import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { NATIVE_THREAD_DEFAULTS, nativeThreadSettings, selectBackend, type BackendName } from '../../src/backend/backend';
import { NATIVE_ADDON_MISSING, NO_GPU_DRIVER, nativeAddonPath, nvidiaDriver } from '../../src/backend/native-addon';
import {
  installWasmMatMulFix,
  isWasmMatMulFixInstalled,
  uninstallWasmMatMulFix,
} from '../../src/backend/wasm-matmul';
import { BackendError } from '../../src/core/errors';
import { Rng } from '../../src/core/rng';

const quiet = (): void => {};

/** A loader for a machine where the optional native packages are not installed (what require throws). */
const notInstalled = (id: string): never => {
  throw Object.assign(new Error(`Cannot find module '${id}'\nRequire stack:\n- backend.js`), { code: 'MODULE_NOT_FOUND' });
};

/** True when `npm run setup:native` has built @tensorflow/tfjs-node's addon in this checkout. */
function nativeAddonBuilt(pkg = '@tensorflow/tfjs-node'): boolean {
  try {
    return fs.existsSync(nativeAddonPath(require.resolve(`${pkg}/package.json`)));
  } catch {
    return false;
  }
}

/**
 * Runs `body` as if no native package had been loaded into this process: once tfjs-node is
 * loaded (npm run setup:native, auto), its 'tensorflow' backend stays registered and
 * selectBackend reuses it without calling the loader. Restores the registration afterwards.
 */
async function withoutNativeBackend(body: () => Promise<void>): Promise<void> {
  const factory = tf.findBackendFactory('tensorflow');
  const active = tf.getBackend();
  if (factory != null) tf.removeBackend('tensorflow');
  try {
    await body();
  } finally {
    if (factory != null) {
      tf.registerBackend('tensorflow', factory, 3);
      if (active === 'tensorflow') await tf.setBackend('tensorflow');
    }
  }
}


/** Deterministic values scaled so that products stay of order 1 whatever the inner size. */
function values(shape: readonly number[], seed: number, scale: number): Float32Array {
  const rng = new Rng(seed);
  return new Float32Array(tf.util.sizeFromShape([...shape])).map(() => (rng.next() * 2 - 1) * scale);
}

function assertClose(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const magnitude = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 1);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs((actual[i] as number) - (expected[i] as number)));
  assert.ok(worst <= 1e-5 * magnitude, `${what}: max difference ${worst} exceeds ${1e-5 * magnitude}`);
}

/**
 * Reads and frees a tensor. (Returning the typed array from tf.tidy instead would make tidy scan
 * every element for tensors: slow for large outputs.)
 */
function read(t: tf.Tensor): Float32Array {
  const data = t.dataSync() as Float32Array;
  t.dispose();
  return data;
}

/** Number of buffers the active backend holds, including kernel intermediates that are not tensors. */
function backendBuffers(): number {
  return (tf.backend() as unknown as { numDataIds(): number }).numDataIds();
}

interface MatMulCase {
  readonly name: string;
  readonly aShape: number[];
  readonly bShape: number[];
  readonly transposeA: boolean;
  readonly transposeB: boolean;
}

/** All four transpose combinations for 2-D, 3-D with batch 1 (rewritten) and batch 3 (passed through). */
function matMulCases(): MatMulCase[] {
  const [m, k, n] = [37, 300, 23];
  const cases: MatMulCase[] = [];
  for (const transposeA of [false, true]) {
    for (const transposeB of [false, true]) {
      for (const batch of [[], [1], [3]]) {
        cases.push({
          name: `${batch.length ? `batch ${batch[0]}` : '2-D'} transposeA=${transposeA} transposeB=${transposeB}`,
          aShape: [...batch, ...(transposeA ? [k, m] : [m, k])],
          bShape: [...batch, ...(transposeB ? [n, k] : [k, n])],
          transposeA,
          transposeB,
        });
      }
    }
  }
  return cases;
}

type Activation = 'linear' | 'relu' | 'relu6' | 'sigmoid' | 'elu' | 'leakyrelu' | 'prelu';

function runMatMul(c: MatMulCase): Float32Array {
  return read(tf.tidy(() => {
    const a = tf.tensor(values(c.aShape, 1, 1), c.aShape);
    const b = tf.tensor(values(c.bShape, 2, 1 / Math.sqrt(300)), c.bShape);
    return tf.matMul(a, b, c.transposeA, c.transposeB);
  }));
}

function runFused(c: MatMulCase, activation: Activation, withBias: boolean): Float32Array {
  return read(tf.tidy(() => {
    const a = tf.tensor(values(c.aShape, 1, 1), c.aShape);
    const b = tf.tensor(values(c.bShape, 2, 1 / Math.sqrt(300)), c.bShape);
    const columns = c.bShape[c.bShape.length - (c.transposeB ? 2 : 1)] as number;
    const bias = withBias ? tf.tensor1d(values([columns], 3, 1)) : undefined;
    const preluActivationWeights = activation === 'prelu' ? tf.tensor1d(values([columns], 8, 0.5)) : undefined;
    return tf.fused.matMul({
      a,
      b,
      transposeA: c.transposeA,
      transposeB: c.transposeB,
      bias,
      activation,
      preluActivationWeights,
      leakyreluAlpha: 0.1,
    });
  }));
}

describe('selectBackend', () => {
  let previousBackend: string | null = null;
  before(() => {
    previousBackend = tf.engine().backendName ?? null;
  });
  after(async () => {
    if (previousBackend) await tf.setBackend(previousBackend);
  });

  it('auto skips the uninstalled TensorFlow packages with a reason and picks wasm', () => withoutNativeBackend(async () => {
    // Where the optional native packages are not installed (a plain `npm ci` offline deletes them).
    const logged: string[] = [];
    const selection = await selectBackend('auto', (m) => logged.push(m), { loadModule: notInstalled });
    assert.equal(selection.name, 'wasm');
    assert.equal(selection.tfBackend, 'wasm');
    assert.equal(tf.getBackend(), 'wasm');
    assert.deepEqual(
      selection.skipped.map((s) => s.name),
      ['tensorflow-gpu', 'tensorflow'],
    );
    assert.match(selection.skipped[0]?.reason ?? '', /@tensorflow\/tfjs-node-gpu is not installed/);
    assert.match(selection.skipped[1]?.reason ?? '', /@tensorflow\/tfjs-node is not installed/);
    assert.ok(logged.some((l) => /skipped tensorflow-gpu: .*not installed/.test(l)), logged.join('\n'));
    assert.ok(logged.some((l) => /skipped tensorflow: .*not installed/.test(l)), logged.join('\n'));
    assert.ok(logged.some((l) => /using wasm/.test(l)), logged.join('\n'));
    assert.ok(isWasmMatMulFixInstalled(), 'wasm is selected with the matmul fix');
  }));

  it('reports a native library that fails to load by the first line of its error', () => withoutNativeBackend(async () => {
    const loadModule = (id: string): never => {
      if (id === '@tensorflow/tfjs-node-gpu') {
        throw new Error('libcudart.so.11.0: cannot open shared object file: No such file or directory\n    at Module._extensions');
      }
      throw Object.assign(new Error(`Cannot find module '${id}'\nRequire stack:\n- x.js`), { code: 'MODULE_NOT_FOUND' });
    };
    const selection = await selectBackend('auto', quiet, { loadModule });
    assert.equal(selection.name, 'wasm');
    assert.equal(
      selection.skipped[0]?.reason,
      '@tensorflow/tfjs-node-gpu failed to load its native library: libcudart.so.11.0: cannot open shared object file: No such file or directory',
    );
    assert.match(selection.skipped[1]?.reason ?? '', /is not installed/);
  }));

  it('treats a missing dependency of an installed package as a load failure, not as "not installed"', () => withoutNativeBackend(async () => {
    const loadModule = (): never => {
      throw Object.assign(new Error("Cannot find module 'node-pre-gyp'"), { code: 'MODULE_NOT_FOUND' });
    };
    const selection = await selectBackend('auto', quiet, { loadModule });
    assert.match(selection.skipped[1]?.reason ?? '', /@tensorflow\/tfjs-node failed to load.*node-pre-gyp/);
  }));

  it('skips an installed package whose addon was never built, saying that setup:native builds it', () => withoutNativeBackend(async () => {
    const loadModule = (id: string): never => {
      throw Object.assign(new Error(`${id} has no native addon at x.node`), { code: NATIVE_ADDON_MISSING });
    };
    const selection = await selectBackend('auto', quiet, { loadModule });
    assert.equal(selection.name, 'wasm');
    assert.equal(
      selection.skipped[0]?.reason,
      '@tensorflow/tfjs-node-gpu is installed without its native addon (npm run setup:native builds it)',
    );
    assert.equal(
      selection.skipped[1]?.reason,
      '@tensorflow/tfjs-node is installed without its native addon (npm run setup:native builds it)',
    );
  }));

  for (const [name, pkg] of [
    ['tensorflow', '@tensorflow/tfjs-node'],
    ['tensorflow-gpu', '@tensorflow/tfjs-node-gpu'],
  ] as const) {
    it(`explicit '${name}' throws a BackendError naming ${pkg}, with the require error as cause`, () => withoutNativeBackend(async () => {
      await assert.rejects(selectBackend(name, quiet, { loadModule: notInstalled }), (err: unknown) => {
        assert.ok(err instanceof BackendError);
        assert.ok(err.message.includes(pkg), err.message);
        assert.match(err.message, /not installed/);
        assert.equal((err.cause as { code?: string }).code, 'MODULE_NOT_FOUND');
        return true;
      });
    }));
  }

  it('rejects an unknown name', async () => {
    await assert.rejects(selectBackend('gpu' as BackendName, quiet), BackendError);
  });

  it('explicit cpu works and reports nothing skipped', async () => {
    const selection = await selectBackend('cpu', quiet);
    assert.deepEqual(selection, { name: 'cpu', tfBackend: 'cpu', skipped: [] });
    const sum = tf.tidy(() => tf.add(tf.tensor1d([1, 2]), tf.tensor1d([3, 4])).arraySync());
    assert.deepEqual(sum, [4, 6]);
  });

  it('can be called repeatedly, switching back and forth, and honours wasmMatMulFix', () => withoutNativeBackend(async () => {
    assert.equal((await selectBackend('wasm', quiet, { wasmMatMulFix: false })).name, 'wasm');
    assert.ok(!isWasmMatMulFixInstalled());
    assert.equal((await selectBackend('cpu', quiet)).name, 'cpu');
    assert.equal((await selectBackend('wasm', quiet)).name, 'wasm');
    assert.ok(isWasmMatMulFixInstalled());
    assert.equal((await selectBackend('auto', quiet, { loadModule: notInstalled })).name, 'wasm');
    const product = tf.tidy(() => tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3, 4]]), true, false).arraySync());
    assert.deepEqual(product, [
      [3, 4],
      [6, 8],
    ]);
  }));
});

describe('native TensorFlow (npm run setup:native)', () => {
  let previousBackend: string | null = null;
  before(() => {
    previousBackend = tf.engine().backendName ?? null;
  });
  after(async () => {
    if (previousBackend) await tf.setBackend(previousBackend);
  });

  it('auto picks tensorflow when setup:native has built its addon, else says why it passed it over', async () => {
    const logged: string[] = [];
    const selection = await selectBackend('auto', (m) => logged.push(m));
    if (nativeAddonBuilt()) {
      assert.equal(selection.name, 'tensorflow');
      assert.equal(tf.getBackend(), 'tensorflow');
    } else {
      assert.equal(selection.name, 'wasm');
      assert.match(selection.skipped[1]?.reason ?? '', /@tensorflow\/tfjs-node is (not installed|installed without its native addon)/);
      assert.match(selection.skipped[1]?.reason ?? '', /npm run setup:native/);
    }
    // tfjs-node-gpu without its addon, or without a GPU driver, is passed over without being
    // loaded (or, once tfjs-node is loaded in this process, because that is the CPU build).
    if (!nativeAddonBuilt('@tensorflow/tfjs-node-gpu') || !nvidiaDriver().present) {
      assert.match(
        selection.skipped[0]?.reason ?? '',
        /@tensorflow\/tfjs-node-gpu (is not installed|is installed without its native addon|not loaded: no NVIDIA driver)|is the CPU build/,
      );
    }
  });

  it('explicit tensorflow computes what wasm computes, with its thread settings in the environment', async () => {
    if (!nativeAddonBuilt()) {
      await assert.rejects(selectBackend('tensorflow', quiet), (err: unknown) => {
        assert.ok(err instanceof BackendError);
        assert.match(err.message, /npm run setup:native/);
        return true;
      });
      return;
    }
    const product = (): Float32Array =>
      read(tf.tidy(() => tf.matMul(tf.tensor(values([37, 300], 1, 1), [37, 300]), tf.tensor(values([23, 300], 2, 0.05), [23, 300]), false, true)));
    await selectBackend('wasm', quiet);
    const onWasm = product();
    assert.equal((await selectBackend('tensorflow', quiet)).tfBackend, 'tensorflow');
    assertClose(product(), onWasm, 'tensorflow vs wasm');
    // Set before the library loaded (NATIVE_THREAD_DEFAULTS where the environment named none).
    for (const key of Object.keys(NATIVE_THREAD_DEFAULTS)) assert.match(process.env[key] ?? '', /^\d+$/, key);
  });

  it('sets the thread defaults only where the environment leaves them unset', () => {
    assert.deepEqual(nativeThreadSettings({}), { TF_NUM_INTRAOP_THREADS: '1', TF_NUM_INTEROP_THREADS: '1' });
    assert.deepEqual(nativeThreadSettings({ TF_NUM_INTRAOP_THREADS: '2', TF_NUM_INTEROP_THREADS: '' }), { TF_NUM_INTEROP_THREADS: '1' });
  });

  it('passes over the GPU package on a machine without an NVIDIA driver, saying so', () => withoutNativeBackend(async () => {
    assert.deepEqual(nvidiaDriver(() => false).present, false);
    assert.match(nvidiaDriver(() => false).why, /no NVIDIA driver on this machine/);
    assert.equal(nvidiaDriver((f) => f === '/dev/nvidiactl').present, true);
    const loadModule = (id: string): never => {
      if (id === '@tensorflow/tfjs-node-gpu') throw Object.assign(new Error(nvidiaDriver(() => false).why), { code: NO_GPU_DRIVER });
      return notInstalled(id);
    };
    const selection = await selectBackend('auto', quiet, { loadModule });
    assert.match(selection.skipped[0]?.reason ?? '', /^@tensorflow\/tfjs-node-gpu not loaded: no NVIDIA driver on this machine \(/);
  }));

  it('finds the addon where node-pre-gyp does: the highest N-API version both support', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifelong-addon-'));
    try {
      const manifest = path.join(dir, 'package.json');
      fs.writeFileSync(manifest, JSON.stringify({ binary: { module_name: 'tfjs_binding', module_path: './lib/napi-v{napi_build_version}', napi_versions: [3, 8, 12] } }));
      assert.equal(nativeAddonPath(manifest, 10), path.join(dir, 'lib', 'napi-v8', 'tfjs_binding.node'));
      assert.equal(nativeAddonPath(manifest, 12), path.join(dir, 'lib', 'napi-v12', 'tfjs_binding.node'));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('tensorflow-gpu runs on the GPU when the machine has one', async function () {
    const gpu = nvidiaDriver();
    if (!gpu.present) {
      process.stderr.write(`      skipped the GPU check: ${gpu.why}\n`);
      this.skip();
    }
    const selection = await selectBackend('tensorflow-gpu', quiet);
    assert.equal(selection.name, 'tensorflow-gpu');
    assert.equal((tf.backend() as unknown as { isUsingGpuDevice?: boolean }).isUsingGpuDevice, true);
  });
});

describe('wasm matmul fix', () => {
  const cases = matMulCases();
  const activations: Activation[] = ['linear', 'relu', 'relu6', 'sigmoid', 'elu', 'leakyrelu', 'prelu'];
  const reference = new Map<string, Float32Array>();
  const unpatched = new Map<string, Float32Array>();

  before(async () => {
    await selectBackend('cpu', quiet);
    for (const c of cases) {
      reference.set(c.name, runMatMul(c));
      for (const act of activations) {
        reference.set(`${c.name} ${act} bias`, runFused(c, act, true));
        reference.set(`${c.name} ${act}`, runFused(c, act, false));
      }
    }
    await selectBackend('wasm', quiet, { wasmMatMulFix: false });
    for (const c of cases) {
      unpatched.set(c.name, runMatMul(c));
      for (const act of activations) {
        unpatched.set(`${c.name} ${act} bias`, runFused(c, act, true));
        unpatched.set(`${c.name} ${act}`, runFused(c, act, false));
      }
    }
    await selectBackend('wasm', quiet, { wasmMatMulFix: true });
  });

  it('install is idempotent and uninstall restores the shipped kernels', () => {
    const patched = tf.getKernel(tf.BatchMatMul, 'wasm');
    assert.equal(installWasmMatMulFix(), false);
    assert.equal(tf.getKernel(tf.BatchMatMul, 'wasm'), patched);
    assert.equal(uninstallWasmMatMulFix(), true);
    const shipped = tf.getKernel(tf.BatchMatMul, 'wasm');
    assert.notEqual(shipped, patched);
    assert.equal(uninstallWasmMatMulFix(), false);
    assert.equal(installWasmMatMulFix(), true);
    assert.equal((tf.getKernel(tf.BatchMatMul, 'wasm') as { original?: unknown }).original, shipped);
  });

  for (const c of cases) {
    it(`matMul ${c.name} equals the cpu backend and the shipped kernel`, () => {
      const actual = runMatMul(c);
      assertClose(actual, reference.get(c.name) as Float32Array, 'vs cpu');
      assertClose(actual, unpatched.get(c.name) as Float32Array, 'vs shipped wasm');
    });
  }

  for (const c of cases.filter((x) => !x.name.startsWith('batch 3'))) {
    it(`fused matMul ${c.name} equals the cpu backend for each activation, with and without bias`, () => {
      for (const act of activations) {
        for (const bias of [false, true]) {
          const key = `${c.name} ${act}${bias ? ' bias' : ''}`;
          assertClose(runFused(c, act, bias), reference.get(key) as Float32Array, `${act}${bias ? ' + bias' : ''} vs cpu`);
        }
      }
      // Without bias and activation the shipped kernel is right on every path.
      assertClose(runFused(c, 'linear', false), unpatched.get(`${c.name} linear`) as Float32Array, 'linear vs shipped wasm');
    });
  }

  it('passes batched fused products (batch > 1) to the shipped kernel unchanged', () => {
    // XNNPACK is not reachable for them; the shipped scalar loop is kept, bugs included (it adds
    // the bias and clamps relu/relu6 once per 48-wide block of the inner dimension).
    for (const c of cases.filter((x) => x.name.startsWith('batch 3'))) {
      for (const act of activations) {
        for (const bias of [false, true]) {
          const key = `${c.name} ${act}${bias ? ' bias' : ''}`;
          assert.deepEqual(runFused(c, act, bias), unpatched.get(key), key);
        }
      }
      assertClose(runFused(c, 'linear', false), reference.get(`${c.name} linear`) as Float32Array, `${c.name} linear vs cpu`);
    }
  });

  it('makes transposed products several times faster', () => {
    const time = (transposeA: boolean): number => {
      const [a, b] = [tf.randomUniform([256, 784]), tf.randomUniform([256, 256])];
      let best = Infinity;
      for (let i = 0; i < 3; i++) {
        const start = performance.now();
        read(tf.matMul(a, b, transposeA, false));
        best = Math.min(best, performance.now() - start);
      }
      tf.dispose([a, b]);
      return best;
    };
    const patched = time(true);
    uninstallWasmMatMulFix();
    try {
      const shipped = time(true);
      // About 40x on a quiet machine; 3x leaves room for a busy one.
      assert.ok(patched * 3 < shipped, `patched ${patched.toFixed(1)} ms vs shipped ${shipped.toFixed(1)} ms`);
    } finally {
      installWasmMatMulFix();
    }
  });

  it('leaks neither tensors nor backend buffers, also inside tf.grad', () => {
    const a = tf.tensor2d(values([40, 30], 4, 1), [40, 30]);
    const b = tf.tensor2d(values([20, 30], 5, 1), [20, 30]);
    const c = tf.tensor2d(values([30, 40], 7, 1), [30, 40]);
    // Transposing a row vector is a no-op that the Transpose kernel answers through Identity.
    const row = tf.tensor2d(values([1, 40], 9, 1), [1, 40]);
    const column = tf.tensor2d(values([1, 30], 10, 1), [1, 30]);
    const bias = tf.tensor1d(values([20], 6, 1));
    const loss = (x: tf.Tensor): tf.Scalar =>
      tf.sum(tf.fused.matMul({ a: x as tf.Tensor2D, b, transposeB: true, bias, activation: 'relu' })).add(
        tf.sum(tf.matMul(x, b, false, true)),
      );
    const grad = tf.grad(loss);
    const once = (): void => {
      read(tf.matMul(a, b, false, true));
      read(tf.matMul(c, a, true, true));
      read(tf.matMul(row, column, true, false));
      tf.dispose(grad(a));
    };
    once();
    const tensors = tf.memory().numTensors;
    const buffers = backendBuffers();
    for (let i = 0; i < 5; i++) once();
    assert.equal(tf.memory().numTensors, tensors);
    assert.equal(backendBuffers(), buffers);
    assert.deepEqual(row.dataSync(), values([1, 40], 9, 1), 'inputs are left intact');
    tf.dispose([a, b, c, row, column, bias]);
  });

  it('frees its intermediates when the shipped kernel throws', () => {
    const a = tf.ones([3, 4]);
    const b = tf.ones([5, 6]);
    const buffers = backendBuffers();
    assert.throws(() => tf.matMul(a, b, true, true), /inner shapes/);
    assert.equal(backendBuffers(), buffers);
    tf.dispose([a, b]);
  });
});
