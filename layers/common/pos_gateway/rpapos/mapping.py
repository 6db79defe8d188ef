"""One RPApos record -> the FlowPOS catalog row it loads into (pos_gateway.rpapos.loader writes it).

Each loadable entity type has a pydantic model of the fields it uses (named as the contract
serves them, docs/rpapos-contract.md; extra fields are ignored) and a mapper from the validated
record to a ``Mapped`` row. References to other RPApos records stay ``Ref`` placeholders until
the loader resolves them through the id map; a record whose reference does not resolve fails.

Rules the mappers apply:
- Money and quantities are ``Decimal`` (a JSON float goes through ``Decimal(str(x))``), rounded
  half up to the column's scale (numeric(19,4); exchange rates numeric(19,8)), never floats.
- Blank optional text loads as NULL; a required name that is blank fails the record.
- Operational document dates carry no offset (the contract): they are the connection's local
  time, stored in UTC.
- plu: is_raw_material false, its price in the record's Codigo_Moneda or the connection's
  currency. sku: is_raw_material true, no price (Costo is a cost). The product table has no
  cost, barcode nor supplier column: Costo, Codigo_Barras and a SKU's Codigo_Proveedor are not
  loaded (the archive keeps them).
- mesa: Capacidad 0 means unknown (NULL). Modifier groups: Maximo 0 or absent means no upper
  bound (NULL); a Maximo below max(Minimo, 1) fails the record.
- tipo_gestion: flowpos_order_type from the connection's tipo_gestion_map; an unmapped code
  loads with NULL (the operator maps it later). The mapped value is part of the record's hash
  (``payload_hash``), so editing the map reloads the order type on the next sync.
- persona: NIT "CF" (consumidor final) means no tax id.
- batch_maestro: one recipe of the PLU; its ingredient lines are ``Lineas`` when the record has
  them, else the one Codigo_SKU x Cantidad (in Codigo_Unidad). A SKU listed twice in one unit is
  summed.
- Stock documents: one movement, idempotency key ``rpapos:<entity>:<number>``, lines numbered
  from 1 in document order. produccion: the SKU lines (consumed) then one line of the produced
  PLU (Codigo_PLU x Cantidad); a reader tells them apart by product.is_raw_material. The
  production group has no column: it is kept in notes. merma: Motivo in notes.
"""

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from pos_gateway.rpapos import contract
from pos_gateway.rpapos.contract import EntityType

E = EntityType

__all__ = [
    "Invalid",
    "Mapped",
    "Ref",
    "Rules",
    "ValidationError",
    "canonical_json",
    "external_id",
    "invalid_reason",
    "map_record",
    "movement_key",
    "payload_hash",
]

# ---------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Ref:
    """Another RPApos record, by entity type and external id: resolved through the id map."""

    entity: EntityType
    external_id: str


@dataclass(frozen=True, slots=True)
class Mapped:
    """A target row (Ref values to resolve), whether it is soft-deleted, and its child rows
    (recipe items, stock movement lines). ``checks``: references that must resolve but are not
    stored (a price's currency is stored as its code)."""

    row: dict[str, Any]
    deleted: bool
    children: tuple[dict[str, Any], ...] = ()
    checks: tuple[Ref, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Rules:
    """What mapping needs from the connection."""

    currency_code: str
    tipo_gestion_map: Mapping[str, str]
    timezone: tzinfo = UTC  # of operational document dates (the connection's)


class Invalid(ValueError):
    """A record that the model accepts field by field but that cannot load (``field`` says why)."""

    def __init__(self, field_name: str) -> None:
        super().__init__(field_name)
        self.field_name = field_name


def invalid_reason(error: ValidationError | Invalid) -> str:
    """``invalid:<field>`` (``invalid:Lineas.Cantidad`` inside a list): machine-readable."""
    if isinstance(error, Invalid):
        return f"invalid:{error.field_name}"
    first = error.errors()[0]
    path = ".".join(str(part) for part in first["loc"] if not isinstance(part, int))
    return f"invalid:{path or 'record'}"


# ---------------------------------------------------------------- hashing


def _jsonable(value: object) -> object:
    if isinstance(value, Decimal):
        # As the JSON number it came from: a page replayed from the archive (numbers read back
        # as Decimal) hashes as the page the REST client read (numbers as floats).
        return float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)  # UUID, date


