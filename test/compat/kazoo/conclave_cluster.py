"""pytest plugin: kazoo's own test suite against a Conclave ensemble.

kazoo's harness (kazoo.testing.harness) starts Apache ZooKeeper through
get_global_cluster(). Loaded with ``-p conclave_cluster`` (this directory on
PYTHONPATH), this plugin replaces that function with one returning a
ConclaveCluster: N ``node bin/conclave.js server`` processes on free
127.0.0.1 ports, with the small API the harness and the tests use (members
with ``address``, ``running``, ``run()``, ``stop()``; the cluster's
``start()``, ``stop()``, ``terminate()``, indexing and iteration).

The servers are configured like the harness configures ZooKeeper: tickTime
2000, initLimit 4, syncLimit 2, maxClientCnxns 0, read-only mode on, the
super digest ``super:test``. Environment:

  ZOOKEEPER_CLUSTER_SIZE    members (default 3, as the harness)
  CONCLAVE_KAZOO_KEEP=1     keep the servers' data dirs and logs after the run
                            (pytest run by hand: run.sh removes its directory)
  CONCLAVE_KAZOO_LOG_LEVEL  the servers' log level (default warn)
  CONCLAVE_KAZOO_TARGET=zookeeper
                            the oracle: leave kazoo's own harness in place and
                            point it at Debian's Apache ZooKeeper (classpath,
                            version, a free port range), processes also tied
                            to pytest's life

Several kazoo test modules ``import mock`` (the PyPI backport); where it is
not installed, the standard library's unittest.mock stands in for it.

Tests listed for the target in known-failures.txt (with why) are marked
xfail(strict=True): they may fail, and one that passes fails the run
(CONCLAVE_KAZOO_NO_XFAIL=1 turns the marks off, for raw counts). The run
ends with one line of counts: ``kazoo-suite: target=... passed=... ...``.
Run it with run.sh (this directory), which bounds it in time.

Every process is stopped at the end of the session (pytest_unconfigure, and
atexit); each is also started with PR_SET_PDEATHSIG so that it gets SIGTERM
if pytest itself is killed.
"""

import atexit
import ctypes
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import kazoo.testing.common as zk_common
import kazoo.testing.harness as harness
import pytest

try:
    import mock  # noqa: F401
except ImportError:
    import unittest.mock

    sys.modules["mock"] = unittest.mock

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BIN = os.path.join(ROOT, "bin", "conclave.js")
NODE = os.environ.get("CONCLAVE_NODE") or shutil.which("node") or "node"
SECRET = "kazoo-compat-secret"
# The harness's -Dzookeeper.DigestAuthenticationProvider.superDigest (password "test").
SUPER_DIGEST = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
START_TIMEOUT = 30.0
# How long run() waits for a restarted member to join (it goes on regardless: see run()).
JOIN_WAIT = 10.0


