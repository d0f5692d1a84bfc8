// Fuzzes the pgoutput decoder: every input goes through DecodeStreamMessage and Decode (and an
// XLogData payload through Decode again). A successful decode must only hold views inside the
// input; the decoder must never crash, read out of bounds or hit undefined behaviour.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "splitstream/pgoutput/pgoutput.h"

namespace sp = splitstream::pgoutput;

namespace {

std::string_view g_input;

void Check(std::string_view v) {
  if (v.empty()) return;
  if (v.data() < g_input.data() || v.data() + v.size() > g_input.data() + g_input.size()) {
    std::abort();
  }
  volatile char sink = v.front();  // touch both ends: ASan checks them
  sink = v.back();
  (void)sink;
}
void Check(const std::vector<sp::Value>& tuple) {
  for (const sp::Value& v : tuple) Check(v.data);
}

struct Checker {
  void operator()(const sp::Begin&) const {}
  void operator()(const sp::Commit&) const {}
  void operator()(const sp::Origin& m) const { Check(m.name); }
  void operator()(const sp::Relation& m) const {
    Check(m.ns);
    Check(m.name);
    for (const sp::Column& c : m.columns) Check(c.name);
    sp::RelationCache cache;
    const sp::RelationInfo& info = cache.Apply(m);
    if (info.columns.size() != m.columns.size() || cache.Apply(m).version != 1) std::abort();
  }
  void operator()(const sp::TypeMessage& m) const {
    Check(m.ns);
    Check(m.name);
  }
  void operator()(const sp::Insert& m) const { Check(m.new_tuple); }
  void operator()(const sp::Update& m) const {
    Check(m.old_tuple);
    Check(m.new_tuple);
  }
  void operator()(const sp::Delete& m) const { Check(m.old_tuple); }
  void operator()(const sp::Truncate&) const {}
  void operator()(const sp::LogicalMessage& m) const {
    Check(m.prefix);
    Check(m.content);
  }
};

void DecodeMessage(std::string_view bytes) {
  static sp::Message message;  // reused across inputs, as in the CDC process
  if (sp::Decode(bytes, &message).ok()) {
    std::visit(Checker{}, message);
    (void)sp::MessageTypeName(message);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  g_input = std::string_view(reinterpret_cast<const char*>(data), size);
  DecodeMessage(g_input);
  auto stream = sp::DecodeStreamMessage(g_input);
  if (stream.ok()) {
    if (const auto* x = std::get_if<sp::XLogData>(&*stream)) {
      Check(x->payload);
      DecodeMessage(x->payload);
    }
  }
  return 0;
}
