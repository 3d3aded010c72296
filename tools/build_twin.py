"""Build the board twin: a 32-bit MicroPython unix port with the ESP8266's object model.

    python tools/build_twin.py [--src DIR] [--out build/twin]     (or: make twin)
    python tools/build_twin.py --frozen        # build/twin-frozen: the meter frozen in too

--frozen also freezes the firmware modules (with sim/hostboard/board.py as the board module),
as a user's own ESP8266 build with firmware/manifest.py would: it measures the frozen path.

The v1.28.0 source comes from --src, else $MICROPY_SRC, else ../shared/micropython-1.28.0 beside
the repository. It is copied into build/twin-src first (the shared copy is read-only in CI), the
variant in tools/twin/ is added as ports/unix/variants/esp8266twin, and the unix port is built
with it. The binary lands at build/twin/micropython and must pass the twin's own checks
(`check()`): sys.maxsize == 2**31 - 1, floats allocate nothing, 2**30 is a heap object, 16-byte
GC blocks, no __file__, no binascii.crc32, the ESP8266's frozen libraries present.
A rebuild happens only when the variant, the fetched libraries or the source changed.
Needs gcc with 32-bit support (Debian: gcc-multilib).

It also builds build/mpy-cross/mpy-cross from the same source (`--mpy-cross` builds only that):
mpy-cross as released, except that it interns string constants of up to 255 characters
(MICROPY_ALLOC_PARSE_INTERN_STRING_LEN, 10 as released). A string over 10 characters is
otherwise a str object that a ROMFS import makes in RAM (16 B, and 4 B in the module's constant
table) for every such constant; as a qstr it is one entry in a qstr pool that is allocated whole
anyway (the ~450 runtime qstrs fill part of a 320-entry pool) and its text stays in flash.
Measured on the twin: ~0.9 KB more heap free at boot, the smallest cap 29K -> 28K
(docs/benchmarks.md section 0). tools/build_image.py
uses it when it is there. The .mpy files it writes are ordinary v6.3 .mpy files.
"""
import argparse
import filecmp
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VARIANT = os.path.join(ROOT, "tools", "twin")
LIB = os.path.join(ROOT, "build", "lib")
VERSION = "1.28.0"

# run on the twin: each line of output is "<name> <ok 0|1> <detail>"
CHECK = """
import gc, sys
def alloc(f, *a):
    gc.collect()
    m = gc.mem_alloc()
    f(*a)
    return gc.mem_alloc() - m
def floats(x):
    y = 0.0
    for i in range(50):
        y = y + x * i
def big(n):
    global _k
    _k = n + n
def one():
    global _k
    _k = bytearray(1)
print("maxsize", int(sys.maxsize == 2**31 - 1), sys.maxsize)
print("float_no_heap", int(alloc(floats, 1.5) == 0), alloc(floats, 1.5))
print("int_2e30_heap", int(alloc(big, 2**29) > 0), alloc(big, 2**29))
print("small_int", int(alloc(big, 2**28) == 0), alloc(big, 2**28))
print("block_16", int(alloc(one) == 32), alloc(one))
import binascii
print("no_crc32", int(not hasattr(binascii, "crc32")), 0)
import ssd1306
import umqtt.simple
print("frozen_libs", int(not hasattr(ssd1306, "__file__") and not hasattr(umqtt.simple, "__file__")), 0)
import asyncio
print("asyncio", int(hasattr(asyncio, "sleep_ms")), 0)
"""


def source_dir(arg):
    src = arg or os.environ.get("MICROPY_SRC") or os.path.join(ROOT, "..", "shared",
                                                             "micropython-" + VERSION)
    src = os.path.abspath(src)
    if not os.path.isfile(os.path.join(src, "py", "mpconfig.h")):
        sys.exit("build_twin: no MicroPython source at %s (set MICROPY_SRC to a v%s checkout)"
                 % (src, VERSION))
    with open(os.path.join(src, "py", "mpconfig.h")) as f:
        text = f.read()
    ver = ["MICROPY_VERSION_%s %s\n" % (k, v) for k, v in
           zip(("MAJOR", "MINOR", "MICRO"), VERSION.split("."))]
    if not all(v in text for v in ver):
        sys.exit("build_twin: %s is not MicroPython v%s" % (src, VERSION))
    return src


