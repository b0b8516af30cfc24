// (category, context code) -> context table index, for context-aware Stage-2 sampling.
// Pure C++17, no Python headers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "hiergen/prefetch.hpp"

namespace hiergen {

/// (category, context code) -> context table index, for the tables keyed by
/// (category c, context code d).
///
/// The slots are grouped by context code, and each code's region is a perfect hash of its
/// categories: code d's keys sit at slot (c * multiplier(d)) >> shift(d) of its region, no
/// two in one slot. Construction tries a few dozen multipliers for the smallest power-of-two
/// size that has a collision-free one; a code with many tables (where that size would reach
/// n_categories) gets a direct region of n_categories slots (multiplier 1, shift 0: slot c).
/// A lookup is therefore one load, and a drawn code, looked up as the context of every later
/// draw of its visit, reads one small region. (A SIMD gather costs about the same per
/// element whether it hits L1 or L2 here, so one load per lookup is what counts.)
///
/// A slot is one 32-bit word c << index_bits | table index (an empty slot: all ones, and c
/// never has all its bits set). A lookup XORs the slot with c << index_bits: that leaves the
/// table index where the slot holds the key, and a value of index_limit() or more where it
/// does not (the category bits differ), so taking the minimum over several lookups needs no
/// branch and no select (raw()).
class ContextLookup {
 public:
  static constexpr std::uint32_t kNone = 0xFFFFFFFFu;

  /// A region word: first slot << kOffsetShift | multiplier choice << kShiftBits | shift.
  static constexpr std::uint32_t kShiftBits = 5, kChoiceBits = 6;
  static constexpr std::uint32_t kOffsetShift = kShiftBits + kChoiceBits;
  /// The multiplier of choice m is kMulLow[m & 7] * kMulHigh[m >> 3] (mod 2^32); choice 0 is 1.
  static constexpr std::uint32_t kMulLow[8] = {1u,          0x9E3779B1u, 0x85EBCA77u, 0xC2B2AE3Du,
                                               0x27D4EB2Fu, 0x165667B1u, 0xD3A2646Du, 0xFD7046C5u};
  static constexpr std::uint32_t kMulHigh[8] = {1u,          0xB55A4F09u, 0x8CB92BA7u, 0x4CF5AD43u,
                                                0x2545F491u, 0xA24BAED5u, 0xE7037ED1u, 0x5851F42Du};

  ContextLookup() = default;

  /// Table i has key (category[i], context[i]), distinct pairs; categories below
  /// n_categories, contexts below n_codes. Throws std::length_error when the table indexes
  /// do not fit beside the category bits, or the regions exceed 2^21 slots.
  ContextLookup(const std::vector<std::uint32_t>& category,
                const std::vector<std::uint32_t>& context, std::size_t n_categories,
                std::size_t n_codes)
      : n_categories_(static_cast<std::uint32_t>(n_categories)) {
    std::uint32_t cat_bits = 1;
    while ((std::uint64_t{1} << cat_bits) <= n_categories) ++cat_bits;  // c < all ones
    index_bits_ = 32u - cat_bits;
    if (category.size() > (std::uint64_t{1} << index_bits_))
      throw std::length_error("context tables: " + std::to_string(category.size()) +
                              " tables for " + std::to_string(n_categories) +
                              " categories; at most " +
                              std::to_string(std::uint64_t{1} << index_bits_) +
                              " fit; keep fewer (max_tables)");
    // The tables of each context code.
    std::vector<std::size_t> start(n_codes + 1, 0);
    for (const std::uint32_t d : context) ++start[d + 1];
    for (std::size_t d = 0; d < n_codes; ++d) start[d + 1] += start[d];
    std::vector<std::uint32_t> by_code(category.size());
    {
      std::vector<std::size_t> fill(start.begin(), start.end() - 1);
      for (std::size_t i = 0; i < category.size(); ++i)
        by_code[fill[context[i]]++] = static_cast<std::uint32_t>(i);
    }
    // Slot 0 stays empty: the region of every code without tables (one slot, shift 31).
    regions_.assign(n_codes, region_word(0, 0, 31));
    slots_.assign(1, kNone);
    std::vector<std::uint32_t> taken;  // taken[slot] == stamp: used in this try
    std::uint32_t stamp = 0;
    for (std::size_t d = 0; d < n_codes; ++d) {
      const std::uint32_t* tables = by_code.data() + start[d];
      const std::size_t n = start[d + 1] - start[d];
      if (n == 0) continue;
      // Whether hash (choice m, shift s) gives the n categories of d distinct slots.
      auto collision_free = [&](std::uint32_t m, std::uint32_t s) {
        ++stamp;
        for (std::size_t i = 0; i < n; ++i) {
          const std::uint32_t h = slot_of(category[tables[i]], m, s);
          if (taken[h] == stamp) return false;
          taken[h] = stamp;
        }
        return true;
      };
      std::uint32_t choice = 0, shift = 31;  // one table: a one-slot region
      std::size_t size = 1;
      if (n > 1) {
        bool found = false;
        std::uint32_t bits = 1;
        while ((std::size_t{1} << bits) < n) ++bits;
        for (; !found && (std::size_t{1} << bits) < n_categories; ++bits) {
          if (taken.size() < (std::size_t{1} << bits)) taken.resize(std::size_t{1} << bits, 0);
          for (std::uint32_t m = 0; m < (1u << kChoiceBits) && !found; ++m) {
            found = collision_free(m, 32u - bits);
            if (found) {
              choice = m;
              shift = 32u - bits;
              size = std::size_t{1} << bits;
            }
          }
        }
        if (!found) {  // a direct region: slot c
          choice = 0;
          shift = 0;
          size = n_categories;
        }
      }
      const std::size_t align = size < kLineSlots ? size : kLineSlots;
      const std::size_t off = (slots_.size() + align - 1) / align * align;
      if (off + size > (std::size_t{1} << (32 - kOffsetShift)))
        throw std::length_error(
            "context tables: the lookup needs more than 2^21 slots; keep fewer tables "
            "(max_tables)");
      slots_.resize(off + size, kNone);
      for (std::size_t i = 0; i < n; ++i) {
        const std::uint32_t c = category[tables[i]];
        slots_[off + slot_of(c, choice, shift)] = (c << index_bits_) | tables[i];
      }
      regions_[d] = region_word(static_cast<std::uint32_t>(off), choice, shift);
    }
  }

