#include "hiergen/category_index.hpp"

#include <cmath>
#include <sstream>

namespace hiergen {

void fail(const std::string& message) { throw std::invalid_argument(message); }

namespace {
std::string fmt_double(double x) {
  std::ostringstream os;
  os << x;
  return os.str();
}
}  // namespace

CategoryIndex::CategoryIndex(std::vector<std::int64_t> offsets, const double* weights,
                             std::size_t n_strata, std::size_t n_codes,
                             ZeroWeightPolicy policy)
    : offsets_(std::move(offsets)), policy_(policy) {
  if (offsets_.size() < 2)
    fail("offsets: needs at least 2 entries (one category), got " +
         std::to_string(offsets_.size()));
  if (offsets_[0] != 0)
    fail("offsets: must start at 0, got offsets[0] = " + std::to_string(offsets_[0]));
  for (std::size_t c = 0; c + 1 < offsets_.size(); ++c) {
    if (offsets_[c + 1] < offsets_[c])
      fail("offsets: not monotonic, offsets[" + std::to_string(c) + "] = " +
           std::to_string(offsets_[c]) + " > offsets[" + std::to_string(c + 1) +
           "] = " + std::to_string(offsets_[c + 1]));
    if (offsets_[c + 1] == offsets_[c])
      fail("offsets: category " + std::to_string(c) + " is empty (offsets[" +
           std::to_string(c) + "] == offsets[" + std::to_string(c + 1) +
           "] == " + std::to_string(offsets_[c]) + ")");
  }
  if (n_codes > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
    fail("weights: at most 2^31 - 1 codes are supported, got " + std::to_string(n_codes));
  if (static_cast<std::uint64_t>(offsets_.back()) != n_codes)
    fail("offsets: last entry " + std::to_string(offsets_.back()) +
         " does not match the number of codes in weights (" + std::to_string(n_codes) + ")");
  build(weights, n_strata, n_codes);
}

void CategoryIndex::build(const double* weights, std::size_t n_strata, std::size_t n_codes) {
  if (n_strata == 0) fail("weights: needs at least one stratum (row), got 0");
  if (n_strata * n_codes > 0xFFFFFFFFull)
    fail("weights: n_strata x n_codes must be below 2^32, got " + std::to_string(n_strata) +
         " x " + std::to_string(n_codes));
  for (std::size_t s = 0; s < n_strata; ++s) {
    const double* row = weights + s * n_codes;
    for (std::size_t j = 0; j < n_codes; ++j) {
      const double w = row[j];
      if (!std::isfinite(w) || w < 0.0) {
        const std::string where = n_strata == 1 ? "weights[" + std::to_string(j) + "]"
                                                : "weights[" + std::to_string(s) + ", " +
                                                      std::to_string(j) + "]";
        fail(where + " = " + fmt_double(w) +
             (std::isfinite(w) ? " is negative" : " is not finite") +
             "; weights must be finite and >= 0");
      }
    }
  }
  n_strata_ = n_strata;
  n_codes_ = n_codes;
  weights_.assign(weights, weights + n_strata * n_codes);
  const std::size_t n_cat = n_categories();
  ranges_.resize(n_cat);
  for (std::size_t c = 0; c < n_cat; ++c)
    ranges_[c] = {static_cast<std::int32_t>(offsets_[c]),
                  static_cast<std::uint32_t>(offsets_[c + 1] - offsets_[c])};
  tables_ = AliasTableSet();
  tables_.reserve(n_strata * n_cat, n_strata * n_codes);
  for (std::size_t s = 0; s < n_strata; ++s) {
    for (std::size_t c = 0; c < n_cat; ++c) {
      const auto b = static_cast<std::size_t>(offsets_[c]);
      const auto size = static_cast<std::uint32_t>(offsets_[c + 1] - offsets_[c]);
      const std::int64_t id = tables_.add_table(weights_.data() + s * n_codes + b, size,
                                                static_cast<std::int32_t>(b), policy_);
      if (id < 0)
        fail("weights: category " + std::to_string(c) + " (codes " + std::to_string(b) + ".." +
             std::to_string(b + size - 1) + ") has only zero weights" +
             (n_strata > 1 ? " in stratum " + std::to_string(s) : std::string()) +
             "; pass zero_weight='uniform' to draw uniformly in such categories");
    }
  }
}

CategoryIndex CategoryIndex::with_weights(const double* weights, std::size_t n_strata,
                                          std::size_t n_codes) const {
  if (n_codes != n_codes_)
    fail("weights: expected " + std::to_string(n_codes_) + " codes per row, got " +
         std::to_string(n_codes));
  CategoryIndex out;
  out.offsets_ = offsets_;
  out.policy_ = policy_;
  out.build(weights, n_strata, n_codes);
  return out;
}

unsigned CategoryIndex::thread_count(unsigned requested, std::size_t n,
                                     std::size_t n_chunks) const {
  unsigned t = requested;
  if (t == 0) t = n < kParallelMin ? 1u : default_thread_count();
  if (n_chunks < t) t = static_cast<unsigned>(n_chunks);
  return t < 1 ? 1u : t;
}

void CategoryIndex::check_visit_offsets(const std::int64_t* visit_offsets, std::size_t n_visits,
                                        std::size_t n) const {
  if (visit_offsets[0] != 0)
    fail("visit_offsets: must start at 0, got visit_offsets[0] = " +
         std::to_string(visit_offsets[0]));
  // Branch-free scan first (it vectorises); find the first bad entry only when there is one.
  bool decreasing = false;
  for (std::size_t v = 0; v < n_visits; ++v)
    decreasing |= visit_offsets[v + 1] < visit_offsets[v];
  for (std::size_t v = 0; decreasing && v < n_visits; ++v) {
    if (visit_offsets[v + 1] < visit_offsets[v])
      fail("visit_offsets: not monotonic, visit_offsets[" + std::to_string(v) +
           "] = " + std::to_string(visit_offsets[v]) + " > visit_offsets[" +
           std::to_string(v + 1) + "] = " + std::to_string(visit_offsets[v + 1]));
  }
  if (static_cast<std::uint64_t>(visit_offsets[n_visits]) != n)
    fail("visit_offsets: last entry " + std::to_string(visit_offsets[n_visits]) +
         " does not match the length of categories (" + std::to_string(n) + ")");
}

Redraw redraw_rejecting(const TableRef& t, const AliasEntry* entries, const std::uint32_t* mark,
                        std::uint32_t stamp, CounterStream vs, std::uint64_t k,
                        int max_rejections) {
  for (int r = 0; r < max_rejections; ++r) {
    const std::int32_t code = AliasTableSet::draw(t, entries, vs(k++));
    if (mark[code] != stamp) return {code, k};
  }
  return {-1, k};
}

Redraw draw_left(const TableRef& t, const double* eff, const std::uint32_t* mark,
                 std::uint32_t stamp, CounterStream vs, std::uint64_t k) {
  const double* w = eff + t.start;
  double total = 0.0;
  for (std::uint32_t j = 0; j < t.size; ++j)
    if (mark[t.base + static_cast<std::int32_t>(j)] != stamp) total += w[j];
  if (!(total > 0.0)) return {-1, k};
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
  return {last_positive, k};  // rounding: fall back to the last candidate
}

Redraw redraw_distinct(const TableRef& t, const AliasEntry* entries, const double* eff,
                       const std::uint32_t* mark, std::uint32_t stamp, CounterStream vs,
                       std::uint64_t k, ExhaustedPolicy exhausted) {
  Redraw r = redraw_rejecting(t, entries, mark, stamp, vs, k, CategoryIndex::kMaxRejections);
  if (r.code >= 0) return r;
  r = draw_left(t, eff, mark, stamp, vs, r.k);
  if (r.code >= 0 || exhausted == ExhaustedPolicy::kError) return r;
  return {AliasTableSet::draw(t, entries, vs(r.k)), r.k + 1};  // with replacement
}

void CategoryIndex::throw_bad_category(std::size_t i, std::int64_t c) const {
  fail("categories[" + std::to_string(i) + "] = " + std::to_string(c) +
       (c < 0 ? " is negative" : " is out of range") + "; the index has " +
       std::to_string(n_categories()) + " categories (ids 0.." +
       std::to_string(n_categories() - 1) + ")");
}

void CategoryIndex::throw_bad_stratum(const char* where, std::size_t i, std::int64_t s) const {
  const std::string at = i == std::numeric_limits<std::size_t>::max()
                             ? std::string(where)
                             : std::string(where) + "[" + std::to_string(i) + "]";
  fail(at + " = " + std::to_string(s) +
       (s < 0 ? " is negative" : " is out of range") + "; the index has " +
       std::to_string(n_strata_) + " strata (ids 0.." + std::to_string(n_strata_ - 1) + ")");
}

}  // namespace hiergen
