// Test helpers: reading testdata and comparing JSON structurally (numbers by value).
#pragma once

#include <simdjson.h>

#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

namespace splitstream::debezium::testing {

inline std::string ReadTestdata(const std::string& relative) {
  std::ifstream in(std::string(DEBEZIUM_TESTDATA_DIR) + "/" + relative, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Structural equality: objects by member (order-insensitive), numbers by value; "" when equal,
// else the path of the first difference.
inline std::string JsonDiff(simdjson::dom::element a, simdjson::dom::element b,
                            const std::string& path = "$") {
  using T = simdjson::dom::element_type;
  auto is_number = [](T t) { return t == T::INT64 || t == T::UINT64 || t == T::DOUBLE; };
  if (is_number(a.type()) && is_number(b.type())) {
    if (a.type() != T::DOUBLE && b.type() != T::DOUBLE) {
      if (a.type() == T::UINT64 || b.type() == T::UINT64) {
        return uint64_t(a) == uint64_t(b) ? "" : path;
      }
      return int64_t(a) == int64_t(b) ? "" : path;
    }
    double x = a.type() == T::DOUBLE  ? double(a)
               : a.type() == T::INT64 ? double(int64_t(a))
                                      : double(uint64_t(a));
    double y = b.type() == T::DOUBLE  ? double(b)
               : b.type() == T::INT64 ? double(int64_t(b))
                                      : double(uint64_t(b));
    return x == y ? "" : path + " (" + std::to_string(x) + " vs " + std::to_string(y) + ")";
  }
  if (a.type() != b.type()) return path + " (type)";
  switch (a.type()) {
    case T::OBJECT: {
      simdjson::dom::object oa = a, ob = b;
      if (oa.size() != ob.size()) return path + " (member count)";
      for (auto [k, v] : oa) {
        simdjson::dom::element w;
        if (ob.at_key(k).get(w) != simdjson::SUCCESS)
          return path + "." + std::string(k) + " (missing)";
        std::string d = JsonDiff(v, w, path + "." + std::string(k));
        if (!d.empty()) return d;
      }
      return "";
    }
    case T::ARRAY: {
      simdjson::dom::array xa = a, xb = b;
      if (xa.size() != xb.size()) return path + " (length)";
      for (size_t i = 0; i < xa.size(); ++i) {
        std::string d =
            JsonDiff(xa.at(i).value(), xb.at(i).value(), path + "[" + std::to_string(i) + "]");
        if (!d.empty()) return d;
      }
      return "";
    }
    case T::STRING:
      return std::string_view(a) == std::string_view(b)
                 ? ""
                 : path + " (\"" + std::string(std::string_view(a)) + "\" vs \"" +
                       std::string(std::string_view(b)) + "\")";
    case T::BOOL:
      return bool(a) == bool(b) ? "" : path;
    default:
      return "";
  }
}

inline std::string JsonDiffText(std::string_view a, std::string_view b) {
  simdjson::dom::parser pa, pb;
  simdjson::dom::element ea, eb;
  if (pa.parse(a.data(), a.size()).get(ea)) return "left does not parse";
  if (pb.parse(b.data(), b.size()).get(eb)) return "right does not parse";
  return JsonDiff(ea, eb);
}

}  // namespace splitstream::debezium::testing
