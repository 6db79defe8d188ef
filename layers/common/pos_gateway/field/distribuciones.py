"""Daily distributions: an admin_negocio assigns a seller kilos for the day; the seller's sales
count against it (``count_sale``) and the seller moves it forward (activo → en_ruta → cerrado).
A distribution is closed, never deleted."""

from decimal import Decimal
from typing import NoReturn
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow

from pos_gateway.db import queries
from pos_gateway.field.context import (
    Applied,
    OperationContext,
    parse_data,
    problem,
    record_exists,
    require_admin,
    stale_version,
    unknown,
    unknown_reference,
)
from pos_gateway.field.operations import (
    DistribucionEstado,
    DistribucionUpdate,
    NewDistribucion,
    OperationRefused,
)
from pos_gateway.field.records import DistribucionRecord

_SQL = queries.load(__file__, "distribuciones.sql")
_STAGES = (DistribucionEstado.ACTIVO, DistribucionEstado.EN_RUTA, DistribucionEstado.CERRADO)
_ADMIN_FIELDS = {"kilos_asignados": "kilosAsignados", "punto_venta": "puntoVenta"}


def lock(context: OperationContext, distribucion_id: UUID) -> DictRow | None:
    return context.fetch_one(_SQL.lock_distribucion, id=distribucion_id)


def lock_open_of(context: OperationContext, vendedor_id: UUID) -> DictRow | None:
    return send_lock_open_of(context, vendedor_id).fetchone()


def send_lock(context: OperationContext, distribucion_id: UUID) -> Cursor[DictRow]:
    """``lock``, sent now and read later (with the operation's other reads, in one round trip)."""
    return context.send(_SQL.lock_distribucion, id=distribucion_id)


def send_lock_open_of(context: OperationContext, vendedor_id: UUID) -> Cursor[DictRow]:
    """``lock_open_of``, sent now and read later."""
    return context.send(_SQL.lock_open_distribucion, vendedor_id=vendedor_id)


def count_sale(context: OperationContext, distribucion_id: UUID, kilos: Decimal, monto: Decimal) -> None:
    """Kilos sold and money collected move by a sale (positive) or its void (negative); sent with
    the operation's next round trip (the distribution is locked already)."""
    context.write(_SQL.count_sale, id=distribucion_id, kilos=kilos, monto=monto)


def create(context: OperationContext) -> Applied:
    new = parse_data(NewDistribucion, context.operation.data)
    require_admin(context, "assign a distribution")
    if lock(context, new.id) is not None:
        raise record_exists(new.id)
    if context.fetch_one(_SQL.active_seller, id=new.vendedor_id) is None:
        raise unknown_reference([unknown("data.vendedorId", "active seller", new.vendedor_id)])
    if new.estado is not DistribucionEstado.CERRADO:
        already_open = lock_open_of(context, new.vendedor_id)
        if already_open is not None:
            raise OperationRefused(
                "distribution_already_open",
                "the seller already has an open distribution: close it first",
                [
                    problem(
                        "data.vendedorId",
                        "distribution_already_open",
                        "one open distribution per seller",
                        distribucionId=str(already_open["id"]),
                    )
                ],
            )
    row = context.returning(
        _SQL.insert_distribucion,
        id=new.id,
        vendedor_id=new.vendedor_id,
        punto_venta=new.punto_venta,
        kilos_asignados=new.kilos_asignados,
        fecha=new.fecha,
        estado=new.estado.value,
        created_by=context.device.seller_id,
    )
    return Applied(new.id, row["version"])


def update(context: OperationContext) -> Applied:
    change = parse_data(DistribucionUpdate, context.operation.data)
    current = lock(context, change.id)
    if current is None:
        raise unknown_reference([unknown("data.id", "distribution", change.id)])
    _check_role(context, change, current)
    if current["version"] != change.version:
        raise stale_version(change.version, DistribucionRecord.model_validate(current))
    _check_transition(change, current)
    if change.kilos_asignados is not None and change.kilos_asignados < current["kilos_vendidos"]:
        raise OperationRefused(
            "validation_failed",
            "the operation is not valid",
            [
                problem(
                    "data.kilosAsignados",
                    "below_kilos_vendidos",
                    "fewer kilos than the seller already sold",
                    kilosVendidos=str(current["kilos_vendidos"]),
                )
            ],
        )
    given = change.model_fields_set
    row = context.returning(
        _SQL.update_distribucion,
        id=change.id,
        version=change.version,
        set_estado="estado" in given,
        estado=change.estado.value if change.estado is not None else None,
        set_kilos_asignados="kilos_asignados" in given,
        kilos_asignados=change.kilos_asignados,
        set_punto_venta="punto_venta" in given,
        punto_venta=change.punto_venta,
    )
    return Applied(change.id, row["version"])


def unsupported_delete(context: OperationContext) -> NoReturn:
    raise OperationRefused(
        "unsupported_operation", "a distribution is never deleted: close it (estado cerrado) instead"
    )


def _check_role(context: OperationContext, change: DistribucionUpdate, current: DictRow) -> None:
    """A vendedor moves only their own distribution along; the rest is the admin_negocio's."""
    if context.device.is_admin:
        return
    if current["vendedor_id"] != context.device.seller_id:
        raise OperationRefused("forbidden_role", "a vendedor may change only their own distribution")
    admin_fields = sorted(alias for name, alias in _ADMIN_FIELDS.items() if name in change.model_fields_set)
    if admin_fields:
        raise OperationRefused(
            "forbidden_role",
            "only an admin_negocio may change kilosAsignados or puntoVenta",
            [problem(f"data.{alias}", "forbidden_role", "admin_negocio only") for alias in admin_fields],
        )


def _check_transition(change: DistribucionUpdate, current: DictRow) -> None:
    if change.estado is None:
        return
    before = DistribucionEstado(current["estado"])
    if _STAGES.index(change.estado) < _STAGES.index(before):
        raise OperationRefused(
            "invalid_transition",
            f"a distribution moves forward only (activo → en_ruta → cerrado), not {before} → {change.estado}",
            [problem("data.estado", "invalid_transition", "forward only", estado=before.value)],
        )
