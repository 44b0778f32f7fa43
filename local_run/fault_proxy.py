"""A fault-injecting HTTP proxy on loopback, between the handlers and the real Synapse, for the
reliability suite: each rule makes the next `times` requests that match a method and a path
pattern fail in one way, the way a real outage, overload or revoked token would."""

import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

FAULTS = ("stopped", "5xx", "timeout", "429", "revoked_token")


@dataclass
class Rule:
    method: str
    path: re.Pattern
    fault: str
    times: float  # float("inf"): until cleared
    seen: int = 0


class FaultProxy:
    def __init__(self, upstream: str = "", hang_seconds: float = 5.0):
        self.upstream = upstream
        self.hang_seconds = hang_seconds
        self.rules: list[Rule] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _any(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fault = proxy.fault_for(self.command, self.path)
                if fault == "stopped":  # as if nothing listened: the connection just ends
                    self.close_connection = True
                    self.connection.close()
                    return
                if fault == "timeout":
                    time.sleep(proxy.hang_seconds)
                    self.close_connection = True
                    return
                if fault in ("5xx", "429", "revoked_token"):
                    status, payload = {"5xx": (502, b'{"errcode":"M_UNKNOWN","error":"Bad Gateway"}'),
                                       "429": (429, b'{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":200}'),
                                       "revoked_token": (401, b'{"errcode":"M_UNKNOWN_TOKEN",'
                                                              b'"error":"Invalid access token passed."}')}[fault]
                    return self._reply(status, payload, {"Content-Type": "application/json"})
                r = httpx.request(self.command, proxy.upstream + self.path, content=body,
                                  headers={k: v for k, v in self.headers.items() if k.lower() != "host"})
                self._reply(r.status_code, r.content, {"Content-Type": r.headers.get("content-type", "")})

            def _reply(self, status, payload, headers):
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def fail(self, method: str, path: str, fault: str, times: float = 1) -> Rule:
        assert fault in FAULTS, fault
        rule = Rule(method, re.compile(path), fault, times)
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()

    def fault_for(self, method: str, path: str) -> str | None:
        with self.lock:
            for rule in self.rules:
                if rule.method == method and rule.path.search(path) and rule.seen < rule.times:
                    rule.seen += 1
                    return rule.fault
        return None

    def close(self) -> None:
        self.server.shutdown()
