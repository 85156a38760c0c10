// Native kernels for supsup: the mask kernels (contract: src/core/kernels/mask-kernels.ts, bank layout:
// src/core/mask-bank.ts) and training's per-weight updates (contract: src/core/score-update.ts).
//
//   scores(bank, words, blocks, v, examples, out)  bit-matrix × float-vectors
//   subsetCount(bank, words, slots, out)            per-weight count over a subset of slots
//   readFloor(buffer) -> checksum                   streams a buffer with the same threads: the memory-read floor
//   rmspropStep(S, V, G, W, lr, alpha, eps)         training: RMSProp on supermask scores
//   maskBySign(S, W, out)                           training: effective weights W * (S >= 0)
//   cpuPath() / setCpuPath('auto'|'avx512'|'avx2'|'scalar')  which code path runs (setCpuPath is for tests)
//   matmul                                          training's matrix products: native/train_gemm.cc (path: simdLevel)
//
// Built with generic flags; the AVX2 functions carry their own target attribute and are picked at run time
// with __builtin_cpu_supports. Of these kernels `scores` and `subsetCount` have an AVX-512 path (the rest
// were written on Zen 3 and run their AVX2 code on the avx512 path); the newer
// ones in their own files do, under their own switch (simd_level.cc): forwardBits (forward_bits.cc),
// scoresMulti / scoresOuter (scores_multi.cc), gatherSlots (gather_slots.cc).
//
// Threads: the caller plus one persistent helper thread (the target machines have 2 cores). Work is cut into
// tiles handed out by an atomic counter, so a helper that wakes late (or never, for tiny calls) costs nothing.

#include <napi.h>

#include "train_gemm.h"

#include <algorithm>
#include <cmath>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "kernel_common.h"
#include "lookup4_avx512.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define SUPSUP_X86 1
#include <immintrin.h>
#define AVX2_FN __attribute__((target("avx2,fma")))
#define SUPSUP_AVX512_FN __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")))
#else
#define SUPSUP_X86 0
#endif

namespace {

constexpr int kLanes = 8;  // BLOCK_SLOTS: slots per interleaved block

// ---------------------------------------------------------------------------------------------------------
// Helper thread. Run(fn) calls fn(0) on the caller and offers fn(1) to the helper. If the caller finishes
// before the helper has picked the job up, it withdraws the offer and returns at once (the atomic tile
// counters inside fn mean the caller has then done all the work).

class Pool {
 public:
  template <class F>
  void Run(F& fn) {
    std::unique_lock<std::mutex> busy(run_mutex_, std::try_to_lock);
    if (!busy.owns_lock() || !EnsureHelper()) {  // another thread (worker_threads) is using the helper
      fn(0);
      return;
    }
    job_ = [](void* ctx, int worker) { (*static_cast<F*>(ctx))(worker); };
    ctx_ = &fn;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      state_.store(kPosted, std::memory_order_release);
    }
    cv_.notify_one();
    fn(0);
    int expected = kPosted;
    if (!state_.compare_exchange_strong(expected, kIdle, std::memory_order_acq_rel)) {
      // The helper has at most one work item left; yield rather than spin if it was descheduled mid-item.
      for (unsigned spin = 0; state_.load(std::memory_order_acquire) != kDone; spin++) {
        if (spin < 4096) Relax(); else std::this_thread::yield();
      }
      state_.store(kIdle, std::memory_order_relaxed);
    }
  }

 private:
  enum { kIdle, kPosted, kTaken, kDone };

  static void Relax() {
#if SUPSUP_X86
    _mm_pause();
#else
    std::this_thread::yield();
#endif
  }

  bool EnsureHelper() {
    if (started_) return has_helper_;
    started_ = true;
    if (std::thread::hardware_concurrency() < 2) return has_helper_ = false;
    // Detached and never joined: the pool lives for the whole process (it is never deleted, so no static
    // destructor runs while the helper waits on it).
    std::thread([this] { Loop(); }).detach();
    return has_helper_ = true;
  }

  void Loop() {
    for (;;) {
      // Spin ~50 µs after each job (back-to-back calls find it awake), then sleep on the condition variable.
      const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
      for (unsigned spin = 0; state_.load(std::memory_order_acquire) != kPosted; spin++) {
        if (spin % 64 != 63 || std::chrono::steady_clock::now() < spin_until) {
          Relax();
        } else {
          std::unique_lock<std::mutex> lock(mutex_);
          cv_.wait(lock, [this] { return state_.load(std::memory_order_acquire) == kPosted; });
        }
      }
      int expected = kPosted;
      if (state_.compare_exchange_strong(expected, kTaken, std::memory_order_acq_rel)) {
        job_(ctx_, 1);
        state_.store(kDone, std::memory_order_release);
      }
    }
  }

  std::mutex run_mutex_, mutex_;
  std::condition_variable cv_;
  std::atomic<int> state_{kIdle};
  void (*job_)(void*, int) = nullptr;
  void* ctx_ = nullptr;
  bool started_ = false, has_helper_ = false;
};

Pool& ThePool() {
  static Pool* pool = new Pool();  // intentionally leaked, see EnsureHelper
  return *pool;
}

