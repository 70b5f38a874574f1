"""durable_async side by side with the other Python durable SDKs: ``python benchmarks/compare.py``.

Sets up AWS's ``aws-durable-execution-sdk-python`` and the async fork
``async-durable-execution`` in their own virtualenvs under a cache directory (they cannot
be installed together), then runs identical workloads (``peers/sdk_*.py``, one module per
SDK) in fresh processes, rotating the SDK order every round, and prints one table of
min/median per SDK with the ratio of each median to durable_async's. Every run checks the
SDK's result, so a workload that did not run fails the command. ``benchmarks/RESULTS.md``
gets the table with the date, versions and machine.

Workloads (zero-latency: a fake Lambda API in the process, answering at once):

* sequential steps, zero-latency, and against AWS's ``dex-local-runner`` on loopback
  (the SDK's default client, in a warm worker process per SDK);
* the floor: one raw aiobotocore checkpoint round trip on loopback (no SDK);
* 200 and 1,000 concurrent steps: ``map`` (each SDK has one) and ``asyncio.gather`` of
  steps (where the SDK has that: not AWS's, which is synchronous);
* replay of 1,000 and 3,000 recorded steps plus one new step;
* cold start: a fresh interpreter that imports the SDK, defines the handler and runs one
  1-step invocation with the SDK's default client against the loopback runner, as the
  Lambda endpoint the runner invokes; the figures are its wall and CPU time above a bare
  interpreter doing the same I/O (CPU time moves less on a shared machine), the first
  invocation's own time and the RSS after it (and ``-X importtime``'s top contributors,
  below the table); durable_async also without preparing its client at import;
* a 10,000-item map's peak RSS.

Options: ``--quick`` (small sizes, one round: a smoke test), ``--sdks a,b``,
``--rounds N`` (default 5), ``--cache-dir`` (default ``$XDG_CACHE_HOME/durable_async_bench``),
``--no-results`` (do not write RESULTS.md). Needs the conformance checker's venv for the
runner (``../shared/conformance/setup.sh``). A full run takes about 25 minutes on a 2-core
machine, most of it the fork's 10,000-item map (three rounds of four to five minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from dex_harness import (  # noqa: E402
    FAKE_AWS_ENV,
    DexRunner,
    InvokeEndpoint,
    checker_python,
    wait_terminal,
)

PEERS = HERE / "peers"


@dataclass(frozen=True)
class Sdk:
    key: str
    label: str
    spec: str | None  # pip requirement; None: this venv (durable_async itself)
    module: str


SDKS = {
    "durable_async": Sdk("durable_async", "durable_async", None, "sdk_durable_async.py"),
    "aws": Sdk("aws", "AWS SDK 3.0.0", "aws-durable-execution-sdk-python==3.0.0", "sdk_aws.py"),
    "fork": Sdk("fork", "async fork 2.5.0", "async-durable-execution==2.5.0", "sdk_fork.py"),
}


@dataclass(frozen=True)
class Workload:
    """One row: ``run`` a zero-latency workload, or a loopback/cold one (``kind``)."""

    label: str
    unit: str
    kind: str  # "run", "loopback", "cold"
    name: str
    n: int
    per: int = 1  # divide the measured time by this (per step / per operation)
    scale: float = 1e3  # seconds -> unit
    metric: str = "seconds"


def workloads(quick: bool) -> list[Workload]:
    q = quick
    seq, loop_n = (50, 20) if q else (1000, 200)
    small, large = (20, 50) if q else (200, 1000)
    replay_small, replay_large = (50, 100) if q else (1000, 3000)
    memory = 200 if q else 10_000
    return [
        Workload("sequential step, zero-latency", "µs/step", "run", "sequential", seq, seq, 1e6),
        Workload(f"{small} concurrent steps, map", "ms", "run", "map", small),
        Workload(f"{large} concurrent steps, map", "ms", "run", "map", large),
        Workload(f"{small} concurrent steps, gather", "ms", "run", "gather", small),
        Workload(f"{large} concurrent steps, gather", "ms", "run", "gather", large),
        Workload(f"replay {replay_small} ops + 1 step", "µs/op", "run", "replay",
                 replay_small, replay_small, 1e6),
        Workload(f"replay {replay_large} ops + 1 step", "µs/op", "run", "replay",
                 replay_large, replay_large, 1e6),
        Workload(f"{memory:,}-item map, peak RSS", "MiB", "run", "map_memory", memory,
                 metric="peak_rss_mib", scale=1),
        Workload(f"{memory:,}-item map, time", "s", "run", "map_memory", memory, scale=1),
        Workload("sequential step, loopback runner", "ms/step", "loopback", "sequential",
                 loop_n, loop_n),
        Workload("floor: raw aiobotocore checkpoint, loopback", "ms/call", "loopback", "floor",
                 loop_n, loop_n),
        Workload("cold start above bare interpreter", "ms", "cold", "one_step", 1),
        Workload("  CPU time above bare interpreter", "ms", "cold", "one_step", 1,
                 metric="cpu"),
        Workload("  of which the first invocation", "ms", "cold", "one_step", 1,
                 metric="first"),
        Workload("  RSS after one invocation", "MiB", "cold", "one_step", 1,
                 metric="rss", scale=1),
        Workload("cold start, client built in the invocation", "ms", "cold", "lazy", 1),
        Workload("  of which the first invocation, client built in it", "ms", "cold", "lazy", 1,
                 metric="first"),
    ]  # fmt: skip


@dataclass
class Results:
    values: dict[tuple[str, str], list[float]] = field(
        default_factory=lambda: collections.defaultdict(list)
    )
    errors: list[str] = field(default_factory=list)
    calls: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, workload: Workload, sdk: str, value: float) -> None:
        self.values[(workload.label, sdk)].append(value)


# -- venvs ------------------------------------------------------------------------------


def cache_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "durable_async_bench"


def python_for(sdk: Sdk, cache: Path) -> str:
    """The interpreter that runs ``sdk``'s workloads; builds its venv on first use.

    durable_async runs from this checkout: its bytecode is compiled first, as pip does
    when it installs the peers, so no cold start pays for compiling source.
    """
    if sdk.spec is None:
        import compileall

        compileall.compile_dir(str(HERE.parent / "durable_async"), quiet=1)
        compileall.compile_dir(str(PEERS), quiet=1)
        return sys.executable
    venv = cache / sdk.spec.replace("==", "-")
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if not marker.is_file() or marker.read_text() != sdk.spec:
        print(f"setting up {sdk.spec} in {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", sdk.spec],
            check=True,
        )
        marker.write_text(sdk.spec)
    return str(python)


def versions(pythons: dict[str, str]) -> dict[str, str]:
    """Installed distribution versions per SDK venv (the SDK and its AWS stack)."""
    code = (
        "import importlib.metadata as m, json, sys\n"
        "names = ['durable-async', 'aws-durable-execution-sdk-python', "
        "'async-durable-execution', 'botocore', 'boto3', 'aiobotocore', 'aiohttp']\n"
        "found = {}\n"
        "for n in names:\n"
        "    try: found[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps({'python': sys.version.split()[0], **found}))\n"
    )
    out = {}
    for key, python in pythons.items():
        done = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
        info = json.loads(done.stdout)
        out[key] = ", ".join(f"{k} {v}" for k, v in info.items())
    return out


# -- zero-latency workloads -------------------------------------------------------------


def run_child(python: str, sdk: Sdk, name: str, n: int, timeout: float) -> dict[str, Any]:
    cmd = [python, str(PEERS / sdk.module), "run", name, str(n)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, check=False, env=env
    )
    if done.returncode != 0:
        raise RuntimeError(f"{sdk.key} {name} {n}: exit {done.returncode}: {done.stderr[-800:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def expected(name: str, n: int) -> int:
    """What each workload's handler returns: the sum of ``i + 1`` over its steps."""
    steps = n + 1 if name == "replay" else n
    return sum(range(1, steps + 1))


