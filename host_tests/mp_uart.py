# Test-only UART stand-in for the MicroPython unix port: the ESP8266 machine.UART subset the Modbus
# master uses (write, read(n) -> bytes|None without blocking, any()) on a pty path.
# Not firmware: the host board has its own shim.
import select
import termios


class PtyUart:
    def __init__(self, path):
        self.f = open(path, "r+b", buffering=0)
        fd = self.f.fileno()
        termios.setraw(fd)
        a = termios.tcgetattr(fd)
        a[6][termios.VMIN if hasattr(termios, "VMIN") else 6] = 0    # never block in read()
        a[6][termios.VTIME if hasattr(termios, "VTIME") else 5] = 0
        termios.tcsetattr(fd, termios.TCSANOW, a)
        self.p = select.poll()
        self.p.register(self.f, select.POLLIN)

    def any(self):
        return 1 if self.p.poll(0) else 0

    def read(self, n=64):
        return self.f.read(n) or None

    def write(self, b):
        return self.f.write(b)

    def close(self):
        self.f.close()
