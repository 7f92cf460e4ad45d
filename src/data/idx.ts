/**
 * Reader for the IDX format of the MNIST files (http://yann.lecun.com/exdb/mnist/):
 * a 4-byte magic [0, 0, type code, number of dimensions], one big-endian uint32 per dimension,
 * then the elements in row-major order. Only unsigned bytes (type 0x08) are supported, which is
 * what MNIST uses; everything else is refused with a DataFormatError naming the file.
 */
import { readFileSync } from 'node:fs';
import { DataFormatError } from '../core/errors';

/** Type code of unsigned-byte elements. */
export const IDX_UNSIGNED_BYTE = 0x08;

/** Magic number of an unsigned-byte IDX file of the given rank: 2049 for labels, 2051 for images. */
export function idxMagic(rank: number): number {
  return (IDX_UNSIGNED_BYTE << 8) | rank;
}

export interface IdxArray {
  /** The 32-bit magic number, e.g. 2051 for unsigned-byte rank-3 data. */
  readonly magic: number;
  readonly dims: readonly number[];
  /**
   * prod(dims) elements in row-major order. A view into the file's buffer (no copy): callers
   * must treat it as read-only.
   */
  readonly data: Uint8Array;
}

/** Type codes the IDX format defines, for a precise message when one we do not read turns up. */
const KNOWN_TYPE_CODES: Readonly<Record<number, string>> = {
  0x08: 'unsigned byte',
  0x09: 'signed byte',
  0x0b: 'int16',
  0x0c: 'int32',
  0x0d: 'float32',
  0x0e: 'float64',
};

const MAX_RANK = 4;

function hex(value: number, digits: number): string {
  return `0x${value.toString(16).padStart(digits, '0')}`;
}

/** Parses an IDX buffer; `file` only names the data in error messages. */
export function readIdx(buffer: Buffer, file: string): IdxArray {
  if (buffer.length < 4) {
    throw new DataFormatError(
      `${file}: truncated: ${buffer.length} bytes, shorter than the 4-byte IDX magic number`,
    );
  }
  const magic = buffer.readUInt32BE(0);
  const typeCode = buffer[2] as number;
  const rank = buffer[3] as number;
  if (buffer[0] !== 0 || buffer[1] !== 0 || !(typeCode in KNOWN_TYPE_CODES)) {
    throw new DataFormatError(
      `${file}: not an IDX file (magic ${hex(magic, 8)}; an IDX file starts with 0x0000 and a type code)`,
    );
  }
  if (typeCode !== IDX_UNSIGNED_BYTE) {
    throw new DataFormatError(
      `${file}: unsupported IDX element type ${hex(typeCode, 2)} (${KNOWN_TYPE_CODES[typeCode]}); ` +
        `only ${hex(IDX_UNSIGNED_BYTE, 2)} (unsigned byte) is supported`,
    );
  }
  if (rank < 1 || rank > MAX_RANK) {
    throw new DataFormatError(
      `${file}: IDX header declares ${rank} dimensions; expected 1 to ${MAX_RANK} (magic ${hex(magic, 8)})`,
    );
  }
  const headerBytes = 4 + 4 * rank;
  if (buffer.length < headerBytes) {
    throw new DataFormatError(
      `${file}: truncated: the IDX header of ${rank} dimensions needs ${headerBytes} bytes, the file has ${buffer.length}`,
    );
  }
  const dims: number[] = [];
  for (let d = 0; d < rank; d++) dims.push(buffer.readUInt32BE(4 + 4 * d));
  // A float product is exact up to 2^53 and any larger value cannot match a real file anyway.
  const expected = dims.reduce((product, size) => product * size, 1);
  const actual = buffer.length - headerBytes;
  if (actual < expected) {
    throw new DataFormatError(
      `${file}: truncated: dimensions [${dims.join(', ')}] need ${expected} data bytes, found ${actual}`,
    );
  }
  if (actual > expected) {
    throw new DataFormatError(
      `${file}: ${actual - expected} unexpected trailing bytes after the ${expected} data bytes of dimensions [${dims.join(', ')}]`,
    );
  }
  return {
    magic,
    dims,
    data: new Uint8Array(buffer.buffer, buffer.byteOffset + headerBytes, expected),
  };
}

/** Reads and parses an IDX file; unreadable files are DataFormatErrors too. */
export function readIdxFile(path: string): IdxArray {
  let buffer: Buffer;
  try {
    buffer = readFileSync(path);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new DataFormatError(`${path}: cannot read IDX file: ${reason}`, { cause: error });
  }
  return readIdx(buffer, path);
}

/**
 * Asserts the IDX data has the expected magic number, e.g. idxMagic(3) = 2051 for MNIST images
 * and idxMagic(1) = 2049 for labels, so that swapped or foreign files are named clearly.
 */
export function expectMagic(idx: IdxArray, expectedMagic: number, file: string): void {
  if (idx.magic !== expectedMagic) {
    throw new DataFormatError(
      `${file}: IDX magic ${idx.magic} (${idx.dims.length} dimensions), expected ${expectedMagic} ` +
        `(${expectedMagic & 0xff} dimensions of ${KNOWN_TYPE_CODES[(expectedMagic >> 8) & 0xff] ?? 'unknown type'})`,
    );
  }
}
