// Drawing one token per row of a logits matrix (float32 [rows, V]): temperature, top-k and
// exact top-p (nucleus), each row's uniform number taken from a counter-based stream keyed by
// (seed, stream id, step), so a row's draw depends only on its own logits and key, never on
// the other rows, their order, the batch size or the thread count.
//
// Per row: one pass finds the largest allowed logit, one computes exp((x - max) / T) into a
// scratch row with 16-element block sums, and the draw walks the block sums and then one block
// (inverse CDF). Top-k and top-p need no full sort: the k best (by logit, then lowest column)
// come from a selection, and the nucleus (the smallest set of most likely tokens whose mass
// reaches top_p) from a quickselect-style partition on mass; the chosen set is then described
// by its worst member, and the draw walks the columns in order over the members.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define HIERGEN_LOGITS_SSE2 1
#endif

#include "hiergen/parallel.hpp"
#include "hiergen/rng.hpp"

namespace hiergen {

/// Domain tag of the logits streams ("LOGITS"): equal seeds elsewhere give unrelated streams.
inline constexpr std::uint64_t kLogitsDomain = 0x4C4F47495453ULL;

struct LogitsOptions {
  double temperature = 1.0;   ///< 0 = greedy (argmax)
  std::int64_t top_k = 0;     ///< 0 = off
  double top_p = 1.0;         ///< 1 = off
  std::int64_t floor_start = 0;  ///< columns floor_start .. floor[row]-1 are forbidden
};

/// The uniform number in [0, 1) of (seed, stream, step).
inline double logits_uniform(std::uint64_t seed, std::uint64_t stream, std::uint64_t step) noexcept {
  return unit_double(CounterStream::from_seed(seed, kLogitsDomain).substream(stream)(step));
}

namespace detail {

/// exp(x) for x <= 0 (x = -inf gives a tiny positive number: callers zero forbidden columns).
/// Branch-free so that loops over it vectorise; relative error about 2e-7.
inline float exp_nonpos(float x) noexcept {
  x = x < -87.0f ? -87.0f : x;
  const float t = x * 1.44269504088896341f;
  const auto n = static_cast<std::int32_t>(t - 0.5f);  // t <= 0: rounds to nearest
  const float y = (t - static_cast<float>(n)) * 0.693147180559945309f;  // |y| <= ln2 / 2
  float p = 1.0f / 720.0f;
  p = p * y + 1.0f / 120.0f;
  p = p * y + 1.0f / 24.0f;
  p = p * y + 1.0f / 6.0f;
  p = p * y + 0.5f;
  p = p * y + 1.0f;
  p = p * y + 1.0f;
  std::int32_t bits;
  std::memcpy(&bits, &p, sizeof bits);
  bits += static_cast<std::int32_t>(static_cast<std::uint32_t>(n) << 23);
  std::memcpy(&p, &bits, sizeof p);
  return p;
}

#ifdef HIERGEN_LOGITS_SSE2
/// Four lanes of exp_nonpos, the same operations in the same order.
inline __m128 exp_nonpos4(__m128 x) noexcept {
  x = _mm_max_ps(x, _mm_set1_ps(-87.0f));
  const __m128 t = _mm_mul_ps(x, _mm_set1_ps(1.44269504088896341f));
  const __m128i n = _mm_cvttps_epi32(_mm_sub_ps(t, _mm_set1_ps(0.5f)));
  const __m128 y = _mm_mul_ps(_mm_sub_ps(t, _mm_cvtepi32_ps(n)),
                              _mm_set1_ps(0.693147180559945309f));
  __m128 p = _mm_set1_ps(1.0f / 720.0f);
  p = _mm_add_ps(_mm_mul_ps(p, y), _mm_set1_ps(1.0f / 120.0f));
  p = _mm_add_ps(_mm_mul_ps(p, y), _mm_set1_ps(1.0f / 24.0f));
  p = _mm_add_ps(_mm_mul_ps(p, y), _mm_set1_ps(1.0f / 6.0f));
  p = _mm_add_ps(_mm_mul_ps(p, y), _mm_set1_ps(0.5f));
  p = _mm_add_ps(_mm_mul_ps(p, y), _mm_set1_ps(1.0f));
  p = _mm_add_ps(_mm_mul_ps(p, y), _mm_set1_ps(1.0f));
  return _mm_castsi128_ps(_mm_add_epi32(_mm_castps_si128(p), _mm_slli_epi32(n, 23)));
}
#endif

struct Cand {
  float x;         ///< logit (ordering key, ties broken by the lower column)
  std::int32_t j;  ///< column
  float w;         ///< unnormalised probability
};

inline bool better(const Cand& a, const Cand& b) noexcept {
  return a.x > b.x || (a.x == b.x && a.j < b.j);
}

/// The worst member of the nucleus of c[0, n) (distinct keys): the smallest set of best
/// candidates whose mass reaches `target`. Reorders c.
inline Cand nucleus_threshold(Cand* c, std::size_t n, double target) {
  std::size_t lo = 0, hi = n;
  double taken = 0.0;
  while (true) {
    if (hi - lo <= 32) {
      std::sort(c + lo, c + hi, better);
      for (std::size_t i = lo; i < hi; ++i) {
        taken += c[i].w;
        if (taken >= target) return c[i];
      }
      return c[hi - 1];  // rounding: everything
    }
    // Median of three as pivot: the worst of the three stays out of the front part, and
    // the pivot itself is in it, so both branches make progress.
    Cand a = c[lo], b = c[lo + (hi - lo) / 2], d = c[hi - 1];
    if (better(b, a)) std::swap(a, b);
    if (better(d, b)) std::swap(b, d);
    if (better(b, a)) std::swap(a, b);
    const Cand pivot = b;
    std::size_t mid = lo;
    double mass = 0.0;
    for (std::size_t i = lo; i < hi; ++i) {
      if (!better(pivot, c[i])) {  // c[i] is the pivot or better
        mass += c[i].w;
        std::swap(c[i], c[mid]);
        ++mid;
      }
    }
    if (taken + mass >= target) {
      hi = mid;
    } else {
      taken += mass;
      lo = mid;
    }
  }
}

}  // namespace detail

/// Scratch space for sampling rows of one width; one per thread.
class LogitsRowSampler {
 public:
  static constexpr std::size_t kBlock = 16;

