// The Stage-2 sampler: an immutable index of categories (contiguous code ranges, CSR
// offsets) with one alias table per (stratum, category).
//
// Determinism: element i of sample() uses number i of a counter stream keyed by the seed;
// visit v of sample_visits() uses its own sub-stream keyed by (seed, v). Output therefore
// depends only on the inputs and the seed, never on threads or chunking.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "hiergen/alias_table.hpp"
#include "hiergen/parallel.hpp"
#include "hiergen/rng.hpp"

namespace hiergen {

/// Per-element (sample) or per-visit (sample_visits) strata: a constant or an int array.
struct StrataView {
  enum class Kind { kConstant, kInt32, kInt64 };
  Kind kind = Kind::kConstant;
  const void* data = nullptr;
  std::int64_t value = 0;  ///< the stratum when kind == kConstant

  static StrataView constant(std::int64_t s) { return {Kind::kConstant, nullptr, s}; }
  static StrataView of(const std::int32_t* p) { return {Kind::kInt32, p, 0}; }
  static StrataView of(const std::int64_t* p) { return {Kind::kInt64, p, 0}; }
};

/// What sample_visits does when a category repeats in a visit more often than it has codes
/// with positive weight.
enum class ExhaustedPolicy {
  kRepeat,  ///< after every positive-weight code was drawn once, draw with replacement
  kError,   ///< raise std::invalid_argument naming the visit and the category
};

class CategoryIndex {
 public:
  /// `offsets`: n_categories + 1 entries, 0 = offsets[0] < offsets[1] < ... = n_codes.
  /// `weights`: n_strata x n_codes, row-major, finite and >= 0.
  /// Throws std::invalid_argument naming the argument and the problem.
  CategoryIndex(std::vector<std::int64_t> offsets, const double* weights, std::size_t n_strata,
                std::size_t n_codes, ZeroWeightPolicy policy);

  /// A new index over the same categories with new weight tables (n_strata may differ).
  CategoryIndex with_weights(const double* weights, std::size_t n_strata,
                             std::size_t n_codes) const;

  std::size_t n_categories() const noexcept { return offsets_.size() - 1; }
  std::size_t n_codes() const noexcept { return n_codes_; }
  std::size_t n_strata() const noexcept { return n_strata_; }
  ZeroWeightPolicy zero_weight_policy() const noexcept { return policy_; }
  const std::vector<std::int64_t>& offsets() const noexcept { return offsets_; }
  /// The weights as given (n_strata x n_codes).
  const std::vector<double>& weights() const noexcept { return weights_; }
  const AliasTableSet& tables() const noexcept { return tables_; }
  /// Table id of (stratum, category).
  std::size_t table_id(std::size_t stratum, std::size_t category) const noexcept {
    return stratum * n_categories() + category;
  }

  /// Draw one code per category id; out[i] is a code of category cats[i].
  /// threads == 0 picks a default (single-threaded for small inputs).
  template <class Cat>
  void sample(const Cat* cats, std::size_t n, StrataView strata, std::uint64_t seed,
              std::int32_t* out, unsigned threads) const;

  /// Draw codes visit by visit (visit v holds elements visit_offsets[v] .. [v + 1]); a
  /// category repeated k times in a visit yields k distinct codes when it has at least k
  /// codes with positive weight. Strata are per visit.
  template <class Cat>
  void sample_visits(const Cat* cats, std::size_t n, const std::int64_t* visit_offsets,
                     std::size_t n_visits, StrataView strata, std::uint64_t seed,
                     std::int32_t* out, unsigned threads, ExhaustedPolicy exhausted) const {
    sample_visits_with(cats, n, visit_offsets, n_visits, strata, seed, out, threads, exhausted,
                       [this](std::size_t stratum, std::size_t category, const std::int32_t*,
                              std::size_t) -> const TableRef& {
                         return tables_.tables()[table_id(stratum, category)];
                       });
  }