def canonical_json(value: object) -> str:
    """Sorted keys, no whitespace: the same record always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_jsonable)


def payload_hash(entity: EntityType, record: Mapping[str, Any], rules: Rules) -> str:
    """sha256 of the record's canonical JSON. tipo_gestion also hashes the FlowPOS order type the
    connection maps it to, so that a change of the map reloads it."""
    text = canonical_json(record)
    if entity is E.TIPO_GESTION:
        code = external_id(record, contract.SOURCES[entity].id_field)
        text += canonical_json({"flowpos_order_type": rules.tipo_gestion_map.get(code or "")})
    # A lone surrogate (JSON "\ud800") is not UTF-8: hashed as its escape, never a crash.
    return hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()


def movement_key(entity: EntityType, external_id: str) -> str:
    return f"rpapos:{entity.value}:{external_id}"


# ---------------------------------------------------------------- field types

SCALE_4 = Decimal("0.0001")
SCALE_8 = Decimal("0.00000001")


def _number(value: Any) -> Any:
    """JSON numbers and numeric strings to Decimal (floats through their shortest repr)."""
    if isinstance(value, bool):
        raise ValueError("a number, not a boolean")
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            raise ValueError("not a number") from None
    return value


def _numeric(scale: Decimal, integer_digits: int) -> Callable[[Decimal], Decimal]:
    def fit(value: Decimal) -> Decimal:
        if not value.is_finite() or value.adjusted() >= integer_digits:
            raise ValueError(f"more than {integer_digits} integer digits")
        rounded = value.quantize(scale, rounding=ROUND_HALF_UP)
        if abs(rounded) >= Decimal(10) ** integer_digits:
            raise ValueError(f"more than {integer_digits} integer digits")
        return rounded

    return fit


def _none_if_blank(value: Any) -> Any:
    return None if value is None or (isinstance(value, str) and not value.strip()) else value


def external_id(record: Mapping[str, Any], id_field: str) -> str | None:
    """``str(record[id_field])``, exactly (references are matched with the same text): a string
    or integer, not blank, at most 255 characters; None when the record has no usable id."""
    value = record.get(id_field)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value)
    return text if text.strip() and len(text) <= 255 else None


def _code(value: Any) -> Any:
    """A reference's code as external_id() writes ids: not stripped, integers written out."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _none_if_blank(value)


def _text(value: Any) -> Any:
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)
    return value.strip() if isinstance(value, str) else value


def _at_most(limit: int) -> Callable[[str | None], str | None]:
    def check(value: str | None) -> str | None:
        if value is not None and len(value) > limit:
            raise ValueError(f"longer than {limit} characters")
        return value

    return check


def _flag(value: Any) -> Any:
    return False if value is None else value


def _zero_if_none(value: Any) -> Any:
    return 0 if value is None else value


# numeric(19,4): at most 15 integer digits.
Amount = Annotated[Decimal, BeforeValidator(_number), AfterValidator(_numeric(SCALE_4, 15))]
NonNegative = Annotated[Amount, Field(ge=0)]
Positive = Annotated[Amount, Field(gt=0)]
OptionalNonNegative = Annotated[NonNegative | None, BeforeValidator(_none_if_blank)]
# numeric(19,8): at most 11 integer digits.
Rate = Annotated[Decimal, BeforeValidator(_number), AfterValidator(_numeric(SCALE_8, 11))]
Code = Annotated[str, BeforeValidator(_code), StringConstraints(min_length=1, max_length=255)]
OptionalCode = Annotated[Annotated[str, StringConstraints(max_length=255)] | None, BeforeValidator(_code)]
Name = Annotated[str, BeforeValidator(_text), StringConstraints(min_length=1)]


OptionalText = Annotated[str | None, BeforeValidator(lambda value: _none_if_blank(_text(value)))]
Short16 = Annotated[OptionalText, AfterValidator(_at_most(16))]
Short32 = Annotated[OptionalText, AfterValidator(_at_most(32))]
Short64 = Annotated[OptionalText, AfterValidator(_at_most(64))]
Short255 = Annotated[OptionalText, AfterValidator(_at_most(255))]
Short320 = Annotated[OptionalText, AfterValidator(_at_most(320))]
Flag = Annotated[bool, BeforeValidator(_flag)]
Position = Annotated[int, BeforeValidator(_zero_if_none), Field(ge=0)]


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    deleted: Flag = Field(default=False, alias=contract.DELETED_FIELD)


