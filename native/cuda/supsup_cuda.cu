// CUDA mask kernels for supsup: the same contracts as the CPU addon (src/core/kernels/mask-kernels.ts) over a
// bank that stays on the device, plus the two passes that make it worth keeping there: task inference's
// forward/backward of the superposition, and the given-task forward decoded from the packed bits.
//
// Bank layout (src/core/mask-bank.ts): block b holds slots 8b..8b+7; word j of slot s is at (b*words + j)*8 + s.
// Weights (docs/model-format.md §2): flat weight w = offset_l + i*out_l + j is sign_w * c_l, sign bit 1 = +c.
//
// Kernels, each one thread per output element with no cross-thread order in its sums (deterministic):
//   ScoresChunk/ScoresReduce  per 32-word chunk, nibble tables of v in shared memory (8 look-ups per mask word
//                             instead of 32 bit tests), one partial sum per (example, chunk, slot), then a fixed-
//                             order sum over chunks
//   SubsetCount               per word, 32 bit counters in registers over a chunk of slots; integer atomics
//   Gemm/Gemv                 small dense products with the B operand read through a functor: a dense matrix,
//                             or the ternary ±c weights decoded from sign and mask bits (given-task forward)
//   ObjectiveGradient         dObj/dlogits per row (entropy H or superfluous G, src/core/objectives.ts)

#include "supsup_cuda.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace supsup_cuda {
namespace {

constexpr int kBlockSlots = 8;
constexpr int kChunkWords = 32;        // words per scores chunk; kChunkWords * 8 = threads per block
constexpr int kScoresThreads = 256;    // slots per scores block
constexpr int kSubsetSlots = 64;       // slots per subset-count block
constexpr int64_t kPartialFloats = int64_t(1) << 27;  // 512 MiB of partial sums at most per scores pass

void Check(cudaError_t status, const char* what, int line) {
  if (status != cudaSuccess) {
    cudaGetLastError();  // clear a sticky launch error so the object stays usable
    throw std::runtime_error(std::string("CUDA ") + cudaGetErrorName(status) + " (" + cudaGetErrorString(status) +
                             ") in " + what + " at supsup_cuda.cu:" + std::to_string(line));
  }
}
#define CK(call) Check((call), #call, __LINE__)
#define CK_LAUNCH(name) Check(cudaGetLastError(), name, __LINE__)

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// ---------------------------------------------------------------------------------------------------------
// Scores: out[e][slot] = Σ_w v[e][w] · bit(slot, w).

__global__ void __launch_bounds__(kScoresThreads, 2) ScoresChunk(const uint32_t* __restrict__ bank, int words, int slots,
                                                                 const float* __restrict__ v, int examples,
                                                                 float* __restrict__ partial) {
  __shared__ float table[kChunkWords * 128];               // [word in chunk][nibble group][16]
  __shared__ uint32_t m[kChunkWords][kScoresThreads];      // this block's mask words, read once per example
  const int chunks = gridDim.x, chunk = blockIdx.x, t = threadIdx.x;
  const int j0 = chunk * kChunkWords, n = min(kChunkWords, words - j0);
  const int slot = blockIdx.y * kScoresThreads + t;
  const bool active = slot < slots;
  const int64_t base = (int64_t(slot >> 3) * words + j0) * kBlockSlots + (slot & 7);
#pragma unroll 8
  for (int jj = 0; jj < kChunkWords; jj++) m[jj][t] = (active && jj < n) ? bank[base + int64_t(jj) * kBlockSlots] : 0u;

  const int tw = t >> 3, tg = t & 7;  // the (word, nibble group) whose table this thread builds
  for (int e = 0; e < examples; e++) {
    float4 q = make_float4(0.f, 0.f, 0.f, 0.f);
    if (tw < n) q = *reinterpret_cast<const float4*>(v + (int64_t(e) * words + j0 + tw) * 32 + tg * 4);
    __syncthreads();  // the previous example's tables are no longer read
    float* T = table + tw * 128 + tg * 16;
    T[0] = 0.f;
    T[1] = q.x;
    T[2] = q.y;
    T[3] = q.x + q.y;
#pragma unroll
    for (int i = 0; i < 4; i++) T[4 + i] = T[i] + q.z;
#pragma unroll
    for (int i = 0; i < 8; i++) T[8 + i] = T[i] + q.w;
    __syncthreads();
    if (active) {
      float sum = 0.f;
#pragma unroll 8
      for (int jj = 0; jj < kChunkWords; jj++) {
        const uint32_t x = m[jj][t];
        const float* W = table + jj * 128;
        sum += ((W[x & 15] + W[16 + ((x >> 4) & 15)]) + (W[32 + ((x >> 8) & 15)] + W[48 + ((x >> 12) & 15)])) +
               ((W[64 + ((x >> 16) & 15)] + W[80 + ((x >> 20) & 15)]) + (W[96 + ((x >> 24) & 15)] + W[112 + (x >> 28)]));
      }
      partial[(int64_t(e) * chunks + chunk) * slots + slot] = sum;
    }
  }
}

__global__ void ScoresReduce(const float* __restrict__ partial, int chunks, int slots, int examples, float* __restrict__ out) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= int64_t(examples) * slots) return;
  const int64_t e = i / slots, s = i % slots;
  const float* p = partial + e * chunks * slots + s;
  float sum = 0.f;
  for (int c = 0; c < chunks; c++) sum += p[int64_t(c) * slots];
  out[i] = sum;
}

