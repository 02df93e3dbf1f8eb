"""The server factory: health, reflection, error details, graceful stop."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from polytrial.server.app import create_server
from polytrial.server.startup import AddressUnusable, DatabaseUnusable
from polytrial_testkit import Api, connect, experiment, status_of

pytestmark = pytest.mark.timeout(60)


def test_health_reports_serving_for_the_server_and_each_service(api: Api) -> None:
    stub = health_pb2_grpc.HealthStub(api.channel)
    for service in ("", "polytrial.v1.TrialService", "polytrial.v1.ExperimentService"):
        response = stub.Check(health_pb2.HealthCheckRequest(service=service))
        assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_polytrial_services(api: Api) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(api.channel)
    responses = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = {s.name for r in responses for s in r.list_services_response.service}
    assert {
        "polytrial.v1.ExperimentService",
        "polytrial.v1.TrialService",
        "polytrial.v1.ResultService",
    } <= names


def test_errors_carry_a_google_rpc_status_with_the_same_code(api: Api) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        api.create(experiment("Bad Id"))
    status = status_of(caught.value)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert status.message == caught.value.details()
    assert len(status.details) == 2  # ErrorInfo and BadRequest


def test_stopped_server_refuses_new_calls_and_keeps_its_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    server, port = create_server(url)
    server.start()
    api = connect(port)
    api.create(experiment("kept"))
    server.stop(grace_s=0.5)
    with pytest.raises(grpc.RpcError) as caught:
        api.get_experiment("kept")
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    api.close()

    again, port = create_server(url)
    again.start()
    api = connect(port)
    try:
        assert api.get_experiment("kept").experiment_id == "kept"
    finally:
        api.close()
        again.stop(grace_s=0.5)


def test_second_server_on_a_port_in_use_fails_to_bind(tmp_path: Path) -> None:
    first, port = create_server(f"sqlite:///{tmp_path / 'a.db'}", "127.0.0.1:0")
    first.start()
    try:
        with pytest.raises(AddressUnusable, match="could not bind"):
            create_server(f"sqlite:///{tmp_path / 'b.db'}", f"127.0.0.1:{port}")
    finally:
        first.stop(grace_s=0.5)
    # The address is bound before the migrations would create the database.
    assert not (tmp_path / "b.db").exists()


@pytest.mark.parametrize("address", ["127.0.0.1:99999", "127.0.0.1:-1", ":1", "h"])
def test_an_address_grpc_would_wrap_or_guess_is_a_value_error(
    tmp_path: Path, address: str
) -> None:
    with pytest.raises(ValueError, match=r"port|host"):
        create_server(f"sqlite:///{tmp_path / 'p.db'}", address)
    assert not (tmp_path / "p.db").exists()


def test_an_unusable_database_is_a_startup_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_text("not a database\n")
    with pytest.raises(DatabaseUnusable, match=r"notes\.db.*file is not a database"):
        create_server(str(tmp_path / "notes.db"))


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://",
        "sqlite:///",
        "sqlite:///:memory:",
        "sqlite+pysqlite:///:memory:",
        "sqlite:///file::memory:?uri=true",
        "sqlite:///file:shared?mode=memory&cache=shared&uri=true",
    ],
)
def test_an_in_memory_sqlite_database_is_refused(url: str) -> None:
    # Each pooled connection would see its own empty database: the server
    # would listen and then answer every call UNAVAILABLE.
    with pytest.raises(DatabaseUnusable, match="in-memory database cannot be served"):
        create_server(url)
