"""A fake FCM HTTP v1 server on 127.0.0.1, for the real firebase-admin client to talk to.

Answers `POST /v1/projects/{project}/messages:send` like FCM does: success with a message
name, or an error body with the FCM error code. What a token gets is set per token (a
list of answers is used up in order, the last one repeats); unknown tokens succeed.

Run alone (tests with several processes, benchmarks): `python -m tests.support.fake_fcm`
prints its port and, when it stops on SIGTERM, nothing else; received messages are
appended as JSON lines to the file given with --log.
"""

import argparse
import asyncio
import email.utils
import json
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

import uvicorn

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
    # Retry-After as an HTTP date, 90 s after the answer's Date header (filled in when sent).
    "quota_date": (
        429,
        "RESOURCE_EXHAUSTED",
        "QUOTA_EXCEEDED",
        "Quota exceeded for the device.",
        {"Retry-After": "+90s"},
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


class FakeFcmApp:
    """The HTTP side, as a plain ASGI app served by uvicorn: the fake shares the machine's
    CPU with the workers it measures, so it is kept cheap (httptools, no framework)."""

    def __init__(self, fake: FakeFcm) -> None:
        self.fake = fake

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            event = await receive()
            chunks.append(event.get("body", b""))
            if not event.get("more_body"):
                break
        parts = scope["path"].split("/")
        if (
            scope["method"] != "POST"
            or len(parts) != 5
            or parts[1] != "v1"
            or parts[4] != "messages:send"
        ):
            missing = {"code": 404, "message": "no such path", "status": "NOT_FOUND"}
            await self._send(send, 404, {"error": missing})
            return
        message = json.loads(b"".join(chunks) or b"{}").get("message", {})
        if self.fake.delay:
            await asyncio.sleep(self.fake.delay)
        answer = self.fake.answer_for(message.get("token", ""))
        self.fake.record(Received(parts[3], message, time.time(), answer))
        if answer == "ok":
            await self._send(send, 200, {"name": f"projects/{parts[3]}/messages/{time.time_ns()}"})
            return
        status, grpc, fcm_code, text, headers = ANSWERS[answer]
        error: dict[str, Any] = {"code": status, "message": text, "status": grpc}
        if fcm_code:
            error["details"] = [{"@type": FCM_ERROR, "errorCode": fcm_code}]
        await self._send(send, status, {"error": error}, headers)

    @staticmethod
    async def _send(
        send: Any, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        now = time.time()
        raw = [(b"content-type", b"application/json")]
        raw.append((b"date", email.utils.formatdate(now, usegmt=True).encode()))
        for name, value in (headers or {}).items():
            if value.startswith("+") and value.endswith("s"):  # an HTTP date this far ahead
                value = email.utils.formatdate(now + float(value[1:-1]), usegmt=True)
            raw.append((name.lower().encode(), value.encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": data})


def _server(fake: FakeFcm, port: int) -> tuple[uvicorn.Server, socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(
        FakeFcmApp(fake),
        log_level="warning",
        access_log=False,
        lifespan="off",
        http="httptools",
        loop="uvloop",
        backlog=1024,
        date_header=False,  # the app sets Date itself (Retry-After dates count from it)
        server_header=False,
    )
    return uvicorn.Server(config), sock


@dataclass
class Running:
    """A fake FCM serving in a background thread."""

    server: uvicorn.Server
    thread: threading.Thread
    server_port: int

    def shutdown(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def start(fake: FakeFcm | None = None, port: int = 0) -> tuple[Running, FakeFcm]:
    """Serve in a background thread; returns the server (``server.server_port``)."""
    fake = fake or FakeFcm()
    server, sock = _server(fake, port)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fake FCM server did not start")
        time.sleep(0.01)
    return Running(server, thread, sock.getsockname()[1]), fake


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", help="append each received message as a JSON line")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="answer after this long")
    args = parser.parse_args()
    log = open(args.log, "a") if args.log else None  # noqa: SIM115
    fake = FakeFcm(log=log, delay=args.delay_ms / 1000)
    server, sock = _server(fake, args.port)
    print(sock.getsockname()[1], flush=True)
    stop = threading.Event()
    flusher = threading.Thread(target=fake.flush_log_every, args=(LOG_FLUSH_SECONDS, stop))
    flusher.start()
    server.run(sockets=[sock])  # until SIGTERM or SIGINT
    stop.set()
    flusher.join()
    if log is not None:
        log.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
