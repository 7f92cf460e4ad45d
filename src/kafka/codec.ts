/**
 * The Kafka message format: decoding and validating an incoming record into a Sample, a control
 * message or a rejection with a stable reason; encoding samples and control messages; the headers
 * of a dead letter. Pure: no kafkajs import, so it is unit-tested without a broker.
 *
 * Two forms, chosen by the `lifelong-format` header:
 * - `json` (the default): the value is UTF-8 JSON `{"x": number[], "y"?: string | integer, "id"?: string}`.
 *   Other keys are ignored (room to grow). Label and id travel in the body only: a json message that
 *   also carries a `lifelong-label` or `lifelong-id` header is rejected, since the two could disagree.
 * - `f32le`: the value is the features as float32 little-endian, 4 bytes each; the label and id are
 *   the UTF-8 `lifelong-label` and `lifelong-id` headers.
 *
 * The task is the topic. With `taskFrom: 'header'` a `lifelong-task` header may name another task;
 * with `taskFrom: 'topic'` (the default) a header naming another task than the topic is rejected
 * (task-not-allowed): producers cannot open tasks. A message with the header
 * `lifelong-control: end-of-task` and an empty (or null) value ends its task.
 *
 * Features must be finite float32 values within ±maxAbsFeature (feature-out-of-range beyond).
 *
 * Labels are kept as their string form (core/types Label): a JSON string as is, a JSON integer as
 * its decimal digits (3 -> "3", so "3" and 3 are the same class). Rejected: floats (3.5 has no
 * canonical class name; 3.0 parses as the integer 3), integers beyond 2^53 (their digits would not
 * survive the round trip through a double), booleans, null, objects, arrays, and the empty string.
 * Omit `y` for a prediction request: `"y": null` is rejected, not read as "unlabelled", because a
 * producer that meant to label a sample would otherwise silently get a prediction instead.
 *
 * Header names are case-sensitive, like Kafka's. A lifelong-* header that appears more than once is
 * rejected (which occurrence was meant is unknowable).
 */
import { DEFAULT_MAX_ABS_FEATURE, type TaskFrom } from '../core/sample-limits';
import type { Label, TaskName } from '../core/types';

export const HEADER_TASK = 'lifelong-task';
export const HEADER_CONTROL = 'lifelong-control';
export const HEADER_FORMAT = 'lifelong-format';
export const HEADER_LABEL = 'lifelong-label';
export const HEADER_ID = 'lifelong-id';
/** Dead-letter headers: why the message was rejected and where it came from. */
export const HEADER_REASON = 'lifelong-reason';
export const HEADER_DETAIL = 'lifelong-detail';
export const HEADER_SOURCE_TOPIC = 'lifelong-source-topic';
export const HEADER_SOURCE_PARTITION = 'lifelong-source-partition';
export const HEADER_SOURCE_OFFSET = 'lifelong-source-offset';

/** The only value of the lifelong-control header. */
export const CONTROL_END_OF_TASK = 'end-of-task';

export type MessageFormat = 'json' | 'f32le';
export const MESSAGE_FORMATS: readonly MessageFormat[] = ['json', 'f32le'];

/** Why a message was rejected: a short, stable slug, usable as a metric label. */
export type InvalidReason =
  | 'oversize'
  | 'bad-json'
  | 'not-an-object'
  | 'missing-features'
  | 'wrong-feature-count'
  | 'non-finite'
  | 'bad-label'
  | 'bad-id'
  | 'bad-binary-length'
  | 'bad-control'
  | 'bad-format'
  | 'bad-task'
  | 'feature-out-of-range'
  | 'task-not-allowed';

export const INVALID_REASONS: readonly InvalidReason[] = [
  'oversize',
  'bad-json',
  'not-an-object',
  'missing-features',
  'wrong-feature-count',
  'non-finite',
  'bad-label',
  'bad-id',
  'bad-binary-length',
  'bad-control',
  'bad-format',
  'bad-task',
  'feature-out-of-range',
  'task-not-allowed',
];

// The bound's default and the task policy are plain data, shared with the pipeline config.
export { DEFAULT_MAX_ABS_FEATURE, TASK_FROM, type TaskFrom } from '../core/sample-limits';

export type HeaderValue = Buffer | string | (Buffer | string)[] | undefined;
export type MessageHeaders = Record<string, HeaderValue>;

/** What this module needs of a consumed record (kafkajs' KafkaMessage fits). */
export interface KafkaMessageLike {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers?: MessageHeaders;
}

