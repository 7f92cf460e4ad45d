import * as assert from 'node:assert/strict';
import type { Logger } from '../../src/core/log';
import { RateLimitedWarnings } from '../../src/core/rate-limited-log';

function recordingLogger(): { log: Logger; lines: { message: string; fields?: Record<string, unknown> }[] } {
  const lines: { message: string; fields?: Record<string, unknown> }[] = [];
  const keep = (message: string, fields?: Record<string, unknown>) => void lines.push({ message, ...(fields ? { fields } : {}) });
  return { log: { debug: () => undefined, info: () => undefined, warn: keep, error: () => undefined }, lines };
}

describe('RateLimitedWarnings', () => {
  it('writes the first N warnings of each reason per window, then one summary of those left out', () => {
    const { log, lines } = recordingLogger();
    let now = 0;
    const warnings = new RateLimitedWarnings(log, { perWindow: 3, windowMs: 60_000, now: () => now });
    for (let i = 0; i < 10; i++) warnings.warn('bad-json', `bad ${i}`, { task: 't' });
    warnings.warn('oversize', 'big');
    assert.deepEqual(lines.map((l) => l.message), ['bad 0', 'bad 1', 'bad 2', 'big'], 'another reason is not drowned by the first');
    assert.deepEqual(lines[0]?.fields, { task: 't', reason: 'bad-json' });
    now = 61_000;
    warnings.warn('bad-json', 'bad 10');
    assert.equal(lines.length, 6);
    assert.match(lines[4]?.message ?? '', /^7 more rejections \(bad-json\) not logged in the last 61 s/);
    assert.deepEqual(lines[4]?.fields, { reason: 'bad-json', suppressed: 7 });
    assert.equal(lines[5]?.message, 'bad 10', 'a new window writes again');
    for (let i = 0; i < 4; i++) warnings.warn('bad-json', 'again');
    warnings.flush();
    assert.match(lines[lines.length - 1]?.message ?? '', /^2 more rejections \(bad-json\)/, 'flush writes what is pending');
    const count = lines.length;
    warnings.flush();
    assert.equal(lines.length, count, 'nothing left to summarise');
  });
});