// ---------------------------------------------------------------------------------------------------------
// Subset count: counts[w] += number of listed slots whose bit w is set.

__global__ void SubsetCount(const uint32_t* __restrict__ bank, int words, const int32_t* __restrict__ slots, int n,
                            uint32_t* __restrict__ counts) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= words) return;
  const int i0 = blockIdx.y * kSubsetSlots, i1 = min(n, i0 + kSubsetSlots);
  uint32_t c[32];
#pragma unroll
  for (int b = 0; b < 32; b++) c[b] = 0;
  for (int i = i0; i < i1; i++) {
    const int s = slots[i];
    const uint32_t x = bank[(int64_t(s >> 3) * words + j) * kBlockSlots + (s & 7)];
#pragma unroll
    for (int b = 0; b < 32; b++) c[b] += (x >> b) & 1u;
  }
#pragma unroll
  for (int b = 0; b < 32; b++)
    if (c[b] != 0) atomicAdd(&counts[int64_t(j) * 32 + b], c[b]);
}

__global__ void CountsToFloat(const uint32_t* __restrict__ counts, int64_t n, float* __restrict__ out) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = float(counts[i]);
}

// ---------------------------------------------------------------------------------------------------------
// The base network and superpositions.

__global__ void DenseWeights(const uint32_t* __restrict__ signs, int64_t offset, int64_t n, float c, float* __restrict__ W) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const int64_t w = offset + i;
  W[w] = ((signs[w >> 5] >> (w & 31)) & 1u) ? c : -c;
}

/** Weff = W ⊙ counts / k (counts over the superposed slots). */
__global__ void Superposition(const float* __restrict__ W, const uint32_t* __restrict__ counts, int64_t n, float invK,
                              float* __restrict__ Weff) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) Weff[i] = W[i] * (float(counts[i]) * invK);
}

// Operand readers and result writers for the dense products.
struct RowMajor {  // A(m, k) = p[m * ld + k]
  const float* p;
  int ld;
  __device__ float operator()(int m, int k) const { return p[int64_t(m) * ld + k]; }
};
struct ColMajor {  // A(m, k) = p[k * ld + m]: the transpose of a row-major matrix
  const float* p;
  int ld;
  __device__ float operator()(int m, int k) const { return p[int64_t(k) * ld + m]; }
};
struct DenseB {  // B(k, n) = p[k * ldk + n * ldn]
  const float* p;
  int ldk, ldn;
  __device__ float operator()(int k, int n) const { return p[int64_t(k) * ldk + int64_t(n) * ldn]; }
};
/** B(k, n) of layer l under one slot's mask: ±c where the mask keeps weight offset + k*out + n, else 0. */
struct TernaryB {
  const uint32_t* signs;
  const uint32_t* mask;  // bank + the slot's block base + slot % 8; mask word j at mask[j * 8]
  int64_t offset;
  int out;
  float c;
  __device__ float operator()(int k, int n) const {
    const int64_t w = offset + int64_t(k) * out + n;
    const uint32_t bit = uint32_t(w & 31);
    const int64_t word = w >> 5;
    if (((mask[word * kBlockSlots] >> bit) & 1u) == 0) return 0.f;
    return ((signs[word] >> bit) & 1u) ? c : -c;
  }
};
struct StoreEpi {  // C = acc, or relu(acc)
  float* c;
  int ld;
  bool relu;
  __device__ void operator()(int m, int n, float acc) const { c[int64_t(m) * ld + n] = relu ? fmaxf(acc, 0.f) : acc; }
};
struct GateEpi {  // C = acc where gate > 0 (ReLU' read from the layer's post-activation input)
  float* c;
  const float* gate;
  int ld;
  __device__ void operator()(int m, int n, float acc) const {
    const int64_t i = int64_t(m) * ld + n;
    c[i] = gate[i] > 0.f ? acc : 0.f;
  }
};
struct WeightGradEpi {  // v[offset + m*out + n] = acc · W (∂obj/∂W_eff ⊙ W, the mask-independent factor)
  float* v;
  const float* W;
  int64_t offset;
  int out;
  __device__ void operator()(int m, int n, float acc) const {
    const int64_t w = offset + int64_t(m) * out + n;
    v[w] = acc * W[w];
  }
};