export interface DecodeOptions {
  /** The topic the message was read from: its task unless a lifelong-task header names one. */
  readonly topic: string;
  /** Features per sample: the pipeline's input size. */
  readonly inputSize: number;
  /** Largest accepted record, key + value + header names and values, in bytes. */
  readonly maxBytes: number;
  /** Largest accepted |feature|. Default DEFAULT_MAX_ABS_FEATURE. */
  readonly maxAbsFeature?: number;
  /** Whether a lifelong-task header may name the task. Default 'topic': it may not. */
  readonly taskFrom?: TaskFrom;
}

/** A decoded sample: core/types Sample without the source's `ref`. */
export interface DecodedSample {
  readonly task: TaskName;
  readonly x: Float32Array;
  readonly y?: Label;
  readonly id?: string;
}

export type DecodeResult =
  | { readonly kind: 'sample'; readonly sample: DecodedSample }
  | { readonly kind: 'control'; readonly task: TaskName }
  /** `task` is undefined only when the lifelong-task header itself is bad and may name the task (taskFrom 'header'). */
  | { readonly kind: 'invalid'; readonly task: TaskName | undefined; readonly reason: InvalidReason; readonly detail: string };

/** A message to produce; the caller adds the key (the producer tool uses the sample id). */
export interface EncodedMessage {
  readonly value: Buffer;
  readonly headers: Record<string, string>;
}

/** What the encoders read; a core Sample fits (its `task` is not written unless passed apart). */
export interface EncodableSample {
  readonly x: ArrayLike<number>;
  readonly y?: Label | number;
  readonly id?: string;
}

/** Where a dead-lettered message was read. */
export interface MessageSource {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

/** Kafka's topic name rule: 1 to 249 of [a-zA-Z0-9._-], and not "." or "..". */
export function isKafkaTopicName(name: string): boolean {
  return /^[a-zA-Z0-9._-]{1,249}$/.test(name) && name !== '.' && name !== '..';
}

// A detail is a header value and a log line: a JSON.parse message can quote the whole input.
const MAX_DETAIL_CHARS = 300;
const utf8 = new TextDecoder('utf-8', { fatal: true });

class Rejection {
  constructor(
    readonly reason: InvalidReason,
    readonly detail: string,
  ) {}
}

function reject(reason: InvalidReason, detail: string): never {
  throw new Rejection(reason, detail.length > MAX_DETAIL_CHARS ? `${detail.slice(0, MAX_DETAIL_CHARS - 3)}...` : detail);
}

function byteLength(value: Buffer | string): number {
  return typeof value === 'string' ? Buffer.byteLength(value) : value.length;
}

function recordBytes(message: KafkaMessageLike): number {
  let bytes = (message.key?.length ?? 0) + (message.value?.length ?? 0);
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    if (value === undefined) continue;
    bytes += Buffer.byteLength(name);
    for (const part of Array.isArray(value) ? value : [value]) bytes += byteLength(part);
  }
  return bytes;
}

