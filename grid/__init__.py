"""Grid impact study (issue 12): a street of these meters on SimBench LV feeders in pandapower.

Host-side only: the meters' decisions come from firmware/scheduler.py, imported unchanged."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRMWARE = os.path.join(ROOT, "firmware")
if FIRMWARE not in sys.path:
    sys.path.insert(0, FIRMWARE)