/** C[M, N] = A[M, K] · B[K, N]: 64×64 tiles, 256 threads with 4×4 results each. */
template <class A, class B, class Epi>
__global__ void __launch_bounds__(256) Gemm(int M, int N, int K, A a, B b, Epi epi) {
  __shared__ float As[16][64 + 4];
  __shared__ float Bs[16][64 + 4];
  const int t = threadIdx.x, tx = t & 15, ty = t >> 4;
  const int m0 = blockIdx.y * 64, n0 = blockIdx.x * 64;
  float acc[4][4] = {};
  for (int k0 = 0; k0 < K; k0 += 16) {
#pragma unroll
    for (int r = 0; r < 4; r++) {
      const int e = t + 256 * r;
      const int am = m0 + (e >> 4), ak = k0 + (e & 15);
      As[e & 15][e >> 4] = (am < M && ak < K) ? a(am, ak) : 0.f;
      const int bk = k0 + (e >> 6), bn = n0 + (e & 63);
      Bs[e >> 6][e & 63] = (bk < K && bn < N) ? b(bk, bn) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < 16; kk++) {
      float av[4], bv[4];
#pragma unroll
      for (int i = 0; i < 4; i++) av[i] = As[kk][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; j++) bv[j] = Bs[kk][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const int m = m0 + ty + 16 * i, n = n0 + tx + 16 * j;
      if (m < M && n < N) epi(m, n, acc[i][j]);
    }
}

constexpr int kGemvRows = 8;
constexpr int kGemvWarps = 16;
/**
 * The same product for M ≤ 8 rows (latency-bound: few columns, long K): a lane per column, 16 warps split K with
 * several loads in flight each, then a fixed-order sum.
 */
template <class A, class B, class Epi>
__global__ void __launch_bounds__(kGemvWarps * 32) Gemv(int M, int N, int K, A a, B b, Epi epi) {
  __shared__ float red[kGemvWarps][kGemvRows][33];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int n = blockIdx.x * 32 + lane;
  float acc[kGemvRows] = {};
  if (n < N) {
#pragma unroll 4
    for (int k = warp; k < K; k += kGemvWarps) {
      const float bv = b(k, n);
#pragma unroll
      for (int m = 0; m < kGemvRows; m++)
        if (m < M) acc[m] = fmaf(a(m, k), bv, acc[m]);
    }
  }
#pragma unroll
  for (int m = 0; m < kGemvRows; m++) red[warp][m][lane] = acc[m];
  __syncthreads();
  if (warp == 0 && n < N) {
    for (int m = 0; m < M; m++) {
      float s = 0.f;
#pragma unroll
      for (int w = 0; w < kGemvWarps; w++) s += red[w][m][lane];
      epi(m, n, s);
    }
  }
}

template <class A, class B, class Epi>
void Product(int M, int N, int K, A a, B b, Epi epi) {
  if (M <= 0 || N <= 0) return;
  if (M <= kGemvRows) {
    Gemv<<<unsigned(CeilDiv(N, 32)), kGemvWarps * 32>>>(M, N, K, a, b, epi);
  } else {
    Gemm<<<dim3(unsigned(CeilDiv(N, 64)), unsigned(CeilDiv(M, 64))), 256>>>(M, N, K, a, b, epi);
  }
  CK_LAUNCH("dense product");
}

/** v[e * padded + offset + i*out + j] = W[offset + i*out + j] · a[e][i] · δ[e][j]: per-example weight gradients. */
__global__ void PerExampleWeightGrad(const float* __restrict__ a, const float* __restrict__ d, const float* __restrict__ W,
                                     int64_t offset, int in, int out, int examples, int64_t padded, float* __restrict__ v) {
  const int64_t size = int64_t(in) * out;
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= size * examples) return;
  const int64_t e = idx / size, r = idx % size;
  const int64_t i = r / out, j = r % out;
  v[e * padded + offset + r] = W[offset + r] * (a[e * in + i] * d[e * out + j]);
}

template <class Op>
__device__ float BlockReduce(float x, float* scratch, Op op) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int o = 16; o > 0; o >>= 1) x = op(x, __shfl_xor_sync(0xffffffffu, x, o));
  __syncthreads();
  if (lane == 0) scratch[warp] = x;
  __syncthreads();
  float r = scratch[0];
  for (int w = 1; w < warps; w++) r = op(r, scratch[w]);
  return r;
}

