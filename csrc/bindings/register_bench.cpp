// Benchmark floors: the cost of the random numbers alone, measured by the same compiler.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "convert.hpp"
#include "hiergen/parallel.hpp"
#include "hiergen/rng.hpp"

namespace hiergen::bind {

namespace py = pybind11;
using namespace pybind11::literals;

void register_bench(py::module_& m) {
  m.def(
      "_bench_rng",
      [](py::array_t<std::uint32_t, py::array::c_style> out, py::handle seed,
         const std::string& kind, py::handle threads) {
        const std::uint64_t s = as_seed(seed);
        unsigned t = as_threads(threads);
        if (t == 0) t = 1;
        if (!out.writeable()) throw py::value_error("out: is read-only");
        const auto n = static_cast<std::size_t>(out.size());
        std::uint32_t* o = out.mutable_data();
        if (kind == "counter") {
          const CounterStream rng = CounterStream::from_seed(s, 1);
          py::gil_scoped_release release;
          ChunkQueue q(n, 1u << 14);
          run_threads(t, [&](unsigned) {
            std::size_t b, e;
            while (q.pop(b, e))
              for (std::size_t i = b; i < e; ++i) o[i] = static_cast<std::uint32_t>(rng(i) >> 32);
          });
        } else if (kind == "splitmix") {
          const CounterStream rng = CounterStream::from_seed(s, 1);
          py::gil_scoped_release release;
          for (std::size_t i = 0; i < n; ++i) o[i] = static_cast<std::uint32_t>(rng.splitmix(i) >> 32);
        } else if (kind == "xoshiro") {
          py::gil_scoped_release release;
          Xoshiro256pp rng(s);
          for (std::size_t i = 0; i < n; ++i) o[i] = static_cast<std::uint32_t>(rng() >> 32);
        } else {
          throw py::value_error("kind: expected 'counter', 'splitmix' or 'xoshiro', got '" + kind + "'");
        }
      },
      "out"_a, "seed"_a, "kind"_a = "counter", "threads"_a = py::none(),
      "Fill a uint32 array with raw random numbers (benchmark floor; not a public API).");
}

}  // namespace hiergen::bind
