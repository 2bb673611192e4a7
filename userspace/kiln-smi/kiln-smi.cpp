// SPDX-License-Identifier: MIT
// kiln-smi: show Kiln devices, memory, telemetry, contexts and resets.
#include <charconv>
#include <fmt/format.h>

#include <cstring>
#include <kiln/kiln.hpp>
#include <string>
#include <vector>

namespace {

const char* kUsage =
    "usage: kiln-smi [options]\n"
    "  -d, --device N|PCI|PATH   only this device (index, PCI address or /dev/accel path)\n"
    "  -j, --json                machine-readable JSON output\n"
    "  -l, --list                one line per device\n"
    "      --diagnose            explain why no device is usable\n"
    "  -V, --version             print the libkiln version\n"
    "  -h, --help                this help\n";

std::string mib(uint64_t b) {
  return fmt::format("{:.0f} MiB", double(b) / (1 << 20));
}
std::string ver(uint32_t v) {
  return fmt::format("{}.{}.{}", v >> 16 & 0xffff, v >> 8 & 0xff, v & 0xff);
}
std::string js(std::string_view s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      o += '\\', o += c;
    else if (uint8_t(c) < 0x20)
      o += fmt::format("\\u{:04x}", int(c));
    else
      o += c;
  }
  return o + "\"";
}

struct Row {
  kiln::DeviceInfo info;
  std::optional<kiln::Telemetry> tel;
  std::string error;
};

void print_human(const std::vector<Row>& rows) {
  for (const auto& r : rows) {
    const auto& i = r.info;
    const auto& p = i.pci;
    fmt::print("[{}] {}  {}\n", i.index, i.path, p.device_name.empty() ? "Kiln K1" : p.device_name);
    fmt::print("    PCI        {}  {:04x}:{:04x}  {}\n", p.address.empty() ? "?" : p.address, p.vendor_id, p.device_id,
               p.vendor_name);
    if (p.link_width)
      fmt::print("    link       {} x{} (max {} x{})\n", p.link_speed, p.link_width, p.max_link_speed,
                 p.max_link_width);
    fmt::print("    NUMA node  {}\n", p.numa_node ? std::to_string(*p.numa_node) : std::string("-"));
    fmt::print("    driver     {} {} (UAPI {}.{}), firmware {}, interface {}\n", i.driver_name, i.driver_version,
               i.uapi_major, i.uapi_minor, ver(i.fw_version), ver(i.iface_version));
    fmt::print("    PEs        {}x{} = {} @ {} MHz, {} KiB local memory each, {} queues\n", i.pe_grid_width,
               i.pe_grid_height, i.pe_count(), i.clock_mhz, i.local_mem_size >> 10, i.num_queues);
    fmt::print("    DRAM       {} used / {}\n", mib(i.dram_size - i.dram_free), mib(i.dram_size));
    fmt::print("    SRAM       {} used / {}\n", mib(i.sram_size - i.sram_free), mib(i.sram_size));
    fmt::print("    contexts   {} / {}    resets {}    job timeout {} ms\n", i.contexts_in_use, i.max_contexts,
               i.reset_count, i.job_timeout_ms);
    if (r.tel) {
      const auto& t = *r.tel;
      fmt::print("    telemetry  {:.1f} °C  {:.1f} W  {:.3f} J  PE {} MHz  mem {} MHz\n", t.temperature_c, t.power_w,
                 t.energy_j, t.pe_clock_mhz, t.mem_clock_mhz);
      fmt::print("    activity   device time {:.3f} ms ({} cycles), {} launches, {} packets, {} DMA bytes\n",
                 double(t.device_time().count()) / 1e6, t.total_cycles, t.launches, t.packets, t.dma_bytes);
      fmt::print("    emulator   {:.3f} s since power-on\n", double(t.emulator_time_ns) / 1e9);
    }
    if (!r.error.empty()) fmt::print("    note       {}\n", r.error);
  }
}

void print_list(const std::vector<Row>& rows) {
  fmt::print("{:<3} {:<18} {:<13} {:>5} {:>19} {:>8} {:>6}\n", "#", "path", "PCI", "PEs", "DRAM used", "ctx", "resets");
  for (const auto& r : rows) {
    const auto& i = r.info;
    fmt::print("{:<3} {:<18} {:<13} {:>5} {:>19} {:>8} {:>6}\n", i.index, i.path, i.pci.address,
               fmt::format("{}x{}", i.pe_grid_width, i.pe_grid_height),
               fmt::format("{}/{}", mib(i.dram_size - i.dram_free), mib(i.dram_size)),
               fmt::format("{}/{}", i.contexts_in_use, i.max_contexts), i.reset_count);
  }
}

