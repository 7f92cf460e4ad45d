/**
 * The daemon's own settings (how it runs, not what it learns): tensor backend, metrics endpoint,
 * logging. Defaults < config file (config/default.json documents every key) < LIFELONG_*
 * environment variables < overrides (command-line flags).
 */
import type convict from 'convict';
import { DEFAULT_MAX_TASKS } from '../metrics/prometheus';
import { configErrorFor } from './config-issue';
import { formats } from './formats';
import { DEFAULT_MODULE_DIRS } from './module-dirs';
import { readJsonObject } from './read-json-object';
import { resolveConfig } from './resolve-config';

export const BACKEND_NAMES = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
/** 'auto' tries tensorflow-gpu, tensorflow, wasm, cpu in that order. */
export type BackendName = (typeof BACKEND_NAMES)[number];

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface MetricsConfig {
  readonly enabled: boolean;
  readonly host: string;
  /** 0 asks the system for a free port (tests). */
  readonly port: number;
  /** Tasks with series of their own per metric: the newest; older ones' counts go to task="_other". */
  readonly maxTasks: number;
}

export interface LogConfig {
  readonly level: LogLevel;
  readonly format: LogFormat;
}

export interface StrategiesConfig {
  /**
   * The directories a pipeline's strategy.module may be loaded from (config/module-dirs.ts):
   * '{pipeline}' is the pipeline file's folder, relative paths are against the working directory.
   */
  readonly moduleDirs: readonly string[];
}

export interface DaemonConfig {
  readonly backend: BackendName;
  readonly metrics: MetricsConfig;
  readonly log: LogConfig;
  readonly strategies: StrategiesConfig;
}

/** Any subset of the daemon config; numbers and booleans may be given as strings (flags). */
export type DaemonConfigOverrides = {
  readonly [K in keyof DaemonConfig]?: DaemonConfig[K] extends object
    ? { readonly [P in keyof DaemonConfig[K]]?: DaemonConfig[K][P] | string }
    : DaemonConfig[K];
};

const DAEMON_SCHEMA: convict.Schema<DaemonConfig> = {
  backend: {
    doc: 'Tensor backend: auto tries tensorflow-gpu, tensorflow (tfjs-node), wasm, then cpu.',
    format: formats.oneOf(BACKEND_NAMES),
    default: 'auto',
    env: 'LIFELONG_BACKEND',
  },
  metrics: {
    enabled: {
      doc: 'Serve Prometheus metrics over HTTP.',
      format: formats.boolean(),
      default: true,
    },
    host: {
      doc: 'Address the metrics endpoint listens on.',
      format: formats.string({ pattern: /\S/, expects: 'a host name or address' }),
      default: '127.0.0.1',
      env: 'LIFELONG_METRICS_HOST',
    },
    port: {
      doc: 'Port of the metrics endpoint; 0 picks a free port.',
      format: formats.integer({ min: 0, max: 65535, expects: 'a port number from 0 to 65535' }),
      default: 9464,
      env: 'LIFELONG_METRICS_PORT',
    },
    maxTasks: {
      doc: 'Tasks exported per metric, the newest first seen; an older task\'s gauges are removed and its counts move to task="_other".',
      format: formats.integer({ min: 1 }),
      default: DEFAULT_MAX_TASKS,
      env: 'LIFELONG_METRICS_MAX_TASKS',
    },
  },
  log: {
    level: {
      doc: 'Least severe log level written.',
      format: formats.oneOf(LOG_LEVELS),
      default: 'info',
      env: 'LIFELONG_LOG_LEVEL',
    },
    format: {
      doc: 'text: one human-readable line per event; json: one JSON object per line.',
      format: formats.oneOf(LOG_FORMATS),
      default: 'text',
      env: 'LIFELONG_LOG_FORMAT',
    },
  },
  strategies: {
    moduleDirs: {
      doc: "Directories a pipeline's strategy.module may be loaded from: '{pipeline}' is the pipeline file's folder, relative paths are against the working directory; [] allows none.",
      format: formats.stringList({ pattern: /\S/, expects: "an array of directories ('{pipeline}' allowed)" }),
      default: [...DEFAULT_MODULE_DIRS],
    },
  },
};

/**
 * Loads the daemon config: schema defaults, then `file` (if given), then the LIFELONG_*
 * variables of `env`, then `overrides`. Throws a ConfigError naming the file (or "daemon
 * config") and every offending key.
 * @param env defaults to process.env; tests pass their own.
 */
export function loadDaemonConfig(
  file?: string,
  overrides: DaemonConfigOverrides = {},
  env: NodeJS.ProcessEnv = process.env,
): DaemonConfig {
  const values = file === undefined ? {} : readJsonObject(file, 'daemon config');
  const { value, issues } = resolveConfig(DAEMON_SCHEMA, { file: values, env, overrides });
  if (value === undefined) throw configErrorFor(file ?? 'daemon config', file, issues);
  return value;
}
