"""`self.client`: Locust's HttpSession API over the runner's `http.send-lean`.

The runner sends and times every request, so what Python does around a request does not
change its timing. A request that gets no response (refused, timed out, blocked by the
run's network policy) does not raise: as in Locust, it returns a response whose
`status_code` is 0 and whose `error` says why, and the runner records the failure.

A response's headers stay on the host until the scenario reads them: turning every header
of every response into Python strings cost about 14 % of the CPU of each request.
The host keeps them for the last 64 responses of the current call into the scenario (a
task, a hook, setup or teardown), so the SDK fetches, before the 65th request and when the
call ends, the headers of every response still in use whose headers were not read yet: a
response kept on the user and read in a later task has its headers, as in Locust.
"""

import collections
import datetime
import json as _json
import weakref
from urllib.parse import urlencode

from componentize_py_types import Err, Ok
from wit_world.imports import http as _http


class ResponseError(Exception):
    """Raise inside `with client.get(..., catch_response=True)` to fail that request."""


class CaseInsensitiveDict(dict):
    """Response headers: `headers["content-type"]` finds `Content-Type`."""

    def __init__(self, pairs):
        super().__init__()
        for name, value in pairs:
            key = name.lower()
            super().__setitem__(key, f"{self[key]}, {value}" if key in self else value)

    def __getitem__(self, key):
        return super().__getitem__(key.lower())

    def __contains__(self, key):
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key, default=None):
        return super().get(key.lower(), default)


def _charset(content_type):
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.lower() == "charset" and value:
            return value.strip('"')
    return "utf-8"


_ERRORS = {
    _http.HttpError_InvalidRequest: "invalid request",
    _http.HttpError_Connect: "connection failed",
    _http.HttpError_Protocol: "connection broken",
}


def _describe(error):
    if isinstance(error, _http.HttpError_Timeout):
        return "timed out"
    return f"{_ERRORS.get(type(error), 'failed')}: {error.value}"


# How many responses' headers the host keeps during one call (`response-headers` in the WIT;
# the runner's `limits::KEPT_RESPONSE_HEADERS`, which a runner test holds this to).
_HOST_KEEPS = 64
# Responses of the current call whose headers are still on the host, oldest first, held
# weakly: a response nobody refers to any more is not fetched for.
_unread = collections.deque()


def _fetch_unread(keep):
    """Fetches the headers of the oldest listed responses still in use until at most `keep`
    are listed."""
    while len(_unread) > keep:
        response = _unread.popleft()()
        if response is not None:
            response.headers  # noqa: B018 (the property fetches and keeps them)


def end_of_call():
    """Called as each call into the scenario ends, before the host forgets the headers."""
    _fetch_unread(0)


