// Context-aware Stage-2 sampling: extra alias tables keyed by (category, context code).
//
// A visit's categories are drawn in a canonical order (rank per category, ties by position).
// Each category draws from the table of the best-scoring context among the codes already
// drawn in the visit, else from its stratum's table of the base index. The context tables of
// a category are laid out by decreasing score, so "best" is the smallest entry start found.
//
// Lookups go through one small open-addressing region per category (context code -> table
// id). Codes stay distinct within a visit (rejection, then an exact draw among the codes
// left, as CategoryIndex::sample_visits does); visit v uses the counter sub-stream (seed, v),
// so the output depends only on the inputs and the seed, never on the thread count.
// Pure C++17, no Python headers.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "hiergen/alias_table.hpp"
#include "hiergen/category_index.hpp"
#include "hiergen/parallel.hpp"

namespace hiergen {

/// (category, context code) -> context table id: one small open-addressing region per
/// category (so the probes of one category stay in a few cache lines), linear probing.
class ContextLookup {
 public:
  static constexpr std::uint32_t kNone = 0xFFFFFFFFu;

  ContextLookup() = default;

  /// Table t has key (cats[t], ctxs[t]) and location refs[t]; pairs must be distinct and,
  /// among the tables of one category, a lower refs[t].start means a preferred table.
  ContextLookup(const std::vector<std::uint32_t>& cats, const std::vector<std::int32_t>& ctxs,
                const std::vector<TableRef>& refs, std::size_t n_categories) {
    std::vector<std::uint32_t> count(n_categories, 0);
    for (const std::uint32_t c : cats) ++count[c];
    regions_.assign(n_categories, Region{0, 0, 0});
    std::size_t total = 0;
    for (std::size_t c = 0; c < n_categories; ++c) {
      if (count[c] == 0) continue;
      std::uint32_t bits = 1;
      while ((std::size_t{1} << bits) < 2 * static_cast<std::size_t>(count[c])) ++bits;
      regions_[c] = {static_cast<std::uint32_t>(total), (1u << bits) - 1u, 32u - bits};
      total += std::size_t{1} << bits;
    }
    slots_.assign(total, Slot{-1, kNone, 0, 0});
    for (std::size_t t = 0; t < cats.size(); ++t) {
      const Region& r = regions_[cats[t]];
      std::uint32_t i = home(r, ctxs[t]);
      while (slots_[r.start + i].code >= 0) i = (i + 1) & r.mask;
      slots_[r.start + i] = {ctxs[t], refs[t].start, refs[t].size, refs[t].base};
    }
  }

  /// Whether category c has any context table.
  bool has(std::size_t c) const noexcept { return regions_[c].mask != 0; }

  /// Entry start of the table of (c, code) (lower is preferred), or kNone; `slot` is set to
  /// its slot. Requires has(c).
  std::uint32_t find(std::size_t c, std::int32_t code, const void*& slot) const noexcept {
    const Region r = regions_[c];
    const Slot* base = slots_.data() + r.start;
    std::uint32_t i = home(r, code);
    for (;;) {
      const Slot s = base[i];
      if (s.code == code) {
        slot = base + i;
        return s.start;
      }
      if (s.code < 0) return kNone;
      i = (i + 1) & r.mask;
    }
  }

  /// Hint that (c, code) will be looked up soon (the lookups of a visit are independent, so
  /// prefetching them as soon as a code is drawn overlaps their cache misses).
  void prefetch(std::size_t c, std::int32_t code) const noexcept {
#if defined(__GNUC__) || defined(__clang__)
    const Region r = regions_[c];
    if (r.mask != 0) __builtin_prefetch(slots_.data() + r.start + home(r, code));
#else
    (void)c;
    (void)code;
#endif
  }

  std::size_t nbytes() const noexcept {
    return slots_.size() * sizeof(Slot) + regions_.size() * sizeof(Region);
  }

