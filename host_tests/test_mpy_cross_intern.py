"""The image compiler (build/mpy-cross/mpy-cross, built by `make twin` from the v1.28.0 source)
interns string constants of up to 255 characters. A longer-than-10 string is otherwise a str
object that every ROMFS import makes in RAM; as a qstr it takes a slot of a qstr pool that is
allocated whole anyway. Checked by what a board does when it imports the .mpy: count the qstrs."""
import importlib.util
import os
import subprocess

from conftest import ROOT
from sim import run as simrun

spec = importlib.util.spec_from_file_location("build_image",
                                              os.path.join(ROOT, "tools", "build_image.py"))
bi = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bi)

SRC = ("A = 'a string of more than ten characters'\n"
       "B = 'another long one, %d of them'\n"
       "C = 'short'\n")
PROBE = ("import micropython, sys\nsys.path.insert(0, %r)\nmicropython.qstr_info()\n"
         "import longs\nmicropython.qstr_info()\nprint(longs.A, longs.B %% 2)\n")


def _new_qstrs(cmd, tmp_path, tag):
    d = tmp_path / tag
    d.mkdir()
    (d / "longs.py").write_text(SRC)
    assert bi.compile_one(cmd, str(d / "longs.py"), str(d / "longs.mpy"), None) is None
    os.remove(d / "longs.py")          # the .mpy is what gets imported
    (d / "probe.py").write_text(PROBE % str(d))
    out = subprocess.run([simrun.twin_binary(), str(d / "probe.py")], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    n = [int(x.split("n_qstr=")[1].split(",")[0]) for x in out.stdout.splitlines()
         if x.startswith("qstr pool:")]
    assert out.stdout.splitlines()[-1] == "a string of more than ten characters another long one, 2 of them"
    return n[1] - n[0]


def test_the_image_is_built_with_the_interning_mpy_cross():
    assert os.access(bi.INTERNING_MPY_CROSS, os.X_OK), "make twin (or make mpy-cross) builds it"
    assert bi.mpy_cross_cmd() == [bi.INTERNING_MPY_CROSS]


def test_long_string_constants_become_qstrs_not_heap_objects(tmp_path):
    plain = _new_qstrs(bi.mpy_cross_cmd(False), tmp_path, "plain")    # the released one
    interned = _new_qstrs([bi.INTERNING_MPY_CROSS], tmp_path, "interned")
    # the two long strings are qstrs now; the names and the short string were qstrs anyway
    # (strings inside a constant tuple stay objects either way: the .mpy format stores them so)
    assert interned - plain == 2, (plain, interned)


def test_the_boot_only_config_keeps_no_message_as_a_qstr(tmp_path):
    # config.py runs once at boot and is dropped: its long messages must not stay in the qstr
    # pool (build/mpy-cross-boot/mpy-cross interns up to 20 characters), its keys must (the
    # parsed config's keys share them instead of holding str objects)
    assert os.access(bi.BOOT_MPY_CROSS, os.X_OK), "make twin (or make mpy-cross) builds it"
    assert bi.mpy_cross_cmd(boot=True) == [bi.BOOT_MPY_CROSS]
    src = os.path.join(ROOT, "firmware", "config.py")
    msg = "loads: want a list of up to 8 loads"
    key = "start_delay_max_s"
    assert msg in open(src).read() and key in open(src).read()
    assert bi.compile_one(bi.mpy_cross_cmd(boot=True), src, str(tmp_path / "config.mpy"),
                          None) is None
    (tmp_path / "probe.py").write_text(
        "import micropython, sys\nsys.path.insert(0, %r)\nimport config\n"
        "micropython.qstr_info(1)\n" % str(tmp_path))
    out = subprocess.run([simrun.twin_binary(), str(tmp_path / "probe.py")], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    qstrs = out.stdout.splitlines()
    assert "Q(%s)" % key in qstrs and "Q(%s)" % msg not in qstrs
