"""y-protocols awareness updates: `varuint count, then per client: varuint clientID, varuint clock,
varstring JSON state` ("null" when the client is gone)."""

from __future__ import annotations

from dataclasses import dataclass

from app import input_guard
from app.errors import ValidationFailed


@dataclass(frozen=True, slots=True)
class AwarenessState:
    client_id: int
    clock: int
    state: str  # JSON text; "null" means the client left

    @property
    def removed(self) -> bool:
        return self.state == "null"


class _Reader:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.position = 0

    def var_uint(self) -> int:
        value, shift = 0, 0
        while True:
            if self.position >= len(self.raw) or shift > 63:
                raise ValueError("truncated or overlong number")
            byte = self.raw[self.position]
            self.position += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    def var_string(self) -> str:
        length = self.var_uint()
        end = self.position + length
        if end > len(self.raw):
            raise ValueError("truncated string")
        text = self.raw[self.position : end].decode("utf-8")
        self.position = end
        return text


def decode(raw: bytes, *, max_clients: int, max_state_bytes: int) -> list[AwarenessState]:
    try:
        reader = _Reader(raw)
        count = reader.var_uint()
        if count > max_clients:
            raise ValidationFailed(f"at most {max_clients} clients per awareness update", field="update")
        states = []
        for _ in range(count):
            client_id, clock, state = reader.var_uint(), reader.var_uint(), reader.var_string()
            if len(state) > max_state_bytes:
                raise ValidationFailed(
                    f"an awareness state must be at most {max_state_bytes} bytes", field="update"
                )
            # Relayed verbatim to browsers: it must be JSON they can parse, nested reasonably.
            input_guard.loads_checked(state, "update")
            states.append(AwarenessState(client_id, clock, state))
        if reader.position != len(raw):
            raise ValueError("trailing bytes")
    except (ValueError, UnicodeDecodeError) as error:
        raise ValidationFailed(f"not a valid awareness update: {error}", field="update") from None
    return states


def _var_uint(value: int, out: bytearray) -> None:
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)


def encode(states: list[AwarenessState]) -> bytes:
    out = bytearray()
    _var_uint(len(states), out)
    for entry in states:
        _var_uint(entry.client_id, out)
        _var_uint(entry.clock, out)
        data = entry.state.encode("utf-8")
        _var_uint(len(data), out)
        out += data
    return bytes(out)
