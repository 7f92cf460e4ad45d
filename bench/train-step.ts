/**
 * Training-step benchmark: milliseconds per Adam step and samples per second for an MLP
 * 784-400-400-10 (ReLU, softmax cross-entropy) on each backend available in this process:
 * cpu, wasm as shipped, wasm with the transposed-matmul fix, and native TensorFlow if installed.
 * Written with plain tfjs ops on tf.variables (no tf.layers), as the strategies train.
 *
 *   npm run bench:step
 *   npx tsc -p tsconfig.json --outDir .build-backend && node .build-backend/bench/train-step.js \
 *     [--steps 30] [--warmup 5] [--batches 64,128,256] [--backends cpu,wasm-unpatched,wasm,tensorflow]
 *
 * Prints markdown tables (machine facts, step times, a matmul micro-benchmark) on stdout.
 */
import * as os from 'node:os';
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { selectBackend, type BackendSelection } from '../src/backend/backend';
import { Rng } from '../src/core/rng';
import { LAYER_SIZES, median, mlpTrainer } from './mlp-step';

type BenchBackend = 'cpu' | 'wasm-unpatched' | 'wasm' | 'tensorflow';
const ALL_BACKENDS: readonly BenchBackend[] = ['cpu', 'wasm-unpatched', 'wasm', 'tensorflow'];
const LABEL: Record<BenchBackend, string> = {
  cpu: 'cpu (plain JS)',
  'wasm-unpatched': 'wasm as shipped',
  wasm: 'wasm + matmul fix',
  tensorflow: 'tensorflow (tfjs-node)',
};

interface Settings {
  readonly steps: number;
  readonly warmup: number;
  readonly batches: readonly number[];
  readonly backends: readonly BenchBackend[];
}

interface StepResult {
  readonly backend: BenchBackend;
  readonly batch: number;
  readonly medianMs: number;
  readonly meanMs: number;
  /** CPU time (user + system) of this process per step: what a step costs on a core of its own. */
  readonly medianCpuMs: number;
  readonly samplesPerSecond: number;
  readonly leakedTensors: number;
}

