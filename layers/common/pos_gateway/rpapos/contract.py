"""What the project assumes of RPApos, in one place, to be corrected against the real service.

Public knowledge (the FlowPOS RPApos Gateway documentation): each tenant lives at
``https://{subdomain}.2rpa.com``; entities come from a REST API under ``/api/{path}`` behind an
ASP.NET WebForms login; a legacy SOAP service on ``db4.2rpa.com`` serves modifier groups,
images and the device registration. Field names, paging and date parameters are *not* public:
everything marked ASSUMED below is this project's contract, documented in
docs/rpapos-contract.md and served as such by the fake RPApos server (local/fake_rpapos.py).
Change it here, and both the client and the fake follow.
"""

from dataclasses import dataclass, field
from enum import StrEnum


class EntityType(StrEnum):
    """Every value of the seed's enum rpapos_entity_type (phase 1, phase 2, modifiers)."""

    PLU = "plu"
    PLU_GRUPO = "plu_grupo"
    SKU = "sku"
    SKU_GRUPO = "sku_grupo"
    BATCH_MAESTRO = "batch_maestro"
    PROVEEDOR = "proveedor"
    UNIDAD_MEDIDA = "unidad_medida"
    MONEDA = "moneda"
    TIPO_GESTION = "tipo_gestion"
    AREA = "area"
    BODEGA = "bodega"
    USUARIO = "usuario"
    ESTACION_TRABAJO = "estacion_trabajo"
    DISPOSITIVO_IO = "dispositivo_io"
    COMPRA = "compra"
    TRASLADO = "traslado"
    CONTEO_FISICO = "conteo_fisico"
    MERMA = "merma"
    SALIDA_SKU = "salida_sku"
    PRODUCCION = "produccion"
    MESA = "mesa"
    PERSONA = "persona"
    PRECIO = "precio"
    PRODUCCION_GRUPO = "produccion_grupo"
    PLU_OPTION_GROUP = "plu_option_group"
    PLU_OPTION_ITEM = "plu_option_item"
    PLU_OPTION_GROUP_ASSIGNMENT = "plu_option_group_assignment"


E = EntityType


class Transport(StrEnum):
    REST = "rest"  # GET https://{subdomain}.2rpa.com/api/{path}
    REST_PER_PARENT = "rest_per_parent"  # GET /api/{path}/{parent id}, once per parent record
    SOAP = "soap"  # an operation of the db4 SOAP service
    DERIVED = "derived"  # read from another entity's records (no call of its own)


@dataclass(frozen=True, slots=True)
class Source:
    transport: Transport
    path: str  # REST path under /api/, or SOAP operation name
    id_field: str  # ASSUMED: the record's RPApos key, stored as rpapos_id_map.external_id
    parent: EntityType | None = None  # REST_PER_PARENT / DERIVED: whose records lead here
    # ASSUMED: the date the historical window filters on (operational documents only).
    date_field: str | None = None


# ---------------------------------------------------------------- REST (ASSUMED except paths)

# Public: the WebForms login (GET /Login, post back the hidden fields with these names; the
# answer is 200 even on failure, success is a page holding localStorage.token = '<jwt>').
LOGIN_PATH = "/Login"
LOGIN_HIDDEN_FIELDS = ("__VIEWSTATE", "__VIEWSTATEGENERATOR", "__EVENTVALIDATION")
LOGIN_USER_FIELD = "TextBoxUsername"
LOGIN_PASSWORD_FIELD = "TextBoxPassword"  # noqa: S105 - a form field name, not a password
LOGIN_BUTTON = ("ButtonLogin", "Login")
LOGIN_TOKEN_PATTERN = r"localStorage\.token\s*=\s*'(?P<token>[^']+)'"  # noqa: S105 - a pattern
# ASSUMED: later calls carry the session cookie and the token as a bearer header; an expired
# session answers 401 (then the client logs in again, once).
API_PREFIX = "/api/"

