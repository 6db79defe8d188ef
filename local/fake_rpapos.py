"""A fake RPApos on loopback: the WebForms login, the REST API and the db4 SOAP service.

Real HTTP (``ThreadingHTTPServer`` in a thread), for tests and local runs. Everything it shares
with the clients comes from pos_gateway.rpapos.contract (paths, form fields, paging and date
parameters, field names) and pos_gateway.rpapos.errors (the words of SOAP faults).

Tenants: one server hosts several, each under the path prefix ``/t/{subdomain}``: a
connection's REST base URL is ``https://{subdomain}.2rpa.com`` in the cloud and
``fake.tenant_url(subdomain)`` here (``{base_url}/t/{subdomain}``). The SOAP service is shared,
as db4 is: ``fake.soap_url`` (``{base_url}/WSRPA/Servicio.asmx``); its tenant comes from
``pSubdominio`` or the device token.

    with FakeRpapos() as rpapos:
        rpapos.add_tenant("acme", "admin", "s3cret", volume=Volume(plus=100_000))
        client = RpaposRestClient(rpapos.tenant_url("acme"), "admin", "s3cret")
        rpapos.fail("/api/PLU/Maestro", status=503, times=2)   # then the normal answer
        rpapos.hang("/api/SKU")                                 # no answer: the client times out
        rpapos.slow(SOAP_PATH, seconds=1.0)                     # a late answer
        rpapos.outage()  ...  rpapos.end_outage()               # everything fails meanwhile
        rpapos.expire_sessions("acme")                          # the next API call gets 401
        rpapos.reject_logins("acme")                            # the next login fails
        rpapos.soap_fault("Error interno", operation="Catalogo_4")

Data: generated per tenant from a seed (the subdomain unless given), the same every time, at
the volume asked (``Volume``): a record is computed from its index when a page is served,
so 100,000 PLUs cost no memory. Consistent across entities: PLUs reference existing groups and
units and list modifier groups (``Grupos_Opciones``), mesas reference areas, modifier items
reference groups and PLUs. Every list of referenced records (groups, units, areas, ...) has
one more row than the volume says, soft-deleted (``Eliminado``) and referenced by nobody; in
the other lists every ``deleted_every``-th row is soft-deleted. Every ``image_every``-th PLU has
an image (a small PNG) served by Producto_U_M. Dev-only.
"""

import argparse
import base64
import contextlib
import hashlib
import hmac
import html
import json
import random
import re
import secrets
import struct
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from local.loopback import LoopbackServer
from pos_gateway.rpapos import contract
from pos_gateway.rpapos.contract import EntityType, Transport

E = EntityType
TENANT_PREFIX = "/t/"
SESSION_COOKIE = "ASP.NET_SessionId"
MAX_PAGE_SIZE = 1000  # ASSUMED: a larger registros is served as 1000 (the envelope says so)
MAX_BODY_BYTES = 1_000_000
HANG_SECONDS = 5.0
DEFAULT_USERNAME = "admin"
DEFAULT_PASSWORD = "admin-password"  # a demo tenant's
WSDL_PATH = Path(contract.__file__).with_name("rpapos.wsdl")
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
_DECLARATION = re.compile(r"<!(?!--|\[CDATA\[)")  # <!DOCTYPE, <!ENTITY...: refused
_WSDL_ADDRESS = re.compile(r'(<soap:address\s+location=")[^"]*(")')

# Fault words: pos_gateway.rpapos.errors tells faults apart by them.
FAULT_TOKEN = "Token inválido o expirado"
FAULT_WORKSTATION = "Estación de trabajo requerida (pEstacion_Trabajo)"
FAULT_CREDENTIALS = "Usuario o contraseña inválidos"

# ------------------------------------------------------------------ generated data

BASE_MODIFIED = datetime(2025, 1, 1)
MODIFIED_SPAN_MINUTES = 485 * 24 * 60  # modified 2025-01-01 .. 2026-04-30
BASE_DOCUMENT = datetime(2025, 7, 1)
DOCUMENT_SPAN_MINUTES = 304 * 24 * 60  # documents dated 2025-07-01 .. 2026-04-30

_MONEDAS = (("GTQ", "Quetzal", "Q"), ("USD", "Dólar", "$"), ("EUR", "Euro", "€"), ("MXN", "Peso", "$"))
_UNIDADES = (("UN", "Unidad"), ("KG", "Kilogramo"), ("LB", "Libra"), ("LT", "Litro"), ("OZ", "Onza"))
_FOODS = ("Hamburguesa", "Pizza", "Taco", "Ensalada", "Café", "Licuado", "Pollo", "Sopa", "Pastel", "Té")
_STYLES = ("clásica", "especial", "de la casa", "grande", "pequeña", "picante", "doble", "light")
_NAMES = ("Ana", "Luis", "María", "José", "Carmen", "Jorge", "Lucía", "Pedro", "Sofía", "Diego")
_SURNAMES = ("López", "García", "Pérez", "Morales", "Castillo", "Hernández", "Ramírez", "Cruz")
_MODIFIERS = ("Extra queso", "Sin cebolla", "Tocino", "Aguacate", "Salsa picante", "Papas", "Hielo")
_GESTIONES = ("Comer aquí", "Para llevar", "Domicilio", "Autoservicio")
_OPERATIONAL = {
    E.COMPRA: "Numero_Compra",
    E.TRASLADO: "Numero_Traslado",
    E.CONTEO_FISICO: "Numero_Conteo",
    E.MERMA: "Numero_Merma",
    E.SALIDA_SKU: "Numero_Salida",
    E.PRODUCCION: "Numero_Produccion",
}


@dataclass(frozen=True)
class Volume:
    """How many active records a tenant has (referenced lists get one more, soft-deleted)."""

    plus: int = 40
    plu_grupos: int = 6
    skus: int = 30
    sku_grupos: int = 4
    produccion_grupos: int = 3
    unidades: int = 5
    monedas: int = 2
    bodegas: int = 3
    proveedores: int = 6
    areas: int = 3
    mesas_per_area: int = 4
    personas: int = 12
    usuarios: int = 4
    batches: int = 10
    tipos_gestion: int = 3
    estaciones: int = 2
    dispositivos: int = 3
    documents: int = 25  # of each operational entity
    modifier_groups: int = 5
    items_per_group: int = 4
    image_every: int = 3  # PLU 0, 3, 6... have an image
    deleted_every: int = 9  # rows 8, 17, 26... of the other lists are soft-deleted


def _hash(*parts: object) -> int:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def iso(at: datetime) -> str:
    """The contract's date format: ISO 8601, local time, no offset."""
    return at.replace(microsecond=0).isoformat()


def _money(r: random.Random, low: float, high: float) -> float:
    return round(r.uniform(low, high), 2)


