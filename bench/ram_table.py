"""Where the meter's heap goes: per import and per boot-time object, on the board twin.

    .venv/bin/python -m bench.ram_table [--64]

Runs bench/mp_ram_table.py on build/twin/micropython (or the 64-bit unix port with --64) with
the firmware's host ROMFS image mounted, in the order app.py builds things. Prints a Markdown
table (bytes of heap still held after gc.collect()); docs/benchmarks.md keeps the figures.
"""
import argparse
import os
import pty
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from sim import run as simrun  # noqa: E402


def measure(binary):
    image, _ = simrun.build_image()
    d = tempfile.mkdtemp()
    master, slave = pty.openpty()
    try:
        with open(os.path.join(d, "bus"), "w") as f:
            f.write(os.ttyname(slave))
        shutil.copy(simrun.DEFAULT_CONFIG, os.path.join(d, "config.json"))
        env = dict(os.environ, SIM_DIR=d, SIM_IMAGE=image,
                   SIM_CONFIG=os.path.join(d, "config.json"))
        out = subprocess.run([binary, "-X", "heapsize=200K",
                              os.path.join(ROOT, "bench", "mp_ram_table.py")],
                             env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
    finally:
        os.close(master)
        os.close(slave)
        shutil.rmtree(d)
    if out.returncode:
        raise SystemExit(out.stdout + out.stderr)
    rows = []
    for line in out.stdout.splitlines():
        name, _, n = line.rpartition(" ")
        rows.append((name, int(n)))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--64", dest="b64", action="store_true", help="also the 64-bit unix port")
    a = ap.parse_args()
    twin = measure(simrun.twin_binary())
    other = dict(measure(os.path.join(simrun.BIN, "micropython"))) if a.b64 else {}
    print("| step | twin (B) |" + (" 64-bit (B) |" if a.b64 else ""))
    print("|---|---:|" + ("---:|" if a.b64 else ""))
    for name, n in twin:
        print("| %s | %d |" % (name, n) + (" %d |" % other.get(name, 0) if a.b64 else ""))


if __name__ == "__main__":
    main()
