# clock.sync on the MicroPython unix port (or the board twin) against a UDP server on
# 127.0.0.1:$NTP_PORT (host_tests/test_clock.py starts it): one line per attempt,
#   MICROPYPATH=firmware NTP_PORT=<port> micropython THIS [attempts]
# prints "<ms until the next attempt> <UTC s since 2000 given to set_utc, or -1> <addr kept>"
import asyncio
import os
import sys

import clock


class Board:
    NTP = int(os.getenv("NTP_PORT"))

    def __init__(self):
        self.utc = -1
        self.up = True

    def wifi_ok(self):
        return self.up

    def set_utc(self, t):
        self.utc = t


async def main(n):
    b = Board()
    addr = [None]
    for i in range(n):
        b.utc = -1
        b.up = os.getenv("NTP_WIFI", "1") == "1"
        ms = await clock.sync(b, "127.0.0.1", addr)
        print(ms, b.utc, int(addr[0] is not None))


asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1))
