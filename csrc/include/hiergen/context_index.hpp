// Context-aware Stage-2 sampling: extra alias tables keyed by (category, context code).
//
// A visit's categories are drawn in a canonical order (rank per category, ties by position).
// Each category draws from the table of the best-scoring context among the codes already
// drawn in the visit, else from its stratum's table of the base index. The context tables of
// a category are laid out by decreasing score, so "best" is the lowest table index found.
//
// Lookups go through a hash table ((category, context code) -> table index) grouped by
// context code (ContextLookup). They are made eagerly: as soon as a code is drawn, it is
// looked up as a context of every later draw of the visit, so the lookups of a visit are
// independent loads, all in the drawn code's region of the table. Visits of the same
// length are drawn in groups, one draw of every visit at a time (draw_batched).
// Codes stay distinct within a visit (rejection, then an exact draw among the codes left, as
// CategoryIndex::sample_visits does); visit v uses the counter sub-stream (seed, v), so the
// output depends only on the inputs and the seed, never on the thread count or grouping.
// Pure C++17, no Python headers (the SIMD lookup kernel lives in src/context_lookup.cpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "hiergen/alias_table.hpp"
#include "hiergen/category_index.hpp"
#include "hiergen/context_lookup.hpp"
#include "hiergen/parallel.hpp"
#include "hiergen/prefetch.hpp"

namespace hiergen {

class ContextIndex {
 public:
  /// `base`: the context-free index (its strata tables are the fallback).
  /// Table t covers the codes of category[t] with weights at weights[w_off[t] ..], tables laid
  /// out one after the other in the given order; score[t] ranks them (higher preferred);
  /// rank[c] is the draw order of category c (lower first). Throws std::invalid_argument.
  ContextIndex(std::shared_ptr<const CategoryIndex> base, const std::int32_t* category,
               const std::int32_t* context, const double* score, std::size_t n_tables,
               const double* weights, std::size_t n_weights, const std::int32_t* rank)
      : base_(std::move(base)) {
    const std::size_t n_cat = base_->n_categories(), n_codes = base_->n_codes();
    const auto& offsets = base_->offsets();
    if ((n_cat + 1) * n_codes >= 0xFFFFFFFFull)
      fail("context tables: (n_categories + 1) x n_codes must be below 2^32");
    rank_.assign(rank, rank + n_cat);
    {
      std::vector<std::int32_t> sorted(rank_);
      std::sort(sorted.begin(), sorted.end());
      distinct_ranks_ = std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end();
    }
    small_ranks_ = std::all_of(rank_.begin(), rank_.end(),
                               [](std::int32_t r) { return r >= 0 && r < (1 << 23); });
    // rank << 5 | position (< 32) below 0xFFFF, the int16 padding key after the flip.
    tiny_ranks_ = std::all_of(rank_.begin(), rank_.end(),
                              [](std::int32_t r) { return r >= 0 && r < 2047; });
    if (tiny_ranks_) {  // flipped: the unsigned key order is int16's signed order
      rank_key16_.resize(n_cat);
      for (std::size_t c = 0; c < n_cat; ++c)
        rank_key16_[c] = static_cast<std::int16_t>((static_cast<std::uint32_t>(rank_[c]) << 5) ^ 0x8000u);
    }
    if (small_ranks_) {  // also for the groups of visits too long for int16 keys
      rank_key32_.resize(n_cat);
      for (std::size_t c = 0; c < n_cat; ++c) rank_key32_[c] = rank_[c] << 8;
    }
    // Where each table's weights start, in the given layout.
    std::vector<std::size_t> w_off(n_tables + 1, 0);
    for (std::size_t t = 0; t < n_tables; ++t) {
      const std::int64_t c = category[t], d = context[t];
      if (c < 0 || static_cast<std::size_t>(c) >= n_cat)
        fail("category[" + std::to_string(t) + "] = " + std::to_string(c) +
             " is out of range; the index has " + std::to_string(n_cat) + " categories");
      if (d < 0 || static_cast<std::size_t>(d) >= n_codes)
        fail("context[" + std::to_string(t) + "] = " + std::to_string(d) +
             " is not a code id; the index has " + std::to_string(n_codes) + " codes");
      if (!std::isfinite(score[t]))
        fail("score[" + std::to_string(t) + "] is not finite");
      w_off[t + 1] = w_off[t] + static_cast<std::size_t>(offsets[c + 1] - offsets[c]);
    }
    if (w_off[n_tables] != n_weights)
      fail("weights: the tables cover " + std::to_string(w_off[n_tables]) +
           " codes in all, got " + std::to_string(n_weights) + " weights");
    for (std::size_t j = 0; j < n_weights; ++j)
      if (!std::isfinite(weights[j]) || weights[j] < 0.0)
        fail("weights[" + std::to_string(j) + "] must be finite and >= 0");

    // Internal category labels: categories with more context tables first. The lookup
    // hashes labels, and small labels for the categories that most codes have tables for
    // halve its slots (multiplicative hashing spreads small numbers well).
    std::vector<std::uint32_t> by_label(n_cat);  // the category of each label
    {
      std::vector<std::size_t> per_cat(n_cat, 0);
      for (std::size_t t = 0; t < n_tables; ++t) ++per_cat[static_cast<std::size_t>(category[t])];
      std::iota(by_label.begin(), by_label.end(), 0u);
      std::stable_sort(by_label.begin(), by_label.end(), [&](std::uint32_t a, std::uint32_t b) {
        return per_cat[a] > per_cat[b];
      });
      label_.resize(n_cat);
      for (std::size_t l = 0; l < n_cat; ++l) label_[by_label[l]] = static_cast<std::uint32_t>(l);
    }
    // Context tables grouped by category (locality), by decreasing score within one (ties:
    // given order): among the tables of a category, the best has the lowest entry start.
    std::vector<std::uint32_t> order(n_tables);
    std::iota(order.begin(), order.end(), 0u);
    std::stable_sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
      const std::uint32_t la = label_[static_cast<std::size_t>(category[a])];
      const std::uint32_t lb = label_[static_cast<std::size_t>(category[b])];
      return la != lb ? la < lb : score[a] > score[b];
    });

