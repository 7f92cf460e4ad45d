import { BENCH_USAGE, benchCommand } from './bench-command';
import { EXIT_CODES, EXIT_CODES_USAGE, exitCodeOf } from './exit-codes';
import { wantsHelp } from './parse-command-args';
import { PRODUCE_USAGE, produceCommand } from './produce';
import { parseReplayGridArgs, REPLAY_GRID_USAGE, replayGridCommand } from './replay-grid';
import { parseRunArgs, RUN_USAGE, runCommand } from './run-command';
import { parseServeArgs, SERVE_USAGE, serveCommand } from './serve-command';
import { STRATEGIES_USAGE, strategiesCommand } from './strategies-command';
import { formatCommandUsage, type CommandUsage } from './usage';

interface Command {
  readonly usage: CommandUsage;
  /** Runs the command on its arguments; resolves to the exit code. */
  readonly run: (args: readonly string[]) => Promise<number>;
}

/** Every command, in the order `lifelong help` lists them. */
const COMMANDS: ReadonlyMap<string, Command> = new Map<string, Command>([
  ['run', { usage: RUN_USAGE, run: (args) => runCommand(parseRunArgs(args)) }],
  ['serve', { usage: SERVE_USAGE, run: (args) => serveCommand(parseServeArgs(args)) }],
  ['produce', { usage: PRODUCE_USAGE, run: (args) => produceCommand(args) }],
  ['replay-grid', { usage: REPLAY_GRID_USAGE, run: (args) => replayGridCommand(parseReplayGridArgs(args)) }],
  ['bench', { usage: BENCH_USAGE, run: (args) => benchCommand(args) }],
  ['strategies', { usage: STRATEGIES_USAGE, run: async (args) => strategiesCommand(args) }],
]);

const USAGE = `lifelong — online continual learning

Usage:
${[...COMMANDS.values()].map((c) => c.usage.synopsis).join('\n')}
  lifelong help [COMMAND]
  lifelong COMMAND --help

${[...COMMANDS.values()].map((c) => c.usage.description).join('\n')}
${EXIT_CODES_USAGE}`;

/** The CLI. Returns the process exit code; never calls process.exit (so tests can call it). */
export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    process.stdout.write(USAGE);
    return EXIT_CODES.usage;
  }
  if (name === 'help' || name === '--help' || name === '-h') {
    const topic = name === 'help' ? rest[0] : undefined;
    if (topic === undefined) {
      process.stdout.write(USAGE);
      return EXIT_CODES.success;
    }
    return help(topic);
  }
  const command = COMMANDS.get(name);
  if (command === undefined) return unknownCommand(name);
  if (wantsHelp(rest)) return help(name);
  try {
    return await command.run(rest);
  } catch (error) {
    process.stderr.write(`lifelong: ${(error as Error).message}\n`);
    return exitCodeOf(error);
  }
}

/** `lifelong help COMMAND`, `lifelong COMMAND --help`: that command's usage on stdout. */
function help(name: string): number {
  const command = COMMANDS.get(name);
  if (command === undefined) return unknownCommand(name);
  process.stdout.write(formatCommandUsage(command.usage));
  return EXIT_CODES.success;
}

function unknownCommand(name: string): number {
  process.stderr.write(`lifelong: unknown command "${name}"\n\n${USAGE}`);
  return EXIT_CODES.usage;
}
