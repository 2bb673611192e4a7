// SPDX-License-Identifier: MIT
// Kernel binary parser: valid input and many malformed ones (never crash,
// always a clear kiln::Error naming the problem).
#include <gtest/gtest.h>

#include <random>

#include "kbin.hpp"
#include "kbin_builder.hpp"

using namespace kiln;
using kiln::detail::parse_kbin;
using kiln::test::KbinBuilder;

namespace {
Errc parse_errc(std::span<const std::byte> img, std::string* msg = nullptr) {
  try {
    parse_kbin(img, "t.kbin");
  } catch (const Error& e) {
    if (msg) *msg = e.what();
    return e.errc();
  }
  return Errc::ok;
}
Errc build_errc(KbinBuilder b, std::string* msg = nullptr) {
  auto img = b.build();
  return parse_errc(img, msg);
}
template <class T>
void poke(std::vector<std::byte>& img, size_t off, T v) {
  std::memcpy(img.data() + off, &v, sizeof v);
}
}  // namespace

TEST(Kbin, ParsesValidBinary) {
  KbinBuilder b;
  auto img = b.build();
  auto k = parse_kbin(img);
  ASSERT_EQ(k.kernels.size(), 1u);
  EXPECT_EQ(k.kernels[0].name, "vadd");
  ASSERT_EQ(k.kernels[0].args.size(), 3u);
  EXPECT_EQ(k.kernels[0].args[0].kind, ArgKind::buffer);
  EXPECT_EQ(k.kernels[0].args[1].access, Access::write);
  EXPECT_EQ(k.kernels[0].args[2].kind, ArgKind::scalar);
  EXPECT_EQ(k.kernels[0].args[2].type, ScalarType::u32);
  EXPECT_EQ(k.kernels[0].args[2].offset, 16u);
  EXPECT_EQ(k.load_size, 4096u);
  EXPECT_EQ(k.target.isa_version, uint32_t(KILN_ISA_VERSION));
  ASSERT_EQ(k.relocs.size(), 1u);
}

