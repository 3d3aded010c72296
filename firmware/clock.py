# NTP: keeps the RTC on UTC (local time = UTC + the configured fixed offset, added by the
# scheduler). One UDP query with a non-blocking socket, the reply awaited in 50 ms steps, so the
# control loop never waits on the network. ntptime is not used: its DNS lookup and 1 s socket
# timeout block. The host name is resolved once (getaddrinfo blocks on lwIP) and cached; give an
# IP address in config.json to avoid even that.
import asyncio
import socket
import struct

_NTP_2000 = 3155673600          # seconds from 1900 (NTP era 0) to 2000, the meter's epoch


async def query(addr, timeout_ms=1000):
    """One SNTP request -> UTC seconds since 2000, or 0 on timeout/garbage."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setblocking(False)
        req = bytearray(48)
        req[0] = 0x1B                 # LI 0, version 3, mode 3 (client)
        s.sendto(req, addr)
        for _ in range(timeout_ms // 50):
            await asyncio.sleep_ms(50)
            try:
                b = s.recv(48)
            except OSError:
                continue
            if len(b) == 48 and b[0] & 7 == 4 and b[1]:     # server reply, stratum set
                t = struct.unpack_from("!I", b, 40)[0]
                if t < 0x80000000:                         # era 1 after Feb 2036
                    t += 0x100000000
                return t - _NTP_2000    # a long int once an hour; the result is small
        return 0
    finally:
        s.close()


async def run(board, host):
    """Task: sync at boot (retry every 30 s until it works), then hourly."""
    addr = None
    while True:
        wait_ms = 30000
        if board.wifi_ok():
            try:
                if addr is None:
                    addr = socket.getaddrinfo(host, 123)[0][-1]
                t = await query(addr)
                if t:
                    board.set_utc(t)
                    wait_ms = 3600 * 1000   # the ESP8266 RTC drifts: resync hourly
            except OSError:
                addr = None
        await board.sleep(wait_ms)
