// Decode-ahead for ChangeTarget: decodes the messages the sink announces (SinkTarget::Prepare)
// on a worker thread while the sink's thread encodes the ones before them into RowBinary.
//
// Announced messages sit in a ring of `kCapacity` slots, in announce order. The worker and the
// sink's thread both claim runs of up to `kRun` undecoded slots, in order, and decode them with
// their own debezium::Decoder; the sink's thread takes the front slot (`Front`), decoding
// runs itself when it is not decoded yet, so the work splits itself between the two by what each
// gets of the CPU. `Settle` decodes (or waits for) everything announced: after it no thread
// reads an announced message any more, which is what lets the sink drop or move messages
// between its drains.
//
// Not thread-safe: every method is called by the sink's thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>

#include "splitstream/core/status.h"
#include "splitstream/debezium/decoder.h"
#include "splitstream/kafka/kafka.h"

namespace splitstream::pipeline {

// Decodes one message into *out (reusing its storage); a message that does not decode is
// InvalidArgument "decode: <what> (field <path>)". Shared by the synchronous path.
Status DecodeMessage(debezium::Decoder& decoder, const kafka::Message& message,
                     debezium::ChangeRecord* out);

class DecodeAhead {
 public:
  static constexpr size_t kCapacity = 2048;
  static constexpr size_t kRun = 32;

  // A decoded message.
  struct Slot {
    const kafka::Message* message = nullptr;  // while announced and not decoded
    std::string topic;                        // identity of the announced message
    int32_t partition = -1;
    int64_t offset = -1;
    Status status;  // DecodeMessage's
    debezium::ChangeRecord record;
    std::atomic<bool> ready{false};
  };

  // Starts the worker, which decodes with `options`; the sink thread decodes its share with
  // `sink_decoder` (its owner's, also used for messages that were not announced).
  DecodeAhead(debezium::DecoderOptions options, debezium::Decoder* sink_decoder);
  ~DecodeAhead();  // stops it; call it only while nothing announced is undecoded (Settle)
  DecodeAhead(const DecodeAhead&) = delete;
  DecodeAhead& operator=(const DecodeAhead&) = delete;

  // Announces a prefix of `upcoming` (as many as the ring has room for); returns its length.
  size_t Announce(std::span<const kafka::Message* const> upcoming);

  // The decoded front slot when `m` is the next announced message (decoding it or waiting for
  // the worker if need be); nullptr when nothing is announced or `m` is another message, in
  // which case everything announced is discarded.
  Slot* Front(const kafka::Message& m);
  // Drops the front slot (after Front returned it).
  void PopFront() { ++head_; }

  // Returns once every announced slot is decoded.
  void Settle();

 private:
  Slot& At(uint64_t i) { return slots_[i % kCapacity]; }
  // Claims the next run of undecoded slots: [*begin, *end).
  bool Claim(uint64_t* begin, uint64_t* end);
  void DecodeRun(debezium::Decoder& decoder, uint64_t begin, uint64_t end);
  // Makes slot i ready: decodes unclaimed runs (up to it, then beyond it while the worker
  // decodes it), and waits for the worker only when every announced slot is claimed.
  void Complete(uint64_t i);
  void Work();

  std::unique_ptr<Slot[]> slots_;
  uint64_t head_ = 0;                       // next slot to hand out (sink thread only)
  std::atomic<uint64_t> tail_{0};           // one past the last announced slot
  std::atomic<uint64_t> claim_{0};          // next slot nobody has claimed
  const debezium::DecoderOptions options_;  // the worker's decoder's
  debezium::Decoder* const decoder_;        // the sink thread's

  std::mutex mu_;
  std::condition_variable work_cv_;   // the worker waits for announcements
  std::condition_variable ready_cv_;  // the sink thread waits for a slot the worker decodes
  std::atomic<bool> waiting_{false};  // the sink thread waits on ready_cv_
  std::atomic<bool> stop_{false};
  std::thread worker_;
};

}  // namespace splitstream::pipeline
