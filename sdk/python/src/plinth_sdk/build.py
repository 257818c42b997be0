"""Builds a Python plugin into a component: the `[build]` command of `plinth plugin build`.

A Python plugin's plinth.toml names this module's wrapper as its build command:

    [build]
    command = ["python3", "../../../sdk/python/build.py", "app"]
    world = "lifecycle-plugin"      # or plugin | http-plugin

`plinth plugin build DIR` writes the plugin's WIT to `DIR/.plinth/wit/`, then runs the command
in DIR with these environment variables, which this module turns into a componentize-py run:

| variable               | meaning                                                      |
|------------------------|--------------------------------------------------------------|
| `PLINTH_WIT_DIR`       | the WIT directory (`world.wit` of package `plinth:app`)      |
| `PLINTH_WORLD`         | `plugin`, `lifecycle-plugin` or `http-plugin`                |
| `PLINTH_WASM_OUT`      | where to write the component                                 |
| `PLINTH_CAPABILITIES`  | the granted capabilities, e.g. `log,kv` (shown, not needed)  |
| `PLINTH_COMPONENTIZE_PY` | optional: the componentize-py program to run               |

    componentize-py -d $PLINTH_WIT_DIR -w $PLINTH_WORLD \\
        componentize -p <sdk/python/src> -p . <app> -o $PLINTH_WASM_OUT

Run by hand (`python3 sdk/python/build.py --help`), `--wit-dir`, `--world` and `--out` stand in
for the variables; `--dry-run` prints the command without running it.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BuildError", "BuildPlan", "find_componentize_py", "main", "plan"]

#: The componentize-py version this SDK is tested with (sdk/python/requirements.lock).
PINNED_VERSION = "0.25.1"
#: The worlds of the generated `plinth:app` package.
WORLDS = ("plugin", "lifecycle-plugin", "http-plugin")
#: The world built when neither `--world` nor `PLINTH_WORLD` names one.
DEFAULT_WORLD = "lifecycle-plugin"
#: `sdk/python/src`: the directory holding `plinth_sdk`, bundled into every component.
SDK_SRC = Path(__file__).resolve().parent.parent
#: `sdk/python/requirements.lock`, named in the install hint.
REQUIREMENTS_LOCK = SDK_SRC.parent / "requirements.lock"
#: Where the install hint puts the build tools: outside any plugin directory.
VENV_HINT = SDK_SRC.parent / ".venv"


class BuildError(Exception):
    """A problem that stops the build, explained for the plugin author."""


@dataclass(frozen=True)
class BuildPlan:
    """Everything a build runs with, resolved from arguments and environment."""

    #: The componentize-py program.
    componentize_py: str
    #: The WIT directory.
    wit_dir: Path
    #: The world targeted.
    world: str
    #: The app module, e.g. `app`.
    app: str
    #: The component written.
    out: Path
    #: Extra directories on the Python path (after the SDK and the plugin directory).
    paths: tuple[Path, ...]

    def command(self) -> list[str]:
        """The componentize-py command line."""
        python_path: list[str] = []
        for directory in (SDK_SRC, Path("."), *self.paths):
            python_path += ["-p", str(directory)]
        return [
            self.componentize_py,
            "-d",
            str(self.wit_dir),
            "-w",
            self.world,
            "componentize",
            *python_path,
            self.app,
            "-o",
            str(self.out),
        ]


def find_componentize_py(
    env: Mapping[str, str], executable: str = sys.executable, search_path: str | None = None
) -> str:
    """The componentize-py program: `$PLINTH_COMPONENTIZE_PY`, else the one next to the running
    interpreter (a venv's `bin/`), else the one on `PATH`.

    Raises:
        BuildError: naming the install command when there is none.
    """
    override = env.get("PLINTH_COMPONENTIZE_PY", "").strip()
    if override:
        found = shutil.which(
            override, path=search_path if search_path is not None else env.get("PATH")
        )
        if found is None and Path(override).is_file():
            found = override
        if found is None:
            raise BuildError(
                f"PLINTH_COMPONENTIZE_PY is set to `{override}`, which is not an executable program"
            )
        return found
    names = ("componentize-py.exe", "componentize-py") if os.name == "nt" else ("componentize-py",)
    # The interpreter's own directory, unresolved: a venv's python is a symlink out of it.
    bin_dir = Path(executable).parent
    for name in names:
        candidate = bin_dir / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(
        "componentize-py", path=search_path if search_path is not None else env.get("PATH")
    )
    if found is not None:
        return found
    raise BuildError(
        "componentize-py was not found (looked at $PLINTH_COMPONENTIZE_PY, next to "
        f"{executable}, and on PATH). Install the pinned build tools into a virtual "
        "environment:\n"
        f"    python3 -m venv {VENV_HINT}\n"
        f"    {VENV_HINT}/bin/pip install --require-hashes -r {REQUIREMENTS_LOCK}\n"
        f"then put {VENV_HINT}/bin first on PATH (or set PLINTH_COMPONENTIZE_PY to "
        f"{VENV_HINT}/bin/componentize-py) and build again"
    )


def plan(args: argparse.Namespace, env: Mapping[str, str], cwd: Path) -> BuildPlan:
    """Checks the arguments and environment and resolves what to run.

    Raises:
        BuildError: explaining the first problem found.
    """
    wit_value = args.wit_dir or env.get("PLINTH_WIT_DIR", "")
    if not wit_value:
        raise BuildError(
            "no WIT directory: PLINTH_WIT_DIR is not set. Build with `plinth plugin build DIR`, "
            "which sets it, or pass --wit-dir with a directory written by `plinth plugin wit`"
        )
    wit_dir = (cwd / wit_value).resolve()
    if not (wit_dir / "world.wit").is_file():
        raise BuildError(
            f"{wit_dir} has no world.wit: it is not a directory `plinth plugin wit` wrote"
        )
    world = args.world or env.get("PLINTH_WORLD", "") or DEFAULT_WORLD
    if world not in WORLDS:
        raise BuildError(f"`{world}` is not a Plinth world; use one of {', '.join(WORLDS)}")
    out_value = args.out or env.get("PLINTH_WASM_OUT", "")
    if not out_value:
        raise BuildError(
            "no output path: PLINTH_WASM_OUT is not set. Build with `plinth plugin build DIR`, "
            "which sets it, or pass --out"
        )
    out = (cwd / out_value).resolve()
    app = args.app[:-3] if args.app.endswith(".py") else args.app
    app = app.replace("/", ".").strip(".")
    if not app or not all(part.isidentifier() for part in app.split(".")):
        raise BuildError(f"`{args.app}` is not a Python module name such as `app`")
    if app_source(cwd, app) is None:
        raise BuildError(
            f"the app module `{app}` is not in {cwd}: expected {app.replace('.', '/')}.py "
            f"or {app.replace('.', '/')}/__init__.py"
        )
    paths = tuple((cwd / p).resolve() for p in args.path)
    for directory in paths:
        if not directory.is_dir():
            raise BuildError(f"--path {directory} is not a directory")
    return BuildPlan(
        componentize_py=find_componentize_py(env),
        wit_dir=wit_dir,
        world=world,
        app=app,
        out=out,
        paths=paths,
    )


def app_source(cwd: Path, app: str) -> Path | None:
    """The file of module `app` under `cwd`, or None."""
    base = cwd.joinpath(*app.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def world_warnings(source: str, world: str) -> list[str]:
    """Warnings about the app's source against the world it is built for."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []  # componentize-py reports it, with the line
    defines = {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    warnings = []
    if "on_request" in defines and world != "http-plugin":
        warnings.append(
            f"the app defines on_request, but the world is `{world}`: "
            'set [build] world = "http-plugin" in plinth.toml to serve HTTP'
        )
    if world != "plugin" and "Lifecycle" not in names:
        warnings.append(
            f"the world `{world}` exports lifecycle hooks, but the app module defines no "
            "`Lifecycle`: write `Handler, Lifecycle, IncomingHandler = plinth_sdk.export(MyPlugin)`"
        )
    if world == "http-plugin" and "IncomingHandler" not in names:
        warnings.append(
            "the world `http-plugin` exports wasi:http/incoming-handler, but the app module "
            "defines no `IncomingHandler`"
        )
    return warnings


def tool_version(program: str) -> str | None:
    """What `program --version` prints (e.g. `componentize-py 0.25.1`), or None."""
    try:
        done = subprocess.run(
            [program, "--version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command line of the build wrapper."""
    parser = argparse.ArgumentParser(
        prog="build.py",
        description="Build a Python Plinth plugin into a WebAssembly component with "
        "componentize-py. Normally run by `plinth plugin build`, which sets PLINTH_WIT_DIR, "
        "PLINTH_WORLD and PLINTH_WASM_OUT.",
    )
    parser.add_argument("app", help="the app module that exports the plugin, e.g. app")
    parser.add_argument("--wit-dir", help="the WIT directory (default: $PLINTH_WIT_DIR)")
    parser.add_argument("--world", help=f"the world (default: $PLINTH_WORLD, else {DEFAULT_WORLD})")
    parser.add_argument("--out", help="the component to write (default: $PLINTH_WASM_OUT)")
    parser.add_argument(
        "--path",
        action="append",
        default=[],
        metavar="DIR",
        help="another directory of Python modules to bundle (e.g. vendored pure-Python "
        "packages); repeatable",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the command, run nothing")
    return parser.parse_args(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the build; returns the process exit code."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    cwd = Path.cwd()
    try:
        build = plan(args, os.environ, cwd)
    except BuildError as err:
        print(f"plinth build: error: {err}", file=sys.stderr)
        return 2
    command = build.command()
    if args.dry_run:
        print(" ".join(command))
        return 0

    source = app_source(cwd, build.app)
    if source is not None:
        for warning in world_warnings(
            source.read_text(encoding="utf-8", errors="replace"), build.world
        ):
            print(f"plinth build: warning: {warning}", file=sys.stderr)
    version = tool_version(build.componentize_py)
    if version is not None and PINNED_VERSION not in version.split():
        print(
            f"plinth build: warning: {build.componentize_py} is `{version}`; this SDK is tested "
            f"with componentize-py {PINNED_VERSION} (sdk/python/requirements.lock)",
            file=sys.stderr,
        )
    capabilities = os.environ.get("PLINTH_CAPABILITIES", "")
    print(
        f"plinth build: {build.app} → {build.out} (world {build.world}"
        + (f", capabilities {capabilities}" if capabilities else "")
        + ")",
        file=sys.stderr,
    )
    build.out.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        done = subprocess.run(command, check=False)
    except OSError as err:
        print(f"plinth build: error: cannot run {build.componentize_py}: {err}", file=sys.stderr)
        return 2
    if done.returncode != 0:
        print(
            f"plinth build: error: componentize-py failed (exit {done.returncode}). It imports "
            "the app module at build time: a traceback above points at the app's top-level "
            "code; a capability must not be called before a hook runs",
            file=sys.stderr,
        )
        return done.returncode
    elapsed = time.monotonic() - started
    size = build.out.stat().st_size
    print(
        f"plinth build: wrote {build.out} ({size / 1_000_000:.1f} MB) in {elapsed:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
