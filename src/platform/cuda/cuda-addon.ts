/**
 * Loads the CUDA addon (native/cuda/, built by `npm run build:cuda` into build/cuda/supsup_cuda.node, only where
 * nvcc exists) and asks it for a device. Never throws: callers get the addon and the device, or null and a
 * one-line reason (not built, no driver, no device, a GPU this build has no code for).
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface CudaDevice {
  ok: boolean;
  /** Why the device cannot be used (empty when ok). */
  reason: string;
  name: string;
  /** "9.0" for Hopper. */
  computeCapability: string;
  multiprocessors: number;
  memoryBytes: number;
  /** CUDA versions as 1000·major + 10·minor; driverVersion 0 means no driver. */
  driverVersion: number;
  runtimeVersion: number;
}

/** One packed bank resident on the device (contract: native/cuda/supsup_cuda.h). Every method throws on error. */
export interface CudaBank {
  upload(raw: Uint32Array): void;
  uploadBlocks(raw: Uint32Array, first: number, count: number): void;
  scores(v: Float32Array, examples: number, out: Float32Array): void;
  subsetCount(slots: Int32Array, out: Float32Array): void;
  /** shapes: [in, out, offset] per layer; scales: c_l; signs: the P sign bits, canonical word layout. */
  attachNetwork(shapes: Int32Array, scales: Float32Array, signs: Uint32Array, classes: number): void;
  superpose(slots: Int32Array): void;
  /** objective 0: entropy, 1: superfluous. out: (perExample ? batch : 1) × slots. */
  slotGradients(x: Float32Array, batch: number, objective: 0 | 1, perExample: boolean, out: Float32Array): void;
  taskLogits(slot: number, x: Float32Array, batch: number, out: Float32Array): void;
  readFloorSeconds(repeats: number): number;
  /** Device seconds of the last slotGradients or taskLogits kernels, without the copies in and out. */
  lastPassSeconds(): number;
  residentBytes(): number;
  blocks(): number;
  dispose(): void;
}

export interface CudaAddon {
  deviceInfo(): CudaDevice;
  CudaBank: new (words: number) => CudaBank;
}

export const CUDA_ADDON_PATH = fileURLToPath(new URL('../../../build/cuda/supsup_cuda.node', import.meta.url));

export type CudaProbe = { addon: CudaAddon; device: CudaDevice; reason: string } | { addon: null; device: null; reason: string };

let cached: CudaProbe | undefined;

/** The addon and its device, or nulls with a one-line reason. Probed once per process. */
export function probeCuda(): CudaProbe {
  cached ??= probe();
  return cached;
}

function probe(): CudaProbe {
  let addon: CudaAddon;
  try {
    addon = createRequire(import.meta.url)(CUDA_ADDON_PATH) as CudaAddon;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why =
      e.code === 'MODULE_NOT_FOUND' ? 'not built (`npm run build:cuda` builds it where nvcc exists)' : String(e.message).split('\n', 1)[0];
    return { addon: null, device: null, reason: `CUDA addon ${why}` };
  }
  const device = addon.deviceInfo();
  if (!device.ok) return { addon: null, device: null, reason: `CUDA: ${device.reason}` };
  return { addon, device, reason: describeDevice(device) };
}

/** "NVIDIA H200 (sm_90, 132 SMs, 139.8 GiB), driver CUDA 13.0" */
export function describeDevice(d: CudaDevice): string {
  const version = (v: number) => `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}`;
  const gib = (d.memoryBytes / 2 ** 30).toFixed(1);
  return `${d.name} (sm_${d.computeCapability.replace('.', '')}, ${d.multiprocessors} SMs, ${gib} GiB), driver CUDA ${version(d.driverVersion)}, runtime ${version(d.runtimeVersion)}`;
}
