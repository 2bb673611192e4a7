// SPDX-License-Identifier: MIT
// libkiln: kernel binary parser (see include/kiln/hw/kiln_kbin.h).
#include "kbin.hpp"

#include <elf.h>
#include <fmt/format.h>
#include <kiln/hw/kiln_isa.h>
#include <kiln/hw/kiln_kbin.h>
#include <kiln/hw/kiln_packets.h>

#include <cstring>
#include <string>

namespace kiln::detail {
namespace {

constexpr uint64_t kMaxLoadSize = 256ull << 20;  // sanity bound for one module

struct Reader {
  std::span<const std::byte> img;
  std::string_view name;

  [[noreturn]] void bad(const std::string& why) const {
    throw Error(Errc::invalid_binary, fmt::format("{}: invalid kernel binary: {}", name, why));
  }
  [[noreturn]] void incompatible(const std::string& why) const {
    throw Error(Errc::binary_incompatible, fmt::format("{}: kernel binary not for this device: {}", name, why));
  }
  // [off, off + len) inside [0, limit)?
  static bool in_range(uint64_t off, uint64_t len, uint64_t limit) { return off <= limit && len <= limit - off; }
  template <class T>
  T get(uint64_t off, const char* what) const {
    if (!in_range(off, sizeof(T), img.size()))
      bad(fmt::format("{} at offset {:#x} is past the end of the file ({} bytes)", what, off, img.size()));
    T v;
    std::memcpy(&v, img.data() + off, sizeof(T));
    return v;
  }
  std::span<const std::byte> range(uint64_t off, uint64_t len, const char* what) const {
    if (!in_range(off, len, img.size()))
      bad(fmt::format("{} [{:#x}, +{:#x}) is past the end of the file ({} bytes)", what, off, len, img.size()));
    return img.subspan(size_t(off), size_t(len));
  }
};

ScalarType elem_type(uint8_t t) {
  return t <= KILN_ELEM_F64 ? ScalarType(t) : ScalarType::unknown;
}

std::string meta_string(const Reader& r, std::span<const std::byte> strings, uint32_t off, const char* what) {
  if (off >= strings.size())
    r.bad(fmt::format("{} name offset {} outside the string table ({} bytes)", what, off, strings.size()));
  auto s = strings.subspan(off);
  const void* nul = std::memchr(s.data(), 0, s.size());
  if (!nul) r.bad(fmt::format("{} name at offset {} is not NUL-terminated", what, off));
  std::string out(reinterpret_cast<const char*>(s.data()), size_t(static_cast<const std::byte*>(nul) - s.data()));
  if (out.empty()) r.bad(fmt::format("{} has an empty name", what));
  return out;
}

bool is_pow2(uint32_t v) {
  return v && !(v & (v - 1));
}

void parse_meta(const Reader& r, std::span<const std::byte> sec, uint64_t load_size, KbinImage& out) {
  auto fail = [&](const std::string& why) { r.bad(".kiln.meta: " + why); };
  if (sec.size() < sizeof(kiln_meta_header))
    fail(fmt::format("section has {} bytes, header needs {}", sec.size(), sizeof(kiln_meta_header)));
  kiln_meta_header h;
  std::memcpy(&h, sec.data(), sizeof h);
  if (h.magic != KILN_META_MAGIC) fail(fmt::format("bad magic {:#x}", h.magic));
  if (h.version != KILN_META_VERSION)
    r.incompatible(fmt::format(".kiln.meta version {} (this libkiln reads version {})", h.version, KILN_META_VERSION));
  if (h.header_size < sizeof(kiln_meta_header) || h.header_size > sec.size())
    fail(fmt::format("header_size {}", h.header_size));
  if (h.kernel_size < sizeof(kiln_meta_kernel))
    fail(fmt::format("kernel record size {} < {}", h.kernel_size, sizeof(kiln_meta_kernel)));
  if (h.arg_size < sizeof(kiln_meta_arg))
    fail(fmt::format("arg record size {} < {}", h.arg_size, sizeof(kiln_meta_arg)));
  if (h.kernel_count == 0) fail("no kernels");
  if (h.kernel_count > 65536 || h.arg_count > 1u << 20) fail("implausible record counts");
  auto table = [&](uint32_t off, uint64_t count, uint32_t size, const char* what) {
    uint64_t len = count * size;
    if (!Reader::in_range(off, len, sec.size()))
      fail(fmt::format("{} table [{:#x}, +{:#x}) outside the section ({} bytes)", what, off, len, sec.size()));
    return sec.subspan(off, size_t(len));
  };
  auto kt = table(h.kernels_offset, h.kernel_count, h.kernel_size, "kernel");
  auto at = table(h.args_offset, h.arg_count, h.arg_size, "argument");
  auto st = table(h.strings_offset, h.strings_size, 1, "string");

  for (uint32_t i = 0; i < h.kernel_count; i++) {
    kiln_meta_kernel k;
    std::memcpy(&k, kt.data() + size_t(i) * h.kernel_size, sizeof k);
    KernelInfo ki;
    ki.name = meta_string(r, st, k.name, fmt::format("kernel {}", i).c_str());
    auto kfail = [&](const std::string& why) { fail(fmt::format("kernel '{}': {}", ki.name, why)); };
    if (k.entry >= load_size)
      kfail(fmt::format("entry {:#x} outside the loaded image ({:#x} bytes)", k.entry, load_size));
    if (k.entry % 2) kfail(fmt::format("entry {:#x} misaligned", k.entry));
    if (!is_pow2(k.args_align) || k.args_align > 4096)
      kfail(fmt::format("args_align {} not a power of two <= 4096", k.args_align));
    if (k.args_size > KILN_LAUNCH_MAX_ARGS_SIZE)
      kfail(fmt::format("args_size {} > {}", k.args_size, KILN_LAUNCH_MAX_ARGS_SIZE));
    if (uint64_t(k.arg_first) + k.arg_count > h.arg_count)
      kfail(fmt::format("arguments [{}, +{}) outside the argument table ({} records)", k.arg_first, k.arg_count,
                        h.arg_count));
    ki.entry = k.entry;
    ki.args_size = k.args_size;
    ki.args_align = k.args_align;
    ki.local_mem = k.local_mem;
    ki.cooperative = (k.flags & KILN_META_KERNEL_COOPERATIVE) != 0;
    for (const auto& other : out.kernels)
      if (other.name == ki.name) kfail("duplicate kernel name");
    for (uint32_t j = 0; j < k.arg_count; j++) {
      kiln_meta_arg a;
      std::memcpy(&a, at.data() + size_t(k.arg_first + j) * h.arg_size, sizeof a);
      ArgInfo ai;
      ai.name = meta_string(r, st, a.name, fmt::format("kernel '{}' argument {}", ki.name, j).c_str());
      auto afail = [&](const std::string& why) { kfail(fmt::format("argument {} '{}': {}", j, ai.name, why)); };
      if (a.kind == KILN_ARG_BUFFER) {
        ai.kind = ArgKind::buffer;
        if (a.size != 8) afail(fmt::format("buffer argument of size {} (must be 8)", a.size));
      } else if (a.kind == KILN_ARG_SCALAR) {
        ai.kind = ArgKind::scalar;
        if (a.size == 0) afail("scalar of size 0");
      } else {
        afail(fmt::format("unknown kind {}", a.kind));
      }
      if (a.access & ~(KILN_ARG_ACCESS_READ | KILN_ARG_ACCESS_WRITE))
        afail(fmt::format("unknown access bits {:#x}", a.access));
      if (!is_pow2(a.align) || a.align > 4096) afail(fmt::format("align {} not a power of two <= 4096", a.align));
      if (a.offset % a.align) afail(fmt::format("offset {} not aligned to {}", a.offset, a.align));
      if (!Reader::in_range(a.offset, a.size, k.args_size))
        afail(fmt::format("[{}, +{}) outside the args block ({} bytes)", a.offset, a.size, k.args_size));
      for (const auto& o : ki.args) {
        if (o.name == ai.name) afail("duplicate argument name");
        if (a.offset < o.offset + o.size && o.offset < a.offset + a.size)
          afail(fmt::format("overlaps argument '{}'", o.name));
      }
      ai.offset = a.offset;
      ai.size = a.size;
      ai.align = a.align;
      ai.access = ai.kind == ArgKind::buffer ? Access(a.access ? a.access : 3) : Access::read;
      ai.type = elem_type(a.elem_type);
      ki.args.push_back(std::move(ai));
    }
    out.kernels.push_back(std::move(ki));
  }
}

}  // namespace

KbinImage parse_kbin(std::span<const std::byte> image, std::string_view name) {
  Reader r{image, name};
  KbinImage out;
  if (image.size() < sizeof(Elf64_Ehdr)) r.bad(fmt::format("{} bytes is too small for an ELF header", image.size()));
  auto eh = r.get<Elf64_Ehdr>(0, "ELF header");
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) r.bad("not an ELF file (bad magic)");
  if (eh.e_ident[EI_CLASS] != ELFCLASS64) r.incompatible("not ELF64");
  if (eh.e_ident[EI_DATA] != ELFDATA2LSB) r.incompatible("not little-endian");
  if (eh.e_ident[EI_VERSION] != EV_CURRENT) r.bad(fmt::format("ELF version {}", eh.e_ident[EI_VERSION]));
  if (eh.e_machine != KILN_KBIN_EM_RISCV)
    r.incompatible(
        fmt::format("e_machine {} (expected {} = RISC-V; compile with kiln-cc)", eh.e_machine, KILN_KBIN_EM_RISCV));
  if (eh.e_type != ET_DYN && eh.e_type != ET_EXEC) r.bad(fmt::format("e_type {} (expected ET_DYN)", eh.e_type));
  if (eh.e_phentsize != sizeof(Elf64_Phdr) && eh.e_phnum) r.bad(fmt::format("e_phentsize {}", eh.e_phentsize));
  if (eh.e_shentsize != sizeof(Elf64_Shdr)) r.bad(fmt::format("e_shentsize {}", eh.e_shentsize));
  if (eh.e_shnum == 0 || eh.e_shnum > 4096) r.bad(fmt::format("e_shnum {}", eh.e_shnum));
  if (eh.e_shstrndx >= eh.e_shnum) r.bad(fmt::format("e_shstrndx {} >= e_shnum {}", eh.e_shstrndx, eh.e_shnum));