/** g[row] = scale · dObj/dz for one row of logits z per block (objective 0: entropy H, 1: superfluous G). */
__global__ void ObjectiveGradient(const float* __restrict__ z, int outputs, int classes, int objective, float scale,
                                  float* __restrict__ g) {
  __shared__ float scratch[32];
  const float* zr = z + int64_t(blockIdx.x) * outputs;
  float* gr = g + int64_t(blockIdx.x) * outputs;
  float mx = -INFINITY;
  for (int j = threadIdx.x; j < outputs; j += blockDim.x) mx = fmaxf(mx, zr[j]);
  mx = BlockReduce(mx, scratch, [](float a, float b) { return fmaxf(a, b); });
  float sum = 0.f;
  for (int j = threadIdx.x; j < outputs; j += blockDim.x) sum += expf(zr[j] - mx);
  sum = BlockReduce(sum, scratch, [](float a, float b) { return a + b; });
  const float lse = mx + logf(sum);
  if (objective == 0) {
    float h = 0.f;
    for (int j = threadIdx.x; j < outputs; j += blockDim.x) {
      const float lp = zr[j] - lse;
      h -= expf(lp) * lp;
    }
    h = BlockReduce(h, scratch, [](float a, float b) { return a + b; });
    for (int j = threadIdx.x; j < outputs; j += blockDim.x) {
      const float lp = zr[j] - lse;
      gr[j] = -expf(lp) * (lp + h) * scale;
    }
  } else {
    for (int j = threadIdx.x; j < outputs; j += blockDim.x) gr[j] = j >= classes ? expf(zr[j] - lse) * scale : 0.f;
  }
}

__global__ void ReadAll(const uint4* __restrict__ p, int64_t n, uint32_t* sink) {
  uint32_t acc = 0;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
#pragma unroll 4
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const uint4 q = p[i];
    acc ^= q.x ^ q.y ^ q.z ^ q.w;
  }
  if (acc == 0x9e3779b9u) *sink = acc;  // a data-dependent store, so the loads cannot be dropped
}

// ---------------------------------------------------------------------------------------------------------
// Device buffers that only grow.

struct DeviceBuffer {
  void* p = nullptr;
  size_t bytes = 0;
  ~DeviceBuffer() { if (p) cudaFree(p); }
  /** At least `want` bytes; `fresh` is set when the storage was (re)allocated (then zeroed). */
  template <class T>
  T* Ensure(size_t want, bool* fresh = nullptr) {
    if (want > bytes) {
      if (p) CK(cudaFree(p));
      p = nullptr;
      bytes = 0;
      CK(cudaMalloc(&p, want));
      bytes = want;
      CK(cudaMemset(p, 0, want));
      if (fresh) *fresh = true;
    }
    return static_cast<T*>(p);
  }
  template <class T>
  T* As() const { return static_cast<T*>(p); }
};

}  // namespace