/** A header's text, undefined when absent; rejects repeats and invalid UTF-8 with `reason`. */
function headerText(headers: MessageHeaders | undefined, name: string, reason: InvalidReason): string | undefined {
  const raw = headers?.[name];
  if (raw === undefined) return undefined;
  const parts = Array.isArray(raw) ? raw : [raw];
  if (parts.length === 0) return undefined;
  if (parts.length > 1) reject(reason, `header ${name} appears ${parts.length} times; send it once`);
  const part = parts[0] as Buffer | string;
  if (typeof part === 'string') return part;
  try {
    return utf8.decode(part);
  } catch {
    return reject(reason, `header ${name} is not valid UTF-8`);
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)}`;
  if (typeof value === 'number') return `the number ${value}`;
  return `a ${typeof value}`;
}

function taskOf(message: KafkaMessageLike, topic: string, taskFrom: TaskFrom): TaskName {
  const named = headerText(message.headers, HEADER_TASK, 'bad-task');
  if (named === undefined) return topic;
  if (!isKafkaTopicName(named)) {
    reject('bad-task', `header ${HEADER_TASK} must be a Kafka topic-like name (1 to 249 of a-z A-Z 0-9 . _ -), got ${describe(named)}`);
  }
  if (taskFrom === 'topic' && named !== topic) {
    reject('task-not-allowed', `header ${HEADER_TASK} names task ${JSON.stringify(named)}, but tasks come from topics here (source.taskFrom is "topic"): send it to a topic of that task`);
  }
  return named;
}

function labelOf(value: unknown): Label {
  if (typeof value === 'string') {
    if (value.length === 0) reject('bad-label', 'label y is the empty string');
    return value;
  }
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  const hint = value === null ? '; omit y for a prediction request' : '';
  return reject('bad-label', `label y must be a non-empty string or an integer (at most 2^53 in magnitude), got ${describe(value)}${hint}`);
}

function idOf(value: unknown): string {
  if (typeof value !== 'string') return reject('bad-id', `id must be a string, got ${describe(value)}`);
  if (value.length === 0) reject('bad-id', 'id is the empty string');
  return value;
}

function featureCount(got: number, inputSize: number): void {
  if (got !== inputSize) reject('wrong-feature-count', `expected ${inputSize} features, got ${got}`);
}

/** A float32 feature that is finite and within the bound. */
function checkFeature(x: Float32Array, i: number, written: unknown, maxAbs: number): void {
  const v = x[i] as number;
  if (!Number.isFinite(v)) reject('non-finite', `x[${i}] is ${written}, not a finite float32`);
  if (Math.abs(v) > maxAbs) reject('feature-out-of-range', `x[${i}] is ${written}, beyond the bound of ±${maxAbs} (source.maxAbsFeature)`);
}

/** Copies into float32 and checks there: 1e39 is a finite double but float32 Infinity. */
function jsonFeatures(values: readonly unknown[], maxAbs: number): Float32Array {
  const x = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== 'number') reject('non-finite', `x[${i}] is ${describe(v)}, not a finite number`);
    x[i] = v as number;
    checkFeature(x, i, v, maxAbs);
  }
  return x;
}

function decodeJson(message: KafkaMessageLike, value: Buffer, task: TaskName, inputSize: number, maxAbs: number): DecodedSample {
  if (headerText(message.headers, HEADER_LABEL, 'bad-label') !== undefined) {
    reject('bad-label', `a json message carries its label in y, not in the ${HEADER_LABEL} header`);
  }
  if (headerText(message.headers, HEADER_ID, 'bad-id') !== undefined) {
    reject('bad-id', `a json message carries its id in the body, not in the ${HEADER_ID} header`);
  }
  let text: string;
  try {
    text = utf8.decode(value);
  } catch {
    return reject('bad-json', 'the value is not valid UTF-8');
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    return reject('bad-json', `the value is not JSON: ${(error as Error).message}`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    reject('not-an-object', `the JSON value must be an object {"x": [...]}, got ${describe(body)}`);
  }
  const fields = body as Record<string, unknown>;
  if (!('x' in fields)) reject('missing-features', 'the JSON object has no "x" (the features)');
  if (!Array.isArray(fields.x)) reject('missing-features', `"x" must be an array of numbers, got ${describe(fields.x)}`);
  const values = fields.x as unknown[];
  featureCount(values.length, inputSize);
  const x = jsonFeatures(values, maxAbs);
  const y = fields.y === undefined ? undefined : labelOf(fields.y);
  const id = fields.id === undefined ? undefined : idOf(fields.id);
  return { task, x, ...(y !== undefined ? { y } : {}), ...(id !== undefined ? { id } : {}) };
}

function decodeBinary(message: KafkaMessageLike, value: Buffer, task: TaskName, inputSize: number, maxAbs: number): DecodedSample {
  if (value.length % 4 !== 0) reject('bad-binary-length', `an f32le value is a multiple of 4 bytes, got ${value.length} bytes`);
  featureCount(value.length / 4, inputSize);
  const view = new DataView(value.buffer, value.byteOffset, value.length);
  const x = new Float32Array(inputSize);
  for (let i = 0; i < inputSize; i++) {
    x[i] = view.getFloat32(4 * i, true);
    checkFeature(x, i, x[i], maxAbs);
  }
  const y = headerText(message.headers, HEADER_LABEL, 'bad-label');
  if (y === '') reject('bad-label', `header ${HEADER_LABEL} is empty; omit it for a prediction request`);
  const id = headerText(message.headers, HEADER_ID, 'bad-id');
  if (id === '') reject('bad-id', `header ${HEADER_ID} is empty`);
  return { task, x, ...(y !== undefined ? { y } : {}), ...(id !== undefined ? { id } : {}) };
}

/**
 * Decodes and validates one record. Never throws for bad input: every problem becomes
 * `{kind: 'invalid', reason, detail}`. Checks in order: size (on raw bytes, before any parsing),
 * task header, control header, format header, then the body.
 */
export function decodeMessage(message: KafkaMessageLike, options: DecodeOptions): DecodeResult {
  const taskFrom = options.taskFrom ?? 'topic';
  const maxAbs = options.maxAbsFeature ?? DEFAULT_MAX_ABS_FEATURE;
  // With tasks from topics the task is known whatever the headers say.
  let task: TaskName | undefined = taskFrom === 'topic' ? options.topic : undefined;
  try {
    const bytes = recordBytes(message);
    if (bytes > options.maxBytes) {
      try {
        task = taskOf(message, options.topic, taskFrom);
      } catch {
        // The size is the reason given; a bad task header leaves the task unknown.
      }
      reject('oversize', `the message is ${bytes} bytes (key, value and headers), more than the limit of ${options.maxBytes}`);
    }
    task = taskOf(message, options.topic, taskFrom);
    const value = message.value ?? Buffer.alloc(0);

    const control = headerText(message.headers, HEADER_CONTROL, 'bad-control');
    if (control !== undefined) {
      if (control !== CONTROL_END_OF_TASK) {
        reject('bad-control', `header ${HEADER_CONTROL} must be "${CONTROL_END_OF_TASK}", got ${describe(control)}`);
      }
      if (value.length > 0) reject('bad-control', `a control message has an empty value, got ${value.length} bytes`);
      return { kind: 'control', task };
    }

    const format = headerText(message.headers, HEADER_FORMAT, 'bad-format') ?? 'json';
    if (!MESSAGE_FORMATS.includes(format as MessageFormat)) {
      reject('bad-format', `header ${HEADER_FORMAT} must be one of ${MESSAGE_FORMATS.join(', ')}, got ${describe(format)}`);
    }
    if (value.length === 0) {
      reject('missing-features', `the value is empty and there is no ${HEADER_CONTROL} header`);
    }
    const sample = format === 'json' ? decodeJson(message, value, task, options.inputSize, maxAbs) : decodeBinary(message, value, task, options.inputSize, maxAbs);
    return { kind: 'sample', sample };
  } catch (error) {
    if (error instanceof Rejection) return { kind: 'invalid', task, reason: error.reason, detail: error.detail };
    throw error;
  }
}

function sampleHeaders(task: TaskName | undefined): Record<string, string> {
  return task === undefined ? {} : { [HEADER_TASK]: task };
}

/**
 * The json form of a sample. Writes the lifelong-task header only when `task` is given (by
 * default the topic names the task). Does not validate: tests build invalid messages with it.
 * Features print as the doubles equal to their float32 values, so they read back exactly.
 */
export function encodeJson(sample: EncodableSample, task?: TaskName): EncodedMessage {
  const body: { x: number[]; y?: Label | number; id?: string } = { x: Array.from(sample.x) };
  if (sample.y !== undefined) body.y = sample.y;
  if (sample.id !== undefined) body.id = sample.id;
  return { value: Buffer.from(JSON.stringify(body)), headers: sampleHeaders(task) };
}

/** The f32le form of a sample (label and id in headers). Does not validate, like encodeJson. */
export function encodeBinary(sample: EncodableSample, task?: TaskName): EncodedMessage {
  const value = Buffer.alloc(4 * sample.x.length);
  for (let i = 0; i < sample.x.length; i++) value.writeFloatLE(sample.x[i] as number, 4 * i);
  const headers: Record<string, string> = { ...sampleHeaders(task), [HEADER_FORMAT]: 'f32le' };
  if (sample.y !== undefined) headers[HEADER_LABEL] = String(sample.y);
  if (sample.id !== undefined) headers[HEADER_ID] = sample.id;
  return { value, headers };
}

/** An end-of-task control message: empty value; names the task in a header when given. */
export function controlMessage(task?: TaskName): EncodedMessage {
  return { value: Buffer.alloc(0), headers: { ...sampleHeaders(task), [HEADER_CONTROL]: CONTROL_END_OF_TASK } };
}

/**
 * Headers for a rejected message's copy on the dead-letter topic: the original headers (so the
 * message can be fixed and replayed) plus the reason, detail and source position, which replace
 * any the original carried (a dead letter sent back through is judged afresh).
 */
export function deadLetterHeaders(original: MessageHeaders | undefined, reason: string, detail: string, source: MessageSource): Record<string, Buffer | string | (Buffer | string)[]> {
  const headers: Record<string, Buffer | string | (Buffer | string)[]> = {};
  for (const [name, value] of Object.entries(original ?? {})) if (value !== undefined) headers[name] = value;
  headers[HEADER_REASON] = reason;
  headers[HEADER_DETAIL] = detail;
  headers[HEADER_SOURCE_TOPIC] = source.topic;
  headers[HEADER_SOURCE_PARTITION] = String(source.partition);
  headers[HEADER_SOURCE_OFFSET] = source.offset;
  return headers;
}
