#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""kiln-cc: compile Kiln device kernels (C or C++) into kernel binaries.

  kiln-cc [options] kernel.c [more.c ...] -o kernel.kbin
  kiln-cc --disassemble kernel.kbin
  kiln-cc --info kernel.kbin
  kiln-cc --version

Kernels are functions marked KILN_KERNEL (include <kiln/device/kiln_device.h>).
For each source kiln-cc reads clang's JSON AST into typed records (Kernel, Param),
lays out the args block, generates the entry wrappers, compiles them with clang,
finds the barrier in the compiled code, writes the .kiln.meta and .note.kiln sections
and links with the prebuilt device runtime (libkiln_rt.a). Every ISA and kbin constant
comes from include/kiln/hw (kiln_isa.h, kiln_kbin.h), read at run time. See docs/pe-isa.md.
"""

import argparse
import ast
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import List

# Filled in by CMake: absolute in the build tree, relative to this script's directory when
# installed; run from the source tree, the fallbacks in paths() find them.
CONFIG = {
    "include_dir": "@KILN_CC_INCLUDE_DIR@",
    "rt_lib": "@KILN_CC_RT_LIB@",
    "version": "@PROJECT_VERSION@",
}

RT_LIB_NAME = "libkiln_rt.a"

# desugared C type -> (size, elem name); elem names are KILN_ELEM_<NAME> lower-cased
SCALARS = {
    "char": (1, "i8"), "signed char": (1, "i8"), "unsigned char": (1, "u8"),
    "_Bool": (1, "u8"), "bool": (1, "u8"),
    "short": (2, "i16"), "unsigned short": (2, "u16"),
    "int": (4, "i32"), "unsigned int": (4, "u32"),
    "long": (8, "i64"), "unsigned long": (8, "u64"),
    "long long": (8, "i64"), "unsigned long long": (8, "u64"),
    "float": (4, "f32"), "double": (8, "f64"), "_Float16": (2, "f16"),
}
# typedefs of kiln_device.h whose storage type (uint16_t) does not say what they hold
SPECIAL_TYPEDEFS = {"kiln_bf16_t": "bf16", "kiln_fp16_t": "f16"}

REGS = ["zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2",
        "a3", "a4", "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9",
        "s10", "s11", "t3", "t4", "t5", "t6"]
RISCV_RELOCS = {0: "R_RISCV_NONE", 1: "R_RISCV_32", 2: "R_RISCV_64", 3: "R_RISCV_RELATIVE",
                4: "R_RISCV_COPY", 5: "R_RISCV_JUMP_SLOT", 6: "R_RISCV_TLS_DTPMOD32",
                7: "R_RISCV_TLS_DTPMOD64", 8: "R_RISCV_TLS_DTPREL32",
                9: "R_RISCV_TLS_DTPREL64", 10: "R_RISCV_TLS_TPREL32",
                11: "R_RISCV_TLS_TPREL64", 58: "R_RISCV_IRELATIVE"}


class UsageError(Exception):
    pass


class CompileError(Exception):
    pass


def die(msg, code=1):
    sys.stderr.write("kiln-cc: error: %s\n" % msg)
    sys.exit(code)


def find_tool(names):
    for n in names:
        p = shutil.which(n)
        if p:
            return p
    die("none of %s found (install clang, lld and llvm: scripts/setup.sh)" % ", ".join(names))


def configured(key):
    v = CONFIG[key]
    return None if v.startswith("@") else v


def script_dir():
    return os.path.dirname(os.path.realpath(__file__))


def include_dir():
    here = script_dir()
    # as configured, else the source tree (userspace/kiln-cc/kiln-cc.py)
    cands = [os.path.join(here, configured("include_dir") or "."),
             os.path.join(here, "..", "..", "include")]
    inc = next((p for p in cands
                if os.path.exists(os.path.join(p, "kiln", "device", "kiln_device.h"))), None)
    if not inc:
        die("cannot find the Kiln device headers (looked in %s)" % ", ".join(cands))
    return os.path.realpath(inc)


def runtime():
    """(prebuilt libkiln_rt.a or None, runtime source dir or None)."""
    here = script_dir()
    lib = configured("rt_lib")
    lib = os.path.join(here, lib) if lib else None
    if lib and os.path.exists(lib):
        return os.path.realpath(lib), None
    src = os.path.join(here, "..", "device-rt")     # the source tree, not configured
    if os.path.exists(os.path.join(src, "kiln_rt.c")):
        return None, os.path.realpath(src)
    die("cannot find the device runtime %s (build it: make userspace)" % (lib or RT_LIB_NAME))


TARGET_FLAGS = ["--target=riscv64-unknown-elf", "-march=rv64imafd", "-mabi=lp64d",
                "-mcmodel=medany", "-mno-relax", "-fPIE", "-ffreestanding", "-nostdlib",
                "-fno-builtin", "-fvisibility=hidden", "-fno-exceptions",
                "-fno-asynchronous-unwind-tables", "-fno-unwind-tables",
                "-fno-stack-protector", "-fno-math-errno"]
RT_FLAGS = ["-x", "c", "-std=gnu11"] + TARGET_FLAGS + ["-O2"]


def run(cmd, what):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        raise CompileError("%s failed (exit %d)" % (what, p.returncode))
    if p.stderr:
        sys.stderr.write(p.stderr)
    return p.stdout


# ---------------------------------------------------------------- constants from include/kiln/hw

_BIN_OPS = {ast.BitOr: lambda a, b: a | b, ast.BitAnd: lambda a, b: a & b,
            ast.LShift: lambda a, b: a << b, ast.RShift: lambda a, b: a >> b,
            ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
            ast.Mult: lambda a, b: a * b}


def _eval_int(expr, names):
    """Value of a C integer constant expression of the hw headers (literals with u/l
    suffixes, KILN_HW_BIT/BIT64, | & << >> + - *, parentheses, earlier names)."""
    expr = re.sub(r"\bKILN_HW_BIT(?:64)?\s*\(", "(1 << ", expr)
    expr = re.sub(r"\b(0[xX][0-9a-fA-F]+|\d+)[uUlL]+\b", r"\1", expr)

    def ev(n):
        if isinstance(n, ast.Constant) and isinstance(n.value, int):
            return n.value
        if isinstance(n, ast.Name) and n.id in names and isinstance(names[n.id], int):
            return names[n.id]
        if isinstance(n, ast.BinOp) and type(n.op) in _BIN_OPS:
            return _BIN_OPS[type(n.op)](ev(n.left), ev(n.right))
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub):
            return -ev(n.operand)
        raise ValueError(expr)
    return ev(ast.parse(expr.strip(), mode="eval").body)


class Hw:
    """The constants kiln-cc needs, read from the hw headers: #defines, enum constants
    (with the enum they belong to) and the KILN_HW_ASSERT_SIZE struct sizes."""

    def __init__(self, inc):
        self.names, self.enums, self.sizes = {}, {}, {}
        for h in ("kiln_hw_common.h", "kiln_isa.h", "kiln_kbin.h"):
            path = os.path.join(inc, "kiln", "hw", h)
            try:
                text = open(path).read()
            except OSError as e:
                die("cannot read %s: %s" % (path, e))
            self._parse(re.sub(r"/\*.*?\*/", " ", text, flags=re.S))

    def _parse(self, text):
        enum, nxt = None, 0
        for line in text.splitlines():
            m = re.match(r"\s*#\s*define\s+(\w+)\s+(.+?)\s*$", line)
            if m:
                name, val = m.groups()
                sm = re.match(r'^"([^"]*)"$', val)
                if sm:
                    self.names[name] = sm.group(1)
                else:
                    try:
                        self.names[name] = _eval_int(val, self.names)
                    except (ValueError, SyntaxError):
                        pass    # not a constant (function-like helpers, types)
                continue
            m = re.match(r"\s*KILN_HW_ASSERT_SIZE\(\s*struct\s+(\w+)\s*,\s*(\d+)\s*\)", line)
            if m:
                self.sizes[m.group(1)] = int(m.group(2))
                continue
            m = re.match(r"\s*enum\s+(\w+)\s*\{", line)
            if m:
                enum, nxt = m.group(1), 0
                self.enums[enum] = {}
                continue
            if enum:
                if re.match(r"\s*\}", line):
                    enum = None
                    continue
                m = re.match(r"\s*(\w+)\s*(?:=\s*([^,]+?))?\s*,?\s*$", line)
                if m:
                    try:
                        val = _eval_int(m.group(2), self.names) if m.group(2) else nxt
                    except (ValueError, SyntaxError):
                        continue
                    self.names[m.group(1)] = val
                    self.enums[enum][m.group(1)] = val
                    nxt = val + 1

    def __getitem__(self, name):
        if name not in self.names:
            die("%s not found in include/kiln/hw" % name)
        return self.names[name]

    def enum(self, name, prefix):
        """{suffix (lower case): value} of enum @name's constants PREFIX_SUFFIX."""
        return {k[len(prefix):].lower(): v for k, v in self.enums.get(name, {}).items()}

    @property
    def elem(self):
        return self.enum("kiln_meta_elem_type", "KILN_ELEM_")

    @property
    def features_base(self):
        """Every unit of the device: the features of a kernel without the barrier."""
        f = 0
        for k, v in self.names.items():
            if k.startswith("KILN_FEATURE_") and k != "KILN_FEATURE_BARRIER":
                f |= v
        return f

    @property
    def custom_csrs(self):
        """Kiln's CSRs in the RISC-V custom ranges (0x800-0x8ff read/write, 0xcc0-0xcff
        read-only), named like their kiln_device.h accessors: KILN_CSR_WG_ID -> kiln_wg_id."""
        return {v: "kiln_" + k[len("KILN_CSR_"):].lower() for k, v in self.names.items()
                if k.startswith("KILN_CSR_") and (0x800 <= v <= 0x8ff or 0xcc0 <= v <= 0xcff)}