def _ref(entity: EntityType, code: str | None) -> Ref | None:
    return None if code is None else Ref(entity, code)


# ---------------------------------------------------------------- reference data


class _Moneda(_Record):
    name: Name = Field(alias="Descripcion")
    symbol: Short16 = Field(default=None, alias="Simbolo")
    rate: Rate | None = Field(default=None, alias="Tasa_Cambio")


def _currency_code(code: str, field_name: str) -> str:
    upper = code.strip().upper()
    if len(upper) != 3 or not upper.isascii() or not upper.isalpha():
        raise Invalid(field_name)
    return upper


def _moneda(code: str, record: dict[str, Any], rules: Rules) -> Mapped:
    m = _Moneda.model_validate(record)
    rate = m.rate if m.rate is not None and m.rate > 0 else None  # 0: not given
    row = {
        "code": _currency_code(code, contract.SOURCES[E.MONEDA].id_field),
        "name": m.name,
        "symbol": m.symbol,
        "exchange_rate": rate,
    }
    return Mapped(row, m.deleted)


class _Unidad(_Record):
    name: Name = Field(alias="Descripcion")
    abbreviation: Short32 = Field(default=None, alias="Abreviatura")


def _unidad(code: str, record: dict[str, Any], rules: Rules) -> Mapped:
    m = _Unidad.model_validate(record)
    return Mapped({"code": code, "name": m.name, "abbreviation": m.abbreviation}, m.deleted)


class _Described(_Record):
    name: Name = Field(alias="Descripcion")


def _grupo(kind: str) -> "Mapper":
    def build(code: str, record: dict[str, Any], rules: Rules) -> Mapped:
        m = _Described.model_validate(record)
        return Mapped({"kind": kind, "code": code, "name": m.name}, m.deleted)

    return build


def _bodega(code: str, record: dict[str, Any], rules: Rules) -> Mapped:
    m = _Described.model_validate(record)
    return Mapped({"code": code, "name": m.name}, m.deleted)


class _Party(_Record):
    name: Name = Field(alias="Nombre")
    tax_id: Short64 = Field(default=None, alias="NIT")
    email: Short320 = Field(default=None, alias="Correo")
    phone: Short64 = Field(default=None, alias="Telefono")
    address: OptionalText = Field(default=None, alias="Direccion")


def _party(code: str, record: dict[str, Any], rules: Rules) -> Mapped:
    m = _Party.model_validate(record)
    tax_id = None if m.tax_id is not None and m.tax_id.upper() == "CF" else m.tax_id
    row = {
        "code": code,
        "name": m.name,
        "tax_id": tax_id,
        "email": m.email,
        "phone": m.phone,
        "address": m.address,
    }
    return Mapped(row, m.deleted)


class _Area(_Record):
    name: Name = Field(alias="Descripcion")
    bodega: OptionalCode = Field(default=None, alias="Codigo_Bodega")


def _area(code: str, record: dict[str, Any], rules: Rules) -> Mapped:
    m = _Area.model_validate(record)
    return Mapped({"code": code, "name": m.name, "warehouse_id": _ref(E.BODEGA, m.bodega)}, m.deleted)


class _Mesa(_Record):
    name: Name = Field(alias="Descripcion")
    area: Code = Field(alias="Codigo_Area")
    seats: Annotated[int, Field(ge=0)] | None = Field(default=None, alias="Capacidad")


def _mesa(code: str, record: dict[str, Any], rules: Rules) -> Mapped:
    m = _Mesa.model_validate(record)
    row = {"code": code, "name": m.name, "area_id": Ref(E.AREA, m.area), "seats": m.seats or None}
    return Mapped(row, m.deleted)


def _tipo_gestion(code: str, record: dict[str, Any], rules: Rules) -> Mapped:
    m = _Described.model_validate(record)
    order_type = rules.tipo_gestion_map.get(code)
    if order_type is not None and not 1 <= len(order_type) <= 64:
        raise Invalid("tipo_gestion_map")
    return Mapped({"code": code, "name": m.name, "flowpos_order_type": order_type}, m.deleted)


# ---------------------------------------------------------------- products and prices


