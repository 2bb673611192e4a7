#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Self-tests of the Kiln VM harness (scripts/kiln-vm, scripts/run-tests); TAP output.

Each case proves that a broken run is reported as broken, and says which way:
a failing in-VM test, a guest kernel WARNING, a hung guest, bad usage.  A case PASSES
when the harness correctly reports the failure.  Run by `make test` (tier "harness").
"""
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.realpath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("KILN_BUILD_DIR", os.path.join(REPO, "build"))
OUT = os.path.join(BUILD, "harness")
KILN_VM = [sys.executable, os.path.join(REPO, "scripts", "kiln-vm")]
KILN_VM_PAIR = [sys.executable, os.path.join(REPO, "scripts", "kiln-vm-pair")]
RUN_TESTS = [sys.executable, os.path.join(REPO, "scripts", "run-tests")]
QEMU = os.path.join(BUILD, "qemu", "qemu-system-x86_64")
NO_DEV = ["--devices", "0", "--no-driver"]


class Skip(Exception):
    pass


def sh(argv, timeout=600, cwd=REPO, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=timeout,
                       cwd=cwd, stdin=subprocess.DEVNULL, **kw)
    return p.returncode, p.stdout, p.stderr


def expect(cond, what, out=""):
    if not cond:
        raise AssertionError(what + ("\n" + out[-3000:] if out else ""))


def kver():
    with open(os.path.join(BUILD, "guest", "KVER")) as f:
        return f.read().strip()


def build_warn_module():
    src, dst = os.path.join(HERE, "warn_mod"), os.path.join(OUT, "warn_mod")
    os.makedirs(dst, exist_ok=True)
    for f in ("warn_mod.c", "Kbuild"):
        s, d = os.path.join(src, f), os.path.join(dst, f)
        if not os.path.exists(d) or open(s).read() != open(d).read():
            shutil.copy(s, d)
    kdir = os.path.join(BUILD, "guest", "usr", "src", f"linux-headers-{kver()}")
    rc, out, err = sh(["make", "-s", "-C", kdir, f"M={dst}", "modules"])
    expect(rc == 0, "building tests/harness/warn_mod failed", out + err)
    return os.path.join(dst, "kiln_harness_warn.ko")


def build_gtest_binary(name="harness_selftest"):
    """Compile tests/harness/<name>.cc into its own vmtests directory; return the dir."""
    src = os.path.join(HERE, name + ".cc")
    d = os.path.join(OUT, "vmtests-" + name)
    os.makedirs(d, exist_ok=True)
    exe = os.path.join(d, name)
    if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
        rc, out, err = sh(["g++", "-std=c++17", "-O1", "-o", exe, src, "-lgtest",
                           "-lgtest_main", "-pthread"])
        expect(rc == 0, "building harness_selftest.cc failed", out + err)
    return d


# ---------------------------------------------------------------------------------------
def t_usage_errors():
    rc, out, err = sh(KILN_VM)
    expect(rc == 2 and "missing mode" in err, f"no arguments: rc {rc}", err)
    rc, out, err = sh(KILN_VM + ["run"])
    expect(rc == 2 and "no command given" in err, f"'run' without a command: rc {rc}", err)
    rc, out, err = sh(KILN_VM + ["run", "--", "./does/not/exist"])
    expect(rc == 2 and "not found" in err, f"nonexistent program: rc {rc}", err)
    rc, out, err = sh(KILN_VM + ["run", "--", "no-such-program"])
    expect(rc == 2 and "not found" in err, f"unknown command name: rc {rc}", err)
    rc, out, err = sh(KILN_VM + ["run", "--writable", "/", "--", "true"])
    expect(rc == 2 and "cannot be /" in err, f"--writable /: rc {rc}", err)
    rc, out, err = sh(KILN_VM + ["run", "--", "/proc/self/exe"])
    expect(rc == 2 and "not visible in the guest" in err, f"a program under /proc: rc {rc}", err)


def t_host_share():
    """Host programs run unchanged; writes reach the host only in the writable directory."""
    work = os.path.join(OUT, "share")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, "rw"))
    ro = os.path.join(work, "ro.txt")
    with open(ro, "w") as f:
        f.write("host\n")
    script = (f"python3 -c 'import json; print(json.dumps({{\"py\": 6 * 7}}))' && "
              f"cat {ro} && echo guest > {ro} && cat {ro} && "
              f"echo result > out.txt && echo $(pwd) && ls /usr/bin/python3")
    rc, out, err = sh(KILN_VM + ["run"] + NO_DEV + ["--writable", os.path.join(work, "rw"),
                                                    "--", "sh", "-c", script],
                      cwd=os.path.join(work, "rw"))
    expect(rc == 0, f"the guest command failed (rc {rc})", out + err)
    expect('{"py": 42}' in out, "python3 from the host did not run in the guest", out + err)
    expect("host\nguest\n" in out, "a read-only host file was not readable, or not writable "
           "in guest RAM", out + err)
    with open(ro) as f:
        expect(f.read() == "host\n", "a write outside the writable directory reached the host")
    p = os.path.join(work, "rw", "out.txt")
    expect(os.path.exists(p) and open(p).read() == "result\n",
           "a file written in the writable directory did not appear on the host", out + err)


def t_exit_status_propagates():
    rc, out, err = sh(KILN_VM + ["run"] + NO_DEV + ["--", "sh", "-c", "echo in-guest; exit 7"])
    expect(rc == 7, f"guest command exited 7, kiln-vm returned {rc}", out + err)
    expect("in-guest" in out, "guest output was not streamed", out + err)


def t_failing_vm_test_fails_run():
    d = build_gtest_binary()
    results = os.path.join(OUT, "results")
    rc, out, err = sh(RUN_TESTS + ["--tier", "vm", "--vmtests-dir", d, "--results", results,
                                   "--vm-arg=--devices=0", "--vm-arg=--no-driver"], timeout=900)
    last = out.strip().splitlines()[-1] if out.strip() else ""
    expect(rc != 0, "run-tests exited 0 although a test failed", out + err)
    expect(last == "3 passed, 1 failed, 1 skipped",
           f"expected '3 passed, 1 failed, 1 skipped', got '{last}'", out + err)
    expect(re.search(r"FAIL +vm: HarnessSelfTest\.FailsDeliberately", out),
           "the failing test is not named", out)
    expect(re.search(r"PASS +vm: HarnessSelfTest\.UnprivilegedRunsAsUserInRenderGroup", out),
           "the Unprivileged test did not run as uid 1000 in group render", out)


def t_kernel_warning_fails_run():
    ko = build_warn_module()
    rc, out, err = sh(KILN_VM + ["run"] + NO_DEV + ["--insmod", ko, "--", "true"])
    expect(rc == 121, f"a guest WARNING must fail the run (exit 121), got {rc}", out + err)
    expect("guest kernel reported WARNING" in err and "warn_mod.c" in err,
           "kiln-vm did not say it was a kernel WARNING", err)


def t_kernel_warning_during_test_fails_it():
    ko = build_warn_module()
    d = build_gtest_binary("warn_during_test")
    results = os.path.join(OUT, "results-warn")
    rc, out, err = sh(RUN_TESTS + ["--tier", "vm", "--vmtests-dir", d, "--results", results,
                                   "--vm-arg=--devices=0", "--vm-arg=--no-driver",
                                   f"--vm-arg=--add={ko}:/tmp/kiln_harness_warn.ko"],
                      timeout=900)
    expect(rc != 0, "run-tests exited 0 although the guest kernel WARNed", out + err)
    expect(re.search(r"FAIL +vm: HarnessWarn\.LoadsWarningModule", out),
           "the test during which the kernel WARNed is not failed", out + err)
    expect(re.search(r"FAIL +vm: \(vm boot\) .*guest kernel reported WARNING", out),
           "the boot is not reported as failed with the kernel WARNING", out + err)


def t_hung_guest_times_out():
    rc, out, err = sh(KILN_VM + ["run"] + NO_DEV + ["--timeout", "20", "--", "sleep", "999"])
    expect(rc == 124, f"a hung guest must time out (exit 124), got {rc}", out + err)
    expect("timeout after 20 s (guest hung?)" in err, "kiln-vm did not report the timeout", err)


def _qemu_has_kiln():
    if not os.access(QEMU, os.X_OK):
        return False
    rc, out, _ = sh([QEMU, "-nodefaults", "-device", "help"])
    return 'name "kiln"' in out


def t_devices_visible():
    if not _qemu_has_kiln():
        raise Skip("QEMU has no kiln device yet")
    script = ("n=0; for d in /sys/bus/pci/devices/*; do "
              "[ \"$(cat $d/vendor):$(cat $d/device)\" = 0x1234:0x4b31 ] && n=$((n+1)); done; "
              "echo kiln-devices=$n; [ $n -eq 2 ]")
    rc, out, err = sh(KILN_VM + ["run", "--devices", "2", "--no-driver", "--", "sh", "-c",
                                 script])
    expect(rc == 0 and "kiln-devices=2" in out, f"expected 2 Kiln PCI functions (rc {rc})",
           out + err)


def t_driver_loads():
    if not _qemu_has_kiln():
        raise Skip("QEMU has no kiln device yet")
    if not os.path.exists(os.path.join(BUILD, "kernel", "kiln.ko")):
        raise Skip("kiln.ko not built yet")
    script = ("lsmod | grep -q '^kiln ' && ls -l /dev/accel/ && "
              "[ \"$(stat -c %G /dev/accel/accel0)\" = render ]")
    rc, out, err = sh(KILN_VM + ["run", "--devices", "1", "--", "sh", "-c", script])
    expect(rc == 0, f"kiln.ko did not load with its dependencies or /dev/accel/accel0 "
                    f"is missing or not group render (rc {rc})", out + err)


def t_vm_pair_mpi_across_vms():
    """Two VMs joined by kiln-vm-pair's link: mpirun starts one rank in each (through
    kiln-rsh), both ranks' output arrives, and the failure of the rank in the second VM
    fails the whole run."""
    if not shutil.which("mpirun"):
        raise Skip("Open MPI not installed (openmpi-bin)")
    rank = 'h=$(hostname); echo "rank ${OMPI_COMM_WORLD_RANK} on $h"; [ "$h" = kiln-vm0 ]'
    rc, out, err = sh(KILN_VM_PAIR + NO_DEV + ["--timeout", "300", "--", "mpirun", "--allow-run-as-root",
                                               "--host", "kiln-vm0,kiln-vm1", "-np", "2",
                                               "sh", "-c", rank])
    both = out + err
    expect("[vm0] rank 0 on kiln-vm0" in out and "[vm0] rank 1 on kiln-vm1" in out,
           "mpirun did not run one rank in each VM", both)
    expect(rc != 0, "the rank that failed in the second VM did not fail the run", both)
    expect("[vm1] kiln-rsh: stopped" in out, "the second VM's kiln-rsh server was not stopped", both)


TESTS = [t_usage_errors, t_exit_status_propagates, t_host_share, t_failing_vm_test_fails_run,
         t_kernel_warning_fails_run, t_kernel_warning_during_test_fails_it,
         t_hung_guest_times_out, t_devices_visible, t_driver_loads, t_vm_pair_mpi_across_vms]


def main():
    print(f"1..{len(TESTS)}", flush=True)
    failed = 0
    for i, t in enumerate(TESTS, 1):
        name = t.__name__[2:]
        try:
            t()
            print(f"ok {i} - {name}", flush=True)
        except Skip as e:
            print(f"ok {i} - {name} # SKIP {e}", flush=True)
        except (AssertionError, subprocess.TimeoutExpired, OSError) as e:
            failed += 1
            for line in str(e).splitlines():
                print(f"# {line}")
            print(f"not ok {i} - {name}", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