# ---------------------------------------------------------------- the AST

@dataclass
class Param:
    name: str
    type: str                   # as written ("const uint8_t *")
    desugared: str              # top-level sugar removed ("const unsigned char *" or as written)
    annotations: List[str] = field(default_factory=list)


@dataclass
class Kernel:
    name: str
    qual: str                   # namespace-qualified: the name in the metadata
    params: List[Param]
    cooperative: bool = False
    local_mem: int = 0
    args: list = field(default_factory=list)
    args_size: int = 0
    args_align: int = 8
    entry_sym: str = ""


@dataclass
class Arg:
    name: str
    kind: int
    access: int
    elem: int
    size: int
    align: int
    offset: int
    ctype: str


@dataclass
class TypeInfo:
    """What the AST says about the types named in a translation unit."""
    typedefs: dict = field(default_factory=dict)    # qualified name -> (type, desugared)
    enums: dict = field(default_factory=dict)       # qualified name -> underlying type or None
    annots: dict = field(default_factory=dict)      # KILN_ANNOT_* value -> "kernel", ...


def const_value(node):
    """The integer value of a constant expression node (ConstantExpr carries it)."""
    n = node
    while n is not None:
        if n.get("kind") in ("ConstantExpr", "IntegerLiteral") and \
                re.match(r"^-?\d+$", n.get("value", "")):
            return int(n["value"])
        n = (n.get("inner") or [None])[0]
    return None