    // One table set: the base tables (stratum x category label) then the context tables.
    const std::size_t n_str = base_->n_strata();
    const auto& bt = base_->tables();
    tables_.reserve(n_str * n_cat + n_tables, bt.n_entries() + n_weights);
    for (std::size_t s = 0; s < n_str; ++s)
      for (std::size_t l = 0; l < n_cat; ++l) {
        const TableRef& r = bt.tables()[base_->table_id(s, by_label[l])];
        tables_.add_table(bt.effective_weights() + r.start, r.size, r.base,
                          ZeroWeightPolicy::kUniform);
      }
    std::vector<std::uint32_t> keys(n_tables), key_cat(n_tables), key_context(n_tables);
    ctx_refs_.resize(n_tables);
    has_context_.assign(n_cat, 0);
    for (std::size_t i = 0; i < n_tables; ++i) {
      const std::uint32_t t = order[i];
      const auto c = static_cast<std::size_t>(category[t]);
      // Trim zero weights at both ends: smaller tables, same distribution.
      std::size_t lo = w_off[t], hi = w_off[t + 1];
      while (lo < hi && !(weights[lo] > 0.0)) ++lo;
      while (hi > lo && !(weights[hi - 1] > 0.0)) --hi;
      if (lo == hi) fail("weights: context table " + std::to_string(t) + " has only zero weights");
      const std::int64_t id = tables_.add_table(
          weights + lo, static_cast<std::uint32_t>(hi - lo),
          static_cast<std::int32_t>(offsets[c] + static_cast<std::int64_t>(lo - w_off[t])),
          ZeroWeightPolicy::kError);
      if (id < 0) fail("weights: context table " + std::to_string(t) + " has only zero weights");
      ctx_refs_[i] = tables_.tables()[id];
      key_cat[i] = label_[c];
      key_context[i] = static_cast<std::uint32_t>(context[t]);
      keys[i] = static_cast<std::uint32_t>(c * n_codes + static_cast<std::size_t>(context[t]));
      has_context_[c] = 1;
    }
    std::vector<std::uint32_t> sorted_keys(keys);
    std::sort(sorted_keys.begin(), sorted_keys.end());
    const auto dup = std::adjacent_find(sorted_keys.begin(), sorted_keys.end());
    if (dup != sorted_keys.end())
      fail("context tables: (category " + std::to_string(*dup / n_codes) + ", context " +
           std::to_string(*dup % n_codes) + ") appears twice");
    lookup_ = ContextLookup(key_cat, key_context, n_cat, n_codes);
    n_tables_ = n_tables;
  }

  const CategoryIndex& base() const noexcept { return *base_; }
  std::shared_ptr<const CategoryIndex> base_ptr() const noexcept { return base_; }
  std::size_t n_tables() const noexcept { return n_tables_; }
  const std::vector<std::int32_t>& rank() const noexcept { return rank_; }
  /// Memory held by the context part (tables, effective weights, lookup, ranks).
  std::size_t nbytes() const noexcept {
    return (tables_.n_tables() + ctx_refs_.size()) * sizeof(TableRef) +
           tables_.n_entries() * (sizeof(AliasEntry) + sizeof(double)) + lookup_.nbytes() +
           rank_.size() * sizeof(std::int32_t) + has_context_.size() +
           label_.size() * sizeof(std::uint32_t);
  }

  /// Draw codes visit by visit (see CategoryIndex::sample_visits); with `use_context`, in
  /// canonical order with context tables, else exactly the base index's context-free path.
  template <class Cat>
  void sample_visits(const Cat* cats, std::size_t n, const std::int64_t* visit_offsets,
                     std::size_t n_visits, StrataView strata, std::uint64_t seed,
                     std::int32_t* out, unsigned threads, ExhaustedPolicy exhausted,
                     bool use_context) const {
    if (!use_context) {
      base_->sample_visits(cats, n, visit_offsets, n_visits, strata, seed, out, threads,
                           exhausted);
      return;
    }
    check_visits(visit_offsets, n_visits, n);
    if (n == 0 || n_visits == 0) return;
    const std::size_t n_cat = base_->n_categories();
    const std::size_t n_str = base_->n_strata();
    const std::size_t bad_c = first_out_of_range(cats, n, n_cat);
    if (bad_c < n) {
      const auto c = static_cast<std::int64_t>(cats[bad_c]);
      fail("categories[" + std::to_string(bad_c) + "] = " + std::to_string(c) +
           (c < 0 ? " is negative" : " is out of range") + "; the index has " +
           std::to_string(n_cat) + " categories (ids 0.." + std::to_string(n_cat - 1) + ")");
    }
    if (strata.kind == StrataView::Kind::kConstant &&
        (strata.value < 0 || static_cast<std::uint64_t>(strata.value) >= n_str))
      fail("strata = " + std::to_string(strata.value) + " is out of range; the index has " +
           std::to_string(n_str) + " strata");
    const std::size_t bad_s = strata.first_out_of_range(0, n_visits, n_str);
    if (bad_s < n_visits)
      fail("strata[" + std::to_string(bad_s) + "] = " +
           std::to_string(stratum_value(strata, bad_s)) + " is out of range; the index has " +
           std::to_string(n_str) + " strata");

    const CounterStream rng = CounterStream::from_seed(seed, kContextDomain);
    ChunkQueue queue(n_visits, kGroupChunk);
    const unsigned n_threads = thread_count(threads, n, n_visits);
    // First visit per thread whose category is exhausted (under kError).
    std::vector<std::size_t> bad_visit(n_threads, kOk), bad_element(n_threads, 0);
    auto run = [&](auto stratum_at) {
      run_threads(n_threads, [&](unsigned tid) {
        draw_batched(cats, visit_offsets, queue, stratum_at, rng, out, exhausted,
                     bad_visit[tid], bad_element[tid]);
      });
    };
    strata.dispatch<std::size_t>(run);
    std::size_t first = kOk, element = 0;
    for (unsigned t = 0; t < n_threads; ++t)
      if (bad_visit[t] < first) {
        first = bad_visit[t];
        element = bad_element[t];
      }
    if (first == kOk) return;
    fail("categories: visit " + std::to_string(first) + " repeats category " +
         std::to_string(static_cast<std::int64_t>(cats[element])) +
         " more often than it has codes with positive weight; pass exhausted='repeat' to "
         "draw with replacement after that");
  }

  /// Stream domain of context-aware sampling (unrelated to the context-free streams).
  static constexpr std::uint64_t kContextDomain = 3;

 private:
  static unsigned thread_count(unsigned requested, std::size_t n, std::size_t n_visits) {
    unsigned t = requested;
    if (t == 0) t = n < CategoryIndex::kParallelMin ? 1u : default_thread_count();
    const std::size_t chunks =
        (n_visits + kGroupChunk - 1) / kGroupChunk;
    if (chunks < t) t = static_cast<unsigned>(chunks);
    return t < 1 ? 1u : t;
  }

  static constexpr std::size_t kOk = std::numeric_limits<std::size_t>::max();
  struct Scratch {
    explicit Scratch(std::size_t n_codes) : mark(new std::uint32_t[n_codes > 0 ? n_codes : 1]()) {}
    std::unique_ptr<std::uint32_t[]> mark;  ///< mark[code] == stamp: drawn in this visit
    std::uint32_t stamp = 0;
    std::vector<std::uint64_t> sort_key;  ///< (rank << 32 | position) per element
    std::vector<std::uint32_t> pos;       ///< position (in the visit) of each draw
    std::vector<std::uint32_t> probe_at;  ///< draws whose category has context tables
    std::vector<std::uint32_t> probe_cat;   ///< their category
    std::vector<std::uint32_t> probe_best;  ///< their best context table so far
    void reserve(std::size_t len) {
      if (pos.size() < len + 1) {
        sort_key.resize(len + 1);
        pos.resize(len + 1);
        probe_at.resize(len + 1);
        probe_cat.resize(len + 1);
        probe_best.resize(len + 1);
      }
    }
  };

  /// The slow path of a draw: `t`'s first draw hit a code already drawn in the visit.
  /// Rejection, then an exact draw among the codes of `t` left; when a context table is
  /// exhausted, an exact draw from the stratum table `ts`; then -1 (kError) or a draw with
  /// replacement from `t`.
  Redraw redraw(const TableRef& t, const TableRef& ts, bool from_context,
                const std::uint32_t* mark, std::uint32_t stamp, CounterStream vs,
                std::uint64_t k, ExhaustedPolicy exhausted) const {
    const AliasEntry* entries = tables_.entries();
    const double* eff = tables_.effective_weights();
    Redraw r = redraw_rejecting(t, entries, mark, stamp, vs, k, CategoryIndex::kMaxRejections);
    if (r.code >= 0) return r;
    r = draw_left(t, eff, mark, stamp, vs, r.k);
    if (r.code >= 0) return r;
    if (from_context) {
      r = draw_left(ts, eff, mark, stamp, vs, r.k);
      if (r.code >= 0) return r;
    }
    if (exhausted == ExhaustedPolicy::kError) return r;
    return {AliasTableSet::draw(t, entries, vs(r.k)), r.k + 1};
  }

  /// A visit drawn on the one-visit path (visits longer than kGroupMaxLen), with the thread's
  /// scratch space.
  struct SerialVisit {
    explicit SerialVisit(std::size_t n_codes) : sc(n_codes) {}
    Scratch sc;
    std::size_t v = 0, b = 0, len = 0;  ///< the visit, its first element and its length
    std::size_t i = 0;                  ///< next draw (in draw order)
    std::size_t q0 = 0, n_probe = 0;    ///< next probe entry not drawn yet, probe entries
    std::uint64_t k = 0;                ///< next number of the visit's stream
    CounterStream vs{0};
    const TableRef* row = nullptr;      ///< the stratum's base tables
  };

  /// pos[0..len) = the elements of the visit at cats[b..] in (rank, position) order, by
  /// sorting (rank << 32 | position) keys in `sc` (visits of any length, any ranks).
  template <class Cat>
  void order_by_sort(const Cat* __restrict cats, std::size_t b, std::size_t len, Scratch& sc,
                     std::uint32_t* __restrict pos) const {
    sc.reserve(len);
    const std::int32_t* rank = rank_.data();
    std::uint64_t* __restrict sort_key = sc.sort_key.data();
    for (std::size_t i = 0; i < len; ++i)
      sort_key[i] = (static_cast<std::uint64_t>(static_cast<std::uint32_t>(
                         rank[static_cast<std::size_t>(cats[b + i])]))
                     << 32) |
                    i;
    std::sort(sort_key, sort_key + len);
    for (std::size_t i = 0; i < len; ++i) pos[i] = static_cast<std::uint32_t>(sort_key[i]);
  }

  /// Draw order and lookups of the visit of `len` elements at cats[b..] (the one-visit
  /// path): pos[0..len) lists the elements in (rank, position) order; probe_at[0..n) the
  /// draws whose category has context tables (then the sentinel len), with their category
  /// in probe_cat and kNone in probe_best. Returns n.
  template <class Cat>
  std::uint32_t plan_visit(const Cat* __restrict cats, std::size_t b, std::size_t len,
                           Scratch& sc, std::uint32_t* __restrict pos,
                           std::uint32_t* __restrict probe_at,
                           std::uint32_t* __restrict probe_cat,
                           std::uint32_t* __restrict probe_best) const {
    order_by_sort(cats, b, len, sc, pos);
    const std::uint8_t* has_context = has_context_.data();
    std::uint32_t n_probe = 0;
    for (std::size_t i = 0; i < len; ++i) {
      const auto c = static_cast<std::size_t>(cats[b + pos[i]]);
      probe_at[n_probe] = static_cast<std::uint32_t>(i);
      probe_cat[n_probe] = label_[c];
      probe_best[n_probe] = ContextLookup::kNone;
      n_probe += has_context[c];
    }
    probe_at[n_probe] = static_cast<std::uint32_t>(len);  // sentinel
    return n_probe;
  }

  /// Set lane `ln` up for the non-empty visit v: draw order, lookup keys, stream.
  ///
  /// Categories are drawn in (rank, position) order. As soon as a code is drawn, the tables
  /// (later category, that code) are looked up for every later draw whose category has
  /// context tables, keeping the best per draw (step()).
  template <class Cat>
  void begin_visit(SerialVisit& ln, const Cat* __restrict cats, const std::int64_t* vo, std::size_t v,
                   std::size_t stratum, const CounterStream& rng) const {
    Scratch& sc = ln.sc;
    const auto b = static_cast<std::size_t>(vo[v]);
    const auto len = static_cast<std::size_t>(vo[v + 1]) - b;
    next_stamp(sc);
    sc.reserve(len);
    ln.n_probe = plan_visit(cats, b, len, sc, sc.pos.data(), sc.probe_at.data(),
                            sc.probe_cat.data(), sc.probe_best.data());
    ln.v = v;
    ln.b = b;
    ln.len = len;
    ln.i = 0;
    ln.q0 = 0;
    ln.k = 0;
    ln.vs = rng.substream(v);
    ln.row = tables_.tables() + stratum * base_->n_categories();
  }

  /// A fresh stamp: no code is marked as drawn any more.
  void next_stamp(Scratch& sc) const {
    if (++sc.stamp == 0) [[unlikely]] {
      std::fill(sc.mark.get(), sc.mark.get() + base_->n_codes(), 0u);
      sc.stamp = 1;
    }
  }

  /// Draw the lane's next code; kOk, or the element whose category is exhausted (kError).
  template <class Cat>
  std::size_t step(SerialVisit& ln, const Cat* __restrict cats, std::int32_t* __restrict out,
                   ExhaustedPolicy exhausted) const {
    Scratch& sc = ln.sc;
    const std::size_t i = ln.i;
    const std::size_t p = ln.b + sc.pos[i];
    const std::uint32_t c = label_[static_cast<std::size_t>(cats[p])];
    std::size_t q0 = ln.q0;
    std::uint32_t best = ContextLookup::kNone;
    if (sc.probe_at[q0] == i) best = sc.probe_best[q0++];
    const bool from_context = lookup_.found(best);
    const TableRef& t = from_context ? ctx_refs_[best] : ln.row[c];
    std::uint64_t k = ln.k;
    const std::uint32_t stamp = sc.stamp;
    std::uint32_t* __restrict mark = sc.mark.get();
    std::int32_t code = AliasTableSet::draw(t, tables_.entries(), ln.vs(k++));
    if (mark[code] == stamp) [[unlikely]] {
      const Redraw r = redraw(t, ln.row[c], from_context, mark, stamp, ln.vs, k, exhausted);
      if (r.code < 0) return p;
      code = r.code;
      k = r.k;
    }
    mark[code] = stamp;
    out[p] = code;
    // Look the new code up as a context of every later draw that has context tables. (Not
    // merge_lookups: with one code its scalar path, prefetch pass included, made visits of
    // 33-120 codes 1.35x slower.)
    const auto ucode = static_cast<std::uint32_t>(code);
    const std::uint32_t* __restrict probe_cat = sc.probe_cat.data();
    std::uint32_t* __restrict probe_best = sc.probe_best.data();
    for (std::size_t q = q0, e = ln.n_probe; q < e; ++q) {
      const std::uint32_t found = lookup_.raw(probe_cat[q], ucode);
      probe_best[q] = found < probe_best[q] ? found : probe_best[q];
    }
    ln.q0 = q0;
    ln.k = k;
    ln.i = i + 1;
    return kOk;
  }

  /// The longest visit drawn in groups (longer ones take the one-visit path, which gives the
  /// same codes).
  static constexpr std::size_t kGroupMaxLen = 64;
  /// The longest visit whose draw order fits int16 keys (rank << 5 | position).
  static constexpr std::size_t kShortKeyMaxLen = 32;

  /// Index of the lowest set bit of x (x != 0).
  static unsigned count_trailing_zeros(std::uint64_t x) noexcept {
#if defined(__GNUC__) || defined(__clang__)
    return static_cast<unsigned>(__builtin_ctzll(x));
#else
    unsigned n = 0;
    for (; (x & 1u) == 0; x >>= 1) ++n;
    return n;
#endif
  }

  /// Bit g set where a[g] == b[g], for g < m (m <= 64; a and b readable up to m rounded up
  /// to a multiple of 4).
  static std::uint64_t equal_mask(const std::uint32_t* a, const std::uint32_t* b,
                                  std::size_t m) noexcept {
    std::uint64_t mask = 0;
#if defined(__SSE2__)
    for (std::size_t g = 0; g < m; g += 4) {
      const __m128i eq = _mm_cmpeq_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + g)),
                                         _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + g)));
      mask |= static_cast<std::uint64_t>(_mm_movemask_ps(_mm_castsi128_ps(eq))) << g;
    }
    return m < 64 ? mask & ((std::uint64_t{1} << m) - 1) : mask;
