import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from '../core/errors';

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;
type ParsedValues<O extends OptionsConfig> = ReturnType<typeof parseArgs<{ args: string[]; options: O; strict: true }>>['values'];

/**
 * A command's options, parsed strictly (node:util parseArgs): an unknown option, a missing value
 * or a stray argument is a UsageError with parseArgs's own message, so the CLI exits 2 for it.
 */
export function parseCommandArgs<O extends OptionsConfig>(args: readonly string[], options: O): ParsedValues<O> {
  try {
    return parseArgs({ args: [...args], options, strict: true }).values;
  } catch (error) {
    throw new UsageError((error as Error).message, undefined, error);
  }
}

/** True when the arguments ask for help (--help or -h before any `--`): that wins over the rest. */
export function wantsHelp(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).some((arg) => arg === '--help' || arg === '-h');
}