  /// The multiplier of choice m (see kMulLow).
  static constexpr std::uint32_t multiplier(std::uint32_t m) noexcept {
    return kMulLow[m & 7u] * kMulHigh[(m >> 3) & 7u];
  }

  /// Slot of category c in a region hashed with multiplier choice m and shift s (s = 31
  /// with m = 0: the region's one slot; s = 0 with m = 0: slot c).
  static std::uint32_t slot_of(std::uint32_t c, std::uint32_t m, std::uint32_t s) noexcept {
    return (c * multiplier(m)) >> s;
  }

  /// Table index of (c, d), or a value of index_limit() or more where there is none.
  /// c below n_categories, d below n_codes.
  std::uint32_t raw(std::uint32_t c, std::uint32_t d) const noexcept {
    const std::uint32_t region = regions_[d];
    const std::uint32_t slot =
        (region >> kOffsetShift) + slot_of(c, (region >> kShiftBits) & ((1u << kChoiceBits) - 1u),
                                           region & ((1u << kShiftBits) - 1u));
    return slots_[slot] ^ (c << index_bits_);
  }

  /// Whether raw() output x names a table.
  bool found(std::uint32_t x) const noexcept { return x < index_limit(); }
  std::uint32_t index_limit() const noexcept { return std::uint32_t{1} << index_bits_; }

  /// Ask for the start of d's region (a hint; raw() is correct without it).
  void prefetch(std::uint32_t d) const noexcept {
    prefetch_read(slots_.data() + (regions_[d] >> kOffsetShift));
  }

  std::size_t nbytes() const noexcept {
    return (slots_.size() + regions_.size()) * sizeof(std::uint32_t);
  }

  /// The raw layout, for SIMD kernels (see the class comment).
  const std::uint32_t* slots() const noexcept { return slots_.data(); }
  const std::uint32_t* regions() const noexcept { return regions_.data(); }
  std::size_t n_codes() const noexcept { return regions_.size(); }
  std::uint32_t n_categories() const noexcept { return n_categories_; }
  std::uint32_t index_bits() const noexcept { return index_bits_; }

 private:
  /// Regions of up to this many slots stay within one 64-byte line.
  static constexpr std::size_t kLineSlots = 16;

  static std::uint32_t region_word(std::uint32_t off, std::uint32_t choice,
                                   std::uint32_t shift) noexcept {
    return (off << kOffsetShift) | (choice << kShiftBits) | shift;
  }

  std::vector<std::uint32_t> slots_;
  std::vector<std::uint32_t> regions_;
  std::uint32_t n_categories_ = 0;
  std::uint32_t index_bits_ = 0;
};

/// For each row r in [0, rows) and g in [0, n), with C = cat + r * stride and
/// B = best + r * stride: B[g] = min(B[g], lookup.raw(C[g], code[g])), or with `assign`
/// B[g] = lookup.raw(C[g], code[g]) (the first codes looked up for these rows). The lookups
/// of n codes as contexts of `rows` later draws (of categories C), each kept where it finds
/// a better (lower) table; B[g] names a table where lookup.found(B[g]). An AVX2 kernel where
/// the CPU has it and simd_enabled(), else a scalar loop; the results are the same. Columns
/// n .. n_max - 1 (n_max <= stride) may be computed too, on whatever cat, code and best hold
/// there (the kernel clamps categories and codes into range): it then needs no scalar tail.
void merge_lookups(const ContextLookup& lookup, const std::uint32_t* cat,
                   const std::int32_t* code, std::uint32_t* best, std::size_t n,
                   std::size_t n_max, std::size_t rows, std::size_t stride,
                   bool assign) noexcept;

/// Whether the SIMD kernels are in use; set_simd_enabled(false) turns them off (tests, and
/// comparisons), set_simd_enabled(true) turns them back on where the CPU supports them.
/// Returns the new state.
bool simd_enabled() noexcept;
bool set_simd_enabled(bool enabled) noexcept;

}  // namespace hiergen
