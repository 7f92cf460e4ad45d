export interface JsonSyntaxError {
  /** 0-based offset into the text (after a BOM). */
  readonly offset: number;
  /** 1-based. */
  readonly line: number;
  /** 1-based. */
  readonly column: number;
  readonly problem: string;
}

/**
 * Finds the first JSON syntax error in `text` with a small recursive-descent scan (only run
 * after JSON.parse failed, so speed does not matter). Undefined if the text is valid JSON.
 */
export function locateJsonSyntaxError(text: string): JsonSyntaxError | undefined {
  class SyntaxAt {
    constructor(
      readonly offset: number,
      readonly problem: string,
    ) {}
  }
  let i = 0;
  const found = (): string => (i >= text.length ? 'the end of the file' : JSON.stringify(text[i]));
  const fail = (problem: string): never => {
    throw new SyntaxAt(i, problem);
  };
  const skipSpace = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i] as string)) i++;
  };
  const string = (): void => {
    i++; // opening quote
    for (;;) {
      if (i >= text.length) fail('unterminated string');
      const c = text[i] as string;
      if (c === '"') {
        i++;
        return;
      }
      if (c === '\\') {
        const escaped = text[i + 1];
        if (escaped === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail('bad \\u escape in string');
          i += 6;
        } else if (escaped !== undefined && '"\\/bfnrt'.includes(escaped)) {
          i += 2;
        } else {
          fail('bad escape in string');
        }
      } else if (c < ' ') {
        fail('control character (such as a raw newline) inside a string');
      } else {
        i++;
      }
    }
  };
  const numberPattern = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const value = (): void => {
    skipSpace();
    const c = text[i];
    if (c === '{') return container('}', true);
    if (c === '[') return container(']', false);
    if (c === '"') return string();
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) {
      numberPattern.lastIndex = i;
      const match = numberPattern.exec(text);
      if (!match) fail('invalid number');
      i = numberPattern.lastIndex;
      if (/[0-9.eE]/.test(text[i] ?? '')) fail('invalid number');
      return;
    }
    for (const literal of ['true', 'false', 'null']) {
      if (text.startsWith(literal, i)) {
        i += literal.length;
        return;
      }
    }
    const word = /^[A-Za-z_$][\w$]*/.exec(text.slice(i));
    if (word) {
      fail(`unexpected word ${JSON.stringify(word[0])} (strings need double quotes; the literals are true, false, null)`);
    }
    fail(`expected a value, found ${found()}`);
  };
  const container = (close: '}' | ']', isObject: boolean): void => {
    i++; // opening bracket
    skipSpace();
    if (text[i] === close) {
      i++;
      return;
    }
    for (;;) {
      skipSpace();
      if (isObject) {
        if (text[i] !== '"') {
          fail(
            text[i] === close
              ? `trailing comma before ${JSON.stringify(close)}`
              : `expected a double-quoted key, found ${found()}`,
          );
        }
        string();
        skipSpace();
        if (text[i] !== ':') fail(`expected ':' after the key, found ${found()}`);
        i++;
      } else if (text[i] === close) {
        fail(`trailing comma before ${JSON.stringify(close)}`);
      }
      value();
      skipSpace();
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === close) {
        i++;
        return;
      }
      fail(`expected ',' or ${JSON.stringify(close)}, found ${found()}`);
    }
  };

  try {
    value();
    skipSpace();
    if (i < text.length) fail(`unexpected ${found()} after the end of the JSON value`);
    return undefined;
  } catch (error) {
    if (!(error instanceof SyntaxAt)) throw error;
    const before = text.slice(0, error.offset);
    const line = before.split('\n').length;
    const column = error.offset - before.lastIndexOf('\n');
    return { offset: error.offset, line, column, problem: error.problem };
  }
}