class Catalog:
    """One tenant's records, computed from (seed, entity, index): nothing is stored but the
    changes a test makes (``modify``) and the filtered index lists last served."""

    def __init__(self, seed: str, volume: Volume) -> None:
        self.seed = seed
        self.volume = volume
        self._lock = threading.Lock()
        self._changes: dict[tuple[EntityType, int], dict[str, Any]] = {}
        self._filtered: OrderedDict[tuple[Any, ...], list[int]] = OrderedDict()
        v = volume
        self._active: dict[EntityType, int] = {
            E.MONEDA: min(v.monedas, len(_MONEDAS) - 1),
            E.UNIDAD_MEDIDA: min(v.unidades, len(_UNIDADES) - 1),
            E.PLU_GRUPO: v.plu_grupos,
            E.SKU_GRUPO: v.sku_grupos,
            E.PRODUCCION_GRUPO: v.produccion_grupos,
            E.BODEGA: v.bodegas,
            E.PROVEEDOR: v.proveedores,
            E.AREA: v.areas,
            E.PLU_OPTION_GROUP: v.modifier_groups,
        }
        self._leaves: dict[EntityType, int] = {
            E.PLU: v.plus,
            E.SKU: v.skus,
            E.PERSONA: v.personas,
            E.USUARIO: v.usuarios,
            E.BATCH_MAESTRO: v.batches,
            E.TIPO_GESTION: min(v.tipos_gestion, len(_GESTIONES)),
            E.ESTACION_TRABAJO: v.estaciones,
            E.DISPOSITIVO_IO: v.dispositivos,
            E.PRECIO: v.plus * self._active[E.MONEDA],
            E.MESA: v.areas * v.mesas_per_area,
            E.PLU_OPTION_ITEM: v.modifier_groups * v.items_per_group,
            **dict.fromkeys(_OPERATIONAL, v.documents),
        }

    # -------------------------------------------------------------- shape

    def count(self, entity: EntityType) -> int:
        if entity in self._active:
            return self._active[entity] + 1  # + the soft-deleted, unreferenced row
        return self._leaves[entity]

    def active(self, entity: EntityType) -> int:
        """How many rows of a referenced list others may point at (all but the deleted last)."""
        return self._active[entity]

    def deleted(self, entity: EntityType, index: int) -> bool:
        if entity in self._active:
            return index == self._active[entity]
        every = self.volume.deleted_every
        return every > 0 and index % every == every - 1

    def code(self, entity: EntityType, index: int) -> str | int:
        """The record's id field value (strings, but workstation and document numbers)."""
        if entity is E.MONEDA:
            return _MONEDAS[index][0]
        if entity is E.UNIDAD_MEDIDA:
            return _UNIDADES[index][0]
        if entity in _OPERATIONAL or entity is E.ESTACION_TRABAJO:
            return index + 1
        if entity is E.MESA:
            area, k = divmod(index, max(self.volume.mesas_per_area, 1))
            return f"{self.code(E.AREA, area)}-M{k + 1:02d}"
        if entity is E.PLU_OPTION_ITEM:
            group, k = divmod(index, max(self.volume.items_per_group, 1))
            return f"{self.code(E.PLU_OPTION_GROUP, group)}-{k + 1:02d}"
        prefix, width = _CODE_FORMAT[entity]
        return f"{prefix}{index + 1:0{width}d}"

    def index_of(self, entity: EntityType, code: str) -> int | None:
        """The index of a record by its code (None when there is no such record)."""
        match = re.fullmatch(r"\D*(\d+)", code)
        if match is None:
            return None
        index = int(match[1]) - 1
        if 0 <= index < self.count(entity) and str(self.code(entity, index)) == code:
            return index
        return None

    def has_image(self, plu_index: int) -> bool:
        every = self.volume.image_every
        return every > 0 and plu_index % every == 0

    # -------------------------------------------------------------- dates

    def modified_at(self, entity: EntityType, index: int) -> datetime:
        changed = self._changes.get((entity, index), {}).get(contract.MODIFIED_FIELD)
        if changed is not None:
            return datetime.fromisoformat(changed)
        if contract.SOURCES[entity].date_field is not None:  # a document changes after its date
            minutes = _hash(self.seed, entity, index, "modified") % (30 * 24 * 60)
            return self.document_date(entity, index) + timedelta(minutes=minutes)
        minutes = _hash(self.seed, entity, index, "modified") % MODIFIED_SPAN_MINUTES
        return BASE_MODIFIED + timedelta(minutes=minutes)

    def document_date(self, entity: EntityType, index: int) -> datetime:
        date_field = contract.SOURCES[entity].date_field or ""
        changed = self._changes.get((entity, index), {}).get(date_field)
        if changed is not None:
            return datetime.fromisoformat(changed)
        minutes = _hash(self.seed, entity, index, "date") % DOCUMENT_SPAN_MINUTES
        return BASE_DOCUMENT + timedelta(minutes=minutes)

    # -------------------------------------------------------------- records

    def record(self, entity: EntityType, index: int) -> dict[str, Any]:
        if not 0 <= index < self.count(entity):
            raise IndexError(f"{entity} has no record {index}")
        r = random.Random(f"{self.seed}|{entity}|{index}")
        source = contract.SOURCES[entity]
        record: dict[str, Any] = {source.id_field: self.code(entity, index)}
        record.update(_BUILDERS[entity](self, index, r))
        if source.date_field is not None:
            record[source.date_field] = iso(self.document_date(entity, index))
        record[contract.DELETED_FIELD] = self.deleted(entity, index)
        record[contract.MODIFIED_FIELD] = iso(self.modified_at(entity, index))
        record.update(self._changes.get((entity, index), {}))
        return record

    def records(self, entity: EntityType, indices: Iterable[int]) -> list[dict[str, Any]]:
        return [self.record(entity, index) for index in indices]

    def modify(self, entity: EntityType, index: int, **fields: Any) -> dict[str, Any]:
        """Change a record (a test's "someone edited it in RPApos"); ``Fecha_Modificacion``
        defaults to now. Returns the record as served from now on."""
        fields.setdefault(contract.MODIFIED_FIELD, iso(datetime.now()))
        with self._lock:
            self._changes.setdefault((entity, index), {}).update(fields)
            self._filtered.clear()
        return self.record(entity, index)

    def pick(self, entity: EntityType, index: int, salt: str) -> int:
        """A referenced row for record ``index``: always one of the active rows."""
        return _hash(self.seed, index, salt) % max(self.active(entity), 1)

    # -------------------------------------------------------------- listing

    def select(
        self,
        entity: EntityType,
        *,
        date_from: datetime | None = None,
        date_to: datetime | None = None,
        modified_since: datetime | None = None,
        within: range | None = None,
    ) -> range | list[int]:
        """The indices a list serves, in order (the date filters scan cheap hashes only, and the
        result is kept for the next pages)."""
        indices = within if within is not None else range(self.count(entity))
        if contract.SOURCES[entity].date_field is None:
            date_from = date_to = None
        if date_from is None and date_to is None and modified_since is None:
            return indices
        key = (entity, indices.start, indices.stop, date_from, date_to, modified_since)
        with self._lock:
            found = self._filtered.get(key)
            if found is not None:
                self._filtered.move_to_end(key)
                return found
        found = [i for i in indices if self._matches(entity, i, date_from, date_to, modified_since)]
        with self._lock:
            self._filtered[key] = found
            while len(self._filtered) > 32:
                self._filtered.popitem(last=False)
        return found

    def _matches(
        self,
        entity: EntityType,
        index: int,
        date_from: datetime | None,
        date_to: datetime | None,
        modified_since: datetime | None,
    ) -> bool:
        if modified_since is not None and self.modified_at(entity, index) < modified_since:
            return False
        if date_from is None and date_to is None:
            return True
        at = self.document_date(entity, index)
        return (date_from is None or at >= date_from) and (date_to is None or at < date_to)

    def mesas_of(self, area_index: int) -> range:
        per_area = self.volume.mesas_per_area
        if area_index >= self.active(E.AREA):
            return range(0)  # the soft-deleted area has no mesas
        return range(area_index * per_area, (area_index + 1) * per_area)

    def items_of(self, group_index: int) -> range:
        per_group = self.volume.items_per_group
        if group_index >= self.active(E.PLU_OPTION_GROUP):
            return range(0)
        return range(group_index * per_group, (group_index + 1) * per_group)

    def image(self, plu_index: int) -> bytes:
        """A small, valid PNG (8x8, one colour from the PLU)."""
        colour = _hash(self.seed, plu_index, "image").to_bytes(8, "big")[:3]
        return png(8, 8, colour)