struct ResidentBank::Buffers {
  DeviceBuffer bank, v, partial, out, slots, counts, sink;
  // The network (AttachNetwork): sign bits, dense W, the current superposition, activations and deltas.
  std::vector<Layer> layers;
  int classes = 0;
  int64_t weights = 0;
  DeviceBuffer signs, W, Weff, acts, deltas, grad;
  bool superposed = false;
  // Device time of the last pass's kernels (after its input is on the device, before its result leaves).
  cudaEvent_t passStart = nullptr, passStop = nullptr;
  double lastPassSeconds = 0;
  ~Buffers() {
    if (passStart) cudaEventDestroy(passStart);
    if (passStop) cudaEventDestroy(passStop);
  }
  void StartPass() {
    if (!passStart) {
      CK(cudaEventCreate(&passStart));
      CK(cudaEventCreate(&passStop));
    }
    CK(cudaEventRecord(passStart));
  }
  void StopPass() { CK(cudaEventRecord(passStop)); }
  /** Call after the synchronous copy of the result: both events have completed by then. */
  void ReadPass() {
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, passStart, passStop));
    lastPassSeconds = ms / 1e3;
  }
};

DeviceInfo QueryDevice() {
  DeviceInfo info;
  cudaDriverGetVersion(&info.driverVersion);
  cudaRuntimeGetVersion(&info.runtimeVersion);
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess || count == 0) {
    cudaGetLastError();
    info.reason = info.driverVersion == 0 ? std::string("no NVIDIA driver (libcuda) on this machine")
                  : status != cudaSuccess     ? std::string("no usable CUDA device: ") + cudaGetErrorString(status)
                                              : std::string("no CUDA device present");
    return info;
  }
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    info.reason = "cudaGetDeviceProperties failed";
    return info;
  }
  info.name = prop.name;
  info.major = prop.major;
  info.minor = prop.minor;
  info.multiprocessors = prop.multiProcessorCount;
  info.memoryBytes = double(prop.totalGlobalMem);
  cudaFuncAttributes attributes;
  const cudaError_t image = cudaFuncGetAttributes(&attributes, ScoresChunk);
  if (image != cudaSuccess) {
    cudaGetLastError();
    info.reason = std::string("device ") + prop.name + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) +
                  ") cannot run this build: " + cudaGetErrorString(image);
    return info;
  }
  info.ok = true;
  return info;
}

ResidentBank::ResidentBank(int words) : words_(words), d_(new Buffers) {
  if (words <= 0) {
    delete d_;
    throw std::invalid_argument("words must be a positive integer");
  }
}

ResidentBank::~ResidentBank() { delete d_; }

int64_t ResidentBank::residentBytes() const { return int64_t(blocks_) * words_ * kBlockSlots * 4; }

void ResidentBank::Upload(const uint32_t* raw, int64_t length) {
  const int64_t blockWords = int64_t(words_) * kBlockSlots;
  if (length % blockWords != 0) throw std::invalid_argument("bank length is not a multiple of words * 8");
  uint32_t* dst = d_->bank.Ensure<uint32_t>(size_t(length) * 4);
  if (length > 0) CK(cudaMemcpy(dst, raw, size_t(length) * 4, cudaMemcpyHostToDevice));
  blocks_ = int(length / blockWords);
  d_->superposed = false;
}

void ResidentBank::UploadBlocks(const uint32_t* raw, int64_t length, int first, int count) {
  const int64_t blockWords = int64_t(words_) * kBlockSlots;
  if (length != blocks_ * blockWords) throw std::invalid_argument("the host bank no longer has the resident bank's shape");
  if (first < 0 || count < 0 || first + count > blocks_) throw std::invalid_argument("blocks outside the bank");
  if (count == 0) return;
  const size_t off = size_t(first) * blockWords;
  CK(cudaMemcpy(d_->bank.As<uint32_t>() + off, raw + off, size_t(count) * blockWords * 4, cudaMemcpyHostToDevice));
  d_->superposed = false;
}