class _Product(_Record):
    name: Name = Field(alias="Descripcion")
    grupo: OptionalCode = Field(default=None, alias="Codigo_Grupo")
    unidad: OptionalCode = Field(default=None, alias="Codigo_Unidad")


class _Plu(_Product):
    price: OptionalNonNegative = Field(default=None, alias="Precio")
    moneda: OptionalCode = Field(default=None, alias="Codigo_Moneda")


def _plu(code: str, record: dict[str, Any], rules: Rules) -> Mapped:
    m = _Plu.model_validate(record)
    currency = rules.currency_code if m.moneda is None else _currency_code(m.moneda, "Codigo_Moneda")
    row = {
        "code": code,
        "name": m.name,
        "is_raw_material": False,
        "category_id": _ref(E.PLU_GRUPO, m.grupo),
        "unit_id": _ref(E.UNIDAD_MEDIDA, m.unidad),
        "price": m.price,
        "currency_code": currency,
    }
    return Mapped(row, m.deleted)


def _sku(code: str, record: dict[str, Any], rules: Rules) -> Mapped:
    m = _Product.model_validate(record)
    row = {
        "code": code,
        "name": m.name,
        "is_raw_material": True,
        "category_id": _ref(E.SKU_GRUPO, m.grupo),
        "unit_id": _ref(E.UNIDAD_MEDIDA, m.unidad),
        "price": None,
        "currency_code": None,
    }
    return Mapped(row, m.deleted)


class _Precio(_Record):
    plu: Code = Field(alias="Codigo_PLU")
    moneda: OptionalCode = Field(default=None, alias="Codigo_Moneda")
    price: NonNegative = Field(alias="Precio")
    price_list: Short255 = Field(default=None, alias="Lista")


def _precio(code: str, record: dict[str, Any], rules: Rules) -> Mapped:
    m = _Precio.model_validate(record)
    checks: tuple[Ref, ...]
    if m.moneda is None:
        currency, checks = rules.currency_code, ()
    else:
        currency, checks = _currency_code(m.moneda, "Codigo_Moneda"), (Ref(E.MONEDA, m.moneda),)
    row = {
        "product_id": Ref(E.PLU, m.plu),
        "price_list": m.price_list or "default",
        "price": m.price,
        "currency_code": currency,
    }
    return Mapped(row, m.deleted, checks=checks)


class _Ingredient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    sku: Code = Field(alias="Codigo_SKU")
    quantity: Positive = Field(alias="Cantidad")
    unidad: OptionalCode = Field(default=None, alias="Codigo_Unidad")


class _Batch(_Record):
    name: Name = Field(alias="Descripcion")
    plu: Code = Field(alias="Codigo_PLU")
    sku: OptionalCode = Field(default=None, alias="Codigo_SKU")
    unidad: OptionalCode = Field(default=None, alias="Codigo_Unidad")
    quantity: Positive | None = Field(default=None, alias="Cantidad")
    lines: list[_Ingredient] | None = Field(default=None, alias="Lineas")


def _ingredients(m: _Batch) -> list[_Ingredient]:
    if m.lines:
        return m.lines
    if m.sku is None:
        return []
    if m.quantity is None:
        raise Invalid("Cantidad")
    return [
        _Ingredient.model_validate({"Codigo_SKU": m.sku, "Cantidad": m.quantity, "Codigo_Unidad": m.unidad})
    ]


def _batch(code: str, record: dict[str, Any], rules: Rules) -> Mapped:
    m = _Batch.model_validate(record)
    items: dict[str, dict[str, Any]] = {}
    for line in _ingredients(m):
        unit = _ref(E.UNIDAD_MEDIDA, line.unidad)
        item = items.get(line.sku)
        if item is None:
            items[line.sku] = {
                "product_id": Ref(E.SKU, line.sku),
                "quantity": line.quantity,
                "unit_id": unit,
                "position": len(items),
            }
        elif item["unit_id"] == unit:
            item["quantity"] += line.quantity
        else:
            raise Invalid("Lineas")  # one SKU in two units: no sum makes sense
    row = {"code": code, "name": m.name, "product_id": Ref(E.PLU, m.plu)}
    return Mapped(row, m.deleted, children=tuple(items.values()))


# ---------------------------------------------------------------- modifiers