  // Program headers: PT_LOAD segments.
  r.range(eh.e_phoff, uint64_t(eh.e_phnum) * sizeof(Elf64_Phdr), "program header table");
  for (unsigned i = 0; i < eh.e_phnum; i++) {
    auto ph = r.get<Elf64_Phdr>(eh.e_phoff + uint64_t(i) * sizeof(Elf64_Phdr), "program header");
    if (ph.p_type != PT_LOAD) continue;
    if (ph.p_filesz > ph.p_memsz)
      r.bad(fmt::format("segment {}: p_filesz {:#x} > p_memsz {:#x}", i, ph.p_filesz, ph.p_memsz));
    if (ph.p_vaddr > kMaxLoadSize || ph.p_memsz > kMaxLoadSize - ph.p_vaddr)
      r.bad(fmt::format("segment {}: [{:#x}, +{:#x}) exceeds {} MiB", i, ph.p_vaddr, ph.p_memsz, kMaxLoadSize >> 20));
    KbinSegment s{ph.p_vaddr, ph.p_memsz, r.range(ph.p_offset, ph.p_filesz, "segment data")};
    out.load_size = std::max(out.load_size, ph.p_vaddr + ph.p_memsz);
    out.segments.push_back(s);
  }
  if (out.segments.empty()) r.bad("no PT_LOAD segment");
  out.load_size = (out.load_size + 4095) & ~uint64_t(4095);