// Scores over device-resident v (rows × words*32) into device out (rows × slots).
static void ScoresOnDevice(const uint32_t* bank, int words, int blocks, const float* v, int examples, float* out,
                           DeviceBuffer& partial) {
  const int slots = blocks * kBlockSlots;
  if (slots == 0 || examples == 0) return;
  const int chunks = int(CeilDiv(words, kChunkWords));
  const int64_t perExample = int64_t(chunks) * slots;
  const int pass = int(std::max<int64_t>(1, std::min<int64_t>(examples, kPartialFloats / perExample)));
  float* p = partial.Ensure<float>(size_t(pass) * perExample * 4);
  for (int e0 = 0; e0 < examples; e0 += pass) {
    const int n = std::min(pass, examples - e0);
    ScoresChunk<<<dim3(unsigned(chunks), unsigned(CeilDiv(slots, kScoresThreads))), kScoresThreads>>>(
        bank, words, slots, v + int64_t(e0) * words * 32, n, p);
    CK_LAUNCH("ScoresChunk");
    const int64_t outputs = int64_t(n) * slots;
    ScoresReduce<<<unsigned(CeilDiv(outputs, 256)), 256>>>(p, chunks, slots, n, out + int64_t(e0) * slots);
    CK_LAUNCH("ScoresReduce");
  }
}

void ResidentBank::Scores(const float* v, int examples, float* out) {
  if (examples < 0) throw std::invalid_argument("examples must be a non-negative integer");
  const int slots = blocks_ * kBlockSlots;
  if (examples == 0 || slots == 0) return;
  const size_t vBytes = size_t(examples) * words_ * 32 * 4, outBytes = size_t(examples) * slots * 4;
  float* dv = d_->v.Ensure<float>(vBytes);
  float* dout = d_->out.Ensure<float>(outBytes);
  CK(cudaMemcpy(dv, v, vBytes, cudaMemcpyHostToDevice));
  ScoresOnDevice(d_->bank.As<uint32_t>(), words_, blocks_, dv, examples, dout, d_->partial);
  CK(cudaMemcpy(out, dout, outBytes, cudaMemcpyDeviceToHost));
}

static void CheckSlots(const int32_t* slots, int count, int capacity) {
  for (int i = 0; i < count; i++)
    if (slots[i] < 0 || slots[i] >= capacity)
      throw std::invalid_argument("slot " + std::to_string(slots[i]) + " is outside the bank (capacity " +
                                  std::to_string(capacity) + ")");
}

// counts (device, words*32 u32) = per-weight count over the listed slots.
static uint32_t* CountOnDevice(const uint32_t* bank, int words, const int32_t* slots, int count, DeviceBuffer& slotBuf,
                               DeviceBuffer& countBuf) {
  const size_t n = size_t(words) * 32;
  uint32_t* counts = countBuf.Ensure<uint32_t>(n * 4);
  CK(cudaMemset(counts, 0, n * 4));
  if (count == 0) return counts;
  int32_t* dslots = slotBuf.Ensure<int32_t>(size_t(count) * 4);
  CK(cudaMemcpy(dslots, slots, size_t(count) * 4, cudaMemcpyHostToDevice));
  SubsetCount<<<dim3(unsigned(CeilDiv(words, 128)), unsigned(CeilDiv(count, kSubsetSlots))), 128>>>(bank, words, dslots,
                                                                                                     count, counts);
  CK_LAUNCH("SubsetCount");
  return counts;
}

void ResidentBank::SubsetCount(const int32_t* slots, int count, float* out) {
  CheckSlots(slots, count, blocks_ * kBlockSlots);
  const int64_t n = int64_t(words_) * 32;
  uint32_t* counts = CountOnDevice(d_->bank.As<uint32_t>(), words_, slots, count, d_->slots, d_->counts);
  float* dout = d_->out.Ensure<float>(size_t(n) * 4);
  CountsToFloat<<<unsigned(CeilDiv(n, 256)), 256>>>(counts, n, dout);
  CK_LAUNCH("CountsToFloat");
  CK(cudaMemcpy(out, dout, size_t(n) * 4, cudaMemcpyDeviceToHost));
}

