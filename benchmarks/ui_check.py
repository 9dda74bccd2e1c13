"""What a new user sees in MLflow: a finished search opened in a real browser.

Runs ``python -m ras_deap.run --preset smoke`` in a temporary folder (or
reads a finished run's store with ``--workdir``), starts ``mlflow ui`` on it,
opens the links the run printed in headless Chromium (a fresh profile, as a
new user has), checks each page and saves screenshots:

* ``1_runs_table.png``: the printed link. It must open the runs table (not
  MLflow 3's GenAI overview) with the search's individuals, the best first,
  and fitness/accuracy/robustness columns;
* ``2_search_run.png``: the search run: its description names the best;
* ``3_best_run.png``: the best individual's run: tagged, described, a model;
* ``4_search_charts.png``: the search run's charts, in sections;
* ``5_models.png``: the experiment's Models page lists the logged model;
* ``0_experiment_without_link.png``: the experiment's own address, for the
  record (MLflow 3.17 opens it in the GenAI view unless told otherwise).

Then, without the browser: every child run's duration against its
``timing/eval_seconds`` (within 10%), the metric sections, and
``mlflow.pytorch.load_model`` on the best's ``runs:/<id>/model``.

Needs Chromium (``apt-get install -y chromium``) and aiohttp (installed with
MLflow). Exit status 0 when every check passes.

    python benchmarks/ui_check.py --out ui_check
    python benchmarks/ui_check.py --workdir /tmp/smoke --readme docs/mlflow_runs.png
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WIDTH, HEIGHT = 1500, 900


# -- processes -------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


def stop(proc: subprocess.Popen) -> None:
    """End a process group this script started (by its id)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def run_smoke(workdir: Path) -> str:
    cmd = [sys.executable, "-m", "ras_deap.run", "--preset", "smoke", "--run-name", "ui-check",
           "--no-progress"]
    print(f"$ (cd {workdir} && {' '.join(cmd[1:])})", flush=True)
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise SystemExit(f"the smoke run failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


# -- what the run left -----------------------------------------------------------------
def search_of(uri: str) -> tuple[Any, dict[str, Any]]:
    """The latest search run of the store and its summary.json."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string="tags.`ras_deap.role` = 'search' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"], max_results=1)
    if not runs:
        raise SystemExit(f"no finished search run in {uri}")
    run = runs[0]
    summary = json.loads(Path(client.download_artifacts(run.info.run_id, "summary.json",
                                                         tempfile.mkdtemp())).read_text())
    return run, summary


def printed_link(summary: dict[str, Any]) -> str:
    match = re.search(r"then open (\S+)", summary.get("mlflow_ui", ""))
    if not match:
        raise SystemExit(f"the run printed no link: {summary.get('mlflow_ui')!r}")
    return match.group(1)


# -- a minimal DevTools client -----------------------------------------------------------
class Browser:
    """Headless Chromium driven over the DevTools protocol (aiohttp websocket)."""

    def __init__(self, binary: str, profile: Path) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", f"--remote-debugging-port={self.port}",
             f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self._id = 0
        self.ws: Any = None
        self.session: Any = None

    async def connect(self) -> None:
        import aiohttp

        deadline = time.time() + 60
        targets: list[dict[str, Any]] = []
        while time.time() < deadline and not targets:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list",
                                            timeout=5) as response:
                    targets = [t for t in json.load(response) if t.get("type") == "page"]
            except OSError:
                await asyncio.sleep(0.5)
        if not targets:
            raise SystemExit("Chromium did not open its DevTools port")
        self.session = aiohttp.ClientSession()
        self.ws = await self.session.ws_connect(targets[0]["webSocketDebuggerUrl"],
                                                max_msg_size=0)
        await self.send("Emulation.setDeviceMetricsOverride",
                        width=WIDTH, height=HEIGHT, deviceScaleFactor=1, mobile=False)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        await self.ws.send_json({"id": self._id, "method": method, "params": params})
        while True:
            message = await self.ws.receive_json()
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True,
                                 awaitPromise=True)
        return result.get("result", {}).get("value")

    async def open(self, url: str, ready: str, timeout: float = 90) -> bool:
        """Navigate to ``url`` and wait until the JS expression ``ready`` holds."""
        await self.send("Page.navigate", url="about:blank")
        await self.send("Page.navigate", url=url)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if await self.evaluate(f"Boolean({ready})"):
                await asyncio.sleep(1.5)  # let the table and charts finish drawing
                return True
            await asyncio.sleep(0.5)
        return False

    async def tidy(self) -> None:
        """Close the assistant panel (what a user does first; it changes
        nothing else). The shared-view banner stays: closing it leaves the view."""
        await self.evaluate("""(() => {
            const b = document.querySelector('button[aria-label="Close"]');
            if (b) b.click();
        })()""")
        await asyncio.sleep(1.0)

    async def show_more(self) -> None:
        """Unfold a collapsed run description ("Show more")."""
        await self.evaluate("""(() => {
            for (const el of document.querySelectorAll('button, a, span')) {
                if (el.innerText && el.innerText.trim() === 'Show more') { el.click(); return; }
            }
        })()""")
        await asyncio.sleep(1.5)

    async def images_loaded(self, part: str) -> list[bool]:
        """For each image whose address holds ``part``: did it load?"""
        return await self.evaluate(f"""Array.from(document.images)
            .filter(i => i.src.includes({json.dumps(part)}))
            .map(i => i.complete && i.naturalWidth > 0)""") or []

    async def column_headers(self) -> list[str]:
        return await self.evaluate("""Array.from(document.querySelectorAll(
            '[role="columnheader"]')).map(e => e.innerText.trim()).filter(t => t)""") or []

    async def text(self) -> str:
        return await self.evaluate("document.body.innerText") or ""

    async def screenshot(self, path: Path) -> Path:
        data = await self.send("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(data["data"]))
        return path

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
        stop(self.proc)


# -- checks ------------------------------------------------------------------------------
class Report:
    def __init__(self) -> None:
        self.failed: list[str] = []

    def check(self, ok: bool, what: str) -> bool:
        print(f"  [{'ok' if ok else 'FAIL'}] {what}", flush=True)
        if not ok:
            self.failed.append(what)
        return ok


def js_has(*texts: str) -> str:
    return " && ".join(f"document.body.innerText.includes({json.dumps(t)})" for t in texts)


async def browse(binary: str, base: str, link: str, run: Any, best: Any, out: Path,
                 report: Report) -> dict[str, Path]:
    experiment = run.info.experiment_id
    search_id, best_id = run.info.run_id, best.info.run_id
    shots: dict[str, Path] = {}
    profile = Path(tempfile.mkdtemp(prefix="ui-check-profile-"))
    browser = Browser(binary, profile)
    try:
        await browser.connect()
        view = "?workflowType=machine_learning"
        print(f"opening the printed link {link}", flush=True)
        ok = await browser.open(link, js_has(best.info.run_name, "fitness"))
        await browser.tidy()
        text = await browser.text()
        headers = await browser.column_headers()
        shots["runs"] = await browser.screenshot(out / "1_runs_table.png")
        report.check(ok, "the printed link shows the search's individuals")
        report.check("No data available for the selected time range" not in text
                     and "Run Name" in headers, "it is the runs table, not the GenAI overview")
        names = re.findall(r"g\d{3}-i\d{2,}-M-[0-9a-f]+", text)
        report.check(bool(names) and names[0] == best.info.run_name,
                     f"the best individual ({best.info.run_name}) is the first row")
        report.check(len(set(names)) == len(names), "every individual has its own name")
        print(f"  columns: {headers}")
        for column in ("Duration", "Models", "fitness", "accuracy", "robustness", "generation"):
            report.check(column in headers, f"column {column} is shown")

        ok = await browser.open(f"{base}/#/experiments/{experiment}/runs/{search_id}{view}",
                                js_has("Best architecture"))
        await browser.tidy()
        await browser.show_more()
        await asyncio.sleep(2)  # the figures load
        shots["search"] = await browser.screenshot(out / "2_search_run.png")
        report.check(ok, "the search run's description names the best architecture")
        text = await browser.text()
        report.check("load_model" in text and "test accuracy" in text,
                     "it gives the test accuracy and how to load the model")
        loaded = await browser.images_loaded("get-artifact")
        report.check(len(loaded) == 3 and all(loaded),
                     f"its figures are shown ({sum(loaded)} of {len(loaded)} images loaded)")
        href = await browser.evaluate(f"""Array.from(document.querySelectorAll('a'))
            .some(a => (a.getAttribute('href') || '').includes({json.dumps(best_id)}))""")
        report.check(bool(href), "it links to the best individual's run")

        ok = await browser.open(f"{base}/#/experiments/{experiment}/runs/{best_id}{view}",
                                js_has("best individual", "ras_deap.best"))
        await browser.tidy()
        await browser.show_more()
        shots["best"] = await browser.screenshot(out / "3_best_run.png")
        report.check(ok, "the best run is tagged ras_deap.best and described")
        text = await browser.text()
        report.check("final/test_accuracy" in text, "it holds the final/ metrics")
        linked = await browser.evaluate("""Array.from(document.querySelectorAll('a'))
            .some(a => /models\\/m-[0-9a-f]+/.test(a.getAttribute('href') || ''))""")
        report.check(bool(linked), "its page links to the logged model")

        ok = await browser.open(
            f"{base}/#/experiments/{experiment}/runs/{search_id}/model-metrics{view}",
            js_has("population", "architecture", "spectrum", "timing"))
        await browser.tidy()
        shots["charts"] = await browser.screenshot(out / "4_search_charts.png")
        report.check(ok, "the search run's charts are in sections population/, architecture/, "
                         "spectrum/, timing/")

        ok = await browser.open(f"{base}/#/experiments/{experiment}/models{view}",
                                js_has("model"))
        await browser.tidy()
        shots["models"] = await browser.screenshot(out / "5_models.png")
        report.check(ok, "the experiment's Models page lists the model")

        await browser.open(f"{base}/#/experiments/{experiment}", "document.body.innerText.length"
                           " > 200")
        shots["plain"] = await browser.screenshot(out / "0_experiment_without_link.png")
    finally:
        await browser.close()
        shutil.rmtree(profile, ignore_errors=True)
    return shots


def store_checks(uri: str, run: Any, report: Report) -> Any:
    """Durations, sections and the model, read with the MLflow client."""
    import mlflow
    import numpy as np
    import torch
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    children = client.search_runs([run.info.experiment_id],
                                  f"tags.`mlflow.parentRunId` = '{run.info.run_id}'",
                                  max_results=10_000)
    ratios = []
    for child in children:
        seconds = child.data.metrics.get("timing/eval_seconds")
        if seconds:
            ratios.append((child.info.end_time - child.info.start_time) / 1000 / seconds)
    report.check(bool(ratios) and all(abs(r - 1) <= 0.10 for r in ratios),
                 f"{len(ratios)} child durations match timing/eval_seconds within 10% "
                 f"(ratios {min(ratios, default=0):.3f}..{max(ratios, default=0):.3f})")
    sections = {k.split("/", 1)[0] for k in run.data.metrics if "/" in k}
    report.check({"population", "architecture", "spectrum", "timing"} <= sections,
                 f"search run metric sections: {sorted(sections)}")
    child_sections = {k.split("/", 1)[0] for c in children for k in c.data.metrics if "/" in k}
    report.check({"robustness", "spectrum", "timing", "diag", "training"} <= child_sections,
                 f"child metric sections: {sorted(child_sections)}")
    best = [c for c in children if c.data.tags.get("ras_deap.best") == "true"]
    report.check(len(best) == 1 and run.data.tags.get("best_run_id") == best[0].info.run_id,
                 "exactly one child is tagged ras_deap.best=true, named by best_run_id")
    if not best:
        raise SystemExit("no best run: cannot go on")
    mlflow.set_tracking_uri(uri)
    net = mlflow.pytorch.load_model(f"runs:/{best[0].info.run_id}/model")
    info = mlflow.models.get_model_info(f"runs:/{best[0].info.run_id}/model")
    shape = [d if d > 0 else 3 for d in info.signature.inputs.inputs[0].shape]
    with torch.no_grad():
        logits = net(torch.from_numpy(np.random.default_rng(0).random(shape, dtype=np.float32)))
    report.check(isinstance(net, torch.nn.Module) and logits.shape[0] == shape[0],
                 f"mlflow.pytorch.load_model('runs:/{best[0].info.run_id}/model') is a "
                 f"{type(net).__name__} giving logits {tuple(logits.shape)}")
    return best[0]


def small_png(src: Path, dst: Path, width: int = 1100) -> Path:
    """A small copy for the README (palette PNG)."""
    from PIL import Image

    image = Image.open(src).convert("RGB")
    image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
    dst.parent.mkdir(parents=True, exist_ok=True)
    image.quantize(colors=96, method=Image.Quantize.MEDIANCUT).save(dst, optimize=True)
    return dst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="folder of a finished run (holding "
                        "mlruns/); default: run --preset smoke in a temporary folder")
    parser.add_argument("--out", type=Path, default=Path("ui_check"),
                        help="where the screenshots go (default ./ui_check)")
    parser.add_argument("--readme", type=Path, metavar="PNG",
                        help="also save a small copy of the runs-table screenshot here")
    parser.add_argument("--chromium", help="browser binary (default: found on PATH)")
    args = parser.parse_args()
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"

    binary = args.chromium or next((b for b in map(shutil.which, CHROMIUM_NAMES) if b), None)
    if binary is None:
        raise SystemExit("no Chromium found: install it (apt-get update && apt-get install -y "
                         "chromium) or pass --chromium")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ui-check-"))
    workdir = workdir.resolve()
    if args.workdir is None:
        printed = run_smoke(workdir)
        (out / "run_output.txt").write_text(printed)
    uri = f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}"
    run, summary = search_of(uri)
    link = printed_link(summary)
    report = Report()
    print("store checks:", flush=True)
    best = store_checks(uri, run, report)

    port = free_port()
    ui = subprocess.Popen([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
                           "--host", "127.0.0.1", "--port", str(port)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/", timeout=180)
        link = re.sub(r"^https?://[^/]+", base, link)
        print("browser checks:", flush=True)
        shots = asyncio.run(browse(binary, base, link, run, best, out, report))
    finally:
        stop(ui)
    if args.readme:
        print(f"README screenshot: {small_png(shots['runs'], args.readme)}")
    print(f"screenshots in {out}")
    if report.failed:
        print(f"{len(report.failed)} check(s) failed")
        return 1
    print("every check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