#else
    for (std::size_t g = 0; g < m; ++g) mask |= static_cast<std::uint64_t>(a[g] == b[g]) << g;
    return mask;
#endif
  }

  /// cnt[i * kGroup + g] = the number of j < W with key[j * kGroup + g] < key[i * kGroup + g],
  /// for i < len and the members g < m (and up to m rounded up to a vector): when element i
  /// of member g is drawn, its keys being distinct and rows len .. W - 1 holding keys above
  /// every real one. Vectorised across members, with a fixed trip count over j, so a group
  /// of visits is ordered with no data-dependent branch.
  template <class K, std::size_t W>
  static void count_smaller(const K* __restrict key, K* __restrict cnt, std::size_t len,
                            std::size_t m) noexcept {
#if defined(__SSE2__)
    constexpr std::size_t kLanes = 16 / sizeof(K);  // SSE2 is part of x86-64
    auto less = [](__m128i a, __m128i b) {
      if constexpr (sizeof(K) == 2) return _mm_cmplt_epi16(a, b);
      else return _mm_cmplt_epi32(a, b);
    };
    auto minus = [](__m128i a, __m128i b) {
      if constexpr (sizeof(K) == 2) return _mm_sub_epi16(a, b);
      else return _mm_sub_epi32(a, b);
    };
    for (std::size_t g = 0; g < m; g += kLanes)
      for (std::size_t i = 0; i < len; ++i) {
        const __m128i ki = _mm_loadu_si128(reinterpret_cast<const __m128i*>(key + i * kGroup + g));
        __m128i c = _mm_setzero_si128();
        for (std::size_t j = 0; j < W; ++j)
          c = minus(c, less(_mm_loadu_si128(reinterpret_cast<const __m128i*>(key + j * kGroup + g)), ki));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(cnt + i * kGroup + g), c);
      }
