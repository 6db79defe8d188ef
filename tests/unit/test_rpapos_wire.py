"""The RPApos wire without a server: SAT credentials, fault words, the login form, the fake's data."""

import json
import subprocess
import sys
from collections import Counter

import pytest

from bench.environment import ROOT, probe_environment
from local.fake_rpapos import (
    FAULT_CREDENTIALS,
    FAULT_TOKEN,
    FAULT_WORKSTATION,
    Catalog,
    Volume,
    parse_envelope,
)
from pos_gateway.rpapos import contract
from pos_gateway.rpapos.contract import EntityType as E
from pos_gateway.rpapos.errors import (
    BadCredentials,
    RpaposSoapError,
    SoapBadCredentials,
    SoapTokenRejected,
    WorkstationRequired,
    soap_fault_error,
)
from pos_gateway.rpapos.rest import hidden_fields

# ------------------------------------------------------------------ zeep stays out of the handlers

IMPORT_PROBE = """
import importlib, json, sys
for module in sys.argv[1:]:
    importlib.import_module(module)
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules} & {"zeep", "lxml", "requests"})))
"""


def test_the_ingest_and_crediting_handlers_never_import_zeep() -> None:
    modules = [
        "functions.webhook_ingest.app",
        "functions.reward_crediting.app",
        "pos_gateway.rpapos.contract",
        "pos_gateway.rpapos.errors",
    ]
    completed = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-c", IMPORT_PROBE, *modules],
        env=probe_environment(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    loaded = json.loads(completed.stdout.strip().splitlines()[-1])
    assert "zeep" not in loaded
    assert "lxml" not in loaded


# ------------------------------------------------------------------ SAT credentials


def test_sat_credentials_follow_the_connection() -> None:
    from pos_gateway.rpapos.soap import SatCredentials, sat_credentials

    assert sat_credentials("admin", "pw") == SatCredentials("admin", "pw")
    assert sat_credentials("admin", "pw", sat_password="sat") == SatCredentials("admin", "sat")
    assert sat_credentials("admin", "pw", "satuser", "sat") == SatCredentials("satuser", "sat")
    assert sat_credentials("admin", "pw", sat_usuario="satuser") == SatCredentials("admin", "pw")
    assert sat_credentials("admin", "pw", "", "sat") == SatCredentials("admin", "sat")
    assert "sat" not in repr(sat_credentials("admin", "pw", sat_password="sat")).split("usuario=")[0]
    with pytest.raises(ValueError, match="SAT user"):
        sat_credentials("", "pw", sat_password="sat")


# ------------------------------------------------------------------ SOAP fault words


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        (FAULT_TOKEN, SoapTokenRejected),
        ("System.Web.Services.Protocols.SoapException: El token ha expirado", SoapTokenRejected),
        (FAULT_WORKSTATION, WorkstationRequired),
        ("Estacion de trabajo no asignada", WorkstationRequired),
        (FAULT_CREDENTIALS, SoapBadCredentials),
        ("Grupo no existe: MG9", RpaposSoapError),
        ("Unknown fault occured", RpaposSoapError),
    ],
)
def test_soap_faults_are_told_apart_by_their_words(message: str, kind: type[RpaposSoapError]) -> None:
    error = soap_fault_error("Catalogo_4", message, "soap:Client")
    assert type(error) is kind
    assert error.fault_code == "soap:Client"
    assert str(error).startswith("Catalogo_4: SOAP fault: ")
    assert isinstance(error, BadCredentials) == (kind is SoapBadCredentials)


# ------------------------------------------------------------------ the login form


def test_hidden_fields_are_read_whatever_the_attribute_order() -> None:
    page = """<form><input value="a&amp;b+/=" name="__VIEWSTATE" type="hidden" id="__VIEWSTATE" />
    <INPUT TYPE="HIDDEN" NAME="__VIEWSTATEGENERATOR" VALUE="C2EE9ABB">
    <input type="hidden" name="__EVENTVALIDATION" />
    <input type="text" name="TextBoxUsername" value="not hidden" /></form>"""
    assert hidden_fields(page) == {
        "__VIEWSTATE": "a&b+/=",
        "__VIEWSTATEGENERATOR": "C2EE9ABB",
        "__EVENTVALIDATION": "",
    }


# ------------------------------------------------------------------ the fake's envelopes


