"""What can go wrong talking to RPApos, as the extraction needs to tell it apart.

Importable without zeep or requests: the handlers that only classify failures stay light.
Messages never contain a password, a session token or a SOAP device token.
"""

import re

from pos_gateway.providers.errors import RetryLater

# ASSUMED: how the SOAP service says why it refused a call. asmx services put the reason in the
# faultstring only (no machine-readable detail), so a fault is told apart by its words. The
# fake RPApos server (local/fake_rpapos.py) answers with these words; correct them here.
TOKEN_FAULT = re.compile(r"\btoken\b", re.IGNORECASE)  # "Token inválido o expirado"
WORKSTATION_FAULT = re.compile(r"estaci[oó]n", re.IGNORECASE)  # "Estación de trabajo requerida"
CREDENTIALS_FAULT = re.compile(r"contrase[nñ]a|credencial", re.IGNORECASE)  # "Usuario o contraseña..."

DEFAULT_RETRY_AFTER_SECONDS = 60


class RpaposError(Exception):
    """Base of every RPApos failure."""


class BadCredentials(RpaposError):
    """RPApos refused the user and password (the login page came back without a token).

    Not retryable: the connection needs new credentials. Never an empty catalog.
    """


class SessionExpired(RpaposError):
    """RPApos answered 401 again right after a fresh login: the account cannot read the API."""


class RpaposUnavailable(RpaposError, RetryLater):
    """RPApos did not answer, timed out or failed (5xx) after the client's own retries.

    Nobody's fault: try again after ``retry_after_seconds`` (a page can be resumed).
    """

    def __init__(self, message: str, retry_after_seconds: int = DEFAULT_RETRY_AFTER_SECONDS) -> None:
        RetryLater.__init__(self, message, retry_after_seconds)


class RpaposRequestError(RpaposError):
    """RPApos refused the request (a 4xx other than 401): retrying the same call cannot help."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class RpaposProtocolError(RpaposError):
    """An answer this client cannot read: no login form, not JSON, not the paging envelope."""


class RpaposSoapError(RpaposError):
    """A SOAP fault that is none of the kinds below (unknown group, unsupported catalog...)."""

    def __init__(self, message: str, *, fault_code: str | None = None) -> None:
        super().__init__(message)
        self.fault_code = fault_code


class SoapTokenRejected(RpaposSoapError):
    """The SOAP service refused the device token (or there is none): register the device again."""


class WorkstationRequired(RpaposSoapError):
    """Catalogo_4 and Producto_U_M need the connection's workstation (estacion_trabajo), unset or 0."""


class SoapBadCredentials(RpaposSoapError, BadCredentials):
    """Dispositivo_Registra_2 refused the SAT user and password."""


def soap_fault_error(operation: str, fault_message: str, fault_code: str | None) -> RpaposSoapError:
    """The domain error for a SOAP fault, told apart by the fault's words (see the patterns)."""
    message = f"{operation}: SOAP fault: {fault_message}"
    kind: type[RpaposSoapError] = RpaposSoapError
    if TOKEN_FAULT.search(fault_message):
        kind = SoapTokenRejected
    elif WORKSTATION_FAULT.search(fault_message):
        kind = WorkstationRequired
    elif CREDENTIALS_FAULT.search(fault_message):
        kind = SoapBadCredentials
    return kind(message, fault_code=fault_code)