FIRMWARE = os.path.join(ROOT, "firmware")
HOSTBOARD = os.path.join(ROOT, "sim", "hostboard")


def fingerprint(src, frozen=False):
    """What the binary depends on: the variant, the frozen libraries (and firmware), the source's
    location."""
    h = hashlib.sha256(src.encode())
    for top in (VARIANT, LIB) + ((FIRMWARE, HOSTBOARD) if frozen else ()):
        for d, _, files in sorted(os.walk(top)):
            for n in sorted(files):
                if n.endswith((".py", ".h", ".mk")):
                    p = os.path.join(d, n)
                    h.update(p[len(top):].encode())
                    with open(p, "rb") as f:
                        h.update(f.read())
    return h.hexdigest()


def check(binary):
    """The twin's own checks; returns {name: (ok, detail)}."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(CHECK)
    try:
        out = subprocess.run([binary, "-X", "heapsize=64K", f.name], capture_output=True,
                             text=True, timeout=60)
    finally:
        os.unlink(f.name)
    res = {}
    for line in out.stdout.splitlines():
        name, ok, detail = line.split(" ", 2)
        res[name] = (ok == "1", detail)
    if out.returncode or len(res) < 8:
        res["run"] = (False, out.stderr.strip()[-300:])
    return res


def build(src, out_dir, frozen=False):
    work = os.path.join(ROOT, "build", "twin-src")
    stamp = os.path.join(out_dir, ".fingerprint")
    binary = os.path.join(out_dir, "micropython")
    fp = fingerprint(src, frozen)
    if os.path.exists(binary) and os.path.exists(stamp):
        with open(stamp) as f:
            if f.read() == fp:
                return binary
    prepare(src)
    variant = "esp8266twin" + ("frozen" if frozen else "")
    vdir = os.path.join(work, "ports", "unix", "variants", variant)
    # a changed variant (its settings decide which files are built, and the generated headers
    # such as the root pointers) is built from scratch: make's dependencies do not see that
    bdir = os.path.join(work, "ports", "unix", "build-" + variant)
    old = os.path.join(vdir, "mpconfigvariant.mk"), os.path.join(vdir, "mpconfigvariant.h")
    if any(not os.path.exists(o) or not filecmp.cmp(o, os.path.join(VARIANT, os.path.basename(o)),
                                                    shallow=False) for o in old):
        shutil.rmtree(bdir, ignore_errors=True)
    shutil.rmtree(vdir, ignore_errors=True)
    shutil.copytree(VARIANT, vdir)
    env = dict(os.environ, TWIN_LIB=LIB)
    if frozen:      # read by tools/twin/manifest.py
        env.update(TWIN_FIRMWARE=FIRMWARE, TWIN_HOSTBOARD=HOSTBOARD)
    jobs = str(os.cpu_count() or 2)
    r = subprocess.run(["make", "-C", os.path.join(work, "ports", "unix"), "VARIANT=" + variant,
                        "-j" + jobs], env=env, capture_output=True, text=True)
    if r.returncode:
        shutil.rmtree(vdir, ignore_errors=True)     # the next attempt builds from scratch
        sys.stderr.write(r.stdout[-4000:] + r.stderr[-4000:])
        sys.exit("build_twin: the unix-port build failed (is gcc-multilib installed?)")
    os.makedirs(out_dir, exist_ok=True)
    # copied beside and renamed: a twin still running keeps its (old) binary
    shutil.copy2(os.path.join(bdir, "micropython"),
                 binary + ".new")
    os.replace(binary + ".new", binary)
    with open(stamp, "w") as f:
        f.write(fp)
    return binary


INTERN_LEN = 255    # the longest qstr an ESP8266 build takes (MICROPY_QSTR_BYTES_IN_LEN 1)
MPY_CROSS = os.path.join(ROOT, "build", "mpy-cross", "mpy-cross")
# for the modules run once at boot and dropped (tools/build_image.py BOOT_ONLY): their names and
# config keys (at most 17 characters) interned, their longer messages str objects that go with
# the module, instead of qstrs the pool keeps for good
BOOT_INTERN_LEN = 20
MPY_CROSS_BOOT = os.path.join(ROOT, "build", "mpy-cross-boot", "mpy-cross")


def prepare(src):
    """build/twin-src: a writable copy of the v1.28.0 source."""
    work = os.path.join(ROOT, "build", "twin-src")
    if not os.path.isdir(os.path.join(work, "py")):
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(src, work, symlinks=True)
        for d, dirs, files in os.walk(work):      # the shared copy has no write bits
            for n in dirs + files:
                p = os.path.join(d, n)
                if not os.path.islink(p):
                    os.chmod(p, os.stat(p).st_mode | 0o200)
    return work


def build_mpy_cross(src, intern_len=INTERN_LEN, exe=MPY_CROSS):
    """exe (build/mpy-cross/mpy-cross): mpy-cross v1.28.0 interning strings up to intern_len
    chars."""
    stamp = exe + ".fingerprint"
    fp = hashlib.sha256(("%s intern %d" % (src, intern_len)).encode()).hexdigest()
    if os.path.exists(exe) and os.path.exists(stamp):
        with open(stamp) as f:
            if f.read() == fp:
                return exe
    work = prepare(src)
    bdir = os.path.join(os.path.dirname(exe), "obj")
    r = subprocess.run(["make", "-C", os.path.join(work, "mpy-cross"), "BUILD=" + bdir,
                        "PROG=mpy-cross", "-j" + str(os.cpu_count() or 2),
                        "CFLAGS_EXTRA=-DMICROPY_ALLOC_PARSE_INTERN_STRING_LEN=%d" % intern_len],
                       capture_output=True, text=True)
    if r.returncode:
        sys.stderr.write(r.stdout[-4000:] + r.stderr[-4000:])
        sys.exit("build_twin: the mpy-cross build failed")
    shutil.copy2(os.path.join(bdir, "mpy-cross"), exe + ".new")
    os.replace(exe + ".new", exe)
    with open(stamp, "w") as f:
        f.write(fp)
    return exe


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", help="MicroPython v%s source (default $MICROPY_SRC or "
                                  "../shared/micropython-%s)" % (VERSION, VERSION))
    ap.add_argument("--out", help="default build/twin (build/twin-frozen with --frozen)")
    ap.add_argument("--frozen", action="store_true", help="freeze the firmware modules too")
    ap.add_argument("--mpy-cross", action="store_true",
                    help="build only build/mpy-cross/mpy-cross (no gcc-multilib needed)")
    a = ap.parse_args()
    print(build_mpy_cross(source_dir(a.src)))
    print(build_mpy_cross(source_dir(a.src), BOOT_INTERN_LEN, MPY_CROSS_BOOT))
    if a.mpy_cross:
        return
    a.out = a.out or os.path.join(ROOT, "build", "twin-frozen" if a.frozen else "twin")
    if not os.path.exists(os.path.join(LIB, "ssd1306.py")):
        sys.exit("build_twin: build/lib is missing: run `make libs` first")
    binary = build(source_dir(a.src), a.out, a.frozen)
    res = check(binary)
    bad = [k for k, (ok, _) in res.items() if not ok]
    for k, (ok, d) in res.items():
        print("twin check %-14s %s %s" % (k, "ok" if ok else "FAILED", d))
    if bad:
        sys.exit("build_twin: %s is not a faithful twin: %s" % (binary, ", ".join(bad)))
    print(binary)


if __name__ == "__main__":
    main()
