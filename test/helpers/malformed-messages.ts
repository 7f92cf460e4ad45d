import { Rng } from '../../src/core/rng';
import { CONTROL_END_OF_TASK, HEADER_CONTROL, HEADER_FORMAT, HEADER_ID, HEADER_LABEL, HEADER_TASK, type InvalidReason } from '../../src/kafka/codec';

/** A message the daemon must dead-letter, and the reason it must give. */
export interface MalformedMessage {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: Record<string, string | Buffer | (string | Buffer)[]>;
  readonly reason: InvalidReason;
  /** Which family of damage (for the failure message). */
  readonly family: string;
}

/** What the messages are judged against: the daemon's source settings. */
export interface MalformedSettings {
  readonly inputSize: number;
  /** source.maxMessageBytes */
  readonly maxBytes: number;
  /** source.maxAbsFeature */
  readonly maxAbsFeature: number;
  /** The topic the messages go to (taskFrom 'topic': a header naming another task is refused). */
  readonly topic: string;
}

type Generator = (rng: Rng, s: MalformedSettings) => Omit<MalformedMessage, 'key' | 'family'>;

const utf8 = (text: string) => Buffer.from(text, 'utf8');
const pick = <T>(rng: Rng, items: readonly T[]): T => items[rng.int(items.length)] as T;

/** Valid-looking features: pixel values 0 to 255 (short in JSON, so only oversize messages are). */
function features(rng: Rng, n: number): number[] {
  return Array.from({ length: n }, () => rng.int(256));
}

/** A JSON body with the right feature count whose feature `at` is written as `raw` (verbatim JSON text). */
function jsonWithFeature(rng: Rng, s: MalformedSettings, raw: string, extra = ''): Buffer {
  const x = features(rng, s.inputSize).map((v) => String(v));
  x[rng.int(s.inputSize)] = raw;
  return utf8(`{"x":[${x.join(',')}],"y":"${rng.int(2)}"${extra}}`);
}

function f32(values: readonly number[]): Buffer {
  const out = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => out.writeFloatLE(v, 4 * i));
  return out;
}

/** f32le features with feature `at` replaced. */
function binaryWith(rng: Rng, s: MalformedSettings, value: number): Buffer {
  const x = features(rng, s.inputSize);
  x[rng.int(s.inputSize)] = value;
  return f32(x);
}

const okBody = (rng: Rng, s: MalformedSettings, extra: Record<string, unknown> = {}) => utf8(JSON.stringify({ x: features(rng, s.inputSize), y: String(rng.int(2)), ...extra }));

