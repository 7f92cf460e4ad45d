/**
 * Checkpoint files: a strategy's whole state in one file, enough to rebuild the strategy in
 * another process (`lifelong replay-grid`, prediction replicas), and for a daemon the state of the
 * run around it (task registry, probes, metrics, source positions), enough to go on after a crash.
 *
 * Layout (format 2): one ASCII line `lifelong-checkpoint 2 <header bytes> <sha256>\n`, then the
 * JSON header (UTF-8, exactly <header bytes> long), then the tensor blob: every tensor's float32
 * values, little-endian, one after another. The header is the checkpoint with each tensor's data
 * replaced by its offset and length (in floats) in the blob, so the numbers never pass through
 * JSON. The SHA-256 (hex) covers everything after the first line: a flipped bit anywhere is found.
 * Format 1 (no checksum, no run state) is still read.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DataFormatError } from '../core/errors';
import type { StrategyOptions, StrategyState, TensorSnapshot } from '../strategies/strategy';

const MAGIC = 'lifelong-checkpoint';
export const CHECKPOINT_FORMAT = 2;
/** Formats this version reads. */
const READABLE_FORMATS = [1, 2];
/** The first line is short; a longer one is not a checkpoint. */
const MAX_FIRST_LINE = 128;

/** JSON metadata plus named tensors: the shape of every state part a checkpoint holds. */
export interface StatePart {
  readonly meta: Readonly<Record<string, unknown>>;
  readonly tensors: Readonly<Record<string, TensorSnapshot>>;
}

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
  /** What a daemon needs besides the strategy to go on (engine/resume-state.ts); absent in a strategy-only file. */
  readonly run?: StatePart;
}

export type CheckpointContent = Omit<Checkpoint, 'format' | 'createdAt'> & { readonly createdAt?: string };

/** Where a tensor's values are in the blob. */
interface TensorEntry {
  readonly shape: readonly number[];
  /** In floats from the start of the blob. */
  readonly offset: number;
  readonly length: number;
}

type EntriesOf<T extends { tensors: unknown }> = Omit<T, 'tensors'> & { readonly tensors: Record<string, TensorEntry> };

interface Header extends Omit<Checkpoint, 'state' | 'run'> {
  readonly state: EntriesOf<StrategyState>;
  readonly run?: EntriesOf<StatePart>;
}

function assertLittleEndian(): void {
  // The blob is little-endian and read by copying bytes; a big-endian host would need swapping.
  if (os.endianness() !== 'LE') throw new DataFormatError('checkpoints are read and written on little-endian hosts only');
}

/** The bytes of a checkpoint file. */
export function encodeCheckpoint(checkpoint: CheckpointContent): Buffer[] {
  assertLittleEndian();
  const blobs: Float32Array[] = [];
  let offset = 0;
  const place = (tensors: Readonly<Record<string, TensorSnapshot>>): Record<string, TensorEntry> => {
    const entries: Record<string, TensorEntry> = {};
    for (const [name, t] of Object.entries(tensors)) {
      const size = t.shape.reduce((a, b) => a * b, 1);
      if (size !== t.data.length) throw new DataFormatError(`tensor ${name} has shape [${t.shape}] but ${t.data.length} values`);
      entries[name] = { shape: [...t.shape], offset, length: t.data.length };
      blobs.push(t.data);
      offset += t.data.length;
    }
    return entries;
  };
  const header: Header = {
    format: CHECKPOINT_FORMAT,
    createdAt: checkpoint.createdAt ?? new Date().toISOString(),
    ...(checkpoint.pipeline !== undefined ? { pipeline: checkpoint.pipeline } : {}),
    strategyName: checkpoint.strategyName,
    options: checkpoint.options,
    state: { strategy: checkpoint.state.strategy, format: checkpoint.state.format, meta: checkpoint.state.meta, tensors: place(checkpoint.state.tensors) },
    ...(checkpoint.run ? { run: { meta: checkpoint.run.meta, tensors: place(checkpoint.run.tensors) } } : {}),
  };
  const body = [Buffer.from(JSON.stringify(header), 'utf8'), ...blobs.map((data) => Buffer.from(data.buffer, data.byteOffset, data.byteLength))];
  const hash = createHash('sha256');
  for (const part of body) hash.update(part);
  const first = Buffer.from(`${MAGIC} ${CHECKPOINT_FORMAT} ${(body[0] as Buffer).length} ${hash.digest('hex')}\n`, 'ascii');
  return [first, ...body];
}

