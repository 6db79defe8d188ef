"""The RPApos SOAP client (db4): device registration, modifier groups and items, PLU images.

Built with zeep from the WSDL shipped beside contract.py, pointed at the connection's endpoint
(``create_service``), never at the WSDL's own address. The only module that imports zeep: the
ingest and crediting handlers never load it.

- The parsed WSDL is built once per process and shared; one zeep client per (endpoint,
  timeouts) is cached (a parsed WSDL cannot be shared across processes, only within one).
- Every operation has an explicit ``operation_timeout`` (zeep has none by default).
- SOAP faults become domain errors (pos_gateway.rpapos.errors.soap_fault_error); transport
  errors, timeouts and non-SOAP 5xx answers become RpaposUnavailable (a RetryLater).
- Catalogo_4 and Producto_U_M need the connection's workstation: WorkstationRequired is raised
  before calling when it is unset or 0.
"""

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import requests
import zeep
import zeep.exceptions
import zeep.helpers
from zeep.wsdl import Document

from pos_gateway.rpapos import contract
from pos_gateway.rpapos.errors import (
    DEFAULT_RETRY_AFTER_SECONDS,
    RpaposProtocolError,
    RpaposRequestError,
    RpaposUnavailable,
    SoapTokenRejected,
    WorkstationRequired,
    soap_fault_error,
)

WSDL_PATH = Path(__file__).with_name("rpapos.wsdl")
DEFAULT_ENDPOINT = f"https://{contract.SOAP_HOST}{contract.SOAP_PATH}"
BINDING = f"{{{contract.SOAP_NAMESPACE}}}ServicioSoap"
DEFAULT_OPERATION_TIMEOUT = 30.0
DEFAULT_GROUPS_PAGE_SIZE = 200

# zeep logs every envelope at DEBUG, passwords and device tokens included: never below INFO.
logging.getLogger("zeep").setLevel(logging.INFO)
_SETTINGS = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True)
_lock = threading.Lock()
_wsdl: Any = None
_services: dict[tuple[str, float], Any] = {}


# ------------------------------------------------------------------ SAT credentials


@dataclass(frozen=True, slots=True)
class SatCredentials:
    usuario: str
    password: str = field(repr=False)


def sat_credentials(
    usuario: str, password: str, sat_usuario: str | None = None, sat_password: str | None = None
) -> SatCredentials:
    """The credentials of the SAT calls (register, validate) from a connection's columns.

    With a SAT password, the SAT user is ``sat_usuario`` or, when that is unset, the
    connection's ``usuario`` (contract.SAT_DEFAULT_USER_FROM_CONNECTION). Without a SAT
    password, the connection's own user and password (a SAT user alone is ignored).
    """
    if sat_password:
        user = sat_usuario or (usuario if contract.SAT_DEFAULT_USER_FROM_CONNECTION else "")
        if not user:
            raise ValueError("a SAT password without a SAT user")
        return SatCredentials(user, sat_password)
    return SatCredentials(usuario, password)


# ------------------------------------------------------------------ results


@dataclass(frozen=True, slots=True)
class AccountValidation:
    valid: bool
    message: str | None


@dataclass(frozen=True, slots=True)
class DeviceRegistration:
    token: str = field(repr=False)  # secret: stored sealed (soap_token_encrypted)
    localizacion_id: int
    conexion_db: int
    conexion_mainframe: int


@dataclass(frozen=True, slots=True)
class SoapPage:
    """One page of Catalogo_4: records as plain dicts (dates as datetimes, prices as Decimal)."""

    number: int
    size: int
    records: list[dict[str, Any]]
    total: int
    is_last: bool


@dataclass(frozen=True, slots=True)
class ProductImage:
    filename: str | None
    content_type: str | None
    content: bytes = field(repr=False)


# ------------------------------------------------------------------ client


