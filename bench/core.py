"""Benchmark the pure core on the MicroPython unix port.

Prints one JSON line: heap kept by importing config+meter+scheduler compiled to .mpy (mpy-cross,
x64 for the host; bytecode is the same on the ESP8266) as loose files and from a ROMFS image,
heap of the loaded config, the time of one
plan() and that time expressed as iterations of a trivial `x += i` loop (a machine-independent
ratio). Run: `make bench` or `.venv/bin/python -m bench.core`.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)


def main():
    tmp = tempfile.mkdtemp()
    try:
        for mod in ("config", "meter", "scheduler"):
            subprocess.run([os.path.join(BIN, "mpy-cross"), "-march=x64", "-o",
                            os.path.join(tmp, mod + ".mpy"),
                            os.path.join(ROOT, "firmware", mod + ".py")], check=True)
        out = subprocess.run([os.path.join(BIN, "micropython"), "-X", "heapsize=48K",
                              os.path.join(ROOT, "bench", "mp_core_plan.py"),
                              os.path.join(ROOT, "firmware", "config.json.example")],
                             env=dict(os.environ, MICROPYPATH=tmp), capture_output=True,
                             text=True, check=True)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        res["mpy_bytes"] = sum(os.path.getsize(os.path.join(tmp, f)) for f in os.listdir(tmp))
        # the same modules from a ROMFS image (how the board runs them): bytecode stays in flash
        img = tmp + ".romfs"
        subprocess.run([os.path.join(BIN, "mpremote"), "romfs", "--no-mpy", "-o", img, "build",
                        tmp], check=True, capture_output=True)
        out = subprocess.run([os.path.join(BIN, "micropython"), "-X", "heapsize=48K",
                              os.path.join(ROOT, "bench", "mp_romfs_import.py"), img,
                              "config,meter,scheduler"], capture_output=True, text=True,
                             check=True)
        res.update(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(res))
        return res
    finally:
        shutil.rmtree(tmp)
        if os.path.exists(tmp + ".romfs"):
            os.remove(tmp + ".romfs")


if __name__ == "__main__":
    main()
