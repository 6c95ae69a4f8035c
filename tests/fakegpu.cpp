// fakegpu, the tests' second device (tests/fakegpu.py): PrivateUse1 tensors in host
// memory, every operator run by the CPU kernel on aliases of that memory. It exists so that
// the suite catches tensors on two devices without a GPU: an operator given a fakegpu
// tensor beside a CPU tensor fails as on CUDA (a 0-dim CPU tensor passes as a number to
// pointwise operators only; CPU index tensors pass to indexing; a CPU generator fails).
#include <ATen/ATen.h>
#include <ATen/EmptyTensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/enum_tag.h>
#include <ATen/core/stack.h>
#include <ATen/native/Resize.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <torch/library.h>

#include <string>
#include <unordered_map>

namespace {

constexpr c10::DeviceType kFake = c10::DeviceType::PrivateUse1;

void release(void* data) { c10::free_cpu(data); }

struct HostAllocator final : at::Allocator {
  at::DataPtr allocate(size_t nbytes) override {
    void* data = nbytes ? c10::alloc_cpu(nbytes) : nullptr;
    return {data, data, &release, at::Device(kFake, 0)};
  }
  at::DeleterFnPtr raw_deleter() const override { return &release; }
  void copy_data(void* dest, const void* src, std::size_t count) const final {
    std::memcpy(dest, src, count);
  }
};

HostAllocator allocator;
// Storages made by torch itself (UntypedStorage(n, device=...), deepcopy) find it here.
REGISTER_ALLOCATOR(kFake, &allocator);

c10::DispatchKeySet fake_keys() { return c10::DispatchKeySet(c10::DispatchKey::PrivateUse1); }

bool on_fake(const at::Tensor& t) { return t.defined() && t.device().type() == kFake; }

void no_delete(void*) {}

// CPU tensors over the bytes of fakegpu tensors, for one operator call: one host storage
// per fakegpu storage, so that the CPU kernels see two arguments that share memory as
// sharing it (and refuse overlapping writes as CUDA does). Each host storage is resizable,
// so that an out= kernel may grow it; take_back then gives the result to the fakegpu one.
class HostViews {
 public:
  at::Tensor of(const at::Tensor& t) {
    if (!on_fake(t)) return t;
    const auto* key = t.storage().unsafeGetStorageImpl();
    auto found = storages_.find(key);
    if (found == storages_.end()) {
      const auto& storage = t.storage();
      void* base = const_cast<void*>(storage.data());
      c10::Storage host(
          c10::Storage::use_byte_size_t(), storage.nbytes(),
          at::DataPtr(base, base, &no_delete, at::Device(at::kCPU)), c10::GetCPUAllocator(),
          /*resizable=*/true);
      found = storages_.emplace(key, std::move(host)).first;
    }
    auto alias = at::detail::make_tensor<c10::TensorImpl>(
        c10::Storage(found->second), c10::DispatchKeySet(c10::DispatchKey::CPU), t.dtype());
    alias.unsafeGetTensorImpl()->set_sizes_and_strides(
        t.sizes(), t.strides(), t.storage_offset());
    return alias;
  }