  // Section headers.
  r.range(eh.e_shoff, uint64_t(eh.e_shnum) * sizeof(Elf64_Shdr), "section header table");
  std::vector<Elf64_Shdr> sh(eh.e_shnum);
  for (unsigned i = 0; i < eh.e_shnum; i++)
    sh[i] = r.get<Elf64_Shdr>(eh.e_shoff + uint64_t(i) * sizeof(Elf64_Shdr), "section header");
  const auto& strsec = sh[eh.e_shstrndx];
  if (strsec.sh_type == SHT_NOBITS) r.bad("section name table has no data");
  auto shstr = r.range(strsec.sh_offset, strsec.sh_size, "section name table");
  auto secname = [&](const Elf64_Shdr& s) -> std::string_view {
    if (s.sh_name >= shstr.size()) r.bad(fmt::format("section name offset {} outside the name table", s.sh_name));
    auto rest = shstr.subspan(s.sh_name);
    const void* nul = std::memchr(rest.data(), 0, rest.size());
    if (!nul) r.bad("section name not NUL-terminated");
    return {reinterpret_cast<const char*>(rest.data()), size_t(static_cast<const std::byte*>(nul) - rest.data())};
  };
  const Elf64_Shdr* note = nullptr;
  const Elf64_Shdr* meta = nullptr;
  for (const auto& s : sh) {
    auto n = secname(s);
    if (n == KILN_NOTE_SECTION)
      note = &s;
    else if (n == KILN_META_SECTION)
      meta = &s;
    else if (s.sh_type == SHT_RELA) {
      if (s.sh_entsize != sizeof(Elf64_Rela)) r.bad(fmt::format("{}: sh_entsize {}", n, s.sh_entsize));
      auto data = r.range(s.sh_offset, s.sh_size, "relocation section");
      for (size_t off = 0; off + sizeof(Elf64_Rela) <= data.size(); off += sizeof(Elf64_Rela)) {
        Elf64_Rela rel;
        std::memcpy(&rel, data.data() + off, sizeof rel);
        uint32_t type = uint32_t(ELF64_R_TYPE(rel.r_info));
        if (type == R_RISCV_NONE) continue;
        if (type != KILN_KBIN_R_RISCV_RELATIVE)
          r.bad(
              fmt::format("{}: relocation type {} at {:#x} (only R_RISCV_RELATIVE is allowed; link with -pie and no "
                          "undefined symbols)",
                          n, type, rel.r_offset));
        if (rel.r_offset > out.load_size - 8 || rel.r_offset % 8)
          r.bad(fmt::format("{}: relocation offset {:#x} outside the image or misaligned", n, rel.r_offset));
        out.relocs.push_back({rel.r_offset, rel.r_addend});
      }
    } else if (s.sh_type == SHT_REL) {
      r.bad(fmt::format("{}: REL relocations are not supported", n));
    }
  }

