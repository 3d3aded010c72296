"""A local NTP server for the simulator: it answers SNTP client requests (mode 3) with the
simulated UTC, on 127.0.0.1 and a free UDP port, so the firmware's clock.py syncs against it as
it would against pool.ntp.org (on the host board `board.NTP` is that port, $SIM_NTP_PORT).

While the simulated clock is not valid ($SIM_CLOCK none, or before its valid time) it answers
nothing, as an unreachable server would. Requests that are not a client's are ignored.
"""
import socketserver
import struct
import threading

NTP_1970 = 2208988800       # seconds from 1900-01-01 (NTP era 0) to 1970-01-01


def reply(req, utc_s):
    """The 48-byte server reply (mode 4, stratum 2) to the request bytes `req` at unix time
    utc_s, or None when `req` is not an SNTP client request."""
    if len(req) < 48 or req[0] & 7 != 3:
        return None
    secs = int(utc_s) + NTP_1970
    ts = struct.pack("!II", secs & 0xFFFFFFFF, int(utc_s % 1 * 2 ** 32))
    head = bytes((req[0] & 0x38 | 4, 2, req[2], 0xEC)) + bytes(8) + b"SIM\0"
    # reference, originate (the client's transmit time), receive and transmit timestamps
    return head + ts + req[40:48] + ts + ts


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        srv = self.server.standin
        if not srv.valid():
            return
        out = reply(data, srv.clock())
        if out:
            sock.sendto(out, self.client_address)
            srv.answered += 1


class NtpStandin:
    """clock() -> simulated unix time (float); valid() -> whether the clock may be told."""

    def __init__(self, clock, valid=lambda: True):
        self.clock = clock
        self.valid = valid
        self.answered = 0
        self.server = socketserver.UDPServer(("127.0.0.1", 0), _Handler)
        self.server.standin = self
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.1,),
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
