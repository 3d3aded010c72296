# Unix-port entry point: mount the firmware's ROMFS image (as the FLASH_2M_ROMFS board does) and
# run its main.py, with the host board first on the path. On the host the image buffer sits in the
# heap (on the board it stays in flash), so the harness adds its size to -X heapsize.
import os
import sys
import vfs

_img = os.getenv("SIM_IMAGE")
if _img:
    with open(_img, "rb") as _f:
        _buf = _f.read()
    vfs.mount(vfs.VfsRom(memoryview(_buf)), "/rom")
    # the host image carries sim/hostboard/board.py as its board module
    # frozen modules first, as on the ESP8266: on the board twin ssd1306 and umqtt.simple are
    # frozen into the binary (the image's copies are for the 64-bit binary, which has none)
    sys.path[:] = [".frozen", "/rom", "/rom/lib"]
else:
    # development fallback: loose sources (not how the board runs them)
    sys.path[:] = [os.getenv("SIM_HOSTBOARD") or "sim/hostboard", "firmware", "build/lib", ".frozen"]
del _img
if os.getenv("SIM_PROBE_FREE"):
    # the harness's calibration (sim/run.py calibrated_heap): the free heap at the moment main.py
    # would start, which is what `gc.mem_free()` tells at a board's REPL
    import gc
    gc.collect()
    print("free", gc.mem_free())
    sys.exit(0)
import main  # noqa: E402,F401  (returns when the meter stops: SIGINT from the harness)
import micropython  # noqa: E402
# "qstr pool: n_pool=5, n_qstr=..": the harness's summary `qstrs` (a sixth pool would be 4.5 KB)
micropython.qstr_info()
