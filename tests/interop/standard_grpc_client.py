"""Checks a running trust with a gRPC client datatrust did not write (Python grpcio).

Health (grpc.health.v1), server reflection in both v1 and v1alpha, and one real call built
only from the descriptors reflection returned (no .proto files). Usage:
    python3 standard_grpc_client.py 127.0.0.1:50051
Prints "N passed, M failed" and exits non-zero on any failure.
"""

import sys

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

DATATRUST_SERVICES = {
    "datatrust.v1.TrustService",
    "datatrust.v1.AuthService",
    "datatrust.v1.PrincipalService",
    "datatrust.v1.MemberService",
    "datatrust.v1.CollectorService",
}

passed = 0
failed = 0


def check(name, condition, detail=""):
    global passed, failed
    if condition:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def list_services(channel, method):
    # v1 and v1alpha share one message layout; only the service path differs.
    call = channel.stream_stream(
        method,
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    responses = list(call(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10))
    return {service.name for service in responses[0].list_services_response.service}


def main():
    address = sys.argv[1]
    channel = grpc.insecure_channel(address)

    health = health_pb2_grpc.HealthStub(channel)
    overall = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    check("health: overall SERVING", overall.status == health_pb2.HealthCheckResponse.SERVING, overall)
    for service in sorted(DATATRUST_SERVICES):
        response = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        check(f"health: {service} SERVING", response.status == health_pb2.HealthCheckResponse.SERVING)
    try:
        health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
        check("health: unknown service is NOT_FOUND", False, "it answered")
    except grpc.RpcError as error:
        check("health: unknown service is NOT_FOUND", error.code() == grpc.StatusCode.NOT_FOUND, error)

    for version in ["v1", "v1alpha"]:
        names = list_services(channel, f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo")
        check(f"reflection {version}: lists every datatrust service", DATATRUST_SERVICES <= names, names)
        check(f"reflection {version}: lists grpc.health.v1.Health", "grpc.health.v1.Health" in names, names)

    # Build GetTrustInfo from reflected descriptors alone, as grpcurl does, and call it.
    database = ProtoReflectionDescriptorDatabase(channel)
    pool = descriptor_pool.DescriptorPool(database)
    service = pool.FindServiceByName("datatrust.v1.TrustService")
    method = service.FindMethodByName("GetTrustInfo")
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    call = channel.unary_unary(
        "/datatrust.v1.TrustService/GetTrustInfo",
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )
    info = call(request_class(), timeout=10)
    check("reflected call: GetTrustInfo returns an origin", bool(info.origin), info)
    check("reflected call: log vkey names the origin", info.log_vkey.startswith(info.origin + "+"), info)

    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
