// The hiergen._core extension module: one register_* call per area.
#include <pybind11/pybind11.h>

namespace hiergen::bind {
void register_category_index(pybind11::module_& m);
void register_bench(pybind11::module_& m);
void register_logits(pybind11::module_& m);
void register_context(pybind11::module_& m);
}  // namespace hiergen::bind

PYBIND11_MODULE(_core, m) {
  m.doc() = "hiergen's compiled core: the Stage-2 category -> code alias sampler.";
  hiergen::bind::register_category_index(m);
  hiergen::bind::register_bench(m);
  hiergen::bind::register_logits(m);
  hiergen::bind::register_context(m);
}
