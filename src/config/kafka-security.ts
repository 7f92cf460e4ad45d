/**
 * The Kafka source's `ssl` and `sasl`: what a pipeline file may say, checked key by key so that a
 * typo is an error naming the key rather than a handshake that fails (or succeeds unencrypted)
 * at run time. What passes goes to kafkajs (kafka/connection.ts), with the `*File` keys read there.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ConfigIssue } from './config-issue';
import { render } from './json-value';

/** The SASL mechanisms a pipeline file can configure (kafkajs' `aws` and `oauthbearer` need code). */
export const SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;

/** TLS keys taken as they are: PEM text, or how to check the broker. */
const TLS_TEXT_KEYS = ['ca', 'cert', 'key', 'passphrase', 'servername'] as const;
/** TLS keys naming files, relative to the pipeline file; read when connecting. */
const TLS_FILE_KEYS = ['caFile', 'certFile', 'keyFile'] as const;
const TLS_KEYS: readonly string[] = [...TLS_TEXT_KEYS, ...TLS_FILE_KEYS, 'rejectUnauthorized'];
const SASL_KEYS: readonly string[] = ['mechanism', 'username', 'password', 'passwordEnv'];

/**
 * `ssl` checked, with its file paths made absolute against `baseDir` (the pipeline file's folder);
 * problems go to `issues` under `source.ssl.*`.
 */
export function resolveTls(ssl: Readonly<Record<string, unknown>> | boolean, baseDir: string, issues: ConfigIssue[]): Readonly<Record<string, unknown>> | boolean {
  if (typeof ssl === 'boolean') return ssl;
  const resolved: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(ssl)) {
    const at = `source.ssl.${key}`;
    if (!TLS_KEYS.includes(key)) {
      issues.push({ key: at, problem: `is not a TLS option (known: ${TLS_KEYS.join(', ')})` });
    } else if (key === 'rejectUnauthorized') {
      if (typeof value !== 'boolean') issues.push({ key: at, problem: `must be true or false, got ${render(value)}` });
      else resolved[key] = value;
    } else if (typeof value !== 'string' || value === '') {
      issues.push({ key: at, problem: `must be a non-empty string, got ${render(value)}` });
    } else if ((TLS_FILE_KEYS as readonly string[]).includes(key)) {
      const file = path.resolve(baseDir, value);
      try {
        fs.accessSync(file, fs.constants.R_OK);
        resolved[key] = file;
      } catch {
        issues.push({ key: at, problem: `cannot read ${file}` });
      }
    } else if (['ca', 'cert', 'key'].includes(key) && !value.includes('-----BEGIN ')) {
      issues.push({ key: at, problem: `must be PEM text ("-----BEGIN ..."); to name a file use ${key}File` });
    } else {
      resolved[key] = value;
    }
  }
  for (const name of ['ca', 'cert', 'key']) {
    if (name in ssl && `${name}File` in ssl) issues.push({ key: `source.ssl.${name}File`, problem: `and source.ssl.${name} both give the ${name}: keep one` });
  }
  const hasCert = 'cert' in ssl || 'certFile' in ssl;
  const hasKey = 'key' in ssl || 'keyFile' in ssl;
  if (hasCert !== hasKey) issues.push({ key: hasCert ? 'source.ssl.key' : 'source.ssl.cert', problem: 'is needed too: a client certificate goes with its private key (keyFile and certFile)' });
  return resolved;
}

/**
 * `sasl` checked ({} for none): mechanism, username and a password, given in the file or (better)
 * named by `passwordEnv`, read from that environment variable now; problems go under `source.sasl.*`.
 */
export function resolveSasl(sasl: Readonly<Record<string, unknown>>, issues: ConfigIssue[], env: NodeJS.ProcessEnv = process.env): Readonly<Record<string, unknown>> {
  if (Object.keys(sasl).length === 0) return sasl;
  const before = issues.length;
  for (const key of Object.keys(sasl)) {
    if (!SASL_KEYS.includes(key)) issues.push({ key: `source.sasl.${key}`, problem: `is not a SASL option (known: ${SASL_KEYS.join(', ')})` });
  }
  const { mechanism, username, password, passwordEnv } = sasl;
  if (typeof mechanism !== 'string' || !(SASL_MECHANISMS as readonly string[]).includes(mechanism)) {
    issues.push({ key: 'source.sasl.mechanism', problem: `must be one of ${SASL_MECHANISMS.map((m) => JSON.stringify(m)).join(', ')}, got ${render(mechanism)}` });
  }
  if (typeof username !== 'string' || username === '') issues.push({ key: 'source.sasl.username', problem: `must be a non-empty string, got ${render(username)}` });
  let secret: string | undefined;
  if (password !== undefined && passwordEnv !== undefined) {
    issues.push({ key: 'source.sasl.passwordEnv', problem: 'and source.sasl.password both give the password: keep one' });
  } else if (passwordEnv !== undefined) {
    if (typeof passwordEnv !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(passwordEnv)) {
      issues.push({ key: 'source.sasl.passwordEnv', problem: `must be an environment variable name, got ${render(passwordEnv)}` });
    } else if (!env[passwordEnv]) {
      issues.push({ key: 'source.sasl.passwordEnv', problem: `names ${passwordEnv}, which is not set (or empty)` });
    } else {
      secret = env[passwordEnv];
    }
  } else if (typeof password !== 'string' || password === '') {
    issues.push({ key: 'source.sasl.password', problem: password === undefined ? 'is required (or source.sasl.passwordEnv, naming an environment variable)' : 'must be a non-empty string' });
  } else {
    secret = password;
  }
  if (issues.length > before) return sasl;
  return { mechanism, username, password: secret };
}

