import type { Objective } from '../../contract/classify.ts';

/**
 * The mask bank and the base network kept on an accelerator, with the two passes that read the bank there:
 * task inference (forward and backward of a superposition, then ∂obj/∂α for every slot) and the given-task
 * forward. MaskKernels that have a device bind one to a SupermaskNetwork (MaskKernels.bindNetwork), which then
 * routes these passes through it and reports every change of the bank.
 */
export interface DeviceNetwork {
  /** e.g. "cuda NVIDIA H200". */
  readonly name: string;
  /** The bank changed: `slot` was written or cleared (the bank may have grown, replacing its raw array). */
  bankChanged(slot: number): void;
  /** ∂obj/∂α_i for every slot of the bank (rows × slotCapacity) from W ⊙ Σ_{i∈slots} M^i / |slots|. */
  slotGradients(slots: Int32Array, x: Float32Array, batch: number, objective: Objective, perExample: boolean): Float32Array;
  /** Logits [batch × outputs] of W ⊙ M^slot for x [batch × inputs]. */
  taskLogits(slot: number, x: Float32Array, batch: number): Float32Array;
  dispose(): void;
}