void print_json(const std::vector<Row>& rows) {
  fmt::print("{{\"libkiln\":{},\"devices\":[", js(kiln::version_string()));
  for (size_t n = 0; n < rows.size(); n++) {
    const auto& i = rows[n].info;
    const auto& p = i.pci;
    fmt::print("{}\n  {{\"index\":{},\"path\":{},\"driver\":{},\"driver_version\":{},\"uapi\":\"{}.{}\",", n ? "," : "",
               i.index, js(i.path), js(i.driver_name), js(i.driver_version), i.uapi_major, i.uapi_minor);
    fmt::print(
        "\"pci\":{{\"address\":{},\"vendor_id\":\"{:04x}\",\"device_id\":\"{:04x}\",\"vendor\":{},\"device\":{},"
        "\"link_speed\":{},\"link_width\":{},\"max_link_speed\":{},\"max_link_width\":{},\"numa_node\":{}}},",
        js(p.address), p.vendor_id, p.device_id, js(p.vendor_name), js(p.device_name), js(p.link_speed), p.link_width,
        js(p.max_link_speed), p.max_link_width, p.numa_node ? std::to_string(*p.numa_node) : "null");
    fmt::print(
        "\"fw_version\":{},\"iface_version\":{},\"pe_grid\":[{},{}],\"clock_mhz\":{},\"local_mem_size\":{},"
        "\"num_queues\":{},\"memory\":{{\"dram_size\":{},\"dram_used\":{},\"sram_size\":{},\"sram_used\":{}}},"
        "\"contexts\":{{\"in_use\":{},\"max\":{}}},\"reset_count\":{},\"job_timeout_ms\":{}",
        js(ver(i.fw_version)), js(ver(i.iface_version)), i.pe_grid_width, i.pe_grid_height, i.clock_mhz,
        i.local_mem_size, i.num_queues, i.dram_size, i.dram_size - i.dram_free, i.sram_size, i.sram_size - i.sram_free,
        i.contexts_in_use, i.max_contexts, i.reset_count, i.job_timeout_ms);
    if (const auto& t = rows[n].tel)
      fmt::print(
          ",\"telemetry\":{{\"temperature_c\":{:.3f},\"power_w\":{:.3f},\"energy_j\":{:.6f},\"pe_clock_mhz\":{},"
          "\"mem_clock_mhz\":{},\"busy_ns\":{},\"dma_bytes\":{},\"packets\":{},\"launches\":{},"
          "\"device_time_ns\":{},\"total_cycles\":{},\"emulator_time_ns\":{}}}",
          t->temperature_c, t->power_w, t->energy_j, t->pe_clock_mhz, t->mem_clock_mhz, t->busy_ns, t->dma_bytes,
          t->packets, t->launches, t->device_time().count(), t->total_cycles, t->emulator_time_ns);
    if (!rows[n].error.empty()) fmt::print(",\"error\":{}", js(rows[n].error));
    fmt::print("}}");
  }
  fmt::print("\n]}}\n");
}

}  // namespace

int main(int argc, char** argv) {
  bool json = false, list = false;
  std::optional<std::string> which;
  for (int i = 1; i < argc; i++) {
    std::string_view a = argv[i];
    if (a == "-j" || a == "--json")
      json = true;
    else if (a == "-l" || a == "--list")
      list = true;
    else if (a == "-h" || a == "--help") {
      fmt::print("{}", kUsage);
      return 0;
    } else if (a == "-V" || a == "--version") {
      fmt::print("kiln-smi (libkiln {})\n", kiln::version_string());
      return 0;
    } else if (a == "--diagnose") {
      fmt::print("{}\n", kiln::diagnose());
      return 0;
    } else if (a == "-d" || a == "--device") {
      if (i + 1 >= argc) {
        fmt::print(stderr, "kiln-smi: {} needs an argument (index, PCI address or path)\n{}", a, kUsage);
        return 2;
      }
      which = argv[++i];
    } else if (a.starts_with("--device=")) {
      which = std::string(a.substr(9));
    } else {
      fmt::print(stderr, "kiln-smi: unknown option '{}'\n{}", a, kUsage);
      return 2;
    }
  }
  std::vector<Row> rows;
  try {
    std::vector<kiln::Device> devs;
    if (which) {
      bool numeric = !which->empty() && which->find_first_not_of("0123456789") == std::string::npos;
      int index = 0;
      if (numeric && std::from_chars(which->data(), which->data() + which->size(), index).ec != std::errc()) {
        fmt::print(stderr, "kiln-smi: device index {} is out of range\n", *which);
        return 2;
      }
      devs.push_back(numeric ? kiln::Device::open(index) : kiln::Device::open(std::string_view(*which)));
    } else {
      for (const auto& i : kiln::enumerate()) devs.push_back(kiln::Device::open(std::string_view(i.path)));
    }
    for (auto& d : devs) {
      Row r;
      r.info = d.refresh();
      try {
        r.tel = d.telemetry();
      } catch (const kiln::Error& e) {
        r.error = fmt::format("telemetry unavailable: {}", e.what());
      }
      rows.push_back(std::move(r));
    }
  } catch (const kiln::Error& e) {
    fmt::print(stderr, "kiln-smi: {}\n", e.what());
    return 1;
  }
  if (rows.empty()) {
    if (json) fmt::print("{{\"libkiln\":{},\"devices\":[]}}\n", js(kiln::version_string()));
    fmt::print(stderr, "kiln-smi: {}\n", kiln::diagnose());
    return 1;
  }
  if (json)
    print_json(rows);
  else if (list)
    print_list(rows);
  else
    print_human(rows);
  return 0;
}