// Runs body(worker, tile) for every tile in [0, tiles), on 2 threads unless the work is small.
template <class Body>
void ForTiles(size_t tiles, bool small, Body body) {
  std::atomic<size_t> next{0};
  auto fn = [&](int worker) {
    for (size_t t; (t = next.fetch_add(1, std::memory_order_relaxed)) < tiles;) body(worker, t);
  };
  if (small || tiles < 2) fn(0); else ThePool().Run(fn);
}

// ---------------------------------------------------------------------------------------------------------
// scores
//
// AVX2 idea (tasks in SIMD lanes): one 256-bit load at (block b, word j) holds the same 32 weights for the
// block's 8 slots. Split the 32 bits into small groups; for each group a table of partial sums of v
// (entry n = Σ of the group's weights whose bit is set in n) turns "bits × floats" into one permute per
// group for all 8 slots at once. Zen 3 measurements picked the mix: bits 0..23 as eight 3-bit groups
// looked up with vpermps (8-entry table), bits 24..31 as four 2-bit groups with vpermilps (in-lane 4-entry
// table, duplicated in both halves); vpermps is the more expensive op there, so mixing balances the pipes.
// 12 groups × 8 floats = 96 floats of table per word. The weight dimension is tiled so the tables of a tile
// stay in L1 while all blocks stream through it (each block contributes one contiguous chunk per tile).

constexpr int kGroups3 = 8, kGroups2 = 4, kTableFloats = (kGroups3 + kGroups2) * 8;

// Tile width in words: 32 words of tables (12 KiB) for one vector, about a third of L1, so the bank lines
// streaming through L1 do not evict them (64 words, 24 KiB, measured ~5-10% slower on Zen 3's 32 KiB L1).
// With several vectors the tile shrinks so all their tables still fit in L1/L2 while one chunk of the bank
// is reused for every vector.
size_t TileWords(size_t examples) {
  size_t t = 32 / std::max<size_t>(examples, 1);
  return std::max<size_t>(16, t & ~size_t(7));
}

float* Align64(float* p) {
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t(63));
}

// Partial-sum tables for n words of one vector (portable; shared by both paths' table layout).
void BuildTables(const float* v, size_t n, float* t) {
  for (size_t jj = 0; jj < n; jj++, v += 32, t += kTableFloats) {
    for (int g = 0; g < kGroups3; g++) {
      const float a = v[3 * g], b = v[3 * g + 1], c = v[3 * g + 2];
      float* e = t + 8 * g;
      e[0] = 0; e[1] = a; e[2] = b; e[3] = a + b;
      e[4] = c; e[5] = a + c; e[6] = b + c; e[7] = (a + b) + c;
    }
    for (int g = 0; g < kGroups2; g++) {
      const float a = v[24 + 2 * g], b = v[25 + 2 * g];
      float* e = t + 8 * (kGroups3 + g);
      e[0] = e[4] = 0; e[1] = e[5] = a; e[2] = e[6] = b; e[3] = e[7] = a + b;
    }
  }
}

#if SUPSUP_X86
// BuildTables with AVX2: each table row is a sum of broadcast weights masked by which entries contain them
// (e.g. a 3-bit row = a·[0,1,0,1,0,1,0,1] + b·[0,0,1,1,0,0,1,1] + c·[0,0,0,0,1,1,1,1]). ~4x the scalar build,
// which matters when there are few blocks to share the tables.
AVX2_FN void BuildTablesAvx2(const float* v, size_t n, float* t) {
  const __m256 m0 = _mm256_castsi256_ps(_mm256_setr_epi32(0, -1, 0, -1, 0, -1, 0, -1));
  const __m256 m1 = _mm256_castsi256_ps(_mm256_setr_epi32(0, 0, -1, -1, 0, 0, -1, -1));
  const __m256 m2 = _mm256_castsi256_ps(_mm256_setr_epi32(0, 0, 0, 0, -1, -1, -1, -1));
  for (size_t jj = 0; jj < n; jj++, v += 32, t += kTableFloats) {
    for (int g = 0; g < kGroups3; g++) {
      const __m256 a = _mm256_and_ps(_mm256_broadcast_ss(v + 3 * g), m0);
      const __m256 b = _mm256_and_ps(_mm256_broadcast_ss(v + 3 * g + 1), m1);
      const __m256 c = _mm256_and_ps(_mm256_broadcast_ss(v + 3 * g + 2), m2);
      _mm256_store_ps(t + 8 * g, _mm256_add_ps(_mm256_add_ps(a, b), c));  // same (a+b)+c order as scalar
    }
    for (int g = 0; g < kGroups2; g++) {
      const __m256 a = _mm256_and_ps(_mm256_broadcast_ss(v + 24 + 2 * g), m0);
      const __m256 b = _mm256_and_ps(_mm256_broadcast_ss(v + 25 + 2 * g), m1);
      _mm256_store_ps(t + 8 * (kGroups3 + g), _mm256_add_ps(a, b));
    }
  }
}
#endif

