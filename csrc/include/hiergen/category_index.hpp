// The Stage-2 sampler: an immutable index of categories (contiguous code ranges, CSR
// offsets) with one alias table per (stratum, category).
//
// Determinism: element i of sample() uses one half of number i / 2 of a counter stream keyed by
// the seed; visit v of sample_visits() uses its own sub-stream keyed by (seed, v). Output
// therefore depends only on the inputs and the seed, never on threads or chunking.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "hiergen/alias_table.hpp"
#include "hiergen/parallel.hpp"
#include "hiergen/rng.hpp"

namespace hiergen {

/// The context-free table chooser of sample_visits: the table of (stratum, category). The
/// visit loop recognises this type and looks up the stratum's row once per visit.
struct StratumTables {
  const TableRef* tables;
  std::size_t n_categories;
  const TableRef& operator()(std::size_t stratum, std::size_t category, const std::int32_t*,
                             std::size_t) const noexcept {
    return tables[stratum * n_categories + category];
  }
};

/// Index of the first a[i] outside [0, bound), or n when all are inside. The common case
/// (all inside) is one branch-free pass in T's own width (negative values wrap to large
/// unsigned ones), which compilers vectorise; widening to 64 bits first would not.
template <class T>
std::size_t first_out_of_range(const T* a, std::size_t n, std::uint64_t bound) noexcept {
  static_assert(std::is_integral_v<T>, "integer ids expected");
  using U = std::make_unsigned_t<T>;
  if (bound > std::numeric_limits<U>::max()) {  // only negative values can be out
    if constexpr (std::is_signed_v<T>)
      for (std::size_t i = 0; i < n; ++i)
        if (a[i] < 0) return i;
    return n;
  }
  const auto b = static_cast<U>(bound);
  U any = 0;
  for (std::size_t i = 0; i < n; ++i) any |= static_cast<U>(static_cast<U>(a[i]) >= b);
  if (!any) return n;
  for (std::size_t i = 0; i < n; ++i)
    if (static_cast<U>(a[i]) >= b) return i;
  return n;
}

/// Per-element (sample) or per-visit (sample_visits) strata: a constant or an int array.
struct StrataView {
  enum class Kind { kConstant, kInt32, kInt64 };
  Kind kind = Kind::kConstant;
  const void* data = nullptr;
  std::int64_t value = 0;  ///< the stratum when kind == kConstant

  static StrataView constant(std::int64_t s) { return {Kind::kConstant, nullptr, s}; }
  static StrataView of(const std::int32_t* p) { return {Kind::kInt32, p, 0}; }
  static StrataView of(const std::int64_t* p) { return {Kind::kInt64, p, 0}; }

  /// Index of the first element of begin .. end - 1 whose stratum is outside [0, bound), or
  /// end when there is none (a constant is checked once by the caller, so it never is).
  std::size_t first_out_of_range(std::size_t begin, std::size_t end,
                                 std::uint64_t bound) const noexcept {
    if (kind == Kind::kInt32)
      return begin + hiergen::first_out_of_range(static_cast<const std::int32_t*>(data) + begin,
                                                 end - begin, bound);
    if (kind == Kind::kInt64)
      return begin + hiergen::first_out_of_range(static_cast<const std::int64_t*>(data) + begin,
                                                 end - begin, bound);
    return end;
  }

  /// Calls `f` with an accessor `index -> stratum` (as `Result`) of this view's kind: one
  /// instantiation per kind, so a hot loop sees a plain load or a constant, not a switch.
  template <class Result, class F>
  void dispatch(F&& f) const {
    switch (kind) {
      case Kind::kInt32: {
        const auto* p = static_cast<const std::int32_t*>(data);
        f([p](std::size_t i) { return static_cast<Result>(p[i]); });
        break;
      }
      case Kind::kInt64: {
        const auto* p = static_cast<const std::int64_t*>(data);
        f([p](std::size_t i) { return static_cast<Result>(p[i]); });
        break;
      }
      default: {
        const auto v = static_cast<Result>(value);
        f([v](std::size_t) { return v; });
      }
    }
  }
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
                       StratumTables{tables_.tables(), n_categories()});
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