_CODE_FORMAT: dict[EntityType, tuple[str, int]] = {
    E.PLU_GRUPO: ("G", 3),
    E.SKU_GRUPO: ("SG", 3),
    E.PRODUCCION_GRUPO: ("PG", 3),
    E.BODEGA: ("B", 2),
    E.PROVEEDOR: ("PV", 4),
    E.AREA: ("A", 2),
    E.PERSONA: ("PE", 6),
    E.SKU: ("SKU", 6),
    E.PLU: ("PLU", 6),
    E.USUARIO: ("USR", 3),
    E.BATCH_MAESTRO: ("BT", 6),
    E.PRECIO: ("PRE", 7),
    E.TIPO_GESTION: ("TG", 2),
    E.DISPOSITIVO_IO: ("IO", 3),
    E.PLU_OPTION_GROUP: ("MG", 3),
}


def png(width: int, height: int, rgb: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + rgb * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


# ------------------------------------------------------------------ one builder per entity

Builder = Callable[[Catalog, int, random.Random], dict[str, Any]]


def _moneda(c: Catalog, i: int, r: random.Random) -> dict[str, Any]:
    _, name, symbol = _MONEDAS[i]
    return {"Descripcion": name, "Simbolo": symbol, "Tasa_Cambio": 1.0 if i == 0 else _money(r, 0.1, 8.0)}


def _unidad(c: Catalog, i: int, r: random.Random) -> dict[str, Any]:
    return {"Descripcion": _UNIDADES[i][1], "Abreviatura": _UNIDADES[i][0].lower()}


def _grupo(kind: str) -> Builder:
    def build(c: Catalog, i: int, r: random.Random) -> dict[str, Any]:
        return {"Descripcion": f"{kind} {i + 1}", "Orden": i + 1}

    return build


def _bodega(c: Catalog, i: int, r: random.Random) -> dict[str, Any]:
    return {"Descripcion": f"Bodega {i + 1}", "Direccion": f"{r.randint(1, 30)}a calle {r.randint(1, 99)}-10"}


def _proveedor(c: Catalog, i: int, r: random.Random) -> dict[str, Any]:
    return {
        "Nombre": f"Distribuidora {r.choice(_SURNAMES)} {i + 1}",
        "NIT": f"{r.randint(1_000_000, 9_999_999)}-{r.randint(0, 9)}",
        "Telefono": f"+502{r.randint(20_000_000, 59_999_999)}",
        "Correo": f"ventas{i + 1}@proveedor.example",
    }


def _area(c: Catalog, i: int, r: random.Random) -> dict[str, Any]:
    return {"Descripcion": f"Área {i + 1}", "Codigo_Bodega": c.code(E.BODEGA, c.pick(E.BODEGA, i, "area"))}


def _persona(c: Catalog, i: int, r: random.Random) -> dict[str, Any]:
    first, last = r.choice(_NAMES), r.choice(_SURNAMES)
    return {
        "Nombre": f"{first} {last}",
        "NIT": "CF" if i % 4 == 0 else f"{r.randint(1_000_000, 9_999_999)}-{r.randint(0, 9)}",
        "Telefono": f"+502{r.randint(30_000_000, 59_999_999)}",
        "Correo": f"{first.lower()}.{i + 1}@cliente.example",
        "Tipo": "Empleado" if i % 5 == 0 else "Cliente",
    }


def _sku(c: Catalog, i: int, r: random.Random) -> dict[str, Any]:
    return {
        "Descripcion": f"Insumo {i + 1}",
        "Codigo_Grupo": c.code(E.SKU_GRUPO, c.pick(E.SKU_GRUPO, i, "sku-grupo")),
        "Codigo_Unidad": c.code(E.UNIDAD_MEDIDA, c.pick(E.UNIDAD_MEDIDA, i, "sku-unidad")),
        "Codigo_Proveedor": c.code(E.PROVEEDOR, c.pick(E.PROVEEDOR, i, "sku-proveedor")),
        "Costo": _money(r, 1, 200),
        "Existencia_Minima": r.randint(0, 50),
    }


def _plu(c: Catalog, i: int, r: random.Random) -> dict[str, Any]:
    groups = c.active(E.PLU_OPTION_GROUP)
    offered = sorted({c.pick(E.PLU_OPTION_GROUP, i, f"opciones-{k}") for k in range(r.randint(0, 2))})
    return {
        "Descripcion": f"{_FOODS[i % len(_FOODS)]} {r.choice(_STYLES)} {i + 1}",
        "Codigo_Grupo": c.code(E.PLU_GRUPO, c.pick(E.PLU_GRUPO, i, "plu-grupo")),
        "Codigo_Unidad": c.code(E.UNIDAD_MEDIDA, c.pick(E.UNIDAD_MEDIDA, i, "plu-unidad")),
        "Precio": _money(r, 5, 150),
        "Costo": _money(r, 1, 50),
        "Codigo_Barras": f"750{_hash(c.seed, i, 'barras') % 10**10:010d}",
        "Tiene_Imagen": c.has_image(i),
        "Grupos_Opciones": [
            {"Codigo_Grupo": c.code(E.PLU_OPTION_GROUP, g), "Orden": k + 1}
            for k, g in enumerate(offered if groups else [])
        ],
    }


def _usuario(c: Catalog, i: int, r: random.Random) -> dict[str, Any]:
    return {"Nombre": f"{r.choice(_NAMES)} {r.choice(_SURNAMES)}", "Usuario": f"user{i + 1}", "Rol": "Cajero"}


def _batch(c: Catalog, i: int, r: random.Random) -> dict[str, Any]:
    return {
        "Descripcion": f"Receta {i + 1}",
        "Codigo_PLU": c.code(E.PLU, _hash(c.seed, i, "batch-plu") % max(c.count(E.PLU), 1)),
        "Codigo_SKU": c.code(E.SKU, _hash(c.seed, i, "batch-sku") % max(c.count(E.SKU), 1)),
        "Codigo_Unidad": c.code(E.UNIDAD_MEDIDA, c.pick(E.UNIDAD_MEDIDA, i, "batch-unidad")),
        "Cantidad": round(r.uniform(0.1, 5), 3),
    }


def _precio(c: Catalog, i: int, r: random.Random) -> dict[str, Any]:
    plu, moneda = divmod(i, max(c.active(E.MONEDA), 1))
    return {
        "Codigo_PLU": c.code(E.PLU, plu),
        "Codigo_Moneda": c.code(E.MONEDA, moneda),
        "Precio": _money(r, 5, 150),
        "Lista": "General",
    }


def _mesa(c: Catalog, i: int, r: random.Random) -> dict[str, Any]:
    area, k = divmod(i, max(c.volume.mesas_per_area, 1))
    return {
        "Descripcion": f"Mesa {k + 1}",
        "Codigo_Area": c.code(E.AREA, area),
        "Capacidad": r.choice((2, 4, 6)),
    }


def _tipo_gestion(c: Catalog, i: int, r: random.Random) -> dict[str, Any]:
    return {"Descripcion": _GESTIONES[i]}


def _estacion(c: Catalog, i: int, r: random.Random) -> dict[str, Any]:
    return {"Descripcion": f"Caja {i + 1}", "Codigo_Area": c.code(E.AREA, c.pick(E.AREA, i, "estacion"))}


def _dispositivo(c: Catalog, i: int, r: random.Random) -> dict[str, Any]:
    estacion = _hash(c.seed, i, "dispositivo") % max(c.count(E.ESTACION_TRABAJO), 1)
    return {"Descripcion": f"Impresora {i + 1}", "Tipo": "Impresora", "Codigo_Estacion": estacion + 1}


def _lines(c: Catalog, r: random.Random, quantity: str) -> list[dict[str, Any]]:
    """One to three lines, each of a different SKU."""
    skus = range(c.count(E.SKU))
    chosen = r.sample(skus, min(r.randint(1, 3), len(skus)))
    return [{"Codigo_SKU": c.code(E.SKU, sku), quantity: r.randint(1, 20)} for sku in chosen]


def _document(entity: EntityType) -> Builder:
    def build(c: Catalog, i: int, r: random.Random) -> dict[str, Any]:
        origin = c.pick(E.BODEGA, i, f"{entity}-bodega")
        record: dict[str, Any] = {"Codigo_Bodega": c.code(E.BODEGA, origin)}
        if entity is E.COMPRA:
            record["Codigo_Proveedor"] = c.code(E.PROVEEDOR, c.pick(E.PROVEEDOR, i, "compra-proveedor"))
            record["Lineas"] = [{**line, "Costo": _money(r, 1, 200)} for line in _lines(c, r, "Cantidad")]
            record["Total"] = round(sum(line["Cantidad"] * line["Costo"] for line in record["Lineas"]), 2)
        elif entity is E.TRASLADO:
            bodegas = max(c.active(E.BODEGA), 1)
            destination = (origin + 1 + _hash(c.seed, i, "destino") % max(bodegas - 1, 1)) % bodegas
            record["Codigo_Bodega_Destino"] = c.code(E.BODEGA, destination)
            record["Lineas"] = _lines(c, r, "Cantidad")
        elif entity is E.CONTEO_FISICO:
            record["Lineas"] = _lines(c, r, "Cantidad_Contada")
        elif entity is E.MERMA:
            record["Motivo"] = r.choice(("Vencido", "Dañado", "Derrame"))
            record["Lineas"] = _lines(c, r, "Cantidad")
        elif entity is E.PRODUCCION:
            record["Codigo_Grupo"] = c.code(E.PRODUCCION_GRUPO, c.pick(E.PRODUCCION_GRUPO, i, "produccion"))
            record["Codigo_PLU"] = c.code(E.PLU, _hash(c.seed, i, "produccion-plu") % max(c.count(E.PLU), 1))
            record["Cantidad"] = r.randint(1, 50)
            record["Lineas"] = _lines(c, r, "Cantidad")
        else:
            record["Lineas"] = _lines(c, r, "Cantidad")
        return record

    return build


def _modifier_group(c: Catalog, i: int, r: random.Random) -> dict[str, Any]:
    minimo = r.randint(0, 1)
    return {"Descripcion": f"Opciones {i + 1}", "Minimo": minimo, "Maximo": minimo + r.randint(1, 3)}


def _modifier_item(c: Catalog, i: int, r: random.Random) -> dict[str, Any]:
    group, k = divmod(i, max(c.volume.items_per_group, 1))
    return {
        "Codigo_Grupo": c.code(E.PLU_OPTION_GROUP, group),
        "Codigo_PLU": c.code(E.PLU, _hash(c.seed, i, "item-plu") % max(c.count(E.PLU), 1)),
        "Descripcion": _MODIFIERS[(group + k) % len(_MODIFIERS)],
        "Precio_Adicional": Decimal(r.randint(0, 20)).quantize(Decimal("0.01")),
        "Orden": k + 1,
    }


_BUILDERS: dict[EntityType, Builder] = {
    E.MONEDA: _moneda,
    E.UNIDAD_MEDIDA: _unidad,
    E.PLU_GRUPO: _grupo("Grupo"),
    E.SKU_GRUPO: _grupo("Grupo de insumos"),
    E.PRODUCCION_GRUPO: _grupo("Grupo de producción"),
    E.BODEGA: _bodega,
    E.PROVEEDOR: _proveedor,
    E.AREA: _area,
    E.PERSONA: _persona,
    E.SKU: _sku,
    E.PLU: _plu,
    E.USUARIO: _usuario,
    E.BATCH_MAESTRO: _batch,
    E.PRECIO: _precio,
    E.MESA: _mesa,
    E.TIPO_GESTION: _tipo_gestion,
    E.ESTACION_TRABAJO: _estacion,
    E.DISPOSITIVO_IO: _dispositivo,
    **{entity: _document(entity) for entity in _OPERATIONAL},
    E.PLU_OPTION_GROUP: _modifier_group,
    E.PLU_OPTION_ITEM: _modifier_item,
}

# ------------------------------------------------------------------ tenants and faults


@dataclass
class Tenant:
    subdomain: str
    username: str
    password: str
    sat_username: str
    sat_password: str
    catalog: Catalog
    localizacion_id: int
    forms: OrderedDict[tuple[str, str, str], None] = field(default_factory=OrderedDict)
    sessions: dict[str, str] = field(default_factory=dict)  # token -> session cookie
    rejected_logins: int = 0


@dataclass
class _Rule:
    kind: str  # "status", "hang", "drop", "slow"
    remaining: float  # math.inf for an outage
    path: str | None = None  # prefix of the tenant-relative path (or SOAP_PATH); None: any
    subdomain: str | None = None
    status: int = 503
    seconds: float = 0.0

    def matches(self, subdomain: str | None, path: str) -> bool:
        return (self.subdomain is None or self.subdomain == subdomain) and (
            self.path is None or path.lower().startswith(self.path.lower())
        )


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    subdomain: str | None  # None for the SOAP service
    path: str  # tenant-relative (``/api/PLU/Maestro``) or SOAP_PATH
    query: dict[str, str]
    operation: str | None  # the SOAP operation
    status: int  # 0: no answer (hang, drop)
    fault: str | None  # the injected fault's kind


@dataclass
class _Answer:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Request:
    method: str
    path: str  # tenant-relative
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass
class _Outcome:
    answer: _Answer | None  # None: no answer at all (hang, drop)
    rule: _Rule | None
    subdomain: str | None
    operation: str | None


def _json(status: int, body: Any) -> _Answer:
    return _Answer(status, json.dumps(body, ensure_ascii=False, default=str).encode())


class FakeRpapos(LoopbackServer):
    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, hang_seconds: float = HANG_SECONDS) -> None:
        super().__init__(_handler_for(self), host, port, "fake-rpapos")
        self._lock = threading.Lock()
        self._tenants: dict[str, Tenant] = {}
        self._device_tokens: dict[str, str] = {}  # SOAP token -> subdomain
        self._rules: list[_Rule] = []
        self._outage: _Rule | None = None
        self._soap_faults: list[tuple[str | None, str, list[int]]] = []
        self._requests: list[RecordedRequest] = []
        self._hang_seconds = hang_seconds
        self._entities = {
            source.path.lower(): entity
            for entity, source in contract.SOURCES.items()
            if source.transport in (Transport.REST, Transport.REST_PER_PARENT)
        }

    # -------------------------------------------------------------- lifecycle

    @property
    def soap_url(self) -> str:
        """The SOAP endpoint (a connection's db4 address), the WSDL at ``?wsdl``."""
        return self.base_url + contract.SOAP_PATH

    def tenant_url(self, subdomain: str) -> str:
        """The tenant's REST base URL (``https://{subdomain}.2rpa.com`` in the cloud)."""
        return f"{self.base_url}{TENANT_PREFIX}{subdomain}"

    # -------------------------------------------------------------- tenants

    def add_tenant(
        self,
        subdomain: str,
        username: str = DEFAULT_USERNAME,
        password: str = DEFAULT_PASSWORD,
        *,
        seed: str | None = None,
        volume: Volume | None = None,
        sat_username: str | None = None,
        sat_password: str | None = None,
    ) -> Tenant:
        """A tenant with its data generated from ``seed`` (default: the subdomain). The SAT
        user and password default to the REST ones."""
        catalog = Catalog(seed or subdomain, volume or Volume())
        tenant = Tenant(
            subdomain,
            username,
            password,
            sat_username or username,
            sat_password or password,
            catalog,
            localizacion_id=1 + _hash(catalog.seed, "localizacion") % 300,
        )
        with self._lock:
            self._tenants[subdomain] = tenant
        return tenant

    def catalog(self, subdomain: str) -> Catalog:
        return self._tenants[subdomain].catalog

    def set_password(self, subdomain: str, password: str) -> None:
        with self._lock:
            self._tenants[subdomain].password = password

    def sessions(self, subdomain: str) -> int:
        with self._lock:
            return len(self._tenants[subdomain].sessions)

    # -------------------------------------------------------------- faults

    def fail(
        self, path: str | None = None, *, status: int = 503, times: int = 1, subdomain: str | None = None
    ) -> None:
        """The next ``times`` requests under ``path`` answer ``status`` (an HTML error page)."""
        self._add(_Rule("status", times, path, subdomain, status=status))

    def hang(self, path: str | None = None, *, times: int = 1, subdomain: str | None = None) -> None:
        """The next ``times`` requests get no answer (the client times out; the connection
        closes after ``hang_seconds``)."""
        self._add(_Rule("hang", times, path, subdomain))

    def drop(self, path: str | None = None, *, times: int = 1, subdomain: str | None = None) -> None:
        """The next ``times`` requests see the connection closed without an answer."""
        self._add(_Rule("drop", times, path, subdomain))

    def slow(
        self, path: str | None = None, *, seconds: float, times: int = 1, subdomain: str | None = None
    ) -> None:
        """The next ``times`` requests are answered normally after ``seconds``."""
        self._add(_Rule("slow", times, path, subdomain, seconds=seconds))

    def outage(self, *, status: int = 503, drop: bool = False) -> None:
        """Every request fails (``status``, or a dropped connection) until ``end_outage``."""
        with self._lock:
            self._outage = _Rule("drop" if drop else "status", float("inf"), status=status)

    def end_outage(self) -> None:
        with self._lock:
            self._outage = None

    def expire_sessions(self, subdomain: str | None = None) -> None:
        """Every REST session (of a tenant, or of all) ends: the next API call gets 401."""
        with self._lock:
            for tenant in self._tenants.values():
                if subdomain is None or tenant.subdomain == subdomain:
                    tenant.sessions.clear()

    def reject_logins(self, subdomain: str, times: int = 1) -> None:
        """The next ``times`` logins fail as with a wrong password."""
        with self._lock:
            self._tenants[subdomain].rejected_logins += times

    def soap_fault(self, message: str, *, operation: str | None = None, times: int = 1) -> None:
        """The next ``times`` SOAP calls (of ``operation``, or any) answer a fault with ``message``."""
        with self._lock:
            self._soap_faults.append((operation, message, [times]))

    def revoke_device_tokens(self, subdomain: str | None = None) -> None:
        with self._lock:
            for token, owner in list(self._device_tokens.items()):
                if subdomain is None or owner == subdomain:
                    del self._device_tokens[token]

    def clear_faults(self) -> None:
        with self._lock:
            self._rules.clear()
            self._soap_faults.clear()
            self._outage = None

    def reset(self) -> None:
        """No faults, no sessions, no device tokens, no recorded requests (tenants stay)."""
        self.clear_faults()
        self.expire_sessions()
        with self._lock:
            self._device_tokens.clear()
            self._requests.clear()
            for tenant in self._tenants.values():
                tenant.rejected_logins = 0

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def _add(self, rule: _Rule) -> None:
        with self._lock:
            self._rules.append(rule)

    def _injected(self, subdomain: str | None, path: str) -> _Rule | None:
        with self._lock:
            if self._outage is not None:
                return self._outage
            for rule in self._rules:
                if rule.remaining > 0 and rule.matches(subdomain, path):
                    rule.remaining -= 1
                    return rule
        return None

    # -------------------------------------------------------------- routing

    def _route(self, request: _Request) -> tuple[Tenant | None, str | None, _Request]:
        """(tenant, subdomain, the request with its tenant-relative path)."""
        if not request.path.startswith(TENANT_PREFIX):
            return None, None, request
        subdomain, _, rest = request.path[len(TENANT_PREFIX) :].partition("/")
        relative = _Request(request.method, "/" + rest, request.query, request.headers, request.body)
        with self._lock:
            return self._tenants.get(subdomain), subdomain, relative

    def handle(self, request: _Request) -> _Outcome:
        """Answer a request (None: no answer at all) and record it."""
        tenant, subdomain, request = self._route(request)
        rule = self._injected(subdomain, request.path)
        outcome = _Outcome(None, rule, subdomain, None)
        if rule is not None and rule.kind == "status":
            page = f"<html><body><h1>{rule.status} Error</h1></body></html>".encode()
            outcome.answer = _Answer(rule.status, page, "text/html; charset=utf-8")
        elif rule is not None and rule.kind in ("hang", "drop"):
            pass
        else:
            if rule is not None and rule.kind == "slow":
                self._released.wait(rule.seconds)
            if subdomain is None and request.path.lower() == contract.SOAP_PATH.lower():
                outcome.answer, outcome.operation = self._soap(request)
            elif tenant is None:
                outcome.answer = _json(404, {"Message": "No existe"})
            else:
                outcome.answer = self._rest(tenant, request)
        recorded = RecordedRequest(
            request.method,
            subdomain,
            request.path,
            request.query,
            outcome.operation,
            outcome.answer.status if outcome.answer else 0,
            rule.kind if rule is not None else None,
        )
        with self._lock:
            self._requests.append(recorded)
        return outcome

    # -------------------------------------------------------------- the WebForms login

    def _rest(self, tenant: Tenant, request: _Request) -> _Answer:
        if request.path.lower() == contract.LOGIN_PATH.lower():
            if request.method == "GET":
                return self._login_form(tenant)
            if request.method == "POST":
                return self._login(tenant, request)
            return _json(405, {"Message": "Método no permitido"})
        if request.path.startswith(contract.API_PREFIX):
            if request.method != "GET":
                return _json(405, {"Message": "Método no permitido"})
            if not self._authorized(tenant, request):
                return _json(401, {"Message": "Authorization has been denied for this request."})
            return self._api(tenant, request)
        return _json(404, {"Message": "No existe"})

    def _login_form(self, tenant: Tenant, error: str | None = None) -> _Answer:
        state = (
            base64.b64encode(secrets.token_bytes(48)).decode(),
            secrets.token_hex(4).upper(),
            base64.b64encode(secrets.token_bytes(32)).decode(),
        )
        with self._lock:
            tenant.forms[state] = None
            while len(tenant.forms) > 256:
                tenant.forms.popitem(last=False)
        hidden = "\n".join(
            f'<input type="hidden" name="{name}" id="{name}" value="{html.escape(value)}" />'
            for name, value in zip(contract.LOGIN_HIDDEN_FIELDS, state, strict=True)
        )
        button, label = contract.LOGIN_BUTTON
        message = f'<span id="LabelError" class="error">{html.escape(error)}</span>' if error else ""
        page = f"""<!DOCTYPE html>
<html><head><title>RPApos - Ingreso</title></head><body>
<form method="post" action="./Login" id="form1">
<div class="aspNetHidden">
{hidden}
</div>
<input name="{contract.LOGIN_USER_FIELD}" type="text" id="{contract.LOGIN_USER_FIELD}" />
<input name="{contract.LOGIN_PASSWORD_FIELD}" type="password" id="{contract.LOGIN_PASSWORD_FIELD}" />
<input type="submit" name="{button}" value="{label}" id="{button}" />
{message}
</form></body></html>"""
        return _Answer(200, page.encode(), "text/html; charset=utf-8")

    def _login(self, tenant: Tenant, request: _Request) -> _Answer:
        form = {key: values[0] for key, values in parse_qs(request.body.decode("utf-8", "replace")).items()}
        state = tuple(form.get(name, "") for name in contract.LOGIN_HIDDEN_FIELDS)
        with self._lock:
            issued = state in tenant.forms
        if not issued:
            refused = b"<html><body><h1>Invalid postback or callback argument.</h1></body></html>"
            return _Answer(400, refused, "text/html; charset=utf-8")
        button, label = contract.LOGIN_BUTTON
        if form.get(button) != label:
            return self._login_form(tenant)  # no button click: the form again
        with self._lock:
            rejected = tenant.rejected_logins > 0
            if rejected:
                tenant.rejected_logins -= 1
            valid = (
                not rejected
                and _same(form.get(contract.LOGIN_USER_FIELD, ""), tenant.username)
                and _same(form.get(contract.LOGIN_PASSWORD_FIELD, ""), tenant.password)
            )
        if not valid:
            return self._login_form(tenant, "Usuario o contraseña incorrectos")
        token, cookie = _jwt_like(tenant), secrets.token_hex(12)
        with self._lock:
            tenant.sessions[token] = cookie
        page = (
            "<!DOCTYPE html><html><head><title>RPApos</title></head><body>"
            f"<script type=\"text/javascript\">localStorage.token = '{token}';"
            "window.location = 'Default.aspx';</script></body></html>"
        )
        headers = {
            "Set-Cookie": f"{SESSION_COOKIE}={cookie}; path={TENANT_PREFIX}{tenant.subdomain}; HttpOnly"
        }
        return _Answer(200, page.encode(), "text/html; charset=utf-8", headers)

    def _authorized(self, tenant: Tenant, request: _Request) -> bool:
        bearer = request.headers.get("authorization", "")
        token = bearer.removeprefix("Bearer ").strip() if bearer.startswith("Bearer ") else ""
        cookies: dict[str, str] = {}
        for part in request.headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            cookies[name] = value
        with self._lock:
            cookie = tenant.sessions.get(token)
        return cookie is not None and _same(cookies.get(SESSION_COOKIE, ""), cookie)

    # -------------------------------------------------------------- the REST API

    def _api(self, tenant: Tenant, request: _Request) -> _Answer:
        path = unquote(request.path[len(contract.API_PREFIX) :]).strip("/")
        catalog = tenant.catalog
        entity = self._entities.get(path.lower())
        within: range | None = None
        if entity is None:
            parent_path, _, parent_id = path.rpartition("/")
            entity = self._entities.get(parent_path.lower())
            if entity is None or contract.SOURCES[entity].transport is not Transport.REST_PER_PARENT:
                return _json(404, {"Message": f"No existe el recurso {path}"})
            area = catalog.index_of(E.AREA, parent_id)
            if area is None:
                return _json(404, {"Message": f"No existe el área {parent_id}"})
            within = catalog.mesas_of(area)
        elif contract.SOURCES[entity].transport is not Transport.REST:
            return _json(404, {"Message": f"{path} se lee por padre"})
        try:
            page, size, filters = _listing_params(request.query)
        except ValueError as exc:
            return _json(400, {"Message": str(exc)})
        indices = catalog.select(entity, within=within, **filters)
        chosen = indices[(page - 1) * size : page * size]
        envelope = {
            contract.ITEMS_KEY: catalog.records(entity, chosen),
            contract.PAGE_PARAM: page,
            contract.PAGE_SIZE_PARAM: size,
            contract.TOTAL_KEY: len(indices),
        }
        return _json(200, envelope)

    # -------------------------------------------------------------- the SOAP service

    def _soap(self, request: _Request) -> tuple[_Answer, str | None]:
        if request.method == "GET":
            if any(key.lower() == "wsdl" for key in request.query):
                return self._wsdl(), None
            return _Answer(404, b"", "text/plain"), None
        if request.method != "POST":
            return _Answer(405, b"", "text/plain"), None
        if "xml" not in request.headers.get("content-type", ""):
            return _Answer(415, b"", "text/plain"), None
        try:
            operation, params = parse_envelope(request.body)
        except ValueError as exc:
            return _soap_fault(f"Solicitud inválida: {exc}"), None
        scripted = self._scripted_fault(operation)
        if scripted is not None:
            return _soap_fault(scripted, code="soap:Server"), operation
        handler = _SOAP_OPERATIONS.get(operation)
        if handler is None:
            return _soap_fault(f"Operación desconocida: {operation}"), operation
        return handler(self, params), operation

    def _wsdl(self) -> _Answer:
        text = WSDL_PATH.read_text(encoding="utf-8")
        text = _WSDL_ADDRESS.sub(lambda m: f"{m[1]}{self.soap_url}{m[2]}", text, count=1)
        return _Answer(200, text.encode(), "text/xml; charset=utf-8")

    def _scripted_fault(self, operation: str) -> str | None:
        with self._lock:
            for wanted, message, remaining in self._soap_faults:
                if remaining[0] > 0 and wanted in (None, operation):
                    remaining[0] -= 1
                    return message
        return None

    def _sat_tenant(self, params: dict[str, str]) -> tuple[Tenant | None, bool]:
        with self._lock:
            tenant = self._tenants.get(params.get("pSubdominio", ""))
        if tenant is None:
            return None, False
        valid = _same(params.get("pUsuario", ""), tenant.sat_username) and _same(
            params.get("pPassword", ""), tenant.sat_password
        )
        return tenant, valid

    def _token_tenant(self, params: dict[str, str]) -> Tenant | None:
        with self._lock:
            owner = self._device_tokens.get(params.get("pToken", ""))
            return self._tenants.get(owner) if owner else None

    def _cuenta_validar(self, params: dict[str, str]) -> _Answer:
        tenant, valid = self._sat_tenant(params)
        message = (
            "Cuenta válida"
            if valid
            else ("Usuario o contraseña incorrectos" if tenant else "Subdominio no existe")
        )
        return _soap_response("Cuenta_Validar_1", [("Cuenta_Validar_1Result", valid), ("pMensaje", message)])

    def _dispositivo_registra(self, params: dict[str, str]) -> _Answer:
        tenant, valid = self._sat_tenant(params)
        if tenant is None:
            return _soap_fault(f"Subdominio no existe: {params.get('pSubdominio', '')}")
        if not valid:
            return _soap_fault(FAULT_CREDENTIALS)
        token = secrets.token_hex(24)
        with self._lock:
            self._device_tokens[token] = tenant.subdomain
        seed = tenant.catalog.seed
        return _soap_response(
            "Dispositivo_Registra_2",
            [
                ("pToken", token),
                ("pLocalizacion_Id", tenant.localizacion_id),
                ("pConexion_DB", 1000 + _hash(seed, "db") % 9000),
                ("pConexion_Mainframe", 1 + _hash(seed, "mainframe") % 50),
            ],
        )

    def _catalogo(self, params: dict[str, str]) -> _Answer:
        tenant = self._token_tenant(params)
        if tenant is None:
            return _soap_fault(FAULT_TOKEN)
        if _int(params.get("pEstacion_Trabajo")) <= 0:
            return _soap_fault(FAULT_WORKSTATION)
        catalogo = params.get("pCatalogo", "")
        if catalogo != contract.SOAP_CATALOGO_MODIFIER_GROUPS:
            return _soap_fault(f"Catálogo no soportado: {catalogo}")
        page, size = _int(params.get("pPagina")), _int(params.get("pRegistros"))
        if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
            return _soap_fault(f"Paginación inválida (pPagina {page}, pRegistros {size})")
        catalog = tenant.catalog
        total = catalog.count(E.PLU_OPTION_GROUP)
        chosen = range(total)[(page - 1) * size : page * size]
        groups = [("Producto_Grupo", _soap_fields(catalog.record(E.PLU_OPTION_GROUP, i))) for i in chosen]
        return _soap_response("Catalogo_4", [("Catalogo_4Result", groups), ("pTotal", total)])

    def _grupo_detalle(self, params: dict[str, str]) -> _Answer:
        tenant = self._token_tenant(params)
        if tenant is None:
            return _soap_fault(FAULT_TOKEN)
        code = params.get("pCodigo_Grupo", "")
        group = tenant.catalog.index_of(E.PLU_OPTION_GROUP, code)
        if group is None:
            return _soap_fault(f"Grupo no existe: {code}")
        items = [
            ("Producto_Grupo_Detalle", _soap_fields(tenant.catalog.record(E.PLU_OPTION_ITEM, i)))
            for i in tenant.catalog.items_of(group)
        ]
        return _soap_response("Producto_Grupo_Detalle", [("Producto_Grupo_DetalleResult", items)])

    def _producto_um(self, params: dict[str, str]) -> _Answer:
        tenant = self._token_tenant(params)
        if tenant is None:
            return _soap_fault(FAULT_TOKEN)
        if _int(params.get("pEstacion_Trabajo")) <= 0:
            return _soap_fault(FAULT_WORKSTATION)
        code = params.get("pCodigo_PLU", "")
        plu = tenant.catalog.index_of(E.PLU, code)
        if plu is None:
            return _soap_fault(f"PLU no existe: {code}")
        if not tenant.catalog.has_image(plu):
            return _soap_response("Producto_U_M", [])
        return _soap_response(
            "Producto_U_M",
            [
                ("pNombre_Archivo", f"{code}.png"),
                ("pTipo_Contenido", "image/png"),
                ("pContenido", tenant.catalog.image(plu)),
            ],
        )