# ASSUMED paging: ?pagina=<1-based>&registros=<page size>; the answer is
# {"datos": [...], "pagina": n, "registros": size, "total": count}. A page shorter than the
# size is the last one.
PAGE_PARAM = "pagina"
PAGE_SIZE_PARAM = "registros"
ITEMS_KEY = "datos"
TOTAL_KEY = "total"
DEFAULT_PAGE_SIZE = 500
# ASSUMED date filters: historical windows on the document date, incremental on the last change
# (ISO 8601, in the connection's timezone, inclusive from, exclusive to).
DATE_FROM_PARAM = "fechaDesde"
DATE_TO_PARAM = "fechaHasta"
MODIFIED_SINCE_PARAM = "modificadoDesde"
# ASSUMED: every record carries these (soft-deleted rows are still listed, flagged).
DELETED_FIELD = "Eliminado"
MODIFIED_FIELD = "Fecha_Modificacion"

# ---------------------------------------------------------------- SOAP (ASSUMED but the names)

SOAP_HOST = "db4.2rpa.com"
SOAP_PATH = "/WSRPA/Servicio.asmx"
SOAP_NAMESPACE = "http://2rpa.com/WSRPA/"
SOAP_CATALOGO_MODIFIER_GROUPS = "Producto_Grupo"  # the pCatalogo of Catalogo_4
SAT_DEFAULT_USER_FROM_CONNECTION = True  # SAT user defaults to the connection's usuario

SOURCES: dict[EntityType, Source] = {
    E.MONEDA: Source(Transport.REST, "Moneda", "Codigo_Moneda"),
    E.UNIDAD_MEDIDA: Source(Transport.REST, "UnidadMedida", "Codigo_Unidad"),
    E.PLU_GRUPO: Source(Transport.REST, "PLU/Grupo", "Codigo_Grupo"),
    E.SKU_GRUPO: Source(Transport.REST, "Producto/Grupo", "Codigo_Grupo"),
    E.PRODUCCION_GRUPO: Source(Transport.REST, "Produccion/Grupo", "Codigo_Grupo"),
    E.BODEGA: Source(Transport.REST, "Bodega", "Codigo_Bodega"),
    E.PROVEEDOR: Source(Transport.REST, "Proveedor", "Codigo_Proveedor"),
    E.AREA: Source(Transport.REST, "area", "Codigo_Area"),
    E.PERSONA: Source(Transport.REST, "Persona", "Codigo_Persona"),
    E.SKU: Source(Transport.REST, "SKU", "Codigo_SKU"),
    E.PLU: Source(Transport.REST, "PLU/Maestro", "Codigo_PLU"),
    E.USUARIO: Source(Transport.REST, "Usuario", "Codigo_Usuario"),
    E.BATCH_MAESTRO: Source(Transport.REST, "BatchMaestro", "Codigo_Batch"),
    E.PRECIO: Source(Transport.REST, "PLU/Precio", "Codigo_Precio"),
    # Public: mesa has no list endpoint; read per area.
    E.MESA: Source(Transport.REST_PER_PARENT, "Mesa", "Codigo_Mesa", parent=E.AREA),
    # ASSUMED paths for the rest of the REST entities.
    E.TIPO_GESTION: Source(Transport.REST, "TipoGestion", "Codigo_Tipo_Gestion"),
    E.ESTACION_TRABAJO: Source(Transport.REST, "EstacionTrabajo", "Codigo_Estacion"),
    E.DISPOSITIVO_IO: Source(Transport.REST, "DispositivoIO", "Codigo_Dispositivo"),
    E.COMPRA: Source(Transport.REST, "Compra", "Numero_Compra", date_field="Fecha"),
    E.TRASLADO: Source(Transport.REST, "Traslado", "Numero_Traslado", date_field="Fecha"),
    E.CONTEO_FISICO: Source(Transport.REST, "ConteoFisico", "Numero_Conteo", date_field="Fecha"),
    E.MERMA: Source(Transport.REST, "Merma", "Numero_Merma", date_field="Fecha"),
    E.SALIDA_SKU: Source(Transport.REST, "SalidaSKU", "Numero_Salida", date_field="Fecha"),
    E.PRODUCCION: Source(Transport.REST, "Produccion", "Numero_Produccion", date_field="Fecha"),
    # Public: modifier groups are Catalogo_4 (Producto_Grupo), items Producto_Grupo_Detalle.
    E.PLU_OPTION_GROUP: Source(Transport.SOAP, "Catalogo_4", "Codigo_Grupo"),
    E.PLU_OPTION_ITEM: Source(
        Transport.SOAP, "Producto_Grupo_Detalle", "Codigo_Detalle", parent=E.PLU_OPTION_GROUP
    ),
    # ASSUMED: a PLU record lists the modifier groups offered with it (field Grupos_Opciones).
    E.PLU_OPTION_GROUP_ASSIGNMENT: Source(Transport.DERIVED, "Grupos_Opciones", "Codigo_PLU", parent=E.PLU),
}

