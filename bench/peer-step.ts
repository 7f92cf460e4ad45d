/**
 * lifelong against PyTorch on the same MLP step and batch-1 prediction (bench/mlp-step.ts and
 * bench/peers/torch_step.py), interleaved: each round runs every contender once, in a rotated
 * order, each in a fresh process, so that a busy spell of the machine hits all of them alike.
 * Prints per contender the median over rounds of each round's median, the min–max, and the
 * ratio to PyTorch of the same round.
 *
 *   npm run bench:peers -- [--rounds 5] [--batch 128] [--steps 100] [--warmup 200] [--predicts 200]
 *                          [--contenders pytorch,wasm,tensorflow] [--python PATH] [--threads 1]
 *
 * PyTorch: the venv of bench/peers/install-torch.sh ($LIFELONG_TORCH_VENV, default
 * ~/.cache/lifelong/torch-venv), or --python.
 * --threads sets PyTorch's threads and TF_NUM_INTRAOP_THREADS (unless the environment sets it).
 */
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { selectBackend } from '../src/backend/backend';
import { Rng } from '../src/core/rng';
import { median, mlpTrainer } from './mlp-step';

type Contender = 'pytorch' | 'wasm' | 'tensorflow';
const CONTENDERS: readonly Contender[] = ['pytorch', 'wasm', 'tensorflow'];

interface Sample {
  readonly stepMs: number;
  /** CPU time (user + system, all threads) per timed step: robust to other processes on the cores. */
  readonly stepCpuMs: number;
  readonly predictMs: number;
  readonly version: string;
}

interface Settings {
  readonly rounds: number;
  readonly batch: number;
  readonly steps: number;
  readonly warmup: number;
  readonly predicts: number;
  readonly threads: number;
  readonly contenders: readonly Contender[];
  readonly python: string;
}

function parseArgs(argv: readonly string[]): Settings & { readonly child?: Contender } {
  const value = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const int = (flag: string, fallback: number): number => {
    const v = Number(value(flag) ?? fallback);
    if (!Number.isInteger(v) || v < 1) throw new Error(`${flag} must be a positive integer`);
    return v;
  };
  const contenders = (value('--contenders') ?? CONTENDERS.join(',')).split(',') as Contender[];
  for (const c of contenders) if (!CONTENDERS.includes(c)) throw new Error(`unknown contender ${c}; use ${CONTENDERS.join(',')}`);
  const child = value('--child') as Contender | undefined;
  return {
    rounds: int('--rounds', 5),
    batch: int('--batch', 128),
    steps: int('--steps', 100),
    warmup: int('--warmup', 200),
    predicts: int('--predicts', 200),
    threads: int('--threads', 1),
    contenders,
    python: value('--python') ?? path.join(process.env.LIFELONG_TORCH_VENV || path.join(os.homedir(), '.cache', 'lifelong', 'torch-venv'), 'bin', 'python'),
    ...(child !== undefined ? { child } : {}),
  };
}

/** The child process: one contender of lifelong, measured once. */
async function measureOurs(backend: 'wasm' | 'tensorflow', s: Settings): Promise<Sample> {
  const selection = await selectBackend(backend, () => undefined);
  const trainer = mlpTrainer(s.batch, new Rng(s.batch));
  const time = async (n: number, fn: () => Promise<void>): Promise<number> => {
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const start = performance.now();
      await fn();
      times.push(performance.now() - start);
    }
    return median(times);
  };
  await time(s.warmup, trainer.step);
  const cpuStart = process.cpuUsage();
  const stepMs = await time(s.steps, trainer.step);
  const cpu = process.cpuUsage(cpuStart);
  const stepCpuMs = (cpu.user + cpu.system) / 1000 / s.steps;
  await time(s.warmup, trainer.predictOne);
  const predictMs = await time(s.predicts, trainer.predictOne);
  trainer.dispose();
  const threads = backend === 'tensorflow' ? `, TF_NUM_INTRAOP_THREADS=${process.env.TF_NUM_INTRAOP_THREADS ?? '?'}` : '';
  return { stepMs, stepCpuMs, predictMs, version: `lifelong on ${selection.name}${threads}` };
}

