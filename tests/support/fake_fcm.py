"""A fake FCM HTTP v1 server on 127.0.0.1, for the real firebase-admin client to talk to.

Answers `POST /v1/projects/{project}/messages:send` like FCM does: success with a message
name, or an error body with the FCM error code. What a token gets is set per token (a
list of answers is used up in order, the last one repeats); unknown tokens succeed.

Run alone (tests with several processes, benchmarks): `python -m tests.support.fake_fcm`
prints its port and, when it stops on SIGTERM, nothing else; received messages are
appended as JSON lines to the file given with --log.
"""

import argparse
import json
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, TextIO

FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"

# Readers of --log see a message at most this long after it was received.
LOG_FLUSH_SECONDS = 0.05

# answer name -> (HTTP status, gRPC status, FCM error code, message, extra headers)
ANSWERS: dict[str, tuple[int, str, str | None, str, dict[str, str]]] = {
    "unregistered": (404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found.", {}),
    "quota": (
        429,
        "RESOURCE_EXHAUSTED",
        "QUOTA_EXCEEDED",
        "Quota exceeded for the device.",
        {"Retry-After": "120"},
    ),
    "unavailable": (503, "UNAVAILABLE", "UNAVAILABLE", "The service is unavailable.", {}),
    "invalid_token": (
        400,
        "INVALID_ARGUMENT",
        "INVALID_ARGUMENT",
        "The registration token is not a valid FCM registration token",
        {},
    ),
    "payload": (400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Invalid JSON payload received.", {}),
    "apns_auth": (401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR", "APNs auth failed.", {}),
    "sender_mismatch": (403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", "Sender mismatch.", {}),
}


@dataclass
class Received:
    project: str
    message: dict[str, Any]
    at: float
    answer: str


@dataclass
class FakeFcm:
    plans: dict[str, list[str]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    log: TextIO | None = None
    # Seconds each answer takes, like a network round trip to FCM.
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer_for(self, token: str) -> str:
        with self.lock:
            plan = self.plans.get(token)
            if not plan:
                return "ok"
            return plan.pop(0) if len(plan) > 1 else plan[0]

    def record(self, item: Received) -> None:
        with self.lock:
            self.received.append(item)
            if self.log is not None:
                # Flushed by flush_log_every, not per message: the fake shares the CPU with
                # what it measures.
                self.log.write(
                    json.dumps({"at": item.at, "answer": item.answer, **item.message}) + "\n"
                )

    def flush_log_every(self, seconds: float, stop: threading.Event) -> None:
        while not stop.wait(seconds):
            with self.lock:
                if self.log is not None:
                    self.log.flush()

    def accepted(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r.message for r in self.received if r.answer == "ok"]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as requests' connection pool expects
    # Headers and body are written separately; without TCP_NODELAY each answer would wait
    # for the client's delayed ACK (about 40 ms), a latency FCM does not have.
    disable_nagle_algorithm = True
    fake: ClassVar[FakeFcm]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        parts = self.path.split("/")
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        if len(parts) != 5 or parts[1] != "v1" or parts[4] != "messages:send":
            self._send(
                404, {"error": {"code": 404, "message": "no such path", "status": "NOT_FOUND"}}
            )
            return
        message = body.get("message", {})
        if self.fake.delay:
            time.sleep(self.fake.delay)
        answer = self.fake.answer_for(message.get("token", ""))
        self.fake.record(Received(parts[3], message, time.time(), answer))
        if answer == "ok":
            self._send(200, {"name": f"projects/{parts[3]}/messages/{time.time_ns()}"})
            return
        status, grpc, fcm_code, text, headers = ANSWERS[answer]
        error: dict[str, Any] = {"code": status, "message": text, "status": grpc}
        if fcm_code:
            error["details"] = [{"@type": FCM_ERROR, "errorCode": fcm_code}]
        self._send(status, {"error": error}, headers)

    def _send(
        self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


def start(fake: FakeFcm | None = None, port: int = 0) -> tuple[ThreadingHTTPServer, FakeFcm]:
    """Serve in a background thread; returns the server (``server.server_port``)."""
    fake = fake or FakeFcm()
    handler = type("Handler", (_Handler,), {"fake": fake})
    server = _Server(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, fake


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", help="append each received message as a JSON line")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="answer after this long")
    args = parser.parse_args()
    log = open(args.log, "a") if args.log else None  # noqa: SIM115
    fake = FakeFcm(log=log, delay=args.delay_ms / 1000)
    server, _ = start(fake, args.port)
    print(server.server_port, flush=True)
    stop = threading.Event()
    threading.Thread(target=fake.flush_log_every, args=(LOG_FLUSH_SECONDS, stop)).start()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.shutdown()
    if log is not None:
        log.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
