// The process-wide compute pool: a fixed set of threads that every model shares, so concurrent calls
// never oversubscribe the cores (libuv's threads only submit work and take part as worker 0). Jobs run
// one at a time; inside a job, items are claimed from a shared counter so uneven items balance out.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace dupn {

class ThreadPool {
 public:
  static ThreadPool& instance();

  // Calls fn(worker, item) for every item in [0, items) on up to `threads` threads (the caller is
  // worker 0, so worker < threads). Returns when all items are done. Not reentrant from inside fn.
  void run(int items, int threads, const std::function<void(int, int)>& fn);

  // Threads created so far (grows to the largest `threads` asked for, minus the caller).
  int size() const;

  ~ThreadPool();

 private:
  ThreadPool() = default;
  void ensure(int workers);
  void worker_loop(int index);

  std::mutex job_mutex_;  // one job at a time
  mutable std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> threads_;
  const std::function<void(int, int)>* fn_ = nullptr;
  int items_ = 0;
  int participants_ = 0;  // pool workers taking part in the current job
  int finished_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
  std::atomic<int> next_{0};
};

// Calls fn(worker, item) for every item in [0, items) on up to `threads` threads of the shared pool;
// with one thread (or one item) everything runs on the caller's thread.
inline void parallel_for(int items, int threads, const std::function<void(int, int)>& fn) {
  if (threads > items) threads = items;
  if (threads <= 1) {
    for (int i = 0; i < items; ++i) fn(0, i);
    return;
  }
  ThreadPool::instance().run(items, threads, fn);
}

}  // namespace dupn
