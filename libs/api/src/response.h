// JSON bodies of successful responses, written with RapidJSON. Pure functions, thread-safe.
// Timestamps are RFC 3339 strings in UTC with microseconds; optional values absent from
// the domain object are written as null.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "splitstream/experiments/model.h"

namespace splitstream::api {

std::string ExperimentJson(const experiments::Experiment& e);
// {"experiments": [...]}
std::string ExperimentListJson(const std::vector<experiments::Experiment>& list);
// {experiment, user_id, in_experiment, variant?, reason, stored, assigned_at?}
std::string AssignmentJson(const experiments::Assignment& a);
// {user_id, assignments: [...]}
std::string UserAssignmentsJson(std::string_view user_id,
                                const std::vector<experiments::Assignment>& list);
// {"accepted": n}
std::string AcceptedJson(size_t n);

}  // namespace splitstream::api
