import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from '../../src/cli/main';
import { EXIT_CODES, exitCodeOf } from '../../src/cli/exit-codes';
import {
  BackendError,
  ConfigError,
  DataFormatError,
  InterruptedError,
  InvariantError,
  LifelongError,
  StrategyError,
  TimeoutError,
  UsageError,
  ValidationError,
} from '../../src/core/errors';
import { DemandAbortedError } from '../../src/operators/demand';

interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI in-process, capturing what it writes. */
async function cli(...argv: string[]): Promise<Outcome> {
  let stdout = '';
  let stderr = '';
  const writeOut = process.stdout.write.bind(process.stdout);
  const writeErr = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: string) => ((stdout += String(chunk)), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => ((stderr += String(chunk)), true)) as typeof process.stderr.write;
  try {
    return { code: await main(argv), stdout, stderr };
  } finally {
    process.stdout.write = writeOut;
    process.stderr.write = writeErr;
  }
}

const COMMANDS = ['run', 'produce', 'replay-grid', 'bench'];

describe('lifelong CLI: help', () => {
  for (const command of COMMANDS) {
    it(`prints ${command}'s usage for "${command} --help", "${command} -h" and "help ${command}", exit 0`, async () => {
      const outcomes = [await cli(command, '--help'), await cli(command, '-h'), await cli('help', command), await cli(command, '--bogus', '--help')];
      for (const outcome of outcomes) {
        assert.equal(outcome.code, 0);
        assert.equal(outcome.stderr, '');
        assert.match(outcome.stdout, new RegExp(`^Usage:\\n  lifelong ${command} --`));
        for (const other of COMMANDS.filter((c) => c !== command)) assert.ok(!outcome.stdout.includes(`lifelong ${other} `), `${command}'s help shows only ${command}`);
      }
      assert.equal(new Set(outcomes.map((o) => o.stdout)).size, 1, 'the same text every way');
    });
  }

  it('prints every command and the exit codes for "help", "--help" and "-h", exit 0; nothing: exit 2', async () => {
    for (const argv of [['help'], ['--help'], ['-h']]) {
      const { code, stdout } = await cli(...argv);
      assert.equal(code, 0);
      for (const command of COMMANDS) {
        assert.ok(stdout.includes(`  lifelong ${command} --`), `synopsis of ${command}`);
        // The general help is made of each command's own usage text.
        const own = (await cli('help', command)).stdout.replace(/^Usage:\n/, '');
        for (const part of own.split('\n\n')) assert.ok(stdout.includes(part.trim()), `${command}'s text appears as is`);
      }
      assert.match(stdout, /Exit codes:\n {2}0 .*\n {2}1 .*\n {2}2 .*usage.*\n {2}3 .*config.*\n {2}4 .*input file.*\n {2}130 .*interrupted/);
    }
    assert.equal((await cli()).code, 2);
  });

  it('answers an unknown command, also after "help", with exit 2 on stderr', async () => {
    for (const argv of [['train'], ['help', 'train']]) {
      const { code, stdout, stderr } = await cli(...argv);
      assert.equal(code, 2);
      assert.equal(stdout, '');
      assert.match(stderr, /unknown command "train"/);
    }
  });

  it('does not take an argument after "--" for a help request', async () => {
    const { code, stderr } = await cli('run', '--', '--help');
    assert.equal(code, 2);
    assert.match(stderr, /Unexpected argument '--help'|--help/);
  });
});

describe('lifelong CLI: exit codes', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifelong-exit-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('maps each error class to its documented exit code', () => {
    const expected: [unknown, number][] = [
      [new UsageError('u', '--x'), 2],
      [new ConfigError('c', 'f.json', 'k'), 3],
      [new DataFormatError('d'), 4],
      [new InterruptedError('i'), 130],
      [new DemandAbortedError('a'), 130],
      [new TimeoutError('t'), 1],
      [new InvariantError('b'), 1],
      [new StrategyError('s'), 1],
      [new BackendError('b'), 1],
      [new ValidationError('v', 'r'), 1],
      [new LifelongError('l', { retriable: true }), 1],
      [new Error('e'), 1],
      ['not even an error', 1],
    ];
    for (const [error, code] of expected) assert.equal(exitCodeOf(error), code, String(error));
    assert.deepEqual(EXIT_CODES, { success: 0, failure: 1, usage: 2, config: 3, inputFile: 4, interrupted: 130 });
  });

  it('exits 2 for a usage error: unknown option, missing option, malformed value, each on stderr', async () => {
    const cases: [string[], RegExp][] = [
      [['run', '--bogus'], /Unknown option '--bogus'/],
      [['run'], /needs --pipeline FILE/],
      [['run', '--pipeline'], /--pipeline/],
      [['produce', '--dataset', 'cifar', '--brokers', 'h:1', '--topic-prefix', 'p'], /--dataset must be one of/],
      [['produce', '--bogus'], /bogus/],
      [['bench'], /exactly one of them/],
      [['bench', '--suite', 'online', '--repeats', '0'], /--repeats expects a positive integer/],
      [['replay-grid', '--checkpoint', 'c.json'], /needs --checkpoint FILE and --out FILE\.png/],
      [['replay-grid', '--checkpoint', 'c.json', '--out', 'g.png', '--per-class', '0'], /--per-class must be an integer from 1 to 1000/],
    ];
    for (const [argv, message] of cases) {
      const { code, stderr } = await cli(...argv);
      assert.equal(code, 2, argv.join(' '));
      assert.match(stderr, message, argv.join(' '));
    }
  });

  it('exits 3 for a bad config, naming the file', async () => {
    const file = path.join(dir, 'missing-pipeline.json');
    const { code, stderr } = await cli('run', '--pipeline', file, '--no-metrics');
    assert.equal(code, 3);
    assert.ok(stderr.includes('missing-pipeline.json'), stderr);
  });

  it('exits 4 for a bad input file: a bench report, a checkpoint', async () => {
    const report = path.join(dir, 'not-a-report.json');
    fs.writeFileSync(report, '{"runs": 3}');
    const bench = await cli('bench', '--render', report, '--out', dir);
    assert.equal(bench.code, 4);
    assert.match(bench.stderr, /not a bench report/);

    const checkpoint = path.join(dir, 'truncated.ckpt');
    fs.writeFileSync(checkpoint, 'no checkpoint');
    const grid = await cli('replay-grid', '--checkpoint', checkpoint, '--out', path.join(dir, 'g.png'));
    assert.equal(grid.code, 4);
    assert.ok(grid.stderr.includes(checkpoint), grid.stderr);
  });
});