def annotation(node, info):
    """A Kiln annotation (KILN_KERNEL ...): annotate("kiln_...", KILN_ANNOT_X[, value]) ->
    "x" or "x=value"; None for other annotations. The JSON dump omits the attribute's
    string but shows its arguments; the KILN_ANNOT_* values come from the same AST
    (enum kiln_annotation in kiln_device.h)."""
    vals = [const_value(a) for a in node.get("inner", [])]
    if not vals or vals[0] not in info.annots:
        return None
    name = info.annots[vals[0]]
    return "%s=%s" % (name, vals[1]) if len(vals) > 1 else name


def parse_ast(root):
    """Kernels (KILN_KERNEL definitions) and type information of a clang JSON AST."""
    kernels, info = [], TypeInfo()

    def walk(node, ns):
        for n in node.get("inner", []):
            kind = n.get("kind")
            if kind == "NamespaceDecl":
                walk(n, ns + [n.get("name", "")])
            elif kind == "LinkageSpecDecl":
                walk(n, ns)
            elif kind in ("TypedefDecl", "TypeAliasDecl") and "name" in n:
                t = n.get("type", {})
                info.typedefs[qualify(ns, n["name"])] = (
                    t.get("qualType", ""), t.get("desugaredQualType", t.get("qualType", "")))
            elif kind == "EnumDecl" and n.get("name") == "kiln_annotation":
                for c in n.get("inner", []):
                    if c.get("kind") == "EnumConstantDecl" and \
                            c.get("name", "").startswith("KILN_ANNOT_"):
                        v = const_value(c) if c.get("inner") else None
                        v = v if v is not None else max(info.annots, default=0) + 1
                        info.annots[v] = c["name"][len("KILN_ANNOT_"):].lower()
                info.enums["kiln_annotation"] = None
            elif kind == "EnumDecl" and "name" in n:
                fixed = n.get("fixedUnderlyingType")
                info.enums[qualify(ns, n["name"])] = (
                    fixed.get("desugaredQualType", fixed.get("qualType")) if fixed else None)
            elif kind == "FunctionDecl":
                k = function(n, qualify(ns, n.get("name", "")))
                if k:
                    kernels.append(k)

    def function(n, qual):
        inner = n.get("inner", [])
        annots = [annotation(a, info) for a in inner if a.get("kind") == "AnnotateAttr"]
        if "kernel" not in annots or not any(a.get("kind") == "CompoundStmt" for a in inner):
            return None
        params = []
        for p in inner:
            if p.get("kind") != "ParmVarDecl":
                continue
            if not p.get("name"):
                raise CompileError("kernel parameters must be named (in %s)" % n["name"])
            t = p.get("type", {})
            params.append(Param(p["name"], t.get("qualType", ""),
                                t.get("desugaredQualType", t.get("qualType", "")),
                                [annotation(a, info) for a in p.get("inner", [])
                                 if a.get("kind") == "AnnotateAttr"]))
        k = Kernel(n["name"], qual, params, cooperative="cooperative" in annots)
        for a in annots:
            if a and a.startswith("local_mem="):
                k.local_mem = int(a.split("=", 1)[1])
        return k

    walk(root, [])
    # A kernel may be declared before its definition: keep each once
    seen, out = set(), []
    for k in kernels:
        if k.qual not in seen:
            seen.add(k.qual)
            out.append(k)
    return out, info


def qualify(ns, name):
    return "::".join([x for x in ns if x] + [name])


QUALS = r"\b(const|volatile|restrict|__restrict|__restrict__)\b"


def unqualified(t):
    return re.sub(r"\s+", " ", re.sub(QUALS, "", t)).strip()


def pointee(t):
    """The pointee of pointer type @t (qualifiers of the pointer itself dropped), or None."""
    t = re.sub(r"(\s*\b(const|volatile|restrict|__restrict|__restrict__)\b)+\s*$", "", t.strip())
    return t[:-1].strip() if t.endswith("*") else None


