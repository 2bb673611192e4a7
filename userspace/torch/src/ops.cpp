// SPDX-License-Identifier: MIT
// kiln_torch: ATen kernels of the PrivateUse1 backend on the Kiln op library,
// and the CPU fallback for everything else (docs/pytorch.md).
//
// Device kernels take fp32 tensors (indices int64); any other case of a
// registered op goes to the counted CPU fallback, so a model always runs.
// Strided, broadcast and offset operands are made dense on the device with
// kiln_strided_copy before an op-library kernel reads them.
#include <ATen/ATen.h>
#include <ATen/EmptyTensor.h>
#include <ATen/ExpandUtils.h>
#include <ATen/InferSize.h>
#include <ATen/WrapDimUtils.h>
#include <ATen/native/CPUFallback.h>
#include <ATen/ops/_reshape_alias_native.h>
#include <ATen/ops/as_strided_native.h>
#include <ATen/ops/view_native.h>
#include <c10/core/DeviceGuard.h>
#include <torch/library.h>

#include <cstring>

#include "counters.hpp"
#include "runtime.hpp"

namespace kiln_torch {
namespace {

using at::IntArrayRef;
using at::Tensor;
using kiln::ops::Binary;
using kiln::ops::Unary;

// ---- plumbing -------------------------------------------------------------------------

void kiln_fallback(const c10::OperatorHandle& op, torch::jit::Stack* stack) {
  const auto& n = op.schema().operator_name();
  note_fallback(n.overload_name.empty() ? n.name : n.name + "." + n.overload_name);
  at::native::cpu_fallback(op, stack);
}

// A registered op called with what the device kernels do not cover (dtype, mode):
// the same counted CPU fallback as an unregistered op.
#define KILN_FALLBACK(op, ...) at::native::call_fallback_fn<&kiln_fallback, at::_ops::op>::call(__VA_ARGS__)

Runtime& rt(const Tensor& t) { return Runtime::get(t.device().index()); }
Ref ref(const Tensor& t) { return rt(t).find(t.data_ptr()); }
bool on_kiln(const Tensor& t) { return t.defined() && t.device().type() == kDeviceType; }
bool f32(const Tensor& t) { return t.scalar_type() == at::kFloat; }
bool cpu_scalar(const Tensor& t) { return t.device().is_cpu() && t.dim() == 0; }

Tensor empty_on(IntArrayRef sizes, const Tensor& like, at::ScalarType dt = at::kFloat) {
  return at::empty(sizes, like.options().dtype(dt));
}

uint32_t u32(int64_t v, const char* what) {
  TORCH_CHECK(v >= 0 && v <= int64_t(UINT32_MAX), "kiln: ", what, " = ", v, " does not fit the op library's 32 bits");
  return uint32_t(v);
}

// Run an op-library kernel whose buffer arguments are at offsets inside their buffers:
// the Library wrappers validate shapes against whole buffers, then the offsets are set.
template <class... Pairs>
void run(Runtime& r, kiln::Args a, Pairs... idx_ref) {
  auto set = [&](std::pair<size_t, Ref> p) { a.set(p.first, *p.second.buf, p.second.offset); };
  (set(idx_ref), ...);
  r.launch(a);
}

// ---- strided copy: views, broadcasting, .contiguous() -----------------------------------

// dst (sizes) = src (same sizes, any strides incl. 0), elements of the same size.
void strided_copy(const Tensor& dst, const Tensor& src) {
  TORCH_CHECK(dst.sizes() == src.sizes(), "kiln: strided copy of ", src.sizes(), " into ", dst.sizes());
  TORCH_CHECK(dst.element_size() == src.element_size(), "kiln: strided copy between element sizes");
  if (dst.numel() == 0) return;
  Runtime& r = rt(dst);
  // Coalesce: drop size-1 dims, merge a dim into its outer one where both sides allow.
  std::vector<int64_t> n, s, d;
  for (int64_t i = 0; i < dst.dim(); i++) {
    if (dst.size(i) == 1) continue;
    int64_t ni = dst.size(i), si = src.stride(i), di = dst.stride(i);
    if (!n.empty() && s.back() == si * ni && d.back() == di * ni) {
      n.back() *= ni;
      s.back() = si;
      d.back() = di;
    } else {
      n.push_back(ni);
      s.push_back(si);
      d.push_back(di);
    }
  }
  if (n.empty()) n = {1}, s = {1}, d = {1};
  Ref sr = ref(src), dr = ref(dst);
  auto esz = int64_t(dst.element_size());
  if (n.size() == 1 && s[0] == 1 && d[0] == 1) {
    r.track(r.queue().copy(*dr.buf, *sr.buf, size_t(n[0] * esz), dr.offset, sr.offset));
    note_op("kiln_dma_copy");
    return;
  }
  // The kernel covers 4 dims; leading ones beyond that are walked here.
  while (n.size() < 4) n.insert(n.begin(), 1), s.insert(s.begin(), 0), d.insert(d.begin(), 0);
  size_t lead = n.size() - 4;
  int64_t outer = 1;
  for (size_t i = 0; i < lead; i++) outer *= n[i];
  auto k = r.lib().kernel("aten", "kiln_strided_copy");
  for (int64_t o = 0; o < outer; o++) {
    int64_t so = 0, dof = 0, rem = o;
    for (size_t i = lead; i-- > 0;) {
      int64_t idx = rem % n[i];
      rem /= n[i];
      so += idx * s[i];
      dof += idx * d[i];
    }
    kiln::Args a(k);
    a.set(0, *sr.buf, uint64_t(int64_t(sr.offset) + so * esz)).set(1, *dr.buf, uint64_t(int64_t(dr.offset) + dof * esz));
    a.set(2, uint32_t(esz));
    for (size_t i = 0; i < 4; i++) a.set(3 + i, uint64_t(n[lead + i]));
    for (size_t i = 0; i < 4; i++) a.set(7 + i, s[lead + i]);
    for (size_t i = 0; i < 4; i++) a.set(11 + i, d[lead + i]);
    r.launch(a);
  }
  note_op("kiln_strided_copy");
}

// t itself if dense and contiguous, else a contiguous copy made on the device.
Tensor dense(const Tensor& t) {
  if (t.is_contiguous()) return t;
  Tensor out = at::empty(t.sizes(), t.options());
  strided_copy(out, t);
  return out;
}

// ---- building blocks on dense fp32 tensors ---------------------------------------------

Tensor ew(Binary op, const Tensor& a, const Tensor& b, Tensor out = {}) {
  Runtime& r = rt(a);
  if (!out.defined()) out = empty_on(a.sizes(), a);
  auto n = uint64_t(a.numel());
  if (n == 0) return out;
  Ref ra = ref(a), rb = ref(b), ro = ref(out);
  run(r, r.lib().eltwise(op, *ra.buf, rb.buf, *ro.buf, n), std::pair{size_t(1), ra}, std::pair{size_t(2), rb},
      std::pair{size_t(3), ro});
  return out;
}

// out = a <op> scalar (add_scalar, mul_scalar, fill)
Tensor ews(Binary op, const Tensor& a, double s, Tensor out = {}) {
  Runtime& r = rt(a);
  if (!out.defined()) out = empty_on(a.sizes(), a);
  auto n = uint64_t(a.numel());
  if (n == 0) return out;
  Ref ra = ref(a), ro = ref(out);
  run(r, r.lib().eltwise(op, *ra.buf, nullptr, *ro.buf, n, float(s)), std::pair{size_t(1), ra},
      std::pair{size_t(3), ro});
  return out;
}

Tensor act(Unary fn, const Tensor& x, Tensor out = {}) {
  Runtime& r = rt(x);
  if (!out.defined()) out = empty_on(x.sizes(), x);
  auto n = uint64_t(x.numel());
  if (n == 0) return out;
  Ref rx = ref(x), ro = ref(out);
  run(r, r.lib().activation(fn, *rx.buf, *ro.buf, n), std::pair{size_t(1), rx}, std::pair{size_t(2), ro});
  return out;
}

// y[r] = scale * sum of row r of a dense [rows, cols] tensor
Tensor row_sum(const Tensor& x, int64_t rows, int64_t cols, double scale) {
  Runtime& r = rt(x);
  Tensor y = empty_on({rows}, x);
  if (rows == 0) return y;
  Ref rx = ref(x), ry = ref(y);
  kiln::Args a(r.lib().kernel("aten", "kiln_sum_rows"));
  a.set(0, *rx.buf, rx.offset).set(1, *ry.buf, ry.offset).set(2, uint64_t(rows)).set(3, uint64_t(cols)).set(4,
                                                                                                          float(scale));
  r.launch(a);
  note_op("kiln_sum_rows");
  return y;
}

// Write `value` into dst (dense) or, for a strided dst, through strided_copy.
void assign(const Tensor& dst, const Tensor& value) {
  if (dst.is_same(value)) return;
  strided_copy(dst, value);
}

// ---- memory, views, copies -------------------------------------------------------------

struct DeviceIndexGuard {
  explicit DeviceIndexGuard(c10::optional<at::Device> d)
      : old(current_device()) {
    if (d && d->has_index()) set_current_device(d->index());
  }
  ~DeviceIndexGuard() { set_current_device(old); }
  int old;
};

Tensor empty_memory_format(IntArrayRef size, c10::optional<at::ScalarType> dtype, c10::optional<at::Layout> layout,
                           c10::optional<at::Device> device, c10::optional<bool> pin,
                           c10::optional<at::MemoryFormat> mf) {
  TORCH_CHECK(!layout || *layout == at::kStrided, "kiln: only strided tensors");
  DeviceIndexGuard g(device);
  return at::detail::empty_generic(size, allocator(), c10::DispatchKeySet(c10::DispatchKey::PrivateUse1),
                                   c10::dtype_or_default(dtype), mf);
}

Tensor empty_strided(IntArrayRef size, IntArrayRef stride, c10::optional<at::ScalarType> dtype,
                     c10::optional<at::Layout> layout, c10::optional<at::Device> device, c10::optional<bool> pin) {
  TORCH_CHECK(!layout || *layout == at::kStrided, "kiln: only strided tensors");
  DeviceIndexGuard g(device);
  return at::detail::empty_strided_generic(size, stride, allocator(),
                                           c10::DispatchKeySet(c10::DispatchKey::PrivateUse1),
                                           c10::dtype_or_default(dtype));
}

const Tensor& resize_(const Tensor& self, IntArrayRef size, c10::optional<at::MemoryFormat> mf) {
  auto* impl = self.unsafeGetTensorImpl();
  int64_t old_bytes = int64_t(impl->storage().nbytes());
  impl->set_sizes_contiguous(size);
  int64_t need = (impl->numel() + impl->storage_offset()) * int64_t(self.itemsize());
  if (need > old_bytes) {
    DeviceIndexGuard g(self.device());
    auto storage = impl->storage();
    at::DataPtr p = allocator()->allocate(size_t(need));
    if (old_bytes > 0) {
      Runtime& r = rt(self);
      Ref from = r.find(storage.data()), to = r.find(p.get());
      r.track(r.queue().copy(*to.buf, *from.buf, size_t(old_bytes), to.offset, from.offset));
    }
    storage.set_data_ptr_noswap(std::move(p));
    storage.set_nbytes(size_t(need));
  }
  if (mf && *mf != at::MemoryFormat::Preserve) impl->empty_tensor_restride(*mf);
  return self;
}

// Host -> device, device -> host and device -> device copies through the device's DMA.
Tensor copy_from(const Tensor& self, const Tensor& dst, bool non_blocking) {
  TORCH_CHECK(self.sizes() == dst.sizes() || at::is_expandable_to(self.sizes(), dst.sizes()),
              "kiln: copy of ", self.sizes(), " into ", dst.sizes());
  if (dst.numel() == 0) return dst;
  if (self.device().is_cpu() && on_kiln(dst)) {
    Tensor src = self.to(dst.scalar_type()).expand(dst.sizes()).contiguous();
    Tensor staged = dst.is_contiguous() ? dst : at::empty(dst.sizes(), dst.options());
    Runtime& r = rt(dst);
    Ref to = ref(staged);
    r.track(r.queue().copy(*to.buf, std::span(static_cast<const std::byte*>(src.data_ptr()), src.nbytes()),
                           to.offset));
    if (!staged.is_same(dst)) strided_copy(dst, staged);
    note_op("copy host->kiln");
    return dst;
  }
  if (on_kiln(self) && dst.device().is_cpu()) {
    Tensor src = dense(self);
    Runtime& r = rt(self);
    bool direct = dst.is_contiguous() && dst.scalar_type() == src.scalar_type() && src.sizes() == dst.sizes();
    Tensor host = direct ? dst : at::empty(src.sizes(), src.options().device(at::kCPU));
    Ref from = ref(src);
    auto e = r.queue().copy(std::span(static_cast<std::byte*>(host.data_ptr()), host.nbytes()), *from.buf,
                            from.offset);
    // finish(), not e.wait(): a failed launch before this copy is reported here, as an
    // exception from .cpu() / .item(), instead of silently yielding stale data.
    r.queue().finish();
    r.track(e);
    if (!direct) dst.copy_(host);
    note_op("copy kiln->host");
    return dst;
  }
  TORCH_CHECK(on_kiln(self) && on_kiln(dst), "kiln: copy between ", self.device(), " and ", dst.device());
  if (self.device() != dst.device() || self.scalar_type() != dst.scalar_type()) {
    // Across devices or dtypes: through the host.
    note_fallback("copy (dtype conversion or between devices)");
    dst.copy_(self.cpu().to(dst.scalar_type()));
    return dst;
  }
  strided_copy(dst, self.expand(dst.sizes()));
  return dst;
}

Tensor copy_from_and_resize(const Tensor& self, const Tensor& dst) {
  if (dst.sizes() != self.sizes()) dst.resize_(self.sizes());
  return copy_from(self, dst, false);
}

at::Scalar local_scalar_dense(const Tensor& self) {
  note_op("item");
  return self.cpu().item();
}

Tensor& fill_kiln(Tensor& self, const at::Scalar& value) {
  if (self.numel() == 0) return self;
  Runtime& r = rt(self);
  if (self.is_contiguous() && self.element_size() == 4) {
    uint32_t bits = 0;
    if (self.scalar_type() == at::kFloat) {
      float f = value.toFloat();
      std::memcpy(&bits, &f, 4);
    } else if (self.scalar_type() == at::kInt) {
      bits = uint32_t(value.toInt());
    } else {
      return KILN_FALLBACK(fill__Scalar, self, value);
    }
    Ref rs = ref(self);
    r.track(r.queue().fill(*rs.buf, bits, self.nbytes(), rs.offset));
    note_op("aten::fill_");
    return self;
  }
  // Any dtype or layout: one element from the host, broadcast by a strided copy.
  Tensor one = at::empty({1}, self.options());
  copy_from(at::full({1}, value, self.options().device(at::kCPU)), one, false);
  strided_copy(self, one.expand(self.sizes()));
  note_op("aten::fill_");
  return self;
}

Tensor& zero_kiln(Tensor& self) { return fill_kiln(self, 0); }

// ---- matrix products -------------------------------------------------------------------

// A 2-D operand as the GEMM sees it: row-major with a leading dimension, or transposed.
struct Operand {
  Tensor t;
  bool trans = false;
  uint32_t ld = 0;
};

Operand operand(const Tensor& x) {
  int64_t rows = x.size(0), cols = x.size(1);
  if (x.stride(1) == 1 && x.stride(0) >= std::max<int64_t>(cols, 1))
    return {x, false, u32(std::max<int64_t>(x.stride(0), 1), "leading dimension")};
  if (x.stride(0) == 1 && x.stride(1) >= std::max<int64_t>(rows, 1))
    return {x, true, u32(std::max<int64_t>(x.stride(1), 1), "leading dimension")};
  Tensor c = x.contiguous();
  return {c, false, u32(std::max<int64_t>(cols, 1), "leading dimension")};
}

// out[m, n] (dense) = a[m, k] @ b[k, n] (+ bias[n]); a and b 2-D views at any offset.
void gemm(const Tensor& a, const Tensor& b, const Tensor& out, const Tensor* bias = nullptr) {
  Runtime& r = rt(out);
  int64_t m = a.size(0), k = a.size(1), n = b.size(1);
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (bias) strided_copy(out, bias->expand(out.sizes()));
    else zero_kiln(const_cast<Tensor&>(out));
    return;
  }
  Operand A = operand(a), B = operand(b);
  Ref ra = ref(A.t), rb = ref(B.t), rc = ref(out);
  kiln::ops::Gemm g{.m = u32(m, "m"), .n = u32(n, "n"), .k = u32(k, "k"), .lda = A.ld, .ldb = B.ld,
                    .ldc = u32(n, "n"), .trans_a = A.trans, .trans_b = B.trans};
  if (bias) {
    Ref rbias = ref(*bias);
    run(r, r.lib().gemm(*ra.buf, *rb.buf, *rc.buf, g, rbias.buf), std::pair{size_t(0), ra}, std::pair{size_t(1), rb},
        std::pair{size_t(2), rc}, std::pair{size_t(3), rbias});
  } else {
    run(r, r.lib().gemm(*ra.buf, *rb.buf, *rc.buf, g), std::pair{size_t(0), ra}, std::pair{size_t(1), rb},
        std::pair{size_t(2), rc});
  }
}

Tensor mm(const Tensor& self, const Tensor& mat2) {
  TORCH_CHECK(self.dim() == 2 && mat2.dim() == 2 && self.size(1) == mat2.size(0), "mm: shapes ", self.sizes(), " and ",
              mat2.sizes(), " cannot be multiplied");
  if (!f32(self) || !f32(mat2)) return KILN_FALLBACK(mm, self, mat2);
  Tensor out = empty_on({self.size(0), mat2.size(1)}, self);
  gemm(self, mat2, out);
  note_op("aten::mm");
  return out;
}

Tensor binary(const char* name, Binary op, const Tensor& a, const Tensor& b, const at::Scalar& alpha,
              const Tensor* inplace);

Tensor addmm(const Tensor& self, const Tensor& mat1, const Tensor& mat2, const at::Scalar& beta,
             const at::Scalar& alpha) {
  TORCH_CHECK(mat1.dim() == 2 && mat2.dim() == 2 && mat1.size(1) == mat2.size(0), "addmm: shapes ", mat1.sizes(),
              " and ", mat2.sizes(), " cannot be multiplied");
  if (!f32(self) || !f32(mat1) || !f32(mat2) || !on_kiln(self))
    return KILN_FALLBACK(addmm, self, mat1, mat2, beta, alpha);
  Tensor out = empty_on({mat1.size(0), mat2.size(1)}, mat1);
  bool plain = beta.toDouble() == 1.0 && alpha.toDouble() == 1.0;
  if (plain && self.numel() == mat2.size(1) && self.size(-1) == mat2.size(1)) {
    Tensor bias = dense(self.reshape({mat2.size(1)}));
    gemm(mat1, mat2, out, &bias);   // the bias in the GEMM's epilogue: one launch, as in nn.Linear
  } else {
    gemm(mat1, mat2, out);
    if (alpha.toDouble() != 1.0) ews(Binary::mul_scalar, out, alpha.toDouble(), out);
    if (beta.toDouble() != 0.0) {
      Tensor sb = dense(self.expand(out.sizes()));
      if (beta.toDouble() != 1.0) sb = ews(Binary::mul_scalar, sb, beta.toDouble());
      ew(Binary::add, out, sb, out);
    }
  }
  note_op("aten::addmm");
  return out;
}

Tensor bmm(const Tensor& self, const Tensor& mat2) {
  TORCH_CHECK(self.dim() == 3 && mat2.dim() == 3 && self.size(0) == mat2.size(0) && self.size(2) == mat2.size(1),
              "bmm: shapes ", self.sizes(), " and ", mat2.sizes(), " cannot be multiplied");
  if (!f32(self) || !f32(mat2)) return KILN_FALLBACK(bmm, self, mat2);
  Tensor out = empty_on({self.size(0), self.size(1), mat2.size(2)}, self);
  for (int64_t i = 0; i < self.size(0); i++) gemm(self[i], mat2[i], out[i]);
  note_op("aten::bmm");
  return out;
}

// ---- element-wise ----------------------------------------------------------------------

// a <op> alpha*b with broadcasting; a CPU scalar on either side becomes a scalar op.
// `inplace`: the result goes into *inplace (a), as add_/mul_/... do.
Tensor binary(const char* name, Binary op, const Tensor& a, const Tensor& b, const at::Scalar& alpha,
              const Tensor* inplace) {
  double al = alpha.toDouble();
  Tensor out;
  if (cpu_scalar(b) && on_kiln(a)) {
    double s = b.item().toDouble();
    Tensor x = dense(a);
    Tensor dst = inplace && inplace->is_contiguous() ? *inplace : Tensor();
    switch (op) {
      case Binary::add: out = ews(Binary::add_scalar, x, s * al, dst); break;
      case Binary::sub: out = ews(Binary::add_scalar, x, -s * al, dst); break;
      case Binary::mul: out = ews(Binary::mul_scalar, x, s, dst); break;
      default: out = ews(Binary::mul_scalar, x, 1.0 / s, dst); break;
    }
  } else if (cpu_scalar(a) && on_kiln(b)) {
    double s = a.item().toDouble();
    Tensor x = dense(b);
    switch (op) {
      case Binary::add: out = ews(Binary::add_scalar, al == 1.0 ? x : ews(Binary::mul_scalar, x, al), s); break;
      case Binary::sub: out = ews(Binary::add_scalar, ews(Binary::mul_scalar, x, -al), s); break;
      case Binary::mul: out = ews(Binary::mul_scalar, x, s); break;
      default: out = ews(Binary::mul_scalar, act(Unary::recip, x), s); break;
    }
  } else {
    TORCH_CHECK(on_kiln(a) && on_kiln(b) && a.device() == b.device(), name,
                ": expected all tensors on the same Kiln device, got ", a.device(), " and ", b.device());
    auto shape = at::infer_size(a.sizes(), b.sizes());
    Tensor x = dense(a.expand(shape)), y = dense(b.expand(shape));
    if (al != 1.0 && (op == Binary::add || op == Binary::sub)) y = ews(Binary::mul_scalar, y, al);
    Tensor dst = inplace && inplace->is_contiguous() && inplace->sizes() == IntArrayRef(shape) ? *inplace : Tensor();
    out = ew(op, x, y, dst);
  }
  if (inplace && !out.is_same(*inplace)) {
    TORCH_CHECK(out.sizes() == inplace->sizes(), name, ": result of shape ", out.sizes(),
                " does not fit the in-place operand of shape ", inplace->sizes());
    assign(*inplace, out);
    out = *inplace;
  }
  note_op(name);
  return out;
}

// Device kernels cover fp32 tensors on one Kiln device, each side possibly a CPU scalar.
bool binary_on_device(const Tensor& a, const Tensor& b) {
  auto ok = [](const Tensor& t) { return on_kiln(t) ? f32(t) : cpu_scalar(t); };
  return ok(a) && ok(b) && (on_kiln(a) || on_kiln(b));
}

#define KILN_BINARY(aten, op)                                                                          \
  Tensor aten##_Tensor(const Tensor& a, const Tensor& b, const at::Scalar& alpha) {                    \
    if (!binary_on_device(a, b)) return KILN_FALLBACK(aten##_Tensor, a, b, alpha);                    \
    return binary("aten::" #aten, op, a, b, alpha, nullptr);                                          \
  }                                                                                                   \
  Tensor& aten##__Tensor(Tensor& a, const Tensor& b, const at::Scalar& alpha) {                        \
    if (!binary_on_device(a, b) || !on_kiln(a)) return KILN_FALLBACK(aten##__Tensor, a, b, alpha);    \
    binary("aten::" #aten "_", op, a, b, alpha, &a);                                                  \
    return a;                                                                                         \
  }
KILN_BINARY(add, Binary::add)
KILN_BINARY(sub, Binary::sub)
#undef KILN_BINARY

#define KILN_BINARY_NOALPHA(aten, op)                                                                  \
  Tensor aten##_Tensor(const Tensor& a, const Tensor& b) {                                             \
    if (!binary_on_device(a, b)) return KILN_FALLBACK(aten##_Tensor, a, b);                           \
    return binary("aten::" #aten, op, a, b, 1, nullptr);                                              \
  }                                                                                                   \
  Tensor& aten##__Tensor(Tensor& a, const Tensor& b) {                                                 \
    if (!binary_on_device(a, b) || !on_kiln(a)) return KILN_FALLBACK(aten##__Tensor, a, b);           \
    binary("aten::" #aten "_", op, a, b, 1, &a);                                                      \
    return a;                                                                                         \
  }
KILN_BINARY_NOALPHA(mul, Binary::mul)
KILN_BINARY_NOALPHA(div, Binary::div)
#undef KILN_BINARY_NOALPHA

// self += value * (t1 <op> t2), as Adam's addcmul_ / addcdiv_
Tensor& addc(const char* name, Binary op, Tensor& self, const Tensor& t1, const Tensor& t2, const at::Scalar& value) {
  auto shape = at::infer_size(t1.sizes(), t2.sizes());
  Tensor p = ew(op, dense(t1.expand(shape)), dense(t2.expand(shape)));
  binary(name, Binary::add, self, p, value, &self);
  return self;
}

Tensor& addcmul_(Tensor& self, const Tensor& t1, const Tensor& t2, const at::Scalar& value) {
  if (!on_kiln(self) || !on_kiln(t1) || !on_kiln(t2) || !f32(self) || !f32(t1) || !f32(t2))
    return KILN_FALLBACK(addcmul_, self, t1, t2, value);
  return addc("aten::addcmul_", Binary::mul, self, t1, t2, value);
}

Tensor& addcdiv_(Tensor& self, const Tensor& t1, const Tensor& t2, const at::Scalar& value) {
  if (!on_kiln(self) || !on_kiln(t1) || !on_kiln(t2) || !f32(self) || !f32(t1) || !f32(t2))
    return KILN_FALLBACK(addcdiv_, self, t1, t2, value);
  return addc("aten::addcdiv_", Binary::div, self, t1, t2, value);
}

#define KILN_UNARY(aten, fn)                                    \
  Tensor aten(const Tensor& x) {                                \
    if (!f32(x)) return KILN_FALLBACK(aten, x);                 \
    Tensor y = act(fn, dense(x));                               \
    note_op("aten::" #aten);                                    \
    return y;                                                   \
  }                                                             \
  Tensor& aten##_(Tensor& x) {                                  \
    if (!f32(x)) return KILN_FALLBACK(aten##_, x);              \
    Tensor y = act(fn, dense(x), x.is_contiguous() ? x : Tensor()); \
    assign(x, y);                                               \
    note_op("aten::" #aten "_");                                \
    return x;                                                   \
  }
KILN_UNARY(relu, Unary::relu)
KILN_UNARY(sigmoid, Unary::sigmoid)
KILN_UNARY(tanh, Unary::tanh)
KILN_UNARY(exp, Unary::exp)
KILN_UNARY(log, Unary::log)
KILN_UNARY(sqrt, Unary::sqrt)
KILN_UNARY(rsqrt, Unary::rsqrt)
KILN_UNARY(neg, Unary::neg)
KILN_UNARY(abs, Unary::abs)
KILN_UNARY(reciprocal, Unary::recip)
#undef KILN_UNARY

// sgn(x) = [x > 0] - [x < 0] (abs's backward), from the ReLU-backward mask
Tensor sgn(const Tensor& x) {
  if (!f32(x)) return KILN_FALLBACK(sgn, x);
  Tensor xd = dense(x);
  Tensor ones = ews(Binary::fill, xd, 1.0);
  Tensor pos = ew(Binary::relu_grad, ones, xd);
  Tensor neg = ew(Binary::relu_grad, ones, ews(Binary::mul_scalar, xd, -1.0));
  Tensor out = ew(Binary::sub, pos, neg);
  note_op("aten::sgn");
  return out;
}

Tensor threshold_backward(const Tensor& grad, const Tensor& self, const at::Scalar& threshold) {
  if (!f32(grad) || !f32(self) || threshold.toDouble() != 0.0 || grad.sizes() != self.sizes())
    return KILN_FALLBACK(threshold_backward, grad, self, threshold);
  Tensor out = ew(Binary::relu_grad, dense(grad), dense(self));
  note_op("aten::threshold_backward");
  return out;
}

// d sigmoid = g * y * (1 - y)
Tensor sigmoid_backward(const Tensor& grad, const Tensor& y) {
  if (!f32(grad) || !f32(y) || grad.sizes() != y.sizes()) return KILN_FALLBACK(sigmoid_backward, grad, y);
  Tensor yd = dense(y);
  Tensor one_minus = ews(Binary::add_scalar, ews(Binary::mul_scalar, yd, -1.0), 1.0);
  Tensor out = ew(Binary::mul, ew(Binary::mul, dense(grad), yd), one_minus);
  note_op("aten::sigmoid_backward");
  return out;
}

// d tanh = g * (1 - y^2)
Tensor tanh_backward(const Tensor& grad, const Tensor& y) {
  if (!f32(grad) || !f32(y) || grad.sizes() != y.sizes()) return KILN_FALLBACK(tanh_backward, grad, y);
  Tensor yd = dense(y);
  Tensor t = ews(Binary::add_scalar, ews(Binary::mul_scalar, ew(Binary::mul, yd, yd), -1.0), 1.0);
  Tensor out = ew(Binary::mul, dense(grad), t);
  note_op("aten::tanh_backward");
  return out;
}

Tensor gelu_erf(const Tensor& x, const Tensor* g) {
  Runtime& r = rt(x);
  Tensor out = empty_on(x.sizes(), x);
  if (x.numel() == 0) return out;
  Ref rx = ref(x), ro = ref(out);
  kiln::Args a(r.lib().kernel("aten", "kiln_gelu_erf"));
  a.set(0, *rx.buf, rx.offset);
  if (g) {
    Ref rg = ref(*g);
    a.set(1, *rg.buf, rg.offset);
  } else {
    a.set_null(1);
  }
  a.set(2, *ro.buf, ro.offset).set(3, uint64_t(x.numel()));
  r.launch(a);
  return out;
}

Tensor gelu(const Tensor& x, c10::string_view approximate) {
  if (!f32(x)) return KILN_FALLBACK(gelu, x, approximate);
  Tensor out = approximate == "tanh" ? act(Unary::gelu, dense(x)) : gelu_erf(dense(x), nullptr);
  note_op("aten::gelu");
  return out;
}

Tensor gelu_backward(const Tensor& grad, const Tensor& x, c10::string_view approximate) {
  if (!f32(grad) || !f32(x) || approximate != "none" || grad.sizes() != x.sizes())
    return KILN_FALLBACK(gelu_backward, grad, x, approximate);
  Tensor g = dense(grad);
  Tensor out = gelu_erf(dense(x), &g);
  note_op("aten::gelu_backward");
  return out;
}

// ---- softmax and losses ----------------------------------------------------------------

bool last_dim(const Tensor& x, int64_t dim) { return x.dim() == 0 || at::maybe_wrap_dim(dim, x.dim()) == x.dim() - 1; }

int64_t row_len(const Tensor& x) { return x.dim() == 0 ? 1 : x.size(-1); }

Tensor softmax_rows(const Tensor& x) {
  Runtime& r = rt(x);
  Tensor xd = dense(x), y = empty_on(x.sizes(), x);
  int64_t cols = row_len(x), rows = cols ? x.numel() / cols : 0;
  if (rows == 0) return y;
  Ref rx = ref(xd), ry = ref(y);
  run(r, r.lib().softmax(*rx.buf, *ry.buf, u32(rows, "rows"), u32(cols, "cols")), std::pair{size_t(0), rx},
      std::pair{size_t(1), ry});
  return y;
}

Tensor softmax(const Tensor& x, int64_t dim, bool half_to_float) {
  if (!f32(x) || !last_dim(x, dim) || row_len(x) > 16384) return KILN_FALLBACK(_softmax, x, dim, half_to_float);
  Tensor y = softmax_rows(x);
  note_op("aten::_softmax");
  return y;
}

// log_softmax = log(softmax): exact to fp32 rounding while no probability underflows
// (a logit more than ~87 below its row's maximum); docs/pytorch.md, limits.
Tensor log_softmax(const Tensor& x, int64_t dim, bool half_to_float) {
  if (!f32(x) || !last_dim(x, dim) || row_len(x) > 16384) return KILN_FALLBACK(_log_softmax, x, dim, half_to_float);
  Tensor y = softmax_rows(x);
  act(Unary::log, y, y);
  note_op("aten::_log_softmax");
  return y;
}

// g - broadcast(s) over rows, where s has one value per row
Tensor sub_rows(const Tensor& g, const Tensor& s, int64_t rows, int64_t cols) {
  Tensor sb = dense(s.reshape({rows, 1}).expand({rows, cols}));
  return ew(Binary::sub, g, sb);
}

// dx = y * (g - sum(g * y))
Tensor softmax_backward(const Tensor& grad, const Tensor& y, int64_t dim, at::ScalarType input_dtype) {
  if (!f32(grad) || !f32(y) || !last_dim(y, dim) || grad.sizes() != y.sizes())
    return KILN_FALLBACK(_softmax_backward_data, grad, y, dim, input_dtype);
  Tensor g = dense(grad), yd = dense(y);
  int64_t cols = row_len(y), rows = cols ? y.numel() / cols : 0;
  Tensor s = row_sum(ew(Binary::mul, g, yd), rows, cols, 1.0);
  Tensor out = ew(Binary::mul, yd, sub_rows(g, s, rows, cols)).view(y.sizes());
  note_op("aten::_softmax_backward_data");
  return out;
}

// dx = g - exp(y) * sum(g)
Tensor log_softmax_backward(const Tensor& grad, const Tensor& y, int64_t dim, at::ScalarType input_dtype) {
  if (!f32(grad) || !f32(y) || !last_dim(y, dim) || grad.sizes() != y.sizes())
    return KILN_FALLBACK(_log_softmax_backward_data, grad, y, dim, input_dtype);
  Tensor g = dense(grad);
  int64_t cols = row_len(y), rows = cols ? y.numel() / cols : 0;
  Tensor s = row_sum(g, rows, cols, 1.0);
  Tensor sb = dense(s.reshape({rows, 1}).expand({rows, cols}));
  Tensor out = ew(Binary::sub, g, ew(Binary::mul, act(Unary::exp, dense(y)), sb)).view(y.sizes());
  note_op("aten::_log_softmax_backward_data");
  return out;
}

std::tuple<Tensor, Tensor> nll_loss_forward(const Tensor& self, const Tensor& target,
                                           const c10::optional<Tensor>& weight, int64_t reduction,
                                           int64_t ignore_index) {
  if (!f32(self) || (weight && weight->defined()) || target.scalar_type() != at::kLong || self.dim() > 2 ||
      self.dim() < 1 || reduction < 0 || reduction > 2)
    return KILN_FALLBACK(nll_loss_forward, self, target, weight, reduction, ignore_index);
  Runtime& r = rt(self);
  int64_t rows = self.dim() == 2 ? self.size(0) : 1, cols = self.size(-1);
  TORCH_CHECK(target.numel() == rows, "nll_loss: ", rows, " rows but ", target.numel(), " targets");
  Tensor x = dense(self), t = dense(target);
  Tensor loss = reduction == 0 && self.dim() == 2 ? empty_on({rows}, self) : empty_on({}, self);
  Tensor total = empty_on({}, self);
  Ref rx = ref(x), rtg = ref(t), rl = ref(loss), rw = ref(total);
  kiln::Args a(r.lib().kernel("aten", "kiln_nll_loss"));
  a.set(0, *rx.buf, rx.offset).set(1, *rtg.buf, rtg.offset).set(2, *rl.buf, rl.offset).set(3, *rw.buf, rw.offset);
  a.set(4, uint64_t(rows)).set(5, uint64_t(cols)).set(6, ignore_index).set(7, uint32_t(reduction));
  r.launch(a);
  note_op("aten::nll_loss_forward");
  return {loss, total};
}

Tensor nll_loss_backward(const Tensor& grad, const Tensor& self, const Tensor& target,
                         const c10::optional<Tensor>& weight, int64_t reduction, int64_t ignore_index,
                         const Tensor& total_weight) {
  if (!f32(self) || !f32(grad) || (weight && weight->defined()) || target.scalar_type() != at::kLong ||
      self.dim() > 2 || self.dim() < 1 || reduction < 0 || reduction > 2)
    return KILN_FALLBACK(nll_loss_backward, grad, self, target, weight, reduction, ignore_index, total_weight);
  Runtime& r = rt(self);
  int64_t rows = self.dim() == 2 ? self.size(0) : 1, cols = self.size(-1);
  Tensor out = empty_on(self.sizes(), self);
  zero_kiln(out);
  Tensor g = dense(grad), t = dense(target), tw = dense(total_weight);
  Ref rg = ref(g), rtg = ref(t), rw = ref(tw), ro = ref(out);
  kiln::Args a(r.lib().kernel("aten", "kiln_nll_loss_backward"));
  a.set(0, *rg.buf, rg.offset).set(1, *rtg.buf, rtg.offset).set(2, *rw.buf, rw.offset).set(3, *ro.buf, ro.offset);
  a.set(4, uint64_t(rows)).set(5, uint64_t(cols)).set(6, ignore_index).set(7, uint32_t(reduction));
  r.launch(a);
  note_op("aten::nll_loss_backward");
  return out;
}

// ---- reductions ------------------------------------------------------------------------

// sum (or mean) over `dims` (all when empty): the reduced dims are moved last,
// made dense, and each row summed on the RE.
Tensor reduce(const Tensor& self, at::OptionalIntArrayRef dims_opt, bool keepdim, bool mean) {
  int64_t nd = self.dim();
  std::vector<bool> red(size_t(std::max<int64_t>(nd, 1)), false);
  bool all = !dims_opt || dims_opt->empty();
  if (!all)
    for (int64_t d : *dims_opt) red[size_t(at::maybe_wrap_dim(d, nd))] = true;
  std::vector<int64_t> perm, kept_sizes, out_sizes;
  int64_t rows = 1, cols = 1;
  for (int64_t i = 0; i < nd; i++) {
    bool r = all || red[size_t(i)];
    if (!r) {
      perm.push_back(i);
      kept_sizes.push_back(self.size(i));
      rows *= self.size(i);
    }
    if (!r || keepdim) out_sizes.push_back(r ? 1 : self.size(i));
  }
  for (int64_t i = 0; i < nd; i++)
    if (all || red[size_t(i)]) {
      perm.push_back(i);
      cols *= self.size(i);
    }
  Tensor x = dense(nd ? self.permute(perm) : self.reshape({1}));
  Tensor y = row_sum(x, rows, cols, mean ? 1.0 / double(cols) : 1.0);
  return y.view(out_sizes);
}

Tensor sum_dim(const Tensor& self, at::OptionalIntArrayRef dim, bool keepdim, c10::optional<at::ScalarType> dtype) {
  if (!f32(self) || (dtype && *dtype != at::kFloat) || self.numel() == 0)
    return KILN_FALLBACK(sum_dim_IntList, self, dim, keepdim, dtype);
  Tensor y = reduce(self, dim, keepdim, false);
  note_op("aten::sum");
  return y;
}

Tensor mean_dim(const Tensor& self, at::OptionalIntArrayRef dim, bool keepdim, c10::optional<at::ScalarType> dtype) {
  if (!f32(self) || (dtype && *dtype != at::kFloat) || self.numel() == 0)
    return KILN_FALLBACK(mean_dim, self, dim, keepdim, dtype);
  Tensor y = reduce(self, dim, keepdim, true);
  note_op("aten::mean");
  return y;
}

// ---- cat, embeddings -------------------------------------------------------------------

Tensor cat(const at::ITensorListRef& tensors, int64_t dim) {
  std::vector<Tensor> ts;
  for (const Tensor& t : tensors)
    if (!(t.dim() == 1 && t.numel() == 0)) ts.push_back(t);   // legacy empty tensors are skipped, as on CPU
  bool ok = !ts.empty();
  for (auto& t : ts) ok = ok && on_kiln(t) && t.scalar_type() == ts[0].scalar_type() && t.dim() == ts[0].dim();
  if (!ok) return KILN_FALLBACK(cat, tensors, dim);
  int64_t d = at::maybe_wrap_dim(dim, ts[0].dim());
  auto sizes = ts[0].sizes().vec();
  sizes[size_t(d)] = 0;
  for (auto& t : ts) sizes[size_t(d)] += t.size(d);
  Tensor out = at::empty(sizes, ts[0].options());
  int64_t off = 0;
  for (auto& t : ts) {
    if (t.numel()) strided_copy(out.narrow(d, off, t.size(d)), t);
    off += t.size(d);
  }
  note_op("aten::cat");
  return out;
}

Tensor index_select(const Tensor& self, int64_t dim, const Tensor& index) {
  int64_t row_bytes = self.dim() ? self.numel() / std::max<int64_t>(self.size(0), 1) * int64_t(self.itemsize()) : 0;
  if (self.dim() < 1 || at::maybe_wrap_dim(dim, self.dim()) != 0 || index.scalar_type() != at::kLong ||
      index.dim() > 1 || row_bytes == 0 || row_bytes > 65536 || !on_kiln(index))
    return KILN_FALLBACK(index_select, self, dim, index);
  Runtime& r = rt(self);
  auto sizes = self.sizes().vec();
  sizes[0] = index.numel();
  Tensor out = at::empty(sizes, self.options());
  if (index.numel()) {
    Tensor table = dense(self), idx = dense(index);
    Ref rtb = ref(table), ri = ref(idx), ro = ref(out);
    kiln::Args a(r.lib().kernel("aten", "kiln_index_select_rows"));
    a.set(0, *rtb.buf, rtb.offset).set(1, *ri.buf, ri.offset).set(2, *ro.buf, ro.offset);
    a.set(3, uint64_t(index.numel())).set(4, uint64_t(self.size(0))).set(5, uint32_t(row_bytes));
    r.launch(a);
  }
  note_op("aten::index_select");
  return out;
}

// grad_w[num_weights, dim] from rows of grad, scattered by index (bags: offset2bag)
Tensor embedding_scatter(const Tensor& grad2d, const Tensor& indices, const Tensor* offset2bag,
                         const Tensor* bag_size, bool mean, int64_t num_weights, int64_t padding_idx) {
  Runtime& r = rt(grad2d);
  int64_t dim = grad2d.size(1);
  Tensor gw = empty_on({num_weights, dim}, grad2d);
  zero_kiln(gw);
  if (indices.numel() == 0) return gw;
  Tensor g = dense(grad2d), idx = dense(indices);
  Ref rg = ref(g), ri = ref(idx), rw = ref(gw);
  kiln::Args a(r.lib().kernel("aten", "kiln_embedding_backward"));
  a.set(0, *rg.buf, rg.offset).set(1, *ri.buf, ri.offset);
  Tensor o2b, bs;
  if (offset2bag) {
    o2b = dense(*offset2bag);
    bs = dense(*bag_size);
    Ref ro = ref(o2b), rb = ref(bs);
    a.set(2, *ro.buf, ro.offset).set(3, *rb.buf, rb.offset);
  } else {
    a.set_null(2).set_null(3);
  }
  a.set(4, *rw.buf, rw.offset).set(5, uint64_t(indices.numel())).set(6, uint64_t(num_weights));
  a.set(7, u32(dim, "embedding dim")).set(8, uint32_t(mean)).set(9, padding_idx);
  r.launch(a);
  return gw;
}

Tensor embedding_dense_backward(const Tensor& grad, const Tensor& indices, int64_t num_weights, int64_t padding_idx,
                                bool scale_grad_by_freq) {
  if (!f32(grad) || indices.scalar_type() != at::kLong || scale_grad_by_freq || !on_kiln(indices))
    return KILN_FALLBACK(embedding_dense_backward, grad, indices, num_weights, padding_idx, scale_grad_by_freq);
  int64_t dim = grad.size(-1);
  Tensor out = embedding_scatter(grad.reshape({-1, dim}), indices.reshape({-1}), nullptr, nullptr, false, num_weights,
                                 padding_idx);
  note_op("aten::embedding_dense_backward");
  return out;
}

// int64 -> int32 on the device (the embedding-bag kernel's index type)
Tensor narrow_i32(const Tensor& t) {
  Runtime& r = rt(t);
  Tensor src = dense(t), out = empty_on(t.sizes(), t, at::kInt);
  if (t.numel() == 0) return out;
  TORCH_CHECK(t.numel() < (int64_t(1) << 31), "kiln: embedding_bag with 2^31 or more indices");
  Ref rs = ref(src), ro = ref(out);
  kiln::Args a(r.lib().kernel("aten", "kiln_narrow_i64"));
  a.set(0, *rs.buf, rs.offset).set(1, *ro.buf, ro.offset).set(2, uint64_t(t.numel()));
  r.launch(a);
  return out;
}

std::tuple<Tensor, Tensor, Tensor, Tensor> embedding_bag(const Tensor& weight, const Tensor& indices,
                                                         const Tensor& offsets, bool scale_grad_by_freq,
                                                         int64_t mode, bool sparse,
                                                         const c10::optional<Tensor>& per_sample_weights,
                                                         bool include_last_offset, int64_t padding_idx) {
  bool ok = f32(weight) && weight.dim() == 2 && indices.dim() == 1 && offsets.dim() == 1 &&
            indices.scalar_type() == at::kLong && offsets.scalar_type() == at::kLong && (mode == 0 || mode == 1) &&
            !(per_sample_weights && per_sample_weights->defined()) && padding_idx < 0 && on_kiln(indices) &&
            on_kiln(offsets) && weight.size(1) > 0 && weight.size(1) <= 16384;
  if (!ok)
    return KILN_FALLBACK(_embedding_bag, weight, indices, offsets, scale_grad_by_freq, mode, sparse, per_sample_weights,
                         include_last_offset, padding_idx);
  Runtime& r = rt(weight);
  int64_t n = indices.numel(), bags = include_last_offset ? offsets.numel() - 1 : offsets.numel();
  int64_t dim = weight.size(1);
  // The kernels take bags + 1 offsets, the last one the number of indices.
  Tensor offs = empty_on({bags + 1}, offsets, at::kLong);
  strided_copy(offs.narrow(0, 0, bags), offsets.narrow(0, 0, bags));
  {
    Ref ro = ref(offs);
    int64_t last = n;
    r.track(r.queue().copy(*ro.buf, std::as_bytes(std::span(&last, 1)), ro.offset + uint64_t(bags) * 8));
  }
  Tensor out = empty_on({bags, dim}, weight);
  Tensor offset2bag = empty_on({n}, indices, at::kLong), bag_size = empty_on({bags}, indices, at::kLong);
  Tensor max_indices = empty_on({bags}, indices, at::kLong);
  zero_kiln(max_indices);
  if (bags > 0) {
    Tensor table = dense(weight), idx32 = narrow_i32(indices), off32 = narrow_i32(offs);
    if (n == 0) idx32 = empty_on({1}, indices, at::kInt);   // a valid (unread) buffer
    Ref rt_ = ref(table), ri = ref(idx32), rof = ref(off32), rout = ref(out);
    run(r,
        r.lib().embedding_bag(*rt_.buf, uint64_t(weight.size(0)), u32(dim, "dim"), *ri.buf, *rof.buf,
                              u32(bags, "bags"), mode == 1 ? kiln::ops::BagMode::mean : kiln::ops::BagMode::sum,
                              *rout.buf),
        std::pair{size_t(0), rt_}, std::pair{size_t(3), ri}, std::pair{size_t(4), rof}, std::pair{size_t(7), rout});
    Ref rofs = ref(offs), ro2b = ref(offset2bag), rbs = ref(bag_size);
    kiln::Args a(r.lib().kernel("aten", "kiln_bag_meta"));
    a.set(0, *rofs.buf, rofs.offset).set(1, uint64_t(bags)).set(2, *ro2b.buf, ro2b.offset).set(3, *rbs.buf,
                                                                                                 rbs.offset);
    if (n == 0) a.set(2, *rbs.buf, rbs.offset);   // no index to label: any valid buffer
    r.launch(a);
  }
  note_op("aten::_embedding_bag");
  return {out, offset2bag, bag_size, max_indices};
}

std::tuple<Tensor, Tensor, Tensor, Tensor> embedding_bag_forward_only(
    const Tensor& weight, const Tensor& indices, const Tensor& offsets, bool scale_grad_by_freq, int64_t mode,
    bool sparse, const c10::optional<Tensor>& per_sample_weights, bool include_last_offset, int64_t padding_idx) {
  return embedding_bag(weight, indices, offsets, scale_grad_by_freq, mode, sparse, per_sample_weights,
                       include_last_offset, padding_idx);
}

Tensor embedding_bag_dense_backward(const Tensor& grad, const Tensor& indices, const Tensor& offset2bag,
                                    const Tensor& bag_size, const Tensor& maximum_indices, int64_t num_weights,
                                    bool scale_grad_by_freq, int64_t mode,
                                    const c10::optional<Tensor>& per_sample_weights, int64_t padding_idx) {
  bool ok = f32(grad) && grad.dim() == 2 && (mode == 0 || mode == 1) && !scale_grad_by_freq &&
            !(per_sample_weights && per_sample_weights->defined()) && indices.scalar_type() == at::kLong &&
            offset2bag.scalar_type() == at::kLong && bag_size.scalar_type() == at::kLong && on_kiln(indices) &&
            offset2bag.numel() == indices.numel();
  if (!ok)
    return KILN_FALLBACK(_embedding_bag_dense_backward, grad, indices, offset2bag, bag_size, maximum_indices,
                         num_weights, scale_grad_by_freq, mode, per_sample_weights, padding_idx);
  Tensor out = embedding_scatter(grad, indices, &offset2bag, &bag_size, mode == 1, num_weights, padding_idx);
  note_op("aten::_embedding_bag_dense_backward");
  return out;
}

// ---- registration ----------------------------------------------------------------------

TORCH_LIBRARY_IMPL(_, PrivateUse1, m) { m.fallback(torch::CppFunction::makeFromBoxedFunction<&kiln_fallback>()); }

TORCH_LIBRARY_IMPL(aten, PrivateUse1, m) {
  // memory, views, copies
  m.impl("empty.memory_format", empty_memory_format);
  m.impl("empty_strided", empty_strided);
  m.impl("as_strided", at::native::as_strided_tensorimpl);
  m.impl("view", at::native::view);
  m.impl("_reshape_alias", at::native::_reshape_alias);
  m.impl("resize_", resize_);
  m.impl("_copy_from", copy_from);
  m.impl("_copy_from_and_resize", copy_from_and_resize);
  m.impl("_local_scalar_dense", local_scalar_dense);
  m.impl("fill_.Scalar", fill_kiln);
  m.impl("zero_", zero_kiln);
  m.impl("cat", cat);
  // matrix products
  m.impl("mm", mm);
  m.impl("addmm", addmm);
  m.impl("bmm", bmm);
  // element-wise
  m.impl("add.Tensor", add_Tensor);
  m.impl("add_.Tensor", add__Tensor);
  m.impl("sub.Tensor", sub_Tensor);
  m.impl("sub_.Tensor", sub__Tensor);
  m.impl("mul.Tensor", mul_Tensor);
  m.impl("mul_.Tensor", mul__Tensor);
  m.impl("div.Tensor", div_Tensor);
  m.impl("div_.Tensor", div__Tensor);
  m.impl("addcmul_", addcmul_);
  m.impl("addcdiv_", addcdiv_);
  m.impl("relu", relu);
  m.impl("relu_", relu_);
  m.impl("sigmoid", sigmoid);
  m.impl("sigmoid_", sigmoid_);
  m.impl("tanh", tanh);
  m.impl("tanh_", tanh_);
  m.impl("exp", exp);
  m.impl("exp_", exp_);
  m.impl("log", log);
  m.impl("log_", log_);
  m.impl("sqrt", sqrt);
  m.impl("sqrt_", sqrt_);
  m.impl("rsqrt", rsqrt);
  m.impl("rsqrt_", rsqrt_);
  m.impl("neg", neg);
  m.impl("neg_", neg_);
  m.impl("abs", abs);
  m.impl("abs_", abs_);
  m.impl("reciprocal", reciprocal);
  m.impl("reciprocal_", reciprocal_);
  m.impl("sgn", sgn);
  m.impl("threshold_backward", threshold_backward);
  m.impl("sigmoid_backward", sigmoid_backward);
  m.impl("tanh_backward", tanh_backward);
  m.impl("gelu", gelu);
  m.impl("gelu_backward", gelu_backward);
  // softmax, losses, reductions
  m.impl("_softmax", softmax);
  m.impl("_log_softmax", log_softmax);
  m.impl("_softmax_backward_data", softmax_backward);
  m.impl("_log_softmax_backward_data", log_softmax_backward);
  m.impl("nll_loss_forward", nll_loss_forward);
  m.impl("nll_loss_backward", nll_loss_backward);
  m.impl("sum.dim_IntList", sum_dim);
  m.impl("mean.dim", mean_dim);
  // embeddings
  m.impl("index_select", index_select);
  m.impl("embedding_dense_backward", embedding_dense_backward);
  m.impl("_embedding_bag", embedding_bag);
  m.impl("_embedding_bag_forward_only", embedding_bag_forward_only);
  m.impl("_embedding_bag_dense_backward", embedding_bag_dense_backward);
}

}  // namespace
}  // namespace kiln_torch
