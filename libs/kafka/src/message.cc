// kafka::Message: views into either a librdkafka message (destroyed with the Message) or a
// heap block of owned strings (Message::Make), so that moving a Message never moves the bytes.
#include <librdkafka/rdkafka.h>

#include "splitstream/kafka/kafka.h"

namespace splitstream::kafka {

struct Message::Owned {
  std::string topic;
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::vector<Header> headers;
};

Message Message::Make(std::string topic, int32_t partition, int64_t offset,
                      std::optional<std::string> key, std::optional<std::string> value,
                      int64_t timestamp_ms, std::vector<Header> headers) {
  Message m;
  m.owned_ = new Owned{std::move(topic), std::move(key), std::move(value), std::move(headers)};
  m.topic_ = m.owned_->topic;
  m.partition_ = partition;
  m.offset_ = offset;
  if (m.owned_->key) m.key_ = *m.owned_->key;
  if (m.owned_->value) m.value_ = *m.owned_->value;
  m.timestamp_ms_ = timestamp_ms;
  return m;
}

Message Message::Wrap(void* rd_message, std::shared_ptr<void> handle) {
  auto* rm = static_cast<rd_kafka_message_t*>(rd_message);
  Message m;
  m.rd_message_ = rm;
  m.handle_ = std::move(handle);
  m.topic_ = rd_kafka_topic_name(rm->rkt);  // lives as long as the message holds its topic
  m.partition_ = rm->partition;
  m.offset_ = rm->offset;
  if (rm->key != nullptr) m.key_ = std::string_view(static_cast<const char*>(rm->key), rm->key_len);
  if (rm->payload != nullptr) {
    m.value_ = std::string_view(static_cast<const char*>(rm->payload), rm->len);
  }
  m.timestamp_ms_ = rd_kafka_message_timestamp(rm, nullptr);
  return m;
}

Message::Message(Message&& other) noexcept { *this = std::move(other); }

Message& Message::operator=(Message&& other) noexcept {
  if (this == &other) return *this;
  Reset();
  topic_ = other.topic_;
  partition_ = other.partition_;
  offset_ = other.offset_;
  key_ = other.key_;
  value_ = other.value_;
  timestamp_ms_ = other.timestamp_ms_;
  rd_message_ = other.rd_message_;
  owned_ = other.owned_;
  handle_ = std::move(other.handle_);
  other.rd_message_ = nullptr;
  other.owned_ = nullptr;
  other.topic_ = {};
  other.key_.reset();
  other.value_.reset();
  return *this;
}

Message::~Message() { Reset(); }

void Message::Reset() {
  if (rd_message_ != nullptr)
    rd_kafka_message_destroy(static_cast<rd_kafka_message_t*>(rd_message_));
  delete owned_;
  rd_message_ = nullptr;
  owned_ = nullptr;
  handle_.reset();  // after the message: this may destroy the consumer's handle
}

std::vector<Header> Message::headers() const {
  if (owned_ != nullptr) return owned_->headers;
  std::vector<Header> out;
  if (rd_message_ == nullptr) return out;
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(static_cast<rd_kafka_message_t*>(rd_message_), &hdrs) !=
      RD_KAFKA_RESP_ERR_NO_ERROR) {
    return out;  // no headers
  }
  const char* name = nullptr;
  const void* val = nullptr;
  size_t size = 0;
  for (size_t i = 0;
       rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
    out.push_back({name, val ? std::string(static_cast<const char*>(val), size) : std::string()});
  }
  return out;
}

}  // namespace splitstream::kafka
