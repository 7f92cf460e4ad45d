import * as fs from 'node:fs';
import type { KafkaConfig } from 'kafkajs';
import { ConfigError } from '../core/errors';

const FILE_KEYS = { caFile: 'ca', certFile: 'cert', keyFile: 'key' } as const;

/**
 * kafkajs' `ssl` (Node's tls.connect options) from a pipeline's `source.ssl`: false or absent is
 * plaintext, true the system's CAs; in an object, caFile, certFile and keyFile are read into ca,
 * cert and key (read when connecting, so a renewed certificate is taken at the next start).
 */
export function tlsOptions(ssl: unknown): KafkaConfig['ssl'] | undefined {
  if (ssl === undefined || ssl === false) return undefined;
  if (typeof ssl !== 'object' || ssl === null) return true;
  const options: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(ssl)) {
    if (!(key in FILE_KEYS)) {
      options[key] = value;
      continue;
    }
    try {
      options[FILE_KEYS[key as keyof typeof FILE_KEYS]] = fs.readFileSync(String(value), 'utf8');
    } catch (error) {
      throw new ConfigError(`kafka: cannot read source.ssl.${key} ${String(value)}: ${(error as Error).message}`, undefined, `source.ssl.${key}`, error);
    }
  }
  return options as KafkaConfig['ssl'];
}
