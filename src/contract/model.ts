// What defines a model: the base network's shape and seed, and the input normalisation every example gets.
// The manifest stores exactly this (plus its tasks); the engine, training and the service all start from it.

/**
 * An MLP described by data. Every layer is masked, no biases, ReLU between layers; core/architecture.ts
 * has the weight order and the presets.
 */
export interface Architecture {
  /** Input features (784 for MNIST). */
  inputSize: number;
  /** Hidden widths, e.g. [300, 100] for LeNet 300-100. */
  hidden: number[];
  /** Output neurons s (real classes plus superfluous neurons). */
  outputs: number;
  /** Real classes l: the first l outputs carry labels. */
  classes: number;
}

/** Every input value x becomes (x − mean) / std before the first layer. */
export interface Normalization {
  mean: number;
  std: number;
}

/** The paper's MNIST constants. */
export const MNIST_NORMALIZATION: Normalization = { mean: 0.1307, std: 0.3081 };

/** A model without its tasks: the same spec always regenerates the same frozen base network. */
export interface ModelSpec {
  architecture: Architecture;
  seed: number;
  normalization: Normalization;
}
