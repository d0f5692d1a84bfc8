// FileArchive: a SinkTarget that archives the change stream as hourly JSON-lines files, the
// `splitstream sink --to files:DIR` fan-out (the archive a user would otherwise send to S3).
//
// Layout: DIR/{topic}/{YYYY-MM-DD}/{HH}.jsonl, the hour taken from the Kafka message timestamp
// in UTC (the clock's wall time when the message has none). One line per message:
//   {"topic":"...","partition":0,"offset":42,"timestamp_ms":1700000000000,"key":K,"value":V}
// K and V are the message's key and value embedded as JSON (re-serialised on one line) when
// they parse as JSON, as a JSON string when they do not, and null when absent (a tombstone's
// value).
//
// Flush appends each file's buffered lines and fsyncs the file (and, when it created the file
// or a directory, its parent directory) before returning OK; the sink commits offsets only
// after that. A failed write truncates the file back to its previous length and keeps the
// lines for a retry. After a crash, lines of offsets at or above the last committed offset
// may appear twice (written, not yet committed): readers dedupe by (topic, partition, offset).
//
// Thread safety: not thread-safe (the sink's thread).
#pragma once

#include <map>
#include <string>

#include "splitstream/core/clock.h"
#include "splitstream/pipeline/sink.h"

namespace splitstream::pipeline {

class FileArchive final : public SinkTarget {
 public:
  // `dir` is created on the first flush when missing. `clock` must outlive the archive.
  FileArchive(std::string dir, Clock* clock) : dir_(std::move(dir)), clock_(clock) {}

  // Never fails for a well-formed message; InvalidArgument when the topic name would escape
  // the directory (".", "..", or a '/').
  Status Add(const kafka::Message& message) override;
  size_t buffered_rows() const override { return buffered_rows_; }
  size_t buffered_bytes() const override { return buffered_bytes_; }
  // Unavailable with the path and errno text when a write, fsync or mkdir fails.
  Status Flush() override;
  std::map<std::string, uint64_t> rows_written() const override { return written_; }

  // The JSON line (without the newline) for one message; public for tests.
  static std::string Line(const kafka::Message& message);
  // DIR-relative path of the file a message with this topic and timestamp goes to.
  static std::string RelativePath(std::string_view topic, int64_t timestamp_ms);

 private:
  struct Pending {
    std::string topic;
    std::string data;  // lines, each ending in '\n'
    size_t rows = 0;
  };
  std::string dir_;
  Clock* clock_;
  std::map<std::string, Pending> files_;  // by relative path
  size_t buffered_rows_ = 0;
  size_t buffered_bytes_ = 0;
  std::map<std::string, uint64_t> written_;  // by topic
};

}  // namespace splitstream::pipeline