def _free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def four_letter_word(port, word, timeout=2.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(word.encode("ascii"))
        chunks = []
        while True:
            c = s.recv(8192)
            if not c:
                break
            chunks.append(c)
    return b"".join(chunks).decode("utf-8", "replace")


def _die_with_parent():
    # Linux: SIGTERM this child when the thread that spawned it (pytest's) dies.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class ConclaveServer(object):
    """One Conclave server process (the harness's ManagedZooKeeper)."""

    def __init__(self, cluster, server_id, client_port, peer_port):
        self.cluster = cluster
        self.server_id = server_id
        self.client_port = client_port
        self.peer_port = peer_port
        self.host = "127.0.0.1"
        self.working_path = os.path.join(cluster.working_path, "server-%d" % server_id)
        self.process = None
        self._log = None

    @property
    def address(self):
        return "%s:%s" % (self.host, self.client_port)

    @property
    def running(self):
        return self.process is not None

    def _write_config(self):
        os.makedirs(self.working_path, exist_ok=True)
        config = {
            "clientPort": self.client_port,
            "clientPortAddress": self.host,
            "dataDir": os.path.join(self.working_path, "data"),
            "tickTime": 2000,
            "initLimit": 4,
            "syncLimit": 2,
            "maxClientCnxns": 0,
            "readOnlyMode": True,
            # As kazoo's own harness runs ZooKeeper (reconfigEnabled=true): kazoo 2.8 does not know
            # RECONFIG_DISABLED (-123) and retries a reconfig refused with it forever.
            "reconfigEnabled": True,
            "superDigest": SUPER_DIGEST,
            "logLevel": os.environ.get("CONCLAVE_KAZOO_LOG_LEVEL", "warn"),
        }
        if len(self.cluster.members) > 1:
            config["serverId"] = self.server_id
            config["servers"] = [
                {"id": m.server_id, "host": m.host, "peerPort": m.peer_port, "clientPort": m.client_port}
                for m in self.cluster.members
            ]
        path = os.path.join(self.working_path, "conclave.json")
        with open(path, "w") as f:
            json.dump(config, f, indent=2)
        return path

    def run(self, join_wait=JOIN_WAIT):
        """Start the server and wait until it listens, then (up to JOIN_WAIT
        seconds, without failing: the tests restart one member while others
        are down) until it has joined the ensemble, so that the next test
        does not start against a member still LOOKING (kazoo's read-only
        test would then find the survivor it keeps behind the client)."""
        if self.running:
            return
        config = self._write_config()
        self._log = open(os.path.join(self.working_path, "server.log"), "ab")
        env = dict(os.environ, CONCLAVE_SECRET=SECRET)
        self.process = subprocess.Popen(
            [NODE, BIN, "server", "--config", config],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        deadline = time.time() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                code = self.process.returncode
                self._reap()
                raise RuntimeError("conclave server %d exited (%s) before listening:\n%s"
                                   % (self.server_id, code, self.log_tail()))
            try:
                socket.create_connection((self.host, self.client_port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    self.stop()
                    raise RuntimeError("conclave server %d did not listen within %ss:\n%s"
                                       % (self.server_id, START_TIMEOUT, self.log_tail()))
                time.sleep(0.05)
        joined = time.time() + join_wait
        while time.time() < joined and self.mode() not in ("leader", "follower", "observer", "standalone"):
            time.sleep(0.05)

    def mode(self):
        try:
            for line in four_letter_word(self.client_port, "srvr").splitlines():
                if line.startswith("Mode: "):
                    return line[len("Mode: "):]
        except OSError:
            return None
        return None

    def log_tail(self, chars=4000):
        try:
            with open(os.path.join(self.working_path, "server.log"), "rb") as f:
                return f.read()[-chars:].decode("utf-8", "replace")
        except OSError:
            return ""

    def _reap(self):
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self):
        """SIGTERM (the server flushes its storage), SIGKILL after 10 s."""
        if not self.running:
            return
        p = self.process
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self._reap()

    def destroy(self):
        self.stop()
        if not os.environ.get("CONCLAVE_KAZOO_KEEP"):
            shutil.rmtree(self.working_path, True)


class ConclaveCluster(object):
    """The harness's ZookeeperCluster, made of Conclave servers."""

    def __init__(self, size=3):
        self.working_path = tempfile.mkdtemp(prefix="conclave-kazoo-")
        self.members = []
        for i in range(size):
            self.members.append(ConclaveServer(self, i + 1, _free_port(), _free_port()))

    def __getitem__(self, k):
        return self.members[k]

    def __iter__(self):
        return iter(self.members)

    def __len__(self):
        return len(self.members)

    def start(self):
        for server in reversed(self.members):
            server.run(join_wait=0)
        # Instead of the harness's sleep(2): wait until every member serves
        # (leader, follower or standalone), so no test starts mid-election.
        deadline = time.time() + START_TIMEOUT
        while True:
            modes = [m.mode() for m in self.members]
            if all(m in ("leader", "follower", "observer", "standalone") for m in modes):
                return
            if time.time() > deadline:
                tails = "\n".join("--- server %d\n%s" % (m.server_id, m.log_tail(1500)) for m in self.members)
                raise RuntimeError("the Conclave ensemble did not form within %ss (modes %s):\n%s"
                                   % (START_TIMEOUT, modes, tails))
            time.sleep(0.1)

    def stop(self):
        for server in self.members:
            server.stop()

    def terminate(self):
        for server in self.members:
            server.destroy()
        if not os.environ.get("CONCLAVE_KAZOO_KEEP"):
            shutil.rmtree(self.working_path, True)

    def reset(self):
        for server in self.members:
            server.stop()
            shutil.rmtree(os.path.join(server.working_path, "data"), True)


_CLUSTER = None


def get_global_cluster():
    global _CLUSTER
    if _CLUSTER is None:
        _CLUSTER = ConclaveCluster(size=int(os.environ.get("ZOOKEEPER_CLUSTER_SIZE", "3")))
        atexit.register(_CLUSTER.terminate)
    return _CLUSTER


TARGET = os.environ.get("CONCLAVE_KAZOO_TARGET", "conclave")


def _free_port_range(width=40):
    """A base port with `width` free ports above it (kazoo's harness gives
    server i the ports base+10*i .. base+10*i+3)."""
    import random

    for _ in range(200):
        base = random.randrange(30000, 60000 - width)
        socks = []
        try:
            for p in range(base, base + width):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free range of %d ports" % width)


class _ZooKeeperPopen(subprocess.Popen):
    """kazoo's harness starts java with Popen: tie it to pytest's life and
    send its console log to the server's working directory."""

    def __init__(self, args, **kw):
        kw.setdefault("preexec_fn", _die_with_parent)
        if "stdout" not in kw:
            # The last argument is zoo.cfg, in the server's working directory.
            self._log = open(os.path.join(os.path.dirname(args[-1]), "console.log"), "ab")
            kw["stdout"] = self._log
            kw["stderr"] = subprocess.STDOUT
        super().__init__(args, **kw)


def _use_zookeeper():
    os.environ.setdefault("ZOOKEEPER_CLASSPATH", "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar")
    if "ZOOKEEPER_VERSION" not in os.environ:
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "zookeeper"],
                             capture_output=True, text=True).stdout
        os.environ["ZOOKEEPER_VERSION"] = out.split("-")[0] or "3.8.0"
    os.environ.setdefault("ZOOKEEPER_PORT_OFFSET", str(_free_port_range()))
    zk_common.subprocess = type("subprocess", (), {"Popen": _ZooKeeperPopen})


def pytest_configure(config):
    if TARGET == "zookeeper":
        _use_zookeeper()
        return
    if TARGET != "conclave":
        raise RuntimeError("CONCLAVE_KAZOO_TARGET must be conclave or zookeeper, not %r" % TARGET)
    if not os.path.exists(os.path.join(ROOT, "dist", "server", "cli", "main.js")):
        raise RuntimeError("dist/ is missing: run `npx tsc -p tsconfig.json` first")
    harness.get_global_cluster = get_global_cluster


def pytest_report_header(config):
    if TARGET == "zookeeper":
        return "kazoo harness: Apache ZooKeeper %s (%s), ports from %s" % (
            os.environ["ZOOKEEPER_VERSION"], os.environ["ZOOKEEPER_CLASSPATH"],
            os.environ["ZOOKEEPER_PORT_OFFSET"])
    return "kazoo harness: Conclave ensemble (%s server)" % BIN


def _known_failures():
    known = {}
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "known-failures.txt")) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            target, test, reason = line.split(None, 2)
            known.setdefault(target, {})[test] = reason
    return known


