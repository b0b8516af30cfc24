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
/// category * n_codes + code. Every key sits in one of its two slots, so a lookup reads
/// both (two independent loads) and selects with masks: no branch, whatever the key. The
/// slots of a key come from 32-bit multiplicative hashes y = key * multiplier (one per way):
/// the top bits of y pick the slot, and since multiplying by an odd number is a bijection, the
/// slot, the way and the remaining low bits of y identify the key exactly. A slot is therefore
/// one 32-bit word, [way : 1][low bits of y : 32 - bits][table index : bits - 1], and a
/// lookup reads nothing else; a SIMD kernel computes eight at a time. Load at most 1/3, so
/// construction rarely needs to retry with other multipliers; the slot of a key does not
/// affect results, only speed.
class ContextLookup {
 public:
  static constexpr std::uint32_t kNone = 0xFFFFFFFFu;

  ContextLookup() = default;

  /// Table i has key keys[i] (distinct).
  explicit ContextLookup(const std::vector<std::uint32_t>& keys) {
    std::uint32_t bits = 4;
    while ((std::size_t{1} << bits) < 3 * keys.size()) ++bits;
    for (std::uint64_t attempt = 0;; ++attempt) {
      if (attempt > 0 && attempt % 8 == 0) ++bits;  // a crowded hash: more room
      if (bits > 31) throw std::length_error("context tables: too many to index");
      set_layout(bits);
      mul_[0] = kMultipliers[attempt % kNumMultipliers];
      // Offsets 1..5 of the multiplier list: the two multipliers always differ.
      mul_[1] = kMultipliers[(attempt + 1 + (attempt / kNumMultipliers) % (kNumMultipliers - 1)) %
                             kNumMultipliers];
      if (build(keys, bits)) return;
    }
  }

  /// Index of the table with `key`, or kNone.
  std::uint32_t find(std::uint32_t key) const noexcept {
    std::uint32_t found = kNone;
    for (std::uint32_t w = 0; w < 2; ++w) {
      const std::uint32_t y = key * mul_[w];
      const std::uint32_t word = slots_[y >> fp_bits_];
      const std::uint32_t hit =
          0u - static_cast<std::uint32_t>(((word & ~index_mask_) == tag(w, y)) &
                                          ((word & index_mask_) != index_mask_));
      found = ((word & index_mask_) & hit) | (found & ~hit);
    }
    return found;
  }

  /// Ask for the cache lines of `key`'s two slots (a hint; find() is correct without it).
  void prefetch(std::uint32_t key) const noexcept {
    prefetch_read(slots_.data() + ((key * mul_[0]) >> fp_bits_));
    prefetch_read(slots_.data() + ((key * mul_[1]) >> fp_bits_));
  }

  std::size_t nbytes() const noexcept { return slots_.size() * sizeof(std::uint32_t); }

  /// The raw layout, for SIMD kernels (see the class comment).
  const std::uint32_t* slots() const noexcept { return slots_.data(); }
  std::uint32_t multiplier(int way) const noexcept { return mul_[way]; }
  std::uint32_t fp_bits() const noexcept { return fp_bits_; }       ///< 32 - bits
  std::uint32_t index_bits() const noexcept { return index_bits_; } ///< bits - 1
  std::uint32_t index_mask() const noexcept { return index_mask_; } ///< also the empty mark

 private:
  static constexpr int kNumMultipliers = 6;
  static constexpr std::uint32_t kMultipliers[kNumMultipliers] = {
      0x9E3779B1u, 0x85EBCA77u, 0xC2B2AE3Du, 0x27D4EB2Fu, 0x165667B1u, 0xD3A2646Du};

  void set_layout(std::uint32_t bits) noexcept {
    fp_bits_ = 32u - bits;
    index_bits_ = bits - 1u;
    index_mask_ = (1u << index_bits_) - 1u;
  }

  /// The way and hash bits a slot holding the key with hash y (way w) carries.
  std::uint32_t tag(std::uint32_t w, std::uint32_t y) const noexcept {
    return (w << 31) | ((y & ((1u << fp_bits_) - 1u)) << index_bits_);
  }

  /// Cuckoo insertion of every key into 2^bits slots; false when a key cannot be placed
  /// within a few evictions per bit of table size (then the caller retries other multipliers).
  bool build(const std::vector<std::uint32_t>& keys, std::uint32_t bits) {
    const std::size_t n_slots = std::size_t{1} << bits;
    // Table indexes up to index_mask_ - 1 fit (index_mask_ marks an empty slot); with a load
    // of at most 1/3 they always do.
    if (keys.size() >= index_mask_) return false;
    std::vector<std::uint32_t> key_at(n_slots, 0), index_at(n_slots, kNone);
    const std::size_t max_kicks = 64 + 4 * std::size_t{bits};
    auto home = [&](std::uint32_t key, std::uint32_t w) { return (key * mul_[w]) >> fp_bits_; };
    for (std::size_t i = 0; i < keys.size(); ++i) {
      std::uint32_t key = keys[i], index = static_cast<std::uint32_t>(i);
      std::uint32_t at = home(key, 0);
      bool placed = false;
      for (std::size_t kick = 0; kick < max_kicks && !placed; ++kick) {
        const std::uint32_t h0 = home(key, 0), h1 = home(key, 1);
        if (index_at[h0] == kNone) {
          at = h0;
          placed = true;
        } else if (index_at[h1] == kNone) {
          at = h1;
          placed = true;
        } else {
          // Evict the occupant of the slot we did not come from, and move it on.
          at = (at == h0) ? h1 : h0;
          std::swap(key, key_at[at]);
          std::swap(index, index_at[at]);
        }
      }
      if (!placed) return false;
      key_at[at] = key;
      index_at[at] = index;
    }
    slots_.assign(n_slots, index_mask_);
    for (std::size_t h = 0; h < n_slots; ++h) {
      if (index_at[h] == kNone) continue;
      const std::uint32_t w = home(key_at[h], 0) == h ? 0u : 1u;
      slots_[h] = tag(w, key_at[h] * mul_[w]) | index_at[h];
    }
    return true;
  }

  std::vector<std::uint32_t> slots_;
  std::uint32_t mul_[2] = {0, 0};
  std::uint32_t fp_bits_ = 28, index_bits_ = 3, index_mask_ = 7;
};

/// For each row r in [0, rows) and g in [0, n), with K = key + r * stride and
/// B = best + r * stride: B[g] = min(B[g], lookup.find(K[g] + code[g])). The lookups of
/// n codes as contexts of `rows` later draws, each kept where it finds a better (lower)
/// table. An AVX2 kernel where the CPU has it and simd_enabled(), else a scalar loop; the
/// results are the same. Columns n .. n_max - 1 (n_max <= stride) may be computed too, on
/// whatever key, code and best hold there: the kernel then needs no scalar tail.
void merge_lookups(const ContextLookup& lookup, const std::uint32_t* key,
                   const std::int32_t* code, std::uint32_t* best, std::size_t n,
                   std::size_t n_max, std::size_t rows, std::size_t stride) noexcept;

/// Whether the SIMD kernels are in use; set_simd_enabled(false) turns them off (tests, and
/// comparisons), set_simd_enabled(true) turns them back on where the CPU supports them.
/// Returns the new state.
bool simd_enabled() noexcept;
bool set_simd_enabled(bool enabled) noexcept;

}  // namespace hiergen
