"""The RPApos SOAP client (zeep, the shipped WSDL) against the fake RPApos's SOAP service."""

import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
import requests
import zeep

from local.fake_rpapos import FAULT_WORKSTATION, FakeRpapos
from pos_gateway.providers.errors import RetryLater
from pos_gateway.rpapos import contract, soap
from pos_gateway.rpapos.contract import EntityType as E
from pos_gateway.rpapos.errors import (
    BadCredentials,
    RpaposRequestError,
    RpaposSoapError,
    RpaposUnavailable,
    SoapBadCredentials,
    SoapTokenRejected,
    WorkstationRequired,
)
from pos_gateway.rpapos.soap import RpaposSoapClient

TENANT = "acme"
SAT_TENANT = "satco"
USER = "admin"
PASSWORD = "rest-password"
SAT_PASSWORD = "sat-password"
WORKSTATION = 1


@pytest.fixture(scope="module")
def server() -> Iterator[FakeRpapos]:
    with FakeRpapos(hang_seconds=1.0) as fake:
        fake.add_tenant(TENANT, USER, PASSWORD)
        fake.add_tenant(SAT_TENANT, USER, PASSWORD, sat_password=SAT_PASSWORD)
        yield fake


@pytest.fixture
def rpapos(server: FakeRpapos) -> FakeRpapos:
    server.reset()
    return server


@pytest.fixture
def sat(rpapos: FakeRpapos) -> RpaposSoapClient:
    return RpaposSoapClient(rpapos.soap_url, operation_timeout=2.0)


@pytest.fixture
def client(rpapos: FakeRpapos, sat: RpaposSoapClient) -> RpaposSoapClient:
    registration = sat.register_device(USER, PASSWORD, TENANT, "pos-gateway")
    return RpaposSoapClient(
        rpapos.soap_url, token=registration.token, estacion_trabajo=WORKSTATION, operation_timeout=2.0
    )


def soap_calls(rpapos: FakeRpapos, operation: str | None = None) -> list[str | None]:
    return [
        r.operation
        for r in rpapos.requests
        if r.path == contract.SOAP_PATH and operation in (None, r.operation)
    ]


# ------------------------------------------------------------------ the WSDL


def test_the_wsdl_is_served_with_the_fakes_address(rpapos: FakeRpapos) -> None:
    answer = requests.get(rpapos.soap_url + "?wsdl", timeout=2)

    assert answer.status_code == 200
    assert f'location="{rpapos.soap_url}"' in answer.text
    assert contract.SOAP_HOST not in answer.text.split("<wsdl:service")[1]
    served = zeep.Client(rpapos.soap_url + "?wsdl")
    assert served.service._binding_options["address"] == rpapos.soap_url
    assert set(served.service._operations) == {
        "Cuenta_Validar_1",
        "Dispositivo_Registra_2",
        "Catalogo_4",
        "Producto_Grupo_Detalle",
        "Producto_U_M",
    }


def test_the_parsed_wsdl_is_built_once_and_a_service_cached_per_endpoint(rpapos: FakeRpapos) -> None:
    first = soap.service(rpapos.soap_url, 2.0)
    document = soap._wsdl

    assert soap.service(rpapos.soap_url, 2.0) is first
    other = soap.service("http://127.0.0.1:9/WSRPA/Servicio.asmx", 2.0)
    assert other is not first
    assert other._binding_options["address"] == "http://127.0.0.1:9/WSRPA/Servicio.asmx"
    assert soap._wsdl is document


# ------------------------------------------------------------------ SAT calls


def test_validate_account(sat: RpaposSoapClient) -> None:
    good = sat.validate_account(USER, PASSWORD, TENANT)
    bad = sat.validate_account(USER, "wrong-password", TENANT)
    unknown = sat.validate_account(USER, PASSWORD, "nobody")

    assert good.valid
    assert (bad.valid, unknown.valid) == (False, False)
    assert bad.message is not None
    assert "contraseña" in bad.message


def test_register_device_returns_the_token_and_the_connection_metadata(
    rpapos: FakeRpapos, sat: RpaposSoapClient
) -> None:
    registration = sat.register_device(USER, PASSWORD, TENANT, "pos-gateway")

    assert len(registration.token) >= 32
    assert registration.token not in repr(registration)
    assert registration.localizacion_id == rpapos._tenants[TENANT].localizacion_id
    assert registration.conexion_db > 0
    assert registration.conexion_mainframe > 0
    again = sat.register_device(USER, PASSWORD, TENANT, "pos-gateway")
    assert again.token != registration.token