/** Each family of damage, by name: structure, types, values, sizes, encodings, headers. */
const FAMILIES: Record<string, Generator> = {
  // Structure.
  'not json': (rng) => ({ value: utf8(pick(rng, ['hello', '{x: [1]}', '{"x": [1, 2,', '<xml/>', '{"x":[1]}}', "{'x': [1]}", '[', '}{'])), headers: {}, reason: 'bad-json' }),
  'random bytes': (rng) => ({ value: Buffer.from(Array.from({ length: 1 + rng.int(200) }, () => 0x80 + rng.int(0x40))), headers: {}, reason: 'bad-json' }),
  'json array': (rng, s) => ({ value: utf8(JSON.stringify(features(rng, s.inputSize))), headers: {}, reason: 'not-an-object' }),
  'json scalar': (rng) => ({ value: utf8(pick(rng, ['42', '"x"', 'null', 'true', '-0', '1e400'])), headers: {}, reason: 'not-an-object' }),
  'x missing': () => ({ value: utf8(JSON.stringify({ y: '1', X: [1, 2], features: [] })), headers: {}, reason: 'missing-features' }),
  'x nested object': (rng, s) => ({ value: utf8(JSON.stringify({ x: { values: features(rng, s.inputSize) }, y: '0' })), headers: {}, reason: 'missing-features' }),
  'x a string': (rng, s) => ({ value: utf8(JSON.stringify({ x: features(rng, s.inputSize).join(','), y: '0' })), headers: {}, reason: 'missing-features' }),
  'x nested arrays': (rng, s) => ({ value: utf8(JSON.stringify({ x: features(rng, s.inputSize).map((v) => [v]), y: '0' })), headers: {}, reason: 'non-finite' }),
  // Types.
  'feature as string': (rng, s) => ({ value: jsonWithFeature(rng, s, pick(rng, ['"0.5"', '"NaN"', '"Infinity"', '""'])), headers: {}, reason: 'non-finite' }),
  'feature boolean or null': (rng, s) => ({ value: jsonWithFeature(rng, s, pick(rng, ['true', 'false', 'null', '{}'])), headers: {}, reason: 'non-finite' }),
  'label of a bad type': (rng, s) => ({ value: okBody(rng, s, { y: pick(rng, [true, null, 1.5, { a: 1 }, [1], '', 2 ** 60]) }), headers: {}, reason: 'bad-label' }),
  'id of a bad type': (rng, s) => ({ value: okBody(rng, s, { id: pick(rng, [12, null, '', ['a'], false]) }), headers: {}, reason: 'bad-id' }),
  // Values.
  'NaN or Infinity spelled out': (rng, s) => ({ value: jsonWithFeature(rng, s, pick(rng, ['NaN', 'Infinity', '-Infinity', 'nan', 'inf'])), headers: {}, reason: 'bad-json' }),
  'huge exponent': (rng, s) => ({ value: jsonWithFeature(rng, s, pick(rng, ['1e400', '-1e999', '3.5e38', '1e39'])), headers: {}, reason: 'non-finite' }),
  'finite float32 beyond the bound': (rng, s) => ({ value: jsonWithFeature(rng, s, pick(rng, ['3e38', '-3.4e38', String(s.maxAbsFeature * 1.5), '1e20', '-1e7'])), headers: {}, reason: 'feature-out-of-range' }),
  '-0 and a bad label': (rng, s) => ({ value: utf8(`{"x":[-0,${features(rng, s.inputSize - 1).join(',')}],"y":false}`), headers: {}, reason: 'bad-label' }),
  'f32le NaN or Infinity': (rng, s) => ({ value: binaryWith(rng, s, pick(rng, [Number.NaN, Infinity, -Infinity])), headers: { [HEADER_FORMAT]: 'f32le', [HEADER_LABEL]: '1' }, reason: 'non-finite' }),
  'f32le beyond the bound': (rng, s) => ({ value: binaryWith(rng, s, pick(rng, [3e38, -3e38, s.maxAbsFeature * 4])), headers: { [HEADER_FORMAT]: 'f32le', [HEADER_LABEL]: '0' }, reason: 'feature-out-of-range' }),
  // Sizes.
  'empty value': (rng) => ({ value: pick(rng, [Buffer.alloc(0), null]), headers: {}, reason: 'missing-features' }),
  'oversize': (rng, s) => ({ value: Buffer.alloc(s.maxBytes + 1 + rng.int(1000), 0x20), headers: {}, reason: 'oversize' }),
  'oversize by headers': (rng, s) => ({ value: okBody(rng, s), headers: { trace: 'x'.repeat(s.maxBytes) }, reason: 'oversize' }),
  'too few or too many features': (rng, s) => ({ value: utf8(JSON.stringify({ x: features(rng, pick(rng, [0, 1, s.inputSize - 1, s.inputSize + 1, 2 * s.inputSize])), y: '1' })), headers: {}, reason: 'wrong-feature-count' }),
  'f32le wrong count': (rng, s) => ({ value: f32(features(rng, pick(rng, [1, s.inputSize - 1, s.inputSize + 1]))), headers: { [HEADER_FORMAT]: 'f32le', [HEADER_LABEL]: '0' }, reason: 'wrong-feature-count' }),
  'f32le not whole floats': (rng, s) => ({ value: Buffer.alloc(4 * s.inputSize - 1 - rng.int(3)), headers: { [HEADER_FORMAT]: 'f32le' }, reason: 'bad-binary-length' }),
  // Encodings.
  'invalid utf-8': (rng, s) => ({ value: Buffer.concat([utf8('{"x":['), Buffer.from([pick(rng, [0xff, 0xc3, 0xe2, 0xf5])]), utf8(`${features(rng, s.inputSize).join(',')}]}`)]), headers: {}, reason: 'bad-json' }),
  'utf-16': (rng, s) => ({ value: Buffer.concat([pick(rng, [Buffer.from([0xff, 0xfe]), Buffer.alloc(0)]), Buffer.from(okBody(rng, s).toString('utf8'), 'utf16le')]), headers: {}, reason: 'bad-json' }),
  // A UTF-8 BOM is skipped by the decoder: the body after it is judged.
  'bom and an array': (rng, s) => ({ value: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), utf8(JSON.stringify(features(rng, s.inputSize)))]), headers: {}, reason: 'not-an-object' }),
  // Headers.
  'bad format header': (rng, s) => ({ value: okBody(rng, s), headers: { [HEADER_FORMAT]: pick(rng, ['avro', 'JSON', 'f32be', '', 'protobuf']) }, reason: 'bad-format' }),
  'repeated format header': (rng, s) => ({ value: okBody(rng, s), headers: { [HEADER_FORMAT]: ['json', 'json'] }, reason: 'bad-format' }),
  'bad control header': (rng) => ({ value: null, headers: { [HEADER_CONTROL]: pick(rng, ['stop', 'END-OF-TASK', 'end-of-tasks', '']) }, reason: 'bad-control' }),
  'control with a body': (rng, s) => ({ value: okBody(rng, s), headers: { [HEADER_CONTROL]: CONTROL_END_OF_TASK }, reason: 'bad-control' }),
  'task header naming another task': (rng, s) => ({ value: okBody(rng, s), headers: { [HEADER_TASK]: `${s.topic}-${pick(rng, ['other', 'x', 'new'])}${rng.int(1000)}` }, reason: 'task-not-allowed' }),
  'control naming another task': (_rng, s) => ({ value: null, headers: { [HEADER_TASK]: `${s.topic}.other`, [HEADER_CONTROL]: CONTROL_END_OF_TASK }, reason: 'task-not-allowed' }),
  'malformed task header': (rng, s) => ({ value: okBody(rng, s), headers: { [HEADER_TASK]: pick<string | Buffer | string[]>(rng, ['a b', '', '*', 'tâche', Buffer.from([0xff]), ['a', 'b']]) }, reason: 'bad-task' }),
  'label header on json': (rng, s) => ({ value: utf8(JSON.stringify({ x: features(rng, s.inputSize) })), headers: { [HEADER_LABEL]: '1' }, reason: 'bad-label' }),
  'id header on json': (rng, s) => ({ value: okBody(rng, s), headers: { [HEADER_ID]: 'a' }, reason: 'bad-id' }),
  'f32le label not utf-8': (rng, s) => ({ value: f32(features(rng, s.inputSize)), headers: { [HEADER_FORMAT]: 'f32le', [HEADER_LABEL]: Buffer.from([0xc3, 0x28]) }, reason: 'bad-label' }),
  'f32le empty label': (rng, s) => ({ value: f32(features(rng, s.inputSize)), headers: { [HEADER_FORMAT]: 'f32le', [HEADER_LABEL]: '' }, reason: 'bad-label' }),
};

/** `count` malformed messages, every family about equally often, in a seeded order. */
export function malformedMessages(count: number, seed: number, settings: MalformedSettings): MalformedMessage[] {
  const rng = new Rng(seed);
  const names = Object.keys(FAMILIES);
  return Array.from({ length: count }, (_, i) => {
    const family = names[i % names.length] as string;
    const made = (FAMILIES[family] as Generator)(rng, settings);
    const key = rng.int(3) === 0 ? null : rng.int(2) === 0 ? Buffer.from(`bad-${i}`) : Buffer.from(Array.from({ length: 8 }, () => rng.int(256)));
    return { ...made, key, family };
  });
}

/** The families, for tests that check each one. */
export const MALFORMED_FAMILIES: readonly string[] = Object.keys(FAMILIES);
