// Small string helpers shared by every layer. Pure functions, thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace splitstream {

// Replaces control characters (and invalid UTF-8 lead bytes are kept as is) with '?' and
// truncates to `max_len` bytes with "..." so that echoed user input is safe in messages
// and logs.
std::string SanitizeForMessage(std::string_view input, size_t max_len = 200);

// Compares two secrets in time independent of where they first differ.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// Replaces the value of `password=` in a libpq conninfo string and the password part of a
// URL's userinfo with "***", for logging configuration.
std::string RedactSecrets(std::string_view text);

}  // namespace splitstream