def test_a_refused_registration_is_bad_credentials(sat: RpaposSoapClient) -> None:
    with pytest.raises(SoapBadCredentials) as raised:
        sat.register_device(USER, "wrong-password", TENANT, "pos-gateway")
    assert isinstance(raised.value, BadCredentials)
    assert "wrong-password" not in str(raised.value)


def test_the_sat_user_defaults_to_the_connections_user_when_only_a_sat_password_is_set(
    sat: RpaposSoapClient,
) -> None:
    # The SAT tenant's SAT password differs from its REST password; its SAT user is the same.
    assert sat.validate_account(USER, PASSWORD, SAT_TENANT, sat_password=SAT_PASSWORD).valid
    assert not sat.validate_account(USER, PASSWORD, SAT_TENANT).valid
    registration = sat.register_device(USER, PASSWORD, SAT_TENANT, "pos-gateway", sat_password=SAT_PASSWORD)
    assert registration.token


# ------------------------------------------------------------------ catalog calls


def test_modifier_groups_are_paged(rpapos: FakeRpapos, client: RpaposSoapClient) -> None:
    catalog = rpapos.catalog(TENANT)
    count = catalog.count(E.PLU_OPTION_GROUP)

    pages = list(client.all_modifier_group_pages(size=4))

    assert [(page.number, len(page.records), page.total, page.is_last) for page in pages] == [
        (1, 4, count, False),
        (2, count - 4, count, True),
    ]
    groups = [record for page in pages for record in page.records]
    assert [g["Codigo_Grupo"] for g in groups] == [catalog.code(E.PLU_OPTION_GROUP, i) for i in range(count)]
    assert [g["Eliminado"] for g in groups] == [False] * (count - 1) + [True]
    assert all(g["Minimo"] <= g["Maximo"] for g in groups)
    single = client.modifier_groups(2, 2)
    assert [g["Codigo_Grupo"] for g in single.records] == ["MG003", "MG004"]


def test_modifier_items_reference_their_group_and_existing_plus(
    rpapos: FakeRpapos, client: RpaposSoapClient
) -> None:
    catalog = rpapos.catalog(TENANT)

    items = client.modifier_items("MG002")

    assert len(items) == catalog.volume.items_per_group
    assert {item["Codigo_Grupo"] for item in items} == {"MG002"}
    assert all(catalog.index_of(E.PLU, item["Codigo_PLU"]) is not None for item in items)
    assert all(isinstance(item["Precio_Adicional"], Decimal) for item in items)
    assert [item["Orden"] for item in items] == list(range(1, len(items) + 1))
    deleted_group = catalog.code(E.PLU_OPTION_GROUP, catalog.count(E.PLU_OPTION_GROUP) - 1)
    assert client.modifier_items(str(deleted_group)) == []


def test_product_images_come_as_bytes(rpapos: FakeRpapos, client: RpaposSoapClient) -> None:
    catalog = rpapos.catalog(TENANT)

    image = client.product_image("PLU000001")
    without = client.product_image("PLU000002")

    assert image is not None
    assert image.content == catalog.image(0)
    assert image.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert (image.filename, image.content_type) == ("PLU000001.png", "image/png")
    assert without is None


# ------------------------------------------------------------------ faults


def test_a_rejected_token_is_told_apart(rpapos: FakeRpapos, client: RpaposSoapClient) -> None:
    forged = RpaposSoapClient(rpapos.soap_url, token="not-a-token", estacion_trabajo=WORKSTATION)
    with pytest.raises(SoapTokenRejected):
        forged.modifier_groups()

    rpapos.revoke_device_tokens(TENANT)
    for call in (client.modifier_groups, lambda: client.modifier_items("MG001")):
        with pytest.raises(SoapTokenRejected):
            call()
    with pytest.raises(SoapTokenRejected, match="register"):
        RpaposSoapClient(rpapos.soap_url, estacion_trabajo=WORKSTATION).modifier_groups()


