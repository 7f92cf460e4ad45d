import * as assert from 'node:assert/strict';
import {
  CONTROL_END_OF_TASK,
  controlMessage,
  deadLetterHeaders,
  decodeMessage,
  encodeBinary,
  encodeJson,
  HEADER_CONTROL,
  HEADER_DETAIL,
  HEADER_FORMAT,
  HEADER_ID,
  HEADER_LABEL,
  HEADER_REASON,
  HEADER_SOURCE_OFFSET,
  HEADER_SOURCE_PARTITION,
  HEADER_SOURCE_TOPIC,
  HEADER_TASK,
  DEFAULT_MAX_ABS_FEATURE,
  INVALID_REASONS,
  isKafkaTopicName,
  type DecodeResult,
  type EncodedMessage,
  type InvalidReason,
  type KafkaMessageLike,
  type MessageHeaders,
  type TaskFrom,
} from '../../src/kafka/codec';

const INPUT = 4;
// The widest settings (any float32, tasks named by headers); the defaults are tested apart.
const OPTIONS = { topic: 'demo.task-a', inputSize: INPUT, maxBytes: 4096, taskFrom: 'header' as TaskFrom, maxAbsFeature: 3.4028234663852886e38 };

/** As a consumer sees a produced message: header values arrive as Buffers. */
function consumed(message: EncodedMessage, key: string | null = null): KafkaMessageLike {
  const headers: MessageHeaders = {};
  for (const [name, value] of Object.entries(message.headers)) headers[name] = Buffer.from(value);
  return { key: key === null ? null : Buffer.from(key), value: message.value, headers };
}

function raw(value: string | Buffer | null, headers: MessageHeaders = {}): KafkaMessageLike {
  return { key: null, value: typeof value === 'string' ? Buffer.from(value) : value, headers };
}

function json(body: unknown, headers: MessageHeaders = {}): KafkaMessageLike {
  return raw(JSON.stringify(body), headers);
}

function f32(values: readonly number[], headers: MessageHeaders = {}): KafkaMessageLike {
  const value = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => value.writeFloatLE(v, 4 * i));
  return raw(value, { [HEADER_FORMAT]: 'f32le', ...headers });
}

function decode(message: KafkaMessageLike, options: Partial<typeof OPTIONS> = {}): DecodeResult {
  return decodeMessage(message, { ...OPTIONS, ...options });
}

function assertInvalid(result: DecodeResult, reason: InvalidReason, detail?: RegExp): Extract<DecodeResult, { kind: 'invalid' }> {
  assert.equal(result.kind, 'invalid', `expected ${reason}, got ${JSON.stringify(result)}`);
  const invalid = result as Extract<DecodeResult, { kind: 'invalid' }>;
  assert.equal(invalid.reason, reason, invalid.detail);
  assert.ok(invalid.detail.length > 0);
  if (detail) assert.match(invalid.detail, detail);
  return invalid;
}

function assertSample(result: DecodeResult) {
  assert.equal(result.kind, 'sample', JSON.stringify(result));
  return (result as Extract<DecodeResult, { kind: 'sample' }>).sample;
}

// Values whose float32 form is not a short decimal: the round trip must keep every bit.
const FEATURES = Float32Array.from([0, -1.5, 1 / 3, 3.4e38]);