  explicit LogitsRowSampler(std::size_t n_cols)
      : n_(n_cols), w_(round_up(n_cols)), block_(round_up(n_cols) / kBlock) {}

  /// Token for one row, or -1 when no column is allowed (all forbidden or -inf).
  /// Allowed: columns [0, floor_start) and [max(floor_start, floor), n) whose logit is not
  /// -inf or NaN. A +inf logit is an error.
  std::int64_t sample(const float* x, std::int64_t floor, double u, const LogitsOptions& o) {
    const std::size_t n = n_;
    const std::size_t a_end = static_cast<std::size_t>(std::clamp<std::int64_t>(
        o.floor_start, 0, static_cast<std::int64_t>(n)));
    const std::size_t b_begin = static_cast<std::size_t>(std::clamp<std::int64_t>(
        std::max(floor, o.floor_start), 0, static_cast<std::int64_t>(n)));
    // Pass 1: the largest allowed logit.
    const float m = std::max(range_max(x, 0, a_end), range_max(x, b_begin, n));
    if (!(m > -std::numeric_limits<float>::infinity())) return -1;
    if (m == std::numeric_limits<float>::infinity())
      throw std::invalid_argument("logits: +inf is not a valid logit");
    if (o.temperature == 0.0) return first_equal(x, a_end, b_begin, m);
    // Pass 2: unnormalised probabilities (0 for forbidden columns) and block sums.
    const float inv_t = static_cast<float>(1.0 / o.temperature);
    float* w = w_.data();
    std::fill(w, w + w_.size(), 0.0f);
    fill_exp(x, w, 0, a_end, m, inv_t);
    fill_exp(x, w, b_begin, n, m, inv_t);
    const bool use_k = o.top_k > 0 && static_cast<std::size_t>(o.top_k) < n;
    if (!use_k && o.top_p >= 1.0) return draw_all(w, u);
    return draw_truncated(x, w, a_end, b_begin, u, o);
  }

 private:
  static std::size_t round_up(std::size_t n) { return (n + kBlock - 1) / kBlock * kBlock; }

