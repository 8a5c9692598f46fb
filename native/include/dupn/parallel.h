// Splitting work across threads. Work items are claimed from a shared counter so uneven items (users
// of different lengths) balance themselves; with one thread everything runs on the caller's thread.
#pragma once
#include <atomic>
#include <functional>
#include <thread>
#include <vector>

namespace dupn {

// Calls fn(worker, item) for every item in [0, items), on up to `threads` threads.
inline void parallel_for(int items, int threads, const std::function<void(int, int)>& fn) {
  if (threads > items) threads = items;
  if (threads <= 1) {
    for (int i = 0; i < items; ++i) fn(0, i);
    return;
  }
  std::atomic<int> next{0};
  auto run = [&](int worker) {
    for (int i = next.fetch_add(1); i < items; i = next.fetch_add(1)) fn(worker, i);
  };
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (int w = 1; w < threads; ++w) pool.emplace_back(run, w);
  run(0);
  for (auto& t : pool) t.join();
}

}  // namespace dupn