void ResidentBank::AttachNetwork(const std::vector<Layer>& layers, const uint32_t* signs, int64_t signWords, int classes) {
  if (layers.empty()) throw std::invalid_argument("the network needs at least one layer");
  int64_t offset = 0;
  for (size_t l = 0; l < layers.size(); l++) {
    const Layer& s = layers[l];
    if (s.in <= 0 || s.out <= 0 || s.offset != offset) throw std::invalid_argument("layer shapes do not chain");
    if (l > 0 && s.in != layers[l - 1].out) throw std::invalid_argument("layer shapes do not chain");
    offset += int64_t(s.in) * s.out;
  }
  if (CeilDiv(offset, 32) != words_ || signWords != words_) throw std::invalid_argument("sign bits do not match the bank's words");
  if (classes <= 0 || classes > layers.back().out) throw std::invalid_argument("classes must be in 1..outputs");
  d_->layers = layers;
  d_->classes = classes;
  d_->weights = offset;
  uint32_t* dsigns = d_->signs.Ensure<uint32_t>(size_t(words_) * 4);
  CK(cudaMemcpy(dsigns, signs, size_t(words_) * 4, cudaMemcpyHostToDevice));
  float* W = d_->W.Ensure<float>(size_t(offset) * 4);
  for (const Layer& s : layers) {
    const int64_t n = int64_t(s.in) * s.out;
    DenseWeights<<<unsigned(CeilDiv(n, 256)), 256>>>(dsigns, s.offset, n, s.scale, W);
    CK_LAUNCH("DenseWeights");
  }
  d_->superposed = false;
}

void ResidentBank::Superpose(const int32_t* slots, int count) {
  if (d_->layers.empty()) throw std::invalid_argument("no network attached");
  if (count <= 0) throw std::invalid_argument("a superposition needs at least one slot");
  CheckSlots(slots, count, blocks_ * kBlockSlots);
  uint32_t* counts = CountOnDevice(d_->bank.As<uint32_t>(), words_, slots, count, d_->slots, d_->counts);
  const int64_t n = d_->weights;
  float* Weff = d_->Weff.Ensure<float>(size_t(n) * 4);
  Superposition<<<unsigned(CeilDiv(n, 256)), 256>>>(d_->W.As<float>(), counts, n, 1.f / float(count), Weff);
  CK_LAUNCH("Superposition");
  d_->superposed = true;
}

void ResidentBank::SlotGradients(const float* x, int batch, int objective, bool perExample, float* out) {
  Buffers& d = *d_;
  if (d.layers.empty()) throw std::invalid_argument("no network attached");
  if (!d.superposed) throw std::invalid_argument("no superposition: call superpose() after the bank changed");
  if (batch <= 0) throw std::invalid_argument("batch must be a positive integer");
  if (objective != 0 && objective != 1) throw std::invalid_argument("objective must be 0 (entropy) or 1 (superfluous)");
  const std::vector<Layer>& L = d.layers;
  const int layers = int(L.size()), outputs = L.back().out;
  // acts: the input of each layer, then the logits; deltas: one per layer ([batch, out_l]).
  std::vector<int64_t> actOff(layers + 1), deltaOff(layers);
  int64_t na = 0, nd = 0;
  for (int l = 0; l < layers; l++) {
    actOff[l] = na;
    na += int64_t(batch) * L[l].in;
    deltaOff[l] = nd;
    nd += int64_t(batch) * L[l].out;
  }
  actOff[layers] = na;
  na += int64_t(batch) * outputs;
  float* acts = d.acts.Ensure<float>(size_t(na) * 4);
  float* deltas = d.deltas.Ensure<float>(size_t(nd) * 4);
  CK(cudaMemcpy(acts, x, size_t(batch) * L[0].in * 4, cudaMemcpyHostToDevice));
  d.StartPass();
  const float* Weff = d.Weff.As<float>();
  const float* W = d.W.As<float>();
  for (int l = 0; l < layers; l++) {
    Product(batch, L[l].out, L[l].in, RowMajor{acts + actOff[l], L[l].in}, DenseB{Weff + L[l].offset, L[l].out, 1},
            StoreEpi{acts + actOff[l + 1], L[l].out, l + 1 < layers});
  }
  ObjectiveGradient<<<unsigned(batch), 256>>>(acts + actOff[layers], outputs, d.classes, objective,
                                               perExample ? 1.f : 1.f / float(batch), deltas + deltaOff[layers - 1]);
  CK_LAUNCH("ObjectiveGradient");
  for (int l = layers - 1; l > 0; l--) {  // δ_{l-1} = (δ_l · W_lᵀ) ⊙ 1[input_l > 0]
    Product(batch, L[l].in, L[l].out, RowMajor{deltas + deltaOff[l], L[l].out}, DenseB{Weff + L[l].offset, 1, L[l].out},
            GateEpi{deltas + deltaOff[l - 1], acts + actOff[l], L[l].in});
  }
  const int rows = perExample ? batch : 1;
  const int64_t padded = int64_t(words_) * 32;
  // Row r at r * padded: zeroed when allocated, and nothing ever writes a row's padding [P, padded).
  float* v = d.grad.Ensure<float>(size_t(rows) * padded * 4);
  for (int l = 0; l < layers; l++) {
    if (perExample) {
      const int64_t n = int64_t(L[l].in) * L[l].out * batch;
      PerExampleWeightGrad<<<unsigned(CeilDiv(n, 256)), 256>>>(acts + actOff[l], deltas + deltaOff[l], W, L[l].offset, L[l].in,
                                                              L[l].out, batch, padded, v);
      CK_LAUNCH("PerExampleWeightGrad");
    } else {  // Σ_b a[b][i] δ[b][j]: Aᵀ · Δ
      Product(L[l].in, L[l].out, batch, ColMajor{acts + actOff[l], L[l].in}, DenseB{deltas + deltaOff[l], L[l].out, 1},
              WeightGradEpi{v, W, L[l].offset, L[l].out});
    }
  }
  const int slots = blocks_ * kBlockSlots;
  float* dout = d.out.Ensure<float>(size_t(rows) * slots * 4);
  ScoresOnDevice(d.bank.As<uint32_t>(), words_, blocks_, v, rows, dout, d.partial);
  d.StopPass();
  CK(cudaMemcpy(out, dout, size_t(rows) * slots * 4, cudaMemcpyDeviceToHost));
  d.ReadPass();
}

