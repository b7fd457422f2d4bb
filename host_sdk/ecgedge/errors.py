"""Exceptions of the device SDK (`ecgedge.connect`, `ecgedge.device`, `ecgedge.transports`).

Every error the SDK raises on purpose derives from `EcgError`, so one `except EcgError` catches
them all::

    EcgError
    ├── DeviceTimeout        (also TimeoutError)  no answer within the timeout
    ├── DeviceError          the device answered with a negative status; `.code` is an ErrorCode
    ├── ProtocolVersionError the device speaks another protocol version
    ├── TransportError       (also OSError)       the link cannot be opened, broke, or was closed
    └── UrlError             (also ValueError)    a URL the SDK cannot parse, or an unknown scheme

`DeviceError.code` mirrors `protocol.ErrorCode` (the firmware's `ecg_err_t` and the protocol codes,
docs/protocol.md §7); its message starts with the code's name, like brainflow's `BrainFlowError`.
"""

from __future__ import annotations

from .protocol import ErrorCode, FrameType

__all__ = ["DeviceError", "DeviceTimeout", "EcgError", "ErrorCode", "ProtocolVersionError",
           "TransportError", "UrlError"]


class EcgError(Exception):
    """Root of the SDK's exceptions."""


class DeviceTimeout(EcgError, TimeoutError):
    """The device did not answer in time (after the retries allowed for the command).

    Attributes:
        command: the command that went unanswered (a `FrameType`), or None.
        timeout_s: the time waited per attempt, seconds.
    """

    def __init__(self, message: str, command: FrameType | None = None,
                 timeout_s: float | None = None) -> None:
        super().__init__(message)
        self.command = command
        self.timeout_s = timeout_s


class DeviceError(EcgError):
    """The device answered a command with an error status (docs/protocol.md §7).

    Attributes:
        code: the status, an `ErrorCode` (an int when a newer device sent a code this SDK does
            not know).
        command: the command answered (a `FrameType`), or None for checks made on the host
            (e.g. a capability the device lacks: `UNSUPPORTED` without asking).
    """

    def __init__(self, code: ErrorCode | int, command: FrameType | int | None = None,
                 message: str = "") -> None:
        try:
            code = ErrorCode(code)
            name = code.name
        except ValueError:
            name = f"error {int(code)}"
        what = f" to {FrameType(command).name}" if command is not None else ""
        text = f"{name}: the device refused{what}" + (f" ({message})" if message else "")
        super().__init__(text)
        self.code = code
        self.command = command


class ProtocolVersionError(EcgError):
    """The device speaks another protocol version than this SDK (1)."""


class TransportError(EcgError, OSError):
    """The link to the device cannot be opened, broke, or was closed."""


class UrlError(EcgError, ValueError):
    """A device URL the SDK cannot use; the message shows the URL and the expected form."""