// One block's contribution over one tile: acc[l] += Σ_jj table lookups of lane l's word. Portable version.
void TileScalar(const uint32_t* chunk, size_t n, const float* tables, float* acc) {
  for (int l = 0; l < kLanes; l++) {
    float sum = 0;
    const float* t = tables;
    for (size_t jj = 0; jj < n; jj++, t += kTableFloats) {
      const uint32_t x = chunk[jj * kLanes + l];
      float s = 0;
      for (int g = 0; g < kGroups3; g++) s += t[8 * g + ((x >> (3 * g)) & 7)];
      for (int g = 0; g < kGroups2; g++) s += t[8 * (kGroups3 + g) + ((x >> (24 + 2 * g)) & 3)];
      sum += s;
    }
    acc[l] += sum;
  }
}

#if SUPSUP_X86
// Loads a table row into a register. Left to itself the compiler folds the load into vpermps as a memory
// operand, and on Zen 3 that form issues at half the rate of the register form (measured: the whole kernel
// ran ~1.3x slower); the empty asm makes the value opaque, so the load stays a separate instruction.
AVX2_FN inline __m256 TableRow(const float* p) {
  __m256 row = _mm256_load_ps(p);
  __asm__("" : "+x"(row));
  return row;
}

// One tile of two blocks: acc0/acc1[l] += Σ_jj table lookups of lane l's word in chunk c0/c1. Each table
// row is loaded once and looked up for both blocks, which saves a load per lookup and gives the out-of-order
// core two independent streams and chains (A/B at k = 2500: median 2.51x against 2.73x the floor for one
// block at a time, faster in 5 of 6 alternating pairs). Three short chains per block. Prefetches the chunks
// next0/next1 (see Scores) at the rate these are consumed: one line per two words.
AVX2_FN void TilePairAvx2(const uint32_t* c0, const uint32_t* c1, const uint32_t* next0, const uint32_t* next1, size_t n,
                          const float* tables, float* acc0, float* acc1) {
  __m256 total0 = _mm256_setzero_ps(), total1 = _mm256_setzero_ps();
  for (size_t jj = 0; jj < n; jj++) {
    if (!(jj & 1)) {
      _mm_prefetch(reinterpret_cast<const char*>(next0 + jj * kLanes), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(next1 + jj * kLanes), _MM_HINT_T0);
    }
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c0 + jj * kLanes));
    const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c1 + jj * kLanes));
    const float* t = tables + jj * kTableFloats;
    // Chains a and b take the 3-bit groups alternately, chain c the 2-bit groups; one of each per block.
    __m256 row = TableRow(t);
    __m256 xa = _mm256_permutevar8x32_ps(row, x), ya = _mm256_permutevar8x32_ps(row, y);
    row = TableRow(t + 8);
    __m256 xb = _mm256_permutevar8x32_ps(row, _mm256_srli_epi32(x, 3)), yb = _mm256_permutevar8x32_ps(row, _mm256_srli_epi32(y, 3));
    row = TableRow(t + 64);
    __m256 xc = _mm256_permutevar_ps(row, _mm256_srli_epi32(x, 24)), yc = _mm256_permutevar_ps(row, _mm256_srli_epi32(y, 24));
#define SUPSUP_LOOKUP3(sum_x, sum_y, g)                                                               \
  row = TableRow(t + 8 * (g));                                                                       \
  sum_x = _mm256_add_ps(sum_x, _mm256_permutevar8x32_ps(row, _mm256_srli_epi32(x, 3 * (g))));        \
  sum_y = _mm256_add_ps(sum_y, _mm256_permutevar8x32_ps(row, _mm256_srli_epi32(y, 3 * (g))));
#define SUPSUP_LOOKUP2(g)                                                                             \
  row = TableRow(t + 8 * (kGroups3 + (g)));                                                          \
  xc = _mm256_add_ps(xc, _mm256_permutevar_ps(row, _mm256_srli_epi32(x, 24 + 2 * (g))));             \
  yc = _mm256_add_ps(yc, _mm256_permutevar_ps(row, _mm256_srli_epi32(y, 24 + 2 * (g))));
    SUPSUP_LOOKUP3(xa, ya, 2) SUPSUP_LOOKUP3(xb, yb, 3) SUPSUP_LOOKUP3(xa, ya, 4)
    SUPSUP_LOOKUP3(xb, yb, 5) SUPSUP_LOOKUP3(xa, ya, 6) SUPSUP_LOOKUP3(xb, yb, 7)
    SUPSUP_LOOKUP2(1) SUPSUP_LOOKUP2(2) SUPSUP_LOOKUP2(3)
#undef SUPSUP_LOOKUP3
#undef SUPSUP_LOOKUP2
    total0 = _mm256_add_ps(total0, _mm256_add_ps(_mm256_add_ps(xa, xb), xc));
    total1 = _mm256_add_ps(total1, _mm256_add_ps(_mm256_add_ps(ya, yb), yc));
  }
  _mm256_storeu_ps(acc0, _mm256_add_ps(_mm256_loadu_ps(acc0), total0));
  _mm256_storeu_ps(acc1, _mm256_add_ps(_mm256_loadu_ps(acc1), total1));
}

