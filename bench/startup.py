#!/usr/bin/env python3
"""Time from `itsm serve` starting to the first 200 from /readyz.

Each run starts the binary on a fresh database (a new SQLite file, and a new
PostgreSQL database when --postgres is given), so the time includes creating
the schema. Prints the median and the slowest run in milliseconds.

    cargo build --release
    python3 bench/startup.py --binary target/release/itsm --runs 10 \
        --postgres postgres://postgres@127.0.0.1:5432/postgres
"""

import argparse
import os
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid

SECRET = "startup-benchmark-secret-0123456789abcdef"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ready(url):
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, OSError):
        return False


def one_run(binary, database_url, workdir):
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "ITSM_DATABASE_URL": database_url,
        "ITSM_JWT_SECRET": SECRET,
        "ITSM_LISTEN": f"127.0.0.1:{port}",
        "ITSM_LOG": "warn",
    }
    url = f"http://127.0.0.1:{port}/readyz"
    start = time.perf_counter()
    process = subprocess.Popen([binary, "serve"], env=env, cwd=workdir,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not ready(url):
            if process.poll() is not None:
                raise SystemExit(f"itsm exited with {process.returncode}")
            if time.perf_counter() - start > 30:
                raise SystemExit("not ready within 30 s")
            time.sleep(0.001)
        return (time.perf_counter() - start) * 1000
    finally:
        process.terminate()
        process.wait(timeout=10)


def postgres_database(admin_url, name, create):
    sql = f'CREATE DATABASE "{name}"' if create else f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    subprocess.run(["psql", admin_url, "-q", "-c", sql], check=True)
    base = admin_url.rsplit("/", 1)[0]
    return f"{base}/{name}"


def report(label, times):
    print(f"{label:<11} median {statistics.median(times):7.1f} ms   slowest {max(times):7.1f} ms   ({len(times)} runs)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default="target/release/itsm")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server")
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)

    times = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as workdir:
            times.append(one_run(binary, f"sqlite://{workdir}/itsm.db", workdir))
    report("SQLite", times)

    if args.postgres:
        times = []
        for _ in range(args.runs):
            name = f"itsm_bench_{uuid.uuid4().hex}"
            url = postgres_database(args.postgres, name, create=True)
            try:
                with tempfile.TemporaryDirectory() as workdir:
                    times.append(one_run(binary, url, workdir))
            finally:
                postgres_database(args.postgres, name, create=False)
        report("PostgreSQL", times)


if __name__ == "__main__":
    main()
