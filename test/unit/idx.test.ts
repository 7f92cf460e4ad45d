import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataFormatError } from '../../src/core/errors';
import { expectMagic, idxMagic, readIdx, readIdxFile } from '../../src/data/idx';
import { loadMnist, mnistPixels, MNIST_PIXELS } from '../../src/data/mnist';

/** An IDX buffer: header for `dims` with type code `type`, then `data`. */
function idxBuffer(dims: number[], data: number[], type = 0x08): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = type;
  header[3] = dims.length;
  dims.forEach((size, d) => header.writeUInt32BE(size, 4 + 4 * d));
  return Buffer.concat([header, Buffer.from(data)]);
}

function assertDataFormatError(run: () => unknown, pattern: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof DataFormatError, `expected DataFormatError, got ${String(error)}`);
    assert.match(error.message, /file\.idx/, 'the message names the file');
    assert.match(error.message, pattern);
    return true;
  });
}

describe('readIdx', () => {
  it('parses a hand-made rank-3 unsigned-byte buffer', () => {
    const data = Array.from({ length: 2 * 3 * 2 }, (_, i) => (i * 37) % 256);
    const idx = readIdx(idxBuffer([2, 3, 2], data), 'file.idx');
    assert.deepEqual(idx.dims, [2, 3, 2]);
    assert.equal(idx.magic, 2051);
    assert.deepEqual(Array.from(idx.data), data);
  });

  it('parses a buffer that is a slice of a larger one at the right offset', () => {
    const inner = idxBuffer([3], [7, 8, 9]);
    const outer = Buffer.concat([Buffer.from([1, 2, 3, 4, 5]), inner]);
    const idx = readIdx(outer.subarray(5), 'file.idx');
    assert.deepEqual(Array.from(idx.data), [7, 8, 9]);
    assert.equal(idx.magic, 2049);
  });

  it('reports a truncated data section with expected and actual byte counts', () => {
    const full = idxBuffer([4, 5], Array.from({ length: 20 }, () => 1));
    assertDataFormatError(() => readIdx(full.subarray(0, full.length - 3), 'file.idx'), /truncated.*need 20 data bytes, found 17/);
  });

  it('reports a truncated header and a file shorter than the magic', () => {
    const full = idxBuffer([4, 5, 6], []);
    assertDataFormatError(() => readIdx(full.subarray(0, 10), 'file.idx'), /truncated.*header/);
    assertDataFormatError(() => readIdx(Buffer.from([0, 0]), 'file.idx'), /truncated/);
  });

  it('refuses a foreign file (PNG) as not an IDX file', () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);
    assertDataFormatError(() => readIdx(png, 'file.idx'), /not an IDX file \(magic 0x89504e47/);
  });

  it('refuses an unknown type code as foreign and a known non-byte type as unsupported', () => {
    assertDataFormatError(() => readIdx(idxBuffer([1], [0], 0x42), 'file.idx'), /not an IDX file/);
    assertDataFormatError(() => readIdx(idxBuffer([1], [0, 0, 0, 0], 0x0d), 'file.idx'), /unsupported IDX element type 0x0d \(float32\)/);
  });

  it('refuses 0 or more than 4 dimensions', () => {
    assertDataFormatError(() => readIdx(idxBuffer([], [1]), 'file.idx'), /0 dimensions/);
    assertDataFormatError(() => readIdx(idxBuffer([1, 1, 1, 1, 1], [1]), 'file.idx'), /5 dimensions/);
  });

  it('refuses trailing bytes after the data', () => {
    assertDataFormatError(() => readIdx(idxBuffer([2], [1, 2, 3, 4]), 'file.idx'), /2 unexpected trailing bytes/);
  });

  it('expectMagic tells labels from images', () => {
    const labels = readIdx(idxBuffer([2], [1, 2]), 'file.idx');
    expectMagic(labels, idxMagic(1), 'file.idx');
    assertDataFormatError(() => expectMagic(labels, idxMagic(3), 'file.idx'), /magic 2049.*expected 2051/);
  });

  it('readIdxFile reads a file and names a missing one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lifelong-idx-'));
    try {
      const file = join(dir, 'file.idx');
      writeFileSync(file, idxBuffer([2, 2], [1, 2, 3, 4]));
      assert.deepEqual(Array.from(readIdxFile(file).data), [1, 2, 3, 4]);
      assertDataFormatError(() => readIdxFile(join(dir, 'missing-file.idx')), /cannot read/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('loadMnist', () => {
  it('loads the real MNIST files: 60000 training and 10000 test 28x28 images', () => {
    const mnist = loadMnist();
    assert.equal(mnist.train.count, 60000);
    assert.equal(mnist.test.count, 10000);
    for (const split of [mnist.train, mnist.test]) {
      assert.equal(split.rows, 28);
      assert.equal(split.cols, 28);
      assert.equal(split.images.length, split.count * MNIST_PIXELS);
      assert.equal(split.labels.length, split.count);
      // Every digit occurs, roughly a tenth each.
      const counts = new Array<number>(10).fill(0);
      for (const label of split.labels) counts[label]! += 1;
      for (const count of counts) assert.ok(count > split.count / 20 && count < split.count / 5, `digit counts ${counts}`);
    }
    assert.equal(loadMnist(), mnist, 'memoized per directory');
  });

  it('mnistPixels scales one image to [0, 1]', () => {
    const { train } = loadMnist();
    const pixels = mnistPixels(train, 7);
    assert.equal(pixels.length, MNIST_PIXELS);
    const raw = train.images.subarray(7 * MNIST_PIXELS, 8 * MNIST_PIXELS);
    pixels.forEach((value, i) => assert.equal(value, Math.fround(raw[i]! / 255)));
    assert.ok(Math.max(...pixels) === 1 || Math.max(...raw) < 255);
    assert.ok(Math.min(...pixels) >= 0);
  });

  it('refuses a directory whose image and label counts disagree', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lifelong-mnist-'));
    try {
      const image = Array.from({ length: 784 }, () => 0);
      for (const prefix of ['train', 't10k']) {
        writeFileSync(join(dir, `${prefix}-images-idx3-ubyte`), idxBuffer([2, 28, 28], [...image, ...image]));
        writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte`), idxBuffer([3], [1, 2, 3]));
      }
      assert.throws(() => loadMnist(dir), (error: unknown) => error instanceof DataFormatError && /3 labels for the 2 images/.test(error.message));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
