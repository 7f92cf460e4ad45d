/**
 * One error hierarchy for the whole daemon, in the style of kafkajs: every error says whether
 * retrying the same operation can succeed and keeps the error that caused it. The CLI maps the
 * class to the exit code (cli/exit-codes.ts), so a throw site picks the class that says what failed.
 */
export class LifelongError extends Error {
  readonly retriable: boolean;
  override readonly cause?: unknown;

  constructor(message: string, options: { retriable?: boolean; cause?: unknown } = {}) {
    super(message);
    this.name = new.target.name;
    this.retriable = options.retriable ?? false;
    if (options.cause !== undefined) this.cause = options.cause;
  }
}

/** A configuration file or value is wrong. The message names the file and the key. */
export class ConfigError extends LifelongError {
  constructor(
    message: string,
    readonly file?: string,
    readonly key?: string,
    cause?: unknown,
  ) {
    super(message, { cause });
  }
}

/**
 * The command line is wrong: an unknown command or option, a missing or malformed argument, or
 * an option that does not fit the rest of the invocation. `key` is the option (`--rate`).
 * A ConfigError, because an option is configuration given on the command line.
 */
export class UsageError extends ConfigError {
  constructor(message: string, option?: string, cause?: unknown) {
    super(message, undefined, option, cause);
  }
}

/** An input file (dataset, checkpoint, report) is missing, truncated, foreign or inconsistent. */
export class DataFormatError extends LifelongError {}

/** One input message or sample is invalid; it is rejected (dead-lettered), the daemon goes on. */
export class ValidationError extends LifelongError {
  constructor(
    message: string,
    /** A short, bounded reason code usable as a metric label, e.g. "wrong-length". */
    readonly reason: string,
  ) {
    super(message);
  }
}

/** A tensor backend could not be loaded. */
export class BackendError extends LifelongError {}

/** A strategy was misused or its state cannot be imported. */
export class StrategyError extends LifelongError {}

/** An operation did not finish within its deadline. */
export class TimeoutError extends LifelongError {}

/** A signal (SIGINT, SIGTERM) stopped the work before it was done. */
export class InterruptedError extends LifelongError {}

/**
 * A function was called outside its contract (an argument out of range, a state that cannot
 * happen): a bug in the caller, not bad input, so retrying cannot help.
 */
export class InvariantError extends LifelongError {}