_SOAP_OPERATIONS: dict[str, Callable[[FakeRpapos, dict[str, str]], _Answer]] = {
    "Cuenta_Validar_1": FakeRpapos._cuenta_validar,
    "Dispositivo_Registra_2": FakeRpapos._dispositivo_registra,
    "Catalogo_4": FakeRpapos._catalogo,
    "Producto_Grupo_Detalle": FakeRpapos._grupo_detalle,
    "Producto_U_M": FakeRpapos._producto_um,
}


def _jwt_like(tenant: Tenant) -> str:
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    claims = {
        "sub": tenant.username,
        "tenant": tenant.subdomain,
        "iat": int(time.time()),
        "jti": secrets.token_hex(8),
    }
    header = json.dumps({"alg": "HS256", "typ": "JWT"}).encode()
    return ".".join((part(header), part(json.dumps(claims).encode()), part(secrets.token_bytes(32))))


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _int(value: str | None) -> int:
    try:
        return int(value or "0")
    except ValueError:
        return 0


def _listing_params(query: dict[str, str]) -> tuple[int, int, dict[str, datetime | None]]:
    """(page, applied page size, date filters) from a list's query string; ValueError if bad."""
    try:
        page = int(query.get(contract.PAGE_PARAM, "1"))
        size = int(query.get(contract.PAGE_SIZE_PARAM, str(contract.DEFAULT_PAGE_SIZE)))
    except ValueError:
        raise ValueError(f"{contract.PAGE_PARAM} y {contract.PAGE_SIZE_PARAM} son enteros") from None
    if page < 1 or size < 1:
        raise ValueError(f"{contract.PAGE_PARAM} y {contract.PAGE_SIZE_PARAM} empiezan en 1")
    filters: dict[str, datetime | None] = {}
    for param, name in (
        (contract.DATE_FROM_PARAM, "date_from"),
        (contract.DATE_TO_PARAM, "date_to"),
        (contract.MODIFIED_SINCE_PARAM, "modified_since"),
    ):
        raw = query.get(param)
        if raw is None:
            filters[name] = None
            continue
        try:
            value = datetime.fromisoformat(raw)
        except ValueError:
            raise ValueError(f"{param}: fecha inválida {raw!r}") from None
        if value.tzinfo is not None:
            raise ValueError(f"{param}: fecha en hora local, sin zona")
        filters[name] = value
    return page, min(size, MAX_PAGE_SIZE), filters


