// (category, context code) -> context table index, for context-aware Stage-2 sampling.
// Pure C++17, no Python headers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <utility>
#include <vector>

#include "hiergen/prefetch.hpp"

namespace hiergen {

/// (category, context code) -> context table index: a cuckoo hash table over 32-bit keys
/// category * n_codes + code + 1 (0 marks an empty slot). Every key sits in one of its two
/// slots, so a lookup reads both (two independent loads) and selects with masks: no branch,
/// whatever the key. Keys and table indexes are kept in separate arrays, so that lookups that
/// find nothing (most of them) touch the keys only, and the two slots of a key come from two
/// 32-bit multiplicative hashes, so that a SIMD kernel can compute them eight at a time. Load
/// at most 1/3: construction rarely needs to retry with other multipliers; the slot of a key
/// does not affect results, only speed.
class ContextLookup {
 public:
  static constexpr std::uint32_t kNone = 0xFFFFFFFFu;

  ContextLookup() = default;

  /// Table i has key keys[i] (distinct, non-zero).
  explicit ContextLookup(const std::vector<std::uint32_t>& keys) {
    std::uint32_t bits = 4;
    while ((std::size_t{1} << bits) < 3 * keys.size()) ++bits;
    for (std::uint64_t attempt = 0;; ++attempt) {
      if (attempt > 0 && attempt % 8 == 0) ++bits;  // a crowded hash: more room
      if (bits > 31) throw std::length_error("context tables: too many to index");
      shift_ = 32u - bits;
      mul0_ = kMultipliers[attempt % kNumMultipliers];
      // Offsets 1..5 of the multiplier list: the two multipliers always differ.
      mul1_ = kMultipliers[(attempt + 1 + (attempt / kNumMultipliers) % (kNumMultipliers - 1)) %
                           kNumMultipliers];
      if (build(keys, bits)) return;
    }
  }

  /// Index of the table with `key`, or kNone.
  std::uint32_t find(std::uint32_t key) const noexcept {
    const std::uint32_t h0 = home(key, mul0_), h1 = home(key, mul1_);
    const std::uint32_t hit0 = 0u - static_cast<std::uint32_t>(keys_[h0] == key);
    const std::uint32_t hit1 = 0u - static_cast<std::uint32_t>(keys_[h1] == key);
    return (index_[h0] & hit0) | (index_[h1] & hit1) | (kNone & ~(hit0 | hit1));
  }

  /// Ask for the cache lines of `key`'s two key slots (a hint; find() is correct without it).
  void prefetch(std::uint32_t key) const noexcept {
    prefetch_read(keys_.data() + home(key, mul0_));
    prefetch_read(keys_.data() + home(key, mul1_));
  }

  std::size_t nbytes() const noexcept {
    return (keys_.size() + index_.size()) * sizeof(std::uint32_t);
  }

  /// The raw layout, for SIMD kernels: slot h of a key is (key * multiplier) >> shift.
  const std::uint32_t* keys() const noexcept { return keys_.data(); }
  const std::uint32_t* indexes() const noexcept { return index_.data(); }
  std::uint32_t multiplier0() const noexcept { return mul0_; }
  std::uint32_t multiplier1() const noexcept { return mul1_; }
  std::uint32_t shift() const noexcept { return shift_; }

 private:
  static constexpr int kNumMultipliers = 6;
  static constexpr std::uint32_t kMultipliers[kNumMultipliers] = {
      0x9E3779B1u, 0x85EBCA77u, 0xC2B2AE3Du, 0x27D4EB2Fu, 0x165667B1u, 0xD3A2646Du};

  std::uint32_t home(std::uint32_t key, std::uint32_t mul) const noexcept {
    return (key * mul) >> shift_;
  }

  /// Cuckoo insertion of every key into 2^bits slots; false when a key cannot be placed
  /// within a few evictions per bit of table size (then the caller retries other multipliers).
  bool build(const std::vector<std::uint32_t>& keys, std::uint32_t bits) {
    keys_.assign(std::size_t{1} << bits, 0);
    index_.assign(std::size_t{1} << bits, kNone);
    const std::size_t max_kicks = 64 + 4 * std::size_t{bits};
    for (std::size_t i = 0; i < keys.size(); ++i) {
      std::uint32_t key = keys[i], index = static_cast<std::uint32_t>(i);
      std::uint32_t at = home(key, mul0_);
      bool placed = false;
      for (std::size_t kick = 0; kick < max_kicks && !placed; ++kick) {
        const std::uint32_t h0 = home(key, mul0_), h1 = home(key, mul1_);
        if (keys_[h0] == 0) {
          at = h0;
          placed = true;
        } else if (keys_[h1] == 0) {
          at = h1;
          placed = true;
        } else {
          // Evict the occupant of the slot we did not come from, and move it on.
          at = (at == h0) ? h1 : h0;
          std::swap(key, keys_[at]);
          std::swap(index, index_[at]);
        }
      }
      if (!placed) return false;
      keys_[at] = key;
      index_[at] = index;
    }
    return true;
  }

  std::vector<std::uint32_t> keys_;
  std::vector<std::uint32_t> index_;
  std::uint32_t mul0_ = 0, mul1_ = 0;
  std::uint32_t shift_ = 32;
};

/// best[g] = min(best[g], lookup.find(key[g] + code[g])) for g in [0, n): the lookups of n
/// (category, code) pairs, each kept where it finds a better (lower) table. An AVX2 kernel
/// where the CPU has it and simd_enabled(), else a scalar loop; the results are the same.
void merge_lookups(const ContextLookup& lookup, const std::uint32_t* key,
                   const std::int32_t* code, std::uint32_t* best, std::size_t n) noexcept;

/// Whether the SIMD kernels are in use; set_simd_enabled(false) turns them off (tests, and
/// comparisons), set_simd_enabled(true) turns them back on where the CPU supports them.
/// Returns the new state.
bool simd_enabled() noexcept;
bool set_simd_enabled(bool enabled) noexcept;

}  // namespace hiergen