TEST(Kbin, LoadCopiesSegmentsZeroFillsAndRelocates) {
  KbinBuilder b;
  b.code.assign(256, 0xab);
  auto img = b.build();
  auto k = parse_kbin(img);
  std::vector<std::byte> mem(k.load_size, std::byte{0xcc});
  detail::load_kbin(k, mem, 0x4000'0000);
  EXPECT_EQ(mem[0], std::byte{0xab});
  EXPECT_EQ(mem[300], std::byte{0});  // bss
  uint64_t v;
  std::memcpy(&v, mem.data() + 128, 8);
  EXPECT_EQ(v, 0x4000'0000u + 16);
}

TEST(Kbin, MultipleKernels) {
  KbinBuilder b;
  b.kernels.push_back(
      {"scale", 64, 8, 8, 1024, KILN_META_KERNEL_COOPERATIVE, {{"x", KILN_ARG_BUFFER, 3, KILN_ELEM_F32, 8, 8, 0}}});
  auto k = parse_kbin(b.build());
  ASSERT_EQ(k.kernels.size(), 2u);
  EXPECT_TRUE(k.kernels[1].cooperative);
  EXPECT_EQ(k.kernels[1].local_mem, 1024u);
  EXPECT_EQ(k.kernels[1].args[0].access, Access::read_write);
}

TEST(Kbin, EveryTruncationIsAnError) {
  KbinBuilder b;
  auto img = b.build();
  for (size_t n = 0; n < img.size(); n++) {
    auto e = parse_errc(std::span(img).first(n));
    EXPECT_TRUE(e == Errc::invalid_binary || e == Errc::binary_incompatible) << "prefix " << n;
  }
}

TEST(Kbin, NotElf) {
  std::vector<std::byte> junk(4096, std::byte{0x41});
  std::string m;
  EXPECT_EQ(parse_errc(junk, &m), Errc::invalid_binary);
  EXPECT_NE(m.find("not an ELF"), std::string::npos) << m;
}

TEST(Kbin, WrongMachineIsIncompatible) {
  KbinBuilder b;
  b.machine = EM_X86_64;
  std::string m;
  EXPECT_EQ(build_errc(b, &m), Errc::binary_incompatible);
  EXPECT_NE(m.find("e_machine 62"), std::string::npos) << m;
}

TEST(Kbin, Elf32IsIncompatible) {
  KbinBuilder b;
  b.elf_class = ELFCLASS32;
  EXPECT_EQ(build_errc(b), Errc::binary_incompatible);
}

TEST(Kbin, RelocatableObjectRejected) {
  KbinBuilder b;
  b.type = ET_REL;
  EXPECT_EQ(build_errc(b), Errc::invalid_binary);
}

TEST(Kbin, MissingTargetNote) {
  KbinBuilder b;
  b.with_note = false;
  std::string m;
  EXPECT_EQ(build_errc(b, &m), Errc::binary_incompatible);
  EXPECT_NE(m.find(".note.kiln"), std::string::npos) << m;
}

TEST(Kbin, WrongIsaVersion) {
  KbinBuilder b;
  b.isa_version = KILN_ISA_VERSION + 1;
  std::string m;
  EXPECT_EQ(build_errc(b, &m), Errc::binary_incompatible);
  EXPECT_NE(m.find("isa_version"), std::string::npos) << m;
}

TEST(Kbin, NewerDeviceRequired) {
  KbinBuilder b;
  b.min_device = 2;
  std::string m;
  EXPECT_EQ(build_errc(b, &m), Errc::binary_incompatible);
  EXPECT_NE(m.find("min_device_version"), std::string::npos) << m;
}

TEST(Kbin, UnknownFeature) {
  KbinBuilder b;
  b.features = 1ull << 40;
  EXPECT_EQ(build_errc(b), Errc::binary_incompatible);
}

TEST(Kbin, WrongNoteName) {
  KbinBuilder b;
  auto img = b.build();
  std::memcpy(img.data() + b.note_off + sizeof(Elf64_Nhdr), "Klin", 4);
  EXPECT_EQ(parse_errc(img), Errc::binary_incompatible);
}

TEST(Kbin, NoteOverrun) {
  KbinBuilder b;
  auto img = b.build();
  poke<uint32_t>(img, b.note_off + 4, 0x10000);  // descsz
  EXPECT_EQ(parse_errc(img), Errc::invalid_binary);
}

TEST(Kbin, MissingMeta) {
  KbinBuilder b;
  b.with_meta = false;
  std::string m;
  EXPECT_EQ(build_errc(b, &m), Errc::invalid_binary);
  EXPECT_NE(m.find(".kiln.meta"), std::string::npos);
}

TEST(Kbin, BadMetaMagic) {
  KbinBuilder b;
  b.meta_magic = 0x12345678;
  EXPECT_EQ(build_errc(b), Errc::invalid_binary);
}

TEST(Kbin, NewerMetaVersionIsIncompatible) {
  KbinBuilder b;
  b.meta_version = 99;
  EXPECT_EQ(build_errc(b), Errc::binary_incompatible);
}

TEST(Kbin, MetaTableOffsetsOutOfRange) {
  for (size_t field : {offsetof(kiln_meta_header, kernels_offset), offsetof(kiln_meta_header, args_offset),
                       offsetof(kiln_meta_header, strings_offset)}) {
    KbinBuilder b;
    auto img = b.build();
    poke<uint32_t>(img, b.meta_off + field, 0xfffffff0u);
    std::string m;
    EXPECT_EQ(parse_errc(img, &m), Errc::invalid_binary) << field;
    EXPECT_NE(m.find("outside the section"), std::string::npos) << m;
  }
}

TEST(Kbin, MetaCountOverflow) {
  KbinBuilder b;
  auto img = b.build();
  poke<uint32_t>(img, b.meta_off + offsetof(kiln_meta_header, arg_count), 0xffffffffu);
  EXPECT_EQ(parse_errc(img), Errc::invalid_binary);
  img = b.build();
  poke<uint32_t>(img, b.meta_off + offsetof(kiln_meta_header, kernel_count), 0);
  EXPECT_EQ(parse_errc(img), Errc::invalid_binary);
}

TEST(Kbin, MetaRecordSizeTooSmall) {
  KbinBuilder b;
  auto img = b.build();
  poke<uint32_t>(img, b.meta_off + offsetof(kiln_meta_header, kernel_size), 8);
  EXPECT_EQ(parse_errc(img), Errc::invalid_binary);
}

TEST(Kbin, ArgumentRangeOutsideTable) {
  KbinBuilder b;
  auto img = b.build();
  size_t k0 = b.meta_off + sizeof(kiln_meta_header);
  poke<uint32_t>(img, k0 + offsetof(kiln_meta_kernel, arg_first), 2);
  std::string m;
  EXPECT_EQ(parse_errc(img, &m), Errc::invalid_binary);
  EXPECT_NE(m.find("outside the argument table"), std::string::npos) << m;
}

TEST(Kbin, NameOffsetOutsideStrings) {
  KbinBuilder b;
  auto img = b.build();
  poke<uint32_t>(img, b.meta_off + sizeof(kiln_meta_header) + offsetof(kiln_meta_kernel, name), 100000);
  EXPECT_EQ(parse_errc(img), Errc::invalid_binary);
}

TEST(Kbin, UnterminatedString) {
  KbinBuilder b;
  auto img = b.build();
  // overwrite the last NUL of the string table
  img[b.meta_off + b.meta_size - 1] = std::byte{'x'};
  EXPECT_EQ(parse_errc(img), Errc::invalid_binary);
}

TEST(Kbin, EntryOutsideImage) {
  KbinBuilder b;
  b.kernels[0].entry = 1 << 20;
  std::string m;
  EXPECT_EQ(build_errc(b, &m), Errc::invalid_binary);
  EXPECT_NE(m.find("entry"), std::string::npos);
}

TEST(Kbin, ArgOutsideArgsBlock) {
  KbinBuilder b;
  b.kernels[0].args[2].offset = 24;
  std::string m;
  EXPECT_EQ(build_errc(b, &m), Errc::invalid_binary);
  EXPECT_NE(m.find("outside the args block"), std::string::npos) << m;
}

TEST(Kbin, ArgsOverlap) {
  KbinBuilder b;
  b.kernels[0].args[1].offset = 0;
  EXPECT_EQ(build_errc(b), Errc::invalid_binary);
}

TEST(Kbin, BufferArgWrongSize) {
  KbinBuilder b;
  b.kernels[0].args[0].size = 4;
  b.kernels[0].args[0].align = 4;
  EXPECT_EQ(build_errc(b), Errc::invalid_binary);
}

TEST(Kbin, UnknownArgKind) {
  KbinBuilder b;
  b.kernels[0].args[0].kind = 7;
  EXPECT_EQ(build_errc(b), Errc::invalid_binary);
}

TEST(Kbin, BadAlignment) {
  KbinBuilder b;
  b.kernels[0].args[2].align = 3;
  EXPECT_EQ(build_errc(b), Errc::invalid_binary);
  KbinBuilder c;
  c.kernels[0].args_align = 0;
  EXPECT_EQ(build_errc(c), Errc::invalid_binary);
}

TEST(Kbin, ArgsBlockTooLarge) {
  KbinBuilder b;
  b.kernels[0].args_size = 1 << 20;
  EXPECT_EQ(build_errc(b), Errc::invalid_binary);
}

TEST(Kbin, DuplicateNames) {
  KbinBuilder b;
  b.kernels[0].args[1].name = "a";
  EXPECT_EQ(build_errc(b), Errc::invalid_binary);
  KbinBuilder c;
  c.kernels.push_back(c.kernels[0]);
  EXPECT_EQ(build_errc(c), Errc::invalid_binary);
}

TEST(Kbin, OnlyRelativeRelocations) {
  KbinBuilder b;
  b.reloc_type = 2;  // R_RISCV_64 (needs a symbol)
  std::string m;
  EXPECT_EQ(build_errc(b, &m), Errc::invalid_binary);
  EXPECT_NE(m.find("R_RISCV_RELATIVE"), std::string::npos) << m;
}

TEST(Kbin, RelocationOutsideImage) {
  KbinBuilder b;
  b.relocs = {{1 << 20, 0}};
  EXPECT_EQ(build_errc(b), Errc::invalid_binary);
  KbinBuilder c;
  c.relocs = {{4, 0}};  // misaligned
  EXPECT_EQ(build_errc(c), Errc::invalid_binary);
}

TEST(Kbin, SegmentPastEndOfFile) {
  KbinBuilder b;
  auto img = b.build();
  poke<uint64_t>(img, sizeof(Elf64_Ehdr) + offsetof(Elf64_Phdr, p_filesz), 1 << 30);
  poke<uint64_t>(img, sizeof(Elf64_Ehdr) + offsetof(Elf64_Phdr, p_memsz), 1 << 30);
  EXPECT_EQ(parse_errc(img), Errc::invalid_binary);
}

TEST(Kbin, FileszLargerThanMemsz) {
  KbinBuilder b;
  auto img = b.build();
  poke<uint64_t>(img, sizeof(Elf64_Ehdr) + offsetof(Elf64_Phdr, p_memsz), 1);
  EXPECT_EQ(parse_errc(img), Errc::invalid_binary);
}

TEST(Kbin, HugeSegment) {
  KbinBuilder b;
  auto img = b.build();
  poke<uint64_t>(img, sizeof(Elf64_Ehdr) + offsetof(Elf64_Phdr, p_vaddr), ~0ull - 10);
  EXPECT_EQ(parse_errc(img), Errc::invalid_binary);
}

TEST(Kbin, SectionTableOutOfRange) {
  KbinBuilder b;
  auto img = b.build();
  poke<uint64_t>(img, offsetof(Elf64_Ehdr, e_shoff), ~0ull - 100);
  EXPECT_EQ(parse_errc(img), Errc::invalid_binary);
  img = b.build();
  poke<uint16_t>(img, offsetof(Elf64_Ehdr, e_shstrndx), 60);
  EXPECT_EQ(parse_errc(img), Errc::invalid_binary);
}

TEST(Kbin, SectionNameOutOfRange) {
  KbinBuilder b;
  auto img = b.build();
  poke<uint32_t>(img, b.shdr_off + sizeof(Elf64_Shdr) * 2, 9999);
  EXPECT_EQ(parse_errc(img), Errc::invalid_binary);
}

TEST(Kbin, RandomCorruptionNeverCrashes) {
  KbinBuilder b;
  auto good = b.build();
  std::mt19937 rng(1234);
  int errors = 0;
  for (int iter = 0; iter < 3000; iter++) {
    auto img = good;
    int flips = 1 + int(rng() % 8);
    for (int i = 0; i < flips; i++) img[rng() % img.size()] = std::byte(rng());
    try {
      auto k = parse_kbin(img);
      std::vector<std::byte> mem(k.load_size);
      detail::load_kbin(k, mem, 0x1000);
    } catch (const Error&) {
      errors++;
    }
  }
  EXPECT_GT(errors, 0);
}
