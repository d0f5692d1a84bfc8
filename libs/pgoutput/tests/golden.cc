#include "golden.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace splitstream::pgoutput::testing {
namespace {

[[noreturn]] void Fail(const std::string& path, int line, std::string_view what) {
  std::fprintf(stderr, "%s:%d: %.*s\n", path.c_str(), line, static_cast<int>(what.size()),
               what.data());
  std::abort();
}

std::string RenderTuple(const std::vector<Value>& tuple) {
  std::string out;
  for (size_t i = 0; i < tuple.size(); ++i) {
    if (i > 0) out += '|';
    const Value& v = tuple[i];
    switch (v.kind) {
      case ValueKind::kNull:
        out += 'n';
        break;
      case ValueKind::kUnchangedToast:
        out += 'u';
        break;
      case ValueKind::kText:
        if (v.data.size() > 64) {
          out += fmt::format("t#{}:{}", v.data.size(), v.data.substr(0, 16));
        } else {
          out += fmt::format("t:{}", v.data);
        }
        break;
      case ValueKind::kBinary:
        out += "b:" + HexEncode(v.data);
        break;
    }
  }
  return out;
}

struct Renderer {
  std::string operator()(const Begin& m) const { return fmt::format("B xid={}", m.xid); }
  std::string operator()(const Commit& m) const {
    return fmt::format("C flags={} end_lsn={}", m.flags, LsnToString(m.end_lsn));
  }
  std::string operator()(const Origin& m) const {
    return fmt::format("O lsn={} name={}", LsnToString(m.commit_lsn), m.name);
  }
  std::string operator()(const Relation& m) const {
    std::string cols;
    for (const Column& c : m.columns) {
      if (!cols.empty()) cols += ',';
      cols += fmt::format("{}{}:{}:{}", c.key ? "*" : "", c.name, c.type_oid, c.type_modifier);
    }
    return fmt::format("R oid={} ns={} name={} ri={} cols={}", m.oid, m.ns, m.name,
                       m.replica_identity, cols);
  }
  std::string operator()(const TypeMessage& m) const {
    return fmt::format("Y oid={} ns={} name={}", m.oid, m.ns, m.name);
  }
  std::string operator()(const Insert& m) const {
    return fmt::format("I rel={} new={}", m.relation_oid, RenderTuple(m.new_tuple));
  }
  std::string operator()(const Update& m) const {
    std::string old;
    if (m.old_kind != 0) old = fmt::format("old={}:{} ", m.old_kind, RenderTuple(m.old_tuple));
    return fmt::format("U rel={} {}new={}", m.relation_oid, old, RenderTuple(m.new_tuple));
  }
  std::string operator()(const Delete& m) const {
    return fmt::format("D rel={} old={}:{}", m.relation_oid, m.old_kind, RenderTuple(m.old_tuple));
  }
  std::string operator()(const Truncate& m) const {
    return fmt::format("T options={} rels={}", m.options, fmt::join(m.relation_oids, ","));
  }
  std::string operator()(const LogicalMessage& m) const {
    return fmt::format("M tx={} lsn={} prefix={} content={}", m.transactional ? 1 : 0,
                       LsnToString(m.lsn), m.prefix, HexEncode(m.content));
  }
};

}  // namespace

std::string HexDecode(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  if (hex.size() % 2 != 0) return out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return {};
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

std::string HexEncode(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) out += fmt::format("{:02x}", c);
  return out;
}

GoldenFile ReadGoldenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) Fail(path, 0, "cannot open");
  GoldenFile file;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.find(' ');
    const std::string key = line.substr(0, space);
    const std::string rest = space == std::string::npos ? "" : line.substr(space + 1);
    if (key == "captured_unix_us") {
      file.captured_unix_us = std::stoll(rest);
    } else if (key == "scenario") {
      file.scenarios.push_back({rest, {}});
    } else if (key == "msg") {
      if (file.scenarios.empty()) Fail(path, number, "msg before any scenario");
      std::string bytes = HexDecode(rest);
      if (bytes.empty()) Fail(path, number, "bad hex");
      file.scenarios.back().messages.push_back({std::move(bytes), "", number});
    } else if (key == "expect") {
      if (file.scenarios.empty() || file.scenarios.back().messages.empty() ||
          !file.scenarios.back().messages.back().expect.empty()) {
        Fail(path, number, "expect without its msg");
      }
      file.scenarios.back().messages.back().expect = rest;
    } else {
      Fail(path, number, "unknown line");
    }
  }
  return file;
}

std::string Render(const Message& message) { return std::visit(Renderer{}, message); }

}  // namespace splitstream::pgoutput::testing