def _test_key(item):
    cls = getattr(item, "cls", None)
    return "%s.%s%s" % (item.module.__name__, cls.__name__ + "." if cls else "", item.name)


def pytest_collection_modifyitems(config, items):
    if os.environ.get("CONCLAVE_KAZOO_NO_XFAIL"):
        return
    known = _known_failures().get(TARGET, {})
    for item in items:
        reason = known.get(_test_key(item))
        if reason is not None:
            item.add_marker(pytest.mark.xfail(reason=reason, strict=True))


COUNTED = ("passed", "failed", "error", "xfailed", "xpassed", "skipped")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    counts = " ".join("%s=%d" % (k, len(terminalreporter.stats.get(k, []))) for k in COUNTED)
    terminalreporter.write_line("kazoo-suite: target=%s %s exit=%d" % (TARGET, counts, exitstatus))


def pytest_unconfigure(config):
    # Clients some tests leave running would log every failed reconnect once
    # the servers are gone; nothing is asserted any more.
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)
    if _CLUSTER is not None:
        _CLUSTER.terminate()
    if TARGET == "zookeeper" and harness.CLUSTER is not None:
        harness.CLUSTER.terminate()


if __name__ == "__main__":
    sys.exit("load this file as a pytest plugin: PYTHONPATH=%s pytest -p conclave_cluster ..."
             % os.path.dirname(os.path.abspath(__file__)))