// AVX-512 (16 lanes = the 16 slots of two blocks): 4-bit groups, each a table of 16 partial sums in one
// register, looked up with one vpermps (which reads only the low 4 bits of each index, so a shift suffices).
// 8 lookups per word for 16 slots, where AVX2 needs 12 per 8 slots. Four blocks at a time (two registers of
// 16 slots) share each table row load; the 8 lookups of a word are summed as a tree so the only loop-carried
// chain is one add per word and register.
constexpr int kTable512Floats = supsup::kLookup4TableFloats;

SUPSUP_AVX512_FN void BuildTables512(const float* v, size_t n, float* t) {
  for (size_t jj = 0; jj < n; jj++, v += 32, t += kTable512Floats) supsup::Lookup4Tables(v, t);
}

// Slots of blocks c[0], c[1] in one register, c[2], c[3] in another: acc[q][l] += Σ_jj lookups of lane l's word
// in chunk c[q]. Prefetches the chunks next[q] one line per two words.
SUPSUP_AVX512_FN void TileQuad512(const uint32_t* const* c, const uint32_t* const* next, size_t n, const float* tables,
                                  float* const* acc) {
  __m512 total0 = _mm512_setzero_ps(), total1 = _mm512_setzero_ps();
  for (size_t jj = 0; jj < n; jj++) {
    if (!(jj & 1))
      for (int q = 0; q < 4; q++) _mm_prefetch(reinterpret_cast<const char*>(next[q] + jj * kLanes), _MM_HINT_T0);
    supsup::Lookup4Quad(c, jj * kLanes, tables + jj * kTable512Floats, total0, total1);
  }
  alignas(64) float s0[16], s1[16];
  _mm512_store_ps(s0, total0);
  _mm512_store_ps(s1, total1);
  for (int l = 0; l < kLanes; l++) {
    acc[0][l] += s0[l];
    acc[1][l] += s0[kLanes + l];
    acc[2][l] += s1[l];
    acc[3][l] += s1[kLanes + l];
  }
}
#endif

bool g_has_avx2 = false, g_has_avx512 = false;  // CPU supports it (set at load)
// Path in use (process-wide; worker threads share it). AVX-512 implies the AVX2 code for the kernels that
// have no AVX-512 form (only `scores` has one).
std::atomic<bool> g_use_avx2{false}, g_use_avx512{false};

void Scores(const uint32_t* bank, size_t words, size_t blocks, const float* v, size_t examples, float* out) {
  const size_t slots = blocks * kLanes, n_out = examples * slots;
  std::fill(out, out + n_out, 0.0f);
  if (blocks == 0 || examples == 0) return;
  const size_t tw = TileWords(examples), tiles = (words + tw - 1) / tw;
  // Tiles are handed out in up to 16 contiguous groups, each summed into its own buffer in tile order and
  // the buffers added in group order: the result does not depend on which thread ran what (same input, same
  // bits), and 16 groups still balance 2 threads when one starts late.
  const size_t groups = std::min<size_t>(tiles, 16), per_group = (tiles + groups - 1) / groups;
  std::vector<float> partial(groups * n_out, 0.0f);
  const bool avx512 = SUPSUP_X86 && g_use_avx512, avx2 = !avx512 && g_use_avx2;
  const size_t table_floats = avx512 ? kTable512Floats : kTableFloats;
  const size_t work = words * examples * (blocks + 4);  // ~ word-visits, tables counted as 4 blocks
  ForTiles(groups, work < 2048, [&](int, size_t group) {
    thread_local std::vector<float> table_store;
    table_store.resize(examples * tw * table_floats + 16);
    float* tables = Align64(table_store.data());  // 32-byte table loads must not straddle cache lines
    float* acc = &partial[group * n_out];
    for (size_t tile = group * per_group; tile < std::min(tiles, (group + 1) * per_group); tile++) {
      const size_t j0 = tile * tw, n = std::min(tw, words - j0);
      for (size_t e = 0; e < examples; e++) {
        const float* ve = v + (e * words + j0) * 32;
        float* te = tables + e * tw * table_floats;
#if SUPSUP_X86
        if (avx512) { BuildTables512(ve, n, te); continue; }
        if (avx2) { BuildTablesAvx2(ve, n, te); continue; }
#endif
        BuildTables(ve, n, te);
      }
      // AVX2 takes the blocks two at a time (TilePairAvx2; an odd last block is paired with itself and the
      // copy's sums dropped, so every block's sums come from the same code); the scalar path one at a time.
      for (size_t b = 0; b < blocks;) {
#if SUPSUP_X86
        if (avx512) {  // four blocks at a time; past the last block, block b stands in and its sums are dropped
          for (size_t e = 0; e < examples; e++) {
            const uint32_t* c[4];
            const uint32_t* next[4];
            float dropped[kLanes] = {};
            float* a[4];
            for (size_t q = 0; q < 4; q++) {
              const size_t bq = b + q < blocks ? b + q : b;
              c[q] = bank + (bq * words + j0) * kLanes;
              next[q] = b + q + 4 < blocks ? bank + ((b + q + 4) * words + j0) * kLanes : c[q];
              a[q] = b + q < blocks ? acc + e * slots + (b + q) * kLanes : dropped;
            }
            TileQuad512(c, next, n, tables + e * tw * table_floats, a);
          }
          b += 4;
          continue;
        }
#endif
        const size_t take = avx2 ? 2 : 1;
        const uint32_t* chunk = bank + (b * words + j0) * kLanes;
        // Software prefetch of the chunks 2 blocks ahead: each chunk is a short run the hardware prefetcher
        // only locks onto after its first misses (measured: ~10-25% faster at k = 2500).
        const auto ahead = [&](size_t block) { return block + 2 < blocks ? bank + ((block + 2) * words + j0) * kLanes : chunk; };
        for (size_t e = 0; e < examples; e++) {  // the chunks are reused from L1 for every vector
          const float* t = tables + e * tw * kTableFloats;
          float* a = acc + e * slots + b * kLanes;
#if SUPSUP_X86
          if (avx2) {
            const bool pair = b + 1 < blocks;
            float dropped[kLanes] = {};
            TilePairAvx2(chunk, pair ? chunk + words * kLanes : chunk, ahead(b), ahead(pair ? b + 1 : b), n, t, a,
                         pair ? a + kLanes : dropped);
            continue;
          }
#endif
          TileScalar(chunk, n, t, a);
        }
        b += take;
      }
    }
  });
  for (size_t g = 0; g < groups; g++)
    for (size_t i = 0; i < n_out; i++) out[i] += partial[g * n_out + i];
}