class RpaposSoapClient:
    """One connection's SOAP calls. ``token`` and ``estacion_trabajo`` are the connection's
    (from Dispositivo_Registra_2 and its configuration); registration needs neither."""

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        *,
        token: str | None = None,
        estacion_trabajo: int | None = None,
        operation_timeout: float = DEFAULT_OPERATION_TIMEOUT,
        retry_after_seconds: int = DEFAULT_RETRY_AFTER_SECONDS,
    ) -> None:
        self._endpoint = endpoint
        self._token = token
        self._estacion = estacion_trabajo
        self._operation_timeout = operation_timeout
        self._retry_after_seconds = retry_after_seconds

    # -------------------------------------------------------------- SAT (no token)

    def validate_account(
        self,
        usuario: str,
        password: str,
        subdomain: str,
        *,
        sat_usuario: str | None = None,
        sat_password: str | None = None,
    ) -> AccountValidation:
        """Cuenta_Validar_1 with the SAT credentials (see sat_credentials)."""
        credentials = sat_credentials(usuario, password, sat_usuario, sat_password)
        result = self._call(
            "Cuenta_Validar_1",
            pUsuario=credentials.usuario,
            pPassword=credentials.password,
            pSubdominio=subdomain,
        )
        return AccountValidation(bool(_field(result, "Cuenta_Validar_1Result")), _field(result, "pMensaje"))

    def register_device(
        self,
        usuario: str,
        password: str,
        subdomain: str,
        device_name: str,
        *,
        sat_usuario: str | None = None,
        sat_password: str | None = None,
    ) -> DeviceRegistration:
        """Dispositivo_Registra_2: the device token and the connection's SAT metadata."""
        credentials = sat_credentials(usuario, password, sat_usuario, sat_password)
        result = self._call(
            "Dispositivo_Registra_2",
            pUsuario=credentials.usuario,
            pPassword=credentials.password,
            pSubdominio=subdomain,
            pNombre_Dispositivo=device_name,
        )
        token = _field(result, "pToken")
        if not token:
            raise RpaposProtocolError("Dispositivo_Registra_2: no pToken in the answer")
        return DeviceRegistration(
            token=str(token),
            localizacion_id=int(_field(result, "pLocalizacion_Id") or 0),
            conexion_db=int(_field(result, "pConexion_DB") or 0),
            conexion_mainframe=int(_field(result, "pConexion_Mainframe") or 0),
        )

    # -------------------------------------------------------------- with the device token

    def modifier_groups(self, page: int = 1, size: int = DEFAULT_GROUPS_PAGE_SIZE) -> SoapPage:
        """One page (1-based) of Catalogo_4 for the modifier groups (pCatalogo Producto_Grupo)."""
        if page < 1 or size < 1:
            raise ValueError("page and size are at least 1")
        result = self._call(
            "Catalogo_4",
            pToken=self._device_token(),
            pEstacion_Trabajo=self._workstation(),
            pCatalogo=contract.SOAP_CATALOGO_MODIFIER_GROUPS,
            pPagina=page,
            pRegistros=size,
        )
        records = _records(_field(result, "Catalogo_4Result"), "Producto_Grupo")
        total = int(_field(result, "pTotal") or 0)
        is_last = len(records) < size or page * size >= total
        return SoapPage(page, size, records, total, is_last)

    def all_modifier_group_pages(
        self, size: int = DEFAULT_GROUPS_PAGE_SIZE, start_page: int = 1
    ) -> Iterator[SoapPage]:
        page = self.modifier_groups(start_page, size)
        yield page
        while not page.is_last:
            page = self.modifier_groups(page.number + 1, size)
            yield page

    def modifier_items(self, group_code: str) -> list[dict[str, Any]]:
        """Producto_Grupo_Detalle: the items (options) of one modifier group."""
        result = self._call("Producto_Grupo_Detalle", pToken=self._device_token(), pCodigo_Grupo=group_code)
        return _records(result, "Producto_Grupo_Detalle")

    def product_image(self, plu_code: str) -> ProductImage | None:
        """Producto_U_M: the PLU's image, or None when it has none."""
        result = self._call(
            "Producto_U_M",
            pToken=self._device_token(),
            pEstacion_Trabajo=self._workstation(),
            pCodigo_PLU=plu_code,
        )
        content = _field(result, "pContenido")
        if not content:
            return None
        return ProductImage(
            _field(result, "pNombre_Archivo"), _field(result, "pTipo_Contenido"), bytes(content)
        )

    # -------------------------------------------------------------- calls

    def _device_token(self) -> str:
        if not self._token:
            raise SoapTokenRejected("no SOAP device token: register the device (Dispositivo_Registra_2)")
        return self._token

    def _workstation(self) -> int:
        if not self._estacion:
            raise WorkstationRequired(
                "the connection has no workstation (estacion_trabajo): Catalogo_4 and Producto_U_M need one"
            )
        return self._estacion

    def _call(self, operation: str, **params: Any) -> Any:
        method: Callable[..., Any] = getattr(service(self._endpoint, self._operation_timeout), operation)
        try:
            return method(**params)
        except zeep.exceptions.Fault as fault:
            code = str(fault.code) if fault.code is not None else None
            raise soap_fault_error(operation, str(fault.message or ""), code) from None
        except zeep.exceptions.TransportError as exc:
            status = int(exc.status_code or 0)
            if 400 <= status < 500 and status != 429:  # a wrong endpoint or a refused request: never
                raise RpaposRequestError(f"{operation}: {status} from {self._endpoint}", status) from None
            # A 5xx or 429 (or any answer) that is no SOAP envelope: RPApos is unwell or busy, later.
            raise RpaposUnavailable(
                f"{operation}: HTTP {status or '?'} without a SOAP answer from {self._endpoint}",
                self._retry_after_seconds,
            ) from None
        except requests.RequestException as exc:
            # Refused, dropped or timed out: it may work later.
            raise RpaposUnavailable(
                f"{operation}: {type(exc).__name__} from {self._endpoint}", self._retry_after_seconds
            ) from None
        except (zeep.exceptions.Error, ArithmeticError) as exc:
            # Unreadable XML, an answer the WSDL does not allow, a decimal that is no number
            # (zeep lets decimal.InvalidOperation through).
            raise RpaposProtocolError(f"{operation}: unreadable answer ({type(exc).__name__})") from None