# ------------------------------------------------------------------ SOAP envelopes


def parse_envelope(body: bytes) -> tuple[str, dict[str, str]]:
    """(operation, {parameter: text}) of a SOAP 1.1 request; ValueError for anything else.
    A DTD or an entity declaration is refused before parsing."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("no es UTF-8") from None
    if _DECLARATION.search(text):
        raise ValueError("DTD y entidades no permitidas")
    try:
        # Safe: declarations (DTDs, entities) were refused above, and expat fetches nothing.
        root = ElementTree.fromstring(text)  # noqa: S314
    except ElementTree.ParseError as exc:
        raise ValueError(f"XML inválido ({exc})") from None
    body_element = root.find(f"{{{SOAP_ENV}}}Body") if root.tag == f"{{{SOAP_ENV}}}Envelope" else None
    if body_element is None or len(body_element) == 0:
        raise ValueError("no es un sobre SOAP 1.1")
    call = body_element[0]
    namespace, _, operation = call.tag[1:].partition("}")
    if namespace != contract.SOAP_NAMESPACE:
        raise ValueError(f"espacio de nombres desconocido {namespace}")
    return operation, {child.tag.rpartition("}")[2]: (child.text or "") for child in call}


# The WSDL's sequences, in order (records carry Fecha_Modificacion; items do not serve it).
_SOAP_GROUP_FIELDS = ("Codigo_Grupo", "Descripcion", "Minimo", "Maximo", "Eliminado", "Fecha_Modificacion")
_SOAP_ITEM_FIELDS = (
    "Codigo_Detalle", "Codigo_Grupo", "Codigo_PLU", "Descripcion", "Precio_Adicional", "Orden", "Eliminado"
)  # fmt: skip


def _soap_fields(record: dict[str, Any]) -> dict[str, Any]:
    names = _SOAP_ITEM_FIELDS if "Codigo_Detalle" in record else _SOAP_GROUP_FIELDS
    return {name: record[name] for name in names}


def _xml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return "".join(f"<{key}>{_xml_value(item)}</{key}>" for key, item in value.items())
    if isinstance(value, list):
        return "".join(f"<{key}>{_xml_value(item)}</{key}>" for key, item in value)
    return escape(str(value))


def _soap_response(operation: str, parts: list[tuple[str, Any]]) -> _Answer:
    inner = "".join(f"<{name}>{_xml_value(value)}</{name}>" for name, value in parts)
    body = f'<{operation}Response xmlns="{contract.SOAP_NAMESPACE}">{inner}</{operation}Response>'
    return _Answer(200, _envelope(body), "text/xml; charset=utf-8")


def _soap_fault(message: str, code: str = "soap:Client") -> _Answer:
    body = (
        f"<soap:Fault><faultcode>{code}</faultcode>"
        f"<faultstring>{escape(message)}</faultstring><detail /></soap:Fault>"
    )
    return _Answer(500, _envelope(body), "text/xml; charset=utf-8")


def _envelope(body: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<soap:Envelope xmlns:soap="{SOAP_ENV}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
        ' xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
        f"<soap:Body>{body}</soap:Body></soap:Envelope>"
    ).encode()


# ------------------------------------------------------------------ HTTP


def _handler_for(fake: FakeRpapos) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._respond()

        def do_POST(self) -> None:
            self._respond()

        def _respond(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self.send_error(413)
                return
            request = _Request(
                self.command,
                url.path,
                {key: values[0] for key, values in parse_qs(url.query, keep_blank_values=True).items()},
                {name.lower(): value for name, value in self.headers.items()},
                self.rfile.read(length) if length else b"",
            )
            outcome = fake.handle(request)
            answer = outcome.answer
            if answer is None:
                if outcome.rule is not None and outcome.rule.kind == "hang":
                    fake._released.wait(fake._hang_seconds)
                self.close_connection = True
                return
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(answer.body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # the request log is fake.requests

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a fake RPApos (login, REST, SOAP) on loopback.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tenant", action="append", default=[], help="subdomain (repeatable; default demo)")
    parser.add_argument("--username", default=DEFAULT_USERNAME)
    parser.add_argument("--password", default=DEFAULT_PASSWORD)
    parser.add_argument("--plus", type=int, default=Volume.plus, help="PLUs per tenant")
    args = parser.parse_args()
    with FakeRpapos(port=args.port) as rpapos:
        for subdomain in args.tenant or ["demo"]:
            rpapos.add_tenant(subdomain, args.username, args.password, volume=Volume(plus=args.plus))
            print(f"tenant {subdomain}: REST {rpapos.tenant_url(subdomain)}", flush=True)
        print(f"SOAP {rpapos.soap_url} (WSDL at ?wsdl); Ctrl-C to stop", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