// ---------------------------------------------------------------------------------------------------------
// subsetCount: byte counters per weight, flushed into 32-bit counters every 255 slots. Slots are visited in
// sorted order so the 8 slots of a block reuse the same cache lines. Tiles of words split over the threads.
// A count function adds `nrows` (<= 255) slots' words [j0, j0 + n) into `wide`; rows[i] + j0 * 8 is slot
// i's word j0, and its next words follow at a stride of 8.

constexpr size_t kCountTile = 64;  // words per tile: 2 KiB of byte counters + 8 KiB of wide counters

void CountScalar(const uint32_t* const* rows, size_t nrows, size_t j0, size_t n, uint32_t* wide) {
  // SWAR: spread[byte] has byte i set to bit i of `byte`, so one 64-bit add counts 8 weights at once.
  static const auto spread = [] {
    std::vector<uint64_t> s(256);
    for (int x = 0; x < 256; x++)
      for (int i = 0; i < 8; i++) if (x >> i & 1) s[x] |= uint64_t(1) << (8 * i);
    return s;
  }();
  uint64_t c[kCountTile * 4] = {};
  for (size_t i = 0; i < nrows; i++) {
    const uint32_t* p = rows[i] + j0 * kLanes;
    for (size_t jj = 0; jj < n; jj++) {
      const uint32_t x = p[jj * kLanes];
      c[jj * 4] += spread[x & 255];
      c[jj * 4 + 1] += spread[(x >> 8) & 255];
      c[jj * 4 + 2] += spread[(x >> 16) & 255];
      c[jj * 4 + 3] += spread[x >> 24];
    }
  }
  for (size_t k = 0; k < n * 32; k++) wide[k] += uint32_t((c[k / 8] >> (8 * (k % 8))) & 255);
}

#if SUPSUP_X86
AVX2_FN void CountAvx2(const uint32_t* const* rows, size_t nrows, size_t j0, size_t n, uint32_t* wide) {
  // Byte i of the 32-byte counter row of a word counts bit i: broadcast the word, vpshufb byte i/8 into byte
  // i, test bit i%8 with a compare, and subtract the all-ones result (adds 1).
  const __m256i pick = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                        2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i bit = _mm256_set1_epi64x(0x8040201008040201LL);
  alignas(32) uint8_t c[kCountTile * 32] = {};
  for (size_t i = 0; i < nrows; i++) {
    const uint32_t* p = rows[i] + j0 * kLanes;
    for (size_t jj = 0; jj < n; jj++) {
      const __m256i x = _mm256_set1_epi32(int(p[jj * kLanes]));
      const __m256i hit = _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(x, pick), bit), bit);
      __m256i* row = reinterpret_cast<__m256i*>(c + jj * 32);
      _mm256_store_si256(row, _mm256_sub_epi8(_mm256_load_si256(row), hit));
    }
  }
  for (size_t k = 0; k < n * 32; k += 8) {
    const __m256i bytes = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c + k)));
    __m256i* w = reinterpret_cast<__m256i*>(wide + k);
    _mm256_storeu_si256(w, _mm256_add_epi32(_mm256_loadu_si256(w), bytes));
  }
}
#endif