/** fsync of a directory, so that a rename in it survives a power loss (a no-op where the platform refuses it). */
export async function syncDirectory(directory: string): Promise<void> {
  let handle: fs.promises.FileHandle | undefined;
  try {
    handle = await fs.promises.open(directory, 'r');
    await handle.sync();
  } catch (error) {
    // Windows cannot open a directory; elsewhere a failure here is real.
    if (process.platform !== 'win32') throw error;
  } finally {
    await handle?.close();
  }
}

/**
 * Writes a checkpoint atomically: to a temporary file in the same directory, fsynced, renamed
 * over `file`, then the directory fsynced, so a reader never sees half a checkpoint and a crash
 * leaves either the old file or the new one. Resolves to the file's size in bytes.
 */
export async function writeCheckpoint(file: string, checkpoint: CheckpointContent): Promise<number> {
  const parts = encodeCheckpoint(checkpoint);
  const directory = path.dirname(path.resolve(file));
  const temp = path.join(directory, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await fs.promises.open(temp, 'w');
  let bytes = 0;
  try {
    for (const part of parts) {
      await handle.write(part);
      bytes += part.length;
    }
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
  await syncDirectory(directory);
  return bytes;
}

/** Reads a checkpoint; DataFormatError names the file and what is wrong with it. */
export async function readCheckpoint(file: string): Promise<Checkpoint> {
  return decodeCheckpoint(file, await fs.promises.readFile(file));
}

/** Parses a checkpoint's bytes; `file` names it in errors. */
export function decodeCheckpoint(file: string, bytes: Buffer): Checkpoint {
  assertLittleEndian();
  const bad = (why: string): never => {
    throw new DataFormatError(`${file}: ${why}`);
  };
  const newline = bytes.subarray(0, MAX_FIRST_LINE).indexOf(0x0a);
  const firstLine = bytes.subarray(0, newline < 0 ? Math.min(bytes.length, MAX_FIRST_LINE) : newline).toString('latin1');
  const [magic, formatText, headerText, ...rest] = firstLine.split(' ');
  if (magic !== MAGIC) bad(`not a lifelong checkpoint (bad magic: the file should start with "${MAGIC}")`);
  if (newline < 0) bad(bytes.length < MAX_FIRST_LINE ? 'truncated: the first line is incomplete' : 'corrupt first line');
  const format = Number(formatText);
  if (!Number.isInteger(format)) bad(`corrupt first line "${firstLine}"`);
  if (!READABLE_FORMATS.includes(format)) bad(`unsupported checkpoint format ${format} (this version reads formats ${READABLE_FORMATS.join(' and ')})`);
  const checksum = format >= 2 ? rest.shift() : undefined;
  const headerBytes = Number(headerText);
  if (!Number.isInteger(headerBytes) || headerBytes < 2 || rest.length > 0 || (format >= 2 && !/^[0-9a-f]{64}$/.test(checksum ?? ''))) bad(`corrupt first line "${firstLine}"`);
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
  if (header.run !== undefined && (typeof header.run !== 'object' || header.run === null || typeof header.run.meta !== 'object' || typeof header.run.tensors !== 'object')) bad('corrupt header: its run state lacks meta or tensors');
  const blobFloats = (bytes.length - blobStart) / 4;
  const readTensors = (entries: Record<string, TensorEntry>): Record<string, TensorSnapshot> => {
    const tensors: Record<string, TensorSnapshot> = {};
    for (const [name, entry] of Object.entries(entries)) {
      const size = Array.isArray(entry.shape) ? entry.shape.reduce((a, b) => a * b, 1) : NaN;
      if (!Number.isInteger(entry.offset) || entry.offset < 0 || entry.length !== size) bad(`corrupt header: tensor ${name} has shape [${String(entry.shape)}] and length ${entry.length}`);
      if (entry.offset + entry.length > blobFloats) bad(`truncated: tensor ${name} needs floats ${entry.offset}..${entry.offset + entry.length} of the blob, which has ${Math.floor(blobFloats)}`);
      const data = new Float32Array(entry.length);
      const from = blobStart + 4 * entry.offset;
      new Uint8Array(data.buffer).set(bytes.subarray(from, from + 4 * entry.length));
      tensors[name] = { shape: [...entry.shape], data };
    }
    return tensors;
  };
  const stateTensors = readTensors(header.state.tensors);
  const runTensors = header.run ? readTensors(header.run.tensors) : undefined;
  if (checksum !== undefined) {
    const actual = createHash('sha256').update(bytes.subarray(headerStart)).digest('hex');
    if (actual !== checksum) bad(`corrupt: the checksum of its contents is ${actual.slice(0, 12)}..., the first line says ${checksum.slice(0, 12)}...`);
  }
  const { run, ...rest2 } = header;
  return {
    ...rest2,
    state: { ...header.state, tensors: stateTensors },
    ...(run && runTensors ? { run: { meta: run.meta, tensors: runTensors } } : {}),
  };
}
