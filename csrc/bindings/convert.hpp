// Argument conversion shared by the bindings: every check names the argument it rejects.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "hiergen/category_index.hpp"

namespace hiergen::bind {

namespace py = pybind11;

/// A C-contiguous int32 or int64 array (or, for strata, a scalar).
struct IndexArg {
  py::array array;  ///< keeps the data alive
  bool is_scalar = false;
  std::int64_t scalar = 0;
  bool is_int64 = false;
  std::size_t size = 0;
  const void* data = nullptr;
};

/// Integer ids: any integer dtype that converts safely; bools, floats and objects are refused.
/// Non-contiguous, byte-swapped or narrow inputs are copied; read-only inputs are read in place.
IndexArg as_index_array(py::handle obj, const std::string& name, bool allow_scalar = false);

/// Non-negative weights as a C-contiguous float64 array with ndim 1 or 2.
py::array_t<double> as_weight_array(py::handle obj, const std::string& name);

/// A seed in [0, 2^64).
std::uint64_t as_seed(py::handle obj);

/// None -> 0 (choose), else an int >= 1.
unsigned as_threads(py::handle obj);

/// `out` when given: a writable, C-contiguous, 1-D int32 array of length n that shares no
/// memory with `inputs`; otherwise a new array.
py::array_t<std::int32_t> as_out(py::handle obj, std::size_t n,
                                 std::initializer_list<py::handle> inputs);

/// `exhausted=`: "repeat" or "error".
ExhaustedPolicy as_exhausted(const std::string& s);

/// `strata=`: None (allowed only with a single stratum), an int, or an integer array.
IndexArg strata_arg(py::handle obj, std::size_t n_strata);

/// A strata argument as a view, checking there is one stratum per `per` (`expected` of them).
StrataView strata_view(const IndexArg& s, std::size_t expected, const char* per);

/// `visit_offsets=`: n_visits + 1 int64 offsets (at least one entry).
struct VisitOffsets {
  py::array_t<std::int64_t, py::array::c_style | py::array::forcecast> offsets;
  std::size_t n_visits = 0;
};
VisitOffsets as_visit_offsets(py::handle obj);

}  // namespace hiergen::bind
