# NTP: keeps the RTC on UTC (local time = UTC + the configured fixed offset, added by the
# scheduler). One UDP query with a non-blocking socket, the reply awaited in 50 ms steps, so the
# control loop never waits on the network. ntptime is not used: its DNS lookup and 1 s socket
# timeout block. The host name is resolved once (getaddrinfo blocks on lwIP) and kept by the
# caller; give an IP address in config.json to avoid even that. app.py imports this module for
# each sync and drops it afterwards: between syncs (an hour) its code would hold ~0.8 KB of heap.
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


async def sync(board, host, addr):
    """One attempt: sets the board's RTC when the server at host (UDP port board.NTP) answers.
    addr is [the server's address or None], resolved here once and kept by the caller.
    -> ms until the next attempt: an hour after a good answer (the ESP8266 RTC drifts),
    30 s otherwise."""
    if not board.wifi_ok():
        return 30000
    try:
        if addr[0] is None:
            addr[0] = socket.getaddrinfo(host, board.NTP)[0][-1]
        t = await query(addr[0])
    except OSError:
        addr[0] = None
        return 30000
    if not t:
        return 30000
    board.set_utc(t)
    return 3600000
