// The process-wide compute pool: a fixed set of threads that every model shares, so concurrent calls
// never oversubscribe the cores and never occupy libuv's threads (which file I/O and DNS need). Async
// calls are queued to the pool's dispatcher threads (one per core), each running one call at a time as
// that call's worker 0; calls that want more threads take turns on the shared workers. Inside a job,
// items are claimed from a shared counter so uneven items balance out.
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

  // Queues `task` for a dispatcher thread (FIFO); it may call run() / parallel_for.
  void submit(std::function<void()> task);

  ~ThreadPool();

 private:
  ThreadPool() = default;
  void ensure(int workers);
  void worker_loop(int index);
  void dispatcher_loop();

  std::mutex job_mutex_;  // one job at a time
  mutable std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> threads_;
  const std::function<void(int, int)>* fn_ = nullptr;
  int items_ = 0;
  int participants_ = 0;  // pool workers taking part in the current job
  std::atomic<int> finished_{0};  // written under mutex_; read without it while the caller spins
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
  std::atomic<int> next_{0};

  std::mutex queue_mutex_;
  std::condition_variable queue_cv_;
  std::vector<std::function<void()>> queue_;
  std::atomic<int> queued_{0};  // queue_.size(), readable without the lock while spinning
  std::vector<std::thread> dispatchers_;
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
