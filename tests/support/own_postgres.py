"""A PostgreSQL server of a test's own, to stop, start and cut off from the network.

Never the shared server at 127.0.0.1:5432. The server runs as the ``postgres`` OS user
from a data directory in a temporary directory (initdb, pg_ctl). When the machine allows
network namespaces (root, ``ip netns``), the server runs inside one, reached over a veth
pair, so that a test can make it drop every packet (a network partition: the kernel of the
server side no longer answers, unlike a SIGSTOP'd server whose kernel still ACKs).
"""

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass

_BOGUS_MAC = "02:00:00:00:00:01"


def postgres_bin() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


def why_unavailable() -> str | None:
    """Why an own server cannot be run here, or None."""
    if postgres_bin() is None:
        return "no initdb under /usr/lib/postgresql/*/bin"
    if os.geteuid() != 0:
        return "needs root to run the server as the postgres user"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no postgres OS user"
    if shutil.which("runuser") is None:
        return "no runuser"
    return None


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=60)


def _netns_supported() -> bool:
    if shutil.which("ip") is None:
        return False
    probe = f"kairos-probe-{uuid.uuid4().hex[:6]}"
    try:
        _run("ip", "netns", "add", probe)
    except (subprocess.CalledProcessError, OSError, subprocess.TimeoutExpired):
        return False
    _run("ip", "netns", "del", probe)
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class OwnPostgres:
    directory: str
    port: int
    host: str
    netns: str | None = None
    host_if: str | None = None
    server_if: str | None = None

    @property
    def data(self) -> str:
        return os.path.join(self.directory, "data")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@{self.host}:{self.port}/{database}"

    def _as_postgres(self, *args: str) -> None:
        prefix = ("ip", "netns", "exec", self.netns) if self.netns else ()
        _run(*prefix, "runuser", "-u", "postgres", "--", *args)

    def start(self) -> None:
        options = (
            f"-c listen_addresses={self.host} -p {self.port} "
            f"-c unix_socket_directories={self.directory} -c fsync=off "
            "-c full_page_writes=off -c synchronous_commit=off"
        )
        self._as_postgres(
            f"{postgres_bin()}/pg_ctl",
            "-D",
            self.data,
            "-l",
            os.path.join(self.directory, "log"),
            "-w",
            "-t",
            "30",
            "-o",
            options,
            "start",
        )

    def stop(self) -> None:
        self._as_postgres(f"{postgres_bin()}/pg_ctl", "-D", self.data, "-w", "-m", "fast", "stop")

    @property
    def can_partition(self) -> bool:
        return self.netns is not None

    def partition(self) -> None:
        """Every packet between the tests and the server is dropped, both ways: each side
        sends to a MAC address nobody has."""
        assert self.netns
        assert self.host_if
        assert self.server_if
        _run(
            "ip", "neigh", "replace", self.host, "lladdr", _BOGUS_MAC,
            "dev", self.host_if, "nud", "permanent",
        )  # fmt: skip
        _run(
            "ip", "netns", "exec", self.netns, "ip", "neigh", "replace", _gateway(self.host),
            "lladdr", _BOGUS_MAC, "dev", self.server_if, "nud", "permanent",
        )  # fmt: skip

    def heal(self) -> None:
        assert self.netns
        assert self.host_if
        assert self.server_if
        _run("ip", "neigh", "del", self.host, "dev", self.host_if)
        _run(
            "ip", "netns", "exec", self.netns, "ip", "neigh", "del", _gateway(self.host),
            "dev", self.server_if,
        )  # fmt: skip

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self._as_postgres(
                f"{postgres_bin()}/pg_ctl", "-D", self.data, "-w", "-m", "immediate", "stop"
            )
        if self.netns:
            subprocess.run(("ip", "netns", "del", self.netns), check=False, capture_output=True)
        shutil.rmtree(self.directory, ignore_errors=True)


def _gateway(server: str) -> str:
    """The tests' side of the /30 the server is on."""
    head, last = server.rsplit(".", 1)
    return f"{head}.{int(last) - 1}"


def _namespace(tag: str) -> tuple[str, str, str, str]:
    """A network namespace with a veth pair; returns (namespace, host if, server if, the
    server's address)."""
    netns, host_if, server_if = f"kairos-{tag}", f"kh{tag}", f"ks{tag}"
    # A /30 in 10.213.0.0/16 picked by the tag, unlikely to meet another test's.
    n = int(tag, 16) % (1 << 14)
    base = f"10.213.{n >> 6}.{(n & 63) * 4}"
    head = base.rsplit(".", 1)[0]
    low = int(base.rsplit(".", 1)[1])
    gateway, server = f"{head}.{low + 1}", f"{head}.{low + 2}"
    _run("ip", "netns", "add", netns)
    try:
        _run("ip", "link", "add", host_if, "type", "veth", "peer", "name", server_if)
        _run("ip", "link", "set", server_if, "netns", netns)
        _run("ip", "addr", "add", f"{gateway}/30", "dev", host_if)
        _run("ip", "link", "set", host_if, "up")
        ns = ("ip", "netns", "exec", netns)
        _run(*ns, "ip", "addr", "add", f"{server}/30", "dev", server_if)
        _run(*ns, "ip", "link", "set", server_if, "up")
        _run(*ns, "ip", "link", "set", "lo", "up")
    except Exception:
        subprocess.run(("ip", "netns", "del", netns), check=False, capture_output=True)
        subprocess.run(("ip", "link", "del", host_if), check=False, capture_output=True)
        raise
    return netns, host_if, server_if, server


def create() -> OwnPostgres:
    """initdb and start a server; in a network namespace when the machine allows it."""
    directory = tempfile.mkdtemp(prefix="kairos-pg-")
    postgres = pwd.getpwnam("postgres")
    os.chown(directory, postgres.pw_uid, postgres.pw_gid)
    os.chmod(directory, 0o700)
    server = OwnPostgres(directory=directory, port=_free_port(), host="127.0.0.1")
    try:
        server._as_postgres(
            f"{postgres_bin()}/initdb", "-D", server.data, "-U", "postgres",
            "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions",
        )  # fmt: skip
        with open(os.path.join(server.data, "pg_hba.conf"), "a") as hba:
            hba.write("host all all 0.0.0.0/0 trust\n")  # the veth pair's other side
        if _netns_supported():
            tag = uuid.uuid4().hex[:6]
            server.netns, server.host_if, server.server_if, server.host = _namespace(tag)
        server.start()
    except Exception:
        server.destroy()
        raise
    return server