describe('Kafka message format', () => {
  describe('round trips', () => {
    for (const [form, encode] of [
      ['json', encodeJson],
      ['f32le', encodeBinary],
    ] as const) {
      it(`${form}: features bit for bit, label, id; the task is the topic`, () => {
        const sample = assertSample(decode(consumed(encode({ x: FEATURES, y: '7', id: 'train-12' }), 'train-12')));
        assert.deepEqual(sample, { task: 'demo.task-a', x: FEATURES, y: '7', id: 'train-12' });
        assert.ok(sample.x instanceof Float32Array);
      });

      it(`${form}: an unlabelled sample is a prediction request with its id; a task header names the task`, () => {
        const sample = assertSample(decode(consumed(encode({ x: FEATURES, id: 'q-1' }, 'digits'))));
        assert.deepEqual(sample, { task: 'digits', x: FEATURES, id: 'q-1' });
        assert.ok(!('y' in sample));
      });

      it(`${form}: a numeric label becomes its string form`, () => {
        assert.equal(assertSample(decode(consumed(encode({ x: FEATURES, y: 3 })))).y, '3');
      });
    }

    it('json: a numeric label and its string are the same class; 3.0 is the integer 3', () => {
      assert.equal(assertSample(decode(raw('{"x":[1,2,3,4],"y":3.0}'))).y, '3');
      assert.equal(assertSample(decode(json({ x: [1, 2, 3, 4], y: '3' }))).y, '3');
      assert.equal(assertSample(decode(json({ x: [1, 2, 3, 4], y: -2 }))).y, '-2');
    });

    it('json: unknown keys are ignored; string header values are read like Buffers', () => {
      const sample = assertSample(decode(json({ x: [1, 2, 3, 4], y: 'cat', extra: { a: 1 } }, { [HEADER_TASK]: 'pets' })));
      assert.deepEqual(sample, { task: 'pets', x: Float32Array.from([1, 2, 3, 4]), y: 'cat' });
    });

    it('control messages, with the task from the topic or a header, empty or null value', () => {
      assert.deepEqual(decode(consumed(controlMessage())), { kind: 'control', task: 'demo.task-a' });
      assert.deepEqual(decode(consumed(controlMessage('digits'))), { kind: 'control', task: 'digits' });
      assert.deepEqual(decode(raw(null, { [HEADER_CONTROL]: Buffer.from(CONTROL_END_OF_TASK) })), { kind: 'control', task: 'demo.task-a' });
      // The control header wins over the format: a control message has no body to decode.
      assert.deepEqual(decode(raw(Buffer.alloc(0), { [HEADER_CONTROL]: CONTROL_END_OF_TASK, [HEADER_FORMAT]: 'f32le' })), { kind: 'control', task: 'demo.task-a' });
    });

    it('encoders write the format, label and id headers of each form', () => {
      const binary = encodeBinary({ x: FEATURES, y: 3, id: 'a' });
      assert.deepEqual(binary.headers, { [HEADER_FORMAT]: 'f32le', [HEADER_LABEL]: '3', [HEADER_ID]: 'a' });
      assert.equal(binary.value.length, 16);
      const text = encodeJson({ x: [1, 2, 3, 4], y: 'b', id: 'c' });
      assert.deepEqual(text.headers, {});
      assert.deepEqual(JSON.parse(text.value.toString()), { x: [1, 2, 3, 4], y: 'b', id: 'c' });
      assert.deepEqual(controlMessage('t').headers, { [HEADER_TASK]: 't', [HEADER_CONTROL]: 'end-of-task' });
    });
  });

  describe('every rejection has a stable reason and a sentence', () => {
    it('oversize: counted on key, value and headers, checked before anything else', () => {
      const invalid = assertInvalid(decode(raw('{not json', {}), { maxBytes: 8 }), 'oversize', /9 bytes.*limit of 8/);
      assert.equal(invalid.task, 'demo.task-a');
      // The same 5-byte value fits alone, not with a header.
      assertInvalid(decode(raw('{"x":'), { maxBytes: 8 }), 'bad-json');
      assertInvalid(decode(raw('{"x":', { big: 'abcdef' }), { maxBytes: 8 }), 'oversize');
      assertInvalid(decode({ key: Buffer.alloc(100), value: Buffer.from('{}') }, { maxBytes: 50 }), 'oversize');
      const headerTask = assertInvalid(decode(raw('x'.repeat(100), { [HEADER_TASK]: 'named' }), { maxBytes: 50 }), 'oversize');
      assert.equal(headerTask.task, 'named');
    });

    it('bad-json: syntax errors, invalid UTF-8', () => {
      assertInvalid(decode(raw('{"x": [1, 2,')), 'bad-json', /not JSON/);
      assertInvalid(decode(raw('{"x": [NaN, 1, 2, 3]}')), 'bad-json');
      assertInvalid(decode(raw(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]))), 'bad-json', /UTF-8/);
    });

    it('bad-json details are bounded even when the parser quotes a huge input', () => {
      const invalid = assertInvalid(decode(raw(`{"x": ${'1'.repeat(3000)}`), { maxBytes: 1e6 }), 'bad-json');
      assert.ok(invalid.detail.length <= 300, `${invalid.detail.length} chars`);
    });

    it('not-an-object: arrays, numbers, strings, null', () => {
      for (const body of ['[1,2,3,4]', '42', '"x"', 'null']) assertInvalid(decode(raw(body)), 'not-an-object');
    });

    it('missing-features: no x, x not an array, an empty value without a control header', () => {
      assertInvalid(decode(json({ y: '1' })), 'missing-features', /no "x"/);
      assertInvalid(decode(json({ x: '1,2,3,4' })), 'missing-features', /array/);
      assertInvalid(decode(json({ x: { 0: 1 } })), 'missing-features');
      assertInvalid(decode(raw(Buffer.alloc(0))), 'missing-features', /empty/);
      assertInvalid(decode(raw(null, { [HEADER_FORMAT]: 'f32le' })), 'missing-features');
    });

    it('wrong-feature-count names expected and got, in both forms', () => {
      assertInvalid(decode(json({ x: [1, 2, 3] })), 'wrong-feature-count', /expected 4 features, got 3/);
      assertInvalid(decode(json({ x: [] })), 'wrong-feature-count', /got 0/);
      assertInvalid(decode(f32([1, 2, 3, 4, 5])), 'wrong-feature-count', /expected 4 features, got 5/);
    });

    it('non-finite: non-numbers in JSON, overflow to Infinity, NaN and Infinity in f32le', () => {
      assertInvalid(decode(json({ x: [1, null, 3, 4] })), 'non-finite', /x\[1\] is null/);
      assertInvalid(decode(json({ x: [1, 2, '3', 4] })), 'non-finite', /x\[2\]/);
      assertInvalid(decode(json({ x: [1, 2, 3, true] })), 'non-finite');
      assertInvalid(decode(json({ x: [[1], 2, 3, 4] })), 'non-finite');
      assertInvalid(decode(raw('{"x":[1,1e999,3,4]}')), 'non-finite', /Infinity/);
      // A finite double beyond float32's range.
      assertInvalid(decode(json({ x: [1, 2, 1e39, 4] })), 'non-finite', /x\[2\]/);
      assertInvalid(decode(f32([1, NaN, 3, 4])), 'non-finite', /x\[1\] is NaN/);
      assertInvalid(decode(f32([1, 2, 3, -Infinity])), 'non-finite', /x\[3\]/);
    });

    it('bad-label: floats, booleans, objects, null, empty, unsafe integers, a label header on json, an empty label header', () => {
      for (const y of [1.5, true, { a: 1 }, [1], null, '', 2 ** 53]) {
        const invalid = assertInvalid(decode(json({ x: [1, 2, 3, 4], y })), 'bad-label');
        assert.equal(invalid.task, 'demo.task-a');
      }
      assertInvalid(decode(json({ x: [1, 2, 3, 4], y: null })), 'bad-label', /omit y/);
      assertInvalid(decode(json({ x: [1, 2, 3, 4] }, { [HEADER_LABEL]: '1' })), 'bad-label', /json message/);
      assertInvalid(decode(f32([1, 2, 3, 4], { [HEADER_LABEL]: '' })), 'bad-label', /empty/);
      assertInvalid(decode(f32([1, 2, 3, 4], { [HEADER_LABEL]: ['1', '2'] })), 'bad-label', /2 times/);
      assertInvalid(decode(f32([1, 2, 3, 4], { [HEADER_LABEL]: Buffer.from([0xc3]) })), 'bad-label', /UTF-8/);
    });

    it('bad-id: non-strings, empty, an id header on json, an empty id header', () => {
      for (const id of [12, null, '', { a: 1 }]) assertInvalid(decode(json({ x: [1, 2, 3, 4], id })), 'bad-id');
      assertInvalid(decode(json({ x: [1, 2, 3, 4] }, { [HEADER_ID]: 'a' })), 'bad-id', /json message/);
      assertInvalid(decode(f32([1, 2, 3, 4], { [HEADER_ID]: '' })), 'bad-id');
    });

    it('bad-binary-length: an f32le value that is not whole float32s', () => {
      assertInvalid(decode(raw(Buffer.alloc(15), { [HEADER_FORMAT]: 'f32le' })), 'bad-binary-length', /15 bytes/);
    });

    it('bad-control: unknown values, a body on a control message', () => {
      assertInvalid(decode(raw(null, { [HEADER_CONTROL]: 'end-of-tasks' })), 'bad-control', /end-of-tasks/);
      assertInvalid(decode(raw('{}', { [HEADER_CONTROL]: CONTROL_END_OF_TASK })), 'bad-control', /empty value, got 2 bytes/);
      assertInvalid(decode(raw(null, { [HEADER_CONTROL]: [CONTROL_END_OF_TASK, CONTROL_END_OF_TASK] })), 'bad-control');
    });

    it('bad-format: unknown or differently spelled formats', () => {
      for (const format of ['avro', 'JSON', 'f32be', '']) {
        assertInvalid(decode(json({ x: [1, 2, 3, 4] }, { [HEADER_FORMAT]: format })), 'bad-format');
      }
    });

    it('bad-task: names Kafka could not have as a topic, repeated headers; the task is then unknown', () => {
      for (const name of ['', 'a b', '*', '.', '..', 'x'.repeat(250), 'tâche']) {
        const invalid = assertInvalid(decode(json({ x: [1, 2, 3, 4] }, { [HEADER_TASK]: name })), 'bad-task');
        assert.equal(invalid.task, undefined);
      }
      assertInvalid(decode(json({ x: [1, 2, 3, 4] }, { [HEADER_TASK]: ['a', 'b'] })), 'bad-task', /2 times/);
      // A bad task header is reported before a bad control value.
      assertInvalid(decode(raw(null, { [HEADER_TASK]: 'a b', [HEADER_CONTROL]: 'stop' })), 'bad-task');
    });

    it('feature-out-of-range: beyond ±maxAbsFeature in either form, by default beyond ±1e6', () => {
      const defaults = { topic: 'demo.task-a', inputSize: INPUT, maxBytes: 4096 };
      assert.equal(DEFAULT_MAX_ABS_FEATURE, 1e6);
      assertSample(decodeMessage(json({ x: [1e6, -1e6, 0, -0] }), defaults));
      assertSample(decodeMessage(f32([1e6, -1e6, 255, 0]), defaults));
      assertInvalid(decodeMessage(json({ x: [1, 2, 3e38, 4] }), defaults), 'feature-out-of-range', /x\[2\] is 3e\+38.*±1000000.*source\.maxAbsFeature/);
      assertInvalid(decodeMessage(json({ x: [1, 2, 3, -1000001] }), defaults), 'feature-out-of-range', /x\[3\]/);
      assertInvalid(decodeMessage(f32([1, -2e6, 3, 4]), defaults), 'feature-out-of-range', /x\[1\]/);
      assertInvalid(decode(json({ x: [1, 2, 3, 11] }), { maxAbsFeature: 10 }), 'feature-out-of-range');
      // Non-finite values keep their own reason.
      assertInvalid(decodeMessage(json({ x: [1, 2, 1e39, 4] }), defaults), 'non-finite');
    });

    it('task-not-allowed: with tasks from topics (the default) a header may only name the topic', () => {
      const defaults = { topic: 'demo.task-a', inputSize: INPUT, maxBytes: 4096 };
      for (const message of [json({ x: [1, 2, 3, 4], y: '1' }, { [HEADER_TASK]: 'other' }), f32([1, 2, 3, 4], { [HEADER_TASK]: 'other' }), raw(null, { [HEADER_TASK]: 'other', [HEADER_CONTROL]: CONTROL_END_OF_TASK })]) {
        const invalid = assertInvalid(decodeMessage(message, defaults), 'task-not-allowed', /"other".*source\.taskFrom/);
        assert.equal(invalid.task, 'demo.task-a', 'counted under its topic');
      }
      assert.equal(assertSample(decodeMessage(json({ x: [1, 2, 3, 4] }, { [HEADER_TASK]: 'demo.task-a' }), defaults)).task, 'demo.task-a');
      assert.equal(assertSample(decodeMessage(json({ x: [1, 2, 3, 4] }, { [HEADER_TASK]: 'other' }), { ...defaults, taskFrom: 'header' })).task, 'other');
      // A malformed header is still bad-task, and the task is still the topic.
      const bad = assertInvalid(decodeMessage(json({ x: [1, 2, 3, 4] }, { [HEADER_TASK]: 'a b' }), defaults), 'bad-task');
      assert.equal(bad.task, 'demo.task-a');
    });

    it('INVALID_REASONS lists exactly the reasons exercised above', () => {
      assert.deepEqual([...INVALID_REASONS].sort(), [
        'bad-binary-length',
        'bad-control',
        'bad-format',
        'bad-id',
        'bad-json',
        'bad-label',
        'bad-task',
        'feature-out-of-range',
        'missing-features',
        'non-finite',
        'not-an-object',
        'oversize',
        'task-not-allowed',
        'wrong-feature-count',
      ]);
    });
  });

  it('dead-letter headers keep the original ones and replace earlier dead-letter headers', () => {
    const original: MessageHeaders = { [HEADER_FORMAT]: Buffer.from('f32le'), trace: ['a', 'b'], gone: undefined, [HEADER_REASON]: 'old' };
    const headers = deadLetterHeaders(original, 'non-finite', 'x[1] is NaN', { topic: 'demo.t', partition: 2, offset: '41' });
    assert.deepEqual(headers, {
      [HEADER_FORMAT]: Buffer.from('f32le'),
      trace: ['a', 'b'],
      [HEADER_REASON]: 'non-finite',
      [HEADER_DETAIL]: 'x[1] is NaN',
      [HEADER_SOURCE_TOPIC]: 'demo.t',
      [HEADER_SOURCE_PARTITION]: '2',
      [HEADER_SOURCE_OFFSET]: '41',
    });
    assert.deepEqual(deadLetterHeaders(undefined, 'oversize', 'd', { topic: 't', partition: 0, offset: '0' })[HEADER_REASON], 'oversize');
  });

  it('isKafkaTopicName follows Kafka’s rule', () => {
    for (const ok of ['a', 'demo.split-mnist-0-1', 'rotated-mnist-22.5deg', 'A_b-9', 'x'.repeat(249)]) assert.ok(isKafkaTopicName(ok), ok);
    for (const bad of ['', '.', '..', 'a/b', 'a b', '*', 'x'.repeat(250), '{topic}']) assert.ok(!isKafkaTopicName(bad), bad);
  });
});
