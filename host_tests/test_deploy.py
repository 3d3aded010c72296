"""tools/flash.sh, firmware/boot.py and firmware/manifest.py.

flash.sh is checked with --dry-run (commands and their order, nothing run) and end to end against
the MicroPython unix port: a bridge copies bytes between the port's stdio pty and a second pty
that mpremote opens (docs: micropython.md section 7; mpremote needs `resume`)."""
import os
import pty
import re
import select
import shutil
import subprocess
import threading
import time
import tty

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLASH = os.path.join(ROOT, "tools", "flash.sh")
FW = os.path.join(ROOT, "firmware")
MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")
TWIN = os.path.join(ROOT, "build", "twin", "micropython")   # no __file__, as on the ESP8266
FIRMWARE_NAME = "ESP8266_GENERIC-FLASH_2M_ROMFS-v1.29.0.bin"


def flash(*args, timeout=60):
    return subprocess.run(["bash", FLASH] + list(args), capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def commands(out):
    """The '+ ...' lines flash.sh prints for every command, in order."""
    return [line[2:] for line in out.splitlines() if line.startswith("+ ")]


@pytest.fixture
def inputs(tmp_path):
    cfg = tmp_path / "config.json"
    shutil.copy(os.path.join(FW, "config.json.example"), cfg)
    fw = tmp_path / FIRMWARE_NAME
    fw.write_bytes(b"\xe9" + bytes(15))
    return cfg, fw


def test_help():
    p = flash("--help")
    assert p.returncode == 0
    for opt in ("--port", "--firmware", "--config", "--skip-flash", "--no-romfs", "--dry-run",
                "--flash-mode", "FLASH_2M_ROMFS", "make venv"):
        assert opt in p.stdout, opt


def test_unknown_option_is_refused():
    p = flash("--frobnicate")
    assert p.returncode != 0 and "unknown option" in p.stderr


def test_dry_run_prints_the_whole_sequence_in_order(inputs, tmp_path):
    cfg, fw = inputs
    build = tmp_path / "build"
    p = flash("--dry-run", "--port", "/dev/ttyFAKE0", "--firmware", str(fw), "--config", str(cfg),
              "--flash-mode", "dout", "--build", str(build))
    assert p.returncode == 0, p.stdout + p.stderr
    cmds = commands(p.stdout)
    expect = [
        r"python\S* \S*tools/build_image\.py --src \S+ --build " + re.escape(str(build)) + "$",
        r"esptool --port /dev/ttyFAKE0 erase-flash$",
        r"esptool --port /dev/ttyFAKE0 --baud 460800 write-flash --flash-size detect "
        r"--flash-mode dout 0 " + re.escape(str(fw)) + "$",
        r"sleep \d+$",
        r"mpremote connect /dev/ttyFAKE0 exec .*VfsLfs2\.mkfs",
        r"mpremote connect /dev/ttyFAKE0 romfs query$",
        r"mpremote connect /dev/ttyFAKE0 romfs deploy " + re.escape(str(build)) +
        r"/esp8266\.romfs \+ exec ",
        r"mpremote connect /dev/ttyFAKE0 (fs cp \S+/boot\.py :boot\.py \+ )?"
        r"(fs cp \S+/main\.py :main\.py \+ )?fs cp " + re.escape(str(cfg)) + " :config.json$",
        r"mpremote connect /dev/ttyFAKE0 exec .*VERIFY OK",
        r"mpremote connect /dev/ttyFAKE0 reset$",
    ]
    assert len(cmds) == len(expect), "\n".join(cmds)
    for c, e in zip(cmds, expect):
        assert re.search(e, c), "%r does not match %r" % (c, e)
    # numbered progress steps, and nothing touched
    steps = re.findall(r"^\[(\d+)/(\d+)\]", p.stdout, re.M)
    assert [int(s) for s, _ in steps] == list(range(1, len(steps) + 1))
    assert all(t == str(len(steps)) for _, t in steps)
    assert not build.exists()


def test_dry_run_skip_flash_no_romfs(inputs, tmp_path):
    cfg, _ = inputs
    p = flash("--dry-run", "--skip-flash", "--no-romfs", "--port", "/dev/ttyFAKE1",
              "--config", str(cfg), "--build", str(tmp_path / "b"), "--no-reset")
    assert p.returncode == 0, p.stdout + p.stderr
    cmds = commands(p.stdout)
    assert not any("esptool" in c for c in cmds)
    assert not any("romfs" in c for c in cmds)
    cp = [c for c in cmds if ":lib/" in c]
    assert len(cp) == 1 and "fs cp" in cp[0]
    mods = sorted(re.findall(r"/(\w+)\.mpy", cp[0]))
    expect = sorted(n[:-3] for n in os.listdir(FW) if n.endswith(".py")
                    and n[:-3] not in ("boot", "main", "manifest"))
    assert mods == expect
    assert not any(c.endswith(" reset") for c in cmds)


def test_missing_config_is_refused(tmp_path):
    fw = tmp_path / FIRMWARE_NAME
    fw.write_bytes(b"\xe9")
    p = flash("--dry-run", "--firmware", str(fw), "--config", str(tmp_path / "nope.json"))
    assert p.returncode != 0
    assert "config.json.example" in p.stderr and "nope.json" in p.stderr
    assert commands(p.stdout) == [], "nothing is run before the inputs are checked"


def test_default_config_is_the_gitignored_one():
    with open(os.path.join(ROOT, ".gitignore")) as f:
        assert "firmware/config.json" in f.read().split()
    p = flash("--help")
    assert "firmware/config.json" in p.stdout


def test_invalid_config_json_is_refused(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text("{not json")
    p = flash("--dry-run", "--skip-flash", "--config", str(cfg))
    assert p.returncode != 0 and "not valid JSON" in p.stderr


def test_missing_firmware_is_refused(inputs):
    cfg, _ = inputs
    p = flash("--dry-run", "--config", str(cfg))
    assert p.returncode != 0 and "--firmware" in p.stderr
    p = flash("--dry-run", "--config", str(cfg), "--firmware", "/nonexistent/fw.bin")
    assert p.returncode != 0 and "not found" in p.stderr


# ---- boot.py and manifest.py ----------------------------------------------------------------

def test_boot_py_runs_on_the_unix_port(tmp_path):
    if not os.path.exists(MICROPYTHON):
        pytest.skip("no micropython unix port")
    p = subprocess.run([MICROPYTHON, os.path.join(FW, "boot.py")], capture_output=True,
                       text=True, timeout=20, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout == ""


def test_manifest_freezes_every_module():
    seen = {"include": [], "module": []}
    with open(os.path.join(FW, "manifest.py")) as f:
        code = f.read()
    exec(compile(code, "manifest.py", "exec"),
         {"include": lambda p, **k: seen["include"].append(p),
          "module": lambda p, **k: seen["module"].append(p)})
    assert seen["include"] == ["$(PORT_DIR)/boards/ESP8266_GENERIC/manifest_2MiB.py"]
    listed = {p[:-3] for p in seen["module"]}
    present = {n[:-3] for n in os.listdir(FW) if n.endswith(".py")} - {"boot", "main", "manifest"}
    assert present <= listed, "add to firmware/manifest.py: %s" % sorted(present - listed)
    assert not {"boot", "main"} & listed, "boot.py and main.py stay on the filesystem"
    missing = listed - present
    if missing:
        pytest.skip("listed in the manifest, not written yet: %s" % sorted(missing))


# ---- end to end against the unix port over a pty ---------------------------------------------

class UnixBoard:
    """The MicroPython unix port as a 'board': its stdio on one pty, bridged to a second pty
    whose path mpremote opens. Files land in `root` (the port's current directory)."""

    def __init__(self, root, binary=MICROPYTHON):
        self.root = root
        ma, sa = pty.openpty()
        mb, sb = pty.openpty()
        tty.setraw(sa)
        tty.setraw(sb)
        env = dict(os.environ, MICROPYPATH="lib:.frozen")   # the board has /lib on sys.path
        self.proc = subprocess.Popen([binary], stdin=sa, stdout=sa, stderr=sa, cwd=root,
                                     env=env, start_new_session=True)
        os.close(sa)
        self.fds = (ma, mb, sb)
        self.port = os.ttyname(sb)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self):
        ma, mb, _ = self.fds
        while not self.stop.is_set():
            r, _, _ = select.select([ma, mb], [], [], 0.05)
            for fd in r:
                try:
                    data = os.read(fd, 4096)
                    os.write(mb if fd == ma else ma, data)
                except OSError:
                    return

    def close(self):
        self.stop.set()
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.thread.join(timeout=5)
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass


@pytest.fixture(params=["unix", "twin"])
def unix_board(tmp_path, request):
    # the twin, like the ESP8266, has no module __file__: flash.sh's check must not need it
    binary = MICROPYTHON if request.param == "unix" else TWIN
    if not os.path.exists(binary):
        pytest.skip("no %s binary (make venv / make twin)" % request.param)
    root = tmp_path / "board"
    root.mkdir()
    b = UnixBoard(str(root), binary)
    time.sleep(0.3)
    yield b
    b.close()


def test_deploy_to_unix_port_over_pty(unix_board, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "alpha.py").write_text("X = 1\n")
    (src / "beta.py").write_text("import alpha\n\ndef f():\n    return alpha.X + 1\n")
    (src / "boot.py").write_text(open(os.path.join(FW, "boot.py")).read())
    (src / "main.py").write_text("raise SystemExit('main must not run during deploy')\n")
    cfg = tmp_path / "config.json"
    cfg.write_text('{"wifi": {"ssid": "x", "password": "y"}}')
    board = unix_board.root
    with open(os.path.join(board, "alpha.py"), "w") as f:       # stale copy that would shadow
        f.write("X = 'stale'\n")
    # no --no-romfs: the unix port has no ROMFS partition, so flash.sh must fall back to :/lib
    p = flash("--skip-flash", "--resume", "--no-reset", "--port", unix_board.port,
              "--src", str(src), "--build", str(tmp_path / "build"), "--config", str(cfg),
              timeout=90)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    assert "falling back to .mpy files in :/lib" in out
    assert "VERIFY OK" in out
    assert re.search(r"alpha +lib/alpha.mpy", out), out
    assert sorted(os.listdir(os.path.join(board, "lib"))) == ["alpha.mpy", "beta.mpy"]
    for name in ("boot.py", "main.py", "config.json"):
        assert os.path.exists(os.path.join(board, name)), name
    assert not os.path.exists(os.path.join(board, "alpha.py")), "stale copy removed"
    with open(os.path.join(board, "config.json")) as f:
        assert '"ssid": "x"' in f.read()
    with open(os.path.join(board, "lib", "alpha.mpy"), "rb") as f:
        assert f.read(2) == b"M\x06"
