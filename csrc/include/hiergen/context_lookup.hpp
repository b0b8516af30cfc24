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
/// slots, so a lookup reads both (two independent loads, prefetchable) and selects with
/// masks: no branch, whatever the key. Load at most 1/3, so construction rarely needs to
/// retry with another hash; the slot of a key does not affect results, only speed.
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
      multiplier_ = kMultipliers[attempt % kNumMultipliers] | 1u;
      if (build(keys, bits)) return;
    }
  }

  /// Index of the table with `key`, or kNone.
  std::uint32_t find(std::uint32_t key) const noexcept {
    const auto [h0, h1] = homes(key);
    const Slot s0 = slots_[h0], s1 = slots_[h1];
    const std::uint32_t hit0 = 0u - static_cast<std::uint32_t>(s0.key == key);
    const std::uint32_t hit1 = 0u - static_cast<std::uint32_t>(s1.key == key);
    return (s0.index & hit0) | (s1.index & hit1) | (kNone & ~(hit0 | hit1));
  }

  /// Ask for the cache lines of `key`'s two slots (a hint; find() is correct without it).
  void prefetch(std::uint32_t key) const noexcept {
    const auto [h0, h1] = homes(key);
    prefetch_read(slots_.data() + h0);
    prefetch_read(slots_.data() + h1);
  }

  std::size_t nbytes() const noexcept { return slots_.size() * sizeof(Slot); }

 private:
  struct Slot {
    std::uint32_t key;    ///< category * n_codes + code + 1; 0 when empty
    std::uint32_t index;  ///< the context table (lower is preferred within a category)
  };
  static constexpr int kNumMultipliers = 4;
  static constexpr std::uint64_t kMultipliers[kNumMultipliers] = {
      0x9E3779B97F4A7C15ull, 0xC2B2AE3D27D4EB4Full, 0x165667B19E3779F9ull,
      0xD6E8FEB86659FD93ull};

  /// The two slots of a key: the high and low halves of one 64-bit product.
  std::pair<std::uint32_t, std::uint32_t> homes(std::uint32_t key) const noexcept {
    const std::uint64_t x = static_cast<std::uint64_t>(key) * multiplier_;
    return {static_cast<std::uint32_t>(x >> 32) >> shift_,
            static_cast<std::uint32_t>(x) >> shift_};
  }

  /// Cuckoo insertion of every key into 2^bits slots; false when a key cannot be placed
  /// within a few evictions per bit of table size (then the caller retries another hash).
  bool build(const std::vector<std::uint32_t>& keys, std::uint32_t bits) {
    slots_.assign(std::size_t{1} << bits, Slot{0, kNone});
    const std::size_t max_kicks = 64 + 4 * std::size_t{bits};
    for (std::size_t i = 0; i < keys.size(); ++i) {
      Slot moving{keys[i], static_cast<std::uint32_t>(i)};
      std::uint32_t at = homes(moving.key).first;
      bool placed = false;
      for (std::size_t kick = 0; kick < max_kicks && !placed; ++kick) {
        const auto [h0, h1] = homes(moving.key);
        if (slots_[h0].key == 0) {
          slots_[h0] = moving;
          placed = true;
        } else if (slots_[h1].key == 0) {
          slots_[h1] = moving;
          placed = true;
        } else {
          // Evict the occupant of the slot we did not come from, and move it on.
          at = (at == h0) ? h1 : h0;
          std::swap(moving, slots_[at]);
        }
      }
      if (!placed) return false;
    }
    return true;
  }

  std::vector<Slot> slots_;
  std::uint64_t multiplier_ = 0;
  std::uint32_t shift_ = 32;
};

}  // namespace hiergen
