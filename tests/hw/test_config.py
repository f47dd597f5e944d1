"""The presets derive from one base: the class defaults are the ``default`` preset."""

from __future__ import annotations

from sushi_hw.config import PRESETS, AccelConfig


def test_class_defaults_are_the_default_preset() -> None:
    assert AccelConfig() == PRESETS["default"]


def test_every_preset_names_the_source_of_its_numbers() -> None:
    for name, cfg in PRESETS.items():
        assert cfg.name == name
        assert cfg.note, f"preset {name} has no note naming where its numbers come from"
