"""The command line fails cleanly: one line ``error: …`` and exit status 2 for every user error,
checked before work starts; the traceback with ``--debug``; every option of every command and
example script documented.

The few subprocess runs (the real ``python -m gan_equiv`` entry point) start together and are
collected once; everything else calls :func:`gan_equiv.cli.main` in-process.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, load_script

from gan_equiv import cli
from gan_equiv.cli_checks import (
    DEBUG_ENV,
    USER_ERROR_STATUS,
    UnusablePathError,
    debug_requested,
    user_error_message,
    utf8_text_file,
    writable_file,
    writable_folder,
)

SUBPROCESS_TIMEOUT_S = 180
#: name → (arguments, extra environment); run as ``python -m gan_equiv ARGS`` in a fresh folder.
CASES: dict[str, tuple[list[str], dict[str, str]]] = {
    "non_utf8_toml": (["train", "--config", "bad.toml"], {}),
    "missing_data": (["train", "--data_path", "missing/oracle.pkl", "--out_dir", "out"], {}),
    "horizon_0": (["train", "--horizon", "0"], {}),
    "bad_key": (["train", "--hidden_dimm", "8"], {}),
    "debug": (["--debug", "train", "--horizon", "0"], {}),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    """Start every case at once (each pays the torch import), then wait for all of them; each
    result's ``cwd`` attribute is the folder it ran in."""
    procs, folders = {}, {}
    for name, (args, extra_env) in CASES.items():
        folder = tmp_path_factory.mktemp(name)
        (folder / "bad.toml").write_bytes(b'name = "x"\n# caf\xe9 in Latin-1\n')
        env = {k: v for k, v in os.environ.items() if k != DEBUG_ENV}
        env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), **extra_env)
        folders[name] = folder
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "gan_equiv", *args],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=SUBPROCESS_TIMEOUT_S)
        out[name] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
        out[name].cwd = folders[name]
    return out


def one_error_line(result: subprocess.CompletedProcess[str] | str) -> str:
    """The single ``error: …`` line of stderr (asserting there is exactly one line and no traceback)."""
    stderr = result if isinstance(result, str) else result.stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and "Traceback" not in stderr
    return lines[0]


# --- the real entry point -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("non_utf8_toml", ["--config 'bad.toml'", "not UTF-8", "line 2", "save the file as UTF-8"]),
        ("missing_data", ["data_path 'missing/oracle.pkl' does not exist", "set --data_path"]),
        ("horizon_0", ["horizon", "got 0", "positive"]),
        ("bad_key", ["unknown config key 'hidden_dimm'", "valid keys"]),
    ],
)
def test_user_errors_print_one_line_and_exit_2(runs, case: str, expected: list[str]) -> None:
    result = runs[case]
    assert result.returncode == USER_ERROR_STATUS, result.stderr
    line = one_error_line(result)
    for text in expected:
        assert text in line


def test_missing_data_file_is_refused_before_any_work(runs) -> None:
    """Refused before anything was built: nothing printed, the run folder not even created."""
    assert runs["missing_data"].stdout == ""
    assert not (runs["missing_data"].cwd / "out").exists()


def test_debug_shows_the_traceback(runs) -> None:
    result = runs["debug"]
    assert result.returncode not in (0, USER_ERROR_STATUS)
    assert "Traceback (most recent call last)" in result.stderr
    assert "ConfigError" in result.stderr and "horizon" in result.stderr


# --- in-process: the mapping of errors to exit 2 ------------------------------------------------------
@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,timestamp\n1,10,1\n1,11,2\n2,10,3\n")
    return path