  /// First failing visit of a thread: kind 1 = category out of range (element), 2 = stratum
  /// out of range (visit), 3 = category exhausted (element); 0 = none.
  struct VisitError {
    std::size_t visit = std::numeric_limits<std::size_t>::max();
    std::size_t element = 0;
    int kind = 0;
  };
  /// Per-thread marks: mark[code] == stamp when the code was drawn in the current visit.
  struct VisitScratch {
    explicit VisitScratch(std::size_t n_codes)
        : mark(new std::uint32_t[n_codes > 0 ? n_codes : 1]()) {}
    std::unique_ptr<std::uint32_t[]> mark;
    std::uint32_t stamp = 0;
  };
  void check_visit_offsets(const std::int64_t* visit_offsets, std::size_t n_visits,
                           std::size_t n) const;
  /// Draw visits vb .. ve; false (and `err` set) at the first bad input.
  template <class Cat, class StratumAt, class Chooser>
  bool visit_range(const Cat* cats, const std::int64_t* vo, std::size_t vb, std::size_t ve,
                   StratumAt stratum_at, CounterStream rng, std::int32_t* out,
                   VisitScratch& scratch, Chooser& choose, const AliasEntry* entries,
                   const double* eff, ExhaustedPolicy exhausted, VisitError& err) const;

  /// Draw elements begin .. end - 1 (strata already checked); the index of the first
  /// category id out of range, or SIZE_MAX.
  template <class Cat, class StratumAt>
  std::size_t sample_range(const Cat* cats, std::size_t begin, std::size_t end,
                           StratumAt stratum_at, CounterStream rng,
                           std::int32_t* out) const noexcept;

  /// First code and number of codes of each category (offsets_ in the form sample() reads).
  struct CodeRange {
    std::int32_t base;
    std::uint32_t size;
  };

  std::vector<std::int64_t> offsets_;
  std::vector<CodeRange> ranges_;
  std::vector<double> weights_;
  std::size_t n_codes_ = 0;
  std::size_t n_strata_ = 0;
  ZeroWeightPolicy policy_ = ZeroWeightPolicy::kError;
  AliasTableSet tables_;
};

/// Raise std::invalid_argument with a message.
[[noreturn]] void fail(const std::string& message);

/// A code drawn on a slow path and the visit stream position after it. Returned by value
/// (two registers): passing the position by reference would force the hot loop to keep it,
/// and everything near it, in memory.
struct Redraw {
  std::int32_t code;  ///< the code, or -1 (see each function)
  std::uint64_t k;    ///< next unused number of the visit's stream
};

/// The slow path of a draw without replacement (kept out of line, so the common path stays
/// small): `t`'s first draw hit a code already drawn in the visit. Up to kMaxRejections
/// redraws, then an exact draw among the positive-weight codes not drawn yet; when none is
/// left, -1 under kError, else a draw with replacement. Stream numbers from `k` on are used.
Redraw redraw_distinct(const TableRef& t, const AliasEntry* entries, const double* eff,
                       const std::uint32_t* mark, std::uint32_t stamp, CounterStream vs,
                       std::uint64_t k, ExhaustedPolicy exhausted);

/// Up to `max_rejections` redraws from `t` for a code not yet drawn; code -1 when all hit.
Redraw redraw_rejecting(const TableRef& t, const AliasEntry* entries, const std::uint32_t* mark,
                        std::uint32_t stamp, CounterStream vs, std::uint64_t k,
                        int max_rejections);

