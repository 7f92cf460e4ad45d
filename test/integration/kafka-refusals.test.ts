import * as assert from 'node:assert/strict';
import type { Message } from 'kafkajs';
import { controlMessage, encodeBinary, HEADER_DETAIL, HEADER_ID, HEADER_REASON, HEADER_SOURCE_OFFSET } from '../../src/kafka';
import { kafkaBrokers, kafkaSource, uniqueTopicPrefix } from '../helpers/kafka';
import { pipelineFor, produceAll, readAll, runUntil, sum } from '../helpers/kafka-daemon-run';
import { takeSamples } from '../helpers/mnist-task';

/**
 * What the strategy refuses goes to the dead-letter topic too, with its reason, before its offset
 * is committed: labels beyond the head's capacity, and batches whose update would not be finite
 * (features of 3e38 let through by a bound raised to float32's maximum). The model stays sound.
 */
describe('samples the strategy refuses are dead letters (real broker)', function () {
  this.timeout(180_000);

  it('label-capacity and non-finite-update: dead-lettered with reason and detail, counted, and the weights stay finite', async () => {
    const brokers = await kafkaBrokers();
    const prefix = uniqueTopicPrefix('refusals');
    const topic = `${prefix}.split-mnist-0-1`;
    const { samples } = await takeSamples({ dataset: 'split-mnist', tasks: 1, samplesPerTask: 600, seed: 4, scenario: 'class-incremental' });
    const messages: Message[] = samples.map((s) => ({ key: s.id ?? null, ...encodeBinary({ x: s.x, y: s.y, ...(s.id !== undefined ? { id: s.id } : {}) }) }));
    // Every labelled sample is a candidate for the probe every 10th: none of these lands there.
    const capacityAt = [151, 233, 305, 377, 419];
    const poisonAt = [201, 352, 483];
    // In ascending order, so that each lands at its position in the final stream.
    for (const at of [...capacityAt, ...poisonAt].sort((a, b) => a - b)) {
      const x = Float32Array.from(samples[at]!.x);
      const poison = poisonAt.includes(at);
      if (poison) x.fill(3e38);
      const id = `${poison ? 'poison' : 'capacity'}-${at}`;
      messages.splice(at - 1, 0, { key: id, ...encodeBinary({ x, y: poison ? '1' : '7', id }) });
    }
    assert.ok([...capacityAt, ...poisonAt].every((at) => at % 10 !== 0));
    await produceAll(brokers, topic, [...messages, controlMessage()]);

    const pipeline = pipelineFor(kafkaSource(brokers, prefix, { maxAbsFeature: 3.4e38 }), 'refusals', 16);
    const run = await runUntil(pipeline, (s) => sum(s, 'lifelong_tasks_learned') >= 1 && sum(s, 'lifelong_samples_total') >= messages.length);
    const rejected = sum(run.series, 'lifelong_samples_total', { kind: 'rejected' });
    const letters = await readAll(brokers, `${prefix}.dead-letter`, rejected);
    assert.equal(letters.length, rejected, 'every refused sample is a dead letter, and nothing else is');

    const reasonOf = new Map(letters.map((l) => [String(l.headers?.[HEADER_ID] ?? ''), String(l.headers?.[HEADER_REASON])]));
    for (const at of capacityAt) assert.equal(reasonOf.get(`capacity-${at}`), 'label-capacity');
    for (const at of poisonAt) assert.equal(reasonOf.get(`poison-${at}`), 'non-finite-update');
    const byReason = (reason: string) => letters.filter((l) => String(l.headers?.[HEADER_REASON]) === reason);
    assert.equal(byReason('label-capacity').length, capacityAt.length);
    // A refused step refuses its batch: the poison and the clean samples beside it, nothing else.
    const nonFinite = byReason('non-finite-update');
    assert.equal(nonFinite.length + capacityAt.length, letters.length);
    assert.ok(nonFinite.length >= poisonAt.length && nonFinite.length <= poisonAt.length * 16, `${nonFinite.length} samples refused with the poison`);
    assert.equal(sum(run.series, 'lifelong_rejections_total', { reason: 'non-finite-update' }), nonFinite.length);
    assert.equal(sum(run.series, 'lifelong_rejections_total', { reason: 'label-capacity' }), capacityAt.length);

    const capacity = letters.find((l) => String(l.headers?.[HEADER_ID]) === `capacity-${capacityAt[0]}`)!;
    assert.match(String(capacity.headers?.[HEADER_DETAIL]), /"7".*2 output units/);
    assert.ok(Number(String(capacity.headers?.[HEADER_SOURCE_OFFSET])) >= 0);
    const poison = letters.find((l) => String(l.headers?.[HEADER_ID]) === `poison-${poisonAt[0]}`)!;
    assert.deepEqual(poison.value, encodeBinary({ x: new Float32Array(784).fill(3e38), y: '1', id: `poison-${poisonAt[0]}` }).value, 'the record as it came');
    assert.ok(run.warnings.some((w) => /refused sample .*non-finite loss or gradient/.test(w)), 'a warning says so');

    // The poison never reached the weights: the task is learned.
    const accuracy = run.report.accuracyMatrix[0]?.[0] ?? 0;
    assert.ok(accuracy > 0.95, `probe accuracy ${accuracy}`);
    assert.equal(sum(run.series, 'lifelong_samples_total', { kind: 'trained' }) + sum(run.series, 'lifelong_samples_total', { kind: 'held-out' }) + rejected, messages.length);
  });

  it("evaluation.endedTaskLabelled 'ignore': labelled samples of an ended task are dead letters with reason task-ended, counted", async () => {
    const brokers = await kafkaBrokers();
    const prefix = uniqueTopicPrefix('refusals-ended');
    const topic = `${prefix}.split-mnist-0-1`;
    const { samples } = await takeSamples({ dataset: 'split-mnist', tasks: 1, samplesPerTask: 230, seed: 6, scenario: 'class-incremental' });
    const encode = (s: (typeof samples)[number], id: string): Message => ({ key: id, ...encodeBinary({ x: s.x, y: s.y, id }) });
    const learned = samples.slice(0, 200).map((s, i) => encode(s, `learned-${i}`));
    const late = samples.slice(200).map((s, i) => encode(s, `late-${i}`));
    await produceAll(brokers, topic, [...learned, controlMessage(), ...late]);

    const pipeline = { ...pipelineFor(kafkaSource(brokers, prefix), 'refusals-ended', 16), evaluation: { probeSize: 300, holdoutEvery: 10, endedTaskLabelled: 'ignore' as const } };
    const run = await runUntil(pipeline, (s) => sum(s, 'lifelong_samples_total', { kind: 'rejected' }) >= late.length);
    const letters = await readAll(brokers, `${prefix}.dead-letter`, late.length);
    assert.deepEqual(letters.map((l) => String(l.headers?.[HEADER_ID])).sort(), late.map((m) => String(m.key)).sort(), 'every late sample a dead letter, and nothing else');
    assert.ok(letters.every((l) => String(l.headers?.[HEADER_REASON]) === 'task-ended'));
    assert.match(String(letters[0]?.headers?.[HEADER_DETAIL]), /has ended .*endedTaskLabelled/);
    assert.equal(sum(run.series, 'lifelong_rejections_total', { reason: 'task-ended' }), late.length);
    assert.equal(sum(run.series, 'lifelong_samples_total', { kind: 'evaluated' }), 0, "'ignore' scores nothing");
  });
});
