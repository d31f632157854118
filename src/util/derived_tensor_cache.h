#pragma once
// Values derived from a tensor (a weight's packed copy, its positive part),
// kept while the tensor lives and is unchanged, so that a method called
// again on the same model does not derive them again.
//
// An entry is found by the tensor's identity and version counter plus a
// tag saying which derivation it holds: an in-place tensor operation on the
// source is seen; a write that bypasses the version counter (through
// data_ptr(), .data() or set_data()) is not. A weak reference lets the
// source go while keeping its address from being reused; a dead source's
// entries are dropped at the next look-up. Private to the library.
// Thread-safe; make() runs outside the lock.
#include <ATen/core/Tensor.h>
#include <c10/util/intrusive_ptr.h>

#include <cstddef>
#include <deque>
#include <mutex>
#include <utility>

namespace mipin {

template <class Tag, class Value>
class DerivedTensorCache {
 public:
  explicit DerivedTensorCache(size_t capacity) : capacity_(capacity) {}

  template <class Make>
  Value get(const at::Tensor& source, const Tag& tag, Make&& make) {
    // Inference-mode tensors have no version counter: derive every time.
    if (source.is_inference()) return make();
    const uint32_t version = source.unsafeGetTensorImpl()->version_counter().current_version();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto it = entries_.begin(); it != entries_.end();) {
        if (it->owner.expired()) {
          it = entries_.erase(it);
        } else if (it->owner._unsafe_get_target() == source.unsafeGetTensorImpl() && it->version == version &&
                   it->tag == tag) {
          return it->value;
        } else {
          ++it;
        }
      }
    }
    Value value = make();
    std::lock_guard<std::mutex> lock(mutex_);
    if (entries_.size() >= capacity_) entries_.pop_front();
    entries_.push_back({Weak(source.getIntrusivePtr()), version, tag, value});
    return value;
  }

  size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return entries_.size();
  }

 private:
  using Weak = c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>;
  struct Entry {
    Weak owner;
    uint32_t version;
    Tag tag;
    Value value;
  };
  size_t capacity_;
  mutable std::mutex mutex_;
  std::deque<Entry> entries_;
};

}  // namespace mipin
