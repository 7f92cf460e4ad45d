/**
 * Checkpoint files: a strategy's whole state in one file, enough to rebuild the strategy in
 * another process (`lifelong replay-grid`, prediction replicas, resuming).
 *
 * Layout: one ASCII line `lifelong-checkpoint <format> <header bytes>\n`, then the JSON header
 * (UTF-8, exactly <header bytes> long), then the tensor blob: every tensor's float32 values,
 * little-endian, one after another. The header is the checkpoint with each tensor's data replaced
 * by its offset and length (in floats) in the blob, so the numbers never pass through JSON.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DataFormatError } from '../core/errors';
import type { StrategyOptions, StrategyState, TensorSnapshot } from '../strategies/strategy';

const MAGIC = 'lifelong-checkpoint';
export const CHECKPOINT_FORMAT = 1;
/** The first line is short; a longer one is not a checkpoint. */
const MAX_FIRST_LINE = 128;

export interface Checkpoint {
  readonly format: number;
  /** ISO 8601. */
  readonly createdAt: string;
  /** The pipeline's name, when written by a pipeline run. */
  readonly pipeline?: string;
  /** The registered name (or module strategy name) to rebuild the strategy with. */
  readonly strategyName: string;
  readonly options: StrategyOptions;
  readonly state: StrategyState;
}

/** Where a tensor's values are in the blob. */
interface TensorEntry {
  readonly shape: readonly number[];
  /** In floats from the start of the blob. */
  readonly offset: number;
  readonly length: number;
}

interface Header extends Omit<Checkpoint, 'state'> {
  readonly state: Omit<StrategyState, 'tensors'> & { readonly tensors: Record<string, TensorEntry> };
}

function assertLittleEndian(): void {
  // The blob is little-endian and read by copying bytes; a big-endian host would need swapping.
  if (os.endianness() !== 'LE') throw new DataFormatError('checkpoints are read and written on little-endian hosts only');
}

/**
 * Writes a checkpoint atomically: to a temporary file in the same directory, flushed, then
 * renamed over `file`, so a reader never sees half a checkpoint.
 */
export async function writeCheckpoint(file: string, checkpoint: Omit<Checkpoint, 'format' | 'createdAt'> & { readonly createdAt?: string }): Promise<void> {
  assertLittleEndian();
  const tensors: Record<string, TensorEntry> = {};
  const blobs: Float32Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(checkpoint.state.tensors)) {
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (size !== t.data.length) throw new DataFormatError(`tensor ${name} has shape [${t.shape}] but ${t.data.length} values`);
    tensors[name] = { shape: [...t.shape], offset, length: t.data.length };
    blobs.push(t.data);
    offset += t.data.length;
  }
  const header: Header = {
    format: CHECKPOINT_FORMAT,
    createdAt: checkpoint.createdAt ?? new Date().toISOString(),
    ...(checkpoint.pipeline !== undefined ? { pipeline: checkpoint.pipeline } : {}),
    strategyName: checkpoint.strategyName,
    options: checkpoint.options,
    state: { strategy: checkpoint.state.strategy, format: checkpoint.state.format, meta: checkpoint.state.meta, tensors },
  };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const first = Buffer.from(`${MAGIC} ${CHECKPOINT_FORMAT} ${json.length}\n`, 'ascii');
  const temp = path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await fs.promises.open(temp, 'w');
  try {
    await handle.write(first);
    await handle.write(json);
    for (const data of blobs) await handle.write(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    await handle.sync();
  } catch (error) {
    await handle.close();
    await fs.promises.rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  try {
    await fs.promises.rename(temp, file);
  } catch (error) {
    await fs.promises.rm(temp, { force: true });
    throw error;
  }
}

/** Reads a checkpoint; DataFormatError names the file and what is wrong with it. */
export async function readCheckpoint(file: string): Promise<Checkpoint> {
  assertLittleEndian();
  const bytes = await fs.promises.readFile(file);
  const bad = (why: string): never => {
    throw new DataFormatError(`${file}: ${why}`);
  };
  const newline = bytes.subarray(0, MAX_FIRST_LINE).indexOf(0x0a);
  const firstLine = bytes.subarray(0, newline < 0 ? Math.min(bytes.length, MAX_FIRST_LINE) : newline).toString('latin1');
  const [magic, formatText, headerText, ...extra] = firstLine.split(' ');
  if (magic !== MAGIC) bad(`not a lifelong checkpoint (bad magic: the file should start with "${MAGIC}")`);
  if (newline < 0) bad(bytes.length < MAX_FIRST_LINE ? 'truncated: the first line is incomplete' : 'corrupt first line');
  const format = Number(formatText);
  if (!Number.isInteger(format)) bad(`corrupt first line "${firstLine}"`);
  if (format !== CHECKPOINT_FORMAT) bad(`unsupported checkpoint format ${format} (this version reads format ${CHECKPOINT_FORMAT})`);
  const headerBytes = Number(headerText);
  if (!Number.isInteger(headerBytes) || headerBytes < 2 || extra.length > 0) bad(`corrupt first line "${firstLine}"`);
  const headerStart = newline + 1;
  const blobStart = headerStart + headerBytes;
  if (bytes.length < blobStart) bad(`truncated: the header needs ${headerBytes} bytes, the file has ${bytes.length - headerStart} after the first line`);
  let header: Header;
  try {
    header = JSON.parse(bytes.subarray(headerStart, blobStart).toString('utf8')) as Header;
  } catch (cause) {
    throw new DataFormatError(`${file}: corrupt header: ${(cause as Error).message}`, { cause });
  }
  if (typeof header !== 'object' || header === null || typeof header.strategyName !== 'string' || typeof header.options !== 'object' || typeof header.state !== 'object' || typeof header.state?.tensors !== 'object') {
    bad('corrupt header: it lacks strategyName, options or state');
  }
  const blobFloats = (bytes.length - blobStart) / 4;
  const tensors: Record<string, TensorSnapshot> = {};
  for (const [name, entry] of Object.entries(header.state.tensors)) {
    const size = Array.isArray(entry.shape) ? entry.shape.reduce((a, b) => a * b, 1) : NaN;
    if (!Number.isInteger(entry.offset) || entry.offset < 0 || entry.length !== size) bad(`corrupt header: tensor ${name} has shape [${String(entry.shape)}] and length ${entry.length}`);
    if (entry.offset + entry.length > blobFloats) bad(`truncated: tensor ${name} needs floats ${entry.offset}..${entry.offset + entry.length} of the blob, which has ${Math.floor(blobFloats)}`);
    const data = new Float32Array(entry.length);
    const from = blobStart + 4 * entry.offset;
    new Uint8Array(data.buffer).set(bytes.subarray(from, from + 4 * entry.length));
    tensors[name] = { shape: [...entry.shape], data };
  }
  return { ...header, state: { ...header.state, tensors } };
}
