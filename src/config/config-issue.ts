import { ConfigError } from '../core/errors';

/** One problem with one key. `key` is a dotted path, e.g. "training.batchSize". */
export interface ConfigIssue {
  readonly key: string;
  readonly problem: string;
}

/**
 * One ConfigError for all issues, one line each: "<where>: <key>: <problem>".
 * @param where the file's path, or a description such as "daemon config".
 * @param file the file, if there is one (ConfigError.file).
 */
export function configErrorFor(where: string, file: string | undefined, issues: readonly ConfigIssue[]): ConfigError {
  const lines = issues.map((issue) => `${where}: ${issue.key === '' ? '' : issue.key + ': '}${issue.problem}`);
  return new ConfigError(lines.join('\n'), file, issues[0]?.key);
}
