#include "convert.hpp"

#include <algorithm>
#include <limits>

namespace hiergen::bind {

namespace {

py::module_ numpy() { return py::module_::import("numpy"); }

std::string type_name(py::handle obj) {
  return py::str(py::type::handle_of(obj).attr("__name__")).cast<std::string>();
}

std::string shape_str(const py::array& a) {
  return py::str(a.attr("shape")).cast<std::string>();
}

py::array to_array(py::handle obj, const std::string& name, const char* expected) {
  if (py::isinstance<py::array>(obj)) return py::reinterpret_borrow<py::array>(obj);
  if (obj.is_none()) throw py::type_error(name + ": expected " + expected + ", got None");
  try {
    return numpy().attr("asarray")(obj);
  } catch (py::error_already_set&) {
    throw py::type_error(name + ": expected " + expected + ", got " + type_name(obj) +
                         " that numpy cannot convert");
  }
}

bool is_int_scalar(py::handle obj) {
  if (py::isinstance<py::bool_>(obj)) return false;
  if (py::isinstance<py::int_>(obj)) return true;
  return py::isinstance(obj, numpy().attr("integer"));
}

}  // namespace

IndexArg as_index_array(py::handle obj, const std::string& name, bool allow_scalar) {
  IndexArg out;
  if (py::isinstance<py::bool_>(obj) || py::isinstance(obj, numpy().attr("bool_")))
    throw py::type_error(name + ": expected integer ids, got a bool");
  if (allow_scalar && is_int_scalar(obj)) {
    py::int_ v = py::reinterpret_steal<py::int_>(PyNumber_Index(obj.ptr()));
    if (!v) throw py::error_already_set();
    int overflow = 0;
    const long long x = PyLong_AsLongLongAndOverflow(v.ptr(), &overflow);
    out.is_scalar = true;
    out.scalar = overflow > 0 ? std::numeric_limits<std::int64_t>::max()
                 : overflow < 0 ? std::numeric_limits<std::int64_t>::min()
                                : static_cast<std::int64_t>(x);
    return out;
  }
  const bool was_array = py::isinstance<py::array>(obj);
  py::array arr = to_array(obj, name, "a 1-D array of integer ids");
  if (arr.ndim() != 1)
    throw py::value_error(name + ": expected a 1-D array, got shape " + shape_str(arr));
  const py::dtype dt = arr.dtype();
  const char kind = dt.kind();
  if (arr.size() == 0 && !(was_array && kind == 'b')) {
    // Empty input (e.g. a plain []): nothing to convert, whatever numpy guessed.
    if (kind == 'i' || kind == 'u' || kind == 'f' || !was_array) {
      out.array = py::array_t<std::int32_t>(0);
      out.data = out.array.data();
      return out;
    }
  }
  if (kind == 'b')
    throw py::type_error(name + ": expected integer ids, got a boolean array");
  if (kind != 'i' && kind != 'u')
    throw py::type_error(name + ": expected integer ids, got dtype " +
                         py::str(dt).cast<std::string>() + " (convert explicitly if intended)");
  const auto itemsize = static_cast<std::size_t>(dt.itemsize());
  if (kind == 'u' && itemsize >= 8) {
    const auto max = numpy().attr("max")(arr).cast<std::uint64_t>();
    if (max > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      throw py::value_error(name + ": value " + std::to_string(max) + " is out of range");
  }
  const bool narrow = (kind == 'i' && itemsize <= 4) || (kind == 'u' && itemsize <= 2);
  if (narrow) {
    out.array = py::array_t<std::int32_t, py::array::c_style | py::array::forcecast>(arr);
  } else {
    out.array = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>(arr);
    out.is_int64 = true;
  }
  out.size = static_cast<std::size_t>(out.array.size());
  out.data = out.array.data();
  return out;
}

py::array_t<double> as_weight_array(py::handle obj, const std::string& name) {
  if (py::isinstance<py::bool_>(obj)) throw py::type_error(name + ": expected an array of weights, got a bool");
  py::array arr = to_array(obj, name, "a 1-D or 2-D array of weights");
  const char kind = arr.dtype().kind();
  if (kind == 'b')
    throw py::type_error(name + ": expected numeric weights, got a boolean array");
  if (kind != 'f' && kind != 'i' && kind != 'u')
    throw py::type_error(name + ": expected numeric weights, got dtype " +
                         py::str(arr.dtype()).cast<std::string>());
  if (arr.ndim() != 1 && arr.ndim() != 2)
    throw py::value_error(name + ": expected shape (n_codes,) or (n_strata, n_codes), got " +
                          shape_str(arr));
  return py::array_t<double, py::array::c_style | py::array::forcecast>(arr);
}

std::uint64_t as_seed(py::handle obj) {
  if (obj.is_none())
    throw py::type_error("seed: an integer seed is required, got None");
  if (!is_int_scalar(obj))
    throw py::type_error("seed: expected an int in [0, 2**64), got " + type_name(obj));
  py::int_ v = py::reinterpret_steal<py::int_>(PyNumber_Index(obj.ptr()));
  if (!v) throw py::error_already_set();
  if (PyObject_RichCompareBool(v.ptr(), py::int_(0).ptr(), Py_LT) == 1)
    throw py::value_error("seed: must be >= 0, got " + py::str(v).cast<std::string>());
  const unsigned long long x = PyLong_AsUnsignedLongLong(v.ptr());
  if (x == static_cast<unsigned long long>(-1) && PyErr_Occurred()) {
    PyErr_Clear();
    throw py::value_error("seed: must be below 2**64, got " + py::str(v).cast<std::string>());
  }
  return static_cast<std::uint64_t>(x);
}

unsigned as_threads(py::handle obj) {
  if (obj.is_none()) return 0;
  if (!is_int_scalar(obj))
    throw py::type_error("threads: expected None or an int >= 1, got " + type_name(obj));
  const auto t = obj.cast<long long>();
  if (t < 1) throw py::value_error("threads: must be >= 1, got " + std::to_string(t));
  return static_cast<unsigned>(std::min<long long>(t, 1024));
}

py::array_t<std::int32_t> as_out(py::handle obj, std::size_t n,
                                 std::initializer_list<py::handle> inputs) {
  if (obj.is_none()) return py::array_t<std::int32_t>(static_cast<py::ssize_t>(n));
  if (!py::isinstance<py::array>(obj))
    throw py::type_error("out: expected a numpy int32 array, got " + type_name(obj));
  auto arr = py::reinterpret_borrow<py::array>(obj);
  if (!arr.dtype().is(py::dtype::of<std::int32_t>()))
    throw py::type_error("out: expected dtype int32, got " +
                         py::str(arr.dtype()).cast<std::string>());
  if (arr.ndim() != 1 || static_cast<std::size_t>(arr.size()) != n)
    throw py::value_error("out: expected shape (" + std::to_string(n) + ",), got " +
                          shape_str(arr));
  if (!(arr.flags() & py::array::c_style))
    throw py::value_error("out: must be C-contiguous");
  if (!arr.writeable()) throw py::value_error("out: is read-only");
  for (py::handle in : inputs) {
    if (n > 0 && numpy().attr("may_share_memory")(arr, in).cast<bool>())
      throw py::value_error("out: must not share memory with the input arrays");
  }
  return py::reinterpret_borrow<py::array_t<std::int32_t>>(arr);
}

ExhaustedPolicy as_exhausted(const std::string& s) {
  if (s == "repeat") return ExhaustedPolicy::kRepeat;
  if (s == "error") return ExhaustedPolicy::kError;
  throw py::value_error("exhausted: expected 'repeat' or 'error', got '" + s + "'");
}

IndexArg strata_arg(py::handle obj, std::size_t n_strata) {
  if (obj.is_none()) {
    if (n_strata > 1)
      throw py::value_error("strata: required, the index has " + std::to_string(n_strata) +
                            " strata");
    IndexArg a;
    a.is_scalar = true;
    return a;
  }
  return as_index_array(obj, "strata", /*allow_scalar=*/true);
}

StrataView strata_view(const IndexArg& s, std::size_t expected, const char* per) {
  if (s.is_scalar) return StrataView::constant(s.scalar);
  if (s.size != expected)
    throw py::value_error("strata: expected one stratum per " + std::string(per) + " (" +
                          std::to_string(expected) + "), got " + std::to_string(s.size));
  return s.is_int64 ? StrataView::of(static_cast<const std::int64_t*>(s.data))
                    : StrataView::of(static_cast<const std::int32_t*>(s.data));
}

VisitOffsets as_visit_offsets(py::handle obj) {
  IndexArg vo = as_index_array(obj, "visit_offsets");
  if (vo.size == 0)
    throw py::value_error(
        "visit_offsets: needs at least one entry (n_visits + 1 entries, starting at 0)");
  VisitOffsets out;
  out.offsets = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>(vo.array);
  out.n_visits = vo.size - 1;
  return out;
}

}  // namespace hiergen::bind