# Public: the hard dependencies. An entity is extracted after everything it depends on.
DEPENDENCIES: dict[EntityType, frozenset[EntityType]] = {
    E.PLU: frozenset({E.PLU_GRUPO, E.UNIDAD_MEDIDA}),
    E.SKU: frozenset({E.SKU_GRUPO, E.UNIDAD_MEDIDA, E.PROVEEDOR}),
    E.AREA: frozenset({E.BODEGA}),
    E.MESA: frozenset({E.AREA}),
    E.BATCH_MAESTRO: frozenset({E.PLU, E.SKU, E.UNIDAD_MEDIDA}),
    E.PLU_OPTION_ITEM: frozenset({E.PLU, E.PLU_OPTION_GROUP}),
    E.PLU_OPTION_GROUP_ASSIGNMENT: frozenset({E.PLU, E.PLU_OPTION_GROUP}),
    E.PRECIO: frozenset({E.PLU, E.MONEDA}),
    # Operational documents refer to products, warehouses and suppliers.
    E.COMPRA: frozenset({E.SKU, E.BODEGA, E.PROVEEDOR}),
    E.TRASLADO: frozenset({E.SKU, E.BODEGA}),
    E.CONTEO_FISICO: frozenset({E.SKU, E.BODEGA}),
    E.MERMA: frozenset({E.SKU, E.BODEGA}),
    E.SALIDA_SKU: frozenset({E.SKU, E.BODEGA}),
    E.PRODUCCION: frozenset({E.PLU, E.SKU, E.BODEGA, E.PRODUCCION_GRUPO}),
}

# The catalog subset (mode ``catalog``): master data a restaurant needs to sell.
CATALOG: frozenset[EntityType] = frozenset(
    {
        E.MONEDA, E.UNIDAD_MEDIDA, E.PLU_GRUPO, E.SKU_GRUPO, E.PRODUCCION_GRUPO, E.PROVEEDOR,
        E.BODEGA, E.AREA, E.MESA, E.TIPO_GESTION, E.PLU, E.SKU, E.BATCH_MAESTRO, E.PRECIO,
        E.PERSONA, E.PLU_OPTION_GROUP, E.PLU_OPTION_ITEM, E.PLU_OPTION_GROUP_ASSIGNMENT,
    }
)  # fmt: skip
# Operational documents (mode ``historical``, inside date_from..date_to).
OPERATIONAL: frozenset[EntityType] = frozenset(
    {E.COMPRA, E.TRASLADO, E.CONTEO_FISICO, E.MERMA, E.SALIDA_SKU, E.PRODUCCION}
)


@dataclass(frozen=True, slots=True)
class NotLoaded:
    """An entity type that is extracted and archived but has no FlowPOS target, and why."""

    reason: str
    statuses: tuple[str, ...] = field(default=("archived_only",))


# Archived (rpapos_extraction_archive), counted in per_entity_stats with status
# ``archived_only`` and this reason, never loaded.
ARCHIVE_ONLY: dict[EntityType, NotLoaded] = {
    E.USUARIO: NotLoaded("RPApos staff accounts: FlowPOS users sign up themselves; kept for reference"),
    E.ESTACION_TRABAJO: NotLoaded("RPApos workstation configuration: no FlowPOS counterpart"),
    E.DISPOSITIVO_IO: NotLoaded("RPApos printers and peripherals: no FlowPOS counterpart"),
}
