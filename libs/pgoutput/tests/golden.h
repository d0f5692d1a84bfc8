// Golden pgoutput messages captured from a real PostgreSQL (testdata/capture.sh writes
// testdata/pgoutput_v1.test) and the text rendering the tests compare them with.
//
// File format, line by line:
//   # comment                     ignored, as are blank lines
//   captured_unix_us <n>          when the capture started (microseconds since the Unix epoch)
//   scenario <name>               starts a group of messages (one decoding session)
//   msg <hex>                     one pgoutput message, as pg_logical_slot_peek_binary_changes
//                                 returned it
//   expect <rendering>            what that message must decode to, in Render()'s form
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "splitstream/pgoutput/pgoutput.h"

namespace splitstream::pgoutput::testing {

struct GoldenMessage {
  std::string bytes;
  std::string expect;
  int line = 0;  // of the `msg` line
};
struct GoldenScenario {
  std::string name;
  std::vector<GoldenMessage> messages;
};
struct GoldenFile {
  int64_t captured_unix_us = 0;
  std::vector<GoldenScenario> scenarios;
};

// Reads and parses `path`; aborts the test binary with a message on a malformed file.
GoldenFile ReadGoldenFile(const std::string& path);

// One line per message, the form capture.sh writes after `expect`:
//   B xid=<xid>
//   C flags=<n> end_lsn=<lsn>
//   O lsn=<lsn> name=<name>
//   R oid=<oid> ns=<ns> name=<name> ri=<c> cols=[*]<name>:<type oid>:<typmod>,...
//   Y oid=<oid> ns=<ns> name=<name>
//   I rel=<oid> new=<tuple>
//   U rel=<oid> [old=<K|O>:<tuple> ]new=<tuple>
//   D rel=<oid> old=<K|O>:<tuple>
//   T options=<n> rels=<oid>,...
//   M tx=<0|1> lsn=<lsn> prefix=<prefix> content=<hex>
// A tuple is its values joined by '|': n (null), u (unchanged TOAST), t:<text> (t#<length>:
// <first 16 bytes> when longer than 64 bytes), b:<hex>.
std::string Render(const Message& message);

std::string HexDecode(std::string_view hex);
std::string HexEncode(std::string_view bytes);

}  // namespace splitstream::pgoutput::testing
