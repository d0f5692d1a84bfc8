// Boost.Math distributions with a policy that never throws: inputs are validated before they
// reach Boost, and a numerical edge case must not end a request with an exception. On an
// error Boost returns NaN/inf and sets errno; callers guard their inputs instead.
#pragma once

#include <boost/math/distributions/beta.hpp>
#include <boost/math/distributions/chi_squared.hpp>
#include <boost/math/distributions/normal.hpp>
#include <boost/math/distributions/students_t.hpp>
#include <boost/math/policies/policy.hpp>

namespace splitstream::stats {

using NoThrowPolicy = boost::math::policies::policy<
    boost::math::policies::domain_error<boost::math::policies::errno_on_error>,
    boost::math::policies::pole_error<boost::math::policies::errno_on_error>,
    boost::math::policies::overflow_error<boost::math::policies::errno_on_error>,
    boost::math::policies::evaluation_error<boost::math::policies::errno_on_error>,
    boost::math::policies::rounding_error<boost::math::policies::errno_on_error>>;

using Normal = boost::math::normal_distribution<double, NoThrowPolicy>;
using StudentsT = boost::math::students_t_distribution<double, NoThrowPolicy>;
using ChiSquared = boost::math::chi_squared_distribution<double, NoThrowPolicy>;
using Beta = boost::math::beta_distribution<double, NoThrowPolicy>;

}  // namespace splitstream::stats