def test_evaluate_value_error_exits_2(log_file: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    """``evaluate --ks 0 -5``: the ValueError of the configuration becomes one line and status 2."""
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    args = ["evaluate", "--data", str(log_file), "--format", "csv", "--run-dir", str(tmp_path / "r")]
    assert cli.main([*args, "--ks", "0", "-5"]) == USER_ERROR_STATUS
    assert "ks" in one_error_line(capsys.readouterr().err)


def test_handler_exit_message_becomes_one_error_line(
    log_file: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    """A handler that exits with a message (``evaluate --threads 0``) is a user error too."""
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    args = ["evaluate", "--data", str(log_file), "--format", "csv", "--run-dir", str(tmp_path / "r")]
    assert cli.main([*args, "--threads", "0"]) == USER_ERROR_STATUS
    assert "--threads" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["train", "--preset", "nope"], "invalid choice: 'nope'"),
        (["frobnicate"], "see 'python -m gan_equiv --help'"),
        (["verify", "--n-items", "1"], "n_items must be at least 2"),
        (["verify", "--horizon", "0"], "horizon must be a positive integer"),
        (["verify", "--bogus"], "unrecognized arguments: --bogus"),
        (["train", "--threads", "0", "--out_dir", "{tmp}/o"], "--threads must be at least 1"),
        (["train", "--resume", "nowhere.pt", "--out_dir", "{tmp}/o"], "--resume 'nowhere.pt' does not exist"),
        (
            ["train", "--resume", "--out_dir", "{tmp}/afile_dir"],
            "--resume: no intact checkpoint in '{tmp}/afile_dir'",
        ),
        (["train", "--data_path", "{tmp}", "--out_dir", "{tmp}/o"], "is a folder, not a file"),
        (["train", "--out_dir", "{tmp}/afile/sub"], "the run folder (out_dir)"),
        (
            ["evaluate", "--data", "{tmp}/none.csv", "--run-dir", "{tmp}/r"],
            "--data '{tmp}/none.csv' does not exist",
        ),
        (
            ["evaluate", "--data", "{tmp}/afile", "--out", "{tmp}", "--run-dir", "{tmp}/r"],
            "--out '{tmp}' is a folder",
        ),
        (
            ["recommend", "--checkpoint", "{tmp}/m.pt", "--user-history", "1"],
            "--checkpoint '{tmp}/m.pt' does not",
        ),
    ],
)
def test_user_errors_in_process(argv: list[str], expected: str, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    (tmp_path / "afile").write_text("user_id,item_id,timestamp\n")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert cli.main(argv) == USER_ERROR_STATUS
    assert expected.replace("{tmp}", str(tmp_path)) in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "o").exists()  # refused before the run folder was made
    assert not (tmp_path / "afile_dir" / "metrics.jsonl").exists()  # and before any training


