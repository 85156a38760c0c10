// The CUDA mask kernels' host interface (no Node here: supsup_cuda_addon.cc wraps it for JavaScript).
// Contract: src/core/kernels/mask-kernels.ts (scores, subsetCount), bank layout: src/core/mask-bank.ts
// (8-task interleaved blocks), weights and signs: docs/model-format.md §2.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace supsup_cuda {

/** The device this process uses (device 0), or ok = false with a one-line reason. */
struct DeviceInfo {
  bool ok = false;
  std::string reason;
  std::string name;
  int major = 0, minor = 0, multiprocessors = 0;
  double memoryBytes = 0;
  int driverVersion = 0, runtimeVersion = 0;
};
DeviceInfo QueryDevice();

struct Layer {
  int in, out;
  int64_t offset;  // flat index of the layer's first weight
  float scale;     // c_l = sqrt(2 / in), rounded to float32
};

/**
 * One packed mask bank resident on the device, optionally with the base network (sign bits, dense W) and one
 * superposition W ⊙ Σ_{i∈S} M^i / |S| kept there, so that task inference and the given-task forward read the
 * bank where it lives. Every method throws std::runtime_error (CUDA error with its place) or
 * std::invalid_argument (bad sizes) and leaves the object usable.
 */
class ResidentBank {
 public:
  explicit ResidentBank(int words);
  ~ResidentBank();
  ResidentBank(const ResidentBank&) = delete;
  ResidentBank& operator=(const ResidentBank&) = delete;

  int words() const { return words_; }
  int blocks() const { return blocks_; }
  int64_t residentBytes() const;

  /** Replaces the whole bank (blocks = length / (words * 8)). */
  void Upload(const uint32_t* raw, int64_t length);
  /** Copies blocks [first, first + count) of a host bank of the same shape (after a slot was written). */
  void UploadBlocks(const uint32_t* raw, int64_t length, int first, int count);

  /** out[e * slots + i] = Σ_w v[e * words * 32 + w] · bit(slot i, w); slots = blocks * 8. */
  void Scores(const float* v, int examples, float* out);
  /** out[w] = number of the given slots whose bit w is set, w < words * 32. */
  void SubsetCount(const int32_t* slots, int count, float* out);

  /** The base network: layer shapes, c_l, and the P sign bits in canonical word layout (bit 1 = +c). */
  void AttachNetwork(const std::vector<Layer>& layers, const uint32_t* signs, int64_t signWords, int classes);
  /** Makes W ⊙ Σ_{i∈slots} M^i / |slots| the superposition that SlotGradients differentiates. */
  void Superpose(const int32_t* slots, int count);
  /**
   * ∂obj/∂α_i for every slot, from one forward and backward pass of the superposition on x [batch, in].
   * objective: 0 entropy, 1 superfluous. perExample: one row per example, else the batch mean (one row).
   * out: rows × slots.
   */
  void SlotGradients(const float* x, int batch, int objective, bool perExample, float* out);
  /** Logits [batch, outputs] of the network W ⊙ M^slot, decoded from the packed bits on the fly. */
  void TaskLogits(int slot, const float* x, int batch, float* out);
  /** Device seconds of the last SlotGradients or TaskLogits kernels, without the copies in and out (CUDA events). */
  double LastPassSeconds() const;
  /** Median seconds of one pass that reads every byte of the resident bank (the memory-read floor). */
  double ReadFloorSeconds(int repeats);

 private:
  struct Buffers;
  int words_;
  int blocks_ = 0;
  Buffers* d_;
};

}  // namespace supsup_cuda