 private:
  struct Slot {
    std::int32_t code;    ///< context code, -1 when empty
    std::uint32_t start;  ///< the table's first alias entry
    std::uint32_t size;   ///< its number of codes
    std::int32_t base;    ///< its first code
  };

 public:
  /// The TableRef of a slot returned by find().
  static TableRef ref(const void* slot) noexcept {
    const Slot& s = *static_cast<const Slot*>(slot);
    return TableRef{s.start, s.size, s.base, s.size};
  }

 private:
  struct Region {
    std::uint32_t start, mask, shift;
  };
  static std::uint32_t home(const Region& r, std::int32_t code) noexcept {
    return (static_cast<std::uint32_t>(code) * 0x9E3779B1u) >> r.shift;
  }
  std::vector<Region> regions_;
  std::vector<Slot> slots_;
};

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
    if (n_cat * n_codes >= 0xFFFFFFFFull)
      fail("context tables: n_categories x n_codes must be below 2^32");
    rank_.assign(rank, rank + n_cat);
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

    // Context tables grouped by category (locality), by decreasing score within one (ties:
    // given order): among the tables of a category, the best has the lowest entry start.
    std::vector<std::uint32_t> order(n_tables);
    std::iota(order.begin(), order.end(), 0u);
    std::stable_sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
      return category[a] != category[b] ? category[a] < category[b] : score[a] > score[b];
    });

    // One table set: the base tables (stratum x category, same ids as the base) then context.
    const std::size_t n_str = base_->n_strata();
    const auto& bt = base_->tables();
    tables_.reserve(n_str * n_cat + n_tables, bt.n_entries() + n_weights);
    for (std::size_t s = 0; s < n_str; ++s)
      for (std::size_t c = 0; c < n_cat; ++c) {
        const TableRef& r = bt.tables()[base_->table_id(s, c)];
        tables_.add_table(bt.effective_weights() + r.start, r.size, r.base,
                          ZeroWeightPolicy::kUniform);
      }
    std::vector<std::uint32_t> keys(n_tables), key_cat(n_tables);
    std::vector<std::int32_t> key_ctx(n_tables);
    std::vector<TableRef> refs(n_tables);
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
      refs[i] = tables_.tables()[id];
      keys[i] = static_cast<std::uint32_t>(c * n_codes + static_cast<std::size_t>(context[t]));
      key_cat[i] = static_cast<std::uint32_t>(c);
      key_ctx[i] = context[t];
    }
    std::vector<std::uint32_t> sorted_keys(keys);
    std::sort(sorted_keys.begin(), sorted_keys.end());
    const auto dup = std::adjacent_find(sorted_keys.begin(), sorted_keys.end());
    if (dup != sorted_keys.end())
      fail("context tables: (category " + std::to_string(*dup / n_codes) + ", context " +
           std::to_string(*dup % n_codes) + ") appears twice");
    lookup_ = ContextLookup(key_cat, key_ctx, refs, n_cat);
    n_tables_ = n_tables;
  }

  const CategoryIndex& base() const noexcept { return *base_; }
  std::shared_ptr<const CategoryIndex> base_ptr() const noexcept { return base_; }
  std::size_t n_tables() const noexcept { return n_tables_; }
  const std::vector<std::int32_t>& rank() const noexcept { return rank_; }
  /// Memory held by the context part (tables, effective weights, lookup, ranks).
  std::size_t nbytes() const noexcept {
    return tables_.n_tables() * sizeof(TableRef) +
           tables_.n_entries() * (sizeof(AliasEntry) + sizeof(double)) + lookup_.nbytes() +
           rank_.size() * sizeof(std::int32_t);
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
    for (std::size_t i = 0; i < n; ++i) {
      const auto c = static_cast<std::int64_t>(cats[i]);
      if (c < 0 || static_cast<std::size_t>(c) >= n_cat)
        fail("categories[" + std::to_string(i) + "] = " + std::to_string(c) +
             (c < 0 ? " is negative" : " is out of range") + "; the index has " +
             std::to_string(n_cat) + " categories (ids 0.." + std::to_string(n_cat - 1) + ")");
    }
    const CounterStream rng = CounterStream::from_seed(seed, kContextDomain);
    const std::size_t n_str = base_->n_strata();
    if (strata.kind == StrataView::Kind::kConstant &&
        (strata.value < 0 || static_cast<std::uint64_t>(strata.value) >= n_str))
      fail("strata = " + std::to_string(strata.value) + " is out of range; the index has " +
           std::to_string(n_str) + " strata");
    ChunkQueue queue(n_visits, CategoryIndex::kVisitChunk);
    const unsigned n_threads = thread_count(threads, n, n_visits);
    // First failing visit per thread: kind 2 = bad stratum, 3 = category exhausted.
    struct Error {
      std::size_t visit = std::numeric_limits<std::size_t>::max();
      std::size_t element = 0;
      int kind = 0;
    };
    std::vector<Error> errors(n_threads);
    run_threads(n_threads, [&](unsigned tid) {
      Scratch sc(base_->n_codes());
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
          const std::size_t bad =
              sample_visit(cats, visit_offsets, v, static_cast<std::size_t>(s_raw), rng, out,
                           exhausted, sc);
          if (bad != kOk) {
            err = {v, bad, 3};
            queue.stop();
            return;
          }
        }
      }
    });
    const Error* first = nullptr;
    for (const Error& e : errors)
      if (e.kind != 0 && (first == nullptr || e.visit < first->visit)) first = &e;
    if (first == nullptr) return;
    if (first->kind == 2)
      fail("strata[" + std::to_string(first->visit) + "] = " +
           std::to_string(stratum_value(strata, first->visit)) +
           " is out of range; the index has " + std::to_string(n_str) + " strata");
    fail("categories: visit " + std::to_string(first->visit) + " repeats category " +
         std::to_string(static_cast<std::int64_t>(cats[first->element])) +
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
        (n_visits + CategoryIndex::kVisitChunk - 1) / CategoryIndex::kVisitChunk;
    if (chunks < t) t = static_cast<unsigned>(chunks);
    return t < 1 ? 1u : t;
  }

  static constexpr std::size_t kOk = std::numeric_limits<std::size_t>::max();

  struct Scratch {
    explicit Scratch(std::size_t n_codes) : mark(n_codes, 0) {}
    std::vector<std::uint32_t> mark;  ///< mark[code] == stamp: drawn in the current visit
    std::uint32_t stamp = 0;
    std::vector<std::uint32_t> order;   ///< positions of the visit in draw order
    std::vector<std::int32_t> drawn;    ///< codes drawn so far, in draw order
  };

  /// Draw one visit; returns kOk or the element whose category is exhausted (kError).
  template <class Cat>
  std::size_t sample_visit(const Cat* cats, const std::int64_t* vo, std::size_t v,
                           std::size_t stratum, const CounterStream& rng, std::int32_t* out,
                           ExhaustedPolicy exhausted, Scratch& sc) const {
    const auto b = static_cast<std::size_t>(vo[v]);
    const auto e = static_cast<std::size_t>(vo[v + 1]);
    if (b == e) return kOk;
    if (++sc.stamp == 0) {
      std::fill(sc.mark.begin(), sc.mark.end(), 0u);
      sc.stamp = 1;
    }
    const std::uint32_t stamp = sc.stamp;
    const std::size_t len = e - b;
    sc.order.resize(len);
    sc.drawn.resize(len);
    std::uint32_t* order = sc.order.data();
    // Insertion sort of the positions by (rank, position): visits are short.
    for (std::size_t i = 0; i < len; ++i) {
      const std::int32_t r = rank_[static_cast<std::size_t>(cats[b + i])];
      std::size_t q = i;
      while (q > 0 && rank_[static_cast<std::size_t>(cats[b + order[q - 1]])] > r) {
        order[q] = order[q - 1];
        --q;
      }
      order[q] = static_cast<std::uint32_t>(i);
    }
    const CounterStream vs = rng.substream(v);
    std::uint64_t k = 0;
    const TableRef* tabs = tables_.tables();
    const AliasEntry* entries = tables_.entries();
    const std::size_t n_cat = base_->n_categories();
    for (std::size_t i = 0; i < len; ++i) {
      const std::size_t p = b + order[i];
      const auto c = static_cast<std::size_t>(cats[p]);
      std::uint32_t best = ContextLookup::kNone;
      const void* best_slot = nullptr;
      if (lookup_.has(c))
        for (std::size_t j = 0; j < i; ++j) {
          const void* slot = nullptr;
          const std::uint32_t start = lookup_.find(c, sc.drawn[j], slot);
          if (start < best) {
            best = start;
            best_slot = slot;
          }
        }
      const TableRef t = best != ContextLookup::kNone ? ContextLookup::ref(best_slot)
                                                      : tabs[stratum * n_cat + c];
      std::int32_t code = AliasTableSet::draw(t, entries, vs(k++));
      if (sc.mark[static_cast<std::size_t>(code)] == stamp) {
        bool found = false;
        for (int r = 0; r < CategoryIndex::kMaxRejections && !found; ++r) {
          code = AliasTableSet::draw(t, entries, vs(k++));
          found = sc.mark[static_cast<std::size_t>(code)] != stamp;
        }
        if (!found) {
          // Exact draw among the codes not drawn yet, in proportion to their weight.
          const double* w = tables_.effective_weights() + t.start;
          double total = 0.0;
          for (std::uint32_t j = 0; j < t.size; ++j)
            if (sc.mark[static_cast<std::size_t>(t.base) + j] != stamp) total += w[j];
          if (total > 0.0) {
            const double u = unit_double(vs(k++)) * total;
            double acc = 0.0;
            std::int32_t last = -1;
            for (std::uint32_t j = 0; j < t.size; ++j) {
              const std::int32_t cj = t.base + static_cast<std::int32_t>(j);
              if (sc.mark[static_cast<std::size_t>(cj)] == stamp || !(w[j] > 0.0)) continue;
              last = cj;
              acc += w[j];
              if (u < acc) break;
            }
            code = last;
          } else if (best != ContextLookup::kNone) {
            // The context table is exhausted: fall back to the stratum table.
            const TableRef& ts = tabs[stratum * n_cat + c];
            const double* ws = tables_.effective_weights() + ts.start;
            double tot = 0.0;
            for (std::uint32_t j = 0; j < ts.size; ++j)
              if (sc.mark[static_cast<std::size_t>(ts.base) + j] != stamp) tot += ws[j];
            if (tot > 0.0) {
              const double u = unit_double(vs(k++)) * tot;
              double acc = 0.0;
              std::int32_t last = -1;
              for (std::uint32_t j = 0; j < ts.size; ++j) {
                const std::int32_t cj = ts.base + static_cast<std::int32_t>(j);
                if (sc.mark[static_cast<std::size_t>(cj)] == stamp || !(ws[j] > 0.0)) continue;
                last = cj;
                acc += ws[j];
                if (u < acc) break;
              }
              code = last;
            } else if (exhausted == ExhaustedPolicy::kError) {
              return p;
            } else {
              code = AliasTableSet::draw(t, entries, vs(k++));
            }
          } else if (exhausted == ExhaustedPolicy::kError) {
            return p;
          } else {
            code = AliasTableSet::draw(t, entries, vs(k++));  // with replacement
          }
        }
      }
      sc.mark[static_cast<std::size_t>(code)] = stamp;
      sc.drawn[i] = code;
      out[p] = code;
      for (std::size_t j = i + 1; j < len; ++j)
        lookup_.prefetch(static_cast<std::size_t>(cats[b + order[j]]), code);
    }
    return kOk;
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
  std::vector<std::int32_t> rank_;
  std::size_t n_tables_ = 0;
};

}  // namespace hiergen