@pytest.mark.parametrize("workstation", [None, 0])
def test_a_missing_workstation_is_refused_before_calling(
    rpapos: FakeRpapos, client: RpaposSoapClient, workstation: int | None
) -> None:
    token = client._token
    without = RpaposSoapClient(rpapos.soap_url, token=token, estacion_trabajo=workstation)
    before = len(rpapos.requests)

    with pytest.raises(WorkstationRequired):
        without.modifier_groups()
    with pytest.raises(WorkstationRequired):
        without.product_image("PLU000001")

    assert len(rpapos.requests) == before
    assert without.modifier_items("MG001")  # Producto_Grupo_Detalle needs no workstation


def test_the_servers_workstation_fault_is_mapped(rpapos: FakeRpapos, client: RpaposSoapClient) -> None:
    rpapos.soap_fault(FAULT_WORKSTATION, operation="Producto_U_M")
    with pytest.raises(WorkstationRequired):
        client.product_image("PLU000001")


def test_other_faults_are_soap_errors(rpapos: FakeRpapos, client: RpaposSoapClient) -> None:
    with pytest.raises(RpaposSoapError, match="Grupo no existe") as unknown_group:
        client.modifier_items("MG999")
    with pytest.raises(RpaposSoapError, match="PLU no existe") as unknown_plu:
        client.product_image("NOPE")
    rpapos.soap_fault("Error interno del servidor", operation="Catalogo_4")
    with pytest.raises(RpaposSoapError, match="Error interno") as scripted:
        client.modifier_groups()

    for raised in (unknown_group, unknown_plu, scripted):
        assert type(raised.value) is RpaposSoapError
        assert not isinstance(raised.value, RetryLater)
    assert scripted.value.fault_code == "soap:Server"


def test_the_fake_refuses_dtds_and_entities(rpapos: FakeRpapos) -> None:
    envelope = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        f'<Producto_Grupo_Detalle xmlns="{contract.SOAP_NAMESPACE}"><pToken>&a;</pToken>'
        "<pCodigo_Grupo>MG001</pCodigo_Grupo></Producto_Grupo_Detalle></soap:Body></soap:Envelope>"
    )
    answer = requests.post(
        rpapos.soap_url,
        data=envelope.encode(),
        headers={"Content-Type": "text/xml; charset=utf-8"},
        timeout=2,
    )
    assert answer.status_code == 500
    assert "DTD" in answer.text


# ------------------------------------------------------------------ transport


def test_the_operation_timeout_is_honoured(rpapos: FakeRpapos, client: RpaposSoapClient) -> None:
    impatient = RpaposSoapClient(
        rpapos.soap_url, token=client._token, estacion_trabajo=WORKSTATION, operation_timeout=0.5
    )
    rpapos.slow(contract.SOAP_PATH, seconds=1.5)

    started = time.monotonic()
    with pytest.raises(RpaposUnavailable) as raised:
        impatient.modifier_groups()
    elapsed = time.monotonic() - started

    assert 0.4 < elapsed < 1.3
    assert isinstance(raised.value, RetryLater)
    assert "Timeout" in str(raised.value)


@pytest.mark.parametrize(
    "arrange",
    [
        lambda fake: fake.fail(contract.SOAP_PATH, status=503),
        lambda fake: fake.fail(contract.SOAP_PATH, status=429),
        lambda fake: fake.drop(contract.SOAP_PATH),
        lambda fake: fake.outage(),
    ],
    ids=["503 page", "429 page", "dropped", "outage"],
)
def test_transport_failures_are_retryable(rpapos: FakeRpapos, client: RpaposSoapClient, arrange) -> None:
    arrange(rpapos)
    with pytest.raises(RpaposUnavailable):
        client.modifier_groups()
    rpapos.end_outage()


def test_an_endpoint_that_is_not_the_service_is_not_retryable(rpapos: FakeRpapos) -> None:
    wrong = RpaposSoapClient(rpapos.base_url + "/nowhere.asmx", operation_timeout=1.0)
    with pytest.raises(RpaposRequestError) as raised:
        wrong.validate_account(USER, PASSWORD, TENANT)
    assert raised.value.status == 404


def test_calls_are_real_soap_envelopes(rpapos: FakeRpapos, client: RpaposSoapClient) -> None:
    client.modifier_groups(1, 2)
    assert soap_calls(rpapos) == ["Dispositivo_Registra_2", "Catalogo_4"]
