// Architectures: the presets, their validation, and the weight order.
//
// Weight order (part of the file format): layers in order; within a layer the matrix is [in][out],
// row-major, so weight (i, j) of layer l has flat index offset[l] + i * out + j. That is the layout
// `x @ W` uses, so the forward pass needs no transpose.
import type { Architecture } from '../contract/model.ts';

export type { Architecture };

export interface LayerShape {
  in: number;
  out: number;
  /** Flat index of this layer's first weight. */
  offset: number;
}

export const PRESETS = {
  'lenet-300-100': { inputSize: 784, hidden: [300, 100] },
  'fc-1024-1024': { inputSize: 784, hidden: [1024, 1024] },
} as const;

export type PresetName = keyof typeof PRESETS;

const isPresetName = (name: string): name is PresetName => Object.hasOwn(PRESETS, name);
export const PRESET_NAMES: readonly PresetName[] = Object.keys(PRESETS).filter(isPresetName);

export function presetArchitecture(name: PresetName, outputs: number, classes = 10): Architecture {
  const p = PRESETS[name];
  return validateArchitecture({ inputSize: p.inputSize, hidden: [...p.hidden], outputs, classes });
}

export function validateArchitecture(a: Architecture): Architecture {
  const positiveInt = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
  if (!positiveInt(a.inputSize)) throw new Error(`architecture.inputSize must be a positive integer`);
  if (!Array.isArray(a.hidden) || !a.hidden.every(positiveInt)) {
    throw new Error(`architecture.hidden must be an array of positive integers`);
  }
  if (!positiveInt(a.outputs)) throw new Error(`architecture.outputs must be a positive integer`);
  if (!positiveInt(a.classes) || a.classes > a.outputs) {
    throw new Error(`architecture.classes must be a positive integer no larger than outputs (${a.outputs})`);
  }
  return a;
}

export function layerShapes(a: Architecture): LayerShape[] {
  const sizes = [a.inputSize, ...a.hidden, a.outputs];
  const shapes: LayerShape[] = [];
  let offset = 0;
  for (let l = 0; l + 1 < sizes.length; l++) {
    shapes.push({ in: sizes[l], out: sizes[l + 1], offset });
    offset += sizes[l] * sizes[l + 1];
  }
  return shapes;
}

/** P, the number of weights (and of mask bits per task). */
export function weightCount(a: Architecture): number {
  return layerShapes(a).reduce((n, s) => n + s.in * s.out, 0);
}

/** Words of 32 bits that hold one task's mask. */
export function maskWords(a: Architecture): number {
  return Math.ceil(weightCount(a) / 32);
}
