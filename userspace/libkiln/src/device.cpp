// SPDX-License-Identifier: MIT
// libkiln: device enumeration, diagnosis, PCI details, Device and Buffer.
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xf86drm.h>
extern "C" {
#include <pci/pci.h>
}

#include <fmt/format.h>
#include <grp.h>
#include <kiln/hw/kiln_kbin.h>
#include <kiln/hw/kiln_regs.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>

#include "internal.hpp"

#ifndef KILN_LIB_TO_OPS_DIR
#define KILN_LIB_TO_OPS_DIR "../share/kiln/ops"
#endif
#ifndef KILN_BUILD_OPS_DIR
#define KILN_BUILD_OPS_DIR ""
#endif

namespace fs = std::filesystem;

namespace kiln {
namespace detail {
namespace {

// "1 GiB", "1.5 GiB", "4096 bytes"
std::string human_bytes(uint64_t b) {
  static constexpr const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  double v = double(b);
  while (v >= 1024 && u < 4) v /= 1024, u++;
  if (u == 0) return fmt::format("{} bytes", b);
  return v == double(uint64_t(v)) ? fmt::format("{} {}", uint64_t(v), units[u]) : fmt::format("{:.1f} {}", v, units[u]);
}

std::string read_line(const fs::path& p) {
  std::ifstream f(p);
  std::string s;
  if (f) std::getline(f, s);
  return s;
}
uint32_t read_hex(const fs::path& p) {
  auto s = read_line(p);
  return s.empty() ? 0 : uint32_t(std::strtoul(s.c_str(), nullptr, 16));
}

void pci_quiet(char*, ...) {}

// PCI details of a device, sysfs first (readable by anyone), names and
// whatever sysfs lacks from libpci.
PciInfo pci_details(const std::string& address) {
  PciInfo p;
  p.address = address;
  fs::path dir = fs::path("/sys/bus/pci/devices") / address;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return p;
  p.vendor_id = uint16_t(read_hex(dir / "vendor"));
  p.device_id = uint16_t(read_hex(dir / "device"));
  p.subsystem_vendor_id = uint16_t(read_hex(dir / "subsystem_vendor"));
  p.subsystem_id = uint16_t(read_hex(dir / "subsystem_device"));
  p.revision = uint8_t(read_hex(dir / "revision"));
  p.link_speed = read_line(dir / "current_link_speed");
  p.max_link_speed = read_line(dir / "max_link_speed");
  if (auto w = read_line(dir / "current_link_width"); !w.empty()) p.link_width = std::atoi(w.c_str());
  if (auto w = read_line(dir / "max_link_width"); !w.empty()) p.max_link_width = std::atoi(w.c_str());
  if (auto n = read_line(dir / "numa_node"); !n.empty()) p.numa_node = std::atoi(n.c_str());
  if (p.numa_node && *p.numa_node < 0) p.numa_node.reset();

  unsigned dom = 0, bus = 0, dev = 0, fn = 0;
  pci_access* pa = pci_alloc();
  if (!pa) return p;
  pa->method = PCI_ACCESS_SYS_BUS_PCI;
  // Never exit() the application. libpci declares the error handler noreturn, which
  // gcc lets a plain function satisfy and clang does not: hence the cast.
  pa->error = reinterpret_cast<decltype(pa->error)>(&pci_quiet);
  pa->warning = pci_quiet;
  pci_init(pa);
  if (std::sscanf(address.c_str(), "%x:%x:%x.%x", &dom, &bus, &dev, &fn) == 4) {
    if (pci_dev* d = pci_get_dev(pa, int(dom), int(bus), int(dev), int(fn))) {
      pci_fill_info(d, PCI_FILL_IDENT | PCI_FILL_NUMA_NODE | PCI_FILL_CAPS);
      if (!p.numa_node && d->numa_node >= 0) p.numa_node = d->numa_node;
      if (p.link_width == 0) {  // config space beyond 64 bytes needs root
        if (pci_cap* cap = pci_find_cap(d, PCI_CAP_ID_EXP, PCI_CAP_NORMAL)) {
          uint16_t sta = pci_read_word(d, cap->addr + PCI_EXP_LNKSTA);
          uint32_t lcap = pci_read_long(d, cap->addr + PCI_EXP_LNKCAP);
          static const char* gts[] = {"?",
                                      "2.5 GT/s PCIe",
                                      "5.0 GT/s PCIe",
                                      "8.0 GT/s PCIe",
                                      "16.0 GT/s PCIe",
                                      "32.0 GT/s PCIe",
                                      "64.0 GT/s PCIe"};
          if (sta != 0xffff) {
            p.link_speed = gts[std::min<unsigned>(sta & 0xf, 6)];
            p.link_width = (sta >> 4) & 0x3f;
            p.max_link_speed = gts[std::min<unsigned>(lcap & 0xf, 6)];
            p.max_link_width = (lcap >> 4) & 0x3f;
          }
        }
      }
      pci_free_dev(d);
    }
  }
  char buf[256];
  if (const char* n = pci_lookup_name(pa, buf, sizeof buf, PCI_LOOKUP_VENDOR | PCI_LOOKUP_NO_NUMBERS, p.vendor_id))
    p.vendor_name = n;
  if (const char* n =
          pci_lookup_name(pa, buf, sizeof buf, PCI_LOOKUP_DEVICE | PCI_LOOKUP_NO_NUMBERS, p.vendor_id, p.device_id))
    p.device_name = n;
  pci_cleanup(pa);
  if (p.vendor_name.empty()) p.vendor_name = fmt::format("{:04x}", p.vendor_id);
  if (p.device_name.empty())
    p.device_name = (p.vendor_id == KILN_PCI_VENDOR_ID && p.device_id == KILN_PCI_DEVICE_ID)
                        ? "Kiln K1 accelerator"
                        : fmt::format("{:04x}", p.device_id);
  return p;
}

// Every accel node: drmGetDevices2() (libdrm >= 2.4.120 lists accel nodes;
// older releases such as 2.4.114 do not), merged with a scan of /dev/accel.
std::vector<std::string> accel_nodes() {
  std::set<std::string> paths;
  drmDevicePtr devs[64];
  int n = drmGetDevices2(0, devs, 64);
  for (int i = 0; i < n; i++) {
    for (int t = 0; t < DRM_NODE_MAX; t++)
      if ((devs[i]->available_nodes & (1 << t)) && devs[i]->nodes[t] &&
          std::string_view(devs[i]->nodes[t]).starts_with("/dev/accel/"))
        paths.insert(devs[i]->nodes[t]);
  }
  if (n > 0) drmFreeDevices(devs, n);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/dev/accel", ec))
    if (e.path().filename().string().starts_with("accel")) paths.insert(e.path().string());
  std::vector<std::string> v(paths.begin(), paths.end());
  std::sort(v.begin(), v.end(), [](const std::string& a, const std::string& b) {
    return std::atoi(a.c_str() + 16) < std::atoi(b.c_str() + 16);
  });
  return v;
}

uint32_t node_index(const std::string& path) {
  auto pos = path.find("accel", 6);
  return pos == std::string::npos ? 0 : uint32_t(std::atoi(path.c_str() + pos + 5));
}

std::string pci_address_of(const std::string& path) {
  fs::path dev = fs::path("/sys/class/accel") / fs::path(path).filename() / "device";
  std::error_code ec;
  auto real = fs::canonical(dev, ec);
  return ec ? std::string() : real.filename().string();
}

std::string driver_of(const std::string& path) {
  std::error_code ec;
  auto real = fs::canonical(fs::path("/sys/class/accel") / fs::path(path).filename() / "device/driver", ec);
  return ec ? std::string() : real.filename().string();
}

// Scalars come from GET_PARAM, one a call; QUERY_INFO(DEVICE) repeats them
// and is deprecated (docs/uapi.md, "One query mechanism").
void fill_limits(Driver& d, DeviceInfo& i) {
  auto p = [&](uint32_t param) -> uint64_t {
    try {
      return d.get_param(param);
    } catch (const Error&) {
      return 0;
    }
  };
  i.device_id = uint32_t(p(DRM_KILN_PARAM_DEVICE_ID));
  i.revision = uint32_t(p(DRM_KILN_PARAM_REVISION));
  i.fw_version = uint32_t(p(DRM_KILN_PARAM_FW_VERSION));
  i.iface_version = uint32_t(p(DRM_KILN_PARAM_IFACE_VERSION));
  i.num_queues = uint32_t(p(DRM_KILN_PARAM_NUM_QUEUES));
  uint64_t g = p(DRM_KILN_PARAM_PE_GRID);
  i.pe_grid_width = uint32_t(g & 0xff), i.pe_grid_height = uint32_t((g >> 8) & 0xff);
  i.local_mem_size = uint32_t(p(DRM_KILN_PARAM_LOCAL_MEM_SIZE));
  i.dram_size = p(DRM_KILN_PARAM_DRAM_SIZE), i.dram_free = p(DRM_KILN_PARAM_DRAM_FREE);
  i.sram_size = p(DRM_KILN_PARAM_SRAM_SIZE), i.sram_free = p(DRM_KILN_PARAM_SRAM_FREE);
  i.va_start = p(DRM_KILN_PARAM_VA_START), i.va_end = p(DRM_KILN_PARAM_VA_END);
  i.max_contexts = uint32_t(p(DRM_KILN_PARAM_MAX_CONTEXTS));
  i.contexts_in_use = uint32_t(p(DRM_KILN_PARAM_CONTEXTS_IN_USE));
  i.features = uint32_t(p(DRM_KILN_PARAM_FEATURES));
  i.job_timeout_ms = uint32_t(p(DRM_KILN_PARAM_JOB_TIMEOUT_MS));
  i.reset_count = uint32_t(p(DRM_KILN_PARAM_RESET_COUNT));
  i.clock_mhz = uint32_t(p(DRM_KILN_PARAM_CLOCK_MHZ));
  i.max_submit_bos = uint32_t(p(DRM_KILN_PARAM_MAX_SUBMIT_BOS));
  i.max_submit_syncs = uint32_t(p(DRM_KILN_PARAM_MAX_SUBMIT_SYNCS));
  i.max_cmd_size = uint32_t(p(DRM_KILN_PARAM_MAX_CMD_SIZE));
  i.max_queued_jobs = uint32_t(p(DRM_KILN_PARAM_MAX_QUEUED_JOBS));
  if (uint64_t v = p(DRM_KILN_PARAM_UAPI_VERSION))
    i.uapi_major = uint32_t(v >> 16), i.uapi_minor = uint32_t(v & 0xffff);
}

// Identify and describe an opened driver; throws version_mismatch.
DeviceInfo describe(Driver& d, const std::string& path) {
  DeviceInfo i;
  i.path = path;
  i.index = node_index(path);
  auto v = d.version();
  i.driver_name = v.name;
  i.driver_version = fmt::format("{}.{}.{}", v.major, v.minor, v.patch);
  if (v.name != "kiln")
    throw Error(Errc::version_mismatch, fmt::format("{} is driven by '{}', not 'kiln'", path, v.name),
                "DRM_IOCTL_VERSION");
  i.uapi_major = uint32_t(v.major), i.uapi_minor = uint32_t(v.minor);
  fill_limits(d, i);
  if (int(i.uapi_major) != uapi_major)
    throw Error(
        Errc::version_mismatch,
        fmt::format(
            "{}: kiln driver UAPI {}.{} is not supported by libkiln {} (needs UAPI {}.x); update libkiln or the driver",
            path, i.uapi_major, i.uapi_minor, version_string(), uapi_major),
        "DRM_IOCTL_VERSION");
  if (d.fd() >= 0) i.pci = pci_details(pci_address_of(path));
  return i;
}

}  // namespace

// ---- DeviceState / Bo --------------------------------------------------------
void DeviceState::check_lost() const {
  if (lost.load()) throw DeviceLost(Errc::device_lost, "device lost: " + lost_reason + "; open the device again");
}
void DeviceState::mark_lost(const std::string& why, std::optional<JobFault> job) {
  {
    std::lock_guard g(mu);
    if (!lost.exchange(true)) lost_reason = why;
  }
  throw DeviceLost(Errc::device_lost, "device lost: " + why, {}, 0, std::move(job));
}

std::shared_ptr<Bo> DeviceState::create_bo(uint64_t size, Memory mem, BufferFlags flags) {
  check_lost();
  if (size == 0) fail(Errc::invalid_argument, "buffer size must be > 0");
  drm_kiln_bo_create a{};
  a.size = size;
  if (mem == Memory::device) a.flags |= DRM_KILN_BO_DRAM;
  if (mem == Memory::sram) a.flags |= DRM_KILN_BO_SRAM;
  if (flags & BufferFlags::no_mmap) a.flags |= DRM_KILN_BO_NO_MMAP;
  if (flags & BufferFlags::write_combined) {
    if (mem != Memory::host) fail(Errc::invalid_argument, "write_combined applies to host memory only");
    a.flags |= DRM_KILN_BO_WC;
  }
  if (flags & BufferFlags::exec) a.flags |= DRM_KILN_BO_EXEC;
  if (flags & BufferFlags::read_only) a.flags |= DRM_KILN_BO_READ_ONLY;
  try {
    drv->bo_create(a);
  } catch (const Error& e) {
    // E2BIG: more than the memory has in all (or than the driver allows a host buffer),
    // so it can never succeed — say so in the device's terms, not as errno 7.
    if (e.os_errno() == E2BIG) {
      std::string why = mem == Memory::device ? fmt::format("the device has {} of DRAM", human_bytes(info.dram_size))
                        : mem == Memory::sram ? fmt::format("the device has {} of SRAM", human_bytes(info.sram_size))
                                              : std::string("more than the driver allows one host buffer");
      throw Error(Errc::out_of_memory,
                  fmt::format("cannot allocate {} of {}: {}", human_bytes(size),
                              mem == Memory::device ? "device DRAM"
                              : mem == Memory::sram ? "SRAM"
                                                    : "host memory",
                              why),
                  e.ioctl(), e.os_errno());
    }
    if (e.errc() == Errc::out_of_memory)
      throw Error(Errc::out_of_memory,
                  fmt::format("cannot allocate {} bytes of {} memory: {}", size,
                              mem == Memory::device ? "device DRAM"
                              : mem == Memory::sram ? "SRAM"
                                                    : "host",
                              e.what()),
                  e.ioctl(), e.os_errno());
    throw;
  }
  auto bo = std::make_shared<Bo>();
  bo->dev = shared_from_this();
  bo->handle = a.handle;
  bo->va = a.va;
  bo->size = a.size;
  bo->kflags = a.flags;
  bo->memory = mem;
  bo->flags = flags;
  if (!(a.flags & DRM_KILN_BO_NO_MMAP)) {
    drm_kiln_bo_info bi{};
    bi.handle = a.handle;
    try {
      drv->bo_info(bi);
      bo->mmap_offset = bi.mmap_offset;
    } catch (...) {
      drv->gem_close(a.handle);
      bo->handle = 0;
      throw;
    }
  }
  log(Level::trace, "bo {} size {} va {:#x} flags {:#x}", bo->handle, bo->size, bo->va, bo->kflags);
  track(bo);
  return bo;
}

std::shared_ptr<Bo> DeviceState::take_host_bo(uint64_t size) {
  {
    std::lock_guard g(mu);
    auto best = cmd_pool.end();
    for (auto it = cmd_pool.begin(); it != cmd_pool.end(); ++it)
      if (it->size >= size && (best == cmd_pool.end() || it->size < best->size)) best = it;
    if (best != cmd_pool.end()) {
      auto bo = std::make_shared<Bo>();
      bo->dev = shared_from_this();
      bo->handle = best->handle, bo->va = best->va, bo->size = best->size;
      bo->mmap_offset = best->mmap_offset, bo->map = best->map;
      bo->memory = Memory::host;
      cmd_pool_bytes -= best->size;
      cmd_pool.erase(best);
      live[bo->handle] = bo;
      return bo;
    }
  }
  uint64_t sz = std::max<uint64_t>(64 << 10, std::bit_ceil(size));
  auto bo = create_bo(sz, Memory::host, BufferFlags::none);
  if (!bo->mapping()) fail(Errc::not_supported, "host command buffer is not mappable");
  return bo;
}

void DeviceState::give_back(std::shared_ptr<Bo>&& bo) {
  if (!bo || bo.use_count() != 1 || !bo->map) return;
  std::lock_guard g(mu);
  if (bo->size > cmd_pool_max_bo || cmd_pool_bytes + bo->size > cmd_pool_max_bytes) return;
  cmd_pool.push_back({bo->handle, bo->va, bo->size, bo->mmap_offset, bo->map});
  cmd_pool_bytes += bo->size;
  bo->handle = 0;
  bo->map = nullptr;
  bo.reset();
}

void DeviceState::track(const std::shared_ptr<Bo>& bo) {
  std::lock_guard g(mu);
  live[bo->handle] = bo;
}

DeviceState::~DeviceState() {
  for (auto& e : cmd_pool) {
    drv->munmap(e.map, size_t(e.size));
    drv->gem_close(e.handle);
  }
}

std::byte* Bo::mapping() {
  std::lock_guard g(map_mu);
  if (map) return map;
  if ((kflags & DRM_KILN_BO_NO_MMAP) || mmap_offset == 0) return nullptr;
  map = dev->drv->mmap(mmap_offset, size_t(size));
  return map;
}

Bo::~Bo() {
  if (!dev || !handle) return;
  if (map) dev->drv->munmap(map, size_t(size));
  {
    std::lock_guard g(dev->mu);
    auto it = dev->live.find(handle);
    if (it != dev->live.end() && it->second.expired()) dev->live.erase(it);
  }
  dev->drv->gem_close(handle);
}

}  // namespace detail

// ---- enumeration / diagnosis -------------------------------------------------
std::vector<DeviceInfo> enumerate() {
  std::vector<DeviceInfo> out;
  for (const auto& path : detail::accel_nodes()) {
    auto drvname = detail::driver_of(path);
    if (!drvname.empty() && drvname != "kiln") continue;
    try {
      auto d = detail::open_drm_driver(path);
      out.push_back(detail::describe(*d, path));
    } catch (const Error& e) {
      detail::log(detail::Level::debug, "skipping {}: {}", path, e.what());
    }
  }
  return out;
}

std::string diagnose() {
  auto devs = enumerate();
  if (!devs.empty()) {
    std::string s = fmt::format("{} usable Kiln device(s):", devs.size());
    for (const auto& d : devs)
      s += fmt::format("\n  {} [{}] {} PEs {}x{}, driver {} (UAPI {}.{})", d.path,
                       d.pci.address.empty() ? "?" : d.pci.address, d.pci.device_name, d.pe_grid_width,
                       d.pe_grid_height, d.driver_version, d.uapi_major, d.uapi_minor);
    return s;
  }
  std::string s = "no usable Kiln device:";
  std::error_code ec;
  // 1. hardware present?
  std::vector<std::string> pci;
  for (const auto& e : fs::directory_iterator("/sys/bus/pci/devices", ec))
    if (detail::read_hex(e.path() / "vendor") == KILN_PCI_VENDOR_ID &&
        detail::read_hex(e.path() / "device") == KILN_PCI_DEVICE_ID)
      pci.push_back(e.path().filename().string());
  if (pci.empty())
    s += "\n  - no Kiln PCI device (1234:4b31) is present (in QEMU: -device kiln,bus=<pcie-root-port>)";
  else
    s += fmt::format("\n  - Kiln PCI device(s) present: {}", fmt::join(pci, ", "));
  // 2. module loaded?
  bool module = fs::exists("/sys/module/kiln", ec);
  if (!module) s += "\n  - the kiln kernel module is not loaded (sudo modprobe kiln; check dmesg for probe errors)";
  for (const auto& a : pci) {
    auto drv = fs::path("/sys/bus/pci/devices") / a / "driver";
    if (!fs::exists(drv, ec))
      s += fmt::format("\n  - {} is not bound to a driver{}", a, module ? " (probe failed? see dmesg)" : "");
    else if (auto name = fs::canonical(drv, ec).filename().string(); name != "kiln")
      s += fmt::format("\n  - {} is bound to driver '{}', not 'kiln'", a, name);
  }
  // 3. nodes and permissions
  auto nodes = detail::accel_nodes();
  if (nodes.empty()) {
    s += fmt::format("\n  - no /dev/accel/accel* node{}",
                     fs::exists("/dev/accel", ec) ? "" : " (/dev/accel does not exist)");
  }
  for (const auto& n : nodes) {
    auto drvname = detail::driver_of(n);
    if (!drvname.empty() && drvname != "kiln") {
      s += fmt::format("\n  - {} belongs to driver '{}'", n, drvname);
      continue;
    }
    int fd = ::open(n.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      struct stat st {};
      ::stat(n.c_str(), &st);
      std::string grp = fmt::format("gid {}", st.st_gid);
      if (group* g = getgrgid(st.st_gid)) grp = g->gr_name;
      if (e == EACCES || e == EPERM)
        s += fmt::format(
            "\n  - permission denied opening {} (mode {:o}, group '{}'): add your user to that group "
            "(sudo usermod -aG {} $USER, then log in again)",
            n, st.st_mode & 0777, grp, grp);
      else
        s += fmt::format("\n  - cannot open {}: {}", n, std::strerror(e));
      continue;
    }
    ::close(fd);
    try {
      auto d = detail::open_drm_driver(n);
      detail::describe(*d, n);
    } catch (const Error& e) {
      s += fmt::format("\n  - {}: {}", n, e.what());
    }
  }
  return s;
}

std::vector<fs::path> ops_search_path() {
  std::vector<fs::path> v;
  if (const char* p = std::getenv("KILN_OPS_PATH"); p && *p) {
    std::string_view sv(p);
    while (!sv.empty()) {
      auto c = sv.find(':');
      auto part = sv.substr(0, c);
      if (!part.empty()) v.emplace_back(part);
      if (c == std::string_view::npos) break;
      sv.remove_prefix(c + 1);
    }
  }
  if (const char* p = std::getenv("KILN_OPS_DIR"); p && *p) v.emplace_back(p);  // set by the VM harness
  auto add = [&v](const fs::path& d) {
    if (!d.empty() && std::find(v.begin(), v.end(), d) == v.end()) v.push_back(d);
  };
  // The prefix this library is installed in, wherever `make install PREFIX=...` put it:
  // found from the library's own path rather than compiled in.
  Dl_info self{};
  if (dladdr(reinterpret_cast<const void*>(&ops_search_path), &self) && self.dli_fname)
    add((fs::path(self.dli_fname).parent_path() / KILN_LIB_TO_OPS_DIR).lexically_normal());
  for (const char* d : {"/usr/share/kiln/ops", "/usr/local/share/kiln/ops", KILN_BUILD_OPS_DIR}) add(d);
  return v;
}

fs::path find_kernel_binary(std::string_view name) {
  if (name.find('/') != std::string_view::npos) {
    if (fs::exists(name)) return fs::path(name);
    throw Error(Errc::not_found, fmt::format("kernel binary {} does not exist", name));
  }
  std::string file(name);
  if (!file.ends_with(".kbin")) file += ".kbin";
  auto dirs = ops_search_path();
  std::error_code ec;
  for (const auto& d : dirs)
    if (fs::is_regular_file(d / file, ec)) return d / file;
  std::vector<std::string> ds;
  for (const auto& d : dirs) ds.push_back(d.string());
  throw Error(Errc::not_found,
              fmt::format("kernel binary '{}' is in none of {} (set KILN_OPS_PATH)", file, fmt::join(ds, ":")));
}

// ---- Device ------------------------------------------------------------------
Device Device::from_driver(std::shared_ptr<detail::Driver> driver, std::string path) {
  if (!driver) throw Error(Errc::invalid_argument, "kiln::Device: null driver");
  auto s = std::make_shared<detail::DeviceState>();
  s->drv = std::move(driver);
  s->info = detail::describe(*s->drv, path);
  return Device(std::move(s));
}

namespace {
// One line naming what can be opened instead: Error::what() appends ": no device", which
// would land after the last line of a multi-line diagnose().
std::string usable_devices() {
  auto devs = enumerate();
  if (devs.empty()) return "no Kiln device is usable; kiln::diagnose() (kiln-smi --diagnose) says why";
  std::vector<std::string> v;
  for (const auto& d : devs)
    v.push_back(fmt::format("{} = {} [{}]", d.index, d.path, d.pci.address.empty() ? "?" : d.pci.address));
  return fmt::format("usable: {}", fmt::join(v, ", "));
}
}  // namespace

Device Device::open(int index) {
  if (index < 0) throw Error(Errc::invalid_argument, fmt::format("device index {} is negative", index));
  for (const auto& path : detail::accel_nodes()) {
    if (detail::node_index(path) != uint32_t(index)) continue;
    return from_driver(detail::open_drm_driver(path), path);
  }
  auto devs = enumerate();
  if (size_t(index) < devs.size()) return from_driver(detail::open_drm_driver(devs[index].path), devs[index].path);
  throw Error(Errc::no_device, fmt::format("no Kiln device with index {} ({})", index, usable_devices()));
}

Device Device::open(std::string_view s) {
  if (s.starts_with("/")) return from_driver(detail::open_drm_driver(std::string(s)), std::string(s));
  std::string want(s);
  if (std::count(want.begin(), want.end(), ':') == 1) want = "0000:" + want;
  for (const auto& path : detail::accel_nodes())
    if (detail::pci_address_of(path) == want) return from_driver(detail::open_drm_driver(path), path);
  throw Error(Errc::no_device, fmt::format("no Kiln device at PCI address {} ({})", s, usable_devices()));
}

const DeviceInfo& Device::info() const {
  return s_->info;
}

DeviceInfo Device::refresh() const {
  s_->check_lost();
  DeviceInfo i = s_->info;
  detail::fill_limits(*s_->drv, i);
  return i;
}

Telemetry Device::telemetry() const {
  s_->check_lost();
  drm_kiln_telemetry t{};
  s_->drv->query_info(DRM_KILN_QUERY_TELEMETRY, std::as_writable_bytes(std::span(&t, 1)));
  Telemetry r;
  r.temperature_c = t.temperature_mc / 1000.0;
  r.power_w = t.power_mw / 1000.0;
  r.pe_clock_mhz = t.pe_clock_mhz, r.mem_clock_mhz = t.mem_clock_mhz;
  r.busy_ns = t.busy_ns, r.dma_bytes = t.dma_bytes, r.packets = t.packets, r.launches = t.launches;
  r.emulator_time_ns = t.device_time_ns, r.total_cycles = t.total_cycles;
  r.energy_j = double(t.energy_uj) * 1e-6;
  return r;
}

Buffer Device::alloc(size_t bytes, Memory memory, BufferFlags flags) {
  return detail::HandleAccess::buffer(s_->create_bo(bytes, memory, flags));
}

Buffer Device::import_dmabuf(int fd) {
  s_->check_lost();
  uint32_t h = s_->drv->prime_import(fd);
  {
    std::lock_guard g(s_->mu);
    if (auto it = s_->live.find(h); it != s_->live.end())
      if (auto existing = it->second.lock()) return detail::HandleAccess::buffer(std::move(existing));
  }
  drm_kiln_bo_info bi{};
  bi.handle = h;
  s_->drv->bo_info(bi);
  auto bo = std::make_shared<detail::Bo>();
  bo->dev = s_;
  bo->handle = h;
  bo->va = bi.va;
  bo->size = bi.size;
  bo->kflags = bi.flags;
  bo->memory = (bi.flags & DRM_KILN_BO_DRAM)   ? Memory::device
               : (bi.flags & DRM_KILN_BO_SRAM) ? Memory::sram
                                               : Memory::host;
  bo->mmap_offset = bi.mmap_offset;
  s_->track(bo);
  return detail::HandleAccess::buffer(std::move(bo));
}

Queue Device::queue(QueueDesc desc) {
  return detail::HandleAccess::queue(detail::make_queue(*this, desc));
}

void Device::set_debug_output(DebugSink sink, size_t bytes_per_launch) {
  if (bytes_per_launch && (bytes_per_launch < detail::min_debug_bytes || bytes_per_launch > detail::max_debug_bytes))
    throw Error(Errc::invalid_argument,
                fmt::format("set_debug_output: {} bytes per launch (0 for off, or {} to {})", bytes_per_launch,
                            detail::min_debug_bytes, detail::max_debug_bytes));
  std::lock_guard g(s_->mu);
  s_->debug_sink = sink ? std::make_shared<const DebugSink>(std::move(sink)) : nullptr;
  s_->debug_bytes = uint32_t(bytes_per_launch);
}

bool Device::lost() const noexcept {
  return s_->lost.load();
}
int Device::fd() const noexcept {
  return s_->drv->fd();
}

// ---- Buffer ------------------------------------------------------------------
Buffer::~Buffer() = default;
size_t Buffer::size() const noexcept {
  return bo_ ? size_t(bo_->size) : 0;
}
uint64_t Buffer::device_address() const noexcept {
  return bo_ ? bo_->va : 0;
}
Memory Buffer::memory() const noexcept {
  return bo_ ? bo_->memory : Memory::host;
}
BufferFlags Buffer::flags() const noexcept {
  return bo_ ? bo_->flags : BufferFlags::none;
}
uint32_t Buffer::handle() const noexcept {
  return bo_ ? bo_->handle : 0;
}
bool Buffer::mappable() const noexcept {
  return bo_ && !(bo_->kflags & DRM_KILN_BO_NO_MMAP) && bo_->mmap_offset != 0;
}

std::span<std::byte> Buffer::map() const {
  if (!bo_) throw Error(Errc::invalid_argument, "map() on an empty Buffer");
  bo_->dev->check_lost();
  std::byte* p = bo_->mapping();
  if (!p)
    throw Error(Errc::not_supported,
                fmt::format("buffer of {} bytes at {:#x} is not CPU-mappable (use read()/write() or a Queue copy)",
                            bo_->size, bo_->va));
  return {p, size_t(bo_->size)};
}

void Buffer::write(std::span<const std::byte> src, size_t off) {
  if (!bo_) throw Error(Errc::invalid_argument, "write() on an empty Buffer");
  if (off > bo_->size || src.size() > bo_->size - off)
    throw Error(Errc::invalid_argument,
                fmt::format("write of {} bytes at offset {} overflows a {}-byte buffer", src.size(), off, bo_->size));
  if (src.empty()) return;
  if (mappable()) {
    std::memcpy(map().data() + off, src.data(), src.size());
    return;
  }
  detail::Recording rec{bo_->dev, {}};
  detail::Cmd c{detail::Cmd::write};
  c.label = "write";
  c.dst = bo_, c.dst_off = off, c.size = src.size(), c.host_src = src;
  rec.cmds.push_back(std::move(c));
  detail::run_blocking(bo_->dev, rec);
}

void Buffer::read(std::span<std::byte> dst, size_t off) const {
  if (!bo_) throw Error(Errc::invalid_argument, "read() on an empty Buffer");
  if (off > bo_->size || dst.size() > bo_->size - off)
    throw Error(Errc::invalid_argument,
                fmt::format("read of {} bytes at offset {} overflows a {}-byte buffer", dst.size(), off, bo_->size));
  if (dst.empty()) return;
  if (mappable()) {
    std::memcpy(dst.data(), map().data() + off, dst.size());
    return;
  }
  detail::Recording rec{bo_->dev, {}};
  detail::Cmd c{detail::Cmd::read};
  c.label = "read";
  c.src = bo_, c.src_off = off, c.size = dst.size(), c.host_dst = dst;
  rec.cmds.push_back(std::move(c));
  detail::run_blocking(bo_->dev, rec);
}

int Buffer::export_dmabuf() const {
  if (!bo_) throw Error(Errc::invalid_argument, "export_dmabuf() on an empty Buffer");
  bo_->dev->check_lost();
  return bo_->dev->drv->prime_export(bo_->handle);
}

}  // namespace kiln