// AVX-512: two words of a slot (64 weights) become a 64-bit mask, vpmovm2b turns it into 64 bytes of 0 / −1,
// and a byte subtract counts them: 3 vector ops per 64 weights, the byte counters of 8 words held in registers
// across all the rows (AVX2 above: 7 ops and a load and a store per 32 weights).
SUPSUP_AVX512_FN void CountAvx512(const uint32_t* const* rows, size_t nrows, size_t j0, size_t n, uint32_t* wide) {
  for (size_t jj = 0; jj < n; jj += 8) {
    const size_t m = std::min<size_t>(8, n - jj);
    __m512i c[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
    for (size_t i = 0; i < nrows; i++) {
      const uint32_t* p = rows[i] + (j0 + jj) * kLanes;
      uint64_t w[8];
      for (size_t q = 0; q < 8; q++) w[q] = q < m ? p[q * kLanes] : 0;
      for (int r = 0; r < 4; r++)
        c[r] = _mm512_sub_epi8(c[r], _mm512_movm_epi8(_cvtu64_mask64(w[2 * r] | w[2 * r + 1] << 32)));
    }
    alignas(64) uint8_t bytes[256];
    for (int r = 0; r < 4; r++) _mm512_store_si512(bytes + 64 * r, c[r]);
    for (size_t k = 0; k < m * 32; k++) wide[jj * 32 + k] += bytes[k];
  }
}

void SubsetCount(const uint32_t* bank, size_t words, const int32_t* slots_in, size_t nslots, float* out) {
  std::vector<int32_t> slots(slots_in, slots_in + nslots);
  std::sort(slots.begin(), slots.end());
  std::vector<const uint32_t*> rows(nslots);
  for (size_t i = 0; i < nslots; i++) {
    const size_t s = size_t(slots[i]);
    rows[i] = bank + (s / kLanes) * words * kLanes + s % kLanes;
  }
  const size_t tiles = (words + kCountTile - 1) / kCountTile;
  const bool avx2 = g_use_avx2, avx512 = g_use_avx512;
  ForTiles(tiles, words * (nslots + 4) < 2048, [&](int, size_t tile) {
    const size_t j0 = tile * kCountTile, n = std::min(kCountTile, words - j0);
    uint32_t wide[kCountTile * 32] = {};
    for (size_t done = 0; done < nslots; done += 255) {  // byte counters hold up to 255
      const size_t batch = std::min<size_t>(255, nslots - done);
#if SUPSUP_X86
      if (avx512) { CountAvx512(&rows[done], batch, j0, n, wide); continue; }
      if (avx2) { CountAvx2(&rows[done], batch, j0, n, wide); continue; }
#endif
      (void)avx2;
      (void)avx512;
      CountScalar(&rows[done], batch, j0, n, wide);
    }
    for (size_t k = 0; k < n * 32; k++) out[j0 * 32 + k] = float(wide[k]);
  });
}

// ---------------------------------------------------------------------------------------------------------
// readFloor: sums the buffer as 64-bit words on the same threads, in 1 MiB tiles: the time to read the bytes.

constexpr size_t kFloorTile = 1 << 20;

uint64_t SumScalar(const uint8_t* p, size_t n) {
  uint64_t a[4] = {0, 0, 0, 0}, w;
  size_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int k = 0; k < 4; k++) { std::memcpy(&w, p + i + 8 * k, 8); a[k] += w; }
  for (; i + 8 <= n; i += 8) { std::memcpy(&w, p + i, 8); a[0] += w; }
  for (; i < n; i++) a[0] += p[i];  // checksum = Σ little-endian 64-bit words + Σ trailing bytes
  return a[0] + a[1] + a[2] + a[3];
}

#if SUPSUP_X86
AVX2_FN uint64_t SumAvx2(const uint8_t* p, size_t n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    a0 = _mm256_add_epi64(a0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_add_epi64(a2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_add_epi64(a3, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  alignas(32) uint64_t t[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(t), _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)));
  return t[0] + t[1] + t[2] + t[3] + SumScalar(p + i, n - i);
}
#endif

uint64_t ReadFloor(const uint8_t* p, size_t n) {
  std::atomic<uint64_t> total{0};
  const bool avx2 = g_use_avx2;
  ForTiles((n + kFloorTile - 1) / kFloorTile, n < (1u << 16), [&](int, size_t tile) {
    const size_t off = tile * kFloorTile, len = std::min(kFloorTile, n - off);
#if SUPSUP_X86
    if (avx2) { total.fetch_add(SumAvx2(p + off, len), std::memory_order_relaxed); return; }
#endif
    (void)avx2;
    total.fetch_add(SumScalar(p + off, len), std::memory_order_relaxed);
  });
  return total.load();
}

// ---------------------------------------------------------------------------------------------------------
// Training updates, one thread (training runs one process per core). They must give the same bits as the
// TypeScript versions in src/core/score-update.ts, which compute in double and store float32: so the same
// operations in the same order, in double, rounded to float32 on store, and no fused multiply-add (the
// build passes -ffp-contract=off; the AVX2 path uses separate multiplies and adds).

void RmspropScalar(float* S, float* V, const float* G, const float* W, size_t n, double lr, double alpha, double eps) {
  const double beta = 1 - alpha;
  for (size_t i = 0; i < n; i++) {
    const double g = double(G[i]) * double(W[i]);
    const double v = alpha * double(V[i]) + beta * g * g;
    V[i] = float(v);
    S[i] = float(double(S[i]) - (lr * g) / (std::sqrt(v) + eps));
  }
}

void MaskBySignScalar(const float* S, const float* W, float* out, size_t n) {
  for (size_t i = 0; i < n; i++) out[i] = W[i] * (S[i] >= 0 ? 1.0f : 0.0f);  // a multiply, so masked W < 0 gives -0 as in JS
}

#if SUPSUP_X86
AVX2_FN void RmspropAvx2(float* S, float* V, const float* G, const float* W, size_t n, double lr, double alpha, double eps) {
  const __m256d a = _mm256_set1_pd(alpha), b = _mm256_set1_pd(1 - alpha), r = _mm256_set1_pd(lr), e = _mm256_set1_pd(eps);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m256d g = _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(G + i)), _mm256_cvtps_pd(_mm_loadu_ps(W + i)));
    const __m256d v = _mm256_add_pd(_mm256_mul_pd(a, _mm256_cvtps_pd(_mm_loadu_ps(V + i))), _mm256_mul_pd(_mm256_mul_pd(b, g), g));
    _mm_storeu_ps(V + i, _mm256_cvtpd_ps(v));
    const __m256d step = _mm256_div_pd(_mm256_mul_pd(r, g), _mm256_add_pd(_mm256_sqrt_pd(v), e));
    _mm_storeu_ps(S + i, _mm256_cvtpd_ps(_mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(S + i)), step)));
  }
  RmspropScalar(S + i, V + i, G + i, W + i, n - i, lr, alpha, eps);
}

