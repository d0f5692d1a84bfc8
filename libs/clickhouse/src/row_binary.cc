#include "splitstream/clickhouse/row_binary.h"

#include <fmt/format.h>

namespace splitstream::clickhouse {

Result<size_t> RowBinaryRows::ReadRows(std::string_view data) {
  RowBinaryReader r(data);
  size_t done = 0;
  while (!r.at_end()) {
    if (!read_row_(r)) {
      if (r.malformed()) {
        return Status::InvalidArgument(
            fmt::format("malformed RowBinary in row {} (a varint over 10 bytes or a NULL marker "
                        "other than 0 and 1)",
                        rows_ + 1));
      }
      break;  // the row goes on in the next chunk
    }
    if (r.position() == done) {
      return Status::InvalidArgument(fmt::format("row {} read no bytes", rows_ + 1));
    }
    done = r.position();
    ++rows_;
  }
  return done;
}

Status RowBinaryRows::Feed(std::string_view chunk) {
  if (carry_.empty()) {
    SPLITSTREAM_ASSIGN_OR_RETURN(size_t used, ReadRows(chunk));
    carry_.assign(chunk.substr(used));
    return Status::Ok();
  }
  carry_.append(chunk);
  SPLITSTREAM_ASSIGN_OR_RETURN(size_t used, ReadRows(carry_));
  carry_.erase(0, used);
  return Status::Ok();
}

Status RowBinaryRows::Finish() const {
  if (carry_.empty()) return Status::Ok();
  return Status::InvalidArgument(fmt::format(
      "the RowBinary stream ended inside row {} ({} bytes of it)", rows_ + 1, carry_.size()));
}

}  // namespace splitstream::clickhouse