  /// sample_visits with a caller-chosen table per draw: `choose(stratum, category, drawn,
  /// n_drawn)` returns the TableRef (of this index's tables() or of another AliasTableSet whose
  /// entries are passed as `entries`/`effective`) to draw the next code of `category` from,
  /// given the n_drawn codes already drawn in the visit. The table must cover the category's
  /// codes. This is the hook for context-aware tables.
  template <class Cat, class Chooser>
  void sample_visits_with(const Cat* cats, std::size_t n, const std::int64_t* visit_offsets,
                          std::size_t n_visits, StrataView strata, std::uint64_t seed,
                          std::int32_t* out, unsigned threads, ExhaustedPolicy exhausted,
                          Chooser&& choose, const AliasEntry* entries = nullptr,
                          const double* effective = nullptr) const;

  /// Chunk sizes (elements for sample, visits for sample_visits) and the input size under
  /// which the default thread count is 1. Output does not depend on them.
  static constexpr std::size_t kSampleChunk = 1u << 14;
  static constexpr std::size_t kVisitChunk = 1u << 10;
  static constexpr std::size_t kParallelMin = 1u << 16;
  /// Rejected redraws of an already-drawn code before switching to an exact draw.
  static constexpr int kMaxRejections = 8;

  /// Stream domains (so sample and sample_visits with one seed are unrelated).
  static constexpr std::uint64_t kSampleDomain = 1;
  static constexpr std::uint64_t kVisitDomain = 2;

 private:
  CategoryIndex() = default;
  void build(const double* weights, std::size_t n_strata, std::size_t n_codes);
  unsigned thread_count(unsigned requested, std::size_t n, std::size_t n_chunks) const;
  [[noreturn]] void throw_bad_category(std::size_t i, std::int64_t c) const;
  [[noreturn]] void throw_bad_stratum(const char* where, std::size_t i, std::int64_t s) const;

  template <class Cat, class StratumAt>
  std::size_t sample_range(const Cat* cats, std::size_t begin, std::size_t end,
                           StratumAt stratum_at, CounterStream rng,
                           std::int32_t* out) const noexcept;