@pytest.mark.parametrize("command", ["verify", "train", "evaluate", "recommend"])
def test_every_command_has_help(command: str, capsys) -> None:
    """``python -m gan_equiv COMMAND --help`` prints the usage and exits 0 (recommend is registered)."""
    with pytest.raises(SystemExit) as done:
        cli.main([command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m gan_equiv {command}")
    if command == "recommend":
        for option in ("--checkpoint", "--user-history", "--k", "--exclude"):
            assert option in out


def test_debug_flag_after_the_command_and_environment(monkeypatch) -> None:
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    with pytest.raises(ValueError, match="horizon"):
        cli.main(["train", "--debug", "--horizon", "0"])
    monkeypatch.setenv(DEBUG_ENV, "1")
    with pytest.raises(ValueError, match="n_items must be at least 2"):
        cli.main(["verify", "--n-items", "1"])
    assert debug_requested([], {DEBUG_ENV: "true"}) and not debug_requested([], {DEBUG_ENV: "0"})
    assert not debug_requested(["train", "--", "--debug"], {})


def test_internal_errors_keep_their_traceback(monkeypatch) -> None:
    """An exception that is not a user error propagates unchanged (Python prints the traceback)."""
    monkeypatch.delenv(DEBUG_ENV, raising=False)

    def broken(args: argparse.Namespace) -> int:
        raise RuntimeError("internal bug")

    monkeypatch.setattr(cli, "_verify", broken)
    with pytest.raises(RuntimeError, match="internal bug"):
        cli.main(["verify"])


def test_error_classification() -> None:
    """ValueError family and OSError on a user's file → one line; OSError on a file of the package,
    or any other exception → None (traceback). Multi-line messages are joined into one line."""
    assert user_error_message(ValueError("a\n  b")) == "a; b"
    try:
        b"ok \xff".decode("utf-8")
    except UnicodeDecodeError as err:
        assert "save it as UTF-8" in user_error_message(err)
    message = user_error_message(PermissionError(13, "Permission denied", "/data/log.csv"))
    assert message == "Permission denied: '/data/log.csv'; check its permissions or choose another path"
    assert user_error_message(IsADirectoryError(21, "Is a directory", "x")).endswith(
        "give a file, not a folder"
    )
    assert user_error_message(FileNotFoundError(2, "No such file", str(Path(cli.__file__)))) is None
    assert user_error_message(OSError("no file name")) is None
    assert user_error_message(RuntimeError("bug")) is None and user_error_message(KeyError("k")) is None
    assert user_error_message(SystemExit("error: refused")) == "refused"
    assert user_error_message(SystemExit(0)) is None


# --- the path checks -------------------------------------------------------------------------------
def test_path_checks(tmp_path: Path) -> None:
    """A missing folder is created and left empty; a file where a folder should be, a folder where
    a file should be and a non-UTF-8 file are refused naming the path and the fix."""
    target = tmp_path / "a" / "b"
    assert writable_folder(target, option="--out_dir") == target
    assert target.is_dir() and list(target.iterdir()) == []
    (tmp_path / "f").write_text("x")
    with pytest.raises(UnusablePathError, match=r"--out_dir '.*f' is a file, not a folder; choose"):
        writable_folder(tmp_path / "f", option="--out_dir")
    with pytest.raises(UnusablePathError, match=r"cannot be created .*; choose a folder you can write"):
        writable_folder(tmp_path / "f" / "sub", option="--out_dir")
    with pytest.raises(UnusablePathError, match="is a folder; give a file name inside it"):
        writable_file(tmp_path, option="--out")
    assert writable_file(tmp_path / "new" / "r.csv", option="--out").parent.is_dir()
    (tmp_path / "t.toml").write_bytes(b"a = 1\nb = 2\n# \xe9\n")
    with pytest.raises(UnusablePathError, match=r"not UTF-8 text \(byte 0xe9 at line 3, byte offset 14\)"):
        utf8_text_file(tmp_path / "t.toml", option="--config")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_folder_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(UnusablePathError, match="is not writable"):
        writable_folder(locked, option="--out_dir")


# --- every option is documented ----------------------------------------------------------------------
def undocumented(parser: argparse.ArgumentParser, prefix: str = "") -> list[str]:
    """Options and commands of ``parser`` (and its subcommands) without a help text."""
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = prefix + "/".join(action.option_strings or [action.dest])
        if not (action.help or "").strip():
            missing.append(name)
        if isinstance(action, argparse._SubParsersAction):
            missing += [f"{prefix}{c.dest}" for c in action._choices_actions if not (c.help or "").strip()]
            for command, sub in action.choices.items():
                missing += undocumented(sub, prefix=f"{prefix}{command} ")
    parser.format_help()  # and every help text formats (no stray %)
    return missing


def test_every_command_option_has_help() -> None:
    parser = cli.build_parser()
    assert undocumented(parser) == []
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert set(commands) == {"verify", "train", "evaluate", "recommend"}
    bare = argparse.ArgumentParser(prog="bare")
    bare.add_argument("--documented", help="has help")
    bare.add_argument("--bare")
    assert undocumented(bare) == ["--bare"]  # the check itself finds a bare flag


SCRIPTS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "examples").glob("*.py"))


class _CapturedParserError(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__("parser captured")
        self.parser = parser


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_example_option_has_help(script: str, monkeypatch) -> None:
    """Each script's parser, taken at its parse_args call (nothing runs), documents every option."""
    module = load_script(script)

    def capture(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        raise _CapturedParserError(self)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    with pytest.raises(_CapturedParserError) as caught:
        module.parse_args([])
    assert undocumented(caught.value.parser) == []
