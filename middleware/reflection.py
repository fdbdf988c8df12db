"""Server reflection, v1 and v1alpha.

grpcio-reflection 1.85 serves only ``grpc.reflection.v1alpha``; current clients
(grpcurl, Postman, grpcui) ask for ``grpc.reflection.v1`` first. The two versions
have the same messages under another package name, so their wire format is the same:
the library's v1alpha servicer answers both, registered under both service names.
"""

from __future__ import annotations

from typing import Iterable

V1_SERVICE = "grpc.reflection.v1.ServerReflection"


def enable(server, service_names: Iterable[str]) -> None:
    """Serve reflection v1alpha and v1 for ``service_names`` (plus reflection itself)."""
    import grpc
    from grpc_reflection.v1alpha import reflection, reflection_pb2

    names = (*service_names, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
    servicer = reflection.aio.ReflectionServicer(names)
    handler = grpc.method_handlers_generic_handler(V1_SERVICE, {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString),
    })
    server.add_generic_rpc_handlers((handler,))
