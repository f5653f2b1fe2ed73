"""`aws.put/get` (SPEC 3.2): S3 requests signed by botocore, sent through the run's egress.

The script names a region, an access key, a secret key, a path (a bucket, optionally
followed by `/prefix`) and an object name. The request is signed here with botocore's
Signature V4 signer for S3 (`S3SigV4Auth`, which also signs the payload's SHA-256) and sent
through the run's `HttpService`: the connector's `allowed_hosts`, the address policy,
redirects and the size cap apply as to `httprequest`, and the hop is in the run's trace.

Amazon S3 is addressed virtual-hosted style (`<bucket>.s3.<region>.amazonaws.com`); an
S3-compatible store given by its endpoint URL (moto, MinIO, ...) path style
(`<endpoint>/<bucket>/<key>`), which they all serve.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import quote
from xml.etree.ElementTree import ParseError

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from defusedxml.ElementTree import fromstring
from yarl import URL

from runtime.host import HostCallError, HttpRequest, HttpResponse, HttpService, ObjectRequest

_BUCKET: Final = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_REGION: Final = re.compile(r"^[a-z0-9\-]{1,40}$")


class S3Objects:
    """One run's `ObjectStore`: signs each request and sends it as the run's HTTP would."""

    def __init__(self, http: HttpService) -> None:
        self._http = http

    async def send(self, request: ObjectRequest, *, max_body_bytes: int) -> HttpResponse:
        """Sign `request` and send it; answer a 2xx response.

        Raises:
            HostCallError: `aws_refused` (a bad region, bucket or name), `aws_error` (the
                store answered an error; its code and message), or the egress refusal.
        """
        url = object_url(request)
        body = request.body.encode() if request.body is not None else b""
        signed = AWSRequest(method=request.method, url=url, data=body)
        credentials = Credentials(request.access_key, request.secret_key)
        S3SigV4Auth(credentials, "s3", request.region).add_auth(signed)
        headers = tuple((str(k), str(v)) for k, v in signed.headers.items())
        response = await self._http.send(
            HttpRequest(request.method, url, headers, request.body), max_body_bytes=max_body_bytes
        )
        if not 200 <= response.status < 300:
            raise HostCallError(
                "aws_error",
                f"aws.{'put' if request.method == 'PUT' else 'get'}: the store answered "
                f"{response.status}{_error_of(response.body)}",
                trace=response.trace,
            )
        return response


def object_url(request: ObjectRequest) -> str:
    """The URL of the object: virtual-hosted on Amazon S3, path style on an endpoint.

    Raises:
        HostCallError: `aws_refused` for a region, bucket or name S3 would not take.
    """
    bucket, _, prefix = request.path.strip("/").partition("/")
    if not _BUCKET.match(bucket):
        raise HostCallError("aws_refused", f"{bucket!r} is not an S3 bucket name")
    if not _REGION.match(request.region):
        raise HostCallError("aws_refused", f"{request.region!r} is not an AWS region")
    name = request.name.lstrip("/")
    if not name:
        raise HostCallError("aws_refused", "the object needs a name")
    key = quote(f"{prefix.strip('/')}/{name}" if prefix.strip("/") else name, safe="/~")
    if request.endpoint is None:
        return f"https://{bucket}.s3.{request.region}.amazonaws.com/{key}"
    try:
        endpoint = URL(request.endpoint)
    except ValueError:
        endpoint = URL()
    if endpoint.scheme not in ("http", "https") or not endpoint.host:
        raise HostCallError("aws_refused", "the endpoint must be an http:// or https:// URL")
    base = str(endpoint.with_query(None).with_fragment(None)).rstrip("/")
    return f"{base}/{bucket}/{key}"


def _error_of(body: str) -> str:
    """` (Code: Message)` of an S3 error document, or nothing."""
    try:
        root = fromstring(body)
    except (ParseError, ValueError):
        return ""
    code = root.findtext("Code") or ""
    message = root.findtext("Message") or ""
    return f" ({code}: {message})" if code else ""
