#include "hiergen/alias_table.hpp"

#include <cmath>
#include <stdexcept>

namespace hiergen {

namespace {
constexpr double kTwo32 = 4294967296.0;

std::uint32_t threshold_of(double p) noexcept {
  // p in [0, 1): probability of keeping the column's own code.
  const double t = p * kTwo32;
  if (!(t > 0.0)) return 0u;
  if (t >= kTwo32 - 1.0) return 0xFFFFFFFFu;
  return static_cast<std::uint32_t>(t);
}
}  // namespace

void build_alias_table(const double* weights, std::uint32_t n, std::int32_t base,
                       AliasEntry* out, AliasScratch& scratch) {
  double total = 0.0;
  std::uint32_t heaviest = 0;
  for (std::uint32_t j = 0; j < n; ++j) {
    total += weights[j];
    if (weights[j] > weights[heaviest]) heaviest = j;
  }
  const std::int32_t heaviest_code = base + static_cast<std::int32_t>(heaviest);
  scratch.scaled.resize(n);
  scratch.small.clear();
  scratch.large.clear();
  const double scale = static_cast<double>(n) / total;
  for (std::uint32_t j = 0; j < n; ++j) {
    const double p = weights[j] * scale;
    scratch.scaled[j] = p;
    (p < 1.0 ? scratch.small : scratch.large).push_back(j);
  }
  // Vose: pair each light column with a heavy code that tops it up to 1.
  while (!scratch.small.empty() && !scratch.large.empty()) {
    const std::uint32_t s = scratch.small.back();
    scratch.small.pop_back();
    const std::uint32_t l = scratch.large.back();
    out[s] = {threshold_of(scratch.scaled[s]), base + static_cast<std::int32_t>(l)};
    const double rest = (scratch.scaled[l] + scratch.scaled[s]) - 1.0;
    scratch.scaled[l] = rest;
    if (rest < 1.0) {
      scratch.large.pop_back();
      scratch.small.push_back(l);
    }
  }
  // Leftovers hold probability 1 up to rounding: they keep their own code. A zero weight
  // left over by rounding must still never be drawn, so it points at the heaviest code.
  for (const std::uint32_t j : scratch.large)
    out[j] = {0xFFFFFFFFu, base + static_cast<std::int32_t>(j)};
  for (const std::uint32_t j : scratch.small) {
    if (weights[j] > 0.0)
      out[j] = {0xFFFFFFFFu, base + static_cast<std::int32_t>(j)};
    else
      out[j] = {0u, heaviest_code};
  }
}

void AliasTableSet::reserve(std::size_t n_tables, std::size_t n_entries) {
  tables_.reserve(n_tables);
  entries_.reserve(n_entries);
  weights_.reserve(n_entries);
}

std::int64_t AliasTableSet::add_table(const double* weights, std::uint32_t n, std::int32_t base,
                                      ZeroWeightPolicy policy) {
  if (n == 0) throw std::invalid_argument("alias table: empty code range");
  if (entries_.size() + n > 0xFFFFFFFFull)
    throw std::invalid_argument("alias table: more than 2^32 entries in all");
  std::uint32_t n_positive = 0;
  for (std::uint32_t j = 0; j < n; ++j) n_positive += weights[j] > 0.0 ? 1u : 0u;
  if (n_positive == 0 && policy == ZeroWeightPolicy::kError) return -1;

  const auto start = static_cast<std::uint32_t>(entries_.size());
  entries_.resize(entries_.size() + n);
  if (n_positive == 0) {
    weights_.insert(weights_.end(), n, 1.0);
    n_positive = n;
  } else {
    weights_.insert(weights_.end(), weights, weights + n);
  }
  build_alias_table(weights_.data() + start, n, base, entries_.data() + start, scratch_);
  tables_.push_back({start, n, base, n_positive});
  return static_cast<std::int64_t>(tables_.size() - 1);
}

}  // namespace hiergen
