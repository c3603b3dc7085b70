"""A Cashu mint over its NUT HTTP API (httpx, bounded time and size).  Only transport and shape checks live
here; the wallet decides what the answers mean.  Every failure is a MintError (1975) with the mint's own error
detail when it sent one, so a mint that is down, slow or refusing is a clear error, never a hang."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...client_errors import MintError

if TYPE_CHECKING:
    import httpx

MAX_RESPONSE_BYTES = 2 * 1024 * 1024


class MintOutcomeUnknown(MintError):
    """The request may have reached the mint but no answer came back: the wallet must recover, not roll back."""


class MintClient:
    def __init__(self, url: str, timeout: float, transport: httpx.BaseTransport | None = None) -> None:
        import httpx                  # imported with the first mint client, not at the plugin's start
        self.url = url.rstrip("/")
        self._client = httpx.Client(timeout=timeout, follow_redirects=False, transport=transport)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "MintClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        import httpx
        try:
            resp = self._client.request(method, self.url + path, json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise MintError(f"mint {self.url} is unreachable: {type(exc).__name__}: {exc}") from None
        except httpx.HTTPError as exc:
            error = MintOutcomeUnknown if method == "POST" else MintError
            raise error(f"mint {self.url} did not answer {path}: {type(exc).__name__}: {exc}") from None
        if len(resp.content) > MAX_RESPONSE_BYTES:
            raise MintError(f"mint {self.url} sent an oversized answer to {path}")
        try:
            data = resp.json()
        except ValueError:
            raise MintError(f"mint {self.url} answered {path} with HTTP {resp.status_code} and no JSON") from None
        if resp.status_code != 200:
            detail = data.get("detail") if isinstance(data, dict) else None
            code = data.get("code") if isinstance(data, dict) else None
            raise MintError(f"mint refused {path}: {detail or resp.status_code}" + (f" (mint code {code})" if code
                                                                                     else ""))
        if not isinstance(data, dict):
            raise MintError(f"mint {self.url} answered {path} with something that is not an object")
        return data

    def info(self) -> dict[str, Any]:
        return self._request("GET", "/v1/info")

    def keysets(self) -> list[dict[str, Any]]:
        return _list(self._request("GET", "/v1/keysets"), "keysets")

    def keys(self, keyset_id: str) -> dict[str, Any]:
        sets = _list(self._request("GET", f"/v1/keys/{keyset_id}"), "keysets")
        match = next((k for k in sets if k.get("id") == keyset_id), None)
        if match is None or not isinstance(match.get("keys"), dict):
            raise MintError(f"mint did not return the keys of keyset {keyset_id}")
        return match

    def mint_quote(self, amount: int, unit: str) -> dict[str, Any]:
        return self._request("POST", "/v1/mint/quote/bolt11", {"amount": amount, "unit": unit})

    def mint_quote_state(self, quote: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/mint/quote/bolt11/{quote}")

    def mint(self, quote: str, outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return _list(self._request("POST", "/v1/mint/bolt11", {"quote": quote, "outputs": outputs}), "signatures")

    def swap(self, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return _list(self._request("POST", "/v1/swap", {"inputs": inputs, "outputs": outputs}), "signatures")

    def melt_quote(self, request: str, unit: str) -> dict[str, Any]:
        return self._request("POST", "/v1/melt/quote/bolt11", {"request": request, "unit": unit})

    def melt_quote_state(self, quote: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/melt/quote/bolt11/{quote}")

    def melt(self, quote: str, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> dict[str, Any]:
        return self._request("POST", "/v1/melt/bolt11", {"quote": quote, "inputs": inputs, "outputs": outputs})

    def checkstate(self, ys: list[str]) -> list[dict[str, Any]]:
        states = _list(self._request("POST", "/v1/checkstate", {"Ys": ys}), "states")
        if len(states) != len(ys):
            raise MintError("mint answered checkstate for a different number of proofs")
        return states

    def restore(self, outputs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        data = self._request("POST", "/v1/restore", {"outputs": outputs})
        return _list(data, "outputs"), _list(data, "signatures")


def _list(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = data.get(key)
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise MintError(f"mint answer has no '{key}' list")
    return value
