"""The build wrapper: finding componentize-py, checking the contract, the command it runs."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import _support  # noqa: F401

from plinth_sdk import build
from plinth_sdk.build import BuildError, find_componentize_py, parse_args, plan, world_warnings

WRAPPER = Path(__file__).resolve().parent.parent / "build.py"


def executable(path: Path) -> Path:
    path.write_text("#!/bin/sh\necho componentize-py 0.25.1\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


class FindTest(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.dir = Path(tmp.name)
        (self.dir / "venv" / "bin").mkdir(parents=True)
        (self.dir / "path").mkdir()
        self.python = self.dir / "venv" / "bin" / "python3"

    def test_the_override_wins(self):
        override = executable(self.dir / "mine")
        executable(self.dir / "venv" / "bin" / "componentize-py")
        found = find_componentize_py(
            {"PLINTH_COMPONENTIZE_PY": str(override)}, str(self.python), ""
        )
        self.assertEqual(found, str(override))

    def test_a_bad_override_is_an_error(self):
        with self.assertRaises(BuildError) as caught:
            find_componentize_py(
                {"PLINTH_COMPONENTIZE_PY": str(self.dir / "nope")}, str(self.python), ""
            )
        self.assertIn("PLINTH_COMPONENTIZE_PY", str(caught.exception))

    def test_next_to_the_interpreter_before_path(self):
        beside = executable(self.dir / "venv" / "bin" / "componentize-py")
        executable(self.dir / "path" / "componentize-py")
        found = find_componentize_py({}, str(self.python), str(self.dir / "path"))
        self.assertEqual(found, str(beside))

    def test_then_path(self):
        on_path = executable(self.dir / "path" / "componentize-py")
        self.assertEqual(
            find_componentize_py({}, str(self.python), str(self.dir / "path")), str(on_path)
        )

    def test_none_names_the_install_command(self):
        with self.assertRaises(BuildError) as caught:
            find_componentize_py({}, str(self.python), str(self.dir / "path"))
        message = str(caught.exception)
        self.assertIn("pip install --require-hashes -r", message)
        self.assertIn(str(build.REQUIREMENTS_LOCK), message)
        self.assertTrue(build.REQUIREMENTS_LOCK.is_file())


class PlanTest(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.dir = Path(tmp.name)
        self.plugin = self.dir / "plugin"
        (self.plugin / ".plinth" / "wit").mkdir(parents=True)
        (self.plugin / ".plinth" / "wit" / "world.wit").write_text("package plinth:app;\n")
        (self.plugin / "app.py").write_text("Handler = Lifecycle = None\n")
        self.tool = executable(self.dir / "componentize-py")
        self.env = {
            "PLINTH_WIT_DIR": str(self.plugin / ".plinth" / "wit"),
            "PLINTH_WORLD": "lifecycle-plugin",
            "PLINTH_WASM_OUT": str(self.plugin / ".plinth" / "plugin.wasm"),
            "PLINTH_COMPONENTIZE_PY": str(self.tool),
        }

    def plan(self, *argv: str, **env: str):
        return plan(parse_args(argv or ("app",)), {**self.env, **env}, self.plugin)

    def test_the_command_follows_the_contract(self):
        command = self.plan().command()
        self.assertEqual(
            command,
            [
                str(self.tool),
                "-d",
                self.env["PLINTH_WIT_DIR"],
                "-w",
                "lifecycle-plugin",
                "componentize",
                "-p",
                str(build.SDK_SRC),
                "-p",
                ".",
                "app",
                "-o",
                self.env["PLINTH_WASM_OUT"],
            ],
        )
        self.assertTrue((build.SDK_SRC / "plinth_sdk" / "__init__.py").is_file())

    def test_arguments_stand_in_for_the_environment(self):
        other = self.dir / "wit2"
        other.mkdir()
        (other / "world.wit").write_text("")
        (self.plugin / "pkg").mkdir()
        (self.plugin / "pkg" / "__init__.py").write_text("")
        result = self.plan(
            "--wit-dir", str(other), "--world", "http-plugin", "--out", "x.wasm", "pkg.py"
        )
        self.assertEqual((result.wit_dir, result.world, result.app), (other, "http-plugin", "pkg"))
        self.assertEqual(result.out, self.plugin / "x.wasm")
        self.assertEqual(self.plan(PLINTH_WORLD="").world, "lifecycle-plugin")

    def test_problems_are_explained(self):
        cases = [
            ({"PLINTH_WIT_DIR": ""}, ("app",), "PLINTH_WIT_DIR is not set"),
            ({"PLINTH_WIT_DIR": str(self.dir)}, ("app",), "has no world.wit"),
            ({"PLINTH_WORLD": "server"}, ("app",), "`server` is not a Plinth world"),
            ({"PLINTH_WASM_OUT": ""}, ("app",), "PLINTH_WASM_OUT is not set"),
            ({}, ("missing",), "the app module `missing` is not in"),
            ({}, ("not-a-module",), "is not a Python module name"),
        ]
        for env, argv, message in cases:
            with self.assertRaises(BuildError) as caught:
                self.plan(*argv, **env)
            self.assertIn(message, str(caught.exception))

    def test_world_warnings(self):
        serves = (
            "class P:\n    def on_request(self, r): ...\n"
            "Handler, Lifecycle, IncomingHandler = 1, 2, 3\n"
        )
        self.assertEqual(world_warnings(serves, "http-plugin"), [])
        self.assertIn('world = "http-plugin"', world_warnings(serves, "lifecycle-plugin")[0])
        bare = "Handler = 1\n"
        self.assertEqual(world_warnings(bare, "plugin"), [])
        self.assertIn("defines no `Lifecycle`", world_warnings(bare, "lifecycle-plugin")[0])
        self.assertEqual(len(world_warnings(bare, "http-plugin")), 2)
        self.assertEqual(world_warnings("def (", "plugin"), [])


class WrapperTest(unittest.TestCase):
    """`sdk/python/build.py` runs from anywhere, e.g. a plugin outside the repository."""

    def test_dry_run_from_another_directory(self):
        with tempfile.TemporaryDirectory() as tmp:
            plugin = Path(tmp)
            (plugin / "wit").mkdir()
            (plugin / "wit" / "world.wit").write_text("")
            (plugin / "app.py").write_text("")
            tool = executable(plugin / "componentize-py")
            env = {
                **os.environ,
                "PLINTH_WIT_DIR": "wit",
                "PLINTH_WASM_OUT": "out.wasm",
                "PLINTH_WORLD": "plugin",
                "PLINTH_COMPONENTIZE_PY": str(tool),
            }
            done = subprocess.run(
                [sys.executable, str(WRAPPER), "app", "--dry-run"],
                cwd=plugin,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn(f"-p {build.SDK_SRC} -p . app -o", done.stdout)

    def test_an_error_exits_2_with_the_reason(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLINTH_")}
        done = subprocess.run(
            [sys.executable, str(WRAPPER), "app"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            cwd=tempfile.gettempdir(),
        )
        self.assertEqual(done.returncode, 2)
        self.assertIn("plinth build: error: no WIT directory", done.stderr)


if __name__ == "__main__":
    unittest.main()
