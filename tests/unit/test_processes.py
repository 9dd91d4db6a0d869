"""`hark serve` and `hark worker` build the deployed commands (the exec itself is replaced here)."""

from __future__ import annotations

import argparse

import pytest

from hark import processes


@pytest.fixture
def executed(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    calls: list[list[str]] = []
    monkeypatch.setattr(processes.os, "execv", lambda _exe, cmd: calls.append(cmd))
    return calls


def _args(**kw: object) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    processes.add_commands(parser.add_subparsers())
    return parser.parse_args([str(kw.pop("command")), *[f"--{k.replace('_', '-')}={v}" for k, v in kw.items()]])


def test_serve_uses_the_hardened_gunicorn_config(executed):
    args = _args(command="serve", port=9000)
    assert args.func(args) == 0
    cmd = executed[0]
    assert cmd[cmd.index("-c") + 1] == "python:web.gunicorn_conf" and "127.0.0.1:9000" in cmd


def test_worker_takes_the_webhooks_queue_and_refuses_unknown_ones(executed, capsys):
    args = _args(command="worker", queues="webhooks")
    assert args.func(args) == 0 and executed[0][executed[0].index("-Q") + 1] == "webhooks"
    args = _args(command="worker", queues="cpu,nope")
    assert args.func(args) == 2 and "unknown queues: nope" in capsys.readouterr().err
