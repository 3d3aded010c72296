"""ESP8266 checks of the firmware sources: they compile for the board, the ROMFS images fit,
only board.py touches the hardware, and the calls into the MicroPython APIs exist on the ESP8266
port (mypy against the micropython-esp8266-stubs, plus the gaps the stubs do not know about)."""
import ast
import importlib.util
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FW = os.path.join(ROOT, "firmware")
HARDWARE = ("machine", "umachine", "network")


def _load_build_image():
    spec = importlib.util.spec_from_file_location("build_image",
                                                  os.path.join(ROOT, "tools", "build_image.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


bi = _load_build_image()
MODULES = bi.firmware_modules(FW)          # every firmware/*.py but manifest.py


def _tree(name):
    with open(os.path.join(FW, name + ".py")) as f:
        return ast.parse(f.read(), name + ".py")


# ---- compile and size --------------------------------------------------------------------------

@pytest.mark.parametrize("name", MODULES)
def test_compiles_for_xtensa(name, tmp_path):
    err = bi.compile_one(bi.mpy_cross_cmd(), os.path.join(FW, name + ".py"),
                         str(tmp_path / (name + ".mpy")), "xtensa")
    assert err is None, "mpy-cross -march=xtensa %s.py:\n%s" % (name, err)


def test_romfs_images_build_and_fit(tmp_path, capsys):
    with capsys.disabled():
        print()
        report = bi.build(FW, str(tmp_path), os.path.join(ROOT, "build", "lib"), quiet=False)
    assert not report["errors"], report["errors"]
    assert report["board_romfs"] <= bi.ROMFS_PARTITION
    board = sorted(os.listdir(tmp_path / "esp8266" / "lib"))
    expect = sorted(m + ".mpy" for m in MODULES if m not in bi.FLASH_ROOT)
    assert board == expect, "the board image holds exactly the firmware modules"
    host = sorted(os.listdir(tmp_path / "host" / "rom"))
    assert "boot.mpy" not in host
    # the host image's board module is the host board, not the ESP8266 one
    hb = (tmp_path / "host" / "rom" / "board.mpy").read_bytes()
    assert b"SIM_DIR" in hb and b"dupterm" not in hb
    if report["mount"] and "lib" in report["mount"]:
        assert set(report["mount"]["lib"]) <= {"umqtt", "ssd1306.mpy"}


def test_board_image_leaves_out_frozen_libs(tmp_path):
    bi.build(FW, str(tmp_path), os.path.join(ROOT, "build", "lib"), quiet=True)
    with open(tmp_path / "esp8266.romfs", "rb") as f:
        img = f.read()
    # netpie.mpy names the module it imports; the library's own file must not be in the image
    assert b"simple.mpy" not in img and b"ssd1306.mpy" not in img


# ---- hardware access ---------------------------------------------------------------------------

def _imports(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.lineno, node.module.split(".")[0]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id == "__import__" and node.args
              and isinstance(node.args[0], ast.Constant)):
            yield node.lineno, str(node.args[0].value).split(".")[0]


def test_only_board_imports_machine_or_network():
    bad = ["%s.py:%d imports %s" % (m, line, mod)
           for m in MODULES if m != "board"
           for line, mod in _imports(_tree(m)) if mod in HARDWARE]
    assert not bad, "only firmware/board.py may import machine or network:\n" + "\n".join(bad)


# Called at import time these would take UART0 from the REPL, start the watchdog or the WiFi,
# or reset: flash.sh imports every module but main on the board to check the deployment.
IMPORT_TIME_FORBIDDEN = {"UART", "WDT", "dupterm", "WLAN", "reset", "deepsleep", "soft_reset",
                         "connect", "active", "settime", "Timer"}


def _top_level_calls(tree):
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            yield node.lineno, name
        todo.extend(ast.iter_child_nodes(node))


@pytest.mark.parametrize("name", [m for m in MODULES if m != "main"])
def test_import_has_no_hardware_side_effects(name):
    bad = ["%s.py:%d calls %s() at import time" % (name, line, call)
           for line, call in _top_level_calls(_tree(name)) if call in IMPORT_TIME_FORBIDDEN]
    assert not bad, "\n".join(bad)


def _stub_names():
    names = set()
    for dist in bi.STUB_DISTS:
        from importlib import metadata
        try:
            d = metadata.distribution(dist.replace("_", "-"))
        except metadata.PackageNotFoundError:
            continue
        for f in d.files or ():
            parts = str(f).split("/")
            if parts[0] == "stdlib" and len(parts) > 1:
                parts = parts[1:]
            top = parts[0]
            if top.endswith(".pyi"):
                names.add(top[:-4])
            elif "." not in top:
                names.add(top)
    return names


def test_module_names_do_not_clash_with_esp8266_modules():
    stubs = _stub_names()
    if not stubs:
        pytest.skip("micropython-esp8266-stubs not installed")
    # built-in and frozen modules of the ESP8266 port win over /rom and /lib
    clash = sorted(set(MODULES) & (stubs | {"umqtt", "asyncio", "ssd1306", "ntptime"}))
    assert not clash, "these names are ESP8266 built-in/frozen modules: %s" % clash


# ---- APIs the ESP8266 port lacks that the stubs (merged with the generic docs) do not flag ----
RTC_METHODS = {"datetime", "memory", "alarm", "alarm_left", "irq", "ALARM0"}  # machine_rtc.c


def _api_gaps(name, tree):
    bad = []
    rtc_names = set()

    def ctor(node):
        if isinstance(node, ast.Call):
            f = node.func
            return f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)

    def target_key(t):
        if isinstance(t, ast.Name):
            return t.id
        if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name):
            return t.value.id + "." + t.attr
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and ctor(node.value) == "RTC":
            for t in node.targets:
                if target_key(t):
                    rtc_names.add(target_key(t))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ctor(node) == "WDT" and (node.args or node.keywords):
            bad.append("%s.py:%d: machine.WDT() takes no arguments on the ESP8266 (the timeout "
                       "is fixed, 1.6-3.2 s); older ports raise on keywords" % (name, node.lineno))
        if isinstance(node, ast.Attribute):
            obj = node.value
            is_rtc = ctor(obj) == "RTC" or target_key(obj) in rtc_names
            if is_rtc and node.attr not in RTC_METHODS:
                bad.append("%s.py:%d: RTC.%s does not exist on the ESP8266 (has: %s)"
                           % (name, node.lineno, node.attr, ", ".join(sorted(RTC_METHODS))))
        if isinstance(node, ast.FunctionDef):
            for d in node.decorator_list:
                if isinstance(d, ast.Attribute) and d.attr in ("viper", "asm_xtensa"):
                    bad.append("%s.py:%d: @micropython.%s: native code lives in ~500 B of iRAM "
                               "on the ESP8266" % (name, node.lineno, d.attr))
    return bad


