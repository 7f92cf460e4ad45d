import * as assert from 'node:assert/strict';
import type { Message } from 'kafkajs';
import { Rng } from '../../src/core/rng';
import type { Sample } from '../../src/core/types';
import type { RunReport } from '../../src/engine/report';
import { controlMessage, encodeBinary, HEADER_REASON, INVALID_REASONS } from '../../src/kafka';
import type { Series } from '../helpers/exposition';
import { kafkaBrokers, kafkaSource, uniqueTopicPrefix } from '../helpers/kafka';
import { pipelineFor, produceAll, readAll, runUntil, sum } from '../helpers/kafka-daemon-run';
import { malformedMessages, MALFORMED_FAMILIES } from '../helpers/malformed-messages';
import { takeSamples } from '../helpers/mnist-task';

/**
 * A fuzz run against a real broker: 10,000 malformed messages of every kind (structure, types,
 * values, sizes, encodings, headers; test/helpers/malformed-messages.ts, seeded) interleaved with
 * a real split-MNIST task. The daemon stays up, every malformed message is dead-lettered with the
 * reason the format gives it, the warnings stay few, and the task is learned as well as by a run
 * on the clean messages alone.
 */

const MALFORMED = 10_000;
const CLEAN = 3000;
const MAX_BYTES = 8000;

const countBy = <T>(items: readonly T[], key: (item: T) => string): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const item of items) out[key(item)] = (out[key(item)] ?? 0) + 1;
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
};

describe('fuzz: 10,000 malformed messages interleaved with a real task (real broker)', function () {
  this.timeout(300_000);
  let brokers: string[];
  let clean: Sample[];

  before(async () => {
    brokers = await kafkaBrokers();
    ({ samples: clean } = await takeSamples({ dataset: 'split-mnist', tasks: 1, samplesPerTask: CLEAN, seed: 4, scenario: 'class-incremental' }));
  });

  it('stays up, dead-letters every malformed message with its reason, and learns the task as a clean run does', async () => {
    const fuzzPrefix = uniqueTopicPrefix('fuzz');
    const cleanPrefix = uniqueTopicPrefix('fuzz-clean');
    const fuzzTopic = `${fuzzPrefix}.split-mnist-0-1`;
    const cleanTopic = `${cleanPrefix}.split-mnist-0-1`;
    const good: Message[] = clean.map((s) => ({ key: s.id ?? null, ...encodeBinary({ x: s.x, y: s.y, ...(s.id !== undefined ? { id: s.id } : {}) }) }));
    const bad = malformedMessages(MALFORMED, 13, { inputSize: 784, maxBytes: MAX_BYTES, maxAbsFeature: 1e6, topic: fuzzTopic });
    assert.ok(MALFORMED_FAMILIES.length >= 30, 'every family of damage is in the run');

    // Both orders kept, interleaved at seeded random positions.
    const rng = new Rng(21);
    const interleaved: Message[] = [];
    let g = 0;
    let b = 0;
    while (g < good.length || b < bad.length) {
      const takeBad = g >= good.length || (b < bad.length && rng.int(good.length + bad.length - g - b) < bad.length - b);
      if (takeBad) {
        const { reason: _reason, family: _family, ...message } = bad[b++]!;
        interleaved.push(message as Message);
      } else {
        interleaved.push(good[g++]!);
      }
    }
    await produceAll(brokers, fuzzTopic, [...interleaved, controlMessage()]);
    await produceAll(brokers, cleanTopic, [...good, controlMessage()]);

    const learned = (total: number) => (s: Series[]) => sum(s, 'lifelong_tasks_learned') >= 1 && sum(s, 'lifelong_samples_total') >= total;
    const fuzz = await runUntil(pipelineFor(kafkaSource(brokers, fuzzPrefix, { maxMessageBytes: MAX_BYTES }), 'fuzz'), learned(MALFORMED + CLEAN));
    const reference = await runUntil(pipelineFor(kafkaSource(brokers, cleanPrefix, { maxMessageBytes: MAX_BYTES }), 'fuzz-clean'), learned(CLEAN));

    // Every message accounted for: the malformed rejected, the clean ones learned (or held out as the probe).
    assert.equal(sum(fuzz.series, 'lifelong_samples_total'), MALFORMED + CLEAN);
    assert.equal(sum(fuzz.series, 'lifelong_samples_total', { kind: 'rejected' }), MALFORMED);
    assert.equal(sum(fuzz.series, 'lifelong_samples_total', { kind: 'trained' }) + sum(fuzz.series, 'lifelong_samples_total', { kind: 'held-out' }), CLEAN);
    const expected = countBy(bad, (m) => m.reason);
    const byReason = Object.fromEntries(Object.keys(expected).map((reason) => [reason, sum(fuzz.series, 'lifelong_rejections_total', { reason })]));
    assert.deepEqual(byReason, expected, 'lifelong_rejections_total by reason');

    // On the dead-letter topic: one letter per malformed message, with the reason the format gives it.
    const letters = await readAll(brokers, `${fuzzPrefix}.dead-letter`, MALFORMED);
    assert.equal(letters.length, MALFORMED, 'one dead letter per malformed message, no more');
    assert.deepEqual(countBy(letters, (l) => String(l.headers?.[HEADER_REASON])), expected);
    assert.ok(letters.every((l) => INVALID_REASONS.includes(String(l.headers?.[HEADER_REASON]) as never)));

    // The log is not flooded: at most 10 lines per reason per minute, plus summaries.
    const reasons = Object.keys(expected).length;
    const minutes = Math.ceil(fuzz.report.durationSeconds / 60) + 1;
    assert.ok(fuzz.warnings.length <= reasons * 11 * minutes, `${fuzz.warnings.length} warnings for ${reasons} reasons over ${minutes} minutes`);
    assert.ok(fuzz.warnings.some((w) => /more rejections \(.+\) not logged/.test(w)), 'the summary says how many were left out');

    const accuracy = (r: RunReport) => r.accuracyMatrix[0]?.[0] ?? Number.NaN;
    assert.deepEqual(fuzz.report.tasks, [fuzzTopic]);
    assert.ok(accuracy(reference.report) > 0.95, `the clean run learned the task: ${accuracy(reference.report)}`);
    assert.ok(Math.abs(accuracy(fuzz.report) - accuracy(reference.report)) <= 0.01, `accuracy ${accuracy(fuzz.report)} against ${accuracy(reference.report)} on clean data`);
  });
});