#else
    for (std::size_t i = 0; i < len; ++i)
      for (std::size_t g = 0; g < m; ++g) {
        K c = 0;
        for (std::size_t j = 0; j < W; ++j)
          c = static_cast<K>(c + (key[j * kGroup + g] < key[i * kGroup + g]));
        cnt[i * kGroup + g] = c;
      }
#endif
  }

  /// Visits of one length drawn together (see draw_batched).
  static constexpr std::size_t kGroup = 64;
  /// Visits a thread takes at a time and groups by length: more visits give fuller groups,
  /// fewer leave the threads unevenly loaded at the end.
  static constexpr std::size_t kGroupChunk = 4096;

  /// A group's state: element arrays indexed [draw * kGroup + visit], visit arrays [visit].
  struct Group {
    std::vector<std::uint32_t> cat = std::vector<std::uint32_t>(kGroupMaxLen * kGroup);
    std::vector<std::uint32_t> at = std::vector<std::uint32_t>(kGroupMaxLen * kGroup);  ///< in out
    /// Best context table found so far per draw. Row 0 stays kNone (the first draw has no
    /// context; lookups write rows 1 and up, the first ones by assignment).
    std::vector<std::uint32_t> best =
        std::vector<std::uint32_t>(kGroupMaxLen * kGroup, ContextLookup::kNone);
    std::vector<std::int32_t> code = std::vector<std::int32_t>(kGroupMaxLen * kGroup);
    /// Draw-order keys and their counts (planning), in int16 or int32.
    std::vector<std::int16_t> key16 = std::vector<std::int16_t>(kGroupMaxLen * kGroup);
    std::vector<std::int16_t> cnt16 = std::vector<std::int16_t>(kGroupMaxLen * kGroup);
    std::vector<std::int32_t> key32 = std::vector<std::int32_t>(kGroupMaxLen * kGroup);
    std::vector<std::int32_t> cnt32 = std::vector<std::int32_t>(kGroupMaxLen * kGroup);
    std::vector<std::size_t> visit = std::vector<std::size_t>(kGroup);
    std::vector<std::size_t> first = std::vector<std::size_t>(kGroup);  ///< its first element
    std::vector<CounterStream> vs = std::vector<CounterStream>(kGroup, CounterStream{0});
    /// Weyl state of the next number of the member's stream (CounterStream::weyl).
    std::vector<std::uint64_t> w = std::vector<std::uint64_t>(kGroup);
    std::vector<std::uint64_t> bits = std::vector<std::uint64_t>(kGroup);
    std::vector<const TableRef*> row = std::vector<const TableRef*>(kGroup);
    std::vector<const TableRef*> ref = std::vector<const TableRef*>(kGroup);
    /// With tied ranks, per draw i: bit g set where member g repeats a category at draw i
    /// (its code may have to be drawn again); kGroup is 64, one bit per member. (With
    /// distinct ranks draw_group compares adjacent draws instead.)
    std::vector<std::uint64_t> repeats = std::vector<std::uint64_t>(kGroupMaxLen);
  };

  /// Plan the m visits of the group (each of `len` elements, from gr.first): the draw order
  /// (rank, then position) of each, and with tied ranks which draws repeat a category. With
  /// ranks that fit 16-bit keys (visits up to kShortKeyMaxLen) or 32-bit ones the group is
  /// ordered at once (count_smaller), else visit by visit (order_by_sort, scratch in `sc`).
  template <class Cat>
  void plan_group(Group& gr, std::size_t m, std::size_t len, const Cat* __restrict cats,
                  Scratch& sc) const {
    if (tiny_ranks_ && len <= kShortKeyMaxLen) {
      order_group(gr, m, len, cats, rank_key16_.data(), gr.key16.data(), gr.cnt16.data());
    } else if (small_ranks_) {
      order_group(gr, m, len, cats, rank_key32_.data(), gr.key32.data(), gr.cnt32.data());
    } else {
      std::uint32_t pos[kGroupMaxLen];
      for (std::size_t g = 0; g < m; ++g) {
        const std::size_t b = gr.first[g];
        order_by_sort(cats, b, len, sc, pos);
        for (std::size_t r = 0; r < len; ++r) {
          const std::size_t e = r * kGroup + g;
          gr.cat[e] = label_[static_cast<std::size_t>(cats[b + pos[r]])];
          gr.at[e] = static_cast<std::uint32_t>(b + pos[r]);
        }
      }
    }
    if (!distinct_ranks_) {  // tied ranks: compare with every earlier draw (see draw_group)
      for (std::size_t g = 0; g < m; ++g)
        for (std::size_t i = 1; i < len; ++i) {
          bool seen = false;
          for (std::size_t j = 0; j < i; ++j)
            seen |= gr.cat[j * kGroup + g] == gr.cat[i * kGroup + g];
          gr.repeats[i] |= static_cast<std::uint64_t>(seen) << g;
        }
    }
  }

  /// The draw order of the group's visits from keys rank_key[category] | position, K wide.
  template <class K, class Cat>
  void order_group(Group& gr, std::size_t m, std::size_t len, const Cat* __restrict cats,
                   const K* __restrict rank_key, K* __restrict key, K* __restrict cnt) const {
    for (std::size_t g = 0; g < m; ++g) {
      const Cat* c = cats + gr.first[g];
      for (std::size_t i = 0; i < len; ++i)
        key[i * kGroup + g] =
            static_cast<K>(rank_key[static_cast<std::size_t>(c[i])] | static_cast<K>(i));
    }
    // Rows len .. W - 1 of keys above every real one, for a count of fixed trip count W.
    const std::size_t w = len <= 8 ? 8 : len <= 16 ? 16 : len <= 32 ? 32 : kGroupMaxLen;
    std::fill(key + len * kGroup, key + w * kGroup, std::numeric_limits<K>::max());
    if (w == 8)
      count_smaller<K, 8>(key, cnt, len, m);
    else if (w == 16)
      count_smaller<K, 16>(key, cnt, len, m);
    else if (w == 32)
      count_smaller<K, 32>(key, cnt, len, m);
    else
      count_smaller<K, kGroupMaxLen>(key, cnt, len, m);
    const std::uint32_t* label = label_.data();
    for (std::size_t g = 0; g < m; ++g) {
      const std::size_t b = gr.first[g];
      for (std::size_t i = 0; i < len; ++i) {
        const std::size_t e = static_cast<std::size_t>(cnt[i * kGroup + g]) * kGroup + g;
        gr.cat[e] = label[static_cast<std::size_t>(cats[b + i])];
        gr.at[e] = static_cast<std::uint32_t>(b + i);
      }
    }
  }

  /// The context-aware draws of one thread. Visits are taken from `queue` chunk by chunk,
  /// grouped by length, and drawn up to kGroup at a time: draw i of every visit of the group,
  /// then draw i + 1, each in stages (the table; random bits and the alias entry they pick;
  /// the draw; the lookups of the new codes as contexts of the later draws) with the memory
  /// of the next stage requested ahead. Every stage is a loop of fixed trip count over
  /// independent visits, so that cache misses overlap and few branches mispredict. A visit's
  /// codes depend only on its own stream, so this gives exactly the one-visit path's output.
  /// On an exhausted category (kError) the thread stops taking visits and reports the first
  /// failing visit it saw.
  template <class Cat, class StratumAt>
  void draw_batched(const Cat* __restrict cats, const std::int64_t* vo, ChunkQueue& queue,
                    StratumAt stratum_at, const CounterStream& rng,
                    std::int32_t* __restrict out, ExhaustedPolicy exhausted,
                    std::size_t& bad_visit, std::size_t& bad_element) const {
    SerialVisit serial(base_->n_codes());  // long visits, slow-path marks, sort scratch
    Group gr;
    std::vector<std::size_t> by_len, len_start(kGroupMaxLen + 2), fill(kGroupMaxLen + 1);
    const AliasEntry* entries = tables_.entries();
    const TableRef* tables = tables_.tables();
    const TableRef* ctx = ctx_refs_.data();
    const std::size_t n_cat = base_->n_categories();
    bool failed = false;
    auto report = [&](std::size_t v, std::size_t element) {
      if (v < bad_visit) {
        bad_visit = v;
        bad_element = element;
      }
      failed = true;
      queue.stop();
    };
    std::size_t vb, ve;
    while (!failed && queue.pop(vb, ve)) {
      // Visits of the chunk by length (long ones drawn on the spot).
      std::fill(len_start.begin(), len_start.end(), 0);
      for (std::size_t v = vb; v < ve; ++v) {
        const auto len = static_cast<std::size_t>(vo[v + 1] - vo[v]);
        ++len_start[(len <= kGroupMaxLen ? len : 0) + 1];
      }
      for (std::size_t l = 1; l < len_start.size(); ++l) len_start[l] += len_start[l - 1];
      by_len.resize(ve - vb);
      std::copy(len_start.begin(), len_start.end() - 1, fill.begin());
      for (std::size_t v = vb; v < ve; ++v) {
        const auto len = static_cast<std::size_t>(vo[v + 1] - vo[v]);
        by_len[fill[len <= kGroupMaxLen ? len : 0]++] = v;
      }
      for (std::size_t x = len_start[0]; x < len_start[1] && !failed; ++x) {
        const std::size_t v = by_len[x];
        if (vo[v + 1] == vo[v]) continue;
        begin_visit(serial, cats, vo, v, stratum_at(v), rng);
        while (serial.i < serial.len) {
          const std::size_t bad = step(serial, cats, out, exhausted);
          if (bad != kOk) [[unlikely]] {
            report(v, bad);
            break;
          }
        }
      }
      for (std::size_t len = 1; len <= kGroupMaxLen && !failed; ++len)
        for (std::size_t x0 = len_start[len]; x0 < len_start[len + 1]; x0 += kGroup) {
          const std::size_t m = std::min(kGroup, len_start[len + 1] - x0);
          for (std::size_t g = 0; g < m; ++g) {
            const std::size_t v = by_len[x0 + g];
            gr.visit[g] = v;
            gr.first[g] = static_cast<std::size_t>(vo[v]);
            // Grouping by length scatters the visits: ask for the categories before planning.
            prefetch_read(cats + gr.first[g]);
            gr.vs[g] = rng.substream(v);
            gr.w[g] = gr.vs[g].weyl(0);
            gr.row[g] = tables + stratum_at(v) * n_cat;
          }
          plan_group(gr, m, len, cats, serial.sc);
          draw_group(gr, m, len, entries, ctx, out, exhausted, serial.sc, report);
        }
    }
  }

  /// Draw the m visits (each of `len` codes) of a planned group.
  template <class Report>
  void draw_group(Group& gr, std::size_t m, std::size_t len, const AliasEntry* entries,
                  const TableRef* ctx, std::int32_t* __restrict out, ExhaustedPolicy exhausted,
                  Scratch& sc, Report& report) const {
    for (std::size_t i = 0; i < len; ++i) {
      const std::size_t e0 = i * kGroup;
      // The table of draw i.
      for (std::size_t g = 0; g < m; ++g) {
        const std::uint32_t best = gr.best[e0 + g];
        const TableRef* own = gr.row[g] + gr.cat[e0 + g];
        const bool found = lookup_.found(best);
        const TableRef* from = ctx + (found ? best : 0u);
        gr.ref[g] = found ? from : own;
        prefetch_read(gr.ref[g]);
      }
      // Random bits, and the alias entry they pick.
      for (std::size_t g = 0; g < m; ++g) {
        const TableRef& t = *gr.ref[g];
        const std::uint64_t bits = CounterStream::output(gr.w[g]);
        gr.w[g] += kWyP0;
        gr.bits[g] = bits;
        prefetch_read(entries + t.start + bounded32(static_cast<std::uint32_t>(bits >> 32), t.size));
      }
      // The draw; then, for the members that repeat a category at this draw, a redraw of a
      // code the visit already holds (out of the draw loop, so the slow call does not
      // weigh on it).
      for (std::size_t g = 0; g < m; ++g) {
        const std::int32_t code = AliasTableSet::draw(*gr.ref[g], entries, gr.bits[g]);
        gr.code[e0 + g] = code;
        out[gr.at[e0 + g]] = code;
      }
      // With distinct ranks a category's draws are adjacent in draw order: a member repeats
      // one at draw i where its category equals that of draw i - 1.
      const std::uint64_t repeats =
          !distinct_ranks_ ? gr.repeats[i]
          : i == 0         ? 0
                           : equal_mask(gr.cat.data() + e0, gr.cat.data() + e0 - kGroup, m);
      for (std::uint64_t rep = repeats; rep != 0; rep &= rep - 1) {
        const auto g = static_cast<std::size_t>(count_trailing_zeros(rep));
        const std::int32_t code = redraw_repeat(gr, g, i, gr.code[e0 + g], exhausted, sc, report);
        gr.code[e0 + g] = code;
        out[gr.at[e0 + g]] = code;
      }
      if (!distinct_ranks_) gr.repeats[i] = 0;  // ready for the next group
      // The new codes as contexts of the later draws.
      if (i + 1 < len)
        merge_lookups(lookup_, gr.cat.data() + (i + 1) * kGroup, gr.code.data() + e0,
                      gr.best.data() + (i + 1) * kGroup, m, kGroup, len - i - 1, kGroup, i == 0);
    }
  }

  /// Draw i of group member g repeats a category: if `code` was drawn already in the visit,
  /// draw again (redraw()); on an exhausted category (kError) report it and return a code of
  /// the category, so that the group goes on safely (the call fails anyway).
  template <class Report>
  std::int32_t redraw_repeat(Group& gr, std::size_t g, std::size_t i, std::int32_t code,
                             ExhaustedPolicy exhausted, Scratch& sc, Report& report) const {
    // Only codes of the same category can collide. With distinct ranks its earlier draws
    // are the ones just before i; with tied ranks any earlier draw may be one.
    const std::size_t e = i * kGroup + g;
    std::size_t j0 = 0;
    if (distinct_ranks_) {
      j0 = i;
      while (j0 > 0 && gr.cat[(j0 - 1) * kGroup + g] == gr.cat[e]) --j0;
    }
    bool dup = false;
    for (std::size_t j = j0; j < i; ++j) dup |= gr.code[j * kGroup + g] == code;
    if (!dup) return code;
    next_stamp(sc);
    for (std::size_t j = j0; j < i; ++j)
      sc.mark[static_cast<std::size_t>(gr.code[j * kGroup + g])] = sc.stamp;
    const TableRef& own = gr.row[g][gr.cat[e]];
    const bool from_context = gr.ref[g] != &own;
    const Redraw r = redraw(*gr.ref[g], own, from_context, sc.mark.get(), sc.stamp, gr.vs[g],
                            gr.vs[g].counter(gr.w[g]), exhausted);
    if (r.code < 0) {
      report(gr.visit[g], gr.at[e]);
      return code;
    }
    gr.w[g] = gr.vs[g].weyl(r.k);
    return r.code;
  }

  static void check_visits(const std::int64_t* vo, std::size_t n_visits, std::size_t n) {
    if (vo[0] != 0)
      fail("visit_offsets: must start at 0, got visit_offsets[0] = " + std::to_string(vo[0]));
    for (std::size_t v = 0; v < n_visits; ++v)
      if (vo[v + 1] < vo[v])
        fail("visit_offsets: not monotonic at entry " + std::to_string(v + 1));
    if (static_cast<std::uint64_t>(vo[n_visits]) != n)
      fail("visit_offsets: last entry " + std::to_string(vo[n_visits]) +
           " does not match the length of categories (" + std::to_string(n) + ")");
    if (n > 0xFFFFFFFFull) fail("categories: at most 2^32 - 1 elements per call");
  }

  std::shared_ptr<const CategoryIndex> base_;
  AliasTableSet tables_;
  ContextLookup lookup_;
  std::vector<TableRef> ctx_refs_;         ///< context tables, preferred first per category
  std::vector<std::uint8_t> has_context_;  ///< per category: has context tables
  /// Internal label of each category (base tables, context tables and lookup keys are
  /// indexed by label; the draw state holds labels).
  std::vector<std::uint32_t> label_;
  std::vector<std::int32_t> rank_;
  bool distinct_ranks_ = false;  ///< no two categories share a rank
  bool small_ranks_ = false;  ///< every rank in [0, 2^23): (rank << 8 | position) fits int32
  bool tiny_ranks_ = false;   ///< every rank in [0, 2047): (rank << 5 | position) fits uint16
  std::vector<std::int16_t> rank_key16_;  ///< tiny ranks: (rank << 5) ^ 0x8000 per category
  std::vector<std::int32_t> rank_key32_;  ///< small ranks: rank << 8 per category
  std::size_t n_tables_ = 0;
};

}  // namespace hiergen
