"""The built wheel, installed into a fresh virtualenv outside the repository, runs a node and
the demo game: the node of examples/hello.toml, the demo node, its clients and its page.

``python -m build`` makes the sdist and then the wheel from it, with this environment's
build and setuptools (``--no-isolation``: nothing to download). The virtualenv gets the
wheel alone (``--no-deps``); the wheel's dependencies come from this environment's
site-packages, which a ``.pth`` file puts on the virtualenv's path after its own (only as a
directory: the editable meshnet installed there stays out), so every import of meshnet and
demo_game below is the wheel's.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

from demo_game.launcher import free_port, node_config, stop_node, wait_listening

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
CBOR_X_BUNDLE = REPO / "demo_game" / "web" / "node_modules" / "cbor-x" / "dist" / "index.js"
BROWSER_SCRIPT = REPO / "tests" / "demo" / "browser_demo.cjs"
CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT = 120
"""Seconds any one step may take before the test gives up on it (a hang guard)."""

pytestmark = pytest.mark.skipif(
    not CBOR_X_BUNDLE.is_file(), reason="the page's npm packages are not installed (make web)"
)


@dataclass(frozen=True)
class Installed:
    wheel: Path
    build_output: str
    venv: Path
    home: Path
    """A scratch directory outside the repository: the working directory of every run."""

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    def run(self, *args: str, **kwargs) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.python, *args],
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            **kwargs,
        )


@dataclass(frozen=True)
class DemoNode:
    ports: dict[str, int]
    config: Path


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    scratch = tmp_path_factory.mktemp("wheel")
    build = _check(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(scratch / "dist"), "."],
        cwd=REPO,
        # setuptools warns that it cannot byte-compile under this; the wheel is the same
        env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    )
    [wheel] = (scratch / "dist").glob("*.whl")
    venv = scratch / "venv"
    _check([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = str(venv / "bin" / "python")
    _check(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            str(wheel),
        ]
    )
    site = _check([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
    (Path(site.strip()) / "project-dependencies.pth").write_text(
        sysconfig.get_path("purelib") + "\n"
    )
    home = scratch / "home"
    home.mkdir()
    return Installed(wheel, build, venv, home)


@pytest.fixture(scope="module")
def demo_node(installed) -> Iterator[DemoNode]:
    """The installed demo game on one node, every listener on a free port."""
    demo = write_demo_config(installed.home)
    with open(installed.home / "demo-node.log", "w") as log:
        node = subprocess.Popen(
            [installed.python, "-m", "meshnet", "node", str(demo.config)],
            cwd=installed.home,
            stderr=log,
        )
        try:
            wait_listening(node, HOST, demo.ports["hub"])
            wait_listening(node, HOST, demo.ports["web"])
            yield demo
        finally:
            assert stop_node(node) == 0, (installed.home / "demo-node.log").read_text()


def write_demo_config(directory: Path, log_level: str = "INFO") -> DemoNode:
    """``directory/demo.toml``: the demo game with every listener on a free port (as
    demo_game/settings.py describes), its accounts in ``directory``, a cheap scrypt."""
    ports = {name: free_port() for name in ("hub", "ws", "login", "msgserver", "web")}
    settings = {
        "hub": {"address": HOST, "port": ports["hub"], "ws_port": ports["ws"]},
        "login": {"address": HOST, "port": ports["login"]},
        "msgserver": {"address": HOST, "port": ports["msgserver"], "servername": "demo"},
        "web": {"address": HOST, "port": ports["web"]},
        "accounts": {"path": str(directory / "accounts.sqlite3"), "scrypt_n": 2**8},
    }
    config = directory / "demo.toml"
    config.write_text(node_config(settings, log_level))
    return DemoNode(ports, config)


def test_the_build_prints_no_warning(installed):
    warnings = [line for line in installed.build_output.splitlines() if "warning" in line.lower()]
    assert warnings == []


def test_the_wheel_holds_the_typing_marker_the_demo_config_and_the_page(installed):
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    assert {
        "meshnet/py.typed",
        "demo_game/node.toml",
        "demo_game/workers.toml",
        *(f"demo_game/cluster/{name}.toml" for name in ("front", "game", "accounts")),
        "demo_game/web/index.html",
        "demo_game/web/node_modules/cbor-x/dist/index.js",
        "demo_game/web/node_modules/cbor-x/LICENSE",
        "meshnet-0.1.0.dist-info/licenses/LICENSE",
    } <= names
    assert not [name for name in names if name.startswith(("tests/", "build_backend/"))]


def test_the_wheel_declares_its_license_and_python_versions(installed):
    info = zipfile.ZipFile(installed.wheel).read("meshnet-0.1.0.dist-info/METADATA").decode()
    assert "License-Expression: MIT" in info.splitlines()
    assert "Classifier: Programming Language :: Python :: 3.11" in info.splitlines()
    assert "Requires-Python: >=3.11" in info.splitlines()


def test_meshnet_and_demo_game_are_imported_from_the_wheel(installed):
    paths = installed.run(
        "-c", "import meshnet, demo_game; print(meshnet.__file__, demo_game.__file__)"
    ).stdout.split()
    assert len(paths) == 2 and all(Path(path).is_relative_to(installed.venv) for path in paths)


def test_the_installed_command_knows_its_version_and_subcommands(installed):
    meshnet = str(installed.venv / "bin" / "meshnet")
    version = subprocess.run([meshnet, "--version"], capture_output=True, text=True)
    assert version.stdout == f"meshnet {metadata.version('meshnet')}\n"
    usage = subprocess.run([meshnet, "--help"], capture_output=True, text=True).stdout
    assert usage.startswith("usage: meshnet ")
    assert "login-client" in usage and "proto" in usage


def test_the_installed_meshnet_runs_the_hello_node_until_ctrl_c(installed):
    node = subprocess.Popen(
        [installed.python, "-m", "meshnet", "node", str(REPO / "examples" / "hello.toml")],
        cwd=installed.home,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = []
    for line in node.stderr:
        seen.append(line)
        if "Hello, Alice!" in line:
            break
    else:
        pytest.fail("the node never greeted Alice:\n" + "".join(seen))
    node.send_signal(signal.SIGINT)
    _, rest = node.communicate(timeout=TIMEOUT)
    assert node.returncode == 0
    assert "main says goodbye" in rest and "Traceback" not in rest


def test_the_packaged_demo_config_is_a_valid_node_config(installed):
    probe = (
        "from demo_game.cli import NODE_CONFIG; from meshnet.config import load_config; "
        "print(load_config(NODE_CONFIG).start_service)"
    )
    assert installed.run("-c", probe).stdout == "demo_game.main:Main\n"


@pytest.mark.parametrize("transport", [[], ["--ws"], ["--secure"]], ids=["tcp", "ws", "secure"])
def test_the_installed_client_plays_against_the_installed_demo_node(
    installed, demo_node, transport
):
    ports = demo_node.ports
    port = {"--ws": ports["ws"], "--secure": ports["login"]}.get(
        transport[0] if transport else "", ports["hub"]
    )
    done = installed.run(
        "-m",
        "demo_game",
        "client",
        "--port",
        str(port),
        "--msg-port",
        str(ports["msgserver"]),
        "--user",
        f"wheel-{transport[0][2:] if transport else 'tcp'}",
        "--password",
        "secret",
        *transport,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines()[-1] == "ping: ok {}"


def test_the_installed_demo_node_serves_the_page_and_cbor_x(demo_node):
    web = f"http://{HOST}:{demo_node.ports['web']}"
    with urllib.request.urlopen(f"{web}/", timeout=TIMEOUT) as page:
        assert b'<script src="/cbor-x/dist/index.js">' in page.read()
    with urllib.request.urlopen(f"{web}/cbor-x/dist/index.js", timeout=TIMEOUT) as script:
        assert script.read() == CBOR_X_BUNDLE.read_bytes()


@pytest.mark.skipif(
    not (CHROMIUM.exists() and shutil.which("node")),
    reason="needs Debian's chromium and node (make browser installs chromium)",
)
def test_the_installed_page_signs_up_logs_in_and_pings_in_chromium(demo_node):
    done = subprocess.run(
        ["node", str(BROWSER_SCRIPT), f"http://{HOST}:{demo_node.ports['web']}/", "page", "pw"],
        env=dict(os.environ, NODE_PATH=str(CBOR_X_BUNDLE.parents[2]), CHROMIUM=str(CHROMIUM)),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    log = done.stdout.splitlines()
    assert "ping: ok {}" in log
    assert log[-1].startswith("wallet: error gold and the subgame come with the demo on several")


def test_the_installed_demo_command_starts_a_node_plays_once_and_stops_on_ctrl_c(
    installed, tmp_path
):
    config = write_demo_config(tmp_path, log_level="WARNING").config
    demo = subprocess.Popen(
        [installed.python, "-m", "demo_game", "demo", "--config", str(config)],
        cwd=installed.home,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = []
    for line in demo.stdout:
        seen.append(line)
        if "-m demo_game robots" in line:  # the last line of what it says once running
            break
    else:
        pytest.fail("the demo never said it was running:\n" + "".join(seen))
    demo.send_signal(signal.SIGINT)
    _, err = demo.communicate(timeout=TIMEOUT)
    assert demo.returncode == 0, err
    assert "ping: ok {}\n" in seen
    assert "The demo node is running; Ctrl-C stops it. It listens on:\n" in seen
    assert f"Try: {installed.python} -m demo_game client" in "".join(seen)  # its own python


def _check(command: list[str], **kwargs) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, **kwargs)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def test_a_wheel_or_sdist_is_refused_without_the_pages_bundle(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location(
        "meshnet_build", REPO / "build_backend" / "meshnet_build.py"
    )
    backend = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(backend)
    monkeypatch.chdir(tmp_path)  # a source tree where `make web` has not run
    for build in (backend.build_wheel, backend.build_sdist):
        with pytest.raises(backend.MissingWebAssets, match="run `make web`"):
            build(str(tmp_path))
