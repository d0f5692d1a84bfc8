// Renderings of ExperimentResults: JSON (the body of GET /v1/experiments/{key}/results), a
// readable table (the CLI's default) and CSV (one row per metric and variant). Pure,
// thread-safe. Undefined figures are JSON null and empty cells, never inf or NaN.
#pragma once

#include <cstdint>
#include <string>

#include "splitstream/results/results.h"

namespace splitstream::results {

std::string RenderJson(const ExperimentResults& r);
std::string RenderTable(const ExperimentResults& r);
// RFC 4180: comma-separated, fields with a comma, quote or newline are quoted.
std::string RenderCsv(const ExperimentResults& r);

}  // namespace splitstream::results
