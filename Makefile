# Kiln — top-level build.  `make help` lists the targets; docs/platform.md explains them.
#
# Every target first runs scripts/setup.sh (a fast no-op once the machine is set up), so
# on a fresh Debian 12/13 machine `make test` is all it takes.

SHELL := /bin/bash
.DEFAULT_GOAL := all
.SUFFIXES:

REPO  := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
BUILD ?= build
B     := $(abspath $(BUILD))
export KILN_BUILD_DIR := $(B)

comma := ,

# --- user variables ---------------------------------------------------------------------
# make VAR=value for anything not listed here is almost certainly a typo: refuse it.
KNOWN_VARS := BUILD V TIER FILTER GTEST_FILTER DEVICES VM_ARGS JOBS PREFIX DESTDIR \
              UDEVDIR DKMSDIR CMAKE_BUILD_TYPE ARGS KVER KDIR
PREFIX           ?= /usr/local
# The udev rule and the driver's DKMS source go where udev and dkms look for them for a
# system prefix; for any other prefix (e.g. $HOME/kiln-sdk, no root needed) they stay in
# it, and `make install` says how to register them.
SYSTEM_PREFIX     = $(filter /usr /usr/local,$(patsubst %/,%,$(PREFIX)))
UDEVDIR          ?= $(if $(SYSTEM_PREFIX),/etc/udev/rules.d,$(PREFIX)/lib/udev/rules.d)
DKMSDIR          ?= $(if $(SYSTEM_PREFIX),/usr/src,$(PREFIX)/src)
CMAKE_BUILD_TYPE ?= RelWithDebInfo
JOBS             ?= $(shell nproc)
DEVICES          ?= 2
# (from make's own record of each variable's origin, so values may contain spaces)
CMDLINE_VARS := $(foreach v,$(.VARIABLES),$(if $(filter command line,$(origin $(v))),$(v)))
UNKNOWN_VARS := $(filter-out $(KNOWN_VARS),$(CMDLINE_VARS))
ifneq ($(UNKNOWN_VARS),)
$(error unknown variable(s) on the command line: $(UNKNOWN_VARS); known: $(KNOWN_VARS) (see 'make help'))
endif
ifneq ($(filter-out lint unit qtest vm harness docs,$(subst $(comma), ,$(TIER))),)
$(error TIER must be a comma-separated subset of: lint unit qtest vm harness docs (got '$(TIER)'))
endif
# The guest kernel version: Debian's 6.12 amd64 kernel, whose image and headers
# scripts/guest-kernel.sh unpacks into $(BUILD)/guest (not installed on the host).
# kiln.ko is built against exactly these headers.  Recursively expanded, so it is
# computed after guest-kernel.sh ran.
KVER_DETECTED = $(shell $(REPO)/scripts/guest-kernel.sh --print-kver 2>/dev/null)
KVER ?= $(KVER_DETECTED)
KDIR ?= $(B)/guest/usr/src/linux-headers-$(KVER)

Q := $(if $(V),,@)
say = @printf '\n\033[1m==> %s\033[0m\n' "$(1)"

.PHONY: all setup qemu guest-kernel module userspace ops run test check shell bench stress \
        install clean distclean help print-KVER check-kver

all: qemu guest-kernel module userspace

# --- set-up -------------------------------------------------------------------------------
setup:
	$(Q)$(REPO)/scripts/setup.sh --quiet

# KVER/KDIR may be overridden only with values that match the guest kernel.
check-kver: guest-kernel
	$(Q)want=$$(cat $(B)/guest/KVER); \
	if [ "$(KVER)" != "$$want" ]; then \
	    echo "Makefile: KVER=$(KVER) but the guest kernel is $$want; kiln.ko must be built for the guest kernel" >&2; exit 1; fi; \
	if [ ! -f "$(KDIR)/Makefile" ]; then echo "Makefile: KDIR=$(KDIR) has no kernel build tree" >&2; exit 1; fi; \
	kdv=$$(make -s -C "$(KDIR)" kernelrelease 2>/dev/null); \
	if [ -n "$$kdv" ] && [ "$$kdv" != "$$want" ]; then \
	    echo "Makefile: KDIR=$(KDIR) is for $$kdv, but the guest kernel is $$want" >&2; exit 1; fi

