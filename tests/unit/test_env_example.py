""".env.example claims to list every setting with its default: it does, and the values are the defaults."""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from unittest import mock

from hark.settings import Settings

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


def test_env_example_lists_every_setting_with_its_default() -> None:
    values = dict(
        line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if line and not line.startswith("#")
    )
    assert set(values) == {"HARK_" + f.name.upper() for f in fields(Settings)}
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HARK_")}
    with mock.patch.dict(os.environ, {**clean, **values}, clear=True):
        assert Settings.from_env() == Settings()