@pytest.mark.parametrize(
    "declaration",
    ['<!DOCTYPE Envelope [<!ENTITY x "y">]>', '<!DOCTYPE Envelope SYSTEM "file:///etc/passwd">'],
)
def test_the_fake_refuses_declarations_before_parsing(declaration: str) -> None:
    envelope = f'<?xml version="1.0"?>{declaration}<Envelope/>'
    with pytest.raises(ValueError, match="DTD"):
        parse_envelope(envelope.encode())


def test_the_fake_reads_a_soap_call() -> None:
    envelope = (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        f'<ns0:Catalogo_4 xmlns:ns0="{contract.SOAP_NAMESPACE}"><ns0:pToken>t</ns0:pToken>'
        "<ns0:pEstacion_Trabajo>3</ns0:pEstacion_Trabajo><![CDATA[ignored]]></ns0:Catalogo_4>"
        "</soap:Body></soap:Envelope>"
    )
    assert parse_envelope(envelope.encode()) == ("Catalogo_4", {"pToken": "t", "pEstacion_Trabajo": "3"})


# ------------------------------------------------------------------ the fake's data


def test_the_same_seed_gives_the_same_records() -> None:
    one, two, other = Catalog("acme", Volume()), Catalog("acme", Volume()), Catalog("other", Volume())
    for entity in (E.PLU, E.SKU, E.COMPRA, E.MESA, E.PLU_OPTION_ITEM):
        assert one.records(entity, range(one.count(entity))) == two.records(entity, range(two.count(entity)))
    assert one.records(E.PLU, range(5)) != other.records(E.PLU, range(5))


def test_references_point_at_existing_active_records() -> None:
    catalog = Catalog("acme", Volume())

    def active_codes(entity: E) -> set[str | int]:
        return {catalog.code(entity, i) for i in range(catalog.active(entity))}

    plus = catalog.records(E.PLU, range(catalog.count(E.PLU)))
    assert {p["Codigo_Grupo"] for p in plus} <= active_codes(E.PLU_GRUPO)
    assert {p["Codigo_Unidad"] for p in plus} <= active_codes(E.UNIDAD_MEDIDA)
    offered = [g["Codigo_Grupo"] for p in plus for g in p["Grupos_Opciones"]]
    assert offered
    assert set(offered) <= active_codes(E.PLU_OPTION_GROUP)
    mesas = catalog.records(E.MESA, range(catalog.count(E.MESA)))
    assert {m["Codigo_Area"] for m in mesas} == active_codes(E.AREA)
    items = catalog.records(E.PLU_OPTION_ITEM, range(catalog.count(E.PLU_OPTION_ITEM)))
    assert {i["Codigo_Grupo"] for i in items} == active_codes(E.PLU_OPTION_GROUP)
    all_plus = {p["Codigo_PLU"] for p in plus}
    assert {i["Codigo_PLU"] for i in items} <= all_plus
    prices = catalog.records(E.PRECIO, range(catalog.count(E.PRECIO)))
    assert {p["Codigo_PLU"] for p in prices} == all_plus
    skus = catalog.records(E.SKU, range(catalog.count(E.SKU)))
    assert {s["Codigo_Proveedor"] for s in skus} <= active_codes(E.PROVEEDOR)
    areas = catalog.records(E.AREA, range(catalog.count(E.AREA)))
    assert {a["Codigo_Bodega"] for a in areas} <= active_codes(E.BODEGA)


def test_some_rows_are_soft_deleted() -> None:
    catalog = Catalog("acme", Volume())
    for entity in (E.PLU_GRUPO, E.AREA, E.UNIDAD_MEDIDA, E.PLU_OPTION_GROUP):
        flags = [r[contract.DELETED_FIELD] for r in catalog.records(entity, range(catalog.count(entity)))]
        assert flags == [False] * (len(flags) - 1) + [True], entity
    plu_flags = Counter(
        r[contract.DELETED_FIELD] for r in catalog.records(E.PLU, range(catalog.count(E.PLU)))
    )
    assert plu_flags[True] == catalog.count(E.PLU) // Volume().deleted_every


def test_a_large_volume_is_computed_on_demand() -> None:
    catalog = Catalog("bigco", Volume(plus=100_000))
    assert catalog.count(E.PLU) == 100_000
    assert catalog.record(E.PLU, 99_999)["Codigo_PLU"] == "PLU100000"
    assert catalog.index_of(E.PLU, "PLU100000") == 99_999
    assert catalog.index_of(E.PLU, "PLU100001") is None
    assert catalog.index_of(E.PLU, "PLU00001") is None  # not the served spelling
    assert catalog.has_image(99_999) == (99_999 % Volume().image_every == 0)
    assert catalog.select(E.PLU) == range(100_000)
