import * as fs from 'node:fs';
import { selectBackend, type BackendName } from '../backend/backend';
import { UsageError } from '../core/errors';
import { encodeGrayscalePng } from '../data/png';
import { readCheckpoint } from '../engine/checkpoint';
import { builtinStrategies } from '../strategies/registry';
import type { ReplayGridRow } from '../strategies/dgr';
import type { Strategy } from '../strategies/strategy';
import { EXIT_CODES } from './exit-codes';
import { parseCommandArgs } from './parse-command-args';
import type { CommandUsage } from './usage';

export const REPLAY_GRID_USAGE: CommandUsage = {
  synopsis: `  lifelong replay-grid --checkpoint FILE --out FILE.png [--per-class N] [--seed S] [--backend NAME]`,
  description: `replay-grid  draws what a generative-replay (dgr) checkpoint remembers: one row of generated
          samples per class, labelled by its solver, as a grayscale PNG.
          --per-class N    samples per class (columns, 1 to 1000; default 10)
          --seed S         the generator's seed (default 0)
          --backend NAME   tensor backend (default auto)
`,
};

/** Parses `lifelong replay-grid` arguments; throws UsageError naming the option. */
export function parseReplayGridArgs(args: readonly string[]): ReplayGridOptions {
  const values = parseCommandArgs(args, {
    checkpoint: { type: 'string' },
    out: { type: 'string' },
    'per-class': { type: 'string', default: '10' },
    seed: { type: 'string', default: '0' },
    backend: { type: 'string', default: 'auto' },
  });
  if (!values.checkpoint || !values.out) throw new UsageError('lifelong replay-grid needs --checkpoint FILE and --out FILE.png', values.checkpoint ? '--out' : '--checkpoint');
  return {
    checkpoint: values.checkpoint,
    out: values.out,
    perClass: Number(values['per-class']),
    seed: Number(values.seed),
    backend: values.backend as BackendName,
  };
}

export interface ReplayGridOptions {
  readonly checkpoint: string;
  readonly out: string;
  /** Samples per class (columns). */
  readonly perClass: number;
  readonly seed: number;
  readonly backend: BackendName;
  /** Progress lines; stdout by default. */
  readonly print?: (line: string) => void;
}

/** A strategy with a generator (dgr): what replay-grid needs. */
interface GenerativeStrategy extends Strategy {
  replayGrid(perClass: number, seed?: number): Promise<ReplayGridRow[]>;
}

function isGenerative(strategy: Strategy): strategy is GenerativeStrategy {
  return typeof (strategy as Partial<GenerativeStrategy>).replayGrid === 'function';
}

/** Pixels between tiles, and their grey level. */
const GAP = 2;
const GAP_GREY = 96;

/**
 * The grid as one grayscale image: a row of tiles per class, `columns` tiles wide (a short row
 * leaves black tiles). Square inputs (784 = 28 x 28) become square tiles; others a 1-pixel strip.
 */
export function renderGrid(rows: readonly ReplayGridRow[], columns: number, inputSize: number): { width: number; height: number; pixels: Uint8Array } {
  const side = Math.round(Math.sqrt(inputSize));
  const [tileW, tileH] = side * side === inputSize ? [side, side] : [inputSize, 1];
  const width = columns * tileW + (columns + 1) * GAP;
  const height = Math.max(1, rows.length) * tileH + (Math.max(1, rows.length) + 1) * GAP;
  const pixels = new Uint8Array(width * height).fill(GAP_GREY);
  rows.forEach((row, r) => {
    for (let c = 0; c < columns; c++) {
      const sample = row.samples[c];
      const top = GAP + r * (tileH + GAP);
      const left = GAP + c * (tileW + GAP);
      for (let y = 0; y < tileH; y++) {
        for (let x = 0; x < tileW; x++) {
          const v = sample ? (sample[y * tileW + x] as number) : 0;
          pixels[(top + y) * width + left + x] = Math.max(0, Math.min(255, Math.round(v * 255)));
        }
      }
    }
  });
  return { width, height, pixels };
}

/**
 * `lifelong replay-grid`: restores the checkpoint's strategy, generates inputs, has the solver
 * label them and writes a PNG with one row per class: what the model remembers of each class.
 */
export async function replayGridCommand(options: ReplayGridOptions): Promise<number> {
  const print = options.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  if (!Number.isInteger(options.perClass) || options.perClass < 1 || options.perClass > 1000) throw new UsageError(`--per-class must be an integer from 1 to 1000, got ${options.perClass}`, '--per-class');
  if (!Number.isInteger(options.seed)) throw new UsageError(`--seed must be an integer, got ${options.seed}`, '--seed');
  const checkpoint = await readCheckpoint(options.checkpoint);
  await selectBackend(options.backend, () => undefined);
  const strategy = builtinStrategies().get(checkpoint.strategyName)(checkpoint.options);
  try {
    if (!isGenerative(strategy)) throw new UsageError(`strategy "${checkpoint.strategyName}" of ${options.checkpoint} has no generator: replay-grid needs a generative-replay strategy (dgr)`, '--checkpoint');
    await strategy.importState(checkpoint.state);
    const rows = await strategy.replayGrid(options.perClass, options.seed);
    if (rows.length === 0) throw new UsageError(`the model in ${options.checkpoint} knows no class yet: nothing to draw`, '--checkpoint');
    const grid = renderGrid(rows, options.perClass, checkpoint.options.inputSize);
    fs.writeFileSync(options.out, encodeGrayscalePng(grid.width, grid.height, grid.pixels));
    print(`wrote ${options.out}: ${grid.width}x${grid.height}, one row per class (top to bottom: ${rows.map((r) => r.label).join(', ')})`);
    const short = rows.filter((r) => r.samples.length < options.perClass);
    if (short.length) print(`classes the generator rarely produces (fewer than ${options.perClass} samples): ${short.map((r) => `${r.label} (${r.samples.length})`).join(', ')}`);
    return EXIT_CODES.success;
  } finally {
    strategy.dispose();
  }
}