class _ModifierGroup(_Record):
    name: Name = Field(alias="Descripcion")
    minimum: Position = Field(default=0, alias="Minimo")
    maximum: Annotated[int, Field(ge=0)] | None = Field(default=None, alias="Maximo")


def _modifier_group(code: str, record: dict[str, Any], rules: Rules) -> Mapped:
    m = _ModifierGroup.model_validate(record)
    maximum = m.maximum or None  # 0 or absent: no upper bound
    if maximum is not None and maximum < max(m.minimum, 1):
        raise Invalid("Maximo")
    row = {"code": code, "name": m.name, "min_selections": m.minimum, "max_selections": maximum}
    return Mapped(row, m.deleted)


class _ModifierItem(_Record):
    name: Name = Field(alias="Descripcion")
    grupo: Code = Field(alias="Codigo_Grupo")
    plu: OptionalCode = Field(default=None, alias="Codigo_PLU")
    price_delta: Amount | None = Field(default=None, alias="Precio_Adicional")
    position: Position = Field(default=0, alias="Orden")


def _modifier_item(code: str, record: dict[str, Any], rules: Rules) -> Mapped:
    m = _ModifierItem.model_validate(record)
    row = {
        "code": code,
        "name": m.name,
        "group_id": Ref(E.PLU_OPTION_GROUP, m.grupo),
        "product_id": _ref(E.PLU, m.plu),
        "price_delta": m.price_delta if m.price_delta is not None else Decimal("0.0000"),
        "position": m.position,
    }
    return Mapped(row, m.deleted)


class _Assignment(_Record):
    """A (PLU, modifier group) pair the loader derives from a PLU's Grupos_Opciones."""

    plu: Code = Field(alias="Codigo_PLU")
    grupo: Code = Field(alias="Codigo_Grupo")
    position: Position = Field(default=0, alias="Orden")


def _assignment(code: str, record: dict[str, Any], rules: Rules) -> Mapped:
    m = _Assignment.model_validate(record)
    row = {
        "product_id": Ref(E.PLU, m.plu),
        "group_id": Ref(E.PLU_OPTION_GROUP, m.grupo),
        "position": m.position,
    }
    return Mapped(row, m.deleted)