  static float range_max(const float* x, std::size_t begin, std::size_t end) noexcept {
    float m = -std::numeric_limits<float>::infinity();
    std::size_t j = begin;
#ifdef HIERGEN_LOGITS_SSE2
    // maxps returns its second operand when the first is NaN: NaN logits are skipped.
    __m128 a = _mm_set1_ps(m), b = a;
    for (; j + 8 <= end; j += 8) {
      a = _mm_max_ps(_mm_loadu_ps(x + j), a);
      b = _mm_max_ps(_mm_loadu_ps(x + j + 4), b);
    }
    float lane[4];
    _mm_storeu_ps(lane, _mm_max_ps(a, b));
    for (float l : lane) m = l > m ? l : m;
#endif
    for (; j < end; ++j) m = x[j] > m ? x[j] : m;
    return m;
  }

  static std::int64_t first_equal(const float* x, std::size_t a_end, std::size_t b_begin,
                                  float m) noexcept {
    for (std::size_t j = 0; j < a_end; ++j)
      if (x[j] == m) return static_cast<std::int64_t>(j);
    for (std::size_t j = b_begin;; ++j)
      if (x[j] == m) return static_cast<std::int64_t>(j);
  }

  static void fill_exp(const float* x, float* w, std::size_t begin, std::size_t end, float m,
                       float inv_t) noexcept {
    const float ninf = -std::numeric_limits<float>::infinity();
    std::size_t j = begin;
#ifdef HIERGEN_LOGITS_SSE2
    const __m128 vm = _mm_set1_ps(m), vt = _mm_set1_ps(inv_t), vninf = _mm_set1_ps(ninf);
    for (; j + 4 <= end; j += 4) {
      const __m128 v = _mm_loadu_ps(x + j);
      const __m128 e = detail::exp_nonpos4(_mm_mul_ps(_mm_sub_ps(v, vm), vt));
      _mm_storeu_ps(w + j, _mm_and_ps(_mm_cmpgt_ps(v, vninf), e));  // 0 for -inf and NaN
    }
#endif
    for (; j < end; ++j) {
      const float e = detail::exp_nonpos((x[j] - m) * inv_t);
      w[j] = x[j] > ninf ? e : 0.0f;
    }
  }

  static float block_max(const float* w) noexcept {
#ifdef HIERGEN_LOGITS_SSE2
    const __m128 a = _mm_max_ps(_mm_loadu_ps(w), _mm_loadu_ps(w + 8));
    const __m128 b = _mm_max_ps(_mm_loadu_ps(w + 4), _mm_loadu_ps(w + 12));
    float l[4];
    _mm_storeu_ps(l, _mm_max_ps(a, b));
    return std::max(std::max(l[0], l[1]), std::max(l[2], l[3]));
#else
    float m = 0.0f;
    for (std::size_t i = 0; i < kBlock; ++i) m = w[i] > m ? w[i] : m;
    return m;
#endif
  }

  /// A threshold t such that the columns with w >= t hold at least `target` (so they contain
  /// the nucleus), as high as a few fixed levels allow; the smallest positive float if none.
  float nucleus_bound(const float* w, double target) const noexcept {
    static constexpr float kLevels[6] = {0.5f, 0.2f, 0.05f, 0.01f, 1e-3f, 1e-5f};
    float acc[6] = {0, 0, 0, 0, 0, 0};
    const std::size_t n = w_.size();
#ifdef HIERGEN_LOGITS_SSE2
    __m128 va[6];
    for (auto& v : va) v = _mm_setzero_ps();
    for (std::size_t j = 0; j < n; j += 4) {
      const __m128 v = _mm_loadu_ps(w + j);
      for (int i = 0; i < 6; ++i)
        va[i] = _mm_add_ps(va[i], _mm_and_ps(_mm_cmpge_ps(v, _mm_set1_ps(kLevels[i])), v));
    }
    for (int i = 0; i < 6; ++i) {
      float l[4];
      _mm_storeu_ps(l, va[i]);
      acc[i] = (l[0] + l[2]) + (l[1] + l[3]);
    }
#else
    for (std::size_t j = 0; j < n; ++j)
      for (int i = 0; i < 6; ++i) acc[i] += w[j] >= kLevels[i] ? w[j] : 0.0f;
#endif
    // A margin for float rounding: the bound must not cut into the nucleus.
    for (int i = 0; i < 6; ++i)
      if (static_cast<double>(acc[i]) >= target * (1.0 + 1e-4) + 1e-30) return kLevels[i];
    return std::numeric_limits<float>::min();
  }