/// Exact draw among `t`'s positive-weight codes not yet drawn (weights `eff + t.start`), in
/// proportion to their weight; uses one number only when one is left, else code -1.
Redraw draw_left(const TableRef& t, const double* eff, const std::uint32_t* mark,
                 std::uint32_t stamp, CounterStream vs, std::uint64_t k);

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
  // Stratum s's table of category c covers entries s * n_codes + base(c) onwards (build()
  // appends the tables in that order), so a draw reads only the category's (base, size).
  const CodeRange* ranges = ranges_.data();
  const AliasEntry* entries = tables_.entries();
  const std::uint64_t n_codes = n_codes_;
  const std::uint64_t n_cat = n_categories();
  std::size_t bad = std::numeric_limits<std::size_t>::max();
  // False (and `bad` set) for a category id out of range. Negative ids wrap to huge unsigned
  // values, so one comparison checks both bounds; in the loop it is one fused compare-branch,
  // cheaper than a separate pass.
  auto draw_one = [&](std::size_t i, std::uint32_t u, std::int32_t& code) {
    const auto c = static_cast<std::uint64_t>(static_cast<std::int64_t>(cats[i]));
    if (c >= n_cat) [[unlikely]] {
      bad = i;
      return false;
    }
    const CodeRange r = ranges[c];
    const AliasEntry* row = entries + static_cast<std::uint64_t>(stratum_at(i)) * n_codes;
    code = AliasTableSet::draw32(row, r.base, r.size, u);
    return true;
  };
  // Element i draws with half of stream number i / 2 (low half for even i, high half for
  // odd i): one 64-bit number serves two elements.
  std::size_t i = begin;
  if (i < end && (i & 1u)) {
    if (!draw_one(i, static_cast<std::uint32_t>(rng(i >> 1) >> 32), out[i])) return bad;
    ++i;
  }
  std::uint64_t x = rng.weyl(i >> 1);
  for (; i + 1 < end; i += 2, x += kWyP0) {
    const std::uint64_t bits = CounterStream::output(x);
    if (!draw_one(i, static_cast<std::uint32_t>(bits), out[i]) ||
        !draw_one(i + 1, static_cast<std::uint32_t>(bits >> 32), out[i + 1])) [[unlikely]]
      return bad;
  }
  if (i < end) draw_one(i, static_cast<std::uint32_t>(CounterStream::output(x)), out[i]);
  return bad;
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
        // Strata arrays are checked first (a branch-free pass that vectorises), categories
        // as they are drawn.
        const std::size_t bad_s = strata.first_out_of_range(b, e, n_strata_);
        const std::size_t bad =
            bad_s == e ? sample_range(cats, b, e, stratum_at, rng, out)
                       : b + first_out_of_range(cats + b, bad_s - b, n_categories());
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
  strata.dispatch<std::int64_t>(run);
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
  check_visit_offsets(visit_offsets, n_visits, n);
  if (n_visits == 0 || n == 0) return;
  // Validate categories and strata up front (branch-free passes), so the visit loop has no
  // error exits but the exhausted one. The error reported is the one of the first bad visit.
  {
    const std::size_t bad_c = first_out_of_range(cats, n, n_categories());
    if (strata.kind == StrataView::Kind::kConstant &&
        (strata.value < 0 || static_cast<std::uint64_t>(strata.value) >= n_strata_))
      throw_bad_stratum("strata", std::numeric_limits<std::size_t>::max(), strata.value);
    const std::size_t bad_s = strata.first_out_of_range(0, n_visits, n_strata_);
    if (bad_c < n || bad_s < n_visits) {
      // Visit of the bad category: the last visit starting at or before it (empty visits
      // share their start with the next one, so take the last).
      std::size_t visit_c = n_visits;
      if (bad_c < n)
        visit_c = static_cast<std::size_t>(
            std::upper_bound(visit_offsets, visit_offsets + n_visits + 1,
                             static_cast<std::int64_t>(bad_c)) - visit_offsets - 1);
      if (bad_s <= visit_c) throw_bad_stratum("strata", bad_s, stratum_value(strata, bad_s));
      throw_bad_category(bad_c, static_cast<std::int64_t>(cats[bad_c]));
    }
  }

  const CounterStream rng = CounterStream::from_seed(seed, kVisitDomain);
  if (entries == nullptr) entries = tables_.entries();
  const double* eff = effective != nullptr ? effective : tables_.effective_weights();

  ChunkQueue queue(n_visits, kVisitChunk);
  const unsigned n_threads = thread_count(threads, n, queue.n_chunks());
  std::vector<VisitError> errors(n_threads);

  // One instantiation per strata kind, so the visit loop reads strata without a switch.
  auto run = [&](auto stratum_at) {
    run_threads(n_threads, [&](unsigned tid) {
      VisitScratch scratch(n_codes_);
      std::size_t vb, ve;
      while (queue.pop(vb, ve)) {
        if (!visit_range(cats, visit_offsets, vb, ve, stratum_at, rng, out, scratch, choose,
                         entries, eff, exhausted, errors[tid])) {
          queue.stop();
          return;
        }
      }
    });
  };
  strata.dispatch<std::size_t>(run);

  const VisitError* first = nullptr;
  for (const VisitError& e : errors)
    if (e.kind != 0 && (first == nullptr || e.visit < first->visit)) first = &e;
  if (first == nullptr) return;
  // Only exhausted categories are left to report (kind 3).
  const std::size_t p = first->element;
  const auto c = static_cast<std::int64_t>(cats[p]);
  const TableRef& t =
      tables_.tables()[table_id(static_cast<std::size_t>(stratum_value(strata, first->visit)),
                                static_cast<std::size_t>(c))];
  fail("categories: visit " + std::to_string(first->visit) + " repeats category " +
       std::to_string(c) + " more often than it has codes with positive weight (" +
       std::to_string(t.n_positive) +
       "); pass exhausted='repeat' to draw with replacement after that");
}