def resolve(name, info):
    """Follow typedefs from type name @name: (the builtin type it ends in, special elem
    (bf16/f16) if one of the names on the way is kiln_bf16_t/kiln_fp16_t, whether one of
    them is const)."""
    special, seen = None, set()
    const = bool(re.search(r"\bconst\b", name))
    name = unqualified(name)
    while True:
        special = special or SPECIAL_TYPEDEFS.get(name)
        if name not in info.typedefs or name in seen:
            return name, special, const
        seen.add(name)
        const = const or bool(re.search(r"\bconst\b", info.typedefs[name][0]))
        name = unqualified(info.typedefs[name][0])


def classify(k, info, hw):
    """Lay out a kernel's args block from its parameters."""
    elem_codes = hw.elem
    kind_buffer = hw["KILN_ARG_BUFFER"]
    kind_scalar = hw["KILN_ARG_SCALAR"]
    rd, wr = hw["KILN_ARG_ACCESS_READ"], hw["KILN_ARG_ACCESS_WRITE"]
    args, off, max_align = [], 0, 8
    for p in k.params:
        t = p.type.strip()
        ptr = pointee(p.desugared)
        if ptr is None:
            ptr = pointee(t)
        if ptr is not None:
            spelled = pointee(t)
            base, special, const = resolve(spelled if spelled is not None else ptr, info)
            if not special:
                base, special, c2 = resolve(ptr, info)
                const = const or c2
            elem = special or SCALARS.get(base, (0, "none"))[1]
            if "out" in p.annotations:
                access = wr
            elif "in" in p.annotations:
                access = rd
            elif "inout" in p.annotations:
                access = rd | wr
            else:
                access = rd if const else rd | wr
            kind, size, align = kind_buffer, 8, 8
        else:
            base, special, _ = resolve(t, info)
            base = unqualified(p.desugared) if base not in SCALARS else base
            enum_name = base[5:] if base.startswith("enum ") else base
            if enum_name in info.enums or base.startswith("enum "):
                under = info.enums.get(enum_name)
                size, elem = SCALARS.get(resolve(under, info)[0], (4, "i32")) if under \
                    else (4, "i32")  # C: int; C++ without a fixed type: int too
            elif base in SCALARS:
                size, elem = SCALARS[base]
            else:
                raise CompileError(
                    "kernel %s: parameter '%s' has unsupported type '%s' "
                    "(use pointers, integers, float or double)" % (k.name, p.name, t))
            elem = special or elem
            kind, align, access = kind_scalar, size, 0
        off = (off + align - 1) // align * align
        args.append(Arg(p.name, kind, access, elem_codes[elem], size, align, off, t))
        off += size
        max_align = max(max_align, align)
    k.args = args
    k.args_align = max_align
    k.args_size = (off + max_align - 1) // max_align * max_align


# ---------------------------------------------------------------- generation

def gen_wrappers(kernels, src, cxx):
    out = ['#include "%s"' % src, "#include <kiln/device/kiln_device.h>", ""]
    for k in kernels:
        ent = "__kiln_entry_" + k.qual.replace("::", "__")
        k.entry_sym = ent
        calls = ["*(%s const *)(__kiln_args + %d)" % (a.ctype, a.offset) for a in k.args]
        ext = 'extern "C" ' if cxx else ""
        out.append("%s__attribute__((used, noinline, visibility(\"hidden\"))) void %s("
                   "const unsigned char *__kiln_args)" % (ext, ent))
        out.append("{")
        out.append("    (void)__kiln_args;")
        out.append("    %s(%s);" % (k.qual, ", ".join(calls)))
        out.append("    kiln_exit();")
        out.append("}")
        out.append("")
    return "\n".join(out)


def gen_meta_asm(kernels, uses_barrier, hw):
    strings = bytearray(b"\0")
    stroff = {}

    def s(x):
        if x not in stroff:
            stroff[x] = len(strings)
            strings.extend(x.encode() + b"\0")
        return stroff[x]

    hdr_size = hw.sizes["kiln_meta_header"]
    ker_size = hw.sizes["kiln_meta_kernel"]
    arg_size = hw.sizes["kiln_meta_arg"]
    nargs = sum(len(k.args) for k in kernels)
    kernels_off = hdr_size
    args_off = kernels_off + ker_size * len(kernels)
    for k in kernels:
        s(k.qual)
        for a in k.args:
            s(a.name)
    strings_off = args_off + arg_size * nargs
    lines = ['\t.section %s,"",@progbits' % hw["KILN_META_SECTION"], "\t.p2align 3",
             "\t.word 0x%x" % hw["KILN_META_MAGIC"],
             "\t.half %d, %d" % (hw["KILN_META_VERSION"], hdr_size),
             "\t.word %d, %d, %d, %d" % (len(kernels), ker_size, nargs, arg_size),
             "\t.word %d, %d, %d, %d" % (kernels_off, args_off, strings_off, len(strings))]
    first = 0
    for k in kernels:
        flags = hw["KILN_META_KERNEL_COOPERATIVE"] if k.cooperative else 0
        lines.append("\t.word %d, %d" % (s(k.qual), flags))
        lines.append("\t.quad %s" % k.entry_sym)
        lines.append("\t.word %d, %d, %d, %d, %d, 0" % (
            k.args_size, k.args_align, k.local_mem, first, len(k.args)))
        first += len(k.args)
    for k in kernels:
        for a in k.args:
            lines.append("\t.word %d" % s(a.name))
            lines.append("\t.byte %d, %d, %d, 0" % (a.kind, a.access, a.elem))
            lines.append("\t.word %d, %d, %d" % (a.size, a.align, a.offset))
    lines.append("\t.byte " + ", ".join(str(b) for b in strings))
    feats = hw.features_base | (hw["KILN_FEATURE_BARRIER"] if uses_barrier else 0)
    note_name = hw["KILN_NOTE_NAME"]
    lines += ['\t.section %s,"a",@note' % hw["KILN_NOTE_SECTION"], "\t.p2align 2",
              "\t.word %d, %d, %d" % (len(note_name) + 1, hw.sizes["kiln_note_target"],
                                      hw["KILN_NOTE_TYPE_TARGET"]),
              '\t.asciz "%s"' % note_name, "\t.p2align 2",
              "\t.word %d, %d" % (hw["KILN_ISA_VERSION"], hw["KILN_DEVICE_VERSION_K1"]),
              "\t.quad 0x%x" % feats, ""]
    return "\n".join(lines)


