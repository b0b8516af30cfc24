// Flat storage for many Vose alias tables over contiguous code ranges.
//
// A table covers the codes base .. base + size - 1. Its entry j holds a 32-bit acceptance
// threshold and an alias code: a draw picks j uniformly, then returns base + j when the
// next 32 random bits are below the threshold and the alias otherwise (a select, no branch).
// Entries whose acceptance probability is 1 alias themselves, so the threshold never needs
// the value 2^32; entries with weight zero have threshold 0 and alias a positive-weight code.
//
// The set is deliberately generic: tables are addressed by a table id, not by category, so
// a caller can key extra tables by anything (stratum x category today, (category, context
// code) for context-aware sampling later) and pick the table per draw.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "hiergen/rng.hpp"

namespace hiergen {

struct AliasEntry {
  std::uint32_t threshold;  ///< accept base + j when the random 32 bits are below this
  std::int32_t alias;       ///< code returned otherwise (a global code id)
};

struct TableRef {
  std::uint32_t start;       ///< first entry (and effective weight) of the table
  std::uint32_t size;        ///< number of codes, > 0
  std::int32_t base;         ///< global code id of entry 0
  std::uint32_t n_positive;  ///< codes with positive effective weight
};

/// What to do with a table whose weights are all zero.
enum class ZeroWeightPolicy { kError, kUniform };

/// Scratch space reused across table builds (so rebuilding allocates nothing).
struct AliasScratch {
  std::vector<double> scaled;
  std::vector<std::uint32_t> small, large;
};

/// Build one Vose alias table in place. `weights` must be finite and >= 0 with a positive sum
/// (checked by the caller). Writes `n` entries.
void build_alias_table(const double* weights, std::uint32_t n, std::int32_t base,
                       AliasEntry* out, AliasScratch& scratch);

class AliasTableSet {
 public:
  AliasTableSet() = default;

  void reserve(std::size_t n_tables, std::size_t n_entries);

  /// Append a table over codes base .. base + n - 1 with the given weights.
  /// Returns the table id, or -1 when every weight is zero and the policy is kError
  /// (nothing is appended then). Weights must already be validated (finite, >= 0).
  std::int64_t add_table(const double* weights, std::uint32_t n, std::int32_t base,
                         ZeroWeightPolicy policy);

  std::size_t n_tables() const noexcept { return tables_.size(); }
  std::size_t n_entries() const noexcept { return entries_.size(); }
  const TableRef* tables() const noexcept { return tables_.data(); }
  const AliasEntry* entries() const noexcept { return entries_.data(); }
  /// Effective weights (all-zero tables under kUniform hold ones), aligned with entries().
  const double* effective_weights() const noexcept { return weights_.data(); }

  /// One draw from table `t` given 64 random bits (high half: column, low half: accept test).
  static inline std::int32_t draw(const TableRef& t, const AliasEntry* entries,
                                  std::uint64_t bits) noexcept {
    const std::uint32_t j = bounded32(static_cast<std::uint32_t>(bits >> 32), t.size);
    return pick(entries[t.start + j], t.base + static_cast<std::int32_t>(j),
                static_cast<std::uint32_t>(bits));
  }

  /// One draw from a table over codes base .. base + size - 1 given 32 random bits u; `row`
  /// is the table's entries shifted so that code k has entry row[k]. The column is the
  /// integer part of u * size / 2^32 and the accept test uses its fractional part, which for
  /// a given column is uniform over points `size` apart in [0, 2^32): the acceptance
  /// probability is off by at most size / 2^32 (under 1e-7 for a few hundred codes).
  static inline std::int32_t draw32(const AliasEntry* row, std::int32_t base, std::uint32_t size,
                                    std::uint32_t u) noexcept {
    const std::uint64_t x = static_cast<std::uint64_t>(u) * size;
    const std::int32_t code = base + static_cast<std::int32_t>(x >> 32);
    return pick(row[code], code, static_cast<std::uint32_t>(x));
  }

 private:
  /// `self` (the code of entry e), or e's alias when `accept_bits` is not below its threshold,
  /// without a branch: a branch here mispredicts about half the time (several times the cost
  /// of the whole draw). On x86-64 with GCC or Clang it is one cmov written out, because GCC
  /// turns every portable form into a branch or five mask operations depending on the code
  /// around it (measured: the mask form cost 7% more instructions in the visit samplers and
  /// the branch form mispredicted in sample()'s pair loop).
  static inline std::int32_t pick(AliasEntry e, std::int32_t self,
                                  std::uint32_t accept_bits) noexcept {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    std::int32_t code = self;
    __asm__("cmpl %[thr], %[u]\n\tcmovael %[alias], %[code]"
            : [code] "+r"(code)
            : [u] "r"(accept_bits), [thr] "rm"(e.threshold), [alias] "rm"(e.alias)
            : "cc");
    return code;
#else
    const std::uint32_t keep = 0u - static_cast<std::uint32_t>(accept_bits < e.threshold);
    return static_cast<std::int32_t>((static_cast<std::uint32_t>(self) & keep) |
                                     (static_cast<std::uint32_t>(e.alias) & ~keep));
#endif
  }

  std::vector<TableRef> tables_;
  std::vector<AliasEntry> entries_;
  std::vector<double> weights_;
  AliasScratch scratch_;
};

}  // namespace hiergen