 private:
  std::unordered_map<const c10::StorageImpl*, c10::Storage> storages_;
};

at::Tensor empty_strided(
    c10::IntArrayRef size, c10::IntArrayRef stride, std::optional<at::ScalarType> dtype,
    std::optional<at::Layout>, std::optional<at::Device>, std::optional<bool>) {
  return at::Tensor(at::detail::empty_strided_generic(
      size, stride, &allocator, fake_keys(), c10::dtype_or_default(dtype)));
}

at::Tensor empty_memory_format(
    c10::IntArrayRef size, std::optional<at::ScalarType> dtype, std::optional<at::Layout>,
    std::optional<at::Device>, std::optional<bool>, std::optional<at::MemoryFormat> format) {
  return at::Tensor(at::detail::empty_generic(
      size, &allocator, fake_keys(), c10::dtype_or_default(dtype), format));
}

at::Tensor fake_as_strided(
    const at::Tensor& self, c10::IntArrayRef size, c10::IntArrayRef stride,
    std::optional<int64_t> offset) {
  return at::native::as_strided_tensorimpl(self, size, stride, offset);
}

const at::Tensor& resize_(
    const at::Tensor& self, c10::IntArrayRef size, std::optional<at::MemoryFormat>) {
  auto* impl = self.unsafeGetTensorImpl();
  impl->set_sizes_contiguous(size);
  at::native::maybe_resize_storage_cpu(
      impl, at::detail::computeStorageNbytesContiguous(
                size, impl->dtype().itemsize(), impl->storage_offset()));
  return self;
}

void same_device(const at::Tensor& self, const c10::Storage& source, const char* op) {
  TORCH_CHECK(
      on_fake(self) && source.device_type() == kFake,
      "Expected a tensor and a storage both on fakegpu:0 (when checking arguments for ", op,
      ")");
}

at::Tensor& set_storage_offset(
    at::Tensor& self, c10::Storage source, c10::SymInt offset, c10::SymIntArrayRef size,
    c10::SymIntArrayRef stride) {
  same_device(self, source, "aten::set_");
  self.unsafeGetTensorImpl()->set_storage_keep_dtype(std::move(source));
  self.unsafeGetTensorImpl()->set_sizes_and_strides(
      C10_AS_INTARRAYREF_SLOW(size), C10_AS_INTARRAYREF_SLOW(stride), offset.expect_int());
  return self;
}

at::Tensor& set_storage(at::Tensor& self, c10::Storage source) {
  same_device(self, source, "aten::set_");
  const int64_t size = static_cast<int64_t>(source.nbytes() / self.dtype().itemsize());
  self.unsafeGetTensorImpl()->set_storage_keep_dtype(std::move(source));
  const int64_t stride = 1;
  self.unsafeGetTensorImpl()->set_sizes_and_strides(
      c10::IntArrayRef(size), c10::IntArrayRef(stride), std::optional<int64_t>(0));
  return self;
}

at::Tensor& set_tensor(at::Tensor& self, const at::Tensor& source) {
  same_device(self, source.storage(), "aten::set_");
  self.unsafeGetTensorImpl()->set_storage_keep_dtype(source.storage());
  self.unsafeGetTensorImpl()->set_sizes_and_strides(
      source.sizes(), source.strides(), source.storage_offset());
  return self;
}

at::Tensor copy_from(const at::Tensor& self, const at::Tensor& dst, bool) {
  HostViews hosts;
  hosts.of(dst).copy_(hosts.of(self));
  return dst;
}

at::Tensor copy_from_and_resize(const at::Tensor& self, const at::Tensor& dst) {
  dst.resize_(self.sizes());
  return copy_from(self, dst, false);
}

bool named(const c10::OperatorHandle& op, std::initializer_list<const char*> names) {
  const auto& name = op.schema().operator_name().name;
  for (const char* candidate : names)
    if (name == candidate) return true;
  return false;
}

// What CUDA refuses: a CPU tensor beside a fakegpu one, except CPU index tensors for
// indexing and a 0-dim CPU tensor read as a number by a pointwise operator (never one
// written to); and a CPU generator for a fakegpu draw.
void check_one_device(const c10::OperatorHandle& op, c10::ArrayRef<c10::IValue> args) {
  const auto& params = op.schema().arguments();
  const bool numbers = op.hasTag(at::Tag::pointwise) ||
                       named(op, {"aten::fill_", "aten::fill", "aten::masked_fill",
                                  "aten::masked_fill_", "aten::index_fill",
                                  "aten::index_fill_", "aten::index_put", "aten::index_put_",
                                  "aten::_index_put_impl_"});
  const bool indexing =
      named(op, {"aten::index", "aten::index_put", "aten::index_put_", "aten::_index_put_impl_"});
  bool fake = false, generator = false;
  std::string cpu;
  for (size_t i = 0; i < args.size(); ++i) {
    const auto* alias = params[i].alias_info();
    const bool written = alias && alias->isWrite();
    const bool indices = indexing && params[i].name() == "indices";
    auto look = [&](const at::Tensor& t) {
      if (!t.defined()) return;
      if (t.device().type() == kFake) {
        fake = true;
      } else if (t.device().is_cpu() && !indices && (written || t.dim() > 0 || !numbers)) {
        cpu = params[i].name();
      }
    };
    const auto& arg = args[i];
    if (arg.isTensor()) {
      look(arg.toTensor());
    } else if (arg.isTensorList()) {
      for (const auto& t : arg.toTensorList()) look(t);
    } else if (arg.isList()) {
      for (const auto& item : arg.toListRef())
        if (item.isTensor()) look(item.toTensor());
    } else if (arg.isGenerator() && arg.toGenerator().defined()) {
      generator = true;
    } else if (arg.isDevice() && arg.toDevice().type() == kFake) {
      fake = true;
    }
  }
  TORCH_CHECK(
      !fake || cpu.empty(),
      "Expected all tensors to be on the same device, but found at least two devices, "
      "fakegpu:0 and cpu! (when checking argument '", cpu, "' of ", op.schema().name(), ")");
  TORCH_CHECK(
      !fake || !generator, "Expected a 'fakegpu' device type for generator but found 'cpu' (",
      op.schema().name(), ")");
}

c10::IValue to_host(const c10::IValue& arg, HostViews& hosts) {
  if (arg.isTensor()) return hosts.of(arg.toTensor());
  if (arg.isTensorList()) {
    c10::List<at::Tensor> out;
    for (const auto& t : arg.toTensorList()) out.push_back(hosts.of(t));
    return out;
  }
  if (arg.isList()) {  // Tensor?[]
    auto list = arg.toList();
    c10::impl::GenericList out(list.elementType());
    for (const c10::IValue item : list)
      out.push_back(item.isTensor() ? c10::IValue(hosts.of(item.toTensor())) : item);
    return out;
  }
  if (arg.isDevice() && arg.toDevice().type() == kFake) return c10::IValue(at::Device(at::kCPU));
  return arg;
}

// An out= argument the CPU kernel resized: the new shape and values, on fakegpu.
void take_back(const at::Tensor& original, const at::Tensor& host) {
  if (host.storage().data() == original.storage().data() && host.sizes() == original.sizes() &&
      host.strides() == original.strides())
    return;
  auto* impl = original.unsafeGetTensorImpl();
  impl->set_sizes_and_strides(host.sizes(), host.strides(), host.storage_offset());
  at::native::maybe_resize_storage_cpu(
      impl, at::detail::computeStorageNbytes(
                host.sizes(), host.strides(), impl->dtype().itemsize(), host.storage_offset()));
  if (host.storage().data() != original.storage().data()) {
    HostViews hosts;
    hosts.of(original).copy_(host);
  }
}

// A result of the CPU kernel, back on fakegpu: the argument itself where the kernel wrote
// into it, a view of the argument where it returned one, or else a copy.
at::Tensor to_fake(
    const at::Tensor& out, const std::vector<c10::IValue>& originals,
    const std::vector<c10::IValue>& hosts) {
  if (!out.defined() || out.device().type() != at::kCPU) return out;
  for (size_t i = 0; i < hosts.size(); ++i) {
    if (!hosts[i].isTensor() || !originals[i].isTensor()) continue;
    const auto& host = hosts[i].toTensor();
    const auto& original = originals[i].toTensor();
    if (!host.defined() || !on_fake(original)) continue;
    if (out.unsafeGetTensorImpl() == host.unsafeGetTensorImpl()) return original;
    if (out.storage().data() == host.storage().data() && out.dtype() == original.dtype())
      return fake_as_strided(original, out.sizes(), out.strides(), out.storage_offset());
  }
  std::vector<int64_t> strides = out.strides().vec();
  if (!out.is_non_overlapping_and_dense()) {
    auto dense = c10::contiguous_strides(out.sizes());
    strides.assign(dense.begin(), dense.end());
  }
  at::Tensor copy = at::detail::empty_strided_generic(
      out.sizes(), strides, &allocator, fake_keys(), out.scalar_type());
  HostViews views;
  views.of(copy).copy_(out);
  return copy;
}

void fallback(const c10::OperatorHandle& op, torch::jit::Stack* stack) {
  const auto count = op.schema().arguments().size();
  auto args = torch::jit::last(stack, count);
  check_one_device(op, args);
  std::vector<c10::IValue> originals(args.begin(), args.end());
  HostViews views;
  std::vector<c10::IValue> hosts;
  hosts.reserve(count);
  for (const auto& arg : originals) hosts.push_back(to_host(arg, views));
  torch::jit::drop(stack, count);
  for (const auto& host : hosts) torch::jit::push(stack, host);
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    op.callBoxed(stack);
  }
  const auto& params = op.schema().arguments();
  for (size_t i = 0; i < count; ++i) {
    const auto* alias = params[i].alias_info();
    if (alias && alias->isWrite() && originals[i].isTensor() && on_fake(originals[i].toTensor()))
      take_back(originals[i].toTensor(), hosts[i].toTensor());
  }
  const auto returns = op.schema().returns().size();
  for (auto& result : torch::jit::last(stack, returns)) {
    auto& value = const_cast<c10::IValue&>(result);
    if (value.isTensor()) {
      value = to_fake(value.toTensor(), originals, hosts);
    } else if (value.isTensorList()) {
      c10::List<at::Tensor> out;
      for (const auto& t : value.toTensorList()) out.push_back(to_fake(t, originals, hosts));
      value = out;
    }
  }
}

}  // namespace

TORCH_LIBRARY_IMPL(aten, PrivateUse1, m) {
  m.impl("empty.memory_format", empty_memory_format);
  m.impl("empty_strided", empty_strided);
  m.impl("as_strided", fake_as_strided);
  m.impl("view", at::native::view);
  m.impl("_reshape_alias", at::native::_reshape_alias);
  m.impl("resize_", resize_);
  m.impl("set_.source_Storage_storage_offset", set_storage_offset);
  m.impl("set_.source_Storage", set_storage);
  m.impl("set_.source_Tensor", set_tensor);
  m.impl("_copy_from", copy_from);
  m.impl("_copy_from_and_resize", copy_from_and_resize);
}

TORCH_LIBRARY_IMPL(_, PrivateUse1, m) {
  m.fallback(torch::CppFunction::makeFromBoxedFunction<&fallback>());
}
