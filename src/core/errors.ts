/**
 * One error hierarchy for the whole daemon, in the style of kafkajs: every error says whether
 * retrying the same operation can succeed and keeps the error that caused it.
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

/** A data file (IDX, dataset) is truncated, foreign or inconsistent. */
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
