// Minimal chunked parallelism: threads pull fixed-size chunks from a shared atomic counter,
// so a slower core simply takes fewer chunks. No pool: threads live for one call.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace hiergen {

/// Hands out [begin, end) chunks of 0 .. n in increasing order.
class ChunkQueue {
 public:
  ChunkQueue(std::size_t n, std::size_t chunk) noexcept : n_(n), chunk_(chunk ? chunk : 1) {}

  bool pop(std::size_t& begin, std::size_t& end) noexcept {
    if (stop_.load(std::memory_order_relaxed)) return false;
    const std::size_t b = next_.fetch_add(chunk_, std::memory_order_relaxed);
    if (b >= n_) return false;
    begin = b;
    end = std::min(n_, b + chunk_);
    return true;
  }

  /// Stop handing out chunks (chunks already handed out are finished by their thread).
  void stop() noexcept { stop_.store(true, std::memory_order_relaxed); }
  std::size_t n_chunks() const noexcept { return (n_ + chunk_ - 1) / chunk_; }

 private:
  std::size_t n_, chunk_;
  std::atomic<std::size_t> next_{0};
  std::atomic<bool> stop_{false};
};

/// Threads a call uses when the caller passes 0 ("choose for me").
inline unsigned default_thread_count() noexcept {
  const unsigned hw = std::thread::hardware_concurrency();
  return std::clamp(hw, 1u, 8u);
}

/// Run body(thread_index) on `threads` threads (the calling thread is thread 0) and rethrow
/// the first exception any of them raised.
template <class Body>
void run_threads(unsigned threads, Body&& body) {
  if (threads <= 1) {
    body(0u);
    return;
  }
  std::exception_ptr error;
  std::mutex error_mutex;
  auto guarded = [&](unsigned tid) {
    try {
      body(tid);
    } catch (...) {
      const std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  try {
    for (unsigned t = 1; t < threads; ++t) pool.emplace_back(guarded, t);
  } catch (...) {
    // Could not start a thread: the ones that did start (and this one) still do the work.
  }
  guarded(0u);
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace hiergen