# ------------------------------------------------------------------ the per-process cache


class _Transport(zeep.Transport):  # type: ignore[misc]  # zeep is untyped (Any)
    """zeep's transport, but an error status without a SOAP (XML) body is a transport error:
    zeep would read a well-formed HTML error page as an "Unknown fault"."""

    def post(self, address: str, message: Any, headers: Any) -> requests.Response:
        response: requests.Response = super().post(address, message, headers)
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if response.status_code >= 400 and not media_type.endswith("xml"):
            raise zeep.exceptions.TransportError(
                f"HTTP {response.status_code} ({media_type or 'no content type'})",
                status_code=response.status_code,
            )
        return response


def service(endpoint: str, operation_timeout: float = DEFAULT_OPERATION_TIMEOUT) -> Any:
    """The zeep service proxy for an endpoint: the WSDL parsed once, a client per endpoint."""
    key = (endpoint, operation_timeout)
    with _lock:
        proxy = _services.get(key)
        if proxy is None:
            global _wsdl
            if _wsdl is None:
                _wsdl = Document(str(WSDL_PATH), zeep.Transport(), settings=_SETTINGS)
            transport = _Transport(timeout=operation_timeout, operation_timeout=operation_timeout)
            client = zeep.Client(_wsdl, transport=transport, settings=_SETTINGS)
            proxy = client.create_service(BINDING, endpoint)
            _services[key] = proxy
        return proxy


def _field(result: Any, name: str) -> Any:
    if result is None:
        return None
    try:
        return result[name]
    except (KeyError, TypeError, IndexError, AttributeError):
        return None


def _records(array: Any, item_name: str) -> list[dict[str, Any]]:
    """An ArrayOf... wrapper (or its list) as plain dicts."""
    items = _field(array, item_name) if array is not None and not isinstance(array, list) else array
    plain = zeep.helpers.serialize_object(items or [], dict)
    return [cast(dict[str, Any], record) for record in plain]