AVX2_FN void MaskBySignAvx2(const float* S, const float* W, float* out, size_t n) {
  const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 keep = _mm256_and_ps(_mm256_cmp_ps(_mm256_loadu_ps(S + i), zero, _CMP_GE_OQ), one);
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(W + i), keep));
  }
  MaskBySignScalar(S + i, W + i, out + i, n - i);
}
#endif

// ---------------------------------------------------------------------------------------------------------
// N-API glue: validate shapes (the kernels trust them), then call straight into the typed arrays' memory.

bool Fail(const Napi::Env& env, const char* msg) {
  Napi::RangeError::New(env, msg).ThrowAsJavaScriptException();
  return false;
}

template <class T, napi_typedarray_type kType>
bool GetArray(const Napi::Env& env, const Napi::Value& value, const char* msg, T*& data, size_t& length) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != kType) {
    Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
    return false;
  }
  auto array = value.As<Napi::TypedArrayOf<T>>();
  data = array.Data();
  length = array.ElementLength();
  return true;
}

bool GetCount(const Napi::Env& env, const Napi::Value& value, const char* msg, size_t& out, bool positive) {
  const double d = value.IsNumber() ? value.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= (positive ? 1 : 0) && d <= 9007199254740991.0 && d == double(size_t(d))))
    return Fail(env, msg);
  out = size_t(d);
  return true;
}

Napi::Value JsScores(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t* bank; float* v; float* out;
  size_t bank_len, v_len, out_len, words, blocks, examples;
  if (!GetArray<uint32_t, napi_uint32_array>(env, info[0], "bank must be a Uint32Array", bank, bank_len) ||
      !GetCount(env, info[1], "words must be a positive integer", words, true) ||
      !GetCount(env, info[2], "blocks must be a non-negative integer", blocks, false) ||
      !GetArray<float, napi_float32_array>(env, info[3], "v must be a Float32Array", v, v_len) ||
      !GetCount(env, info[4], "examples must be a non-negative integer", examples, false) ||
      !GetArray<float, napi_float32_array>(env, info[5], "out must be a Float32Array", out, out_len))
    return env.Undefined();
  if (bank_len / words / kLanes < blocks) Fail(env, "bank is shorter than blocks * words * 8");
  else if (v_len / words / 32 < examples) Fail(env, "v is shorter than examples * words * 32");
  else if (blocks && out_len / blocks / kLanes < examples) Fail(env, "out is shorter than examples * blocks * 8");
  else Scores(bank, words, blocks, v, examples, out);
  return env.Undefined();
}

Napi::Value JsSubsetCount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t* bank; int32_t* slots; float* out;
  size_t bank_len, nslots, out_len, words;
  if (!GetArray<uint32_t, napi_uint32_array>(env, info[0], "bank must be a Uint32Array", bank, bank_len) ||
      !GetCount(env, info[1], "words must be a positive integer", words, true) ||
      !GetArray<int32_t, napi_int32_array>(env, info[2], "slots must be an Int32Array", slots, nslots) ||
      !GetArray<float, napi_float32_array>(env, info[3], "out must be a Float32Array", out, out_len))
    return env.Undefined();
  if (bank_len % (words * kLanes) != 0) Fail(env, "bank length is not a multiple of words * 8");
  else if (out_len / 32 < words) Fail(env, "out is shorter than words * 32");
  else if (std::any_of(slots, slots + nslots, [&](int32_t s) { return s < 0 || size_t(s) >= bank_len / words; }))
    Fail(env, "a slot is outside the bank");
  else SubsetCount(bank, words, slots, nslots, out);
  return env.Undefined();
}

Napi::Value JsReadFloor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint8_t* p = nullptr;
  size_t n = 0;
  if (info[0].IsTypedArray()) {
    // The view's own data pointer: a view of a SharedArrayBuffer (the mask bank) has no ArrayBuffer().Data().
    void* data = nullptr;
    napi_get_typedarray_info(env, info[0], nullptr, nullptr, &data, nullptr, nullptr);
    p = static_cast<const uint8_t*>(data);
    n = info[0].As<Napi::TypedArray>().ByteLength();
  } else if (info[0].IsArrayBuffer()) {
    auto a = info[0].As<Napi::ArrayBuffer>();
    p = static_cast<const uint8_t*>(a.Data());
    n = a.ByteLength();
  } else {
    Napi::TypeError::New(env, "readFloor takes a TypedArray or an ArrayBuffer").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, double(ReadFloor(p, n) & ((uint64_t(1) << 53) - 1)));
}