function runOnce(contender: Contender, s: Settings): Sample {
  const common = ['--batch', s.batch, '--steps', s.steps, '--warmup', s.warmup, '--predicts', s.predicts].map(String);
  const result =
    contender === 'pytorch'
      ? spawnSync(s.python, [path.join(__dirname, '..', '..', 'bench', 'peers', 'torch_step.py'), ...common, '--threads', String(s.threads)], { encoding: 'utf8' })
      : spawnSync(process.execPath, [__filename, '--child', contender, ...common], {
          encoding: 'utf8',
          env: { TF_CPP_MIN_LOG_LEVEL: '2', TF_NUM_INTRAOP_THREADS: String(s.threads), ...process.env },
        });
  if (result.error) throw new Error(`${contender}: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`${contender} exited with ${result.status}: ${(result.stderr ?? '').trim().split('\n').slice(-3).join(' / ')}`);
  const line = result.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as Sample;
}

const range = (values: readonly number[], digits: number): string =>
  `${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)}`;

async function main(): Promise<void> {
  const s = parseArgs(process.argv.slice(2));
  if (s.child !== undefined) {
    if (s.child === 'pytorch') throw new Error('--child takes wasm or tensorflow');
    process.stdout.write(`${JSON.stringify(await measureOurs(s.child, s))}\n`);
    return;
  }
  const samples = new Map<Contender, Sample[]>(s.contenders.map((c) => [c, []]));
  const unavailable = new Map<Contender, string>();
  for (let round = 0; round < s.rounds; round++) {
    const order = s.contenders.map((_, i) => s.contenders[(i + round) % s.contenders.length] as Contender);
    for (const contender of order) {
      if (unavailable.has(contender)) continue;
      try {
        const sample = runOnce(contender, s);
        samples.get(contender)?.push(sample);
        process.stderr.write(`round ${round + 1} ${contender}: step ${sample.stepMs.toFixed(2)} ms (CPU ${sample.stepCpuMs.toFixed(2)}), predict ${sample.predictMs.toFixed(3)} ms\n`);
      } catch (err) {
        unavailable.set(contender, err instanceof Error ? err.message : String(err));
      }
    }
  }
  const torch = unavailable.has('pytorch') ? undefined : samples.get('pytorch');
  const lines = [
    `MLP 784-400-400-10, Adam, batch ${s.batch}: ${s.rounds} interleaved rounds of ${s.warmup} warm-up + ${s.steps} timed steps and ${s.predicts} batch-1 predictions; ` +
      `${s.threads} thread(s); load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} at the end. Medians over rounds (min–max).`,
    '',
    '| contender | step ms (wall) | step ratio to PyTorch | step CPU ms | CPU ratio to PyTorch | predict ms (batch 1) | predict ratio to PyTorch |',
    '|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const contender of s.contenders) {
    const mine = samples.get(contender) ?? [];
    if (unavailable.has(contender) || mine.length < s.rounds) continue;
    const ratio = (key: 'stepMs' | 'stepCpuMs' | 'predictMs'): string => {
      if (torch === undefined || torch.length !== mine.length) return 'n/a';
      const r = mine.map((m, i) => m[key] / (torch[i] as Sample)[key]);
      return `${median(r).toFixed(2)}× (${range(r, 2)})`;
    };
    const steps = mine.map((m) => m.stepMs);
    const cpus = mine.map((m) => m.stepCpuMs);
    const predicts = mine.map((m) => m.predictMs);
    lines.push(
      `| ${mine[0]?.version ?? contender} | ${median(steps).toFixed(2)} (${range(steps, 2)}) | ${ratio('stepMs')} | ` +
        `${median(cpus).toFixed(2)} (${range(cpus, 2)}) | ${ratio('stepCpuMs')} | ` +
        `${median(predicts).toFixed(3)} (${range(predicts, 3)}) | ${ratio('predictMs')} |`,
    );
  }
  for (const [contender, why] of unavailable) lines.push('', `Not measured: ${contender}: ${why}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