def has_workload(sdk: Sdk, name: str) -> bool:
    """Whether ``sdk`` has the workload (AWS's synchronous SDK has no gather)."""
    text = (PEERS / sdk.module).read_text()
    return f"def {name}(self" in text


# -- loopback and cold start ------------------------------------------------------------


class Workers:
    """A warm ``serve`` process per SDK, fed invocation events over its stdin."""

    def __init__(self, pythons: dict[str, str], env: dict[str, str]) -> None:
        self.pythons = pythons
        self.env = env
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.locks: dict[str, asyncio.Lock] = {}

    async def call(self, sdk: Sdk, function: str, event: Any) -> dict[str, Any]:
        proc = self.procs.get(sdk.key)
        if proc is None:
            proc = await asyncio.create_subprocess_exec(
                self.pythons[sdk.key], str(PEERS / sdk.module), "serve",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=self.env,
                limit=64 * 1024 * 1024,
            )  # fmt: skip
            self.procs[sdk.key] = proc
            self.locks[sdk.key] = asyncio.Lock()
        assert proc.stdin is not None
        assert proc.stdout is not None
        async with self.locks[sdk.key]:
            proc.stdin.write(json.dumps({"function": function, "event": event}).encode() + b"\n")
            await proc.stdin.drain()
            line = await proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{sdk.key} worker exited ({await proc.wait()})")
        return json.loads(line)  # type: ignore[no-any-return]

    async def close(self) -> None:
        for proc in self.procs.values():
            assert proc.stdin is not None
            proc.stdin.close()
            await proc.wait()


