// Batched context lookups: a scalar loop, and an AVX2 kernel chosen at run time (built with
// a target attribute, so the rest of the library needs no special compiler flags).
#include "hiergen/context_lookup.hpp"

#include <atomic>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define HIERGEN_AVX2_KERNELS 1
#include <immintrin.h>
#endif

namespace hiergen {
namespace {

void merge_scalar(const ContextLookup& lookup, const std::uint32_t* key,
                  const std::int32_t* code, std::uint32_t* best, std::size_t n,
                  std::size_t rows, std::size_t stride) noexcept {
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t g = 0; g < n; ++g)
      lookup.prefetch(key[r * stride + g] + static_cast<std::uint32_t>(code[g]));
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t g = 0; g < n; ++g) {
      const std::uint32_t found =
          lookup.find(key[r * stride + g] + static_cast<std::uint32_t>(code[g]));
      std::uint32_t& b = best[r * stride + g];
      b = found < b ? found : b;
    }
}

#ifdef HIERGEN_AVX2_KERNELS
/// The table index in slot word `word` where the slot holds the key whose hash (way `way`)
/// is y, else `found`.
__attribute__((target("avx2"))) inline __m256i match_avx2(__m256i word, __m256i y, __m256i way,
                                                          __m256i fp_mask, __m128i index_shift,
                                                          __m256i index_mask, __m256i found) {
  const __m256i tag =
      _mm256_or_si256(way, _mm256_sll_epi32(_mm256_and_si256(y, fp_mask), index_shift));
  const __m256i index = _mm256_and_si256(word, index_mask);
  const __m256i same = _mm256_cmpeq_epi32(_mm256_andnot_si256(index_mask, word), tag);
  const __m256i empty = _mm256_cmpeq_epi32(index, index_mask);
  return _mm256_blendv_epi8(found, index, _mm256_andnot_si256(empty, same));
}

__attribute__((target("avx2"))) void merge_avx2(const ContextLookup& lookup,
                                                const std::uint32_t* key,
                                                const std::int32_t* code, std::uint32_t* best,
                                                std::size_t n, std::size_t rows,
                                                std::size_t stride) noexcept {
  const auto* slots = reinterpret_cast<const int*>(lookup.slots());
  const __m256i mul0 = _mm256_set1_epi32(static_cast<int>(lookup.multiplier(0)));
  const __m256i mul1 = _mm256_set1_epi32(static_cast<int>(lookup.multiplier(1)));
  const __m128i fp_shift = _mm_cvtsi32_si128(static_cast<int>(lookup.fp_bits()));
  const __m128i index_shift = _mm_cvtsi32_si128(static_cast<int>(lookup.index_bits()));
  const __m256i fp_mask = _mm256_set1_epi32(static_cast<int>((1u << lookup.fp_bits()) - 1u));
  const __m256i index_mask = _mm256_set1_epi32(static_cast<int>(lookup.index_mask()));
  const __m256i way1 = _mm256_set1_epi32(static_cast<int>(0x80000000u));
  const __m256i none = _mm256_set1_epi32(-1);
  std::size_t g = 0;
  for (; g + 8 <= n; g += 8) {
    const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(code + g));
    for (std::size_t r = 0; r < rows; ++r) {
      const std::size_t at = r * stride + g;
      const __m256i k =
          _mm256_add_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(key + at)), c);
      const __m256i y0 = _mm256_mullo_epi32(k, mul0), y1 = _mm256_mullo_epi32(k, mul1);
      const __m256i w0 = _mm256_i32gather_epi32(slots, _mm256_srl_epi32(y0, fp_shift), 4);
      const __m256i w1 = _mm256_i32gather_epi32(slots, _mm256_srl_epi32(y1, fp_shift), 4);
      const __m256i found = match_avx2(
          w1, y1, way1, fp_mask, index_shift, index_mask,
          match_avx2(w0, y0, _mm256_setzero_si256(), fp_mask, index_shift, index_mask, none));
      auto* b = reinterpret_cast<__m256i*>(best + at);
      _mm256_storeu_si256(b, _mm256_min_epu32(_mm256_loadu_si256(b), found));
    }
  }
  if (g < n) merge_scalar(lookup, key + g, code + g, best + g, n - g, rows, stride);
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

void merge_lookups(const ContextLookup& lookup, const std::uint32_t* key,
                   const std::int32_t* code, std::uint32_t* best, std::size_t n,
                   std::size_t n_max, std::size_t rows, std::size_t stride) noexcept {
#ifdef HIERGEN_AVX2_KERNELS
  if (g_simd.load(std::memory_order_relaxed)) {
    const std::size_t padded = (n + 7) & ~std::size_t{7};
    merge_avx2(lookup, key, code, best, padded <= n_max ? padded : n, rows, stride);
    return;
  }
#endif
  merge_scalar(lookup, key, code, best, n, rows, stride);
}

bool simd_enabled() noexcept { return g_simd.load(); }

bool set_simd_enabled(bool enabled) noexcept {
  g_simd.store(enabled && kCpuHasAvx2);
  return g_simd.load();
}

}  // namespace hiergen