  static float block_sum(const float* w) noexcept {
#ifdef HIERGEN_LOGITS_SSE2
    __m128 a = _mm_add_ps(_mm_loadu_ps(w), _mm_loadu_ps(w + 8));
    const __m128 b = _mm_add_ps(_mm_loadu_ps(w + 4), _mm_loadu_ps(w + 12));
    a = _mm_add_ps(a, b);
    float l[4];
    _mm_storeu_ps(l, a);
    return (l[0] + l[2]) + (l[1] + l[3]);
#else
    float l[4];
    for (int i = 0; i < 4; ++i) l[i] = (w[i] + w[i + 8]) + (w[i + 4] + w[i + 12]);
    return (l[0] + l[2]) + (l[1] + l[3]);
#endif
  }

  /// Inverse CDF over all columns of w (block sums first, then one block).
  std::int64_t draw_all(const float* w, double u) {
    const std::size_t nb = block_.size();
    double total = 0.0;
    for (std::size_t b = 0; b < nb; ++b) {
      block_[b] = block_sum(w + b * kBlock);
      total += block_[b];
    }
    const double target = u * total;
    double acc = 0.0;
    std::size_t b = 0;
    for (; b < nb; ++b) {
      if (acc + block_[b] > target) break;
      acc += block_[b];
    }
    if (b < nb) {
      for (std::size_t j = b * kBlock; j < (b + 1) * kBlock; ++j) {
        acc += w[j];
        if (acc > target && w[j] > 0.0f) return static_cast<std::int64_t>(j);
      }
    }
    return last_positive(w, n_);  // rounding at the very end
  }

  static std::int64_t last_positive(const float* w, std::size_t n) noexcept {
    for (std::size_t j = n; j-- > 0;)
      if (w[j] > 0.0f) return static_cast<std::int64_t>(j);
    return -1;
  }

  std::int64_t draw_truncated(const float* x, const float* w, std::size_t a_end,
                              std::size_t b_begin, double u, const LogitsOptions& o) {
    // Candidates: a cheap superset of the chosen set, found with vectorised passes (w is
    // monotone in the logit and the largest w is exactly 1).
    const std::size_t nb = block_.size();
    const bool use_k = o.top_k > 0 && static_cast<std::size_t>(o.top_k) < n_;
    float tau = std::numeric_limits<float>::min();
    double mass = 0.0;
    if (use_k) {
      // The k-th largest block maximum: at least k columns reach it, so the k best do.
      const auto k = static_cast<std::size_t>(o.top_k);
      tmp_.clear();
      for (std::size_t b = 0; b < nb; ++b) {
        const float bm = block_max(w + b * kBlock);
        if (bm > 0.0f) tmp_.push_back(bm);
      }
      if (tmp_.size() > k) {
        std::nth_element(tmp_.begin(), tmp_.begin() + static_cast<std::ptrdiff_t>(k - 1),
                         tmp_.end(), std::greater<float>());
        tau = std::max(tau, tmp_[k - 1]);
      }
    } else {
      double total = 0.0;
      for (std::size_t b = 0; b < nb; ++b) total += block_sum(w + b * kBlock);
      mass = total;
      tau = nucleus_bound(w, o.top_p * total);
    }
    cand_.clear();
    auto add = [&](std::size_t begin, std::size_t end) {
      for (std::size_t j = begin; j < end; ++j)
        if (w[j] >= tau) cand_.push_back({x[j], static_cast<std::int32_t>(j), w[j]});
    };
    add(0, a_end);
    add(b_begin, n_);
    if (cand_.empty()) return -1;
    order_.assign(cand_.begin(), cand_.end());
    std::size_t n = cand_.size();
    detail::Cand worst{};
    bool have_worst = false;
    if (use_k) {
      const auto k = static_cast<std::size_t>(o.top_k);
      if (k < n) {
        std::nth_element(cand_.begin(), cand_.begin() + static_cast<std::ptrdiff_t>(k - 1),
                         cand_.end(), detail::better);
        worst = cand_[k - 1];
        have_worst = true;
        n = k;  // the k best are cand_[0, k)
      }
      for (std::size_t i = 0; i < n; ++i) mass += cand_[i].w;
    }
    if (o.top_p < 1.0) {
      worst = detail::nucleus_threshold(cand_.data(), n, o.top_p * mass);
      have_worst = true;
    }
    if (!have_worst) return draw_all(w, u);
    // Members: candidates whose (logit, column) key is at least the worst member's, walked
    // in column order (the copy taken before the selections reordered them).
    double total = 0.0;
    for (const detail::Cand& c : order_)
      if (!detail::better(worst, c)) total += c.w;
    const double target = u * total;
    double acc = 0.0;
    std::int64_t last = worst.j;
    for (const detail::Cand& c : order_) {
      if (detail::better(worst, c)) continue;
      acc += c.w;
      last = c.j;
      if (acc > target) return last;
    }
    return last;
  }

