import * as fs from 'node:fs';
import { ConfigError } from '../core/errors';
import { locateJsonSyntaxError } from './json-syntax';
import { isPlainObject, render } from './json-value';

/**
 * Reads a JSON file that must hold one object. Every failure is a ConfigError naming the file;
 * a syntax error also gives its line, column and offset (V8's own messages often do not).
 * @param what e.g. "pipeline config", for the message.
 */
export function readJsonObject(file: string, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new ConfigError(`${file}: cannot read the ${what}: ${reason}`, file, undefined, cause);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a BOM some editors write

  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    const located = locateJsonSyntaxError(text);
    const detail = located
      ? `at line ${located.line}, column ${located.column} (offset ${located.offset}): ${located.problem}`
      : cause instanceof Error
        ? cause.message
        : String(cause);
    throw new ConfigError(`${file}: the ${what} is not valid JSON ${detail}`, file, undefined, cause);
  }
  if (!isPlainObject(parsed)) {
    throw new ConfigError(
      `${file}: the ${what} must be a JSON object ({...}), found ${render(parsed)}`,
      file,
    );
  }
  return parsed;
}