async def spawn_once(
    cmd: list[str], env: dict[str, str], line: bytes, limit_s: float
) -> tuple[float, bytes, bytes]:
    """Wall time of a fresh process fed one line; its stdout and stderr."""
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    async with asyncio.timeout(limit_s):
        out, err = await proc.communicate(line)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[1:3]} exit {proc.returncode}: {err.decode()[-800:]}")
    return wall, out, err


BARE = (
    "import sys, json, time; json.loads(sys.stdin.readline()); "
    "print(json.dumps({'_cpu': time.process_time()}))"
)


class Loopback:
    """dex-local-runner plus the Invoke endpoint that routes to the SDK processes."""

    def __init__(self, pythons: dict[str, str], sdks: list[Sdk]) -> None:
        self.pythons = pythons
        self.sdks = sdks
        self.cold: dict[str, dict[str, Any]] = {}  # last cold run per endpoint function
        self.importtime: dict[str, str] = {}

    def env(self, url: str, *, in_lambda: bool = True) -> dict[str, str]:
        env = {**os.environ, **FAKE_AWS_ENV, "AWS_ENDPOINT_URL_LAMBDA": url}
        env.pop("PYTHONPATH", None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # as in Lambda: bytecode caches are used
        if in_lambda:  # Lambda's runtime sets it; durable_async prepares its client on it
            env["AWS_LAMBDA_RUNTIME_API"] = "127.0.0.1:9001"
        else:
            env.pop("AWS_LAMBDA_RUNTIME_API", None)
        return env

    def handler(self, kind: str, sdk: Sdk, function: str) -> Callable[[Any], Any]:
        async def warm(event: Any) -> Any:
            out = await self.workers.call(sdk, function, event)
            self.cold[f"{kind}-{sdk.key}-{function}"] = out
            return {k: v for k, v in out.items() if not k.startswith("_")}

        async def cold(event: Any) -> Any:
            env = self.env(self.url, in_lambda=kind == "cold")
            python = self.pythons[sdk.key]
            line = json.dumps({"function": "one_step", "event": event}).encode() + b"\n"
            cmd = [python, str(PEERS / sdk.module), "cold"]
            if self.trace_imports:
                cmd.insert(1, "-X")
                cmd.insert(2, "importtime")
            wall, out_bytes, err = await spawn_once(cmd, env, line, 300)
            bare, bare_bytes, _ = await spawn_once([python, "-c", BARE], env, line, 60)
            out = json.loads(out_bytes.decode().strip().splitlines()[-1])
            out["_wall"], out["_bare"] = wall, bare
            out["_cpu_above_bare"] = out["_cpu"] - json.loads(bare_bytes)["_cpu"]
            if self.trace_imports:
                self.importtime[sdk.key] = top_imports(err.decode())
            self.cold[f"{kind}-{sdk.key}-{function}"] = out
            return {k: v for k, v in out.items() if not k.startswith("_")}

        return warm if kind == "warm" else cold

    async def execute(self, kind: str, sdk: Sdk, function: str, n: int) -> dict[str, Any]:
        """One execution through the runner; the SDK's report of its (only) invocation."""
        name = f"{kind}-{sdk.key}-{function}"
        self.cold.pop(name, None)
        arn = await asyncio.to_thread(
            self.runner.start_execution, name, {"n": n}, lambda_endpoint=self.endpoint.url
        )
        described = await wait_terminal(self.lam, arn, within=600)
        if self.endpoint.errors:
            raise RuntimeError(f"{name} failed: {self.endpoint.errors[-1][1]!r}")
        if described.get("Status") != "SUCCEEDED":
            raise RuntimeError(f"{name}: {described}")
        result = json.loads(described["Result"])
        want = 2 if function in ("one_step", "lazy") else expected("sequential", n)
        if result != want:
            raise RuntimeError(f"{name}: result {result!r}, expected {want}")
        return self.cold[name]

    async def __aenter__(self) -> Loopback:
        from aiobotocore.session import get_session

        os.environ.update(FAKE_AWS_ENV)
        self.runner = DexRunner(checker_python()).start()
        self.url = self.runner.url
        self.trace_imports = False
        self.workers = Workers(self.pythons, self.env(self.url))
        functions: dict[str, Any] = {}
        for sdk in self.sdks:
            for function in ("sequential", "floor"):
                functions[f"warm-{sdk.key}-{function}"] = self.handler("warm", sdk, function)
            functions[f"cold-{sdk.key}-one_step"] = self.handler("cold", sdk, "one_step")
            functions[f"lazy-{sdk.key}-one_step"] = self.handler("lazy", sdk, "one_step")
        self.endpoint = await InvokeEndpoint(functions).__aenter__()
        self._lam_ctx = get_session().create_client("lambda", endpoint_url=self.url)
        self.lam = await self._lam_ctx.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.workers.close()
        await self._lam_ctx.__aexit__(None, None, None)
        await self.endpoint.__aexit__()
        self.runner.stop()


def top_imports(stderr: str, count: int = 6) -> str:
    """``-X importtime`` self times summed per top-level package, largest first."""
    totals: collections.Counter[str] = collections.Counter()
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = line.split(":", 1)[1].split("|")
        totals[name.strip().split(".")[0]] += int(self_us)
    return ", ".join(f"{k} {v / 1000:.0f} ms" for k, v in totals.most_common(count))


# -- the run ----------------------------------------------------------------------------


def order(sdks: list[Sdk], round_no: int) -> list[Sdk]:
    """Rotate, and reverse every other round: no SDK always runs first or last."""
    shift = round_no % len(sdks)
    rotated = sdks[shift:] + sdks[:shift]
    return rotated[::-1] if round_no % 2 else rotated


def run_zero_latency(
    args: argparse.Namespace, sdks: list[Sdk], pythons: dict[str, str], results: Results
) -> None:
    for workload in [w for w in workloads(args.quick) if w.kind == "run"]:
        if workload.label.endswith(", time"):
            continue  # measured with the peak RSS row
        for round_no in range(args.rounds if workload.name != "map_memory" else args.mem_rounds):
            for sdk in order(sdks, round_no):
                if not has_workload(sdk, workload.name):
                    continue
                try:
                    out = run_child(pythons[sdk.key], sdk, workload.name, workload.n, 1800)
                    if out["result"] != expected(workload.name, workload.n):
                        raise RuntimeError(f"result {out['result']!r}")
                except Exception as exc:
                    results.errors.append(f"{sdk.key} / {workload.label}: {exc}")
                    continue
                results.calls[(workload.label, sdk.key)] = out["calls"]
                if workload.name == "map_memory":
                    results.add(workload, sdk.key, out["peak_rss_mib"])
                    timing = next(w for w in workloads(args.quick) if w.label.endswith(", time"))
                    results.add(timing, sdk.key, out["seconds"])
                else:
                    results.add(workload, sdk.key, out["seconds"] / workload.per * workload.scale)
            print(".", end="", flush=True)


async def run_loopback(
    args: argparse.Namespace,
    sdks: list[Sdk],
    pythons: dict[str, str],
    results: Results,
    kinds: set[str],
) -> dict[str, str]:
    rows = [w for w in workloads(args.quick) if w.kind in kinds - {"run"}]
    if not rows:
        return {}
    async with Loopback(pythons, sdks) as lb:
        for sdk in sdks:  # warm-up: workers, connections, bytecode caches
            if "loopback" in kinds:
                await lb.execute("warm", sdk, "sequential", 5)
            if "cold" in kinds:
                await lb.execute("cold", sdk, "one_step", 1)
        if "durable_async" in pythons and "loopback" in kinds:
            await lb.execute("warm", SDKS["durable_async"], "floor", 5)
        for round_no in range(args.rounds):
            for sdk in order(sdks, round_no):
                for workload in rows:
                    if workload.metric != "seconds" or (
                        workload.name == "floor" and sdk.key != "durable_async"
                    ):
                        continue
                    if workload.name == "lazy" and sdk.key != "durable_async":
                        continue
                    try:
                        await measure(lb, workload, sdk, rows, results)
                    except Exception as exc:
                        results.errors.append(f"{sdk.key} / {workload.label}: {exc}")
            print(".", end="", flush=True)
        if "cold" in kinds:
            lb.trace_imports = True
            for sdk in sdks:
                await lb.execute("cold", sdk, "one_step", 1)
        return lb.importtime


async def measure(
    lb: Loopback, workload: Workload, sdk: Sdk, rows: list[Workload], results: Results
) -> None:
    if workload.kind == "loopback":
        out = await lb.execute("warm", sdk, workload.name, workload.n)
        results.add(workload, sdk.key, out["_seconds"] / workload.per * workload.scale)
        return
    kind = "lazy" if workload.name == "lazy" else "cold"
    out = await lb.execute(kind, sdk, "one_step", 1)
    for row in rows:
        if row.kind == "cold" and row.name == workload.name:
            value = {
                "seconds": (out["_wall"] - out["_bare"]) * 1e3,
                "cpu": out["_cpu_above_bare"] * 1e3,
                "first": out["_seconds"] * 1e3,
                "rss": out["_rss_mib"],
            }[row.metric]
            results.add(row, sdk.key, value)


def table(args: argparse.Namespace, sdks: list[Sdk], results: Results) -> list[str]:
    base = "durable_async"
    head = ["workload", "unit"]
    for sdk in sdks:
        head.append(f"{sdk.label} min / median")
        if sdk.key != base and base in [s.key for s in sdks]:
            head.append(f"{sdk.label} ÷ durable_async")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for workload in workloads(args.quick):
        cells = [workload.label.strip(), workload.unit]
        if workload.label.startswith("  "):
            cells[0] = "↳ " + cells[0]
        ours = results.values.get((workload.label, base))
        for sdk in sdks:
            values = results.values.get((workload.label, sdk.key))
            cells.append(
                f"{fmt(min(values))} / {fmt(statistics.median(values))}" if values else "—"
            )
            if sdk.key != base and base in [s.key for s in sdks]:
                ratio = (
                    f"{statistics.median(values) / statistics.median(ours):.2f}×"  # noqa: RUF001
                    if values and ours and statistics.median(ours) > 0
                    else "—"
                )
                cells.append(ratio)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def fmt(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{platform.platform()}; {os.cpu_count()} CPUs ({model}); load average {load}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sdks", default=",".join(SDKS))
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--mem-rounds", type=int, default=3)
    parser.add_argument("--cache-dir")
    parser.add_argument("--no-results", action="store_true")
    parser.add_argument("--kinds", default="run,loopback,cold", help="workload kinds to run")
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args()
    args.rounds = args.rounds or (1 if args.quick else 5)
    if args.quick:
        args.mem_rounds = 1
    sdks = [SDKS[key] for key in args.sdks.split(",")]
    cache = cache_dir(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    pythons = {sdk.key: python_for(sdk, cache) for sdk in sdks}
    started = datetime.datetime.now(datetime.UTC)
    machine_line = machine()
    results = Results()
    kinds = set(args.kinds.split(","))
    if "run" in kinds:
        run_zero_latency(args, sdks, pythons, results)
    importtime = asyncio.run(run_loopback(args, sdks, pythons, results, kinds))
    print()
    lines = table(args, sdks, results)
    print("\n".join(lines))
    for key, top in importtime.items():
        print(f"-X importtime, {SDKS[key].label}: {top}")
    for error in results.errors:
        print(f"FAILED: {error}", file=sys.stderr)
    if not args.no_results:
        write_results(Path(args.results), args, started, machine_line, pythons, lines, importtime,
                      results)  # fmt: skip
    return 1 if results.errors else 0


def write_results(
    path: Path,
    args: argparse.Namespace,
    started: datetime.datetime,
    machine_line: str,
    pythons: dict[str, str],
    lines: list[str],
    importtime: dict[str, str],
    results: Results,
) -> None:
    out = [
        "# durable_async beside the other Python durable SDKs",
        "",
        "Written by `python benchmarks/compare.py` (its docstring describes the workloads).",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC; rounds: {args.rounds} "
        f"(fresh process per run, SDK order rotated every round; 10,000-item map: "
        f"{args.mem_rounds}){'; --quick' if args.quick else ''}",
        f"- machine: {machine_line}",
    ]
    for key, line in versions(pythons).items():
        out.append(f"- {SDKS[key].label}: {line}")
    out += ["", *lines, ""]
    out.append("`-X importtime` of the cold-start process, self time per top-level package:")
    out.append("")
    for key, top in importtime.items():
        out.append(f"- {SDKS[key].label}: {top}")
    calls = [f"{label} — {key}: {n}" for (label, key), n in sorted(results.calls.items())]
    out += ["", "Checkpoint calls per measured invocation (zero-latency workloads):", ""]
    out += [f"- {line}" for line in calls]
    if results.errors:
        out += ["", "FAILED:", *[f"- {e}" for e in results.errors]]
    path.write_text("\n".join(out) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
