"""The committed generated code matches the .proto, and the API follows buf's STANDARD style."""

from __future__ import annotations

import importlib.util

from conftest import ROOT
from ragpress.v1 import ragpress_pb2 as pb

GENERATED = ("ragpress_pb2.py", "ragpress_pb2.pyi", "ragpress_pb2_grpc.py")


def test_generated_code_is_not_stale(tmp_path):
    spec = importlib.util.spec_from_file_location("protogen", ROOT / "proto" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.generate(tmp_path)
    for name in GENERATED:
        fresh = (tmp_path / "ragpress" / "v1" / name).read_text()
        committed = (ROOT / "proto" / "ragpress" / "v1" / name).read_text()
        assert fresh == committed, f"{name} is stale: run .venv/bin/python proto/generate.py"


def test_package_is_versioned():
    assert pb.DESCRIPTOR.package == "ragpress.v1"


def test_enum_zero_values_are_unspecified():
    for enum in pb.DESCRIPTOR.enum_types_by_name.values():
        zero = enum.values_by_number[0].name
        assert zero.endswith("_UNSPECIFIED"), f"{enum.name}'s zero value is {zero}"


def test_one_request_and_response_message_per_rpc():
    service = pb.DESCRIPTOR.services_by_name["RagpressService"]
    assert service.name.endswith("Service")
    seen = set()
    for method in service.methods:
        assert method.input_type.name == f"{method.name}Request"
        assert method.output_type.name == f"{method.name}Response"
        assert method.input_type.name not in seen and method.output_type.name not in seen
        seen |= {method.input_type.name, method.output_type.name}
    assert {m.name for m in service.methods} == {
        "Compress", "SelectDemonstrations", "Generate", "GenerateStream", "Index", "Retrieve", "GetUsage",
        "IndexDemonstrations"}