  // Target note.
  if (!note) r.incompatible("no " KILN_NOTE_SECTION " target note (not built by kiln-cc?)");
  {
    auto d = r.range(note->sh_offset, note->sh_size, "target note");
    size_t off = 0;
    bool found = false;
    while (off + sizeof(Elf64_Nhdr) <= d.size()) {
      Elf64_Nhdr nh;
      std::memcpy(&nh, d.data() + off, sizeof nh);
      off += sizeof nh;
      uint64_t nsz = (uint64_t(nh.n_namesz) + 3) & ~3ull, dsz = (uint64_t(nh.n_descsz) + 3) & ~3ull;
      if (nsz > d.size() - off || dsz > d.size() - off - nsz) r.bad("target note entry overruns its section");
      std::string_view nm(reinterpret_cast<const char*>(d.data() + off), nh.n_namesz ? nh.n_namesz - 1 : 0);
      auto desc = d.subspan(off + nsz, nh.n_descsz);
      off += nsz + dsz;
      if (nm != KILN_NOTE_NAME || nh.n_type != KILN_NOTE_TYPE_TARGET) continue;
      if (desc.size() < sizeof(kiln_note_target))
        r.bad(fmt::format("target note descriptor has {} bytes, need {}", desc.size(), sizeof(kiln_note_target)));
      kiln_note_target t;
      std::memcpy(&t, desc.data(), sizeof t);
      out.target = {t.isa_version, t.min_device_version, t.features};
      found = true;
      break;
    }
    if (!found) r.incompatible("target note has no \"" KILN_NOTE_NAME "\" entry of type 1");
    if (out.target.isa_version != KILN_ISA_VERSION)
      r.incompatible(fmt::format("target note isa_version {} (this device runs ISA version {})", out.target.isa_version,
                                 KILN_ISA_VERSION));
    if (out.target.min_device_version > KILN_DEVICE_VERSION_K1)
      r.incompatible(fmt::format("target note min_device_version {} (this device is K1 = {})",
                                 out.target.min_device_version, KILN_DEVICE_VERSION_K1));
    if (out.target.features & ~uint64_t(KILN_FEATURES_K1))
      r.incompatible(fmt::format("target note features {:#x} include units K1 lacks ({:#x})", out.target.features,
                                 out.target.features & ~uint64_t(KILN_FEATURES_K1)));
  }

  if (!meta) r.bad("no " KILN_META_SECTION " section (argument metadata)");
  if (meta->sh_type == SHT_NOBITS) r.bad(".kiln.meta has no data");
  parse_meta(r, r.range(meta->sh_offset, meta->sh_size, ".kiln.meta section"), out.load_size, out);
  return out;
}

void load_kbin(const KbinImage& img, std::span<std::byte> dst, uint64_t base) {
  if (dst.size() < img.load_size) throw Error(Errc::invalid_argument, "kbin load buffer too small");
  std::memset(dst.data(), 0, size_t(img.load_size));
  for (const auto& s : img.segments) std::memcpy(dst.data() + s.vaddr, s.data.data(), s.data.size());
  for (const auto& r : img.relocs) {
    uint64_t v = base + uint64_t(r.addend);
    std::memcpy(dst.data() + r.offset, &v, 8);
  }
}

}  // namespace kiln::detail