@pytest.mark.parametrize("name", MODULES)
def test_no_calls_the_esp8266_port_lacks(name):
    bad = _api_gaps(name, _tree(name))
    assert not bad, "\n".join(bad)


def test_api_gap_checker_catches_known_gaps():
    tree = ast.parse("import machine\nr = machine.RTC()\nr.init((2024, 1, 1))\n"
                     "machine.WDT(timeout=8000)\nmachine.RTC().datetime()\n")
    bad = _api_gaps("x", tree)
    assert len(bad) == 2 and "RTC.init" in bad[0] + bad[1] and "WDT" in bad[0] + bad[1]


# ---- mypy against the ESP8266 stubs ------------------------------------------------------------
MYPY_LINE = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): error: (?P<msg>.*?)(  \[(?P<code>[\w-]+)\])?$")
FALLBACK_EXC = {"ImportError", "AttributeError", "NameError"}


def _lines(stmts):
    out = set()
    for stmt in stmts:
        out.update(range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1))
    return out


def _fallbacks(tree):
    """(try-body lines, handler lines) of every `try: ... except ImportError/AttributeError/
    NameError:` block: the try body probes for a MicroPython API, the handler is the CPython/unix
    fallback (e.g. time.monotonic when time.ticks_ms is missing)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Try):
            handler = set()
            for h in node.handlers:
                if h.type is None:
                    continue
                types = h.type.elts if isinstance(h.type, ast.Tuple) else [h.type]
                if {getattr(t, "id", None) for t in types} & FALLBACK_EXC:
                    handler |= _lines(h.body)
            if handler:
                out.append((_lines(node.body), handler))
    return out


def classify(errors, trees):
    """Split mypy errors into (real, guarded). An error in a probe (try body) is guarded: the
    firmware falls back on the board, and then the fallback's own errors are real. An error in a
    fallback whose probe is clean is dropped: that code never runs on the board."""
    real, guarded = [], []
    by_mod = {}
    for e in errors:
        by_mod.setdefault(os.path.basename(e[0])[:-3], []).append(e)
    for mod, errs in by_mod.items():
        blocks = _fallbacks(trees[mod]) if mod in trees else []
        err_lines = {e[1] for e in errs}
        for e in errs:
            line = e[1]
            probe = [b for b in blocks if line in b[0]]
            handler = [b for b in blocks if line in b[1]]
            if probe and e[3] in ("attr-defined", "import-not-found", "name-defined"):
                guarded.append(e)
            elif handler and not any(err_lines & b[0] for b in handler):
                continue
            else:
                real.append(e)
    return real, guarded


def _run_mypy(files, tmp_path):
    pytest.importorskip("mypy")
    typings = str(tmp_path / "typings")
    bi.make_typings(typings)
    with open(os.path.join(ROOT, "tools", "mypy-esp8266.ini")) as f:
        ini = f.read()
    ini = ini.replace("$MYPY_CONFIG_FILE_DIR/../build/esp8266-typings", typings)
    ini = ini.replace("$MYPY_CONFIG_FILE_DIR/../build/mypy-cache", str(tmp_path / "cache"))
    cfg = tmp_path / "mypy.ini"
    cfg.write_text(ini)
    p = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(cfg),
                        "--no-error-summary", "--no-pretty", "--no-color-output"] + files,
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    errors = []
    for line in p.stdout.splitlines():
        m = MYPY_LINE.match(line)
        if m:
            errors.append((m["path"], int(m["line"]), m["msg"], m["code"] or ""))
    if p.returncode not in (0, 1) or (p.returncode == 1 and not errors):
        pytest.fail("mypy did not run:\n" + p.stdout + p.stderr)
    return errors


def test_firmware_type_checks_against_esp8266_stubs(tmp_path):
    if not MODULES:
        pytest.skip("no firmware modules yet")
    files = [os.path.join("firmware", m + ".py") for m in MODULES]
    errors = [e for e in _run_mypy(files, tmp_path) if e[0].startswith("firmware")]
    real, guarded = classify(errors, {m: _tree(m) for m in MODULES})
    for path, line, msg, code in guarded:
        print("note: %s:%d: %s [%s]: missing on the ESP8266, the fallback runs there"
              % (path, line, msg, code))
    bad = ["%s:%d: %s [%s]" % e for e in real]
    assert not bad, "calls the ESP8266 port (stubs) does not have:\n" + "\n".join(bad)


def test_mypy_setup_catches_missing_esp8266_apis(tmp_path):
    src = tmp_path / "hw.py"
    src.write_text("import machine, esp, ntptime, time, network\n"
                   "machine.UART(0, 9600).irq()\n"        # no UART.irq on the ESP8266
                   "esp.no_such_function()\n"
                   "ntptime.settime(1)\n"                  # takes no argument
                   "network.WLAN(network.STA_IF).nope\n"
                   "try:\n    t = time.ticks_ms\nexcept AttributeError:\n"
                   "    t = time.monotonic\n")             # fallback line: reported, then dropped
    errors = _run_mypy([str(src)], tmp_path)
    lines = {line for _, line, _, _ in errors}
    assert {2, 3, 4, 5} <= lines, errors
    real, _ = classify(errors, {"hw": ast.parse(src.read_text())})
    assert {e[1] for e in real} == {2, 3, 4, 5}, "the fallback line 9 is dropped"


def test_fallback_classification():
    src = ("import time\n"
           "try:\n    from binascii import crc32\nexcept ImportError:\n    crc32 = time.nope\n")
    errors = [("hw.py", 3, 'Module "binascii" has no attribute "crc32"', "attr-defined"),
              ("hw.py", 5, 'Module has no attribute "nope"', "attr-defined")]
    real, guarded = classify(errors, {"hw": ast.parse(src)})
    assert [e[1] for e in guarded] == [3], "the probe fails on the board: guarded"
    assert [e[1] for e in real] == [5], "so the fallback runs there and its error is real"


def test_build_image_check_fails_on_a_compile_error(tmp_path):
    src = tmp_path / "fw"
    src.mkdir()
    (src / "good.py").write_text("X = 1\n")
    (src / "bad.py").write_text("def f(:\n    pass\n")
    p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "build_image.py"), "--check",
                        "--src", str(src)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert "bad.py" in p.stderr and "SyntaxError" in p.stderr
    (src / "bad.py").unlink()
    p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "build_image.py"), "--check",
                        "--src", str(src)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
