// Batched context lookups: a scalar loop, and an AVX2 kernel chosen at run time (built with
// a target attribute, so the rest of the library needs no special compiler flags).
#include "hiergen/context_lookup.hpp"

#include <algorithm>
#include <atomic>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define HIERGEN_AVX2_KERNELS 1
#include <immintrin.h>
#endif

namespace hiergen {
namespace {

template <bool Assign>
void merge_scalar(const ContextLookup& lookup, const std::uint32_t* cat,
                  const std::int32_t* code, std::uint32_t* best, std::size_t n,
                  std::size_t rows, std::size_t stride) noexcept {
  for (std::size_t g = 0; g < n; ++g) lookup.prefetch(static_cast<std::uint32_t>(code[g]));
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t g = 0; g < n; ++g) {
      const std::uint32_t found =
          lookup.raw(cat[r * stride + g], static_cast<std::uint32_t>(code[g]));
      std::uint32_t& b = best[r * stride + g];
      b = Assign || found < b ? found : b;
    }
}

#ifdef HIERGEN_AVX2_KERNELS
/// Up to this many columns (codes) are decoded at a time.
constexpr std::size_t kAvx2Blocks = 8;

template <bool Assign>
__attribute__((target("avx2"))) void merge_avx2(const ContextLookup& lookup,
                                                const std::uint32_t* cat,
                                                const std::int32_t* code, std::uint32_t* best,
                                                std::size_t n, std::size_t rows,
                                                std::size_t stride) noexcept {
  const auto* slots = reinterpret_cast<const int*>(lookup.slots());
  const auto* regions = reinterpret_cast<const int*>(lookup.regions());
  const __m256i mul_low =
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ContextLookup::kMulLow));
  const __m256i mul_high =
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ContextLookup::kMulHigh));
  const __m128i index_shift = _mm_cvtsi32_si128(static_cast<int>(lookup.index_bits()));
  const __m256i shift_mask =
      _mm256_set1_epi32(static_cast<int>((1u << ContextLookup::kShiftBits) - 1u));
  // Clamps: the padding columns may hold any category and code.
  const __m256i last_code = _mm256_set1_epi32(static_cast<int>(lookup.n_codes() - 1));
  const __m256i last_cat = _mm256_set1_epi32(static_cast<int>(lookup.n_categories() - 1));
  const std::size_t full = n & ~std::size_t{7};
  for (std::size_t g0 = 0; g0 < full; g0 += 8 * kAvx2Blocks) {
    const std::size_t nb = std::min(kAvx2Blocks, (full - g0) / 8);
    // First the regions of all the codes (first slot, multiplier, shift), eight at a time;
    // then row by row, the lookups of every block. The gathers of a row are independent, so
    // their cache misses overlap; block by block, each block's first gather waited on its
    // region. (Replaying the NHDS benchmark's calls: 2.4-2.8 TSC ticks per lookup against
    // 3.2-4.2 block by block.)
    __m256i off[kAvx2Blocks], shift[kAvx2Blocks], mul[kAvx2Blocks];
    for (std::size_t b = 0; b < nb; ++b) {
      const __m256i d = _mm256_min_epu32(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(code + g0 + 8 * b)), last_code);
      const __m256i region = _mm256_i32gather_epi32(regions, d, 4);
      off[b] = _mm256_srli_epi32(region, ContextLookup::kOffsetShift);
      shift[b] = _mm256_and_si256(region, shift_mask);
      // vpermd reads the low 3 index bits.
      mul[b] = _mm256_mullo_epi32(
          _mm256_permutevar8x32_epi32(mul_low, _mm256_srli_epi32(region, ContextLookup::kShiftBits)),
          _mm256_permutevar8x32_epi32(
              mul_high, _mm256_srli_epi32(region, ContextLookup::kShiftBits + 3)));
    }
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t b = 0; b < nb; ++b) {
        const std::size_t at = r * stride + g0 + 8 * b;
        const __m256i c = _mm256_min_epu32(
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(cat + at)), last_cat);
        const __m256i slot =
            _mm256_add_epi32(off[b], _mm256_srlv_epi32(_mm256_mullo_epi32(c, mul[b]), shift[b]));
        const __m256i x = _mm256_xor_si256(_mm256_i32gather_epi32(slots, slot, 4),
                                           _mm256_sll_epi32(c, index_shift));
        auto* bp = reinterpret_cast<__m256i*>(best + at);
        _mm256_storeu_si256(bp, Assign ? x : _mm256_min_epu32(_mm256_loadu_si256(bp), x));
      }
  }
  if (full < n)
    merge_scalar<Assign>(lookup, cat + full, code + full, best + full, n - full, rows, stride);
}

bool cpu_has_avx2() noexcept {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") != 0;
}
#else
bool cpu_has_avx2() noexcept { return false; }
#endif

const bool kCpuHasAvx2 = cpu_has_avx2();
std::atomic<bool> g_simd{kCpuHasAvx2};

}  // namespace

void merge_lookups(const ContextLookup& lookup, const std::uint32_t* cat,
                   const std::int32_t* code, std::uint32_t* best, std::size_t n,
                   std::size_t n_max, std::size_t rows, std::size_t stride,
                   bool assign) noexcept {
#ifdef HIERGEN_AVX2_KERNELS
  if (g_simd.load(std::memory_order_relaxed)) {
    const std::size_t padded = (n + 7) & ~std::size_t{7};
    const std::size_t cols = padded <= n_max ? padded : n;
    if (assign)
      merge_avx2<true>(lookup, cat, code, best, cols, rows, stride);
    else
      merge_avx2<false>(lookup, cat, code, best, cols, rows, stride);
    return;
  }
#endif
  if (assign)
    merge_scalar<true>(lookup, cat, code, best, n, rows, stride);
  else
    merge_scalar<false>(lookup, cat, code, best, n, rows, stride);
}

bool simd_enabled() noexcept { return g_simd.load(); }

bool set_simd_enabled(bool enabled) noexcept {
  g_simd.store(enabled && kCpuHasAvx2);
  return g_simd.load();
}

}  // namespace hiergen