  std::size_t n_;
  std::vector<float> w_;
  std::vector<float> block_;
  std::vector<detail::Cand> cand_;
  std::vector<detail::Cand> order_;
  std::vector<float> tmp_;
};

/// Check options; throws std::invalid_argument naming the argument.
inline void check_logits_options(const LogitsOptions& o, std::size_t n_cols) {
  if (!(o.temperature >= 0.0) || !std::isfinite(o.temperature))
    throw std::invalid_argument("temperature: must be finite and >= 0 (0 = greedy), got " +
                                std::to_string(o.temperature));
  if (o.top_k < 0)
    throw std::invalid_argument("top_k: must be >= 0 (0 = off), got " + std::to_string(o.top_k));
  if (!(o.top_p > 0.0 && o.top_p <= 1.0))
    throw std::invalid_argument("top_p: must be in (0, 1], got " + std::to_string(o.top_p));
  if (o.floor_start < 0 || static_cast<std::size_t>(o.floor_start) > n_cols)
    throw std::invalid_argument("floor_start: must be in [0, " + std::to_string(n_cols) +
                                "], got " + std::to_string(o.floor_start));
}

/// One token per row of `logits` (row-major [n_rows, n_cols]) into `out` (-1: nothing allowed).
/// `streams` (nullable: the row index) keys each row's random stream; `floors` (nullable: no
/// floor) forbids columns floor_start .. floors[r]-1 of row r. Output is independent of
/// `threads` (0 = choose).
inline void sample_logits(const float* logits, std::size_t n_rows, std::size_t n_cols,
                          const std::int64_t* streams, const std::int64_t* floors,
                          std::uint64_t seed, std::uint64_t step, const LogitsOptions& o,
                          std::int64_t* out, unsigned threads) {
  check_logits_options(o, n_cols);
  if (n_rows == 0) return;
  if (n_cols == 0) {
    std::fill(out, out + n_rows, std::int64_t{-1});
    return;
  }
  const CounterStream base = CounterStream::from_seed(seed, kLogitsDomain);
  constexpr std::size_t kChunk = 64;
  if (threads == 0) threads = n_rows * n_cols >= (1u << 18) ? default_thread_count() : 1u;
  threads = static_cast<unsigned>(
      std::min<std::size_t>(threads, (n_rows + kChunk - 1) / kChunk));
  ChunkQueue queue(n_rows, kChunk);
  run_threads(threads, [&](unsigned) {
    LogitsRowSampler row(n_cols);
    std::size_t begin, end;
    try {
      while (queue.pop(begin, end)) {
        for (std::size_t r = begin; r < end; ++r) {
          const std::uint64_t key =
              streams ? static_cast<std::uint64_t>(streams[r]) : static_cast<std::uint64_t>(r);
          const double u = unit_double(base.substream(key)(step));
          const std::int64_t floor = floors ? floors[r] : 0;
          out[r] = row.sample(logits + r * n_cols, floor, u, o);
        }
      }
    } catch (...) {
      queue.stop();
      throw;
    }
  });
}

}  // namespace hiergen
