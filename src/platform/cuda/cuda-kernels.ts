/**
 * MaskKernels on a CUDA device (native/cuda/). Two ways in:
 *
 * - bindNetwork (what the engine uses): the bank and the base network stay resident on the device; the bank is
 *   uploaded once and then one 8-slot block per added or removed task, and task inference and the given-task
 *   forward run there, so a request moves only its inputs and its answer across the bus.
 * - scores / subsetCount (the plain MaskKernels contract, for any caller with any bank): the bank is copied
 *   to the device on every call, since nothing tells these calls when a caller's array changed.
 */
import { layerShapes } from '../../core/architecture.ts';
import type { BaseNetwork } from '../../core/base-network.ts';
import type { DeviceNetwork } from '../../core/kernels/device-network.ts';
import type { MaskKernels } from '../../core/kernels/mask-kernels.ts';
import { checkScoresArgs, checkSubsetArgs, typescriptKernels } from '../../core/kernels/typescript-kernels.ts';
import { BLOCK_SLOTS, type MaskBank } from '../../core/mask-bank.ts';
import type { Objective } from '../../contract/classify.ts';
import { type CudaAddon, type CudaBank, probeCuda } from './cuda-addon.ts';

/** CUDA MaskKernels, or null with the one-line reason (not built, no driver, no device). */
export function loadCudaKernels(): { kernels: MaskKernels | null; reason: string } {
  const probe = probeCuda();
  if (!probe.addon) return { kernels: null, reason: probe.reason };
  return { kernels: cudaKernels(probe.addon, probe.device.name), reason: probe.reason };
}

function cudaKernels(addon: CudaAddon, deviceName: string): MaskKernels {
  const scratch = new Map<number, CudaBank>(); // one device bank per words, re-filled by each call
  const scratchFor = (words: number, bank: Uint32Array, blocks: number): CudaBank => {
    let b = scratch.get(words);
    if (!b) scratch.set(words, (b = new addon.CudaBank(words)));
    b.upload(bank.subarray(0, blocks * words * BLOCK_SLOTS));
    return b;
  };
  return {
    name: 'cuda',
    scores(bank, words, blocks, v, examples, out) {
      checkScoresArgs(bank, words, blocks, v, examples, out);
      scratchFor(words, bank, blocks).scores(v, examples, out);
    },
    // Binary search's candidate banks are packed on the host; with a device the search never needs them.
    gatherSlots: typescriptKernels.gatherSlots,
    subsetCount(bank, words, slots, out) {
      checkSubsetArgs(bank, words, slots, out);
      scratchFor(words, bank, bank.length / (words * BLOCK_SLOTS)).subsetCount(slots, out);
    },
    bindNetwork: (base, bank) => new CudaNetwork(addon, deviceName, base, bank),
  };
}

const OBJECTIVE_CODES: Record<Objective, 0 | 1> = { entropy: 0, superfluous: 1 };

class CudaNetwork implements DeviceNetwork {
  readonly name: string;
  private readonly resident: CudaBank;
  /** The host array the device copy mirrors; null or another array: upload it whole before the next pass. */
  private mirrored: Uint32Array | null = null;
  /** The slots of the superposition on the device (null: none valid since the bank last changed). */
  private superposedSlots: Int32Array | null = null;
  private readonly outputs: number;

  constructor(addon: CudaAddon, deviceName: string, base: BaseNetwork, private readonly bank: MaskBank) {
    this.name = `cuda ${deviceName}`;
    this.outputs = base.architecture.outputs;
    const shapes = layerShapes(base.architecture);
    this.resident = new addon.CudaBank(bank.words);
    this.resident.attachNetwork(
      Int32Array.from(shapes.flatMap((s) => [s.in, s.out, s.offset])),
      Float32Array.from(base.layers, (w) => Math.abs(w[0])),
      signBits(base, bank.words),
      base.architecture.classes,
    );
  }

  bankChanged(slot: number): void {
    this.superposedSlots = null;
    if (this.mirrored === this.bank.raw) this.resident.uploadBlocks(this.bank.raw, Math.floor(slot / BLOCK_SLOTS), 1);
  }

  slotGradients(slots: Int32Array, x: Float32Array, batch: number, objective: Objective, perExample: boolean): Float32Array {
    this.sync();
    if (!sameSlots(this.superposedSlots, slots)) {
      this.resident.superpose(slots);
      this.superposedSlots = slots.slice();
    }
    const out = new Float32Array((perExample ? batch : 1) * this.bank.slotCapacity);
    this.resident.slotGradients(x, batch, OBJECTIVE_CODES[objective], perExample, out);
    return out;
  }

  taskLogits(slot: number, x: Float32Array, batch: number): Float32Array {
    this.sync();
    const out = new Float32Array(batch * this.outputs);
    this.resident.taskLogits(slot, x, batch, out);
    return out;
  }

  dispose(): void {
    this.resident.dispose();
  }

  private sync(): void {
    if (this.mirrored === this.bank.raw) return;
    this.resident.upload(this.bank.raw);
    this.mirrored = this.bank.raw;
    this.superposedSlots = null;
  }
}

/** The base network's sign bits in canonical word layout (bit 1 = +c), from its weights. */
function signBits(base: BaseNetwork, words: number): Uint32Array {
  const signs = new Uint32Array(words);
  let w = 0;
  for (const layer of base.layers) {
    for (let i = 0; i < layer.length; i++, w++) if (layer[i] > 0) signs[w >>> 5] |= 1 << (w & 31);
  }
  return signs;
}

function sameSlots(a: Int32Array | null, b: Int32Array): boolean {
  if (!a || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
