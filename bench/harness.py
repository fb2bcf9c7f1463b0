"""What every bench/ step shares: the configuration from the environment, servers started
on 127.0.0.1 and stopped with SIGTERM, `clickstream up` with geo data, and the load tool."""

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
QUICK = os.environ.get("QUICK", "") not in ("", "0")
BIN = os.environ.get("CLICKSTREAM_BIN") or sys.exit("CLICKSTREAM_BIN is not set (run bench/run.sh)")
PYTHON = sys.executable


def knob(name, full, quick):
    return type(full)(os.environ.get(name, quick if QUICK else full))


CONFIG = {
    "quick": QUICK,
    "connections": knob("CONNECTIONS", 32, 8),
    "ingest_secs": knob("INGEST_SECS", 10, 2),
    "batches": [int(b) for b in knob("BATCHES", "1 100 1000", "1 100 1000").split()],
    "vis_rate": knob("VIS_RATE", 2000, 300),
    "vis_secs": knob("VIS_SECS", 20, 3),
    "backlog_secs": knob("BACKLOG_SECS", 5, 2),
    "generated_events": knob("GENERATED_EVENTS", 50_000, 5_000),
    "query_reps": knob("QUERY_REPS", 5, 1),
    "catch_up_secs": knob("CATCH_UP_SECS", 300, 90),
    "criterion_profile": os.environ.get("CRITERION_PROFILE", "bench"),
    "criterion_secs": knob("CRITERION_SECS", 5, 1),
    "evolution_reps": knob("EVOLUTION_REPS", 2, 1),
    "fast_reps": knob("FAST_REPS", 2, 1),
    "edge_reps": knob("EDGE_REPS", 3, 1),
    "segment_reps": knob("SEGMENT_REPS", 3, 1),
    "segment_pool": knob("SEGMENT_POOL", 1000, 100),
    "baseline_bin": os.environ.get("BASELINE_BIN") or None,
    "steps": knob("STEPS", "ingest flask visibility drain evolution edge segment memory fast criterion",
                  "ingest flask visibility drain evolution edge segment memory fast criterion").split(),
}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(message):
    print(f"==> {message}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """User + system CPU time of a process so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


class Server:
    """A child process serving HTTP on 127.0.0.1:port (ready once `ready_path` answers
    200), stopped with SIGTERM."""

    def __init__(self, name, cmd, port, work, env=None, ready_path="/ping"):
        self.name, self.port = name, port
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = Path(work) / f"{name}.log"
        full_env = dict(os.environ, RUST_LOG="warn", **(env or {}))
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=out, env=full_env, cwd=work)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"{name} exited at start-up; see {self.log_path}:\n{self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.base}{ready_path}", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        sys.exit(f"{name} did not answer {ready_path} within 120 s")

    def cpu(self):
        return cpu_seconds(self.proc.pid)

    def rss(self):
        return peak_rss_mb(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def geo_data():
    """The geo-IP files `up` should use (DB-IP City Lite from scripts/setup-geoip), or []."""
    for folder in (REPO / "data" / "geoip", Path.home() / ".cache" / "clickstream-geoip" / "package"):
        files = sorted(folder.glob("*.mmdb"))
        if files:
            return files
    return []


def clickstream_up(work, name, env=None, api=None, registry=None, binary=BIN):
    data = Path(work) / name
    # Every enricher is on by default; geo needs data where `up` looks for it.
    (data / "geoip").mkdir(parents=True, exist_ok=True)
    for f in geo_data():
        link = data / "geoip" / f.name
        if not link.exists():
            link.symlink_to(f)
    api, registry = api or free_port(), registry or free_port()
    cmd = [binary, "--data-dir", str(data), "up", "--api-port", str(api), "--registry-port", str(registry)]
    env = dict({"CLICKSTREAM_INGEST__HOST": "127.0.0.1", "CLICKSTREAM_REGISTRY__HOST": "127.0.0.1"}, **(env or {}))
    server = Server(name, cmd, api, work, env)
    server.data, server.registry_port = data, registry
    return server


def run_json(cmd, timeout=900):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def load_cmd(server, endpoint, batch, connections, secs, shape="seed"):
    """The `clickstream bench ingest` command line (the load tool is always this build's,
    whichever binary serves)."""
    cmd = [
        BIN, "bench", "ingest", "--url", server.base, "--endpoint", endpoint,
        "--batch-size", str(batch), "--connections", str(connections),
        "--duration-secs", str(secs), "--json",
    ]
    if shape != "seed":
        cmd += ["--shape", shape, "--registry-url", f"http://127.0.0.1:{server.registry_port}"]
    return cmd


def bench_ingest(server, endpoint, batch, measure_cpu=True, shape="seed", secs=None):
    """`clickstream bench ingest` against server; adds the server's CPU per million events."""
    before = server.cpu() if measure_cpu else None
    secs = secs or CONFIG["ingest_secs"]
    report = run_json(load_cmd(server, endpoint, batch, CONFIG["connections"], secs, shape))
    if measure_cpu:
        cpu = server.cpu() - before
        report["server_cpu_secs"] = cpu
        report["server_cpu_secs_per_million_events"] = cpu / report["events_acked"] * 1e6 if report["events_acked"] else None
    log(f"{server.name} {endpoint} batch {batch} ({shape}): {report['events_per_sec']:,.0f} events/s, "
        f"{report['requests_per_sec']:,.0f} requests/s, p99 {report['latency_p99_ms']:.1f} ms")
    return report


def drain(work, name, binary=BIN, shape="seed"):
    """A backlog of BACKLOG_SECS of ingest load at batches of 1000 (`up` with the processor
    off), then `process --drain` of it against the same data directory."""
    server = clickstream_up(work, name, env={"CLICKSTREAM_PROCESSOR__ENABLED": "false"}, binary=binary)
    try:
        backlog = run_json(load_cmd(server, "collect", 1000, 16, CONFIG["backlog_secs"], shape))
    finally:
        server.stop()
    registry = Server(f"{name}-registry", [binary, "--data-dir", str(server.data), "registry", "--port",
                                           str(server.registry_port)], server.registry_port, work,
                      {"CLICKSTREAM_REGISTRY__HOST": "127.0.0.1"}, ready_path="/subjects")
    try:
        env = dict(os.environ, RUST_LOG="warn", CLICKSTREAM_REGISTRY__URL=registry.base)
        out = subprocess.run([binary, "--data-dir", str(server.data), "process", "--drain"],
                             capture_output=True, text=True, env=env, timeout=1800)
    finally:
        registry.stop()
    m = re.search(r"drained (\d+) events and (\d+) invalid events in ([\d.]+) s: (\d+) events/s", out.stdout)
    if not m:
        sys.exit(f"process --drain said:\n{out.stdout}\n{out.stderr[-2000:]}")
    result = {"backlog_events": backlog["events_acked"], "events": int(m[1]), "invalid": int(m[2]), "seconds": float(m[3]),
              "events_per_sec": int(m[4]), "data": str(server.data)}
    log(f"{name}: drained {result['events']:,} events at {result['events_per_sec']:,} events/s")
    return result
