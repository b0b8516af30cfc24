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
                  const std::int32_t* code, std::uint32_t* best, std::size_t n) noexcept {
  for (std::size_t g = 0; g < n; ++g) lookup.prefetch(key[g] + static_cast<std::uint32_t>(code[g]));
  for (std::size_t g = 0; g < n; ++g) {
    const std::uint32_t found = lookup.find(key[g] + static_cast<std::uint32_t>(code[g]));
    best[g] = found < best[g] ? found : best[g];
  }
}

#ifdef HIERGEN_AVX2_KERNELS
__attribute__((target("avx2"))) void merge_avx2(const ContextLookup& lookup,
                                                const std::uint32_t* key,
                                                const std::int32_t* code, std::uint32_t* best,
                                                std::size_t n) noexcept {
  const auto* keys = reinterpret_cast<const int*>(lookup.keys());
  const auto* indexes = reinterpret_cast<const int*>(lookup.indexes());
  const __m256i mul0 = _mm256_set1_epi32(static_cast<int>(lookup.multiplier0()));
  const __m256i mul1 = _mm256_set1_epi32(static_cast<int>(lookup.multiplier1()));
  const __m128i shift = _mm_cvtsi32_si128(static_cast<int>(lookup.shift()));
  const __m256i none = _mm256_set1_epi32(-1);
  std::size_t g = 0;
  for (; g + 8 <= n; g += 8) {
    const __m256i k =
        _mm256_add_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(key + g)),
                         _mm256_loadu_si256(reinterpret_cast<const __m256i*>(code + g)));
    const __m256i h0 = _mm256_srl_epi32(_mm256_mullo_epi32(k, mul0), shift);
    const __m256i h1 = _mm256_srl_epi32(_mm256_mullo_epi32(k, mul1), shift);
    const __m256i hit0 = _mm256_cmpeq_epi32(_mm256_i32gather_epi32(keys, h0, 4), k);
    const __m256i hit1 = _mm256_cmpeq_epi32(_mm256_i32gather_epi32(keys, h1, 4), k);
    // One gather of the table indexes, from the slot that holds the key (where one does).
    const __m256i at = _mm256_blendv_epi8(h0, h1, hit1);
    const __m256i found =
        _mm256_mask_i32gather_epi32(none, indexes, at, _mm256_or_si256(hit0, hit1), 4);
    auto* b = reinterpret_cast<__m256i*>(best + g);
    _mm256_storeu_si256(b, _mm256_min_epu32(_mm256_loadu_si256(b), found));
  }
  merge_scalar(lookup, key + g, code + g, best + g, n - g);
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
                   const std::int32_t* code, std::uint32_t* best, std::size_t n) noexcept {
#ifdef HIERGEN_AVX2_KERNELS
  if (g_simd.load(std::memory_order_relaxed)) {
    merge_avx2(lookup, key, code, best, n);
    return;
  }
#endif
  merge_scalar(lookup, key, code, best, n);
}

bool simd_enabled() noexcept { return g_simd.load(); }

bool set_simd_enabled(bool enabled) noexcept {
  g_simd.store(enabled && kCpuHasAvx2);
  return g_simd.load();
}

}  // namespace hiergen