Napi::Value JsRmspropStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  float *S, *V, *G, *W;
  size_t ns, nv, ng, nw;
  if (!GetArray<float, napi_float32_array>(env, info[0], "S must be a Float32Array", S, ns) ||
      !GetArray<float, napi_float32_array>(env, info[1], "V must be a Float32Array", V, nv) ||
      !GetArray<float, napi_float32_array>(env, info[2], "G must be a Float32Array", G, ng) ||
      !GetArray<float, napi_float32_array>(env, info[3], "W must be a Float32Array", W, nw))
    return env.Undefined();
  if (nv != ns || ng != ns || nw != ns) Fail(env, "S, V, G and W must have the same length");
  else if (!info[4].IsNumber() || !info[5].IsNumber() || !info[6].IsNumber()) Fail(env, "lr, alpha and eps must be numbers");
  else {
    const double lr = info[4].As<Napi::Number>().DoubleValue(), alpha = info[5].As<Napi::Number>().DoubleValue(),
                 eps = info[6].As<Napi::Number>().DoubleValue();
#if SUPSUP_X86
    if (g_use_avx2) { RmspropAvx2(S, V, G, W, ns, lr, alpha, eps); return env.Undefined(); }
#endif
    RmspropScalar(S, V, G, W, ns, lr, alpha, eps);
  }
  return env.Undefined();
}

Napi::Value JsMaskBySign(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  float *S, *W, *out;
  size_t ns, nw, no;
  if (!GetArray<float, napi_float32_array>(env, info[0], "S must be a Float32Array", S, ns) ||
      !GetArray<float, napi_float32_array>(env, info[1], "W must be a Float32Array", W, nw) ||
      !GetArray<float, napi_float32_array>(env, info[2], "out must be a Float32Array", out, no))
    return env.Undefined();
  if (nw != ns || no != ns) Fail(env, "S, W and out must have the same length");
  else {
#if SUPSUP_X86
    if (g_use_avx2) { MaskBySignAvx2(S, W, out, ns); return env.Undefined(); }
#endif
    MaskBySignScalar(S, W, out, ns);
  }
  return env.Undefined();
}

const char* PathName() { return g_use_avx512 ? "avx512" : g_use_avx2 ? "avx2" : "scalar"; }

Napi::Value JsCpuPath(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), PathName()); }

Napi::Value JsSetCpuPath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string want = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  if (want == "auto") { g_use_avx2 = g_has_avx2; g_use_avx512 = g_has_avx512; }
  else if (want == "scalar") { g_use_avx2 = false; g_use_avx512 = false; }
  else if (want == "avx2" && g_has_avx2) { g_use_avx2 = true; g_use_avx512 = false; }
  else if (want == "avx512" && g_has_avx512) { g_use_avx2 = true; g_use_avx512 = true; }
  else Fail(env, want == "avx2" || want == "avx512" ? "this CPU has no such SIMD path" : "path must be 'auto', 'avx512', 'avx2' or 'scalar'");
  return Napi::String::New(env, PathName());
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  static std::once_flag detected;  // Init runs again in every worker thread that loads the addon
  std::call_once(detected, [] {
#if SUPSUP_X86
    __builtin_cpu_init();
    g_has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    g_has_avx512 = g_has_avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                   __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#endif
    g_use_avx2 = g_has_avx2;
    g_use_avx512 = g_has_avx512;
  });
  exports.Set("scores", Napi::Function::New(env, JsScores, "scores"));
  exports.Set("subsetCount", Napi::Function::New(env, JsSubsetCount, "subsetCount"));
  exports.Set("readFloor", Napi::Function::New(env, JsReadFloor, "readFloor"));
  exports.Set("rmspropStep", Napi::Function::New(env, JsRmspropStep, "rmspropStep"));
  exports.Set("maskBySign", Napi::Function::New(env, JsMaskBySign, "maskBySign"));
  exports.Set("cpuPath", Napi::Function::New(env, JsCpuPath, "cpuPath"));
  exports.Set("setCpuPath", Napi::Function::New(env, JsSetCpuPath, "setCpuPath"));
  supsup::RegisterSimdLevel(env, exports);
  supsup::RegisterForwardBits(env, exports);
  supsup::RegisterScoresMulti(env, exports);
  supsup::RegisterGatherSlots(env, exports);
  supsup::RegisterSuperposedPass(env, exports);
  supsup::RegisterScoresSparse(env, exports);
  supsup::RegisterColumnSums(env, exports);
  RegisterTrainGemm(env, exports);
  return exports;
}

}  // namespace

void supsup::ParallelFor(size_t tiles, bool small, const std::function<void(int, size_t)>& body) {
  ForTiles(tiles, small, body);
}

NODE_API_MODULE(supsup_kernels, Init)
