import math

import pytest

from middleware.errors import InvalidArgument
from middleware.settings import Settings
from middleware.types import Budget, CompressRequest, Document, Stage


@pytest.mark.parametrize("kwargs, message", [
    ({}, "exactly one"),
    ({"max_tokens": 10, "keep_ratio": 0.5}, "exactly one"),
    ({"max_tokens": 0}, ">= 1"),
    ({"max_tokens": -5}, ">= 1"),
    ({"max_tokens": 2.5}, "integer"),
    ({"max_tokens": True}, "integer"),
    ({"keep_ratio": 0.0}, "(0, 1]"),
    ({"keep_ratio": 1.5}, "(0, 1]"),
    ({"keep_ratio": math.nan}, "finite"),
    ({"keep_ratio": "half"}, "finite number"),
])
def test_invalid_budgets_are_rejected_with_the_reason(kwargs, message):
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(").replace("]", r"\]")):
        Budget(**kwargs)


def test_budget_ceiling():
    assert Budget(max_tokens=300).ceiling(1000) == 300
    assert Budget(keep_ratio=0.25).ceiling(1000) == 250
    assert Budget(keep_ratio=0.01).ceiling(10) == 1  # never a zero ceiling


def test_duplicate_document_ids_are_rejected():
    docs = (Document(id="a", text="x"), Document(id="a", text="y"))
    with pytest.raises(InvalidArgument, match="duplicate document id 'a'"):
        CompressRequest(query="q", documents=docs, budget=Budget(max_tokens=5))


def test_document_metadata_is_frozen():
    doc = Document(id="a", text="x", metadata={"k": 1})
    with pytest.raises(TypeError):
        doc.metadata["k"] = 2  # type: ignore[index]


def test_empty_stage_method_is_rejected():
    with pytest.raises(InvalidArgument, match="non-empty"):
        Stage("  ")


def test_settings_precedence_file_then_env_then_overrides(tmp_path):
    cfg = tmp_path / "ragpress.toml"
    cfg.write_text('[ragpress]\nport = 6000\nworkers = 3\ndefault_model = "gpt-4o-mini"\n')
    env = {"RAGPRESS_CONFIG": str(cfg), "RAGPRESS_WORKERS": "4", "RAGPRESS_WARM_UP": "false"}
    s = Settings.load(env=env, port=7000)
    assert (s.port, s.workers, s.default_model, s.warm_up) == (7000, 4, "gpt-4o-mini", False)


@pytest.mark.parametrize("env, message", [
    ({"RAGPRESS_PORT": "eighty"}, "cannot read 'eighty' as int"),
    ({"RAGPRESS_PORT": "70000"}, "0..65535"),
    ({"RAGPRESS_WORKERS": "0"}, "workers must be >= 1"),
    ({"RAGPRESS_UNKNOWN_MODEL": "guess"}, "unknown_model"),
    ({"RAGPRESS_WARM_UP": "perhaps"}, "as bool"),
])
def test_bad_settings_fail_clearly(env, message):
    with pytest.raises(InvalidArgument, match=message):
        Settings.load(env=env)


def test_unknown_setting_in_file_is_named(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("prot = 1\n")
    with pytest.raises(InvalidArgument, match=r"unknown setting\(s\) \['prot'\]"):
        Settings.load(cfg)


def test_missing_config_file(tmp_path):
    with pytest.raises(InvalidArgument, match="does not exist"):
        Settings.load(tmp_path / "nope.toml")


def test_the_example_settings_file_lists_every_key_with_its_default():
    """deploy/ragpress.example.toml is the reference users read: every setting, loadable as is."""
    import dataclasses
    import tomllib

    from conftest import ROOT

    path = ROOT / "deploy" / "ragpress.example.toml"
    listed = tomllib.loads(path.read_text(encoding="utf-8"))["ragpress"]
    names = {f.name for f in dataclasses.fields(Settings)}
    assert sorted(names - set(listed)) == [], "settings missing from the example file"
    loaded = Settings.load(path, {})
    defaults = Settings()
    # The example shows defaults, except the metrics port it turns on.
    differ = {n for n in names if getattr(loaded, n) != getattr(defaults, n)}
    assert differ == {"metrics_port"}, differ


def test_onnx_threads_must_be_positive():
    with pytest.raises(InvalidArgument, match="onnx_threads"):
        Settings(onnx_threads=0).validate()
    Settings(onnx_threads=2).validate()
