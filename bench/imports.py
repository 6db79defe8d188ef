"""Phase 3, cold imports: each handler module against ``import boto3``, each in a fresh interpreter."""

import json
import statistics
import subprocess
import sys
from dataclasses import dataclass

from bench.environment import ROOT, probe_environment
from bench.measure import BenchError, Row

HANDLER_MODULES = (
    "functions.webhook_ingest.app",
    "functions.reward_crediting.app",
    "functions.wallet_api.app",
    "functions.outbox_sweeper.app",
    "functions.square_poller.app",
    "functions.token_refresher.app",
    "functions.admin_api.app",
    "functions.field_sync.app",
)
IMPORT_PROBE = """
import importlib, json, os, sys, time
start = time.perf_counter()
importlib.import_module(sys.argv[1])
seconds = time.perf_counter() - start
# VmHWM, not ru_maxrss: after fork+exec, ru_maxrss still counts the parent's pages.
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({
    "seconds": seconds,
    "max_rss_kib": peak,
    "moto": any(name.split(".")[0] == "moto" for name in sys.modules),
}), flush=True)
os._exit(0)  # measured already: skip the interpreter's teardown (~0.3 s a probe)
"""


@dataclass(frozen=True, slots=True)
class ImportSample:
    seconds: float
    max_rss_kib: int


def bench_imports(runs: int) -> list[Row]:
    env = probe_environment()
    modules = ("boto3", *HANDLER_MODULES)
    samples: dict[str, list[ImportSample]] = {module: [] for module in modules}
    for _ in range(runs):  # interleaved, so a noisy moment hits every module alike
        for module in modules:
            samples[module].append(import_once(module, env))

    def median_ms(module: str) -> float:
        return 1000 * statistics.median(sample.seconds for sample in samples[module])

    def median_mib(module: str) -> float:
        return statistics.median(sample.max_rss_kib for sample in samples[module]) / 1024

    rows = []
    for module in HANDLER_MODULES:
        rows.append(Row(f"cold import {module} (ms)", median_ms(module), median_ms("boto3"), 1))
    for module in HANDLER_MODULES:
        rows.append(Row(f"RSS after import {module} (MiB)", median_mib(module), median_mib("boto3"), 1))
    return rows


def import_once(module: str, env: dict[str, str]) -> ImportSample:
    completed = subprocess.run(  # noqa: S603 - fixed interpreter and arguments
        [sys.executable, "-c", IMPORT_PROBE, module],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        raise BenchError(f"import {module} failed:\n{completed.stderr.strip()}")
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    if report["moto"]:
        raise BenchError(f"import {module} pulled in moto")
    return ImportSample(float(report["seconds"]), int(report["max_rss_kib"]))