function parseArgs(argv: readonly string[]): Settings {
  const value = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const positiveInt = (flag: string, fallback: number): number => {
    const raw = value(flag);
    const n = raw === undefined ? fallback : Number(raw);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} needs a non-negative integer, got ${raw}`);
    return n;
  };
  const backends = (value('--backends') ?? ALL_BACKENDS.join(',')).split(',') as BenchBackend[];
  for (const b of backends) if (!ALL_BACKENDS.includes(b)) throw new Error(`unknown backend ${b}; use ${ALL_BACKENDS.join(',')}`);
  const batches = (value('--batches') ?? '64,128,256').split(',').map(Number);
  for (const b of batches) if (!Number.isInteger(b) || b <= 0) throw new Error(`bad batch size ${b}`);
  return { steps: Math.max(1, positiveInt('--steps', 30)), warmup: positiveInt('--warmup', 5), batches, backends };
}

async function machineFacts(): Promise<[string, string][]> {
  let cpuModel = os.cpus()[0]?.model ?? 'unknown';
  try {
    const line = fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'));
    if (line) cpuModel = line.split(':').slice(1).join(':').trim();
  } catch {
    // not Linux: keep os.cpus()'s model
  }
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  const threads = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
  return [
    ['CPU', cpuModel],
    ['logical cores (nproc)', String(os.availableParallelism())],
    ['memory', `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`],
    ['Node.js', process.version],
    // Other processes compete for the cores; a load above 1 inflates the times below.
    ['load average (1 min) at start', os.loadavg()[0]?.toFixed(2) ?? '?'],
    ['@tensorflow/tfjs', tf.version.tfjs],
    ['wasm SIMD / threads', `${String(simd)} / ${String(threads)}`],
  ];
}

async function measureSteps(backend: BenchBackend, batch: number, settings: Settings): Promise<StepResult> {
  const tensorsBefore = tf.memory().numTensors;
  const trainer = mlpTrainer(batch, new Rng(batch));
  const step = trainer.step;
  for (let i = 0; i < settings.warmup; i++) await step();
  const times: number[] = [];
  const cpuTimes: number[] = [];
  for (let i = 0; i < settings.steps; i++) {
    const start = performance.now();
    const cpuStart = process.cpuUsage();
    await step();
    const cpu = process.cpuUsage(cpuStart);
    times.push(performance.now() - start);
    cpuTimes.push((cpu.user + cpu.system) / 1000);
  }
  trainer.dispose();
  const total = times.reduce((a, b) => a + b, 0);
  return {
    backend,
    batch,
    medianMs: median(times),
    meanMs: total / times.length,
    medianCpuMs: median(cpuTimes),
    samplesPerSecond: (batch * times.length * 1000) / total,
    leakedTensors: tf.memory().numTensors - tensorsBefore,
  };
}

/** Milliseconds per 128x784 by 784x400 product under each transpose flag pair (what a step does). */
function matMulTimes(): Record<string, number> {
  const rng = new Rng(7);
  const out: Record<string, number> = {};
  const flags: [boolean, boolean][] = [[false, false], [true, false], [false, true]];
  for (const [ta, tb] of flags) {
    const a = tf.randomUniform(ta ? [784, 128] : [128, 784], 0, 1, 'float32', rng.seed());
    const b = tf.randomUniform(tb ? [400, 784] : [784, 400], 0, 1, 'float32', rng.seed());
    const run = (): void => {
      const r = tf.matMul(a, b, ta, tb);
      r.dataSync();
      r.dispose();
    };
    for (let i = 0; i < 3; i++) run();
    const reps = 10;
    const start = performance.now();
    for (let i = 0; i < reps; i++) run();
    out[`${ta ? 'Aᵀ' : 'A'}·${tb ? 'Bᵀ' : 'B'}`] = (performance.now() - start) / reps;
    tf.dispose([a, b]);
  }
  return out;
}

async function activate(backend: BenchBackend): Promise<BackendSelection> {
  const quiet = (): void => {};
  switch (backend) {
    case 'cpu':
      return selectBackend('cpu', quiet);
    case 'wasm-unpatched':
      return selectBackend('wasm', quiet, { wasmMatMulFix: false });
    case 'wasm':
      return selectBackend('wasm', quiet, { wasmMatMulFix: true });
    case 'tensorflow':
      return selectBackend('tensorflow', quiet);
  }
}

async function main(): Promise<void> {
  const settings = parseArgs(process.argv.slice(2));
  const facts = await machineFacts();
  const results: StepResult[] = [];
  const unavailable: string[] = [];
  const matmul: Partial<Record<BenchBackend, Record<string, number>>> = {};
  for (const backend of settings.backends) {
    try {
      await activate(backend);
    } catch (err) {
      unavailable.push(`${LABEL[backend]}: ${err instanceof Error ? err.message : String(err)}`);
      continue;
    }
    if (backend !== 'cpu') matmul[backend] = matMulTimes();
    for (const batch of settings.batches) {
      const r = await measureSteps(backend, batch, settings);
      results.push(r);
      process.stderr.write(`${LABEL[backend]} batch ${batch}: ${r.medianMs.toFixed(1)} ms/step (CPU ${r.medianCpuMs.toFixed(1)} ms)\n`);
    }
  }

  const lines: string[] = [];
  facts.push(['load average (1 min) at end', os.loadavg()[0]?.toFixed(2) ?? '?']);
  lines.push('| Machine | |', '|---|---|', ...facts.map(([k, v]) => `| ${k} | ${v} |`), '');
  lines.push(
    `MLP ${LAYER_SIZES.join('-')}, ReLU, softmax cross-entropy, Adam; ${settings.warmup} warm-up + ${settings.steps} timed steps; ` +
      'a step includes reading the loss. Wall-clock columns suffer when other processes share the cores; ' +
      'CPU ms is the process CPU time per step (also counts V8 helper threads).',
    '',
    '| Backend | Batch | wall ms/step (median) | wall ms/step (mean) | CPU ms/step (median) | samples/s (wall) | leaked tensors |',
    '|---|---:|---:|---:|---:|---:|---:|',
  );
  for (const r of results) {
    lines.push(
      `| ${LABEL[r.backend]} | ${r.batch} | ${r.medianMs.toFixed(1)} | ${r.meanMs.toFixed(1)} | ${r.medianCpuMs.toFixed(1)} | ` +
        `${Math.round(r.samplesPerSecond)} | ${r.leakedTensors} |`,
    );
  }
  const matmulRows = Object.entries(matmul);
  if (matmulRows.length > 0) {
    const kinds = Object.keys(matmulRows[0]?.[1] ?? {});
    lines.push('', `ms per matMul, A 128x784, B 784x400 (as in the first layer):`, '');
    lines.push(`| Backend | ${kinds.join(' | ')} |`, `|---|${kinds.map(() => '---:').join('|')}|`);
    for (const [backend, times] of matmulRows) {
      lines.push(`| ${LABEL[backend as BenchBackend]} | ${kinds.map((k) => (times[k] ?? NaN).toFixed(1)).join(' | ')} |`);
    }
  }
  if (unavailable.length > 0) lines.push('', 'Not measured:', ...unavailable.map((u) => `- ${u}`));
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
