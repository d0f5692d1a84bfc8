#include "decode_ahead.h"

#include <algorithm>

namespace splitstream::pipeline {
namespace {

void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace

Status DecodeMessage(debezium::Decoder& decoder, const kafka::Message& message,
                     debezium::ChangeRecord* out) {
  Status decoded = decoder.DecodeInto(message.topic(), message.key(), message.value(), out);
  if (decoded.ok()) return decoded;
  std::string what = decoded.message();
  if (!decoded.field().empty()) what += " (field " + decoded.field() + ")";
  return Status::InvalidArgument("decode: " + what);
}

DecodeAhead::DecodeAhead(debezium::DecoderOptions options, debezium::Decoder* sink_decoder)
    : slots_(std::make_unique<Slot[]>(kCapacity)), options_(options), decoder_(sink_decoder) {
  worker_ = std::thread([this] { Work(); });
}

DecodeAhead::~DecodeAhead() {
  {
    std::lock_guard lock(mu_);
    stop_.store(true);
  }
  work_cv_.notify_one();
  worker_.join();
}

size_t DecodeAhead::Announce(std::span<const kafka::Message* const> upcoming) {
  const uint64_t tail = tail_.load(std::memory_order_relaxed);
  const size_t n = std::min<size_t>(upcoming.size(), kCapacity - (tail - head_));
  if (n == 0) return 0;
  for (size_t k = 0; k < n; ++k) {
    const kafka::Message& m = *upcoming[k];
    Slot& s = At(tail + k);
    s.message = &m;
    s.topic.assign(m.topic());
    s.partition = m.partition();
    s.offset = m.offset();
    s.ready.store(false, std::memory_order_relaxed);
  }
  tail_.store(tail + n, std::memory_order_release);
  { std::lock_guard lock(mu_); }  // a worker between its check and its wait gets the notify
  work_cv_.notify_one();
  return n;
}

bool DecodeAhead::Claim(uint64_t* begin, uint64_t* end) {
  uint64_t c = claim_.load(std::memory_order_acquire);
  for (;;) {
    const uint64_t t = tail_.load(std::memory_order_acquire);
    if (c >= t) return false;
    const uint64_t e = std::min<uint64_t>(c + kRun, t);
    if (claim_.compare_exchange_weak(c, e, std::memory_order_acq_rel)) {
      *begin = c;
      *end = e;
      return true;
    }
  }
}

void DecodeAhead::DecodeRun(debezium::Decoder& decoder, uint64_t begin, uint64_t end) {
  for (uint64_t i = begin; i < end; ++i) {
    Slot& s = At(i);
    s.status = DecodeMessage(decoder, *s.message, &s.record);
    s.message = nullptr;
    s.ready.store(true, std::memory_order_seq_cst);
    if (waiting_.load(std::memory_order_seq_cst)) {
      { std::lock_guard lock(mu_); }
      ready_cv_.notify_one();
    }
  }
}

void DecodeAhead::Complete(uint64_t i) {
  Slot& s = At(i);
  while (!s.ready.load(std::memory_order_acquire)) {
    // Decodes the next unclaimed run: slot i's, or (while the worker decodes slot i) a later one.
    uint64_t begin, end;
    if (Claim(&begin, &end)) {
      DecodeRun(*decoder_, begin, end);
      continue;
    }
    // Everything is claimed and the worker is decoding slot i: a run takes tens of
    // microseconds, unless the worker was preempted.
    for (int spin = 0; spin < 1000 && !s.ready.load(std::memory_order_acquire); ++spin) {
      CpuRelax();
    }
    if (s.ready.load(std::memory_order_acquire)) break;
    std::unique_lock lock(mu_);
    waiting_.store(true, std::memory_order_seq_cst);
    ready_cv_.wait(lock, [&] { return s.ready.load(std::memory_order_seq_cst); });
    waiting_.store(false, std::memory_order_relaxed);
  }
}

DecodeAhead::Slot* DecodeAhead::Front(const kafka::Message& m) {
  if (head_ == tail_.load(std::memory_order_relaxed)) return nullptr;
  Slot& s = At(head_);
  if (s.partition != m.partition() || s.offset != m.offset() || s.topic != m.topic()) {
    Settle();
    head_ = tail_.load(std::memory_order_relaxed);
    return nullptr;
  }
  Complete(head_);
  return &s;
}

void DecodeAhead::Settle() {
  const uint64_t tail = tail_.load(std::memory_order_relaxed);
  for (uint64_t i = head_; i < tail; ++i) Complete(i);
}

void DecodeAhead::Work() {
  debezium::Decoder decoder(options_);
  while (!stop_.load()) {
    uint64_t begin, end;
    if (Claim(&begin, &end)) {
      DecodeRun(decoder, begin, end);
      continue;
    }
    std::unique_lock lock(mu_);
    work_cv_.wait(lock, [&] {
      return stop_.load() ||
             claim_.load(std::memory_order_acquire) < tail_.load(std::memory_order_acquire);
    });
  }
}

}  // namespace splitstream::pipeline