print-KVER: setup
	@echo $(KVER)

# --- components -------------------------------------------------------------------------
qemu: setup
	$(call say,QEMU 10.0 with the kiln device -> $(BUILD)/qemu)
	$(Q)$(REPO)/scripts/build-qemu.sh --jobs $(JOBS)

guest-kernel: setup
	$(Q)$(REPO)/scripts/guest-kernel.sh

# kiln.ko: kernel/ is built in place by its own Makefile, then copied to $(BUILD)/kernel/.
module: check-kver
ifneq ($(wildcard $(REPO)/kernel/Kbuild),)
	$(call say,kiln.ko for $(KVER))
	$(Q)$(MAKE) --no-print-directory -C $(REPO)/kernel KDIR=$(KDIR) $(if $(V),V=1)
	$(Q)mkdir -p $(B)/kernel && \
	    { cmp -s $(REPO)/kernel/kiln.ko $(B)/kernel/kiln.ko || cp $(REPO)/kernel/kiln.ko $(B)/kernel/kiln.ko; }
else
	@echo "module: skipped: kernel/Kbuild not there yet"
endif

# The CMake project (top-level CMakeLists.txt): libkiln, tools, kiln-cc, op library,
# samples, unit tests and VM tests.  kiln-vm finds the op library through the CMake
# cache (KILN_OPS_DIR).
userspace: setup
ifneq ($(wildcard $(REPO)/CMakeLists.txt),)
	$(call say,CMake project -> $(BUILD)/userspace)
	$(Q)if [ ! -f $(B)/userspace/build.ninja ]; then \
	    cmake -S $(REPO) -B $(B)/userspace -G Ninja -DCMAKE_BUILD_TYPE=$(CMAKE_BUILD_TYPE) >/dev/null || exit 1; \
	elif grep -q '^KILN_OPS_OUTPUT_DIR:UNINITIALIZED=$(B)/ops$$' $(B)/userspace/CMakeCache.txt; then \
	    cmake -U KILN_OPS_OUTPUT_DIR $(B)/userspace >/dev/null; fi   # set by older versions of this Makefile
	$(Q)cmake --build $(B)/userspace -j $(JOBS)
else
	@echo "userspace: skipped: no top-level CMakeLists.txt yet"
endif

ops: userspace

# --- using it ---------------------------------------------------------------------------
run: all
	$(call say,make run: showcase in a Kiln VM (1 device))
	$(Q)$(REPO)/scripts/showcase

test: all
	$(call say,make test: lint / unit / qtest / vm / harness / docs tiers)
	$(Q)$(REPO)/scripts/run-tests --devices $(DEVICES) \
	    $(foreach t,$(subst $(comma), ,$(TIER)),--tier $(t)) \
	    $(if $(FILTER),--filter '$(FILTER)') $(if $(GTEST_FILTER),--gtest-filter '$(GTEST_FILTER)') \
	    $(foreach a,$(VM_ARGS),--vm-arg=$(a)) $(if $(V),-v)

check: test

shell: all
	$(Q)$(REPO)/scripts/kiln-vm shell $(VM_ARGS)

bench: all
	$(Q)if [ -x $(REPO)/scripts/bench ]; then $(REPO)/scripts/bench $(ARGS); \
	else echo "make bench: not available yet (scripts/bench does not exist)"; fi

stress: all
	$(Q)if [ -x $(REPO)/scripts/stress ]; then $(REPO)/scripts/stress $(ARGS); \
	else echo "make stress: not available yet (scripts/stress does not exist)"; fi