void ResidentBank::TaskLogits(int slot, const float* x, int batch, float* out) {
  Buffers& d = *d_;
  if (d.layers.empty()) throw std::invalid_argument("no network attached");
  if (batch <= 0) throw std::invalid_argument("batch must be a positive integer");
  CheckSlots(&slot, 1, blocks_ * kBlockSlots);
  const std::vector<Layer>& L = d.layers;
  const int layers = int(L.size());
  int widest = 0;
  for (const Layer& s : L) widest = std::max({widest, s.in, s.out});
  // Two ping-pong activation buffers in `acts`.
  float* acts = d.acts.Ensure<float>(size_t(2) * batch * widest * 4);
  float* ping = acts;
  float* pong = acts + int64_t(batch) * widest;
  CK(cudaMemcpy(ping, x, size_t(batch) * L[0].in * 4, cudaMemcpyHostToDevice));
  d.StartPass();
  const uint32_t* mask = d.bank.As<uint32_t>() + int64_t(slot >> 3) * words_ * kBlockSlots + (slot & 7);
  for (int l = 0; l < layers; l++) {
    Product(batch, L[l].out, L[l].in, RowMajor{ping, L[l].in}, TernaryB{d.signs.As<uint32_t>(), mask, L[l].offset, L[l].out, L[l].scale},
            StoreEpi{pong, L[l].out, l + 1 < layers});
    std::swap(ping, pong);
  }
  d.StopPass();
  CK(cudaMemcpy(out, ping, size_t(batch) * L.back().out * 4, cudaMemcpyDeviceToHost));
  d.ReadPass();
}

double ResidentBank::LastPassSeconds() const { return d_->lastPassSeconds; }

double ResidentBank::ReadFloorSeconds(int repeats) {
  const int64_t bytes = residentBytes();
  if (bytes == 0) return 0;
  int device = 0, sms = 0;
  CK(cudaGetDevice(&device));
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  uint32_t* sink = d_->sink.Ensure<uint32_t>(4);
  const uint4* p = d_->bank.As<uint4>();
  const int64_t n = bytes / 16;  // words * 8 * 4 bytes per block is a multiple of 32
  cudaEvent_t start, stop;
  CK(cudaEventCreate(&start));
  CK(cudaEventCreate(&stop));
  std::vector<double> times;
  try {
    for (int r = 0; r < std::max(1, repeats) + 1; r++) {  // the first run warms up and is not kept
      CK(cudaEventRecord(start));
      ReadAll<<<unsigned(sms * 8), 256>>>(p, n, sink);
      CK_LAUNCH("ReadAll");
      CK(cudaEventRecord(stop));
      CK(cudaEventSynchronize(stop));
      float ms = 0;
      CK(cudaEventElapsedTime(&ms, start, stop));
      if (r > 0) times.push_back(ms / 1e3);
    }
  } catch (...) {
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    throw;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace supsup_cuda