class OfferedGroup(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    grupo: Code = Field(alias="Codigo_Grupo")
    position: Position = Field(default=0, alias="Orden")


class PluOptions(_Record):
    """What plu_option_group_assignment reads of a PLU record."""

    plu: Code = Field(alias="Codigo_PLU")
    groups: list[OfferedGroup] = Field(default_factory=list, alias="Grupos_Opciones")

    def pairs(self) -> dict[str, dict[str, Any]]:
        """One pseudo-record per offered group, by pair external id (``<plu>:<group>``); a group
        listed twice counts once, its last position."""
        return {
            f"{self.plu}:{group.grupo}": {
                "Codigo_PLU": self.plu,
                "Codigo_Grupo": group.grupo,
                "Orden": group.position,
                contract.DELETED_FIELD: self.deleted,
            }
            for group in self.groups
        }


# ---------------------------------------------------------------- stock documents


class _Line(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    sku: Code = Field(alias="Codigo_SKU")
    quantity: Amount = Field(alias="Cantidad")


class _CostedLine(_Line):
    cost: OptionalNonNegative = Field(default=None, alias="Costo")


class _CountedLine(_Line):
    quantity: Amount = Field(alias="Cantidad_Contada")


class _Document(_Record):
    at: datetime = Field(alias="Fecha")
    bodega: Code = Field(alias="Codigo_Bodega")
    moneda: OptionalCode = Field(default=None, alias="Codigo_Moneda")
    lines: list[_CostedLine] = Field(default_factory=list, alias="Lineas")


class _Compra(_Document):
    proveedor: OptionalCode = Field(default=None, alias="Codigo_Proveedor")


class _Traslado(_Document):
    destino: Code = Field(alias="Codigo_Bodega_Destino")


class _Conteo(_Record):
    at: datetime = Field(alias="Fecha")
    bodega: Code = Field(alias="Codigo_Bodega")
    lines: list[_CountedLine] = Field(default_factory=list, alias="Lineas")


class _Merma(_Document):
    reason: OptionalText = Field(default=None, alias="Motivo")


class _Produccion(_Document):
    plu: Code = Field(alias="Codigo_PLU")
    quantity: Amount = Field(alias="Cantidad")
    grupo: OptionalCode = Field(default=None, alias="Codigo_Grupo")


_DOCUMENT_MODELS: dict[EntityType, type[_Document] | type[_Conteo]] = {
    E.COMPRA: _Compra,
    E.TRASLADO: _Traslado,
    E.CONTEO_FISICO: _Conteo,
    E.MERMA: _Merma,
    E.SALIDA_SKU: _Document,
    E.PRODUCCION: _Produccion,
}


def _in_utc(at: datetime, zone: tzinfo) -> datetime:
    """A document date: without an offset it is the connection's local time."""
    local = at if at.tzinfo is not None else at.replace(tzinfo=zone)
    return local.astimezone(UTC)


def _lines(m: _Document | _Conteo) -> list[dict[str, Any]]:
    lines = [
        {
            "line_number": number,
            "product_id": Ref(E.SKU, line.sku),
            "quantity": line.quantity,
            "unit_cost": getattr(line, "cost", None),
        }
        for number, line in enumerate(m.lines, start=1)
    ]
    if isinstance(m, _Produccion):  # what was produced, after what it consumed
        lines.append(
            {
                "line_number": len(lines) + 1,
                "product_id": Ref(E.PLU, m.plu),
                "quantity": m.quantity,
                "unit_cost": None,
            }
        )
    return lines


def _notes(m: _Document | _Conteo) -> str | None:
    if isinstance(m, _Merma):
        return m.reason
    if isinstance(m, _Produccion) and m.grupo is not None:
        return f"Grupo de producción: {m.grupo}"
    return None


def _movement_row(entity: EntityType, number: str, m: _Document | _Conteo, rules: Rules) -> dict[str, Any]:
    destination = m.destino if isinstance(m, _Traslado) else None
    if destination is not None and destination == m.bodega:
        raise Invalid("Codigo_Bodega_Destino")
    supplier = m.proveedor if isinstance(m, _Compra) else None
    moneda = getattr(m, "moneda", None)
    costed = any(getattr(line, "cost", None) is not None for line in m.lines)
    currency = _currency_code(moneda, "Codigo_Moneda") if moneda is not None else rules.currency_code
    return {
        "kind": entity.value,
        "document_number": number,
        "occurred_at": _in_utc(m.at, rules.timezone),
        "warehouse_id": Ref(E.BODEGA, m.bodega),
        "to_warehouse_id": _ref(E.BODEGA, destination),
        "supplier_id": _ref(E.PROVEEDOR, supplier),
        "currency_code": currency if costed else None,
        "notes": _notes(m),
        "idempotency_key": movement_key(entity, number),
    }


def _document(entity: EntityType) -> "Mapper":
    model = _DOCUMENT_MODELS[entity]

    def build(number: str, record: dict[str, Any], rules: Rules) -> Mapped:
        m = model.model_validate(record)
        row = _movement_row(entity, number, m, rules)
        return Mapped(row, m.deleted, children=tuple(_lines(m)))

    return build


# ---------------------------------------------------------------- registry

Mapper = Callable[[str, dict[str, Any], Rules], Mapped]

MAPPERS: dict[EntityType, Mapper] = {
    E.MONEDA: _moneda,
    E.UNIDAD_MEDIDA: _unidad,
    E.PLU_GRUPO: _grupo("plu"),
    E.SKU_GRUPO: _grupo("sku"),
    E.PRODUCCION_GRUPO: _grupo("produccion"),
    E.PROVEEDOR: _party,
    E.BODEGA: _bodega,
    E.AREA: _area,
    E.MESA: _mesa,
    E.TIPO_GESTION: _tipo_gestion,
    E.PERSONA: _party,
    E.PLU: _plu,
    E.SKU: _sku,
    E.PRECIO: _precio,
    E.BATCH_MAESTRO: _batch,
    E.PLU_OPTION_GROUP: _modifier_group,
    E.PLU_OPTION_ITEM: _modifier_item,
    E.PLU_OPTION_GROUP_ASSIGNMENT: _assignment,
    **{entity: _document(entity) for entity in _DOCUMENT_MODELS},
}


def map_record(entity: EntityType, external_id: str, record: dict[str, Any], rules: Rules) -> Mapped:
    """The row for one record. Raises ValidationError or Invalid (``invalid_reason`` says why)."""
    return MAPPERS[entity](external_id, record, rules)