LINKER_SCRIPT = """/* Kiln kernel binary layout: position independent, linked at 0 */
SECTIONS
{
  . = 0;
  .text : { *(.text.__kiln_entry*) *(.text .text.*) }
  .rodata : { *(.rodata .rodata.* .srodata .srodata.*) }
  .note.kiln : { KEEP(*(.note.kiln)) }
  . = ALIGN(4096);
  .data : { *(.data .data.* .sdata .sdata.*) }
  .bss : { *(.bss .bss.* .sbss .sbss.* COMMON) }
  /DISCARD/ : { *(.comment) *(.note.GNU-stack) *(.eh_frame) }
}
"""


# ---------------------------------------------------------------- ELF reading

SHT_RELA = 4
SHF_EXECINSTR = 0x4


def elf_sections(data):
    """{name: [name_off, type, flags, addr, offset, size]} of an ELF64 LE file."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise CompileError("not an ELF64 little-endian file")
    e_shoff, = struct.unpack_from("<Q", data, 0x28)
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    secs = []
    for i in range(e_shnum):
        o = e_shoff + i * e_shentsize
        name, typ, flags, addr, off, size = struct.unpack_from("<IIQQQQ", data, o)
        secs.append([name, typ, flags, addr, off, size])
    stro = secs[e_shstrndx][4]
    out = {}
    for sct in secs:
        n = data[stro + sct[0]:data.index(b"\0", stro + sct[0])].decode()
        out[n] = sct
    return out


def custom_insns(data):
    """(funct3, funct7) of every custom-0 instruction in the code sections of an object.
    Code is all 4-byte instructions (rv64imafd: no C extension)."""
    for _, typ, flags, _, off, size in elf_sections(data).values():
        if typ == 1 and flags & SHF_EXECINSTR:
            for o in range(off, off + size - 3, 4):
                w, = struct.unpack_from("<I", data, o)
                if w & 0x7f == 0x0b:
                    yield (w >> 12) & 7, w >> 25


def uses_barrier(obj, hw):
    want = (hw["KILN_UNIT_SYS"], hw["KILN_SYS_BARRIER"])
    return any(i == want for i in custom_insns(open(obj, "rb").read()))


def check_relocations(path, hw):
    """Reject dynamic relocations the loader does not apply (only R_RISCV_RELATIVE)."""
    data = open(path, "rb").read()
    ok = hw["KILN_KBIN_R_RISCV_RELATIVE"]
    for name, (_, typ, _, _, off, size) in elf_sections(data).items():
        if typ != SHT_RELA:
            continue
        for o in range(off, off + size, 24):
            r_offset, r_info, r_addend = struct.unpack_from("<QQq", data, o)
            if r_info & 0xffffffff != ok:
                rname = RISCV_RELOCS.get(r_info & 0xffffffff, "type %d" % (r_info & 0xffffffff))
                raise CompileError("kernel binary needs relocation %s (only R_RISCV_RELATIVE "
                                   "is supported): %s offset 0x%x symbol %d addend %d" % (
                                       rname, name, r_offset, r_info >> 32, r_addend))


def read_meta(data, hw):
    secs = elf_sections(data)
    if hw["KILN_META_SECTION"] not in secs:
        raise CompileError("no .kiln.meta section")
    _, _, _, _, off, size = secs[hw["KILN_META_SECTION"]]
    m = data[off:off + size]
    (magic, ver, hsz, nk, ksz, na, asz, koff, aoff, soff, ssz) = struct.unpack_from(
        "<IHHIIIIIIII", m, 0)
    if magic != hw["KILN_META_MAGIC"]:
        raise CompileError("bad .kiln.meta magic")
    strs = m[soff:soff + ssz]

    def st(o):
        return strs[o:strs.index(b"\0", o)].decode()

    kernels = []
    for i in range(nk):
        name, flags, entry, asize, aalign, lmem, afirst, acount, _ = struct.unpack_from(
            "<IIQIIIIII", m, koff + i * ksz)
        args = []
        for j in range(afirst, afirst + acount):
            an, kind, acc, elem, _, sz, al, ao = struct.unpack_from(
                "<IBBBBIII", m, aoff + j * asz)
            args.append(dict(name=st(an), kind=kind, access=acc, elem=elem, size=sz,
                             align=al, offset=ao))
        kernels.append(dict(name=st(name), flags=flags, entry=entry, args_size=asize,
                            args_align=aalign, local_mem=lmem, args=args))
    note = None
    if hw["KILN_NOTE_SECTION"] in secs:
        o = secs[hw["KILN_NOTE_SECTION"]][4]
        namesz, descsz, typ = struct.unpack_from("<III", data, o)
        isa, mindev, feats = struct.unpack_from("<IIQ", data, o + 12 + (namesz + 3) // 4 * 4)
        note = dict(type=typ, isa=isa, min_device=mindev, features=feats)
    return kernels, note


# ---------------------------------------------------------------- commands

def cmd_info(path, hw):
    data = open(path, "rb").read()
    kernels, note = read_meta(data, hw)
    enames = {v: k for k, v in hw.elem.items()}
    if note:
        print("target: isa %d, min device %d, features 0x%x" % (
            note["isa"], note["min_device"], note["features"]))
    rd, wr = hw["KILN_ARG_ACCESS_READ"], hw["KILN_ARG_ACCESS_WRITE"]
    access = {0: "-", rd: "r", wr: "w", rd | wr: "rw"}
    for k in kernels:
        print("kernel %s entry=0x%x args_size=%d args_align=%d local_mem=%d%s" % (
            k["name"], k["entry"], k["args_size"], k["args_align"], k["local_mem"],
            " cooperative" if k["flags"] & hw["KILN_META_KERNEL_COOPERATIVE"] else ""))
        for a in k["args"]:
            print("  %-16s %-6s %-3s %-5s size=%d align=%d offset=%d" % (
                a["name"], "buffer" if a["kind"] == hw["KILN_ARG_BUFFER"] else "scalar",
                access[a["access"]], enames.get(a["elem"], "?"),
                a["size"], a["align"], a["offset"]))
    return 0


class Decoder:
    """Names of the custom instructions, from the enums of kiln_isa.h."""

    def __init__(self, hw):
        self.hw = hw
        units = hw.enum("kiln_unit", "KILN_UNIT_")
        self.names = {}
        for unit, f3 in units.items():
            prefix = "kiln." if unit == "sys" else "kiln.%s." % unit
            for op, f7 in hw.enum("kiln_%s_op" % unit, "KILN_%s_" % unit.upper()).items():
                self.names[(f3, f7)] = prefix + op
        self.se = hw["KILN_UNIT_SE"]
        self.se_scalar = hw["KILN_SE_SCALAR"]
        se_ops = hw.enum("kiln_se_op", "KILN_SE_")
        self.se_names = {v: k for k, v in se_ops.items() if k != "scalar"}
        # binary ops take the SCALAR form: op | KILN_SE_SCALAR
        self.se_max_scalar = self.se_scalar | max(v for v in se_ops.values() if v < self.se_scalar)
        # operands: rd for the RE, rs1 and rs2 for DMA copies and puts, none for exit and
        # barrier, else rs1
        self.with_rd = {hw["KILN_UNIT_RE"]}
        self.two_src = {(hw["KILN_UNIT_DMA"], hw["KILN_DMA_COPY2D"]),
                        (hw["KILN_UNIT_DMA"], hw["KILN_DMA_GATHER"]),
                        (hw["KILN_UNIT_SYS"], hw["KILN_SYS_PUTS"])}
        self.no_src = {(hw["KILN_UNIT_SYS"], hw["KILN_SYS_EXIT"]),
                       (hw["KILN_UNIT_SYS"], hw["KILN_SYS_BARRIER"])}

    def decode(self, w):
        f3, f7 = (w >> 12) & 7, w >> 25
        rd, rs1, rs2 = (w >> 7) & 31, (w >> 15) & 31, (w >> 20) & 31
        if f3 == self.se:
            scalar = f7 <= self.se_max_scalar and f7 & self.se_scalar
            base = f7 & ~self.se_scalar if f7 <= self.se_max_scalar else f7
            name = "kiln.se." + self.se_names.get(base, "op%d" % f7) + (".s" if scalar else "")
        else:
            name = self.names.get((f3, f7), "kiln.unit%d.op%d" % (f3, f7))
        ops = []
        if f3 in self.with_rd:
            ops.append(REGS[rd])
        if (f3, f7) in self.two_src:
            ops += [REGS[rs1], REGS[rs2]]
        elif (f3, f7) not in self.no_src:
            ops.append(REGS[rs1])
        return "%s\t%s" % (name, ", ".join(ops))


def cmd_disassemble(path, hw):
    objdump = find_tool(["llvm-objdump-14", "llvm-objdump"])
    out = run([objdump, "-d", "--mattr=+m,+a,+f,+d", path], "llvm-objdump")
    dec = Decoder(hw)
    csrs = hw.custom_csrs
    # llvm-objdump up to 17 prints an instruction's bytes ("0b 50 05 00"), 18 and later the
    # RISC-V instruction word ("0005500b")
    line_re = re.compile(r"^(\s*[0-9a-f]+:\s+)((?:[0-9a-f]{2} ){4}|[0-9a-f]{8}\s)\s*(.*)$")
    for line in out.splitlines():
        m = line_re.match(line)
        if m:
            code = m.group(2).split()
            if len(code) == 4:
                w = struct.unpack("<I", bytes(int(x, 16) for x in code))[0]
            else:
                w = int(code[0], 16)
            if (w & 0x7f) == hw["KILN_OPC_CUSTOM0"]:
                line = "%s%s\t%s" % (m.group(1), m.group(2), dec.decode(w))
            else:
                csr = re.search(r"\b(csrr[sw]?c?i?|csrr)\b.*?,\s*(\d+|0x[0-9a-f]+)", m.group(3))
                if csr:
                    num = int(csr.group(2), 0)
                    if num in csrs:
                        line += "\t# " + csrs[num]
        print(line)
    return 0


def archive(objs, out):
    ar = find_tool(["llvm-ar-14", "llvm-ar", "ar"])
    if os.path.exists(out):
        os.unlink(out)
    run([ar, "rcs", out] + objs, "archiving %s" % out)


def build_runtime(sources, out, inc, tmp):
    """Compile the device runtime sources into the archive @out."""
    clang = find_tool(["clang-14", "clang"])
    objs = []
    for src in sources:
        o = os.path.join(tmp, "rt_" + os.path.basename(src) + ".o")
        run([clang] + RT_FLAGS + ["-I", inc, "-c", src, "-o", o], "compiling the device runtime")
        objs.append(o)
    archive(objs, out)
    return out


def cmd_build_runtime(opts, hw):
    """--build-runtime: the build's step that makes libkiln_rt.a (once, not per kernel)."""
    if not opts.sources:
        raise UsageError("--build-runtime needs the runtime sources")
    if not opts.out:
        raise UsageError("--build-runtime needs -o lib.a")
    tmp = tempfile.mkdtemp(prefix="kiln-cc-")
    try:
        build_runtime([os.path.abspath(s) for s in opts.sources], opts.out, include_dir(), tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


CXX_EXTS = (".cc", ".cpp", ".cxx", ".C", ".c++")


def cmd_compile(opts, hw):
    clang = find_tool(["clang-14", "clang"])
    clangxx = find_tool(["clang++-14", "clang++", "clang-14"])
    lld = find_tool(["ld.lld-14", "ld.lld"])
    inc = include_dir()
    rt_lib, rt_src = runtime()
    sources, user_flags = opts.sources, opts.flags
    out = opts.out
    if not sources:
        raise UsageError("no input files")
    if not out:
        out = os.path.splitext(os.path.basename(sources[0]))[0] + ".kbin"
    for s in sources:
        if not os.path.exists(s):
            raise UsageError("no such file: %s" % s)
    tmp = tempfile.mkdtemp(prefix="kiln-cc-")
    try:
        objs, all_kernels, barrier = [], [], False
        base_flags = TARGET_FLAGS + [opts.opt or "-O2", "-I", inc] + user_flags
        for n, src in enumerate(sources):
            src = os.path.abspath(src)
            cxx = os.path.splitext(src)[1] in CXX_EXTS
            cc = clangxx if cxx else clang
            lang = ["-x", "c++", "-std=c++20"] if cxx else ["-x", "c", "-std=gnu11"]
            if any(f.startswith("-std=") for f in user_flags):
                lang = lang[:2]
            dump = run([cc] + lang + base_flags + ["-fsyntax-only", "-fno-color-diagnostics",
                                                  "-Xclang", "-ast-dump=json", src],
                       "compiling %s" % src)
            kernels, info = parse_ast(json.loads(dump))
            del dump
            for k in kernels:
                classify(k, info, hw)
            all_kernels += kernels
            wrap = os.path.join(tmp, "wrap%d%s" % (n, ".cpp" if cxx else ".c"))
            open(wrap, "w").write(gen_wrappers(kernels, src, cxx))
            obj = os.path.join(tmp, "k%d.o" % n)
            run([cc] + lang + base_flags + ["-c", wrap, "-o", obj], "compiling %s" % src)
            # the feature note records the barrier if the code executes it
            barrier = barrier or uses_barrier(obj, hw)
            objs.append(obj)
        if not all_kernels:
            raise CompileError("no kernels found: mark kernel functions with KILN_KERNEL")
        names = [k.qual for k in all_kernels]
        dup = {x for x in names if names.count(x) > 1}
        if dup:
            raise CompileError("kernel defined twice: %s" % ", ".join(sorted(dup)))
        meta = os.path.join(tmp, "meta.s")
        open(meta, "w").write(gen_meta_asm(all_kernels, barrier, hw))
        run([clang, "--target=riscv64-unknown-elf", "-march=rv64imafd", "-mabi=lp64d", "-mno-relax",
             "-c", meta, "-o", meta + ".o"], "assembling metadata")
        objs.append(meta + ".o")
        if rt_lib is None:      # run from the source tree without a build
            rt_lib = build_runtime(
                [os.path.join(rt_src, f) for f in sorted(os.listdir(rt_src)) if f.endswith(".c")],
                os.path.join(tmp, RT_LIB_NAME), inc, tmp)
        lds = os.path.join(tmp, "kiln.ld")
        open(lds, "w").write(LINKER_SCRIPT)
        # the whole runtime, as when it was compiled with each kernel: it has the ELF entry
        # stub (_start), and the binary is the same as linking its objects
        run([lld, "-pie", "--no-dynamic-linker", "-z", "max-page-size=4096", "--hash-style=sysv",
             "-z", "norelro", "-T", lds, "-o", out] + objs +
            ["--whole-archive", rt_lib, "--no-whole-archive"], "linking")
        try:
            check_relocations(out, hw)
        except CompileError:
            os.unlink(out)
            raise
        return 0
    finally:
        if opts.keep_temps:
            sys.stderr.write("kiln-cc: temporaries kept in %s\n" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


USAGE = """usage: kiln-cc [options] kernel.c|kernel.cpp ... [-o out.kbin]
       kiln-cc --disassemble file.kbin
       kiln-cc --info file.kbin
       kiln-cc --version
options: -O<n> -I<dir> -D<macro> -std=<std> -W<warn> -g --keep-temps
"""


class Parser(argparse.ArgumentParser):
    """argparse with kiln-cc's messages and exit codes (UsageError: exit 2 with USAGE)."""

    def error(self, message):
        m = re.match(r"argument (\S+?)(?:/\S+)?: expected one argument", message)
        if m:
            opt = m.group(1)
            raise UsageError("-o needs a file name" if opt == "-o" else
                             "%s needs an argument" % opt if opt in ("-I", "-D", "-U", "-include")
                             else "%s takes exactly one file" % opt)
        raise UsageError(message)


class Flag(argparse.Action):
    """A flag passed on to clang, kept in command-line order (-D and -U, -I order matter)."""

    def __call__(self, parser, ns, value, option_string=None):
        if option_string in ("-I", "-D", "-U", "-include"):
            ns.flags += [option_string, value]
        else:
            ns.flags.append(BARE.get(option_string, option_string + (value or "")))


# -g, -W, -f and -O take a value only attached (-g3, -Wall, -O2): given bare, they are
# renamed so that argparse does not take the next word as their value
BARE = {"--bare-g": "-g", "--bare-W": "-W", "--bare-f": "-f"}


def parse_args(argv):
    p = Parser(prog="kiln-cc", add_help=False, allow_abbrev=False)
    p.set_defaults(flags=[])
    p.add_argument("-h", "--help", action="store_true")
    p.add_argument("--version", action="store_true")
    p.add_argument("--info", metavar="FILE")
    p.add_argument("--disassemble", metavar="FILE")
    p.add_argument("-d", dest="disassemble", metavar="FILE")   # separate: its own messages
    p.add_argument("--build-runtime", action="store_true")
    p.add_argument("-o", dest="out")
    p.add_argument("-O", dest="opt", type=lambda v: "-O" + v)
    p.add_argument("--bare-O", dest="opt", action="store_const", const="-O")
    for o in ("-I", "-D", "-U", "-include", "-W", "-f", "-g"):
        p.add_argument(o, action=Flag)
    for o in BARE:
        p.add_argument(o, action=Flag, nargs=0)
    p.add_argument("-std", action=Flag, type=lambda v: "=" + v)
    p.add_argument("--keep-temps", action="store_true")
    p.add_argument("sources", nargs="*")
    argv = ["--bare" + a if a in ("-g", "-W", "-f", "-O") else a for a in argv]
    opts, rest = p.parse_known_intermixed_args(argv)
    for r in rest:
        raise UsageError("unknown option '%s'" % r)
    return opts


def main(argv):
    # Like any filter: `kiln-cc --info f | head` ends quietly when head closes the pipe,
    # instead of a BrokenPipeError traceback.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(USAGE) if argv else sys.stderr.write(USAGE)
        return 0 if argv else 2
    try:
        opts = parse_args(argv)
        if opts.help:
            sys.stdout.write(USAGE)
            return 0
        if opts.version:
            if len(argv) != 1:
                sys.stderr.write("kiln-cc: error: --version takes no arguments\n%s" % USAGE)
                return 2
            hw = Hw(include_dir())
            # run from the source tree the placeholder is not filled in
            ver = configured("version") or "(source tree)"
            clang = shutil.which("clang-14") or shutil.which("clang") or "not found"
            print("kiln-cc %s (kernel ISA %d, min device %d; clang: %s)" % (
                ver, hw["KILN_ISA_VERSION"], hw["KILN_DEVICE_VERSION_K1"], clang))
            return 0
        for mode, path in (("--info", opts.info), ("--disassemble", opts.disassemble)):
            if path is not None:
                if len(argv) != 2:
                    raise UsageError("%s takes exactly one file" % argv[0])
                if not os.path.exists(path):
                    raise UsageError("no such file: %s" % path)
                hw = Hw(include_dir())
                return cmd_info(path, hw) if mode == "--info" else cmd_disassemble(path, hw)
        hw = Hw(include_dir())
        if opts.build_runtime:
            return cmd_build_runtime(opts, hw)
        return cmd_compile(opts, hw)
    except UsageError as e:
        sys.stderr.write("kiln-cc: error: %s\n%s" % (e, USAGE))
        return 2
    except CompileError as e:
        sys.stderr.write("kiln-cc: error: %s\n" % e)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