class Response:
    """A response (Locust's `requests`-like response, and its catch_response context)."""

    def __init__(self, url, wit=None, error=None, catch_response=False):
        self.url = url
        self.error = error
        self._id = wit.id if wit is not None else None
        self._catch = catch_response
        self._in_with = False
        self._outcome = None
        self.status_code = wit.status if wit is not None else 0
        self._headers = None
        if wit is None or wit.header_count == 0:
            self._headers = CaseInsensitiveDict([])
        else:
            _unread.append(weakref.ref(self))
        self.content = bytes(wit.body) if wit is not None else b""
        self._elapsed_us = wit.elapsed_us if wit is not None else 0
        self.timings = wit.timings if wit is not None else None

    @property
    def elapsed(self):
        """From the start of the request to the last byte of the body, measured by the host
        (a `timedelta`, made when asked for: most scenarios never ask)."""
        return datetime.timedelta(microseconds=self._elapsed_us)

    @elapsed.setter
    def elapsed(self, value):
        self._elapsed_us = round(value / datetime.timedelta(microseconds=1))

    @property
    def headers(self):
        """The response's headers, fetched from the host the first time they are read."""
        if self._headers is None:
            self._headers = CaseInsensitiveDict(_http.response_headers(self._id))
        return self._headers

    @headers.setter
    def headers(self, value):
        self._headers = value

    @property
    def ok(self):
        return self.error is None and self.status_code < 400

    @property
    def text(self):
        return self.content.decode(_charset(self.headers.get("content-type", "")), errors="replace")

    def json(self):
        return _json.loads(self.content)

    def raise_for_status(self):
        if self.error is not None:
            raise ResponseError(self.error)
        if self.status_code >= 400:
            raise ResponseError(f"{self.status_code} error for {self.url}")

    def success(self):
        """Marks a `catch_response=True` request successful, whatever its status."""
        self._settle(None)

    def failure(self, message):
        """Marks a `catch_response=True` request failed with `message`."""
        self._settle(str(message) if not isinstance(message, str) else message)

    def _settle(self, failure):
        if not self._catch:
            raise RuntimeError("success() and failure() need a request made with catch_response=True")
        if self._in_with:
            self._outcome = ("failure", failure) if failure is not None else ("success", None)
        else:
            self._report(failure)

    def _report(self, failure):
        if self._id is not None:
            _http.report(self._id, Err(failure) if failure is not None else Ok(None))

    def __enter__(self):
        self._in_with = True
        return self

    def __exit__(self, exc_type, exc, _traceback):
        # As Locust: the last success()/failure() in the block wins; a ResponseError raised in
        # it fails the request; any other exception goes on up (and fails the task).
        self._in_with = False
        if self._outcome is not None:
            self._report(self._outcome[1])
            return exc is None
        if isinstance(exc, ResponseError):
            self._report(str(exc) or type(exc).__name__)
            return True
        return exc is None

    def __repr__(self):
        return f"<Response [{self.status_code}]>"


def _pairs(mapping):
    if mapping is None:
        return []
    items = mapping.items() if hasattr(mapping, "items") else mapping
    return [(str(k), str(v)) for k, v in items]


class HttpSession:
    """Sends requests through the runner. Paths are joined to the run's host."""

    def request(
        self,
        method,
        url,
        name=None,
        catch_response=False,
        headers=None,
        params=None,
        data=None,
        json=None,
        timeout=None,
        tags=None,
    ):
        # Every request goes through here: the common case (no body, no headers, no tags)
        # calls no helper, since each Python call costs about a microsecond in the sandbox.
        headers = _pairs(headers) if headers else []
        body = None
        if json is not None:
            body = _json.dumps(json).encode()
            headers.append(("content-type", "application/json"))
        elif data is not None:
            if isinstance(data, dict):
                body = urlencode(data).encode()
                headers.append(("content-type", "application/x-www-form-urlencoded"))
            elif isinstance(data, str):
                body = data.encode()
            else:
                body = bytes(data)
        if params:
            # As Locust: statistics group under the URL as written, without the parameters.
            name = url if name is None else name
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"
        request = _http.Request(
            method=method.upper(),
            url=url,
            headers=headers,
            body=body,
            name=name,
            timeout_ms=None if timeout is None else max(1, round(timeout * 1000)),
            tags=_pairs(tags) if tags else [],
            catch_response=catch_response,
        )
        if len(_unread) >= _HOST_KEEPS:
            # The host is about to forget the oldest response's headers to keep this one's.
            _fetch_unread(_HOST_KEEPS - 1)
        try:
            return Response(url, wit=_http.send_lean(request), catch_response=catch_response)
        except Err as e:
            return Response(url, error=_describe(e.value), catch_response=catch_response)

    def get(self, url, **kwargs):
        return self.request("GET", url, **kwargs)

    def post(self, url, data=None, json=None, **kwargs):
        return self.request("POST", url, data=data, json=json, **kwargs)

    def put(self, url, data=None, **kwargs):
        return self.request("PUT", url, data=data, **kwargs)

    def patch(self, url, data=None, **kwargs):
        return self.request("PATCH", url, data=data, **kwargs)

    def delete(self, url, **kwargs):
        return self.request("DELETE", url, **kwargs)

    def head(self, url, **kwargs):
        return self.request("HEAD", url, **kwargs)

    def options(self, url, **kwargs):
        return self.request("OPTIONS", url, **kwargs)
