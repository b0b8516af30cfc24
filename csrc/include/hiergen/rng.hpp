// Counter-based random streams: the n-th number of a stream is a pure function of
// (key, n), so any element can be drawn independently of every other one. This is what
// makes the samplers' output identical for every thread count and chunk size.
//
// Number n of a stream is wyrand's output function (Wang Yi's public-domain wyhash family:
// one 64x64->128-bit multiply, folded) applied to the Weyl sequence key + (n + 1) * P0; wyrand
// is itself this counter construction, so it is counter-based by design. Keys and sub-stream
// keys are derived with the splitmix64 finaliser (Steele, Lea & Flood 2014).
// Random bits are mapped to indices and thresholds with integer arithmetic only, so the
// output is the same on every platform and standard library.
#pragma once

#include <cstdint>

namespace hiergen {

inline constexpr std::uint64_t kGoldenGamma = 0x9E3779B97F4A7C15ULL;

/// splitmix64 output function: a bijective 64-bit mixer.
constexpr std::uint64_t mix64(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

inline constexpr std::uint64_t kWyP0 = 0xa0761d6478bd642fULL;
inline constexpr std::uint64_t kWyP1 = 0xe7037ed1a0b428dbULL;

/// The inverse of an odd number modulo 2^64 (Newton's iteration; each step doubles the
/// correct low bits, from 3 at x = a).
constexpr std::uint64_t odd_inverse(std::uint64_t a) noexcept {
  std::uint64_t x = a;
  for (int i = 0; i < 5; ++i) x *= 2 - a * x;
  return x;
}
inline constexpr std::uint64_t kWyP0Inverse = odd_inverse(kWyP0);
static_assert(kWyP0 * kWyP0Inverse == 1, "kWyP0Inverse");

/// Multiply to 128 bits and fold the halves together (the "mum" of wyhash).
inline std::uint64_t mum_fold(std::uint64_t a, std::uint64_t b) noexcept {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  // One mul written out: GCC 12 sends the __int128 product through the stack in loops.
  std::uint64_t lo, hi;
  __asm__("mulq %[b]" : "=a"(lo), "=d"(hi) : "a"(a), [b] "rm"(b) : "cc");
  return lo ^ hi;
#elif defined(__SIZEOF_INT128__)
  __extension__ typedef unsigned __int128 u128;
  const u128 r = static_cast<u128>(a) * b;
  return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
#else
  // Portable 64x64 -> 128 (same result as the __int128 path).
  const std::uint64_t a_lo = a & 0xFFFFFFFFu, a_hi = a >> 32;
  const std::uint64_t b_lo = b & 0xFFFFFFFFu, b_hi = b >> 32;
  const std::uint64_t ll = a_lo * b_lo, lh = a_lo * b_hi, hl = a_hi * b_lo, hh = a_hi * b_hi;
  const std::uint64_t mid = (ll >> 32) + (lh & 0xFFFFFFFFu) + (hl & 0xFFFFFFFFu);
  const std::uint64_t lo = (mid << 32) | (ll & 0xFFFFFFFFu);
  const std::uint64_t hi = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
  return lo ^ hi;
#endif
}

/// A stream of 64-bit numbers addressed by counter.
struct CounterStream {
  std::uint64_t key;

  /// Stream for a user seed and a domain tag (different samplers use different tags so that
  /// equal seeds do not give correlated streams across methods).
  static constexpr CounterStream from_seed(std::uint64_t seed, std::uint64_t domain) noexcept {
    return CounterStream{mix64(mix64(seed ^ 0x6A09E667F3BCC909ULL) + domain * kGoldenGamma)};
  }

  /// Number `n` of the stream.
  std::uint64_t operator()(std::uint64_t n) const noexcept { return output(weyl(n)); }

  /// The Weyl-sequence state behind number `n`; number n + 1's state is this plus kWyP0, so
  /// a sequential loop can step it with one addition and call output().
  std::uint64_t weyl(std::uint64_t n) const noexcept { return key + (n + 1) * kWyP0; }
  static std::uint64_t output(std::uint64_t x) noexcept { return mum_fold(x, x ^ kWyP1); }
  /// The number n whose Weyl state is `state` (weyl's inverse).
  std::uint64_t counter(std::uint64_t state) const noexcept {
    return (state - key) * kWyP0Inverse - 1;
  }

  /// The splitmix64 variant of operator() (two multiplies; benchmark comparison only).
  constexpr std::uint64_t splitmix(std::uint64_t n) const noexcept {
    return mix64(key + (n + 1) * kGoldenGamma);
  }

  /// An independent sub-stream (e.g. one per visit), addressed by `n`.
  constexpr CounterStream substream(std::uint64_t n) const noexcept {
    return CounterStream{mix64(key ^ mix64(n + 0x243F6A8885A308D3ULL))};
  }
};

/// Map 32 random bits to [0, n) by multiply-shift (Lemire). Bias at most n / 2^32.
constexpr std::uint32_t bounded32(std::uint32_t bits, std::uint32_t n) noexcept {
  return static_cast<std::uint32_t>((static_cast<std::uint64_t>(bits) * n) >> 32);
}

/// A double uniform on [0, 1) from the top 53 bits.
constexpr double unit_double(std::uint64_t bits) noexcept {
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

/// xoshiro256++ (Blackman & Vigna), used only as the benchmark's sequential-RNG floor.
struct Xoshiro256pp {
  std::uint64_t s[4];
  explicit Xoshiro256pp(std::uint64_t seed) noexcept {
    for (int i = 0; i < 4; ++i) s[i] = mix64(seed + static_cast<std::uint64_t>(i + 1) * kGoldenGamma);
  }
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept {
    return (x << k) | (x >> (64 - k));
  }
  std::uint64_t operator()() noexcept {
    const std::uint64_t result = rotl(s[0] + s[3], 23) + s[0];
    const std::uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
  }
};

}  // namespace hiergen
