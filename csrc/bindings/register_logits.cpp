// Python binding of hiergen::sample_logits: argument conversion with the GIL held, then the
// per-row sampling with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "convert.hpp"
#include "hiergen/logits_sampler.hpp"

namespace hiergen::bind {

namespace py = pybind11;
using namespace pybind11::literals;

namespace {

using Logits = py::array_t<float, py::array::c_style | py::array::forcecast>;

/// Optional per-row int64 values (streams, floors): None, or one integer per row.
std::vector<std::int64_t> per_row(py::handle obj, const char* name, std::size_t n_rows,
                                  py::array& keep) {
  std::vector<std::int64_t> v;
  if (obj.is_none()) return v;
  IndexArg a = as_index_array(obj, name);
  if (a.size != n_rows)
    throw py::value_error(std::string(name) + ": expected one value per row (" +
                          std::to_string(n_rows) + "), got " + std::to_string(a.size));
  keep = a.array;
  v.resize(n_rows);
  for (std::size_t i = 0; i < n_rows; ++i)
    v[i] = a.is_int64 ? static_cast<const std::int64_t*>(a.data)[i]
                      : static_cast<const std::int32_t*>(a.data)[i];
  return v;
}

}  // namespace

void register_logits(py::module_& m) {
  m.def(
      "sample_logits",
      [](py::handle logits, py::handle seed, std::int64_t step, py::handle streams,
         py::handle floors, std::int64_t floor_start, double temperature, std::int64_t top_k,
         double top_p, py::handle out, py::handle threads) {
        const std::uint64_t s = as_seed(seed);
        const unsigned t = as_threads(threads);
        if (step < 0) throw py::value_error("step: must be >= 0, got " + std::to_string(step));
        if (logits.is_none()) throw py::type_error("logits: expected a 2-D float32 array, got None");
        Logits x = Logits::ensure(logits);
        if (!x) throw py::type_error("logits: expected a 2-D float32 array");
        if (x.ndim() != 2)
          throw py::value_error("logits: expected a 2-D array (rows, columns), got " +
                                std::to_string(x.ndim()) + " dimension(s)");
        const auto n_rows = static_cast<std::size_t>(x.shape(0));
        const auto n_cols = static_cast<std::size_t>(x.shape(1));
        LogitsOptions o{temperature, top_k, top_p, floor_start};
        try {
          check_logits_options(o, n_cols);
        } catch (const std::invalid_argument& e) {
          throw py::value_error(e.what());
        }
        py::array keep_streams, keep_floors;
        const std::vector<std::int64_t> st = per_row(streams, "streams", n_rows, keep_streams);
        const std::vector<std::int64_t> fl = per_row(floors, "floors", n_rows, keep_floors);
        py::array_t<std::int32_t> result = as_out(out, n_rows, {x});
        std::vector<std::int64_t> tokens(n_rows);
        {
          py::gil_scoped_release release;
          sample_logits(x.data(), n_rows, n_cols, st.empty() ? nullptr : st.data(),
                        fl.empty() ? nullptr : fl.data(), s, static_cast<std::uint64_t>(step),
                        o, tokens.data(), t);
          std::int32_t* r = result.mutable_data();
          for (std::size_t i = 0; i < n_rows; ++i) r[i] = static_cast<std::int32_t>(tokens[i]);
        }
        return result;
      },
      "logits"_a, py::kw_only(), "seed"_a, "step"_a, "streams"_a = py::none(),
      "floors"_a = py::none(), "floor_start"_a = 0, "temperature"_a = 1.0, "top_k"_a = 0,
      "top_p"_a = 1.0, "out"_a = py::none(), "threads"_a = py::none(), R"doc(
Draw one column per row of ``logits`` (float32 [rows, columns]) -> int32 (-1: none allowed).

Temperature (0 = greedy), top-k (0 = off) and exact top-p (1 = off) as usual; ``-inf`` and
NaN logits are never drawn, ``+inf`` is an error. ``floors`` (one int per row) also forbids
columns ``floor_start .. floors[r] - 1`` of row ``r``. Row ``r`` uses the uniform number
``step`` of the counter-based stream ``(seed, streams[r])`` (``streams`` defaults to the row
index), so its draw depends on nothing else: not the other rows, the batch or ``threads``.
)doc");
}

}  // namespace hiergen::bind
