import { ConfigError, DataFormatError, InterruptedError, UsageError } from '../core/errors';

/**
 * The CLI's exit codes. 2 for a usage error is the getopt/argparse convention and 130 (128 +
 * SIGINT) the shell's for a run stopped by a signal; 3 and 4 tell a script whether to fix the
 * config or the input file before retrying, which a bare 1 did not.
 */
export const EXIT_CODES = {
  success: 0,
  failure: 1,
  usage: 2,
  config: 3,
  inputFile: 4,
  interrupted: 130,
} as const;

/** The exit codes as `lifelong help` and the README state them. */
export const EXIT_CODES_USAGE = `Exit codes:
  ${EXIT_CODES.success}    success (a Kafka daemon stopped by SIGINT/SIGTERM that finished gracefully, too)
  ${EXIT_CODES.failure}    runtime failure (a broker, a backend, a graceful shutdown past its deadline)
  ${EXIT_CODES.usage}    usage: unknown command or option, missing or malformed argument
  ${EXIT_CODES.config}    bad config: the message names the file and the key
  ${EXIT_CODES.inputFile}    bad input file: dataset, checkpoint or bench report missing, truncated or foreign
  ${EXIT_CODES.interrupted}  interrupted by SIGINT/SIGTERM before the end of a finite stream, or by a second signal
`;

/** The exit code for an error that ended a command. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof UsageError) return EXIT_CODES.usage; // before ConfigError: a UsageError is one
  if (error instanceof ConfigError) return EXIT_CODES.config;
  if (error instanceof DataFormatError) return EXIT_CODES.inputFile;
  if (error instanceof InterruptedError) return EXIT_CODES.interrupted;
  return EXIT_CODES.failure;
}