  std::vector<std::int64_t> offsets_;
  std::vector<double> weights_;
  std::size_t n_codes_ = 0;
  std::size_t n_strata_ = 0;
  ZeroWeightPolicy policy_ = ZeroWeightPolicy::kError;
  AliasTableSet tables_;
};

/// Raise std::invalid_argument with a message.
[[noreturn]] void fail(const std::string& message);

// ---------------------------------------------------------------------------------------
// Template implementations

inline std::int64_t stratum_value(const StrataView& s, std::size_t i) noexcept {
  switch (s.kind) {
    case StrataView::Kind::kInt32:
      return static_cast<const std::int32_t*>(s.data)[i];
    case StrataView::Kind::kInt64:
      return static_cast<const std::int64_t*>(s.data)[i];
    default:
      return s.value;
  }
}

template <class Cat, class StratumAt>
std::size_t CategoryIndex::sample_range(const Cat* cats, std::size_t begin, std::size_t end,
                                        StratumAt stratum_at, CounterStream rng,
                                        std::int32_t* out) const noexcept {
  const TableRef* tabs = tables_.tables();
  const AliasEntry* entries = tables_.entries();
  const std::uint64_t n_cat = n_categories();
  const std::uint64_t n_str = n_strata_;
  for (std::size_t i = begin; i < end; ++i) {
    // Negative ids wrap to huge unsigned values, so one comparison checks both bounds.
    const auto c = static_cast<std::uint64_t>(static_cast<std::int64_t>(cats[i]));
    const auto s = static_cast<std::uint64_t>(stratum_at(i));
    if (c >= n_cat || s >= n_str) [[unlikely]]
      return i;
    out[i] = AliasTableSet::draw(tabs[s * n_cat + c], entries, rng(i));
  }
  return std::numeric_limits<std::size_t>::max();
}

template <class Cat>
void CategoryIndex::sample(const Cat* cats, std::size_t n, StrataView strata,
                           std::uint64_t seed, std::int32_t* out, unsigned threads) const {
  if (n == 0) return;
  if (strata.kind == StrataView::Kind::kConstant &&
      (strata.value < 0 || static_cast<std::uint64_t>(strata.value) >= n_strata_))
    throw_bad_stratum("strata", std::numeric_limits<std::size_t>::max(), strata.value);
  const CounterStream rng = CounterStream::from_seed(seed, kSampleDomain);
  ChunkQueue queue(n, kSampleChunk);
  std::atomic<std::size_t> first_bad{std::numeric_limits<std::size_t>::max()};

  auto run = [&](auto stratum_at) {
    run_threads(thread_count(threads, n, queue.n_chunks()), [&](unsigned) {
      std::size_t b, e;
      while (queue.pop(b, e)) {
        const std::size_t bad = sample_range(cats, b, e, stratum_at, rng, out);
        if (bad != std::numeric_limits<std::size_t>::max()) {
          std::size_t cur = first_bad.load();
          while (bad < cur && !first_bad.compare_exchange_weak(cur, bad)) {
          }
          queue.stop();
          return;
        }
      }
    });
  };
  switch (strata.kind) {
    case StrataView::Kind::kInt32: {
      const auto* p = static_cast<const std::int32_t*>(strata.data);
      run([p](std::size_t i) { return static_cast<std::int64_t>(p[i]); });
      break;
    }
    case StrataView::Kind::kInt64: {
      const auto* p = static_cast<const std::int64_t*>(strata.data);
      run([p](std::size_t i) { return p[i]; });
      break;
    }
    default: {
      const std::int64_t v = strata.value;
      run([v](std::size_t) { return v; });
    }
  }
  const std::size_t bad = first_bad.load();
  if (bad != std::numeric_limits<std::size_t>::max()) {
    const auto c = static_cast<std::int64_t>(cats[bad]);
    if (c < 0 || static_cast<std::uint64_t>(c) >= n_categories()) throw_bad_category(bad, c);
    throw_bad_stratum("strata", bad, stratum_value(strata, bad));
  }
}

template <class Cat, class Chooser>
void CategoryIndex::sample_visits_with(const Cat* cats, std::size_t n,
                                       const std::int64_t* visit_offsets, std::size_t n_visits,
                                       StrataView strata, std::uint64_t seed, std::int32_t* out,
                                       unsigned threads, ExhaustedPolicy exhausted,
                                       Chooser&& choose, const AliasEntry* entries,
                                       const double* effective) const {
  if (visit_offsets[0] != 0)
    fail("visit_offsets: must start at 0, got visit_offsets[0] = " +
         std::to_string(visit_offsets[0]));
  for (std::size_t v = 0; v < n_visits; ++v) {
    if (visit_offsets[v + 1] < visit_offsets[v])
      fail("visit_offsets: not monotonic, visit_offsets[" + std::to_string(v) +
           "] = " + std::to_string(visit_offsets[v]) + " > visit_offsets[" +
           std::to_string(v + 1) + "] = " + std::to_string(visit_offsets[v + 1]));
  }
  if (static_cast<std::uint64_t>(visit_offsets[n_visits]) != n)
    fail("visit_offsets: last entry " + std::to_string(visit_offsets[n_visits]) +
         " does not match the length of categories (" + std::to_string(n) + ")");
  if (n_visits == 0 || n == 0) return;
  if (strata.kind == StrataView::Kind::kConstant &&
      (strata.value < 0 || static_cast<std::uint64_t>(strata.value) >= n_strata_))
    throw_bad_stratum("strata", std::numeric_limits<std::size_t>::max(), strata.value);

  const CounterStream rng = CounterStream::from_seed(seed, kVisitDomain);
  const TableRef* tabs = tables_.tables();
  if (entries == nullptr) entries = tables_.entries();
  const double* eff = effective != nullptr ? effective : tables_.effective_weights();
  const std::uint64_t n_cat = n_categories();
  const std::uint64_t n_str = n_strata_;

  // Errors: kind 1 = category out of range (element), 2 = stratum out of range (visit),
  // 3 = category exhausted (element). The first visit with an error wins.
  struct Error {
    std::size_t visit = std::numeric_limits<std::size_t>::max();
    std::size_t element = 0;
    int kind = 0;
  };
  ChunkQueue queue(n_visits, kVisitChunk);
  const unsigned n_threads = thread_count(threads, n, queue.n_chunks());
  std::vector<Error> errors(n_threads);

  run_threads(n_threads, [&](unsigned tid) {
    // mark[code] == stamp: the code was already drawn in the current visit.
    std::vector<std::uint32_t> mark(n_codes_, 0);
    std::uint32_t stamp = 0;
    Error& err = errors[tid];
    std::size_t vb, ve;
    while (queue.pop(vb, ve)) {
      for (std::size_t v = vb; v < ve; ++v) {
        const std::int64_t s_raw = stratum_value(strata, v);
        if (static_cast<std::uint64_t>(s_raw) >= n_str) {
          err = {v, static_cast<std::size_t>(visit_offsets[v]), 2};
          queue.stop();
          return;
        }
        const auto stratum = static_cast<std::size_t>(s_raw);
        if (++stamp == 0) {  // wrapped: forget all marks
          std::fill(mark.begin(), mark.end(), 0u);
          stamp = 1;
        }
        const CounterStream vs = rng.substream(v);
        std::uint64_t k = 0;  // position in the visit's stream
        const auto pb = static_cast<std::size_t>(visit_offsets[v]);
        const auto pe = static_cast<std::size_t>(visit_offsets[v + 1]);
        for (std::size_t p = pb; p < pe; ++p) {
          const auto c = static_cast<std::uint64_t>(static_cast<std::int64_t>(cats[p]));
          if (c >= n_cat) {
            err = {v, p, 1};
            queue.stop();
            return;
          }
          const TableRef& t = choose(stratum, static_cast<std::size_t>(c), out + pb, p - pb);
          std::int32_t code = AliasTableSet::draw(t, entries, vs(k++));
          if (mark[code] == stamp) {
            bool found = false;
            for (int r = 0; r < kMaxRejections && !found; ++r) {
              code = AliasTableSet::draw(t, entries, vs(k++));
              found = mark[code] != stamp;
            }
            if (!found) {
              // Exact draw among the codes not yet drawn, in proportion to their weight.
              const double* w = eff + t.start;
              double total = 0.0;
              for (std::uint32_t j = 0; j < t.size; ++j)
                if (mark[t.base + static_cast<std::int32_t>(j)] != stamp) total += w[j];
              if (total > 0.0) {
                const double u = unit_double(vs(k++)) * total;
                double acc = 0.0;
                std::int32_t last_positive = -1;
                for (std::uint32_t j = 0; j < t.size; ++j) {
                  const std::int32_t cj = t.base + static_cast<std::int32_t>(j);
                  if (mark[cj] == stamp || !(w[j] > 0.0)) continue;
                  last_positive = cj;
                  acc += w[j];
                  if (u < acc) break;
                }
                code = last_positive;  // rounding: fall back to the last candidate
              } else if (exhausted == ExhaustedPolicy::kError) {
                err = {v, p, 3};
                queue.stop();
                return;
              } else {
                code = AliasTableSet::draw(t, entries, vs(k++));  // with replacement
              }
            }
          }
          mark[code] = stamp;
          out[p] = code;
        }
      }
    }
  });

  const Error* first = nullptr;
  for (const Error& e : errors)
    if (e.kind != 0 && (first == nullptr || e.visit < first->visit)) first = &e;
  if (first == nullptr) return;
  const std::size_t p = first->element;
  switch (first->kind) {
    case 1:
      throw_bad_category(p, static_cast<std::int64_t>(cats[p]));
    case 2:
      throw_bad_stratum("strata", first->visit, stratum_value(strata, first->visit));
    default: {
      const auto c = static_cast<std::int64_t>(cats[p]);
      const TableRef& t = tabs[static_cast<std::size_t>(stratum_value(strata, first->visit)) *
                                   n_cat + static_cast<std::size_t>(c)];
      fail("categories: visit " + std::to_string(first->visit) + " repeats category " +
           std::to_string(c) + " more often than it has codes with positive weight (" +
           std::to_string(t.n_positive) +
           "); pass exhausted='repeat' to draw with replacement after that");
    }
  }
}

}  // namespace hiergen
