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
