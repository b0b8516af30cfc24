// Python binding of hiergen::ContextIndex (context-aware Stage-2 sampling): argument
// conversion with the GIL held, then sampling with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <string>

#include "convert.hpp"
#include "hiergen/context_index.hpp"

namespace hiergen::bind {

namespace py = pybind11;
using namespace pybind11::literals;

namespace {

template <class T>
py::array_t<T, py::array::c_style | py::array::forcecast> vector_arg(py::handle obj,
                                                                     const char* name,
                                                                     std::size_t expected,
                                                                     bool check_size) {
  if (obj.is_none()) throw py::type_error(std::string(name) + ": expected an array, got None");
  auto a = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(obj);
  if (!a) throw py::type_error(std::string(name) + ": expected a numeric array");
  if (a.ndim() != 1)
    throw py::value_error(std::string(name) + ": expected a 1-D array, got " +
                          std::to_string(a.ndim()) + " dimensions");
  if (check_size && static_cast<std::size_t>(a.size()) != expected)
    throw py::value_error(std::string(name) + ": expected " + std::to_string(expected) +
                          " entries, got " + std::to_string(a.size()));
  return a;
}

py::array_t<std::int32_t, py::array::c_style | py::array::forcecast> int_vector(
    py::handle obj, const char* name, std::size_t expected, bool check_size) {
  IndexArg ids = as_index_array(obj, name);  // refuses floats and bools
  (void)ids;
  return vector_arg<std::int32_t>(obj, name, expected, check_size);
}

}  // namespace

void register_context(py::module_& m) {
  m.def(
      "simd",
      [](py::handle enabled) {
        if (enabled.is_none()) return simd_enabled();
        if (!py::isinstance<py::bool_>(enabled))
          throw py::type_error("enabled: expected True, False or None, got " +
                               std::string(py::str(py::type::of(enabled))));
        return set_simd_enabled(enabled.cast<bool>());
      },
      "enabled"_a = py::none(), R"doc(
Whether the compiled core uses its SIMD (AVX2) kernels. ``simd(False)`` turns them off and
``simd(True)`` back on where the CPU supports them; the output is the same either way. Returns
the state in force.
)doc");
  py::class_<ContextIndex, std::shared_ptr<ContextIndex>>(m, "ContextIndex", py::module_local(), R"doc(
Context-aware Stage-2 sampler: a CategoryIndex plus alias tables keyed by (category, context
code). ``sample_visits`` draws a visit's categories in ``rank`` order; each uses the table of
the best-scoring context among the codes already drawn in the visit, else its stratum's table.

``category``, ``context``, ``score``: one entry per context table; ``weights``: the tables'
weights one after the other, table t covering the codes of ``category[t]``; ``rank``: one
entry per category (lower is drawn first). Output is identical for any thread count.
)doc")
      .def(py::init([](std::shared_ptr<CategoryIndex> base, py::handle category,
                       py::handle context, py::handle score, py::handle weights,
                       py::handle rank) {
             if (!base) throw py::type_error("index: expected a CategoryIndex, got None");
             auto cat = int_vector(category, "category", 0, false);
             const auto n_tables = static_cast<std::size_t>(cat.size());
             auto ctx = int_vector(context, "context", n_tables, true);
             auto sc = vector_arg<double>(score, "score", n_tables, true);
             auto w = vector_arg<double>(weights, "weights", 0, false);
             auto rk = int_vector(rank, "rank", base->n_categories(), true);
             py::gil_scoped_release release;
             return std::make_shared<ContextIndex>(
                 std::shared_ptr<const CategoryIndex>(base), cat.data(), ctx.data(), sc.data(),
                 n_tables, w.data(), static_cast<std::size_t>(w.size()), rk.data());
           }),
           "index"_a, "category"_a, "context"_a, "score"_a, "weights"_a, "rank"_a)
      .def_property_readonly("n_tables", &ContextIndex::n_tables, "Number of context tables.")
      .def_property_readonly("nbytes", &ContextIndex::nbytes,
                             "Bytes held by the context part (tables, lookup, ranks).")
      .def_property_readonly(
          "index",
          [](const ContextIndex& self) {
            return std::const_pointer_cast<CategoryIndex>(self.base_ptr());
          },
          "The context-free CategoryIndex (the fallback tables).")
      .def_property_readonly("n_categories",
                             [](const ContextIndex& self) { return self.base().n_categories(); })
      .def_property_readonly("n_codes",
                             [](const ContextIndex& self) { return self.base().n_codes(); })
      .def_property_readonly("n_strata",
                             [](const ContextIndex& self) { return self.base().n_strata(); })
      .def(
          "sample_visits",
          [](const ContextIndex& self, py::handle categories, py::handle visit_offsets,
             py::handle strata, py::handle seed, py::handle out, py::handle threads,
             const std::string& exhausted, bool context) {
            const ExhaustedPolicy policy = as_exhausted(exhausted);
            const std::uint64_t s = as_seed(seed);
            const unsigned t = as_threads(threads);
            IndexArg cats = as_index_array(categories, "categories");
            const VisitOffsets vo = as_visit_offsets(visit_offsets);
            const std::size_t n_visits = vo.n_visits;
            IndexArg str = strata_arg(strata, self.base().n_strata());
            const StrataView sv = strata_view(str, n_visits, "visit");
            py::array_t<std::int32_t> result = as_out(out, cats.size, {cats.array, str.array});
            std::int32_t* o = result.mutable_data();
            const std::int64_t* vp = vo.offsets.data();
            {
              py::gil_scoped_release release;
              if (cats.is_int64)
                self.sample_visits(static_cast<const std::int64_t*>(cats.data), cats.size, vp,
                                   n_visits, sv, s, o, t, policy, context);
              else
                self.sample_visits(static_cast<const std::int32_t*>(cats.data), cats.size, vp,
                                   n_visits, sv, s, o, t, policy, context);
            }
            return result;
          },
          "categories"_a, "visit_offsets"_a, "strata"_a = py::none(), py::kw_only(), "seed"_a,
          "out"_a = py::none(), "threads"_a = py::none(), "exhausted"_a = "repeat",
          "context"_a = true, R"doc(
Draw codes visit by visit, as ``CategoryIndex.sample_visits``; with ``context=True``
(default) categories are drawn in rank order and use the best context table available.
``context=False`` is exactly the context-free index's ``sample_visits``.
)doc")
      .def("__repr__", [](const ContextIndex& self) {
        return "ContextIndex(n_categories=" + std::to_string(self.base().n_categories()) +
               ", n_codes=" + std::to_string(self.base().n_codes()) +
               ", n_strata=" + std::to_string(self.base().n_strata()) +
               ", n_tables=" + std::to_string(self.n_tables()) + ")";
      });
}

}  // namespace hiergen::bind