template <class Cat, class StratumAt, class Chooser>
bool CategoryIndex::visit_range(const Cat* __restrict cats, const std::int64_t* __restrict vo,
                                std::size_t vb, std::size_t ve, StratumAt stratum_at,
                                const CounterStream rng, std::int32_t* __restrict out,
                                VisitScratch& scratch, Chooser& choose,
                                const AliasEntry* __restrict entries, const double* eff,
                                ExhaustedPolicy exhausted, VisitError& err) const {
  // Inputs were validated by the caller: no bounds checks here. Everything the loop needs
  // lives in locals (nothing address-taken), so it stays in registers.
  constexpr bool kStratumRow = std::is_same_v<std::decay_t<Chooser>, StratumTables>;
  const std::size_t n_cat = n_categories();
  std::uint32_t* __restrict mark = scratch.mark.get();
  std::uint32_t stamp = scratch.stamp;
  bool ok = true;
  for (std::size_t v = vb; v < ve; ++v) {
    const std::size_t s = stratum_at(v);
    const auto pb = static_cast<std::size_t>(vo[v]);
    const auto pe = static_cast<std::size_t>(vo[v + 1]);
    if (++stamp == 0) [[unlikely]] {  // wrapped: forget all marks
      std::fill(mark, mark + n_codes_, 0u);
      stamp = 1;
    }
    const CounterStream vs = rng.substream(v);
    [[maybe_unused]] const TableRef* row = nullptr;
    if constexpr (kStratumRow) row = choose.tables + s * n_cat;
    std::uint64_t k = 0;  // position in the visit's stream
    for (std::size_t p = pb; p < pe; ++p) {
      const auto c = static_cast<std::size_t>(cats[p]);
      const TableRef* t;
      if constexpr (kStratumRow)
        t = row + c;
      else
        t = &choose(s, c, out + pb, p - pb);
      std::int32_t code = AliasTableSet::draw(*t, entries, vs(k++));
      if (mark[code] == stamp) [[unlikely]] {
        const Redraw r = redraw_distinct(*t, entries, eff, mark, stamp, vs, k, exhausted);
        code = r.code;
        k = r.k;
        if (code < 0) {
          err = {v, p, 3};
          ok = false;
          break;
        }
      }
      mark[code] = stamp;
      out[p] = code;
    }
    if (!ok) break;
  }
  scratch.stamp = stamp;
  return ok;
}

}  // namespace hiergen
