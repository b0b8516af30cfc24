// Python binding of hiergen::CategoryIndex: argument conversion with the GIL held, then the
// sampling loops with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "convert.hpp"
#include "hiergen/category_index.hpp"

namespace hiergen::bind {

namespace py = pybind11;
using namespace pybind11::literals;

namespace {

ZeroWeightPolicy parse_zero_weight(const std::string& s) {
  if (s == "error") return ZeroWeightPolicy::kError;
  if (s == "uniform") return ZeroWeightPolicy::kUniform;
  throw py::value_error("zero_weight: expected 'error' or 'uniform', got '" + s + "'");
}

struct Weights {
  py::array_t<double> array;
  std::size_t n_strata, n_codes;
};

Weights weights_arg(py::handle obj) {
  Weights w{as_weight_array(obj, "weights"), 1, 0};
  if (w.array.ndim() == 1) {
    w.n_codes = static_cast<std::size_t>(w.array.shape(0));
  } else {
    w.n_strata = static_cast<std::size_t>(w.array.shape(0));
    w.n_codes = static_cast<std::size_t>(w.array.shape(1));
  }
  return w;
}

py::array read_only_copy(const void* data, std::vector<py::ssize_t> shape, py::dtype dt) {
  py::array a(dt, shape);
  std::memcpy(a.mutable_data(), data, static_cast<std::size_t>(a.nbytes()));
  a.attr("setflags")("write"_a = false);
  return a;
}

const char* policy_name(ZeroWeightPolicy p) {
  return p == ZeroWeightPolicy::kError ? "error" : "uniform";
}

}  // namespace

void register_category_index(py::module_& m) {
  py::class_<CategoryIndex, std::shared_ptr<CategoryIndex>>(m, "CategoryIndex", py::module_local(), R"doc(
Immutable category -> code index with one Vose alias table per (stratum, category).

Codes ``offsets[c]:offsets[c + 1]`` belong to category ``c``. ``weights`` is
``(n_codes,)`` (one stratum) or ``(n_strata, n_codes)``; weights must be finite and >= 0.
A category whose weights are all zero in some stratum is an error unless
``zero_weight="uniform"``, which draws uniformly among its codes there.

Sampling is deterministic: for a given seed the output is bit-identical whatever the
thread count, on every platform. Accept probabilities are stored with 32-bit resolution, so
a code whose share of its category is below about 2**-32 may never be drawn.
)doc")
      .def(py::init([](py::handle offsets, py::handle weights, const std::string& zero_weight) {
             const ZeroWeightPolicy policy = parse_zero_weight(zero_weight);
             IndexArg off = as_index_array(offsets, "offsets");
             std::vector<std::int64_t> offs(off.size);
             for (std::size_t i = 0; i < off.size; ++i)
               offs[i] = off.is_int64 ? static_cast<const std::int64_t*>(off.data)[i]
                                      : static_cast<const std::int32_t*>(off.data)[i];
             Weights w = weights_arg(weights);
             const double* wp = w.array.data();
             py::gil_scoped_release release;
             return std::make_shared<CategoryIndex>(std::move(offs), wp, w.n_strata, w.n_codes,
                                                    policy);
           }),
           "offsets"_a, "weights"_a, py::kw_only(), "zero_weight"_a = "error")
      .def_property_readonly("n_categories", &CategoryIndex::n_categories,
                             "Number of categories.")
      .def_property_readonly("n_codes", &CategoryIndex::n_codes, "Number of codes.")
      .def_property_readonly("n_strata", &CategoryIndex::n_strata,
                             "Number of weight tables (strata).")
      .def_property_readonly(
          "zero_weight",
          [](const CategoryIndex& self) { return std::string(policy_name(self.zero_weight_policy())); },
          "Policy for all-zero categories: 'error' or 'uniform'.")
      .def_property_readonly(
          "offsets",
          [](const CategoryIndex& self) {
            return read_only_copy(self.offsets().data(),
                                  {static_cast<py::ssize_t>(self.offsets().size())},
                                  py::dtype::of<std::int64_t>());
          },
          "Read-only copy of the category offsets (int64, n_categories + 1).")
      .def_property_readonly(
          "weights",
          [](const CategoryIndex& self) {
            return read_only_copy(self.weights().data(),
                                  {static_cast<py::ssize_t>(self.n_strata()),
                                   static_cast<py::ssize_t>(self.n_codes())},
                                  py::dtype::of<double>());
          },
          "Read-only copy of the weights as given, shape (n_strata, n_codes).")
      .def(
          "with_weights",
          [](const CategoryIndex& self, py::handle weights) {
            Weights w = weights_arg(weights);
            const double* wp = w.array.data();
            py::gil_scoped_release release;
            return std::make_shared<CategoryIndex>(self.with_weights(wp, w.n_strata, w.n_codes));
          },
          "weights"_a,
          "A new index over the same categories with new weight tables (n_strata may differ).")
      .def(
          "sample",
          [](const CategoryIndex& self, py::handle categories, py::handle strata,
             py::handle seed, py::handle out, py::handle threads) {
            const std::uint64_t s = as_seed(seed);
            const unsigned t = as_threads(threads);
            IndexArg cats = as_index_array(categories, "categories");
            IndexArg str = strata_arg(strata, self.n_strata());
            const StrataView sv = strata_view(str, cats.size, "category id");
            py::array_t<std::int32_t> result =
                as_out(out, cats.size, {cats.array, str.array});
            std::int32_t* o = result.mutable_data();
            {
              py::gil_scoped_release release;
              if (cats.is_int64)
                self.sample(static_cast<const std::int64_t*>(cats.data), cats.size, sv, s, o, t);
              else
                self.sample(static_cast<const std::int32_t*>(cats.data), cats.size, sv, s, o, t);
            }
            return result;
          },
          "categories"_a, "strata"_a = py::none(), py::kw_only(), "seed"_a,
          "out"_a = py::none(), "threads"_a = py::none(), R"doc(
Draw one code id per category id (int32), in proportion to its weight in the stratum.

``strata``: None (only with one stratum), an int for every element, or one id per element.
``out``: optional writable C-contiguous int32 array of the same length, returned.
``threads``: None picks a default (1 for small inputs). Output does not depend on it.
)doc")
      .def(
          "sample_visits",
          [](const CategoryIndex& self, py::handle categories, py::handle visit_offsets,
             py::handle strata, py::handle seed, py::handle out, py::handle threads,
             const std::string& exhausted) {
            const ExhaustedPolicy policy = as_exhausted(exhausted);
            const std::uint64_t s = as_seed(seed);
            const unsigned t = as_threads(threads);
            IndexArg cats = as_index_array(categories, "categories");
            const VisitOffsets vo = as_visit_offsets(visit_offsets);
            const std::size_t n_visits = vo.n_visits;
            IndexArg str = strata_arg(strata, self.n_strata());
            const StrataView sv = strata_view(str, n_visits, "visit");
            py::array_t<std::int32_t> result =
                as_out(out, cats.size, {cats.array, str.array});
            std::int32_t* o = result.mutable_data();
            const std::int64_t* vp = vo.offsets.data();
            {
              py::gil_scoped_release release;
              if (cats.is_int64)
                self.sample_visits(static_cast<const std::int64_t*>(cats.data), cats.size, vp,
                                   n_visits, sv, s, o, t, policy);
              else
                self.sample_visits(static_cast<const std::int32_t*>(cats.data), cats.size, vp,
                                   n_visits, sv, s, o, t, policy);
            }
            return result;
          },
          "categories"_a, "visit_offsets"_a, "strata"_a = py::none(), py::kw_only(), "seed"_a,
          "out"_a = py::none(), "threads"_a = py::none(), "exhausted"_a = "repeat", R"doc(
Draw codes visit by visit; visit ``v`` holds ``categories[visit_offsets[v]:visit_offsets[v + 1]]``.

A category repeated k times in a visit yields k distinct codes when it has at least k codes
with positive weight (later draws are conditioned on the earlier ones: without replacement,
in proportion to the weights). With more repeats than such codes, ``exhausted="repeat"``
(default) draws the extra ones with replacement; ``exhausted="error"`` raises ValueError.
``strata`` is per visit (or an int, or None with one stratum). The draw of a visit depends
only on (seed, visit index).
)doc")
      .def("__repr__", [](const CategoryIndex& self) {
        return "CategoryIndex(n_categories=" + std::to_string(self.n_categories()) +
               ", n_codes=" + std::to_string(self.n_codes()) +
               ", n_strata=" + std::to_string(self.n_strata()) + ", zero_weight='" +
               policy_name(self.zero_weight_policy()) + "')";
      });
}

}  // namespace hiergen::bind
