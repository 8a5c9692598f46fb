// 64-byte aligned float buffers: every zmm load of a packed weight or scratch row then stays inside one
// cache line (a split load costs two).
#pragma once
#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

namespace dupn {

template <typename T>
struct AlignedAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlign{64};
  AlignedAllocator() = default;
  template <typename U>
  AlignedAllocator(const AlignedAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlign)); }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, kAlign); }
  template <typename U>
  bool operator==(const AlignedAllocator<U>&) const noexcept { return true; }
  template <typename U>
  bool operator!=(const AlignedAllocator<U>&) const noexcept { return false; }
};

using AlignedFloats = std::vector<float, AlignedAllocator<float>>;
using AlignedPairs = std::vector<uint32_t, AlignedAllocator<uint32_t>>;  // bf16 pairs

// Scratch buffers: grows `v` to at least n elements and never shrinks it, so warm calls do not allocate.
template <typename V>
typename V::value_type* grow(V& v, std::size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

}  // namespace dupn