# --- install ------------------------------------------------------------------------------
# DESTDIR/PREFIX aware.  Everything installed is relocatable or names PREFIX itself, so the
# build does not depend on PREFIX (cmake --install --prefix).  The driver is installed as
# DKMS source so it follows kernel updates; the udev rule gives the render group access.
DKMS_VERSION = $(shell sed -n 's/^PACKAGE_VERSION="\{0,1\}\([^"]*\)"\{0,1\}/\1/p' $(REPO)/kernel/dkms.conf 2>/dev/null)
install: all
	$(call say,install to $(DESTDIR)$(PREFIX))
	$(Q)case "$(PREFIX)" in /*) ;; *) echo "Makefile: PREFIX must be an absolute path (got '$(PREFIX)')" >&2; exit 1;; esac
ifneq ($(wildcard $(REPO)/CMakeLists.txt),)
	$(Q)DESTDIR=$(DESTDIR) cmake --install $(B)/userspace --prefix $(PREFIX)
endif
	$(Q)rule=$$(ls $(REPO)/kernel/*.rules $(REPO)/userspace/*.rules 2>/dev/null | head -n1); \
	if [ -n "$$rule" ]; then install -D -m 0644 $$rule $(DESTDIR)$(UDEVDIR)/$$(basename $$rule); \
	    echo "installed $(DESTDIR)$(UDEVDIR)/$$(basename $$rule)$(if $(SYSTEM_PREFIX),, (for udev: copy it to /etc/udev/rules.d))"; fi
ifneq ($(wildcard $(REPO)/kernel/dkms.conf),)
	$(Q)d=$(DESTDIR)$(DKMSDIR)/kiln-$(DKMS_VERSION); rm -rf $$d; install -d $$d/include; \
	find $(REPO)/kernel -maxdepth 1 -name '*.[ch]' ! -name '*.mod.c' -exec cp {} $$d/ \; && \
	cp $(REPO)/kernel/Kbuild $(REPO)/kernel/Makefile $(REPO)/kernel/dkms.conf $$d/ && \
	if [ -f $(REPO)/kernel/Kconfig ]; then cp $(REPO)/kernel/Kconfig $$d/; fi && \
	cp -r $(REPO)/include/. $$d/include/ && \
	echo "installed DKMS source $$d (then: dkms $(if $(SYSTEM_PREFIX),install kiln/$(DKMS_VERSION),add $(DKMSDIR)/kiln-$(DKMS_VERSION) && dkms install kiln/$(DKMS_VERSION)))"
endif

# --- housekeeping -------------------------------------------------------------------------
# clean keeps the downloaded sources (QEMU source package, guest kernel .deb)
clean:
	$(Q)if [ -f $(REPO)/kernel/Makefile ] && [ -n "$(KVER_DETECTED)" ]; then \
	    $(MAKE) --no-print-directory -s -C $(REPO)/kernel KDIR=$(B)/guest/usr/src/linux-headers-$(KVER_DETECTED) clean >/dev/null 2>&1 || true; fi
	$(Q)if [ -d $(B) ]; then find $(B) -mindepth 1 -maxdepth 1 ! -name qemu-src ! -name guest -exec rm -rf {} +; \
	    find $(B)/guest -mindepth 1 -maxdepth 1 ! -name debs -exec rm -rf {} + 2>/dev/null; true; fi
	@echo "cleaned $(BUILD)/ (kept the downloads: $(BUILD)/qemu-src, $(BUILD)/guest/debs)"

distclean: clean
	$(Q)rm -rf $(B)

help:
	@echo "Kiln — make targets (each one runs scripts/setup.sh first):"
	@echo "  make / make all   build QEMU+kiln device, fetch the guest kernel, build kiln.ko and the CMake project"
	@echo "  make run          boot a VM with one Kiln device and run the showcase sample"
	@echo "  make test         all test tiers (lint, unit, qtest, vm, harness, docs); last line 'N passed, N failed, N skipped'"
	@echo "  make shell        interactive busybox shell in the VM, driver loaded, tools on PATH"
	@echo "  make bench        benchmarks (scripts/bench)       make stress   stress tests (scripts/stress)"
	@echo "  make install      install SDK, tools, op library, udev rule, DKMS source (DESTDIR, PREFIX)"
	@echo "  make qemu | guest-kernel | module | userspace     build one piece"
	@echo "  make clean        remove build products (keeps downloads)   make distclean  remove $(BUILD)/"
	@echo "  make print-KVER   the guest kernel version kiln.ko is built for"
	@echo "variables: TIER=lint,unit,qtest,vm,harness,docs  FILTER=regex  GTEST_FILTER=pat  DEVICES=n (vm tier)"
	@echo "           VM_ARGS='--pe-grid=2x2 ...'  V=1 (verbose)  JOBS=n  BUILD=dir  PREFIX=  DESTDIR=  UDEVDIR=  DKMSDIR="
	@echo "docs: README.md, docs/platform.md"
